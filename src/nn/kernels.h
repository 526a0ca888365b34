/*
 * Kernel sets: the layer kernels (layers.h) compiled for several
 * instruction sets, one chosen at run time.
 *
 * A portable build (the default on x86-64) compiles the library for any
 * x86-64 and the kernel files three times:
 *     avx512   -march=x86-64-v4 (AVX-512 F/BW/CD/DQ/VL, with AVX2 and FMA)
 *     avx2     -march=x86-64-v3 (AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE)
 *     generic  -march=x86-64 (SSE2)
 * and runs the first that the CPU supports, or the one that the
 * environment variable LETHE_KERNELS names (avx512, avx2, generic; auto or
 * empty: detect). A build with MARCH=… (e.g. make MARCH=native) compiles
 * everything for that architecture, as one set named "native".
 *
 * The plain-named kernels of layers.h call the active set's (kernels.c).
 * The sets compute the same sums; where they differ is the rounding of
 * fused multiply-adds (the direct kernel) and the lane count of vector
 * reductions, so results agree to float tolerance, not bitwise; with one
 * set a run is bitwise reproducible.
 */
#ifndef LETHE_NN_KERNELS_H
#define LETHE_NN_KERNELS_H

#include "lethe.h"

/* Choose the active set, once per process (later calls return the first
 * call's status): LETHE_KERNELS if set, else the first set this CPU runs.
 * A name this build lacks, or a set this CPU cannot run, is refused with
 * LETHE_ERR_ARG and a message naming the sets it can run; the detected set
 * stays active then, so a kernel called anyway runs safely. Thread-safe;
 * lethe_model_create calls it. */
lethe_status nn_kernels_init(void);

/* The sets of this build, in order of preference: count, and set i's name
 * and what it needs ("AVX2, FMA, … (x86-64-v3)"). */
int nn_kernels_count(void);
const char *nn_kernels_name(int i);
const char *nn_kernels_needs(int i);
/* 1 when this CPU runs set i. */
int nn_kernels_usable(int i);

/* The active set's name, and why it is active (a phrase: "detected: …",
 * "forced by LETHE_KERNELS=avx2", "the one set of a MARCH=native build"). */
const char *nn_kernels_active(void);
const char *nn_kernels_reason(void);
/* How this build was compiled: "portable (…)" or "MARCH=native". */
const char *nn_kernels_build(void);

/* Make the set `name` active (tests and benchmarks that compare sets):
 * LETHE_ERR_NOTFOUND if this build has no such set, LETHE_ERR_ARG if this
 * CPU cannot run it (the active set is then unchanged). Not thread-safe:
 * call it while no kernel runs. Workspace sizes are the same in every set,
 * so a model reserved under one set runs under another. */
lethe_status nn_kernels_use(const char *name);

#endif
