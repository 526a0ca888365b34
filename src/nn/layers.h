/*
 * Layer kernels: each a forward/backward pair of free functions, outputs
 * first (llm.c style). Tensors are float, NCHW, contiguous. Backward
 * ACCUMULATES (+=) into input gradients and weight gradients; a NULL
 * destination is skipped (e.g. din of the first layer).
 *
 * Weight gradients are grouped (ALGORITHM.md §2.1): dw[k] receives the part
 * of ∂L/∂w that comes from the samples of group k, g->start[k] ..
 * g->start[k+1]-1. Several dw[k] may point at the same memory (then it gets
 * the sum), or be NULL (that group's share is not computed).
 */
#ifndef LETHE_NN_LAYERS_H
#define LETHE_NN_LAYERS_H

#include "lethe.h"
#include "nn/kernel_names.h"   /* in a kernel set's objects: the set's names */
#ifdef _OPENMP
#include <omp.h>
#endif

/* Threads the kernels' OpenMP regions use around cblas_sgemm calls: 1 when
 * a pthread OpenBLAS has several threads of its own (they would fight over
 * the cores), else omp_get_max_threads(). */
int nn_outer_threads(void);

/* The calling thread's number in its OpenMP team (0 without OpenMP). */
static inline int nn_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* What a conv or linear kernel applies to its output before writing it
 * (graph fusion, model.c): a ReLU, and for conv then a k×k max pool with
 * stride s (pool_k = 0: none), as nn_relu_forward and nn_maxpool_forward
 * would, with the same float operations. */
/* A batch norm's backward whose last pass (din from dout and the sums) a
 * conv runs as it builds its own output gradient: the conv's output x is
 * the batch norm's input, dy the batch norm's output gradient. mean, istd
 * (G, C) and sums (G, C, 2: mean(dy), mean(dy·xhat), as
 * nn_batchnorm_backward_sums leaves them) per group of g; gamma, beta (C)
 * or NULL; relu: a ReLU fused after the batch norm; eval: running
 * statistics were used (din = γ·istd·dy). */
typedef struct {
    const float *dy, *x, *mean, *istd, *sums, *gamma, *beta;
    const lethe_groups *g;
    int relu, eval;
} nn_bn_grad;

/* A batch norm (and ReLU) applied to a conv's input as the conv copies it
 * into its padded planes, so that the normalised tensor is never written:
 * in = relu?(γ·((x − μ)·istd) + β) with μ, istd (G, C) of each sample's
 * group of g, the operations of nn_batchnorm_forward_ex. Only for convs
 * that copy their input (nn_conv2d_takes_affine). */
typedef struct {
    const float *mean, *istd, *gamma, *beta;
    const lethe_groups *g;
    int relu;
} nn_affine;

/* An nn_affine's constants for one plane: γ, β (1, 0 when absent) of
 * channel c, μ, istd of sample `sample`'s group (nc channels). Also the
 * residual sum's, for a batch norm left to it (nn_add_bn_forward). */
typedef struct { float ga, be, mf, isf; } nn_affine_plane;

static inline nn_affine_plane nn_affine_at(const nn_affine *af, int sample, int c, int nc)
{
    int k = 0;
    while (k + 1 < af->g->n && sample >= af->g->start[k + 1]) k++;
    return (nn_affine_plane){af->gamma ? af->gamma[c] : 1.0f, af->beta ? af->beta[c] : 0.0f,
                             af->mean[(size_t)k * nc + c], af->istd[(size_t)k * nc + c]};
}

typedef struct {
    int relu;
    int pool_k, pool_s;
    const nn_affine *in_affine;  /* forward and backward, or NULL: `in` is the
                                    batch norm's input, normalised on the way */
    float *stats;   /* conv without pool, or NULL: (N, OC, 3) nn_plane_stats of each
                       output plane, for a batch norm that reads it */
    const nn_bn_grad *bn;  /* backward, conv without ReLU or pool, or NULL: dout is
                              not given but made from this batch norm's backward */
} nn_epilogue;

/* One value of batch norm's output before its ReLU: γ·((x − μ)·istd) + β.
 * Every place that normalises, or recomputes the ReLU's mask, uses it, so
 * that the values agree bit for bit wherever they are made. */
