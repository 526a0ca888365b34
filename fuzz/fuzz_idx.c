/*
 * Fuzz the IDX readers (lethe_idx_read_images, lethe_idx_read_labels, and
 * idx_read_images_any of one's own data sets: 3 or 4 dimensions, channels
 * first or last), raw and gzip. The readers take a path, so each input goes to a scratch
 * file (idx.c reads through zlib's gzFile and is left as it is).
 *
 * Input: one mode byte, then the payload.
 *   mode bit 0 = 0: the payload is the file as is (raw IDX, or gzip bytes
 *                   to corrupt: bad CRC, bad deflate, trailing members);
 *   mode bit 0 = 1: the payload is gzip-compressed by the harness first, so
 *                   mutations of the IDX header and sizes reach the reader
 *                   through the gzip path too.
 * Properties of an accepted file: the buffer holds n·rows·cols (n) bytes
 * (touched at both ends, so ASan sees a short allocation), the sizes are
 * within the documented limits, and a raw (uncompressed) file is exactly
 * header + payload long.
 */
#include <zlib.h>

#include "data/formats.h"
#include "fuzz.h"

static char path[512];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void cleanup(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_scratch(path, sizeof path, "idx");
    atexit(cleanup);
    return 0;
}

static void write_gzip(const uint8_t *d, size_t n)
{
    gzFile g = gzopen(path, "wb1");
    FUZZ_CHECK(g != NULL);
    FUZZ_CHECK(n == 0 || gzwrite(g, d, (unsigned)n) == (int)n);
    FUZZ_CHECK(gzclose(g) == Z_OK);
}

/* Read the first and last byte of an n-byte buffer. */
static void touch(const uint8_t *p, size_t n)
{
    volatile uint8_t sink = 0;
    if (n) sink ^= p[0] ^ p[n - 1];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    int gz = data[0] & 1;
    if (gz) write_gzip(d, n);
    else fuzz_write(path, d, n);
    /* zlib reads a file as gzip when it starts with the gzip magic. */
    int raw = !gz && !(n >= 2 && d[0] == 0x1f && d[1] == 0x8b);

    uint8_t *px = NULL;
    int count = -1, rows = -1, cols = -1;
    if (lethe_idx_read_images(path, &px, &count, &rows, &cols) == LETHE_OK) {
        FUZZ_CHECK(count >= 0 && count <= 10000000);
        FUZZ_CHECK(rows >= 1 && rows <= 4096 && cols >= 1 && cols <= 4096);
        uint64_t total = (uint64_t)count * (uint64_t)rows * (uint64_t)cols;
        FUZZ_CHECK(total <= INT32_MAX);
        if (raw) FUZZ_CHECK(n == 16 + total);
        touch(px, (size_t)total);
        free(px);
    }
    int c = -1;
    if (idx_read_images_any(path, &px, &count, &c, &rows, &cols) == LETHE_OK) {
        FUZZ_CHECK(count >= 0 && count <= 10000000 && c >= 1 && c <= 4096);
        FUZZ_CHECK(rows >= 1 && rows <= 4096 && cols >= 1 && cols <= 4096);
        /* A fourth dimension only with a channel count of 1 to 3. */
        uint64_t total = (uint64_t)count * (uint64_t)c * (uint64_t)rows * (uint64_t)cols;
        FUZZ_CHECK(total <= INT32_MAX);
        if (raw) FUZZ_CHECK(n == 16 + total || (c <= 3 && n == 20 + total));
        touch(px, (size_t)total);
        free(px);
    }
    uint8_t *lab = NULL;
    if (lethe_idx_read_labels(path, &lab, &count) == LETHE_OK) {
        FUZZ_CHECK(count >= 0 && count <= 10000000);
        if (raw) FUZZ_CHECK(n == 8 + (size_t)count);
        touch(lab, (size_t)count);
        free(lab);
    }
    return 0;
}
