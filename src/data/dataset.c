/*
 * Named data sets: find the files of fmnist, mnist or cifar10 in a folder,
 * load them as bytes, check images against labels, and normalise batches
 * on the way out: x = (p/255 − mean[c]) / std[c]. One's own data: "idx" or
 * "idx:K" (any IDX pair per split, any size and channel count, K classes
 * or as many as the training labels name) and "cifar:K" (CIFAR binary
 * batches of K classes), normalised as (p/255 − 0.5)/0.5, their statistics
 * being unknown.
 */
#include "lethe.h"
#include "core/fail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/formats.h"
#include "data/text.h"

#define FMNIST_HINT " (install Debian package dataset-fashion-mnist)"

/* Per-channel statistics of the grey-scale sets (the usual published values). */
typedef struct { const char *name; float mean, std; } grey_set;
static const grey_set grey_sets[] = {
    {"fmnist", 0.2860f, 0.3530f},
    {"mnist", 0.1307f, 0.3081f},
};

/* Path of `base` in `dir`, gzip-compressed or not (the .gz is preferred).
 * On failure the message names the .gz path, the one Debian ships. */
static lethe_status find_file(char *out, size_t cap, const char *dir, const char *base,
                              const char *hint)
{
    static const char *const ext[2] = {".gz", ""};
    struct stat sb;
    for (int k = 0; k < 2; k++) {
        int len = snprintf(out, cap, "%s/%s%s", dir, base, ext[k]);
        if (len < 0 || (size_t)len >= cap)
            return lethe_fail(LETHE_ERR_ARG, "%s: path too long", dir);
        if (stat(out, &sb) == 0) return LETHE_OK;
    }
    return lethe_fail(LETHE_ERR_NOTFOUND, "%s/%s.gz: no such file (nor %s uncompressed)%s",
                      dir, base, base, hint);
}

static lethe_status load_idx_set(lethe_dataset *ds, const grey_set *gs, const char *dir,
                                 int train)
{
    const char *hint = strcmp(gs->name, "fmnist") == 0 ? FMNIST_HINT : "";
    const char *split = train ? "train" : "t10k";
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return lethe_fail(errno == ENOENT ? LETHE_ERR_NOTFOUND : LETHE_ERR_IO,
                          "%s: no such folder%s", dir, hint);
    if (!S_ISDIR(sb.st_mode))
        return lethe_fail(LETHE_ERR_ARG, "%s: not a folder%s", dir, hint);

    char base[64], ipath[4096], lpath[4096];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    lethe_status st = find_file(ipath, sizeof ipath, dir, base, hint);
    if (st != LETHE_OK) return st;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    st = find_file(lpath, sizeof lpath, dir, base, hint);
    if (st != LETHE_OK) return st;

    uint8_t *pixels = NULL, *labels = NULL; /* (N, 1, H, W), (N) */
    int n = 0, rows = 0, cols = 0, nl = 0;
    st = lethe_idx_read_images(ipath, &pixels, &n, &rows, &cols);
    if (st != LETHE_OK) goto fail;
    st = lethe_idx_read_labels(lpath, &labels, &nl);
    if (st != LETHE_OK) goto fail;
    if (n != nl) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s has %d images but %s has %d labels", ipath, n,
                        lpath, nl);
        goto fail;
    }
    for (int i = 0; i < n; i++)
        if (labels[i] >= 10) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: label %d of sample %d is out of range 0..9",
                            lpath, labels[i], i);
            goto fail;
        }

    ds->n = n;
    ds->c = 1;
    ds->h = rows;
    ds->w = cols;
    ds->nclass = 10;
    ds->pixels = pixels;
    ds->labels = labels;
    for (int c = 0; c < 3; c++) { /* all three set: harmless for C = 1 */
        ds->mean[c] = gs->mean;
        ds->std[c] = gs->std;
    }
    snprintf(ds->name, sizeof ds->name, "%s", gs->name);
    return LETHE_OK;

fail:
    free(pixels);
    free(labels);
    return st;
}

/* ------------------------------------------------ one's own data sets */

#define OWN_MAX_CLASSES 256         /* labels are bytes */

/* The first of `bases` (each with .gz, then without) found in dir. */
static lethe_status find_any(char *out, size_t cap, const char *dir, const char *const *bases,
                             int nbase)
{
    static const char *const ext[2] = {".gz", ""};
    struct stat sb;
    for (int b = 0; b < nbase; b++)
        for (int k = 0; k < 2; k++) {
            int len = snprintf(out, cap, "%s/%s%s", dir, bases[b], ext[k]);
            if (len < 0 || (size_t)len >= cap)
                return lethe_fail(LETHE_ERR_ARG, "%s: path too long", dir);
            if (stat(out, &sb) == 0) return LETHE_OK;
        }
    return lethe_fail(LETHE_ERR_NOTFOUND, "%s/%s: no such file (nor .gz; an IDX data set "
                      "names its files as MNIST does)", dir, bases[0]);
}