static inline float nn_bn_y(float x, float ga, float be, float mf, float isf)
{
    return ga * ((x - mf) * isf) + be;
}

/* One value of batch norm's input gradient, the operations of
 * nn_batchnorm_backward_ex's last pass: d the output gradient at input
 * value p, scale = γ·istd, mdy and mdyx the group's means. */
static inline float nn_bn_dx(float d, float p, float ga, float be, float mf, float isf,
                             float scale, float mdy, float mdyx, const int relu, const int eval)
{
    if (relu) d = nn_bn_y(p, ga, be, mf, isf) > 0.0f ? d : 0.0f;
    const float xh = (p - mf) * isf;
    return eval ? scale * d : scale * (d - mdy - xh * mdyx);
}

/* Statistics of one plane of hw floats, as batch norm merges them: pm = its
 * sum over hw (16 float lanes, added in lane order), s1 = Σ (x − pm), s2 =
 * Σ (x − pm)², both in lanes again (a second pass over a plane still in
 * cache). The same code wherever it runs, so the values are the same
 * whether a conv's epilogue or the batch norm computes them. */
typedef float nn_v8f __attribute__((vector_size(32)));

/* v ← 8 floats at p, unaligned (a macro: a function returning a 32-byte
 * vector has another ABI without AVX). */
#define NN_V8_LOAD(v, p) __builtin_memcpy(&(v), (p), sizeof(nn_v8f))

static inline void nn_plane_stats(const float *p, int hw, float st[3])
{
    /* Lanes 0–7 in a0, 8–15 in a1: registers, not an array in memory. */
    nn_v8f a0 = {0}, a1 = {0};
    int j = 0;
    for (; j + 16 <= hw; j += 16) {
        nn_v8f x0, x1;
        NN_V8_LOAD(x0, p + j);
        NN_V8_LOAD(x1, p + j + 8);
        a0 += x0;
        a1 += x1;
    }
    float sum = 0.0f;
    for (int l = 0; l < 8; l++) sum += a0[l];
    for (int l = 0; l < 8; l++) sum += a1[l];
    for (; j < hw; j++) sum += p[j];
    const float pm = sum / (float)hw;
    const nn_v8f m = {pm, pm, pm, pm, pm, pm, pm, pm};
    nn_v8f b0 = {0}, b1 = {0};
    a0 = (nn_v8f){0};
    a1 = (nn_v8f){0};
    for (j = 0; j + 16 <= hw; j += 16) {
        nn_v8f d0, d1;
        NN_V8_LOAD(d0, p + j);
        NN_V8_LOAD(d1, p + j + 8);
        d0 -= m;
        d1 -= m;
        a0 += d0;
        a1 += d1;
        b0 += d0 * d0;
        b1 += d1 * d1;
    }
    float s1 = 0.0f, s2 = 0.0f;
    for (int l = 0; l < 8; l++) {
        s1 += a0[l];
        s2 += b0[l];
    }
    for (int l = 0; l < 8; l++) {
        s1 += a1[l];
        s2 += b1[l];
    }
    for (; j < hw; j++) {
        const float d = p[j] - pm;
        s1 += d;
        s2 += d * d;
    }
    st[0] = pm;
    st[1] = s1;
    st[2] = s2;
}

/* linear: in (N, IN), w (OUT, IN), b (OUT) or NULL, out (N, OUT). */
void nn_linear_forward(float *out, const float *in, const float *w, const float *b,
                       int n, int in_f, int out_f);
void nn_linear_backward(float *din, float *const dw[], float *const db[],
                        const float *dout, const float *in, const float *w,
                        const lethe_groups *g, int in_f, int out_f);
/* Fused forms: out = max(·, 0) when relu; din overwritten unless din_add
 * (dout must already be masked by the caller for a fused ReLU). */
void nn_linear_forward_ex(float *out, const float *in, const float *w, const float *b,
                          int n, int in_f, int out_f, int relu);
void nn_linear_backward_ex(float *din, int din_add, float *const dw[], float *const db[],
                           const float *dout, const float *in, const float *w,
                           const lethe_groups *g, int in_f, int out_f);

/* conv2d (cross-correlation, like PyTorch): in (N, C, H, W), w (OC, C, KH, KW),
 * b (OC) or NULL, out (N, OC, OH, OW) with OH = (H + 2·pad − KH)/stride + 1. */
