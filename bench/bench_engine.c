/*
 * bench_engine: speed of the training engine on `cnn` (or another
 * architecture) at batch 128, against the sgemm limit, and (with
 * --unlearn) the cost of one unlearning step per method.
 *
 * Prints, median (min–max) over several runs of several iterations:
 * forward, training step (forward + cross-entropy + backward + SGD with
 * momentum and weight decay), and with --unlearn one step of EUPMU,
 * EUPMU-fast, UNGrad `mixed` and UNGrad `grouped` (batch B forgetting +
 * B retaining samples, lethe_unlearn on a synthetic data set). For cnn it
 * then times cblas_sgemm (OpenBLAS on the same thread count) on the
 * matrix products of a step; --profile adds the time per layer (fused
 * groups as one) and each conv/linear layer's GFLOP/s.
 *
 *     build/bench/bench_engine [--arch cnn] [--batch 128] [--runs 7] [--iters 10]
 *         [--threads N] [--unlearn] [--profile] [--tsv] [--export DIR] [--in C,H,W]
 *
 * Inputs are (1, 28, 28), Fashion-MNIST's shape, and (3, 32, 32),
 * CIFAR-10's, for resnet20 and resnet18, the CIFAR models; --in sets
 * another (vit-tiny on CIFAR: --in 3,32,32). A token model
 * (text-transformer, text-bag) reads (V, 1, T): a vocabulary of V ids
 * (default 3756, SMS Spam's checkpoint's) and T ids per example (64), two
 * classes; its inputs are random ids in [3, V) with a random length in
 * [4, T], TEXT_CLS (2) first, padding (0) after (no --unlearn).
 *
 * --tsv prints "name<TAB>median_ms<TAB>min_ms<TAB>max_ms" lines only (for
 * bench/vs-torch; "forward CPU" and "training step CPU" are the CPU time
 * of all threads, what compares two builds on a loaded machine; no sgemm
 * reference). --export DIR writes the initial weights
 * (DIR/init_ARCH.safetensors) and the inputs (DIR/input_ARCH.bin: 2·B
 * images (2B, C, H, W) float32, then 2·B int32 labels; rows [0, B) are
 * the forward/training batch and the forgetting batch, [B, 2B) the
 * retaining batch) so that PyTorch can start from the same state.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>
#include <pmmintrin.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lethe.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/op.h"

#define MAX_RUNS 101

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
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

static int tsv;

/* One figure: a table line, or a TSV line for bench/vs-torch. */
static void report(const char *name, stats s, int batch)
{
    if (tsv)
        printf("%s\t%.4f\t%.4f\t%.4f\n", name, s.med * 1e3, s.min * 1e3, s.max * 1e3);
    else
        printf("%-26s %8.2f ms  (%.2f–%.2f)  %8.0f images/s\n", name, s.med * 1e3,
               s.min * 1e3, s.max * 1e3, batch / s.med);
}

/* The CPU time of all threads beside a wall-clock figure; a TSV line
 * (median, min, max) with --tsv. */
static void report_cpu(const char *name, stats c, stats wall)
{
    if (tsv)
        printf("%s\t%.4f\t%.4f\t%.4f\n", name, c.med * 1e3, c.min * 1e3, c.max * 1e3);
    else
        printf("  %-24s %8.2f ms  (CPU time of all threads; %.2f cores busy)\n", name,
               c.med * 1e3, c.med / wall.med);
}

/* The matrix products of one cnn training step at batch B (row-major
 * C[M×N] = A[M×K]·B[K×N]) over the whole batch: forward, weight gradients
 * and input gradients of conv (im2col) and linear layers. */
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

/* cblas_sgemm on the step's products with OpenBLAS on `threads` threads;
 * returns the summed median seconds (all, and forward only). */
