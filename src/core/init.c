/*
 * Process-wide set-up (lethe_init): the thread pools. Lethe splits its
 * kernels over OpenMP threads, each of which calls sgemm; a pthreads
 * OpenBLAS must then run single-threaded, or its threads and libgomp's
 * fight over the same cores (measured 2-4x slower on 2 cores). OpenBLAS has
 * no per-call setting, so this is a process-wide choice, made here once by
 * the caller rather than as a side effect of creating a model. An OpenMP
 * OpenBLAS needs nothing: it runs serially inside a parallel region.
 */
#include "lethe.h"
#include "core/blas.h"
#include "core/fail.h"
#include "nn/kernels.h"

#include <cblas.h>
#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
#endif

lethe_status lethe_init(int threads)
{
    if (threads < 0)
        return lethe_fail(LETHE_ERR_ARG, "lethe_init: %d threads (0: OpenMP's default, "
                          "OMP_NUM_THREADS or every core)", threads);
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#else
    if (threads > 1)
        return lethe_fail(LETHE_ERR_ARG, "lethe_init: %d threads asked of a build without "
                          "OpenMP (one thread)", threads);
#endif
    /* Before any product: OpenBLAS's kernels for this CPU (core/blas.h). */
    core_blas_fix();
    /* openblas_get_parallel: 0 sequential, 1 pthreads, 2 OpenMP. */
    if (openblas_get_parallel() == 1 && openblas_get_num_threads() > 1)
        openblas_set_num_threads(1);
    return LETHE_OK;
}

const char *lethe_compute_info(void)
{
    static _Thread_local char line[640];
    nn_kernels_init();   /* idempotent: the set lethe_init's first kernel call would take */
#ifdef _OPENMP
    const int nt = omp_get_max_threads();
#else
    const int nt = 1;
#endif
    const int bt = openblas_get_num_threads();
    const char *note = core_blas_note();
    snprintf(line, sizeof line,
             "kernels %s (%s); %d OpenMP thread%s; OpenBLAS %s kernels, %s, %d thread%s of its "
             "own%s%s",
             nn_kernels_active(), nn_kernels_reason(), nt, nt == 1 ? "" : "s",
             openblas_get_corename(), core_blas_threading(), bt, bt == 1 ? "" : "s",
             *note ? "; " : "", note);
    return line;
}
