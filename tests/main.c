/* Test runner: runs every registered test (or those whose name contains
 * argv[1]) and ends with the line "N passed, N failed". */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lethe.h"

#define MAX_TESTS 1024

typedef struct { const char *name, *file; test_fn fn; } test_entry;
static test_entry tests[MAX_TESTS];
static int ntests;
static int current_failed;
static char tmpdir[256];

void test_register(const char *name, const char *file, test_fn fn)
{
    if (ntests < MAX_TESTS) {
        tests[ntests].name = name;
        tests[ntests].file = file;
        tests[ntests].fn = fn;
        ntests++;
    }
}

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
    int passed = 0, failed = 0;
    for (int i = 0; i < ntests; i++) {
        if (filter && !strstr(tests[i].name, filter) && !strstr(tests[i].file, filter))
            continue;
        current_failed = 0;
        fprintf(stderr, "%-48s ", tests[i].name);
        tests[i].fn();
        if (current_failed) {
            fprintf(stderr, "FAIL (%d)\n", current_failed);
            failed++;
        } else {
            fprintf(stderr, "ok\n");
            passed++;
        }
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
