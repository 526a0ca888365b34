/* Kernel sets (kernels.h): each set's table of kernels, the choice of the
 * active set, and the plain-named kernels of layers.h, which call it.
 *
 * The choice is made once (pthread_once) and read by every kernel call;
 * a kernel call costs one indirect call more than a direct one, next to
 * the layer's work it is nothing. */
#include "nn/kernels.h"
#include "core/fail.h"
#include "nn/kernel_names.h"
#include "nn/layers.h"
#include "nn/seq.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* One set's kernels: a pointer per function of NN_KERNEL_TABLE, each named
 * and typed as the plain function of layers.h. */
#define KSET_FIELD(f) __typeof__(f) *f;
typedef struct { NN_KERNEL_TABLE(KSET_FIELD) } kernel_fns;

/* With KSET_NOW defined as a set's suffix: declare its kernels, and fill
 * its table. */
#define KSET_DECL(f) extern __typeof__(f) NN_KNAME(f, KSET_NOW);
#define KSET_FILL(f) .f = NN_KNAME(f, KSET_NOW),

typedef struct {
    const char *name;        /* LETHE_KERNELS value */
    const char *needs;       /* the instructions it needs, for messages */
    int (*usable)(void);     /* 1 when this CPU runs it */
    const kernel_fns *fns;
} kernel_set;

#if defined(LETHE_PORTABLE) && defined(__x86_64__)

/* The x86-64 microarchitecture levels the sets are compiled for. GCC 12
 * tests a level as a whole (every feature the compiler may use, and that
 * the OS saves the vector registers); older compilers and clang by its
 * main features. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
static int cpu_v3(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v3") != 0;
}
static int cpu_v4(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v4") != 0;
}
#else
static int cpu_v3(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
}
static int cpu_v4(void)
{
    return cpu_v3() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512cd");
}
#endif
static int cpu_any(void) { return 1; }

#define KSET_NOW avx512
NN_KERNEL_TABLE(KSET_DECL)
static const kernel_fns fns_avx512 = {NN_KERNEL_TABLE(KSET_FILL)};
#undef KSET_NOW
#define KSET_NOW avx2
NN_KERNEL_TABLE(KSET_DECL)
static const kernel_fns fns_avx2 = {NN_KERNEL_TABLE(KSET_FILL)};
#undef KSET_NOW
#define KSET_NOW generic
NN_KERNEL_TABLE(KSET_DECL)
static const kernel_fns fns_generic = {NN_KERNEL_TABLE(KSET_FILL)};
#undef KSET_NOW

static const kernel_set sets[] = {
    {"avx512", "x86-64-v4: AVX-512 F/BW/CD/DQ/VL and x86-64-v3", cpu_v4, &fns_avx512},
    {"avx2", "x86-64-v3: AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE", cpu_v3, &fns_avx2},
    {"generic", "x86-64: SSE2 (any x86-64)", cpu_any, &fns_generic},
};
static const char build_desc[] =
    "portable (x86-64 baseline; the layer kernels for AVX-512, AVX2+FMA and "
    "SSE2, chosen at run time)";

#else

/* One set, compiled with the build's own -march. A CPU without the vector
 * instructions the compiler was told of is refused by name (best effort:
 * code that runs before the kernels are chosen may already use them). */
static int cpu_native(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
#ifdef __AVX512F__
    if (!__builtin_cpu_supports("avx512f")) return 0;
#endif
#ifdef __AVX2__
    if (!__builtin_cpu_supports("avx2")) return 0;
#endif
#ifdef __FMA__
    if (!__builtin_cpu_supports("fma")) return 0;
#endif
#ifdef __AVX__
    if (!__builtin_cpu_supports("avx")) return 0;
#endif
#endif
    return 1;
}

#define KSET_NOW native
NN_KERNEL_TABLE(KSET_DECL)
static const kernel_fns fns_native = {NN_KERNEL_TABLE(KSET_FILL)};
#undef KSET_NOW

/* The Makefile names the -march; a build by other means (the fuzzing
 * build) has the compiler's default target. */
