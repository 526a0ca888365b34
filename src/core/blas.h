/*
 * OpenBLAS's kernels for this CPU. OpenBLAS picks its kernels (a "core")
 * when it loads, from the CPU's family and model. Releases before 0.3.25
 * (Debian 12 ships 0.3.21) do not know some newer Intel models (an
 * Emerald Rapids Xeon, a 13th-gen Core) and fall back to Prescott: SSE3 kernels
 * on a CPU with AVX-512, every product about twice as slow (measured:
 * resnet20's step 917 ms → 456 ms on one thread of a Xeon, family 6 model
 * 207). lethe_init corrects that choice, once, before any product runs:
 * internal, hidden like core/fail.h.
 */
#ifndef LETHE_CORE_BLAS_H
#define LETHE_CORE_BLAS_H

/* What the CPU (and the OS, for the wide registers) can run. */
enum {
    CORE_CPU_AVX = 1,      /* AVX */
    CORE_CPU_AVX2 = 2,     /* AVX2 and FMA3: OpenBLAS's Haswell kernels */
    CORE_CPU_AVX512 = 4,   /* AVX-512 F, CD, BW, DQ, VL: its SkylakeX kernels */
};

__attribute__((visibility("hidden"))) unsigned core_cpu_features(void);

/* The core to run instead of `detected` (OpenBLAS's name for its choice)
 * on a CPU with `cpu` (CORE_CPU_*): the widest this CPU runs when
 * OpenBLAS fell back to SSE-only kernels, or to AVX ones on an AVX2 CPU;
 * NULL to keep its choice. Pure, so that tests can drive it. */
__attribute__((visibility("hidden")))
const char *core_blas_pick(const char *detected, unsigned cpu);

/* Switch OpenBLAS to core_blas_pick's core when it says so, unless
 * OPENBLAS_CORETYPE is set (the user's choice stands). Call before any
 * product runs; later calls do nothing. */
__attribute__((visibility("hidden"))) void core_blas_fix(void);

/* How OpenBLAS runs its threads: "sequential", "pthreads" or "OpenMP". */
__attribute__((visibility("hidden"))) const char *core_blas_threading(void);

/* "" when OpenBLAS's own choice stands, else one line saying what was
 * switched (or what to set, where this OpenBLAS cannot switch). */
__attribute__((visibility("hidden"))) const char *core_blas_note(void);

#endif