typedef struct { int n, c, h, w, oc, kh, kw, stride, pad, oh, ow; } nn_conv_shape;
void nn_conv_shape_set(nn_conv_shape *s, int n, int c, int h, int w, int oc,
                       int k, int stride, int pad);
/* Scratch floats that forward and backward need for this shape. */
size_t nn_conv2d_workspace(const nn_conv_shape *s);
/* 1 when this conv's lowering copies its input into padded planes (and
 * so can apply an nn_affine on the way). */
int nn_conv2d_takes_affine(const nn_conv_shape *s);
/* With 8 or more input channels, 3×3 stride-1 pad-1 convs on planes at
 * least 12 wide run as Winograd F(2×2, 3×3) (conv_winograd.c), and
 * stride-2 convs (3×3 pad 1, 1×1 pad 0) on the input's phase planes,
 * unless this is 0 (the padded grid's direct kernel and im2col only): for tests and
 * benchmarks that compare the lowerings. Set it before sizing workspaces
 * (they differ); not thread-safe. */
void nn_conv_set_fast_paths(int on);
int nn_conv_fast_paths(void);   /* the switch, one for every kernel set (kernels.c) */
void nn_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                       const nn_conv_shape *s, float *ws);
void nn_conv2d_backward(float *din, float *const dw[], float *const db[],
                        const float *dout, const float *in, const float *w,
                        const nn_conv_shape *s, const lethe_groups *g, float *ws);
/* With an epilogue (ep NULL: none). Forward: out (N, OC, OH, OW), or
 * (N, OC, PH, PW) with arg (N, OC, PH, PW) (flat index within the conv
 * output plane, as nn_maxpool_forward) when it pools. Backward: dout is
 * the gradient of that output, out and arg the forward's (read for a ReLU
 * or a pool, else may be NULL); din is overwritten unless din_add. The
 * workspace is nn_conv2d_workspace(s) either way. */
void nn_conv2d_forward_ex(float *out, int32_t *arg, const float *in, const float *w,
                          const float *b, const nn_conv_shape *s, const nn_epilogue *ep,
                          float *ws);
void nn_conv2d_backward_ex(float *din, int din_add, float *const dw[], float *const db[],
                           const float *dout, const float *out, const int32_t *arg,
                           const float *in, const float *w, const nn_conv_shape *s,
                           const nn_epilogue *ep, const lethe_groups *g, float *ws);

/* max pool k×k, stride s, no padding: in (N, C, H, W) → out (N, C, OH, OW),
 * OH = (H − k)/s + 1. arg (N, C, OH, OW) saves the flat index (in h·W + w
 * within its channel plane) of each maximum; ties go to the first. */
void nn_maxpool_forward(float *out, int32_t *arg, const float *in,
                        int n, int c, int h, int w, int k, int s);
void nn_maxpool_backward(float *din, const float *dout, const int32_t *arg,
                         int n, int c, int h, int w, int oh, int ow);

/* global average pool: in (N, C, HW) → out (N, C). */
void nn_gap_forward(float *out, const float *in, int n, int c, int hw);
void nn_gap_backward(float *din, const float *dout, int n, int c, int hw);
void nn_gap_backward_ex(float *din, int din_add, const float *dout, int n, int c, int hw);

/* ReLU; backward uses the OUTPUT (out > 0), so it may run in place. */
void nn_relu_forward(float *out, const float *in, size_t n);
void nn_relu_backward(float *din, const float *dout, const float *out, size_t n);
/* d (n) = 0 where out <= 0, in place: the backward of a fused ReLU. */
void nn_relu_mask(float *d, const float *out, size_t n);

/* out = a + b (residual); backward: da += dout, db += dout. */
void nn_add_forward(float *out, const float *a, const float *b, size_t n);
void nn_add_backward(float *da, float *db, const float *dout, size_t n);
/* Fused: out = max(a + b, 0) when relu. Backward: da, db (or NULL) get
 * dout (+= when *_add, else =); with relu_out, dout is first masked in
 * place by relu_out > 0 (so it must be the caller's scratch). */
void nn_add_forward_ex(float *out, const float *a, const float *b, size_t n, int relu);
void nn_add_backward_ex(float *da, int da_add, float *db, int db_add, float *dout,
                        const float *relu_out, size_t n);
