/*
 * Named data sets: find the files of fmnist, mnist or cifar10 in a folder,
 * load them as bytes, check images against labels, and normalise batches
 * on the way out: x = (p/255 − mean[c]) / std[c].
 */
#include "lethe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

lethe_status lethe_dataset_load(lethe_dataset *ds, const char *name, const char *dir,
                                int train)
{
    memset(ds, 0, sizeof *ds);
    if (!name) return lethe_fail(LETHE_ERR_ARG, "data set name missing");
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
                      "unknown data set '%s' (expected fmnist, mnist or cifar10)", name);
}

void lethe_dataset_free(lethe_dataset *ds)
{
    if (!ds) return;
    free(ds->pixels);
    free(ds->labels);
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
void lethe_dataset_batch(const lethe_dataset *ds, const int32_t *idx, int n, float *x,
                         int32_t *y)
{
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
