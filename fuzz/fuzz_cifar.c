/*
 * Fuzz the CIFAR-10 batch reader (lethe_cifar_load, and "cifar:K" of one's
 * own data through lethe_dataset_load). The input is written
 * as test_batch.bin in a scratch folder; data_batch_1..5.bin are symbolic
 * links to it, so the training split (five files) is read from the same
 * bytes. Properties of an accepted set: whole 3073-byte records only,
 * labels below 10, 3×32×32 images, and the buffers as large as claimed.
 */
#include <sys/stat.h>

#include "fuzz.h"

#define RECORD 3073                 /* 1 label + 3·32·32 pixels */

static char dir[512], file[600];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void cleanup(void)
{
    char p[640];
    for (int k = 1; k <= 5; k++) {
        snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, k);
        unlink(p);
    }
    unlink(file);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_scratch(dir, sizeof dir, "cifar");
    snprintf(file, sizeof file, "%s/test_batch.bin", dir);
    cleanup();                          /* a dead run's leftovers */
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        abort();
    }
    char p[640];
    for (int k = 1; k <= 5; k++) {
        snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, k);
        if (symlink("test_batch.bin", p) != 0) {
            perror(p);
            abort();
        }
    }
    atexit(cleanup);
    return 0;
}

static void check(const lethe_dataset *ds, size_t size, int files)
{
    FUZZ_CHECK(size % RECORD == 0 && ds->n == (int)(size / RECORD) * files);
    FUZZ_CHECK(ds->c == 3 && ds->h == 32 && ds->w == 32 && ds->nclass == 10);
    for (int i = 0; i < ds->n; i++) FUZZ_CHECK(ds->labels[i] < 10);
    volatile uint8_t sink = ds->pixels[(size_t)ds->n * 3072 - 1];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write(file, data, size);
    lethe_dataset ds;
    if (lethe_cifar_load(&ds, dir, 0) == LETHE_OK) {
        check(&ds, size, 1);
        lethe_dataset_free(&ds);
    }
    if (lethe_cifar_load(&ds, dir, 1) == LETHE_OK) {
        check(&ds, size, 5);
        lethe_dataset_free(&ds);
    }
    /* One's own set in that format, 3 classes: every label below 3. */
    if (lethe_dataset_load(&ds, "cifar:3", dir, 0) == LETHE_OK) {
        FUZZ_CHECK(ds.c == 3 && ds.h == 32 && ds.w == 32 && ds.nclass == 3);
        FUZZ_CHECK((size_t)ds.n * 3073 == size);
        for (int i = 0; i < ds.n; i++) FUZZ_CHECK(ds.labels[i] < 3);
        lethe_dataset_free(&ds);
    }
    return 0;
}
