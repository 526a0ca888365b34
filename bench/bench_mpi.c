/*
 * bench_mpi: the step time of data-parallel training (issue 18, README
 * "Across machines"): one process with NP threads against NP ranks under
 * mpirun with one thread each, the same global batch, on this machine.
 *
 *     build/bench/bench_mpi [--arch cnn] [--batch 128] [--runs 5] [--iters 10] [--np 2]
 *         [--mpirun "mpirun --oversubscribe --allow-run-as-root --bind-to none"]
 *
 * Without a launcher it is the driver: it starts, alternately (so that a
 * change in the machine's load hits both alike), `OMP_NUM_THREADS=NP
 * bench_mpi --worker …` and `OMP_NUM_THREADS=1 MPIRUN -np NP bench_mpi
 * --worker …`, `runs` times each, and prints each configuration's median
 * (min–max) milliseconds per step and the ratio of the medians (ranks /
 * threads: below 1.15 is the target). Extra environment (e.g.
 * OMP_WAIT_POLICY=passive) reaches both configurations alike.
 *
 * --worker: one run: `iters` training steps after two to warm up, each the
 * step of `lethe train` (src/train/train.c): this rank's rows of the
 * global batch forward (batch norm's statistics over every rank), cross
 * entropy weighted 1/B, backward, one in-place all-reduce of the gradient,
 * SGD with momentum and weight decay. Rank 0 prints "step_ms X sum_ms Y
 * wait_ms Z": Y the time in the gradient's sum, Z (with BENCH_MPI_BARRIER=1
 * in the environment, a barrier before the sum) the time waiting for the
 * other ranks, so that Y is the exchange alone. Inputs are random images
 * of (1, 28, 28), or (3, 32, 32) for resnet20/resnet18.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lethe.h"
#include "core/dist.h"
#include "core/loop.h"

#define MAX_RUNS 50

/* v (n) in increasing order (n is a few runs). */
static void sort_runs(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

/* One configuration's run: ms per training step on rank 0. */
static int worker(const char *arch, int B, int iters)
{
    const int rgb = strcmp(arch, "resnet20") == 0 || strcmp(arch, "resnet18") == 0;
    const int C = rgb ? 3 : 1, HW = rgb ? 32 : 28;
    const size_t px = (size_t)C * HW * HW;
    long lo, hi;
    core_dist_shard(B, &lo, &hi);
    const int nl = (int)(hi - lo);
    /* Every rank the same θ_0 and images: the seed's. */
    lethe_rng rng;
    lethe_rng_seed(&rng, 0);
    lethe_model *m = NULL;
    lethe_status st = lethe_model_create(&m, arch, C, HW, HW, 10);
    if (st == LETHE_OK) st = lethe_model_reserve(m, nl);
    if (st != LETHE_OK) {
        fprintf(stderr, "bench_mpi: %s\n", lethe_last_error());
        return 1;
    }
    lethe_model_init(m, &rng);
    size_t n;
    float *theta = lethe_model_theta(m, &n), *grad = lethe_model_grad(m, NULL);
    float *x = malloc((size_t)B * px * sizeof(float));         /* (B, C, HW, HW) */
    int32_t *y = malloc((size_t)B * sizeof(int32_t));           /* (B) */
    float *dl = malloc((size_t)B * 10 * sizeof(float));         /* (B, 10) */
    float *ls = malloc((size_t)B * sizeof(float));
    float *w = malloc((size_t)B * sizeof(float));
    lethe_optim opt;
    if (!x || !y || !dl || !ls || !w || lethe_optim_init(&opt, LETHE_OPT_SGD, n) != LETHE_OK) {
        fprintf(stderr, "bench_mpi: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < (size_t)B * px; i++)
        x[i] = (float)(lethe_rng_next(&rng) >> 40) / (float)(1 << 24) - 0.5f;
    for (int i = 0; i < B; i++) {
        y[i] = i % 10;
        w[i] = 1.0f / (float)B;
    }
    opt.momentum = 0.9f;
    opt.weight_decay = 5e-4f;
    const float *logits;
    float *gs[1] = {grad};
    double t0 = 0.0, in_sum = 0.0, in_wait = 0.0;
    for (int it = -2; it < iters; it++) {   /* two to warm up */
        if (it == 0) t0 = core_now();
        lethe_model_forward(m, x + (size_t)lo * px, nl, NULL, LETHE_BN_TRAIN, &logits);
        memset(dl, 0, (size_t)nl * 10 * sizeof(float));
        lethe_loss(LETHE_LOSS_CE, ls, dl, logits, y + lo, w, nl, 10);
        lethe_vec_zero(grad, n);
        lethe_model_backward(m, dl, NULL, gs);
        double tw = core_now();
        if (getenv("BENCH_MPI_BARRIER")) core_dist_any(0);   /* the wait apart */
        double ts = core_now();
        core_dist_sum_f(grad, n);
        if (it >= 0) in_sum += core_now() - ts, in_wait += ts - tw;
        lethe_optim_step(&opt, theta, grad, NULL, 1e-3f);
    }
    double ms = 1e3 * (core_now() - t0) / iters;
    if (core_dist_root())
        printf("step_ms %.3f sum_ms %.3f wait_ms %.3f\n", ms, 1e3 * in_sum / iters,
               1e3 * in_wait / iters);
    lethe_optim_free(&opt);
    lethe_model_free(m);
    free(x);
    free(y);
    free(dl);
    free(ls);
    free(w);
    return 0;
}

/* Run a worker through the shell; its ms per step, or −1; *sum its ms per
 * step in the gradient's all-reduce (waiting for the other ranks included). */
static double run_one(const char *cmd, double *sum)
{
    FILE *p = popen(cmd, "r");
    if (!p) return -1.0;
    char line[256];
    double ms = -1.0;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "step_ms %lf sum_ms %lf", &ms, sum) == 2) break;
    while (fgets(line, sizeof line, p)) {
    }
    if (pclose(p) != 0) return -1.0;
    return ms;
}

static void print_stats(const char *name, double *v, int n)
{
    sort_runs(v, n);
    printf("| %s | %.1f | %.1f–%.1f |\n", name, v[n / 2], v[0], v[n - 1]);
}

int main(int argc, char **argv)
{
    const char *arch = "cnn", *mpirun = "mpirun --oversubscribe --allow-run-as-root --bind-to none";
    int B = 128, runs = 5, iters = 10, np = 2, is_worker = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--arch") == 0 && i + 1 < argc) arch = argv[++i];
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) B = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--np") == 0 && i + 1 < argc) np = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mpirun") == 0 && i + 1 < argc) mpirun = argv[++i];
        else if (strcmp(argv[i], "--worker") == 0) is_worker = 1;
        else {
            fprintf(stderr, "bench_mpi: unknown argument '%s' (--arch, --batch, --runs, --iters, "
                    "--np, --mpirun)\n", argv[i]);
            return 2;
        }
    }
    if (B < 1 || B > 4096 || runs < 1 || runs > MAX_RUNS || iters < 1 || np < 1 || np > 64) {
        fprintf(stderr, "bench_mpi: --batch 1..4096, --runs 1..%d, --iters >= 1, --np 1..64\n",
                MAX_RUNS);
        return 2;
    }
    if (is_worker) {
        if (core_dist_init(&argc, &argv) != LETHE_OK || lethe_init(0) != LETHE_OK) {
            fprintf(stderr, "bench_mpi: %s\n", lethe_last_error());
            return core_dist_finish(1);
        }
        return core_dist_finish(worker(arch, B, iters));
    }
    if (lethe_init(0) != LETHE_OK) return 1;
    char self[1024], one[4096], many[4096];
    if (!realpath(argv[0], self)) snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(one, sizeof one, "OMP_NUM_THREADS=%d '%s' --worker --arch %s --batch %d --iters %d",
             np, self, arch, B, iters);
    snprintf(many, sizeof many, "OMP_NUM_THREADS=1 %s -np %d '%s' --worker --arch %s --batch %d "
             "--iters %d", mpirun, np, self, arch, B, iters);
    double t1[MAX_RUNS], tn[MAX_RUNS], sn[MAX_RUNS], s1;
    for (int r = 0; r < runs; r++) {
        t1[r] = run_one(one, &s1);
        tn[r] = run_one(many, &sn[r]);
        if (t1[r] < 0 || tn[r] < 0) {
            fprintf(stderr, "bench_mpi: a run failed:\n  %s\n  %s\n", one, many);
            return 1;
        }
    }
    double r1[MAX_RUNS], rn[MAX_RUNS];
    memcpy(r1, t1, sizeof(double) * (size_t)runs);
    memcpy(rn, tn, sizeof(double) * (size_t)runs);
    printf("%s, global batch %d, ms per training step, %d runs of %d steps each, alternating "
           "(median, min–max):\n\n| configuration | median | range |\n|---|---|---|\n", arch, B,
           runs, iters);
    char name[128];
    snprintf(name, sizeof name, "1 process × %d threads", np);
    print_stats(name, r1, runs);
    snprintf(name, sizeof name, "%d ranks × 1 thread", np);
    print_stats(name, rn, runs);
    print_stats("of which in the gradient's all-reduce (rank 0, waiting included)", sn, runs);
    /* The ratio of each alternating pair too: robust to slow drifts of load. */
    double pr[MAX_RUNS];
    for (int r = 0; r < runs; r++) pr[r] = tn[r] / t1[r];
    sort_runs(pr, runs);
    printf("\nratio (ranks / threads): %.2f of the medians; %.2f the median of the %d pairs\n",
           r1[runs / 2] > 0 ? rn[runs / 2] / r1[runs / 2] : 0.0, pr[runs / 2], runs);
    return 0;
}
