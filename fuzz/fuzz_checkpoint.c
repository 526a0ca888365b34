/*
 * Fuzz checkpoint loading through files, as the command line does it:
 * lethe_checkpoint_read_meta (the header-only read), lethe_checkpoint_load
 * into an mlp, and lethe_checkpoint_open (model built from the metadata).
 *
 * Input: one mode byte, then
 *   mode bit 0 = 0: the rest is the whole file;
 *   mode bit 0 = 1: 3 bytes of data-block size (20 bits, ≤ 1 MiB), then the
 *                   JSON header; the harness writes the length prefix and a
 *                   zero data block itself. A matching mlp file is ~330 KB of
 *                   weights, far beyond what a mutator would ever produce, so
 *                   this mode lets a few-hundred-byte header reach the code
 *                   that maps a complete file onto a model.
 * Property: a load that fails leaves the model's θ and buffers as they were
 * ("checks every name and shape before it writes a single value").
 */
#include "fuzz.h"

static char path[512];
static lethe_model *mlp;        /* 1×8×8 input, 2 classes: the smallest mlp */
static float *snap;             /* (n + nbuf) copy of θ and buffers */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void cleanup(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_scratch(path, sizeof path, "ckpt.safetensors");
    atexit(cleanup);
    if (lethe_init(0) != LETHE_OK || lethe_model_create(&mlp, "mlp", 1, 8, 8, 2) != LETHE_OK)
        abort();
    size_t n, nb;
    lethe_model_theta(mlp, &n);
    lethe_model_buffers(mlp, &nb);
    snap = malloc((n + nb + 1) * sizeof *snap);
    if (!snap) abort();
    return 0;
}

/* Mode 1: u64 header length, header, data_size zero bytes. */
static void write_synth(const uint8_t *d, size_t n)
{
    if (n < 3) {
        fuzz_write(path, NULL, 0);
        return;
    }
    size_t data_size = ((size_t)d[0] << 16 | (size_t)d[1] << 8 | d[2]) & 0xfffff;
    const uint8_t *json = d + 3;
    size_t hlen = n - 3, total = 8 + hlen + data_size;
    uint8_t *img = calloc(total, 1);        /* (total) file image */
    FUZZ_CHECK(img != NULL);
    for (int i = 0; i < 8; i++) img[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(img + 8, json, hlen);
    fuzz_write(path, img, total);
    free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] & 1) write_synth(data + 1, size - 1);
    else fuzz_write(path, data + 1, size - 1);

    lethe_metadata md;
    lethe_checkpoint_read_meta(path, &md);

    size_t n, nb;
    float *theta = lethe_model_theta(mlp, &n), *buf = lethe_model_buffers(mlp, &nb);
    memcpy(snap, theta, n * sizeof *snap);
    memcpy(snap + n, buf, nb * sizeof *snap);
    if (lethe_checkpoint_load(mlp, path, &md) != LETHE_OK) {
        FUZZ_CHECK(memcmp(snap, theta, n * sizeof *snap) == 0);
        FUZZ_CHECK(memcmp(snap + n, buf, nb * sizeof *snap) == 0);
    }

    lethe_model *m = NULL;
    if (lethe_checkpoint_open(&m, path, &md) == LETHE_OK) {
        FUZZ_CHECK(m != NULL && lethe_meta_get(&md, "arch") != NULL);
        FUZZ_CHECK(strcmp(lethe_model_arch(m), lethe_meta_get(&md, "arch")) == 0);
        lethe_model_free(m);
    } else {
        FUZZ_CHECK(m == NULL);
    }
    return 0;
}
