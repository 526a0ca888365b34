/*
 * Fuzz the safetensors reader from memory (st_parse): any bytes must give
 * LETHE_OK or an error, never a crash, and an accepted file must keep the
 * promises of safetensors.h: every entry's byte range lies inside the data
 * block and holds exactly numel·dtype-size bytes, names are unique and
 * st_find finds each one, metadata keys and values fit their fields.
 * Every accepted tensor is then converted to float, so any range the
 * validation let through is actually read (ASan sees an overrun).
 */
#include "fuzz.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file f;
    if (st_parse(&f, data, size, "fuzz") != LETHE_OK) {
        FUZZ_CHECK(f.n == 0 && f.t == NULL && f.buf == NULL); /* left empty */
        st_free(&f);
        return 0;
    }
    FUZZ_CHECK(f.data != NULL && f.data_size <= size - 8);
    FUZZ_CHECK(f.md.n >= 0 && f.md.n <= LETHE_MAX_META);
    for (int i = 0; i < f.md.n; i++) {
        FUZZ_CHECK(memchr(f.md.kv[i].key, 0, sizeof f.md.kv[i].key) != NULL);
        FUZZ_CHECK(memchr(f.md.kv[i].value, 0, sizeof f.md.kv[i].value) != NULL);
        FUZZ_CHECK(lethe_meta_get(&f.md, f.md.kv[i].key) == f.md.kv[i].value);
    }
    float *out = NULL;
    size_t cap = 0;
    for (int i = 0; i < f.n; i++) {
        const st_entry *e = &f.t[i];
        FUZZ_CHECK(e->name != NULL && strcmp(e->name, "__metadata__") != 0);
        FUZZ_CHECK(st_find(&f, e->name) == e);
        FUZZ_CHECK(e->ndim >= 0 && e->ndim <= ST_MAX_DIMS);
        size_t numel = 1;
        for (int k = 0; k < e->ndim; k++) {
            FUZZ_CHECK(e->shape[k] >= 0);
            numel *= (size_t)e->shape[k];
        }
        FUZZ_CHECK(numel == e->numel);
        FUZZ_CHECK(e->begin <= e->end && e->end <= f.data_size);
        FUZZ_CHECK(e->end - e->begin == e->numel * st_dtype_size(e->dtype));
        if (e->numel > cap) {                   /* numel ≤ data_size / 2 */
            free(out);
            cap = e->numel;
            out = malloc(cap * sizeof *out);
            FUZZ_CHECK(out != NULL);
        }
        st_entry_to_float(&f, e, out);
    }
    /* Names are unique: no two entries may share one. */
    for (int i = 1; i < f.n; i++)
        FUZZ_CHECK(strcmp(f.by_name[i - 1]->name, f.by_name[i]->name) < 0);
    free(out);
    st_free(&f);
    return 0;
}