/* The labels file of a split of one's own IDX set. */
static lethe_status own_labels_path(char *out, size_t cap, const char *dir, int train)
{
    static const char *const tr[] = {"train-labels-idx1-ubyte"};
    static const char *const te[] = {"t10k-labels-idx1-ubyte", "test-labels-idx1-ubyte"};
    return train ? find_any(out, cap, dir, tr, 1) : find_any(out, cap, dir, te, 2);
}

/* "idx", "idx:K" or "cifar:K": one's own data set in dir. nclass 0: as
 * many classes as the training labels name (their largest plus one). */
static lethe_status load_own(lethe_dataset *ds, const char *name, const char *dir, int train,
                             int cifar, int nclass)
{
    if (!dir) return lethe_fail(LETHE_ERR_ARG, "data set %s needs a folder (--data-dir)", name);
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return lethe_fail(errno == ENOENT ? LETHE_ERR_NOTFOUND : LETHE_ERR_IO,
                          "%s: no such folder", dir);
    if (!S_ISDIR(sb.st_mode)) return lethe_fail(LETHE_ERR_ARG, "%s: not a folder", dir);
    if (cifar) return cifar_load_classes(ds, dir, train, nclass, 1);

    static const char *const tr[] = {"train-images-idx3-ubyte", "train-images-idx4-ubyte"};
    static const char *const te[] = {"t10k-images-idx3-ubyte", "t10k-images-idx4-ubyte",
                                     "test-images-idx3-ubyte", "test-images-idx4-ubyte"};
    char ipath[4096], lpath[4096];
    lethe_status st = train ? find_any(ipath, sizeof ipath, dir, tr, 2)
                            : find_any(ipath, sizeof ipath, dir, te, 4);
    if (st != LETHE_OK || (st = own_labels_path(lpath, sizeof lpath, dir, train)) != LETHE_OK)
        return st;
    uint8_t *pixels = NULL, *labels = NULL;     /* (N, C, H, W), (N) */
    int n = 0, c = 0, h = 0, w = 0, nl = 0;
    if ((st = idx_read_images_any(ipath, &pixels, &n, &c, &h, &w)) != LETHE_OK ||
        (st = lethe_idx_read_labels(lpath, &labels, &nl)) != LETHE_OK)
        goto fail;
    if (n != nl) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s has %d images but %s has %d labels", ipath, n,
                        lpath, nl);
        goto fail;
    }
    if (!nclass) {
        /* The training labels name the classes, for either split. */
        uint8_t *tl = labels;
        int nt = nl;
        char tpath[4096];
        if (!train && ((st = own_labels_path(tpath, sizeof tpath, dir, 1)) != LETHE_OK ||
                       (st = lethe_idx_read_labels(tpath, &tl, &nt)) != LETHE_OK))
            goto fail;
        for (int i = 0; i < nt; i++)
            if (tl[i] + 1 > nclass) nclass = tl[i] + 1;
        if (tl != labels) free(tl);
        if (nclass < 2) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: the training labels name %d class%s; a "
                            "classifier needs 2 or more", dir, nclass, nclass == 1 ? "" : "es");
            goto fail;
        }
    }
    for (int i = 0; i < n; i++)
        if (labels[i] >= nclass) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: label %d of sample %d is out of range 0..%d "
                            "(%s)", lpath, labels[i], i, nclass - 1,
                            strcmp(name, "idx") == 0 ? "the training labels' largest"
                                                     : "the stated class count");
            goto fail;
        }
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->nclass = nclass;
    ds->pixels = pixels;
    ds->labels = labels;
    for (int k = 0; k < 3; k++) ds->mean[k] = ds->std[k] = 0.5f;
    snprintf(ds->name, sizeof ds->name, "%s", name);
    return LETHE_OK;
fail:
    free(pixels);
    free(labels);
    return st;
}

/* 1 when name is "idx", "idx:K" or "cifar:K" (*cifar, *nclass set; 0 for
 * bare "idx"), 0 when it is none of them, −1 (failed) when K is not a
 * class count. */
static int own_form(const char *name, int *cifar, int *nclass)
{
    const char *k;
    *nclass = 0;
    if (strcmp(name, "idx") == 0) {
        *cifar = 0;
        return 1;
    }
    if (strncmp(name, "idx:", 4) == 0) *cifar = 0, k = name + 4;
    else if (strncmp(name, "cifar:", 6) == 0) *cifar = 1, k = name + 6;
    else return 0;
    char *end;
    errno = 0;
    long v = strtol(k, &end, 10);
    if (end == k || *end || errno || v < 2 || v > OWN_MAX_CLASSES) {
        lethe_fail(LETHE_ERR_ARG, "data set '%s': the class count after ':' must be a whole "
                   "number from 2 to %d", name, OWN_MAX_CLASSES);
        return -1;
    }
    *nclass = (int)v;
    return 1;
}

