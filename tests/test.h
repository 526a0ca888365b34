/* A tiny test harness: TEST(name) { ... } registers itself; CHECK(...)
 * records a failure and goes on; test_skip(...) says why a test cannot run
 * here; the runner prints "N passed, N failed, N skipped" and exits 1 on
 * any failure. TEST_KSETS(name) registers a test of the layer kernels that
 * runs once per kernel set of the build (src/nn/kernels.h), as
 * name[avx512], name[avx2], name[generic], each with its set active; a set
 * this CPU cannot run is reported as skipped. */
#ifndef LETHE_TEST_H
#define LETHE_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, const char *file, test_fn fn);
void test_register_ksets(const char *name, const char *file, test_fn fn);
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The current test cannot run here (a tool, a device, an instruction set
 * is missing): it counts as skipped, not passed, unless a check failed.
 * The caller returns after it. */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Under ASan, skips the test (saying why and that `make test` runs it)
 * and returns 1, unless the environment variable `env` is set: for runs
 * that take minutes there. Returns 0 (run it) in the plain build. */
int test_skip_under_asan(const char *env, const char *what);
/* The kernel set a TEST_KSETS test runs with (NULL in a plain TEST). */
const char *test_kset(void);
/* Directory for scratch files of this run (created by the runner). */
const char *test_tmpdir(void);
/* Path of `name` inside test_tmpdir() (static buffer ring of 8). */
const char *test_path(const char *name);
/* Path of a committed fixture under tests/data/. */
const char *test_data(const char *name);

#define TEST(name)                                                         \
    static void test_##name(void);                                         \
    __attribute__((constructor)) static void register_##name(void)         \
    {                                                                      \
        test_register(#name, __FILE__, test_##name);                       \
    }                                                                      \
    static void test_##name(void)

#define TEST_KSETS(name)                                                   \
    static void test_##name(void);                                         \
    __attribute__((constructor)) static void register_##name(void)         \
    {                                                                      \
        test_register_ksets(#name, __FILE__, test_##name);                 \
    }                                                                      \
    static void test_##name(void)

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);    \
    } while (0)

#define CHECK_MSG(cond, ...)                                               \
    do {                                                                   \
        if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__);           \
    } while (0)

/* |a − b| ≤ tol (absolute). */
#define CHECK_NEAR(a, b, tol)                                              \
    do {                                                                   \
        double a_ = (a), b_ = (b);                                         \
        if (!(fabs(a_ - b_) <= (tol)))                                     \
            test_fail(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, tol %g",  \
                      #a, a_, #b, b_, (double)(tol));                      \
    } while (0)

/* expr returns `status` and the last error holds `needle`. */
#define CHECK_FAILS(expr, status, needle)                                  \
    do {                                                                   \
        lethe_status s_ = (expr);                                          \
        const char *e_ = lethe_last_error();                               \
        if (s_ != (status) || !strstr(e_, (needle)))                       \
            test_fail(__FILE__, __LINE__, "%s -> %s (%s), expected %s with '%s'", \
                      #expr, lethe_status_to_string(s_), e_,               \
                      lethe_status_to_string(status), (needle));           \
    } while (0)

#define CHECK_OK(expr)                                                     \
    do {                                                                   \
        lethe_status s_ = (expr);                                          \
        if (s_ != LETHE_OK)                                                \
            test_fail(__FILE__, __LINE__, "%s -> %s: %s", #expr,           \
                      lethe_status_to_string(s_), lethe_last_error());     \
    } while (0)

#endif
