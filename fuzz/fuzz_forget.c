/*
 * Fuzz the forget-spec parser and the index-file reader (src/data/forget.c).
 *
 * Input: one mode byte, then the payload.
 *   mode bit 0 = 0: the payload is a spec ("class:0,3", "random:10%", ...),
 *       given to lethe_forget_parse as a NUL-terminated copy. An accepted
 *       spec must print (lethe_forget_to_string) to text that parses back
 *       to the same spec; a random fraction must be written in decimal
 *       (forget.c rejects hex, inf and nan); class and random specs are
 *       then split over a small data set.
 *   mode bit 0 = 1: the payload is an index file, read by lethe_forget_split
 *       with "indices:FILE" over the same set, and compared with a
 *       reference reading of the documented format: one non-negative
 *       integer per line, '#' comments, blank lines skipped, and (being
 *       text) no NUL bytes anywhere.
 * Every split must be a partition of [0, N) into two increasing lists.
 * (Index files named by the spec itself are never opened: "indices:/dev/zero"
 * is the user's own choice of file, not untrusted input.)
 */
#include <ctype.h>
#include <math.h>

#include "fuzz.h"

#define NTRAIN 40
#define NTEST 20

static char path[512];
static uint8_t train_labels[NTRAIN], test_labels[NTEST];
static uint8_t pixels[NTRAIN];          /* unused by splits; 1×1×1 images */
static lethe_dataset train, test;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void cleanup(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_scratch(path, sizeof path, "forget.txt");
    atexit(cleanup);
    /* Labels 0..9 with class 9 absent from the test set (a tiny test set
     * may lack a class); nclass 12 so classes 10, 11 exist but are empty. */
    for (int i = 0; i < NTRAIN; i++) train_labels[i] = (uint8_t)(i % 10);
    for (int i = 0; i < NTEST; i++) test_labels[i] = (uint8_t)(i % 9);
    train = (lethe_dataset){.n = NTRAIN, .c = 1, .h = 1, .w = 1, .nclass = 12,
                            .pixels = pixels, .labels = train_labels, .name = "fuzz"};
    test = train;
    test.n = NTEST;
    test.labels = test_labels;
    return 0;
}

/* forget ∪ retain = [0, n), disjoint, each strictly increasing. */
static void check_partition(const lethe_subset *f, const lethe_subset *r, int n)
{
    FUZZ_CHECK(f->n + r->n == (size_t)n);
    size_t i = 0, j = 0;
    for (int k = 0; k < n; k++) {
        if (i < f->n && f->idx[i] == k) i++;
        else if (j < r->n && r->idx[j] == k) j++;
        else FUZZ_CHECK(!"index missing from both sides");
    }
}

static void split_and_check(const lethe_forget_spec *spec)
{
    lethe_subset f, r;
    if (lethe_forget_split(spec, &train, 7, &f, &r) == LETHE_OK) {
        check_partition(&f, &r, NTRAIN);
        FUZZ_CHECK(f.n > 0 && r.n > 0);
        if (spec->kind == LETHE_FORGET_RANDOM)
            FUZZ_CHECK((long long)f.n == llround(spec->fraction * NTRAIN));
        if (spec->kind == LETHE_FORGET_CLASS)
            for (size_t i = 0; i < f.n; i++)
                FUZZ_CHECK(spec->class_mask >> train_labels[f.idx[i]] & 1);
    }
    lethe_subset_free(&f);
    lethe_subset_free(&r);
    if (lethe_forget_split_test(spec, &test, &f, &r) == LETHE_OK)
        check_partition(&f, &r, NTEST);
    lethe_subset_free(&f);
    lethe_subset_free(&r);
}

static void fuzz_spec(const uint8_t *d, size_t n)
{
    char *text = malloc(n + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, d, n);
    text[n] = '\0';
    lethe_forget_spec spec, again;
    if (lethe_forget_parse(&spec, text) == LETHE_OK) {
        char printed[700];
        FUZZ_CHECK(lethe_forget_to_string(&spec, printed, sizeof printed) == LETHE_OK);
        FUZZ_CHECK(lethe_forget_parse(&again, printed) == LETHE_OK);
        FUZZ_CHECK(again.kind == spec.kind);
        switch (spec.kind) {
        case LETHE_FORGET_CLASS:
            /* Numbers only (a mask), or a list naming labels (kept as
             * written, resolved on a text set): either comes back as it was. */
            FUZZ_CHECK(spec.class_mask != 0 || spec.path[0] != '\0');
            FUZZ_CHECK(again.class_mask == spec.class_mask &&
                       strcmp(again.path, spec.path) == 0);
            break;
        case LETHE_FORGET_RANDOM: {
            FUZZ_CHECK(spec.fraction > 0 && spec.fraction < 1);
            FUZZ_CHECK(again.fraction == spec.fraction);
            const char *num = text + 7;     /* after "random:" */
            FUZZ_CHECK(strspn(num, "0123456789.+-eE%") == strlen(num));
            break;
        }
        case LETHE_FORGET_INDICES:
            FUZZ_CHECK(strcmp(again.path, spec.path) == 0);
            break;
        }
        if (spec.kind != LETHE_FORGET_INDICES) split_and_check(&spec);
    }
    free(text);
}

/* The reference reading of an index file: flags (NTRAIN) of the listed
 * indices; returns 0 if the file is valid (≥ 1 index, not all of them). */
static int reference_indices(const uint8_t *d, size_t n, uint8_t *flags)
{
    memset(flags, 0, NTRAIN);
    int found = 0;
    size_t pos = 0;
    while (pos < n) {
        size_t end = pos;
        while (end < n && d[end] != '\n') end++;
        size_t a = pos, b = end;                /* the line is d[a, b) */
        pos = end + 1;
        if (memchr(d + a, '\0', b - a)) return -1;    /* a text file has no NULs */
        for (size_t k = a; k < b; k++)
            if (d[k] == '#') { b = k; break; }
        while (a < b && isspace(d[a])) a++;
        while (b > a && isspace(d[b - 1])) b--;
        if (a == b) continue;
        unsigned long long v = 0;
        for (size_t k = a; k < b; k++) {
            if (!isdigit(d[k])) return -1;
            v = v * 10 + (d[k] - '0');
            if (v >= NTRAIN) return -1;         /* also stops overflow */
        }
        if (flags[v]) return -1;
        flags[v] = 1;
        found++;
    }
    return found == 0 || found == NTRAIN ? -1 : 0;
}

static void fuzz_index_file(const uint8_t *d, size_t n)
{
    fuzz_write(path, d, n);
    char text[600];
    snprintf(text, sizeof text, "indices:%s", path);
    lethe_forget_spec spec;
    FUZZ_CHECK(lethe_forget_parse(&spec, text) == LETHE_OK);
    uint8_t want[NTRAIN];
    int ok = reference_indices(d, n, want) == 0;
    lethe_subset f, r;
    lethe_status st = lethe_forget_split(&spec, &train, 7, &f, &r);
    FUZZ_CHECK((st == LETHE_OK) == ok);
    if (st == LETHE_OK) {
        check_partition(&f, &r, NTRAIN);
        size_t k = 0;
        for (int i = 0; i < NTRAIN; i++)
            if (want[i]) FUZZ_CHECK(k < f.n && f.idx[k++] == i);
        FUZZ_CHECK(k == f.n);
    }
    lethe_subset_free(&f);
    lethe_subset_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) return 0;
    if (data[0] & 1) fuzz_index_file(data + 1, size - 1);
    else fuzz_spec(data + 1, size - 1);
    return 0;
}
