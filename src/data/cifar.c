/*
 * CIFAR-10 binary batches: a file is a run of 3073-byte records, one label
 * byte then 3072 pixel bytes (3 × 32 × 32, channel-major: all red, all
 * green, all blue), which is already our (N, C, H, W) layout. The training
 * split is data_batch_1..5.bin (all five), the test split test_batch.bin.
 * Sizes are checked from stat() before anything is allocated.
 * One's own set in that format ("cifar:K", dataset.c) has K classes and
 * data_batch_1.bin with any of 2..5 after it, in order.
 */
#include "lethe.h"
#include "core/fail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/formats.h"

#define CIFAR_PIXELS  3072                 /* 3 · 32 · 32 */
#define CIFAR_RECORD  (1 + CIFAR_PIXELS)
#define CIFAR_MAX_N   10000000
#define CIFAR_MAXFILE 5

static const float cifar_mean[3] = {0.4914f, 0.4822f, 0.4465f};
static const float cifar_std[3] = {0.2470f, 0.2435f, 0.2616f};

lethe_status cifar_load_classes(lethe_dataset *ds, const char *dir, int train, int nclass,
                                int own)
{
    memset(ds, 0, sizeof *ds);
    if (!dir || !*dir)
        return lethe_fail(LETHE_ERR_ARG, "cifar10: a folder with the binary batches is required");
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return lethe_fail(errno == ENOENT ? LETHE_ERR_NOTFOUND : LETHE_ERR_IO,
                          "%s: cannot open folder: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return lethe_fail(LETHE_ERR_ARG, "%s: not a folder", dir);

    int nfile = train ? CIFAR_MAXFILE : 1;
    char path[CIFAR_MAXFILE][4096];
    long count[CIFAR_MAXFILE];           /* records per file */
    long total = 0;

    /* First pass: every file exists and holds whole records. */
    for (int k = 0; k < nfile; k++) {
        int len = train ? snprintf(path[k], sizeof path[k], "%s/data_batch_%d.bin", dir, k + 1)
                        : snprintf(path[k], sizeof path[k], "%s/test_batch.bin", dir);
        if (len < 0 || (size_t)len >= sizeof path[k])
            return lethe_fail(LETHE_ERR_ARG, "%s: path too long", dir);
        if (own && k > 0 && stat(path[k], &sb) != 0 && errno == ENOENT) {
            nfile = k;                  /* one's own set: the batches there are */
            break;
        }
        if (stat(path[k], &sb) != 0)
            return lethe_fail(errno == ENOENT ? LETHE_ERR_NOTFOUND : LETHE_ERR_IO,
                              "%s: cannot open: %s", path[k], strerror(errno));
        if (!S_ISREG(sb.st_mode))
            return lethe_fail(LETHE_ERR_FORMAT, "%s: not a regular file", path[k]);
        if (sb.st_size == 0)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: empty; size 0 is not a positive multiple "
                              "of %d (1 label + 3072 pixels a record)", path[k], CIFAR_RECORD);
        if (sb.st_size % CIFAR_RECORD != 0)
            return lethe_fail(LETHE_ERR_FORMAT,
                              "%s: size %lld is not a positive multiple of %d (1 label + 3072 "
                              "pixels): record %lld has %lld of its %d bytes (truncated or "
                              "damaged)", path[k], (long long)sb.st_size, CIFAR_RECORD,
                              (long long)(sb.st_size / CIFAR_RECORD),
                              (long long)(sb.st_size % CIFAR_RECORD), CIFAR_RECORD);
        if (sb.st_size / CIFAR_RECORD > CIFAR_MAX_N - total)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: more than %d images in all", path[k],
                              CIFAR_MAX_N);
        count[k] = (long)(sb.st_size / CIFAR_RECORD);
        total += count[k];
    }

    uint8_t *pixels = malloc((size_t)total * CIFAR_PIXELS); /* (N, 3, 32, 32) */
    uint8_t *labels = malloc((size_t)total);                /* (N) */
    lethe_status st = LETHE_OK;
    FILE *f = NULL;
    if (!pixels || !labels) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: cannot allocate %ld CIFAR images", dir, total);
        goto done;
    }

    long i = 0;
    for (int k = 0; k < nfile; k++) {
        f = fopen(path[k], "rb");
        if (!f) {
            st = lethe_fail(LETHE_ERR_IO, "%s: cannot open: %s", path[k], strerror(errno));
            goto done;
        }
        for (long r = 0; r < count[k]; r++, i++) {
            int lab = fgetc(f);
            size_t got = lab == EOF ? 0 : fread(pixels + (size_t)i * CIFAR_PIXELS, 1,
                                                CIFAR_PIXELS, f);
            if (got != CIFAR_PIXELS) { /* the file shrank since stat() */
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: truncated at record %ld of %ld",
                                path[k], r, count[k]);
                goto done;
            }
            if (lab >= nclass) {
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: record %ld has label %d (expected 0..%d%s)",
                                path[k], r, lab, nclass - 1,
                                own ? ": state the class count as cifar:K" : "");
                goto done;
            }
            labels[i] = (uint8_t)lab;
        }
        fclose(f);
        f = NULL;
    }

    ds->n = (int)total;
    ds->c = 3;
    ds->h = 32;
    ds->w = 32;
    ds->nclass = nclass;
    ds->pixels = pixels;
    ds->labels = labels;
    memcpy(ds->mean, cifar_mean, sizeof ds->mean);
    memcpy(ds->std, cifar_std, sizeof ds->std);
    snprintf(ds->name, sizeof ds->name, "cifar10");
    if (own) {                  /* statistics unknown: (p/255 − 0.5)/0.5, as dataset.c */
        for (int c = 0; c < 3; c++) ds->mean[c] = ds->std[c] = 0.5f;
        snprintf(ds->name, sizeof ds->name, "cifar:%d", nclass);
    }
    return LETHE_OK;

done:
    if (f) fclose(f);
    free(pixels);
    free(labels);
    return st;
}

lethe_status lethe_cifar_load(lethe_dataset *ds, const char *dir, int train)
{
    return cifar_load_classes(ds, dir, train, 10, 0);
}