#ifdef LETHE_MARCH
#define NATIVE_NEEDS "-march=" LETHE_MARCH
#define NATIVE_BUILD "MARCH=" LETHE_MARCH
#else
#define NATIVE_NEEDS "the compiler's default target"
#define NATIVE_BUILD "the compiler's default target"
#endif
static const kernel_set sets[] = {
    {"native", NATIVE_NEEDS, cpu_native, &fns_native},
};
static const char build_desc[] = NATIVE_BUILD " (one kernel set, chosen when compiled)";

#endif

#define NSETS ((int)(sizeof sets / sizeof sets[0]))

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const kernel_set *active;
static lethe_status init_status;
static char init_error[384];   /* the refusal of LETHE_KERNELS, if any */
static char reason[160];

/* "avx2, generic": the sets this CPU runs. */
static void usable_list(char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < NSETS && k < n; i++)
        if (sets[i].usable())
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "", sets[i].name);
}

static void all_list(char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < NSETS && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "", sets[i].name);
}

static const kernel_set *find(const char *name)
{
    for (int i = 0; i < NSETS; i++)
        if (strcmp(sets[i].name, name) == 0) return &sets[i];
    return NULL;
}

static void choose(void)
{
    /* The first set this CPU runs; the last (generic, or the one native
     * set) even when it says no, so that a kernel always has a table. */
    active = &sets[NSETS - 1];
    for (int i = 0; i < NSETS; i++)
        if (sets[i].usable()) {
            active = &sets[i];
            break;
        }
    char can[64], all[64];
    usable_list(can, sizeof can);
    all_list(all, sizeof all);
    if (NSETS == 1)
        snprintf(reason, sizeof reason, "the one set of this build");
    else
        snprintf(reason, sizeof reason, "detected: the first of %s that this CPU runs", all);
    if (!active->usable()) {
        init_status = LETHE_ERR_ARG;
        snprintf(init_error, sizeof init_error,
                 "this CPU cannot run this build, compiled with %s: build Lethe on this "
                 "machine, or the portable default (make without MARCH)", active->needs);
        snprintf(reason, sizeof reason, "the only set of this build, which this CPU cannot run");
    }
    const char *env = getenv("LETHE_KERNELS");
    if (!env || !*env || strcmp(env, "auto") == 0) return;
    const kernel_set *want = find(env);
    if (!want) {
        init_status = LETHE_ERR_ARG;
        snprintf(init_error, sizeof init_error,
                 "LETHE_KERNELS=%.32s: no such kernel set in this build (it has: %s; or auto)",
                 env, all);
    } else if (!want->usable()) {
        init_status = LETHE_ERR_ARG;
        snprintf(init_error, sizeof init_error,
                 "LETHE_KERNELS=%s: this CPU cannot run the %s kernels (%s); it runs %s",
                 want->name, want->name, want->needs, can[0] ? can : "none");
    } else {
        active = want;
        snprintf(reason, sizeof reason, "forced by LETHE_KERNELS=%s", want->name);
    }
}

static const kernel_fns *K(void)
{
    pthread_once(&once, choose);
    return active->fns;
}

lethe_status nn_kernels_init(void)
{
    pthread_once(&once, choose);
    if (init_status != LETHE_OK) return lethe_fail(init_status, "%s", init_error);
    return LETHE_OK;
}

int nn_kernels_count(void) { return NSETS; }

const char *nn_kernels_name(int i) { return i >= 0 && i < NSETS ? sets[i].name : NULL; }

const char *nn_kernels_needs(int i) { return i >= 0 && i < NSETS ? sets[i].needs : NULL; }

int nn_kernels_usable(int i) { return i >= 0 && i < NSETS && sets[i].usable(); }

const char *nn_kernels_active(void)
{
    pthread_once(&once, choose);
    return active->name;
}

const char *nn_kernels_reason(void)
{
    pthread_once(&once, choose);
    return reason;
}

const char *nn_kernels_build(void) { return build_desc; }

