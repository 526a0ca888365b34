/*
 * bench_engine: speed of the training engine on `cnn` (or another
 * architecture) at batch 128 against the sgemm limit.
 *
 * Prints, median (min–max) over several runs: forward images/s, training
 * step images/s (forward + backward + SGD), the step's achieved GFLOP/s,
 * and cblas_sgemm's GFLOP/s on the same matrix products (the products of a
 * step as Lethe lowers them), with the ratio.
 *
 *     build/bench/bench_engine [--arch cnn] [--batch 128] [--runs 7] [--iters 10]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>
#include <pmmintrin.h>

#include "lethe.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { double med, min, max; } stats;

static stats summarise(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return (stats){v[n / 2], v[0], v[n - 1]};
}

/* The matrix products of one cnn training step at batch B (row-major
 * C[M×N] = A[M×K]·B[K×N]), as conv (im2col over the batch) and linear
 * layers lower them: forward, weight gradients and input gradients. */
typedef struct { const char *what; int m, n, k; } gemm_shape;

static int cnn_shapes(int B, gemm_shape *s)
{
    int k = 0;
    s[k++] = (gemm_shape){"conv1 fwd", 32, B * 784, 9};
    s[k++] = (gemm_shape){"conv2 fwd", 64, B * 196, 288};
    s[k++] = (gemm_shape){"fc1 fwd", B, 128, 3136};
    s[k++] = (gemm_shape){"fc2 fwd", B, 10, 128};
    s[k++] = (gemm_shape){"fc2 dW", 10, 128, B};
    s[k++] = (gemm_shape){"fc2 dx", B, 128, 10};
    s[k++] = (gemm_shape){"fc1 dW", 128, 3136, B};
    s[k++] = (gemm_shape){"fc1 dx", B, 3136, 128};
    s[k++] = (gemm_shape){"conv2 dW", 64, 288, B * 196};
    s[k++] = (gemm_shape){"conv2 dcol", 288, B * 196, 64};
    s[k++] = (gemm_shape){"conv1 dW", 32, 9, B * 784};
    return k;
}

