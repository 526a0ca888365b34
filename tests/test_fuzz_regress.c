/*
 * Regression tests for inputs the fuzzers (fuzz/fuzz_*.c) found: each
 * crashing or wrongly accepted input, fed through the same public API as
 * the harness that found it. The same bytes (with the harness's mode byte)
 * are kept in fuzz/corpus/NAME/regress_*, so `make fuzz-replay` runs them too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe.h"
#include "test.h"

/* A 40-image set with labels i mod 10, as fuzz_forget.c builds it. */
#define NSET 40
typedef struct {
    lethe_dataset ds;
    uint8_t labels[NSET], pixels[NSET]; /* (N), (N, 1, 1, 1) */
} small_set;

static void small_set_init(small_set *s)
{
    for (int i = 0; i < NSET; i++) {
        s->labels[i] = (uint8_t)(i % 10);
        s->pixels[i] = 0;
    }
    s->ds = (lethe_dataset){.n = NSET, .c = 1, .h = 1, .w = 1, .nclass = 10,
                            .pixels = s->pixels, .labels = s->labels, .name = "toy"};
}

static void write_bytes(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(d, 1, n, f) == n);
    fclose(f);
}

/* Split by an index file holding n bytes of d; returns the status and
 * frees whatever the split made. */
static lethe_status split_index_bytes(const void *d, size_t n)
{
    small_set s;
    small_set_init(&s);
    const char *path = test_path("fuzz_regress_forget.txt");
    write_bytes(path, d, n);
    char spec[600];
    snprintf(spec, sizeof spec, "indices:%s", path);
    lethe_forget_spec f;
    lethe_status st = lethe_forget_parse(&f, spec);
    CHECK(st == LETHE_OK);
    lethe_subset fs, rs;
    st = lethe_forget_split(&f, &s.ds, 7, &fs, &rs);
    lethe_subset_free(&fs);
    lethe_subset_free(&rs);
    return st;
}

/* fuzz_forget, corpus regress_nul_in_index_line: "1\0\0\x7f..." was read as
 * index 1, the bytes after the NUL silently dropped (strlen stopped there). */
TEST(fuzz_regress_index_file_nul_byte)
{
    static const uint8_t found[] = {
        0x31, 0x00, 0x00, 0x7f, 0x14, 0x92, 0xf4, 0xc5, 0xbe, 0x6d, 0x65, 0x6e, 0x74, 0x0a,
        0x20, 0x20, 0x33, 0x20, 0x20, 0x23, 0x20, 0x74, 0x68, 0x72, 0x65, 0x65, 0x0a, 0x0a,
        0x33, 0x39, 0x0a};
    CHECK(split_index_bytes(found, sizeof found) == LETHE_ERR_FORMAT);
    CHECK(strstr(lethe_last_error(), ":1: NUL byte") != NULL);
    /* A NUL that hides a second number, and one inside a comment. */
    CHECK(split_index_bytes("3\n4\0" "5\n", 6) == LETHE_ERR_FORMAT);
    CHECK(strstr(lethe_last_error(), ":2: NUL byte") != NULL);
    CHECK(split_index_bytes("3 # x\0y\n", 8) == LETHE_ERR_FORMAT);
    /* The same lines without the NULs still read. */
    CHECK(split_index_bytes("1\n  3  # three\n\n39\n", 19) == LETHE_OK);
}

/* fuzz_forget, corpus regress_hex_fraction: "random:0x20%" passed the
 * first-character check ('0') and strtod read it as hex, 32% of the set. */
TEST(fuzz_regress_random_hex_fraction)
{
    static const char *const bad[] = {"random:0x20%", "random:0x0.8", "random:0x1p-3",
                                      "random:0X.4", "random:+0x.2"};
    lethe_forget_spec f;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(lethe_forget_parse(&f, bad[i]) == LETHE_ERR_ARG, "%s accepted", bad[i]);
        CHECK(strstr(lethe_last_error(), "expected a fraction or percentage") != NULL);
    }
    /* Decimal forms, exponents included, still parse. */
    CHECK_OK(lethe_forget_parse(&f, "random:32%"));
    CHECK_NEAR(f.fraction, 0.32, 1e-15);
    CHECK_OK(lethe_forget_parse(&f, "random:2.5e-1"));
    CHECK(f.fraction == 0.25);
    CHECK_OK(lethe_forget_parse(&f, "random:+.5E0"));
    CHECK(f.fraction == 0.5);
}

/* fuzz_tuned, corpus regress_real_beyond_u64: {"lr": 0.1e30} set lr, and
 * on the way converted 1e29 to uint64_t as well (undefined behaviour; only
 * the seed's slot reads that value). */
TEST(fuzz_regress_real_option_beyond_u64)
{
    lethe_unlearn_config c;
    lethe_unlearn_config_default(&c);
    CHECK_OK(lethe_unlearn_set_number(&c, "lr", 1e29));
    CHECK(c.lr == 1e29f);
    CHECK_OK(lethe_unlearn_set_number(&c, "seed", 12345));
    CHECK(c.seed == 12345u);
    /* Out of a slot's range: refused with the option named, nothing stored. */
    CHECK(lethe_unlearn_set_number(&c, "seed", 1e29) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "seed") != NULL);
    CHECK(c.seed == 12345u);
    CHECK(lethe_unlearn_set_number(&c, "lr", 1e300) == LETHE_ERR_ARG);
    CHECK(c.lr == 1e29f);
}