lethe_status nn_kernels_use(const char *name)
{
    pthread_once(&once, choose);
    const kernel_set *want = find(name);
    char all[64], can[64];
    if (!want) {
        all_list(all, sizeof all);
        return lethe_fail(LETHE_ERR_NOTFOUND, "no kernel set '%s' in this build (it has: %s)",
                          name, all);
    }
    if (!want->usable()) {
        usable_list(can, sizeof can);
        return lethe_fail(LETHE_ERR_ARG, "this CPU cannot run the %s kernels (%s); it runs %s",
                          want->name, want->needs, can[0] ? can : "none");
    }
    active = want;
    snprintf(reason, sizeof reason, "chosen by the program (nn_kernels_use)");
    return LETHE_OK;
}

/* ------------------------- shared by every set: one copy whichever runs */

static int fast_paths = 1;

void nn_conv_set_fast_paths(int on) { fast_paths = on; }

int nn_conv_fast_paths(void) { return fast_paths; }

int nn_outer_threads(void)
{
#ifdef _OPENMP
    /* openblas_get_parallel: 0 sequential, 1 pthreads, 2 OpenMP. An OpenMP
     * OpenBLAS runs single-threaded inside our parallel regions. */
    if (openblas_get_parallel() == 1 && openblas_get_num_threads() > 1) return 1;
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void nn_conv_shape_set(nn_conv_shape *s, int n, int c, int h, int w, int oc,
                       int k, int stride, int pad)
{
    s->n = n; s->c = c; s->h = h; s->w = w; s->oc = oc;
    s->kh = k; s->kw = k; s->stride = stride; s->pad = pad;
    s->oh = stride > 0 ? (h + 2 * pad - k) / stride + 1 : 0;
    s->ow = stride > 0 ? (w + 2 * pad - k) / stride + 1 : 0;
}

/* ---------------------------------------------- the kernels of layers.h */

void nn_linear_forward(float *out, const float *in, const float *w, const float *b, int n,
                       int in_f, int out_f)
{
    K()->nn_linear_forward(out, in, w, b, n, in_f, out_f);
}

void nn_linear_backward(float *din, float *const dw[], float *const db[], const float *dout,
                        const float *in, const float *w, const lethe_groups *g, int in_f, int out_f)
{
    K()->nn_linear_backward(din, dw, db, dout, in, w, g, in_f, out_f);
}

void nn_linear_forward_ex(float *out, const float *in, const float *w, const float *b, int n,
                          int in_f, int out_f, int relu)
{
    K()->nn_linear_forward_ex(out, in, w, b, n, in_f, out_f, relu);
}

void nn_linear_backward_ex(float *din, int din_add, float *const dw[], float *const db[],
                           const float *dout, const float *in, const float *w,
                           const lethe_groups *g, int in_f, int out_f)
{
    K()->nn_linear_backward_ex(din, din_add, dw, db, dout, in, w, g, in_f, out_f);
}

size_t nn_conv2d_workspace(const nn_conv_shape *s)
{
    return K()->nn_conv2d_workspace(s);
}

int nn_conv2d_takes_affine(const nn_conv_shape *s)
{
    return K()->nn_conv2d_takes_affine(s);
}

void nn_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                       const nn_conv_shape *s, float *ws)
{
    K()->nn_conv2d_forward(out, in, w, b, s, ws);
}

void nn_conv2d_backward(float *din, float *const dw[], float *const db[], const float *dout,
                        const float *in, const float *w, const nn_conv_shape *s,
                        const lethe_groups *g, float *ws)
{
    K()->nn_conv2d_backward(din, dw, db, dout, in, w, s, g, ws);
}

void nn_conv2d_forward_ex(float *out, int32_t *arg, const float *in, const float *w,
                          const float *b, const nn_conv_shape *s, const nn_epilogue *ep, float *ws)
{
    K()->nn_conv2d_forward_ex(out, arg, in, w, b, s, ep, ws);
}

void nn_conv2d_backward_ex(float *din, int din_add, float *const dw[], float *const db[],
                           const float *dout, const float *out, const int32_t *arg,
                           const float *in, const float *w, const nn_conv_shape *s,
                           const nn_epilogue *ep, const lethe_groups *g, float *ws)
{
    K()->nn_conv2d_backward_ex(din, din_add, dw, db, dout, out, arg, in, w, s, ep, g, ws);
}

void nn_maxpool_forward(float *out, int32_t *arg, const float *in, int n, int c, int h, int w,
                        int k, int s)
{
    K()->nn_maxpool_forward(out, arg, in, n, c, h, w, k, s);
}

