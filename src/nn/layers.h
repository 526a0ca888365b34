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

/* linear: in (N, IN), w (OUT, IN), b (OUT) or NULL, out (N, OUT). */
void nn_linear_forward(float *out, const float *in, const float *w, const float *b,
                       int n, int in_f, int out_f);
void nn_linear_backward(float *din, float *const dw[], float *const db[],
                        const float *dout, const float *in, const float *w,
                        const lethe_groups *g, int in_f, int out_f);

/* conv2d (cross-correlation, like PyTorch): in (N, C, H, W), w (OC, C, KH, KW),
 * b (OC) or NULL, out (N, OC, OH, OW) with OH = (H + 2·pad − KH)/stride + 1. */
typedef struct { int n, c, h, w, oc, kh, kw, stride, pad, oh, ow; } nn_conv_shape;
void nn_conv_shape_set(nn_conv_shape *s, int n, int c, int h, int w, int oc,
                       int k, int stride, int pad);
/* Scratch floats that forward and backward need for this shape. */
size_t nn_conv2d_workspace(const nn_conv_shape *s);
void nn_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                       const nn_conv_shape *s, float *ws);
void nn_conv2d_backward(float *din, float *const dw[], float *const db[],
                        const float *dout, const float *in, const float *w,
                        const nn_conv_shape *s, const lethe_groups *g, float *ws);

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

/* ReLU; backward uses the OUTPUT (out > 0), so it may run in place. */
void nn_relu_forward(float *out, const float *in, size_t n);
void nn_relu_backward(float *din, const float *dout, const float *out, size_t n);

/* out = a + b (residual); backward: da += dout, db += dout. */
void nn_add_forward(float *out, const float *a, const float *b, size_t n);
void nn_add_backward(float *da, float *db, const float *dout, size_t n);

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

/* Mean squared error per sample over d values: losses[i] = mean_j (p−t)²;
 * dpred (+=) w[i]·2(p−t)/d. w NULL means 1. */
void nn_mse(float *losses, float *dpred, const float *pred, const float *target,
            const float *w, int n, int d);

#endif
