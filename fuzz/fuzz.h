/*
 * Shared pieces of the libFuzzer harnesses (fuzz/fuzz_*.c): scratch files
 * for parsers that read from a path, and a property check that aborts (so
 * libFuzzer saves the input) when a parser accepts something it should not.
 * Header-only: every fuzz/fuzz_NAME.c is its own harness binary.
 */
#ifndef LETHE_FUZZ_H
#define LETHE_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lethe.h"

/* A parser accepted an input that breaks a documented property. */
#define FUZZ_CHECK(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__,        \
                    __LINE__, #cond);                                           \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* "$TMPDIR/lethe-fuzz-NAME-PID" in buf (one per process, so parallel
 * fuzzers never share scratch files). */
static inline const char *fuzz_scratch(char *buf, size_t cap, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(buf, cap, "%s/lethe-fuzz-%s-%ld", dir && *dir ? dir : "/tmp", name,
             (long)getpid());
    return buf;
}

/* Write n bytes to path (replacing it); aborts if the disk refuses, since a
 * harness that silently fed a stale file would report nonsense. */
static inline void fuzz_write(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

#endif