static void sgemm_reference(int B, int threads, int runs, int iters, double *all_s,
                            double *fwd_s, double *flops)
{
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
    if (!A || !Bm || !C) {
        fprintf(stderr, "bench_engine: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < big; i++) A[i] = Bm[i] = 0.01f * (float)(i % 97);
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    *all_s = *fwd_s = *flops = 0;
    if (!tsv) printf("\n%-12s %7s %7s %7s %9s %9s\n", "sgemm", "M", "N", "K", "ms", "GFLOP/s");
    for (int i = 0; i < ns; i++) {
        double v[MAX_RUNS], fl = 2.0 * sh[i].m * sh[i].n * sh[i].k;
        for (int r = -1; r < runs; r++) {
            double t0 = now();
            for (int it = 0; it < iters; it++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sh[i].m, sh[i].n,
                            sh[i].k, 1.0f, A, sh[i].k, Bm, sh[i].n, 0.0f, C, sh[i].n);
            if (r >= 0) v[r] = (now() - t0) / iters;
        }
        stats s = summarise(v, runs);
        if (!tsv)
            printf("%-12s %7d %7d %7d %9.3f %9.1f\n", sh[i].what, sh[i].m, sh[i].n, sh[i].k,
                   s.med * 1e3, fl / s.med * 1e-9);
        *flops += fl;
        *all_s += s.med;
        if (strstr(sh[i].what, "fwd")) *fwd_s += s.med;
    }
    openblas_set_num_threads(saved);
    free(A);
    free(Bm);
    free(C);
}

/* A synthetic data set of n random images with labels i mod 10: (1, hw,
 * hw) normalised like Fashion-MNIST, or (3, hw, hw) like CIFAR-10. */
static int synthetic(lethe_dataset *ds, int n, int rgb, int hw, lethe_rng *rng)
{
    static const float cm[3] = {0.4914f, 0.4822f, 0.4465f}, cs[3] = {0.2470f, 0.2435f, 0.2616f};
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = rgb ? 3 : 1;
    ds->h = ds->w = hw;
    ds->nclass = 10;
    const size_t px = (size_t)ds->c * ds->h * ds->w;
    ds->pixels = malloc((size_t)n * px);
    ds->labels = malloc((size_t)n);
    if (!ds->pixels || !ds->labels) return -1;
    for (size_t i = 0; i < (size_t)n * px; i++)
        ds->pixels[i] = (uint8_t)(lethe_rng_next(rng) >> 56);
    for (int i = 0; i < n; i++) ds->labels[i] = (uint8_t)(i % 10);
    for (int c = 0; c < ds->c; c++) {
        ds->mean[c] = rgb ? cm[c] : 0.2860f;
        ds->std[c] = rgb ? cs[c] : 0.3530f;
    }
    snprintf(ds->name, sizeof ds->name, rgb ? "cifar10" : "fmnist");
    return 0;
}

/* n token-id examples (n, T) as floats, as a token model reads x: id 2
 * (TEXT_CLS) first, then random ids in [3, V) up to a random length in
 * [4, T], padding (0) after; labels i mod 2. */
static void synthetic_ids(float *x, int32_t *y, int n, int V, int T, lethe_rng *rng)
{
    for (int i = 0; i < n; i++) {
        int len = T < 4 ? T : 4 + (int)(lethe_rng_next(rng) % (uint64_t)(T - 3));
        for (int t = 0; t < T; t++)
            x[(size_t)i * T + t] = t == 0 ? 2.0f
                                 : t < len ? (float)(3 + lethe_rng_next(rng) % (uint64_t)(V - 3))
                                           : 0.0f;
        y[i] = i % 2;
    }
}

/* Per-layer profile of `iters` training steps: fused groups as one line. */
static void print_profile(lethe_model *m, const double *prof, int iters, int B)
{
    printf("\n%s per layer, %s\n", "profile of one training step",
           m->prof_cpu ? "CPU time of the one thread" : "wall time");
    printf("%-32s %9s %9s %9s %9s\n", "layer (fused group)", "fwd ms", "bwd ms", "fwd GF/s",
           "bwd GF/s");
    double tf = 0, tb = 0;
    for (int i = 1; i < m->nnodes; i++) {
        const nn_node *nd = &m->nodes[i];
        if (nd->fold >= 0) continue;
        char name[96];
        const char *tn = nd->t_w >= 0 ? m->tensors[nd->t_w].name : "";
        int len = (int)strcspn(tn, ".");
        if (strncmp(tn, "layer", 5) == 0) len = (int)(strrchr(tn, '.') - tn);
        snprintf(name, sizeof name, "%d %s %.*s%s%s", i, nn_op_name(nd->op), len, tn,
                 nd->relu ? "+relu" : "", nd->pool >= 0 ? "+pool" : "");
        double f = prof[i] / iters, b = prof[m->nnodes + i] / iters;
        tf += f;
        tb += b;
        if (nd->op == NN_CONV || nd->op == NN_LINEAR) {
            double fl = 2.0 * (double)m->tensors[nd->t_w].numel * nd->h * nd->w * B;
            /* Backward: dW always, din unless the input is the data. */
            int has_din = m->nodes[nd->in0].op != NN_INPUT;
            printf("%-32s %9.2f %9.2f %9.1f %9.1f\n", name, f * 1e3, b * 1e3, fl / f * 1e-9,
                   fl * (1 + has_din) / b * 1e-9);
        } else {
            printf("%-32s %9.2f %9.2f\n", name, f * 1e3, b * 1e3);
        }
    }
    printf("%-32s %9.2f %9.2f\n", "total in layers", tf * 1e3, tb * 1e3);
}

/* FLOPs and profiled seconds of the conv and linear layers of one step. */
static void layer_products(lethe_model *m, const double *prof, int iters, int B, double *fl,
                           double *sec)
{
    *fl = *sec = 0;
    for (int i = 1; i < m->nnodes; i++) {
        const nn_node *nd = &m->nodes[i];
        if (nd->fold >= 0 || (nd->op != NN_CONV && nd->op != NN_LINEAR)) continue;
        double f = 2.0 * (double)m->tensors[nd->t_w].numel * nd->h * nd->w * B;
        *fl += f * (2 + (m->nodes[nd->in0].op != NN_INPUT));
        *sec += (prof[i] + prof[m->nnodes + i]) / iters;
    }
}

static int write_inputs(const char *path, const float *x, const int32_t *y, int n, size_t px)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(x, sizeof(float), (size_t)n * px, f) == (size_t)n * px &&
             fwrite(y, sizeof(int32_t), (size_t)n, f) == (size_t)n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *arch = "cnn", *export_dir = NULL, *in_shape = NULL;
    int B = 128, runs = 7, iters = 10, threads = 0, unlearn = 0, profile = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--unlearn")) unlearn = 1;
        else if (!strcmp(a, "--profile")) profile = 1;
        else if (!strcmp(a, "--tsv")) tsv = 1;
        else if (v && !strcmp(a, "--arch")) arch = argv[++i];
        else if (v && !strcmp(a, "--batch")) B = atoi(argv[++i]);
        else if (v && !strcmp(a, "--runs")) runs = atoi(argv[++i]);
        else if (v && !strcmp(a, "--iters")) iters = atoi(argv[++i]);
        else if (v && !strcmp(a, "--threads")) threads = atoi(argv[++i]);
        else if (v && !strcmp(a, "--export")) export_dir = argv[++i];
        else if (v && !strcmp(a, "--in")) in_shape = argv[++i];
        else {
            fprintf(stderr, "bench_engine: unknown or incomplete option '%s'\n", a);
            return 2;
        }
    }
    if (B < 1 || B > 4096 || runs < 1 || runs > MAX_RUNS || iters < 1 || threads < 0) {
        fprintf(stderr, "bench_engine: bad arguments\n");
        return 2;
    }
    if (lethe_init(threads) != LETHE_OK) {
        fprintf(stderr, "bench_engine: %s\n", lethe_last_error());
        return 2;
    }
#ifdef _OPENMP
    threads = omp_get_max_threads();
#else
    threads = 1;
#endif
    /* Denormals flushed, as for PyTorch's set_flush_denormal(True). */
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);

    const int text = !strcmp(arch, "text-transformer") || !strcmp(arch, "text-bag");
    int rgb = !strcmp(arch, "resnet20") || !strcmp(arch, "resnet18");
    int C = text ? 3756 : rgb ? 3 : 1, H = text ? 1 : rgb ? 32 : 28, W = text ? 64 : H;
    if (in_shape) {
        char tail;
        if (sscanf(in_shape, "%d,%d,%d%c", &C, &H, &W, &tail) != 3 || C < 1 || H < 1 ||
            W < 1 || C > (text ? 1 << 20 : 3) || (text && C < 4) || H > 256 || W > 256 || (text && H != 1) ||
            (!text && H != W)) {
            fprintf(stderr, "bench_engine: --in '%s': want C,H,W (images: C 1..3, H = W "
                    "<= 256; token models: V,1,T, V >= 4)\n", in_shape);
            return 2;
        }
        rgb = !text && C == 3;
    }
    if (text && unlearn) {
        fprintf(stderr, "bench_engine: --unlearn: not for a token model (%s)\n", arch);
        return 2;
    }
    const int HW = H, K = text ? 2 : 10;  /* classes */
    const size_t px = text ? (size_t)W : (size_t)C * H * W;
    lethe_model *m;
    if (lethe_model_create(&m, arch, C, H, W, K) != LETHE_OK ||
        lethe_model_reserve(m, B) != LETHE_OK) {
        fprintf(stderr, "bench_engine: %s\n", lethe_last_error());
        return 1;
    }
    lethe_rng rng;
    lethe_rng_seed(&rng, 0);
    lethe_model_init(m, &rng);
    size_t n;
    float *theta = lethe_model_theta(m, &n), *grad = lethe_model_grad(m, NULL);

    /* The inputs: the first 2·B images of a synthetic data set. */
    lethe_dataset ds;
    int32_t *idx = malloc(2 * (size_t)B * sizeof(int32_t));
    float *x = malloc(2 * (size_t)B * px * sizeof(float));    /* (2B, C, HW, HW) */
    int32_t *y = malloc(2 * (size_t)B * sizeof(int32_t));      /* (2B) */
    float *dl = malloc((size_t)B * K * sizeof(float));         /* (B, K) */
    float *ls = malloc((size_t)B * sizeof(float));
    float *w = malloc((size_t)B * sizeof(float));
    double *prof = calloc(2 * (size_t)m->nnodes, sizeof(double));
    if (!idx || !x || !y || !dl || !ls || !w || !prof ||
        synthetic(&ds, text ? 1 : 20 * B, rgb, HW, &rng) != 0) {
        fprintf(stderr, "bench_engine: out of memory\n");
        return 1;
    }
    if (text) {
        synthetic_ids(x, y, 2 * B, C, W, &rng);
    } else {
        for (int i = 0; i < 2 * B; i++) idx[i] = i;
        lethe_dataset_batch(&ds, idx, 2 * B, x, y);
    }
    for (int i = 0; i < B; i++) w[i] = 1.0f / (float)B;

    if (export_dir) {
        char path[1024];
        lethe_metadata md = {0};
        snprintf(path, sizeof path, "%s/init_%s.safetensors", export_dir, arch);
        char shape[64], ncl[16];
        snprintf(shape, sizeof shape, "%d,%d,%d", C, H, W);
        snprintf(ncl, sizeof ncl, "%d", K);
        if (lethe_meta_set(&md, "arch", arch) != LETHE_OK ||
            lethe_meta_set(&md, "in_shape", shape) != LETHE_OK ||
            lethe_meta_set(&md, "nclass", ncl) != LETHE_OK ||
            lethe_checkpoint_save(m, &md, path) != LETHE_OK) {
            fprintf(stderr, "bench_engine: %s\n", lethe_last_error());
            return 1;
        }
        snprintf(path, sizeof path, "%s/input_%s.bin", export_dir, arch);
        if (write_inputs(path, x, y, 2 * B, px) != 0) {
            fprintf(stderr, "bench_engine: cannot write %s\n", path);
            return 1;
        }
    }
    lethe_model *m0 = NULL;
    if (unlearn && (lethe_model_create(&m0, arch, C, H, W, K) != LETHE_OK ||
                    lethe_model_copy(m0, m) != LETHE_OK)) {
        fprintf(stderr, "bench_engine: %s\n", lethe_last_error());
        return 1;
    }

    lethe_optim opt;
    if (lethe_optim_init(&opt, LETHE_OPT_SGD, n) != LETHE_OK) {
        fprintf(stderr, "bench_engine: %s\n", lethe_last_error());
        return 1;
    }
    opt.momentum = 0.9f;
    opt.weight_decay = 5e-4f;
    const float *logits;
    float *gs[1] = {grad};

    double tf[MAX_RUNS], ts[MAX_RUNS], cs[MAX_RUNS], cf[MAX_RUNS];
    for (int r = -1; r < runs; r++) {       /* r = -1 warms up */
        double t0 = now(), c0 = cpu_now();
        for (int i = 0; i < iters; i++) lethe_model_forward(m, x, B, NULL, LETHE_BN_TRAIN, &logits);
        double t1 = now(), c1 = cpu_now();
        if (r == runs - 1 && profile) {
            m->prof = prof;
            m->prof_cpu = threads == 1;  /* robust to other load; wall time else */
        }
        for (int i = 0; i < iters; i++) {
            lethe_model_forward(m, x, B, NULL, LETHE_BN_TRAIN, &logits);
            memset(dl, 0, (size_t)B * K * sizeof(float));
            lethe_loss(LETHE_LOSS_CE, ls, dl, logits, y, w, B, K);
            lethe_vec_zero(grad, n);
            lethe_model_backward(m, dl, NULL, gs);
            lethe_optim_step(&opt, theta, grad, NULL, 1e-3f);
        }
        m->prof = NULL;
        double t2 = now(), c2 = cpu_now();
        if (r >= 0) {
            tf[r] = (t1 - t0) / iters;
            ts[r] = (t2 - t1) / iters;
            cs[r] = (c2 - c1) / iters;
            cf[r] = (c1 - c0) / iters;
        }
    }
    stats sf = summarise(tf, runs), st = summarise(ts, runs), sc = summarise(cs, runs),
          scf = summarise(cf, runs);
    if (!tsv)
        printf("%s, batch %d, %d threads, kernels %s (%s), %d runs of %d iterations "
               "(median, min–max)\n\n", arch, B, threads, nn_kernels_active(),
               nn_kernels_reason(), runs, iters);
    report("forward", sf, B);
    report_cpu("forward CPU", scf, sf);
    report("training step", st, B);
    report_cpu("training step CPU", sc, st);

    if (unlearn) {
        static const char *methods[] = {"eupmu", "eupmu-fast", "ungrad-mixed", "ungrad"};
        static const char *labels[] = {"eupmu step", "eupmu-fast step", "ungrad mixed step",
                                       "ungrad grouped step"};
        lethe_forget_spec spec;
        lethe_subset fs, rs;
        if (lethe_forget_parse(&spec, "class:0") != LETHE_OK ||
            lethe_forget_split(&spec, &ds, 0, &fs, &rs) != LETHE_OK) {
            fprintf(stderr, "bench_engine: %s\n", lethe_last_error());
            return 1;
        }
        stats us[4];
        for (int k = 0; k < 4; k++) {
            double t[MAX_RUNS];
            for (int r = -1; r < runs; r++) {
                lethe_model_copy(m, m0);
                lethe_unlearn_config cfg;
                lethe_unlearn_config_default(&cfg);
                cfg.method = methods[k];
                cfg.steps = iters;
                cfg.batch = B;
                cfg.lr = 0.01f;
                lethe_unlearn_result res;
                if (lethe_unlearn(m, &ds, &fs, &rs, &cfg, &res, NULL, NULL) != LETHE_OK) {
                    fprintf(stderr, "bench_engine: %s: %s\n", methods[k], lethe_last_error());
                    return 1;
                }
                if (r >= 0) t[r] = res.seconds / (double)iters;
                lethe_unlearn_result_free(&res);
            }
            us[k] = summarise(t, runs);
            report(labels[k], us[k], 2 * B);
        }
        if (!tsv)
            printf("%-26s eupmu %.3f, eupmu-fast %.3f, grouped %.3f (targets 0.72, 0.62, 0.62)\n",
                   "  vs ungrad mixed", us[0].med / us[2].med, us[1].med / us[2].med,
                   us[3].med / us[2].med);
        lethe_subset_free(&fs);
        lethe_subset_free(&rs);
    }

    if (profile && !tsv) print_profile(m, prof, iters, B);

    if (strcmp(arch, "cnn") == 0 && !tsv) {
        double all_s, fwd_s, flops;
        sgemm_reference(B, threads, runs, iters, &all_s, &fwd_s, &flops);
        double fwd_flops = lethe_model_flops(m) * B;
        printf("\n%-40s %8.1f GFLOP/s (%.2f GFLOP in %.2f ms)\n",
               "sgemm on the step's products", flops / all_s * 1e-9, flops * 1e-9, all_s * 1e3);
        printf("%-40s %8.1f GFLOP/s\n", "Lethe training step", flops / st.med * 1e-9);
        printf("%-40s %8.2f (target 0.60)\n", "ratio step / sgemm", all_s / st.med);
        printf("%-40s %8.1f GFLOP/s (sgemm alone %.1f)\n", "Lethe forward",
               fwd_flops / sf.med * 1e-9, fwd_flops / fwd_s * 1e-9);
        printf("%-40s %8.2f\n", "ratio forward / sgemm", fwd_s / sf.med);
        if (profile) {
            double fl, sec;
            layer_products(m, prof, iters, B, &fl, &sec);
            printf("%-40s %8.1f GFLOP/s (%.2f ms; ratio to sgemm %.2f, target 0.75)\n",
                   "Lethe conv + linear layers", fl / sec * 1e-9, sec * 1e3,
                   (fl / sec) / (flops / all_s));
        }
    }
    lethe_optim_free(&opt);
    lethe_model_free(m);
    lethe_model_free(m0);
    lethe_dataset_free(&ds);
    free(idx);
    free(x);
    free(y);
    free(dl);
    free(ls);
    free(w);
    free(prof);
    return 0;
}
