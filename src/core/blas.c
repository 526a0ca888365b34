/* Correcting OpenBLAS's choice of kernels (core/blas.h says why). */
#include "core/blas.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A DYNAMIC_ARCH OpenBLAS (Debian's) exports these two: quit forgets the
 * core, init picks one again, from OPENBLAS_CORETYPE when it is set, just
 * as when the library loads. Weak, so that a build without them links and
 * falls back to advice. */
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

unsigned core_cpu_features(void)
{
    unsigned f = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    /* libgcc's checks include the OS's support of the wide registers. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx")) f |= CORE_CPU_AVX;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) f |= CORE_CPU_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        f |= CORE_CPU_AVX512;
#endif
    return f;
}

/* OpenBLAS's x86 cores whose kernels use no AVX: its fallbacks for models
 * it does not know. */
static const char *const sse_cores[] = {
    "Unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2",
    "Penryn", "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano",
};

const char *core_blas_pick(const char *detected, unsigned cpu)
{
    if (!detected) return NULL;
    int sse = 0;
    for (size_t i = 0; i < sizeof sse_cores / sizeof *sse_cores && !sse; i++)
        sse = strcasecmp(detected, sse_cores[i]) == 0;
    const char *best = (cpu & CORE_CPU_AVX512) && (cpu & CORE_CPU_AVX2) ? "SkylakeX"
                       : (cpu & CORE_CPU_AVX2)                           ? "Haswell"
                       : (cpu & CORE_CPU_AVX)                            ? "Sandybridge"
                                                                         : NULL;
    if (sse) return best;
    /* An AVX2 CPU given AVX-only kernels: the same fallback, one step up. */
    if (strcasecmp(detected, "Sandybridge") == 0 && (cpu & CORE_CPU_AVX2)) return best;
    return NULL;
}

static char note[192];

void core_blas_fix(void)
{
    static int done;
    if (done) return;
    done = 1;
    if (getenv("OPENBLAS_CORETYPE")) return;
    char was[32];   /* a copy: the switch changes what the name points to */
    snprintf(was, sizeof was, "%s", openblas_get_corename());
    const char *want = core_blas_pick(was, core_cpu_features());
    if (!want) return;
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit) {
        snprintf(note, sizeof note, "OpenBLAS chose %s kernels on a CPU that runs %s ones; "
                 "OPENBLAS_CORETYPE=%s makes it use them", was, want, want);
        return;
    }
    setenv("OPENBLAS_CORETYPE", want, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
    snprintf(note, sizeof note, "OpenBLAS detected %s on this CPU; Lethe switched it to %s "
             "(OPENBLAS_CORETYPE set by the user is kept)", was, openblas_get_corename());
}

const char *core_blas_note(void) { return note; }

const char *core_blas_threading(void)
{
    /* openblas_get_parallel: 0 sequential, 1 pthreads, 2 OpenMP. */
    const int par = openblas_get_parallel();
    return par == 0 ? "sequential" : par == 1 ? "pthreads" : "OpenMP";
}
