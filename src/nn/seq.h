/*
 * Kernels of the sequence ops (seq.c): a per-sample sequence (T, D) is
 * kept as a (1, T, D) tensor, row-major, token after token. Conventions of
 * layers.h: outputs first; backward into din stores (din_add 0) or adds;
 * weight gradients per sample group g, dw[k] += group k's share, NULL
 * skipped. Rows: R = N·T token rows; a row's sample is r / T.
 */
#ifndef LETHE_NN_SEQ_H
#define LETHE_NN_SEQ_H

#include "nn/layers.h"

/* Layer norm over the last dimension D of each of the N·T rows: out =
 * γ·(x − μ)·istd + β, istd = 1/√(var + eps) (biased variance); mean, istd
 * (N·T) saved. */
void nn_layernorm_forward(float *out, float *mean, float *istd, const float *in,
                          const float *gamma, const float *beta, int n, int t, int d, float eps);
void nn_layernorm_backward(float *din, int din_add, float *const dgamma[], float *const dbeta[],
                           const float *dout, const float *in, const float *mean,
                           const float *istd, const float *gamma, const lethe_groups *g, int t,
                           int d);

/* GELU, the exact form: x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (PyTorch's nn.GELU()).
 * Kernel-set functions (gelu.c), as are nn_attention_softmax (softmax.c)
 * and nn_vexpf, nn_verff. */
void nn_gelu_forward(float *out, const float *in, size_t n);
void nn_gelu_backward(float *din, int din_add, const float *dout, const float *in, size_t n);
/* out (n) = e^in and erf(in) by vmath.h's vectorised functions (the tests
 * check them against double precision in every set); out may be in. */
void nn_vexpf(float *out, const float *in, size_t n);
void nn_verff(float *out, const float *in, size_t n);

/* Multi-head softmax attention. qkv (N, T, 3D): per token q, k, v of D =
 * H·dh each (head h the columns h·dh .. h·dh + dh − 1, timm's layout);
 * out (N, T, D) = per head softmax(q·kᵀ/√dh + masks)·v. mask (N, TM) or
 * NULL: key j of sample i is attended only when j < shift or
 * mask[i·TM + j − shift] != 0 (shift = T − TM: tokens put before the
 * masked ones, a class token, are never masked); causal: only keys j ≤ the
 * query. A query with no key left gets 0. p (N, H, T, T) saves the
 * probabilities. ws: nn_attention_workspace floats. */
size_t nn_attention_workspace(int t);
void nn_attention_forward(float *out, float *p, const float *qkv, const uint8_t *mask, int tm,
                          int causal, int n, int t, int heads, int d);
void nn_attention_backward(float *dqkv, int din_add, const float *dout, const float *p,
                           const float *qkv, int n, int t, int heads, int d, float *ws);
/* The attention's softmax of one sample and head, in place: row r of p
 * (T, T) becomes softmax over the keys j that keep (TM bytes, key j ≥
 * shift = T − TM is kept when keep[j − shift] != 0; NULL: all) and, when
 * causal, j ≤ r allow, the other entries 0; a row with no key allowed is
 * all 0. */
void nn_attention_softmax(float *p, const uint8_t *keep, int tm, int causal, int t);
/* Its backward, in place: dp (T, T) ← scale · p ⊙ (dp − Σ_j dp·p), row by
 * row (p the probabilities it made). */
void nn_attention_softmax_backward(float *dp, const float *p, float scale, int t);

/* Per sample, out (T, M) = a (T, K) · b (K, M); backward da (T, K), db
 * (K, M) (either NULL). */
void nn_matmul_forward(float *out, const float *a, const float *b, int n, int t, int k, int mm);
void nn_matmul_backward(float *da, int da_add, float *db, int db_add, const float *dout,
                        const float *a, const float *b, int n, int t, int k, int mm);

/* Image to tokens: in (N, C, HW) → out (N, HW, C) (a transpose per sample). */
void nn_tokens_forward(float *out, const float *in, int n, int c, int hw);
void nn_tokens_backward(float *din, int din_add, const float *dout, int n, int c, int hw);

/* Mean over the tokens of each sample: in (N, T, D) → out (N, D), the
 * tokens that mask (N, TM) (NULL: all; shift as attention's) keeps. */
void nn_token_mean_forward(float *out, const float *in, const uint8_t *mask, int tm, int n, int t,
                           int d);
void nn_token_mean_backward(float *din, int din_add, const float *dout, const uint8_t *mask,
                            int tm, int n, int t, int d);

#endif