void nn_maxpool_backward(float *din, const float *dout, const int32_t *arg, int n, int c, int h,
                         int w, int oh, int ow)
{
    K()->nn_maxpool_backward(din, dout, arg, n, c, h, w, oh, ow);
}

void nn_gap_forward(float *out, const float *in, int n, int c, int hw)
{
    K()->nn_gap_forward(out, in, n, c, hw);
}

void nn_gap_backward(float *din, const float *dout, int n, int c, int hw)
{
    K()->nn_gap_backward(din, dout, n, c, hw);
}

void nn_gap_backward_ex(float *din, int din_add, const float *dout, int n, int c, int hw)
{
    K()->nn_gap_backward_ex(din, din_add, dout, n, c, hw);
}

void nn_relu_forward(float *out, const float *in, size_t n)
{
    K()->nn_relu_forward(out, in, n);
}

void nn_relu_backward(float *din, const float *dout, const float *out, size_t n)
{
    K()->nn_relu_backward(din, dout, out, n);
}

void nn_relu_mask(float *d, const float *out, size_t n)
{
    K()->nn_relu_mask(d, out, n);
}

void nn_add_forward(float *out, const float *a, const float *b, size_t n)
{
    K()->nn_add_forward(out, a, b, n);
}

void nn_add_backward(float *da, float *db, const float *dout, size_t n)
{
    K()->nn_add_backward(da, db, dout, n);
}

void nn_add_forward_ex(float *out, const float *a, const float *b, size_t n, int relu)
{
    K()->nn_add_forward_ex(out, a, b, n, relu);
}

void nn_add_backward_ex(float *da, int da_add, float *db, int db_add, float *dout,
                        const float *relu_out, size_t n)
{
    K()->nn_add_backward_ex(da, da_add, db, db_add, dout, relu_out, n);
}

void nn_add_bn_forward(float *out, const float *a, const nn_affine *aa, const float *b,
                       const nn_affine *ab, int n, int c, int hw, int relu)
{
    K()->nn_add_bn_forward(out, a, aa, b, ab, n, c, hw, relu);
}

void nn_batchnorm_forward(float *out, float *xhat, float *istd, const float *in,
                          const float *gamma, const float *beta, float *run_mean, float *run_var,
                          int n, int c, int hw, const lethe_groups *g, lethe_bn_mode mode,
                          float momentum, float eps)
{
    K()->nn_batchnorm_forward(out, xhat, istd, in, gamma, beta, run_mean, run_var, n, c, hw, g,
      mode, momentum, eps);
}

void nn_batchnorm_backward(float *din, float *const dgamma[], float *const dbeta[],
                           const float *dout, const float *xhat, const float *istd,
                           const float *gamma, int n, int c, int hw, const lethe_groups *g,
                           lethe_bn_mode mode)
{
    K()->nn_batchnorm_backward(din, dgamma, dbeta, dout, xhat, istd, gamma, n, c, hw, g, mode);
}

void nn_batchnorm_forward_ex(float *out, float *mean, float *istd, const float *in,
                             const float *gamma, const float *beta, float *run_mean,
                             float *run_var, int n, int c, int hw, const lethe_groups *g,
                             lethe_bn_mode mode, float momentum, float eps, int relu,
                             const float *pstats)
{
    K()->nn_batchnorm_forward_ex(out, mean, istd, in, gamma, beta, run_mean, run_var, n, c, hw, g,
      mode, momentum, eps, relu, pstats);
}

void nn_batchnorm_backward_ex(float *din, int din_add, float *const dgamma[], float *const dbeta[],
                              const float *dout, int relu, const float *in, const float *mean,
                              const float *istd, const float *gamma, const float *beta, int n,
                              int c, int hw, const lethe_groups *g, lethe_bn_mode mode)
{
    K()->nn_batchnorm_backward_ex(din, din_add, dgamma, dbeta, dout, relu, in, mean, istd, gamma,
      beta, n, c, hw, g, mode);
}

