/* Test runner: runs every registered test (or those whose name contains
 * argv[1]) and ends with the line "N passed, N failed, N skipped". A
 * TEST_KSETS test runs once per kernel set, each with its set active, the
 * set that was active restored after it. */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lethe.h"
#include "nn/kernels.h"

#define MAX_TESTS 1024
#define MAX_RUNS 2048

/* A registered test; ksets: once per kernel set. */
typedef struct { const char *name, *file; test_fn fn; int ksets; } test_entry;
static test_entry tests[MAX_TESTS];
static int ntests;
static int current_failed, current_skipped;
static char skip_why[256];
static const char *current_kset;
static char tmpdir[256];

static void add(const char *name, const char *file, test_fn fn, int ksets)
{
    if (ntests < MAX_TESTS) tests[ntests++] = (test_entry){name, file, fn, ksets};
}

void test_register(const char *name, const char *file, test_fn fn) { add(name, file, fn, 0); }

void test_register_ksets(const char *name, const char *file, test_fn fn)
{
    add(name, file, fn, 1);
}

void test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(skip_why, sizeof skip_why, fmt, ap);
    va_end(ap);
    current_skipped = 1;
}

int test_skip_under_asan(const char *env, const char *what)
{
#ifdef __SANITIZE_ADDRESS__
    if (!getenv(env)) {
        test_skip("%s take minutes under ASan: make test runs them (%s=1 runs them here)", what,
                  env);
        return 1;
    }
#else
    (void)env;
    (void)what;
#endif
    return 0;
}

const char *test_kset(void) { return current_kset; }

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    current_failed++;
}

const char *test_tmpdir(void) { return tmpdir; }

const char *test_path(const char *name)
{
    static char ring[8][512];
    static int k;
    char *p = ring[k++ & 7];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

const char *test_data(const char *name)
{
    static char ring[8][512];
    static int k;
    char *p = ring[k++ & 7];
    const char *root = getenv("LETHE_TEST_DATA");
    snprintf(p, 512, "%s/%s", root ? root : "tests/data", name);
    return p;
}

static int cmp_tests(const void *a, const void *b)
{
    const test_entry *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    if (lethe_init(0) != LETHE_OK) {
        fprintf(stderr, "lethe_init: %s\n", lethe_last_error());
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lethe-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    qsort(tests, (size_t)ntests, sizeof tests[0], cmp_tests);
    /* The runs: a test, or a TEST_KSETS test with each set (kset ≥ 0). */
    static struct { const test_entry *t; int kset; char name[96]; } runs[MAX_RUNS];
    int nruns = 0;
    for (int i = 0; i < ntests; i++)
        for (int k = 0; k < (tests[i].ksets ? nn_kernels_count() : 1) && nruns < MAX_RUNS; k++) {
            runs[nruns].t = &tests[i];
            runs[nruns].kset = tests[i].ksets ? k : -1;
            if (tests[i].ksets)
                snprintf(runs[nruns].name, sizeof runs[nruns].name, "%s[%s]", tests[i].name,
                         nn_kernels_name(k));
            else
                snprintf(runs[nruns].name, sizeof runs[nruns].name, "%s", tests[i].name);
            nruns++;
        }
    int passed = 0, failed = 0, skipped = 0;
    static double took[MAX_RUNS]; /* wall seconds per run, -1 when filtered out */
    double total = 0;
    for (int i = 0; i < nruns; i++) {
        took[i] = -1;
        const test_entry *t = runs[i].t;
        if (filter && !strstr(runs[i].name, filter) && !strstr(t->file, filter)) continue;
        current_failed = current_skipped = 0;
        current_kset = NULL;
        fprintf(stderr, "%-48s ", runs[i].name);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        const int k = runs[i].kset;
        char before[32];
        snprintf(before, sizeof before, "%s", nn_kernels_active());
        if (k >= 0 && !nn_kernels_usable(k)) {
            test_skip("this CPU cannot run the %s kernels (%s)", nn_kernels_name(k),
                      nn_kernels_needs(k));
        } else if (k >= 0 && nn_kernels_use(nn_kernels_name(k)) != LETHE_OK) {
            test_fail(t->file, 0, "kernel set %s: %s", nn_kernels_name(k), lethe_last_error());
        } else {
            current_kset = k >= 0 ? nn_kernels_name(k) : NULL;
            t->fn();
            if (k >= 0 && nn_kernels_use(before) != LETHE_OK)
                test_fail(t->file, 0, "kernel set %s: %s", before, lethe_last_error());
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        took[i] = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        total += took[i];
        /* The time shows on runs of a second or more: what CI's budget is spent on. */
        if (took[i] >= 1.0) fprintf(stderr, "[%.1f s] ", took[i]);
        if (current_failed) {
            fprintf(stderr, "FAIL (%d)\n", current_failed);
            failed++;
        } else if (current_skipped) {
            fprintf(stderr, "SKIPPED: %s\n", skip_why);
            skipped++;
        } else {
            fprintf(stderr, "ok\n");
            passed++;
        }
    }
    /* The five slowest runs, so a suite grown too long shows where. */
    fprintf(stderr, "%.0f s in all; slowest:", total);
    for (int r = 0; r < 5; r++) {
        int best = -1;
        for (int i = 0; i < nruns; i++)
            if (took[i] >= 0 && (best < 0 || took[i] > took[best])) best = i;
        if (best < 0) break;
        fprintf(stderr, "%s %s %.1f s", r ? "," : "", runs[best].name, took[best]);
        took[best] = -1;
    }
    fprintf(stderr, "\n");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