lethe_status lethe_dataset_load(lethe_dataset *ds, const char *name, const char *dir,
                                int train)
{
    memset(ds, 0, sizeof *ds);
    if (!name) return lethe_fail(LETHE_ERR_ARG, "data set name missing");
    int cifar, nclass, own = own_form(name, &cifar, &nclass);
    if (own < 0) return LETHE_ERR_ARG;
    if (own) return load_own(ds, name, dir, train, cifar, nclass);
    if (text_dataset_name(name)) return text_dataset_load(ds, name, dir, train);
    if (strcmp(name, "cifar10") == 0) {
        if (dir) return lethe_cifar_load(ds, dir, train);
        struct stat sb;
        if (stat(LETHE_CIFAR10_DIR, &sb) != 0 && errno == ENOENT)
            return lethe_fail(LETHE_ERR_NOTFOUND, "%s: no CIFAR-10 here (get it with `lethe "
                              "data fetch cifar10`, or name a cifar-10-batches-bin/ folder "
                              "with --data-dir)", LETHE_CIFAR10_DIR);
        return lethe_cifar_load(ds, LETHE_CIFAR10_DIR, train);
    }
    for (size_t k = 0; k < sizeof grey_sets / sizeof grey_sets[0]; k++) {
        const grey_set *gs = &grey_sets[k];
        if (strcmp(name, gs->name) != 0) continue;
        if (!dir) {
            if (strcmp(name, "fmnist") != 0)
                return lethe_fail(LETHE_ERR_ARG, "data set %s needs a folder", name);
            dir = LETHE_FMNIST_DIR;
        }
        return load_idx_set(ds, gs, dir, train);
    }
    return lethe_fail(LETHE_ERR_NOTFOUND,
                      "unknown data set '%s' (expected fmnist, mnist, cifar10, sms-spam, or "
                      "one's own: idx, idx:K, cifar:K, text)", name);
}

void lethe_dataset_free(lethe_dataset *ds)
{
    if (!ds) return;
    free(ds->pixels);
    free(ds->labels);
    free(ds->tokens);
    free(ds->vocab);
    memset(ds, 0, sizeof *ds);
}

lethe_status lethe_subset_all(lethe_subset *s, size_t n)
{
    s->n = 0;
    s->idx = malloc((n ? n : 1) * sizeof(int32_t));
    if (!s->idx) return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %zu indices", n);
    for (size_t i = 0; i < n; i++) s->idx[i] = (int32_t)i;
    s->n = n;
    return LETHE_OK;
}

void lethe_subset_free(lethe_subset *s)
{
    if (!s) return;
    free(s->idx);
    s->idx = NULL;
    s->n = 0;
}

/* The indices must be in [0, ds->n); the caller's subsets guarantee it. */
size_t lethe_dataset_sample_size(const lethe_dataset *ds)
{
    return (size_t)(ds->tokens ? 1 : ds->c) * (size_t)ds->h * (size_t)ds->w;
}

void lethe_dataset_batch(const lethe_dataset *ds, const int32_t *idx, int n, float *x,
                         int32_t *y)
{
    if (ds->tokens) {
        /* A text set: the ids as floats, exact below 2^24 (text.h bounds them). */
        const size_t T = (size_t)ds->w;
        for (int i = 0; i < n; i++) {
            const int32_t *src = ds->tokens + (size_t)idx[i] * T;   /* (T) */
            for (size_t t = 0; t < T; t++) x[(size_t)i * T + t] = (float)src[t];
            y[i] = ds->labels[idx[i]];
        }
        return;
    }
    const int C = ds->c;
    const size_t hw = (size_t)ds->h * ds->w, chw = (size_t)C * hw;
    /* One value per byte and channel: 256·C divisions instead of n·C·H·W.
     * C ≤ 3: mean and std hold three channels. */
    float lut[3][256];
    for (int c = 0; c < C; c++)
        for (int p = 0; p < 256; p++)
            lut[c][p] = ((float)p / 255.0f - ds->mean[c]) / ds->std[c];

#pragma omp parallel for schedule(static) if ((size_t)n * chw > 65536)
    for (int i = 0; i < n; i++) {
        const uint8_t *src = ds->pixels + (size_t)idx[i] * chw; /* (C, H, W) */
        float *dst = x + (size_t)i * chw;                       /* (C, H, W) */
        for (int c = 0; c < C; c++) {
            const float *t = lut[c];
            for (size_t k = 0; k < hw; k++) dst[c * hw + k] = t[src[c * hw + k]];
        }
        y[i] = ds->labels[idx[i]];
    }
}
