/*
 * bench_unlearn: wall-clock cost of one unlearning step per method, on the
 * same data and step count, against UNGrad's `mixed` form (the way
 * autograd code runs explicit surgery: two backward passes over the mixed
 * batch). ALGORITHM.md §3 predicts from pass counts: EUPMU-fast 0.6,
 * EUPMU 0.7, grouped UNGrad 0.6.
 *
 *     build/bench/bench_unlearn [--arch cnn] [--steps 30] [--runs 5] [--data-dir DIR]
 *
 * Uses Fashion-MNIST (class 0 forgotten) and a freshly initialised model:
 * the cost of a step does not depend on the weights.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xmmintrin.h>
#include <pmmintrin.h>

#include "lethe.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *arch = "cnn", *dir = NULL;
    int steps = 30, runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--arch")) arch = argv[i + 1];
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--data-dir")) dir = argv[i + 1];
    }
    if (steps < 1 || runs < 1 || runs > 51) {
        fprintf(stderr, "bench_unlearn: bad arguments\n");
        return 2;
    }
    if (lethe_init(0) != LETHE_OK) {
        fprintf(stderr, "bench_unlearn: %s\n", lethe_last_error());
        return 2;
    }
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
    lethe_dataset ds;
    lethe_forget_spec spec;
    lethe_subset f, r;
    lethe_model *m0, *m;
    if (lethe_dataset_load(&ds, "fmnist", dir, 1) != LETHE_OK ||
        lethe_forget_parse(&spec, "class:0") != LETHE_OK ||
        lethe_forget_split(&spec, &ds, 0, &f, &r) != LETHE_OK ||
        lethe_model_create(&m0, arch, 1, 28, 28, 10) != LETHE_OK ||
        lethe_model_create(&m, arch, 1, 28, 28, 10) != LETHE_OK) {
        fprintf(stderr, "bench_unlearn: %s\n", lethe_last_error());
        return 1;
    }
    lethe_rng rng;
    lethe_rng_seed(&rng, 0);
    lethe_model_init(m0, &rng);

    static const char *methods[] = {"ungrad-mixed", "ungrad", "eupmu-fast", "eupmu",
                                    "eupmu-lookahead", "rl", "ft"};
    static const double predicted[] = {1.0, 0.6, 0.6, 0.7, 0.7, 0.6, 0.3};
    const int nm = (int)(sizeof methods / sizeof methods[0]);
    double med[16];
    printf("%s, batch 128 + 128, %d steps per run, %d runs (median, min–max)\n\n", arch, steps,
           runs);
    printf("%-16s %10s %16s %8s %10s %12s\n", "method", "ms/step", "range", "passes",
           "vs mixed", "predicted");
    for (int k = 0; k < nm; k++) {
        double t[51];
        long fs = 0, bs = 0;
        for (int i = -1; i < runs; i++) {
            lethe_model_copy(m, m0);
            lethe_unlearn_config cfg;
            lethe_unlearn_config_default(&cfg);
            cfg.method = methods[k];
            cfg.steps = steps;
            cfg.lr = 0.01f;
            lethe_unlearn_result res;
            if (lethe_unlearn(m, &ds, &f, &r, &cfg, &res, NULL, NULL) != LETHE_OK) {
                fprintf(stderr, "bench_unlearn: %s: %s\n", methods[k], lethe_last_error());
                return 1;
            }
            if (i >= 0) t[i] = res.seconds / steps;
            fs = res.fwd_samples;
            bs = res.bwd_samples;
            lethe_unlearn_result_free(&res);
        }
        qsort(t, (size_t)runs, sizeof(double), cmp_d);
        med[k] = t[runs / 2];
        char range[40], passes[32];
        snprintf(range, sizeof range, "%.1f–%.1f", t[0] * 1e3, t[runs - 1] * 1e3);
        snprintf(passes, sizeof passes, "%.0fF+%.0fB", fs / 128.0 / steps, bs / 128.0 / steps);
        printf("%-16s %10.2f %16s %8s %10.3f %12.2f\n", methods[k], med[k] * 1e3, range, passes,
               med[k] / med[0], predicted[k]);
    }
    lethe_model_free(m);
    lethe_model_free(m0);
    lethe_subset_free(&f);
    lethe_subset_free(&r);
    lethe_dataset_free(&ds);
    return 0;
}
