/* lethe_init: the process-wide thread settings are made there, once, and
 * nowhere else (creating a model leaves OpenBLAS as the caller set it). */
#include "test.h"

#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lethe.h"

TEST(init_refuses_negative_threads)
{
    CHECK(lethe_init(-1) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "lethe_init: -1 threads") != NULL);
}

TEST(init_sets_the_thread_pools_and_model_create_does_not)
{
    /* openblas_get_parallel: 1 = pthreads, the build where it matters. */
    if (openblas_get_parallel() != 1) {
        fprintf(stderr, "    skipped: OpenBLAS is not the pthreads build (nothing to set)\n");
        return;
    }
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(2);
    if (openblas_get_num_threads() != 2) {
        fprintf(stderr, "    skipped: OpenBLAS cannot run 2 threads here\n");
        openblas_set_num_threads(saved);
        return;
    }
    lethe_model *m = NULL;
    CHECK_OK(lethe_model_create(&m, "mlp", 1, 8, 8, 2));
    CHECK_MSG(openblas_get_num_threads() == 2,
              "lethe_model_create changed OpenBLAS's threads to %d", openblas_get_num_threads());
    lethe_model_free(m);
    CHECK_OK(lethe_init(0));
    CHECK(openblas_get_num_threads() == 1);
#ifdef _OPENMP
    int omp = omp_get_max_threads();
    CHECK_OK(lethe_init(3));
    CHECK(omp_get_max_threads() == 3 && openblas_get_num_threads() == 1);
    omp_set_num_threads(omp);
#endif
    CHECK_OK(lethe_init(0));   /* as the runner left it */
}
