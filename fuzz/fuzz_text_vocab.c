/*
 * Fuzz the reader of a text vocabulary's serialised form (text_vocab_read
 * in src/data/tokenizer.c: what a text checkpoint carries). The input is
 * the blob itself.
 *
 * Properties of an accepted blob: the configuration passes
 * text_vocab_config_check; 2..TEXT_MAX_CLASSES class names in increasing
 * byte order; every token found again at its own id; written back, the
 * same bytes as the input (the reader takes only what the writer writes);
 * and the blob's own bytes, encoded as a text, give ids in range with
 * TEXT_PAD exactly after the length.
 */
#include "data/text.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    text_vocab v;
    text_classes c;
    if (text_vocab_read(&v, &c, (const char *)data, size) != LETHE_OK) {
        FUZZ_CHECK(v.n == 0 && v.tok == NULL && c.n == 0 && c.name == NULL);
        return 0;
    }
    FUZZ_CHECK(text_vocab_config_check(&v.cfg) == LETHE_OK);
    FUZZ_CHECK(v.n >= TEXT_NRESERVED && v.n <= v.cfg.max_size);
    FUZZ_CHECK(c.n >= 2 && c.n <= TEXT_MAX_CLASSES);
    for (int k = 1; k < c.n; k++) FUZZ_CHECK(strcmp(c.name[k - 1], c.name[k]) < 0);
    for (int id = TEXT_NRESERVED; id < v.n; id++)
        FUZZ_CHECK(text_vocab_id(&v, v.tok[id], strlen(v.tok[id])) == id);

    char *blob = NULL;
    size_t n = 0;
    FUZZ_CHECK(text_vocab_write(&v, &c, &blob, &n) == LETHE_OK);
    FUZZ_CHECK(n == size && memcmp(blob, data, n) == 0);
    free(blob);

    int32_t *ids = malloc((size_t)v.cfg.max_len * sizeof *ids);
    FUZZ_CHECK(ids != NULL);
    int cut;
    int len = text_encode(&v, (const char *)data, size, ids, &cut);
    FUZZ_CHECK(len >= 1 && len <= v.cfg.max_len);
    for (int k = 0; k < v.cfg.max_len; k++) {
        FUZZ_CHECK(ids[k] >= 0 && ids[k] < v.n);
        FUZZ_CHECK((k < len) == (ids[k] != TEXT_PAD));
    }
    free(ids);
    text_vocab_free(&v);
    text_classes_free(&c);
    return 0;
}