/* out (N, C, HW) = a + b, then max(·, 0) when relu, where an operand with
 * an affine (aa, ab; NULL: none) is the batch norm of the tensor given
 * (its μ, istd per group and γ, β: the operations of
 * nn_batchnorm_forward_ex, so the sum has the bits of the two passes;
 * the affines' relu must be 0). The sum after a batch norm that did not
 * write its output (nn_fuse's bn_to_add). */
void nn_add_bn_forward(float *out, const float *a, const nn_affine *aa, const float *b,
                       const nn_affine *ab, int n, int c, int hw, int relu);

/* Batch norm over (N, C, HW) per channel, statistics per sample group.
 * TRAIN: batch statistics (biased variance to normalise), running averages
 *        updated per group in order, PyTorch-style: run = (1−m)·run + m·stat
 *        with the unbiased variance.
 * BATCH: batch statistics, running averages untouched.
 * EVAL:  running averages.
 * Saved for backward: xhat (N, C, HW) and istd (G, C) (1/√(var+eps) per
 * group and channel; in EVAL mode from the running variance). */
void nn_batchnorm_forward(float *out, float *xhat, float *istd,
                          const float *in, const float *gamma, const float *beta,
                          float *run_mean, float *run_var,
                          int n, int c, int hw, const lethe_groups *g,
                          lethe_bn_mode mode, float momentum, float eps);
void nn_batchnorm_backward(float *din, float *const dgamma[], float *const dbeta[],
                           const float *dout, const float *xhat, const float *istd,
                           const float *gamma, int n, int c, int hw,
                           const lethe_groups *g, lethe_bn_mode mode);
/* The model's form: saves mean (G, C) and istd (G, C) instead of xhat and
 * recomputes xhat from `in` in backward (the same values); relu fuses a
 * following ReLU (backward: relu says so, and the ReLU's mask is
 * recomputed from in, mean, istd, gamma and beta, not read from the
 * output); din is overwritten unless din_add. pstats (N, C, 3), or NULL: the
 * nn_plane_stats of every plane of `in`, already computed by the conv that
 * wrote it, so that batch statistics need no pass over `in`. out NULL:
 * statistics only (the conv after applies them, nn_affine). */
void nn_batchnorm_forward_ex(float *out, float *mean, float *istd,
                             const float *in, const float *gamma, const float *beta,
                             float *run_mean, float *run_var,
                             int n, int c, int hw, const lethe_groups *g,
                             lethe_bn_mode mode, float momentum, float eps, int relu,
                             const float *pstats);
void nn_batchnorm_backward_ex(float *din, int din_add, float *const dgamma[],
                              float *const dbeta[], const float *dout, int relu,
                              const float *in, const float *mean, const float *istd,
                              const float *gamma, const float *beta, int n, int c, int hw,
                              const lethe_groups *g, lethe_bn_mode mode);
/* The same without the last pass: dgamma, dbeta as above, and sums
 * (G, C, 2) ← mean(dy) and mean(dy·xhat) per group and channel (0 in
 * EVAL mode), for the conv that makes din (nn_bn_grad). */
void nn_batchnorm_backward_sums(float *const dgamma[], float *const dbeta[], float *sums,
                                const float *dout, int relu, const float *in,
                                const float *mean, const float *istd, const float *gamma,
                                const float *beta, int n, int c, int hw, const lethe_groups *g,
                                lethe_bn_mode mode);

/* Mean squared error per sample over d values: losses[i] = mean_j (p−t)²;
 * dpred (+=) w[i]·2(p−t)/d. w NULL means 1. */
void nn_mse(float *losses, float *dpred, const float *pred, const float *target,
            const float *w, int n, int d);

/* ---------------------------------------------------- Generation layers */

/* σ(x) = 1/(1 + e^−x) with an exponential GCC vectorises in simd loops
 * (glibc's expf stays a call per lane): e^v = 2^k·e^r, k = round(v/ln 2)
 * (by adding and subtracting 1.5·2²³), |r| ≤ ln2/2, e^r by Cephes'
 * polynomial (relative error ~1e-7). v is clamped to ±87 so 2^k stays a
 * normal float (a NaN becomes 87: SiLU's x·σ(x) is still NaN). No
 * branches, so the loops that call it vectorise. SiLU's forward and
 * backward both use it, so their values agree. */