void nn_batchnorm_backward_sums(float *const dgamma[], float *const dbeta[], float *sums,
                                const float *dout, int relu, const float *in, const float *mean,
                                const float *istd, const float *gamma, const float *beta, int n,
                                int c, int hw, const lethe_groups *g, lethe_bn_mode mode)
{
    K()->nn_batchnorm_backward_sums(dgamma, dbeta, sums, dout, relu, in, mean, istd, gamma, beta,
      n, c, hw, g, mode);
}

void nn_mse(float *losses, float *dpred, const float *pred, const float *target, const float *w,
            int n, int d)
{
    K()->nn_mse(losses, dpred, pred, target, w, n, d);
}

void nn_groupnorm_forward(float *out, float *mean, float *istd, const float *in,
                          const float *gamma, const float *beta, int n, int c, int hw, int ng,
                          float eps, int silu)
{
    K()->nn_groupnorm_forward(out, mean, istd, in, gamma, beta, n, c, hw, ng, eps, silu);
}

void nn_groupnorm_backward(float *din, int din_add, float *const dgamma[], float *const dbeta[],
                           const float *dout, const float *in, const float *mean,
                           const float *istd, const float *gamma, const float *beta, int c, int hw,
                           int ng, const lethe_groups *g, int silu)
{
    K()->nn_groupnorm_backward(din, din_add, dgamma, dbeta, dout, in, mean, istd, gamma, beta, c,
      hw, ng, g, silu);
}

void nn_silu_forward(float *out, const float *in, size_t n)
{
    K()->nn_silu_forward(out, in, n);
}

void nn_silu_backward(float *din, int din_add, const float *dout, const float *in, size_t n)
{
    K()->nn_silu_backward(din, din_add, dout, in, n);
}

void nn_upsample2_forward(float *out, const float *in, int n, int c, int h, int w)
{
    K()->nn_upsample2_forward(out, in, n, c, h, w);
}

void nn_upsample2_backward(float *din, int din_add, const float *dout, int n, int c, int h, int w)
{
    K()->nn_upsample2_backward(din, din_add, dout, n, c, h, w);
}

void nn_concat_forward(float *out, const float *a, const float *b, int n, int ca, int cb, int hw)
{
    K()->nn_concat_forward(out, a, b, n, ca, cb, hw);
}

void nn_concat_backward(float *da, int da_add, float *db, int db_add, const float *dout, int n,
                        int ca, int cb, int hw)
{
    K()->nn_concat_backward(da, da_add, db, db_add, dout, n, ca, cb, hw);
}

void nn_timestep_embed(float *out, const int32_t *t, int n, int d)
{
    K()->nn_timestep_embed(out, t, n, d);
}

void nn_label_embed_forward(float *out, const int32_t *y, const float *table, int n, int d)
{
    K()->nn_label_embed_forward(out, y, table, n, d);
}

void nn_label_embed_backward(float *const dtable[], const float *dout, const int32_t *y,
                             const lethe_groups *g, int d)
{
    K()->nn_label_embed_backward(dtable, dout, y, g, d);
}

void nn_bcast_add_forward(float *out, const float *x, const float *v, int n, int c, int hw)
{
    K()->nn_bcast_add_forward(out, x, v, n, c, hw);
}

void nn_bcast_add_backward(float *dx, int dx_add, float *dv, int dv_add, const float *dout, int n,
                           int c, int hw)
{
    K()->nn_bcast_add_backward(dx, dx_add, dv, dv_add, dout, n, c, hw);
}

void nn_gelu_forward(float *out, const float *in, size_t n)
{
    K()->nn_gelu_forward(out, in, n);
}

void nn_gelu_backward(float *din, int din_add, const float *dout, const float *in, size_t n)
{
    K()->nn_gelu_backward(din, din_add, dout, in, n);
}

void nn_attention_softmax(float *p, const uint8_t *keep, int tm, int causal, int t)
{
    K()->nn_attention_softmax(p, keep, tm, causal, t);
}

void nn_attention_softmax_backward(float *dp, const float *p, float scale, int t)
{
    K()->nn_attention_softmax_backward(dp, p, scale, t);
}

void nn_vexpf(float *out, const float *in, size_t n) { K()->nn_vexpf(out, in, n); }

void nn_verff(float *out, const float *in, size_t n) { K()->nn_verff(out, in, n); }
