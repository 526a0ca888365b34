/* lethe_init: the process-wide thread settings are made there, once, and
 * nowhere else (creating a model leaves OpenBLAS as the caller set it). */
#include "test.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli_util.h"
#include "core/blas.h"
#include "lethe.h"
#include "nn/kernels.h"

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

/* OpenBLAS 0.3.21 falls back to Prescott (SSE3) on CPUs it does not know;
 * core_blas_pick names the widest core the CPU runs then, and only then. */
TEST(blas_core_pick_replaces_only_a_fallback)
{
    const unsigned avx = CORE_CPU_AVX, avx2 = avx | CORE_CPU_AVX2, all = avx2 | CORE_CPU_AVX512;
    const struct { const char *detected; unsigned cpu; const char *want; } cases[] = {
        {"Prescott", all, "SkylakeX"},     /* a Xeon, family 6 model 207 */
        {"PRESCOTT", avx2, "Haswell"},     /* OpenBLAS's names, any case */
        {"Core2", avx2, "Haswell"},
        {"Nehalem", avx, "Sandybridge"},
        {"Barcelona", avx2, "Haswell"},    /* an AMD model it does not know */
        {"Sandybridge", all, "SkylakeX"},  /* AVX kernels on an AVX2 CPU */
        {"Sandybridge", avx, NULL},        /* right for an AVX-only CPU */
        {"Prescott", 0, NULL},             /* right for an SSE-only CPU */
        {"Haswell", all, NULL},            /* an AVX2 choice stands: */
        {"Zen", all, NULL},                /* Zen 4 runs AVX-512, yet OpenBLAS's pick is kept */
        {"SkylakeX", all, NULL},
        {"Cooperlake", all, NULL},
        {"SapphireRapids", all, NULL},
        {NULL, all, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = core_blas_pick(cases[i].detected, cases[i].cpu);
        CHECK_MSG(cases[i].want ? got && strcmp(got, cases[i].want) == 0 : got == NULL,
                  "%s on cpu %u: %s, want %s", cases[i].detected ? cases[i].detected : "NULL",
                  cases[i].cpu, got ? got : "NULL", cases[i].want ? cases[i].want : "NULL");
    }
}

/* After lethe_init (the runner's), OpenBLAS runs kernels this CPU has no
 * wider ones for: on a CPU OpenBLAS 0.3.21 does not know, this fails
 * without core_blas_fix (Prescott on an AVX-512 Xeon). */
TEST(blas_core_after_init_fits_the_cpu)
{
    if (getenv("OPENBLAS_CORETYPE")) {
        test_skip("OPENBLAS_CORETYPE is set: the user's choice stands");
        return;
    }
    if (strncmp(core_blas_note(), "OpenBLAS chose", 14) == 0) {
        test_skip("this OpenBLAS cannot switch its kernels: %s", core_blas_note());
        return;
    }
    const char *core = openblas_get_corename(), *wider = core_blas_pick(core, core_cpu_features());
    CHECK_MSG(wider == NULL, "OpenBLAS runs %s kernels after lethe_init on a CPU that runs %s",
              core, wider ? wider : "");
    CHECK_OK(lethe_init(0));   /* a second call changes nothing */
    CHECK(strcmp(openblas_get_corename(), core) == 0);
}

/* At the command line: `lethe info --system` names OpenBLAS's kernels, and
 * OPENBLAS_CORETYPE set by the user wins over the correction. */
TEST(blas_core_cli_keeps_the_users_choice)
{
    if (!cli_t_have_bin() || !cli_t_mkdir("blas")) return;
    char *o = NULL, *e = NULL, saved[64] = "";
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (env) snprintf(saved, sizeof saved, "%s", env);
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    int rc = cli_t_run("blas", "info --system", &o, &e);
    const char *out = o ? o : "";
    CHECK_MSG(rc == 0 && strstr(out, "BLAS      OpenBLAS, Prescott kernels") &&
              !strstr(out, "switched"), "OPENBLAS_CORETYPE=Prescott: exit %d: %s", rc, out);
    free(o);
    free(e);
    unsetenv("OPENBLAS_CORETYPE");
    rc = cli_t_run("blas", "info --system", &o, &e);
    out = o ? o : "";
    char core[32] = "";
    const char *at = strstr(out, "BLAS      OpenBLAS, ");
    CHECK_MSG(rc == 0 && at && sscanf(at, "BLAS      OpenBLAS, %31s kernels", core) == 1,
              "info --system: exit %d: %s", rc, out);
    const char *wider = core_blas_pick(core, core_cpu_features());
    CHECK_MSG(wider == NULL || strstr(out, "OpenBLAS chose"),
              "lethe runs OpenBLAS's %s kernels on a CPU that runs %s: %s", core, wider, out);
    free(o);
    free(e);
    if (*saved) setenv("OPENBLAS_CORETYPE", saved, 1);
}

/* lethe_compute_info: the same facts as `lethe info --system`, on one line:
 * the active kernel set, OpenBLAS's core as it runs now, and the switch
 * when lethe_init made one. */
TEST(compute_info_names_the_kernels_and_blas_core)
{
    CHECK_OK(lethe_init(0));
    const char *info = lethe_compute_info();
    char want[160];
    snprintf(want, sizeof want, "kernels %s (", nn_kernels_active());
    CHECK_MSG(strncmp(info, want, strlen(want)) == 0, "'%s' does not start with '%s'", info, want);
    snprintf(want, sizeof want, "; OpenBLAS %s kernels, ", openblas_get_corename());
    CHECK_MSG(strstr(info, want) != NULL, "'%s' lacks '%s'", info, want);
    const char *note = core_blas_note();
    CHECK_MSG(!*note || strstr(info, note) != NULL, "'%s' lacks the switch '%s'", info, note);
    CHECK_MSG(!strchr(info, '\n'), "'%s': more than one line", info);
}