static inline float nn_sigmoidf(float x)
{
    float v = -x;
    v = v < 87.0f ? v : 87.0f;
    v = v > -87.0f ? v : -87.0f;
    const float k = (v * 1.44269504f + 12582912.0f) - 12582912.0f;
    const float r = v - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float er = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t)k + 127) * (1 << 23);   /* 2^k as float bits */
    float two_k;
    __builtin_memcpy(&two_k, &bits, sizeof two_k);
    return 1.0f / (1.0f + er * two_k);
}

/* Group norm over (N, C, HW): the C channels form ng groups of C/ng; each
 * (sample, group) is normalised by its own mean and biased variance over
 * its (C/ng)·HW values, then out = γ_c·xhat + β_c, then (silu) out·σ(out).
 * Statistics are per sample, so sample groups need nothing special in
 * forward. mean, istd (N, ng) are saved for backward; gamma, beta (C). */
void nn_groupnorm_forward(float *out, float *mean, float *istd, const float *in,
                          const float *gamma, const float *beta, int n, int c, int hw,
                          int ng, float eps, int silu);
/* dout (N, C, HW) is the gradient of the output (after the SiLU when
 * silu); din (N, C, HW) or NULL, += when din_add, else =; dgamma[k],
 * dbeta[k] (C) per sample group (+=), NULL skips. in, mean, istd, gamma,
 * beta as the forward's (the pre-SiLU value is recomputed from them). */
void nn_groupnorm_backward(float *din, int din_add, float *const dgamma[],
                           float *const dbeta[], const float *dout, const float *in,
                           const float *mean, const float *istd, const float *gamma,
                           const float *beta, int c, int hw, int ng, const lethe_groups *g,
                           int silu);

/* SiLU x·σ(x), elementwise over n; backward reads the INPUT and
 * accumulates (din_add) or stores: din = dout·σ(x)·(1 + x·(1 − σ(x))). */
void nn_silu_forward(float *out, const float *in, size_t n);
void nn_silu_backward(float *din, int din_add, const float *dout, const float *in, size_t n);

/* Nearest-neighbour ×2 upsampling: in (N, C, H, W) → out (N, C, 2H, 2W);
 * backward din (N, C, H, W) gets the sum of its four copies' gradients
 * (+= when din_add, else =). */
void nn_upsample2_forward(float *out, const float *in, int n, int c, int h, int w);
void nn_upsample2_backward(float *din, int din_add, const float *dout, int n, int c, int h,
                           int w);

/* Channel concatenation: a (N, CA, HW), b (N, CB, HW) → out (N, CA+CB, HW);
 * backward splits dout into da, db (either NULL; += when *_add, else =). */
void nn_concat_forward(float *out, const float *a, const float *b, int n, int ca, int cb,
                       int hw);
void nn_concat_backward(float *da, int da_add, float *db, int db_add, const float *dout,
                        int n, int ca, int cb, int hw);

/* Sinusoidal timestep embedding (Transformer/DDPM): t (N) → out (N, D),
 * out[i][j] = sin(t_i·f_j), out[i][D/2 + j] = cos(t_i·f_j) for j < D/2,
 * f_j = exp(−ln(10000)·j/(D/2)); an odd D's last column is 0. No
 * parameters, no backward. */
void nn_timestep_embed(float *out, const int32_t *t, int n, int d);
/* Label embedding: out (N, D) = rows y_i of table (K, D); the caller has
 * checked 0 ≤ y_i < K. Backward scatter-adds dout's rows into dtable[k]
 * (K, D) of each sample group k (+=; NULL skips). */
void nn_label_embed_forward(float *out, const int32_t *y, const float *table, int n, int d);
void nn_label_embed_backward(float *const dtable[], const float *dout, const int32_t *y,
                             const lethe_groups *g, int d);
/* Channel-broadcast add: out (N, C, HW) = x (N, C, HW) + v (N, C) over HW.
 * Backward: dx = dout, dv = Σ_HW dout (either NULL; += when *_add, else =). */
void nn_bcast_add_forward(float *out, const float *x, const float *v, int n, int c, int hw);
void nn_bcast_add_backward(float *dx, int dx_add, float *dv, int dv_add, const float *dout,
                           int n, int c, int hw);

#endif