int main(int argc, char **argv)
{
    const char *arch = "cnn";
    int B = 128, runs = 7, iters = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--arch")) arch = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
    }
    if (B < 1 || runs < 1 || runs > 101 || iters < 1) {
        fprintf(stderr, "bench_engine: bad arguments\n");
        return 2;
    }
    /* Denormals flushed, as for PyTorch's set_flush_denormal(True). */
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);

    lethe_model *m;
    if (lethe_model_create(&m, arch, 1, 28, 28, 10) != LETHE_OK ||
        lethe_model_reserve(m, B) != LETHE_OK) {
        fprintf(stderr, "bench_engine: %s\n", lethe_last_error());
        return 1;
    }
    lethe_rng rng;
    lethe_rng_seed(&rng, 0);
    lethe_model_init(m, &rng);
    size_t n;
    float *theta = lethe_model_theta(m, &n), *grad = lethe_model_grad(m, NULL);
    float *x = malloc((size_t)B * 784 * sizeof(float));     /* (B, 1, 28, 28) */
    float *dl = malloc((size_t)B * 10 * sizeof(float));     /* (B, 10) */
    float *ls = malloc((size_t)B * sizeof(float));
    float *w = malloc((size_t)B * sizeof(float));
    int32_t *y = malloc((size_t)B * sizeof(int32_t));
    for (int i = 0; i < B * 784; i++) x[i] = lethe_rng_normal(&rng);
    for (int i = 0; i < B; i++) {
        y[i] = i % 10;
        w[i] = 1.0f / (float)B;
    }
    lethe_optim opt;
    lethe_optim_init(&opt, LETHE_OPT_SGD, n);
    opt.momentum = 0.9f;
    opt.weight_decay = 5e-4f;
    const float *logits;
    float *gs[1] = {grad};

    double tf[101], ts[101];
    for (int r = -1; r < runs; r++) {       /* r = -1 warms up */
        double t0 = now();
        for (int i = 0; i < iters; i++) lethe_model_forward(m, x, B, NULL, LETHE_BN_TRAIN, &logits);
        double t1 = now();
        for (int i = 0; i < iters; i++) {
            lethe_model_forward(m, x, B, NULL, LETHE_BN_TRAIN, &logits);
            memset(dl, 0, (size_t)B * 10 * sizeof(float));
            lethe_loss(LETHE_LOSS_CE, ls, dl, logits, y, w, B, 10);
            lethe_vec_zero(grad, n);
            lethe_model_backward(m, dl, NULL, gs);
            lethe_optim_step(&opt, theta, grad, NULL, 1e-3f);
        }
        double t2 = now();
        if (r >= 0) {
            tf[r] = (t1 - t0) / iters;
            ts[r] = (t2 - t1) / iters;
        }
    }
    stats sf = summarise(tf, runs), st = summarise(ts, runs);
    double fwd_flops = lethe_model_flops(m) * B;
    printf("%s, batch %d, %d runs of %d iterations (median, min–max)\n\n", arch, B, runs, iters);
    printf("%-26s %8.2f ms  (%.2f–%.2f)  %8.0f images/s\n", "forward", sf.med * 1e3, sf.min * 1e3,
           sf.max * 1e3, B / sf.med);
    printf("%-26s %8.2f ms  (%.2f–%.2f)  %8.0f images/s\n", "training step", st.med * 1e3,
           st.min * 1e3, st.max * 1e3, B / st.med);

    if (strcmp(arch, "cnn") == 0) {
        gemm_shape sh[16];
        int ns = cnn_shapes(B, sh);
        size_t big = 0;
        for (int i = 0; i < ns; i++) {
            size_t a = (size_t)sh[i].m * sh[i].k, b = (size_t)sh[i].k * sh[i].n,
                   c = (size_t)sh[i].m * sh[i].n;
            if (a > big) big = a;
            if (b > big) big = b;
            if (c > big) big = c;
        }
        float *A = calloc(big, sizeof(float)), *Bm = calloc(big, sizeof(float)),
              *C = calloc(big, sizeof(float));
        for (size_t i = 0; i < big; i++) A[i] = Bm[i] = 0.01f * (float)(i % 97);
        double step_flops = 0, gemm_time = 0, fwd_gemm_time = 0;
        printf("\n%-12s %7s %7s %7s %9s %9s\n", "sgemm", "M", "N", "K", "ms", "GFLOP/s");
        for (int i = 0; i < ns; i++) {
            double v[101], fl = 2.0 * sh[i].m * sh[i].n * sh[i].k;
            for (int r = -1; r < runs; r++) {
                double t0 = now();
                for (int it = 0; it < iters; it++)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sh[i].m, sh[i].n,
                                sh[i].k, 1.0f, A, sh[i].k, Bm, sh[i].n, 0.0f, C, sh[i].n);
                if (r >= 0) v[r] = (now() - t0) / iters;
            }
            stats s = summarise(v, runs);
            printf("%-12s %7d %7d %7d %9.3f %9.1f\n", sh[i].what, sh[i].m, sh[i].n, sh[i].k,
                   s.med * 1e3, fl / s.med * 1e-9);
            step_flops += fl;
            gemm_time += s.med;
            if (strstr(sh[i].what, "fwd")) fwd_gemm_time += s.med;
        }
        printf("\n%-40s %8.1f GFLOP/s (%.2f GFLOP in %.2f ms)\n",
               "sgemm on the step's products", step_flops / gemm_time * 1e-9, step_flops * 1e-9,
               gemm_time * 1e3);
        printf("%-40s %8.1f GFLOP/s\n", "Lethe training step", step_flops / st.med * 1e-9);
        printf("%-40s %8.2f\n", "ratio step / sgemm", gemm_time / st.med);
        printf("%-40s %8.1f GFLOP/s (sgemm alone %.1f)\n", "Lethe forward", fwd_flops / sf.med * 1e-9,
               fwd_flops / fwd_gemm_time * 1e-9);
        printf("%-40s %8.2f\n", "ratio forward / sgemm", fwd_gemm_time / sf.med);
        free(A);
        free(Bm);
        free(C);
    } else {
        printf("\n%-40s %8.1f GFLOP/s\n", "Lethe training step (≈3× forward FLOPs)",
               3 * fwd_flops / st.med * 1e-9);
    }
    lethe_optim_free(&opt);
    lethe_model_free(m);
    free(x);
    free(dl);
    free(ls);
    free(w);
    free(y);
    return 0;
}
