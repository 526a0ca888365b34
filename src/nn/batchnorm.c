/* Batch normalisation over (N, C, HW) per channel, with statistics per
 * sample group: each group is normalised alone, exactly as a separate
 * PyTorch forward pass over its samples would be (ALGORITHM.md §2.1), so
 * that one backward pass yields each group's exact gradient.
 *     xhat = (x − μ_k)·istd_k,  istd_k = 1/√(σ²_k + eps),  out = γ·xhat + β
 * σ²_k is the biased variance; the running variance gets the unbiased one
 * (PyTorch). Statistics are summed in double: a channel of a large batch
 * has 10⁵ values. The element loops are marked simd: out may be in (same
 * index read, then written), nothing else overlaps. */
#include "nn/layers.h"

#include <math.h>

/* Sum of x over samples [s, e) of channel ch: x (N, C, HW). */
static double chan_sum(const float *x, int s, int e, int c, int hw, int ch)
{
    double sum = 0.0;
    for (int i = s; i < e; i++) {
        const float *p = x + ((size_t)i * c + ch) * hw;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < hw; j++) sum += p[j];
    }
    return sum;
}

/* out, xhat (N, C, HW); istd (G, C); in (N, C, HW); gamma, beta (C) or NULL
 * (1 and 0); run_mean, run_var (C). */
void nn_batchnorm_forward(float *out, float *xhat, float *istd,
                          const float *in, const float *gamma, const float *beta,
                          float *run_mean, float *run_var,
                          int n, int c, int hw, const lethe_groups *g,
                          lethe_bn_mode mode, float momentum, float eps)
{
    /* n only sizes the threading: the groups say which samples exist. */
    (void)n;
#pragma omp parallel for schedule(dynamic, 1) if ((long)n * c * hw > 32768)
    for (int ch = 0; ch < c; ch++) {
        const float ga = gamma ? gamma[ch] : 1.0f, be = beta ? beta[ch] : 0.0f;
        /* Running stats change group after group, in order, inside this
         * channel's iteration: no other thread touches them. */
        for (int k = 0; k < g->n; k++) {
            const int s = g->start[k], e = g->start[k + 1];
            const size_t cnt = (size_t)(e - s) * hw;
            double mean, is;
            if (mode == LETHE_BN_EVAL) {
                mean = run_mean[ch];
                is = 1.0 / sqrt((double)run_var[ch] + eps);
            } else {
                if (cnt == 0) {
                    istd[(size_t)k * c + ch] = 0.0f;
                    continue;
                }
                mean = chan_sum(in, s, e, c, hw, ch) / (double)cnt;
                double ss = 0.0;   /* two passes: no cancellation in E[x²] − μ² */
                for (int i = s; i < e; i++) {
                    const float *p = in + ((size_t)i * c + ch) * hw;
#pragma omp simd reduction(+ : ss)
                    for (int j = 0; j < hw; j++) ss += ((double)p[j] - mean) * ((double)p[j] - mean);
                }
                double var = ss / (double)cnt;
                is = 1.0 / sqrt(var + eps);
                if (mode == LETHE_BN_TRAIN) {
                    /* One value per channel: PyTorch refuses; keep var finite. */
                    double unbiased = cnt > 1 ? ss / (double)(cnt - 1) : var;
                    run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + momentum * mean);
                    run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + momentum * unbiased);
                }
            }
            istd[(size_t)k * c + ch] = (float)is;
            const float mf = (float)mean, isf = (float)is;
            for (int i = s; i < e; i++) {
                const size_t o = ((size_t)i * c + ch) * hw;
                const float *p = in + o;
                float *q = out + o;
                if (xhat) {
                    float *xh = xhat + o;
#pragma omp simd
                    for (int j = 0; j < hw; j++) {
                        float v = (p[j] - mf) * isf;
                        xh[j] = v;
                        q[j] = ga * v + be;
                    }
                } else {
#pragma omp simd
                    for (int j = 0; j < hw; j++) q[j] = ga * ((p[j] - mf) * isf) + be;
                }
            }
        }
    }
}

/* din (N, C, HW) or NULL; dgamma[k], dbeta[k] (C) per group, NULL skips;
 * dout, xhat (N, C, HW); istd (G, C); gamma (C) or NULL (1).
 * With batch statistics, μ and σ depend on every sample of the group:
 *     din = γ·istd·(dout − mean(dout) − xhat·mean(dout·xhat))
 * In EVAL mode they are constants and din = γ·istd·dout. */
void nn_batchnorm_backward(float *din, float *const dgamma[], float *const dbeta[],
                           const float *dout, const float *xhat, const float *istd,
                           const float *gamma, int n, int c, int hw,
                           const lethe_groups *g, lethe_bn_mode mode)
{
    (void)n;
#pragma omp parallel for schedule(dynamic, 1) if ((long)n * c * hw > 32768)
    for (int ch = 0; ch < c; ch++) {
        const float ga = gamma ? gamma[ch] : 1.0f;
        /* Aliased dgamma[k] of one channel are all written by this thread. */
        for (int k = 0; k < g->n; k++) {
            const int s = g->start[k], e = g->start[k + 1];
            const size_t cnt = (size_t)(e - s) * hw;
            if (cnt == 0) continue;
            double sdy = 0.0, sdyx = 0.0;
            for (int i = s; i < e; i++) {
                const size_t o = ((size_t)i * c + ch) * hw;
                const float *dy = dout + o, *xh = xhat + o;
#pragma omp simd reduction(+ : sdy, sdyx)
                for (int j = 0; j < hw; j++) {
                    sdy += dy[j];
                    sdyx += (double)dy[j] * xh[j];
                }
            }
            if (dgamma && dgamma[k]) dgamma[k][ch] += (float)sdyx;
            if (dbeta && dbeta[k]) dbeta[k][ch] += (float)sdy;
            if (!din) continue;
            const float scale = ga * istd[(size_t)k * c + ch];
            if (mode == LETHE_BN_EVAL) {
                for (int i = s; i < e; i++) {
                    const size_t o = ((size_t)i * c + ch) * hw;
#pragma omp simd
                    for (int j = 0; j < hw; j++) din[o + j] += scale * dout[o + j];
                }
            } else {
                const float mdy = (float)(sdy / (double)cnt), mdyx = (float)(sdyx / (double)cnt);
                for (int i = s; i < e; i++) {
                    const size_t o = ((size_t)i * c + ch) * hw;
                    const float *dy = dout + o, *xh = xhat + o;
                    float *dx = din + o;
#pragma omp simd
                    for (int j = 0; j < hw; j++) dx[j] += scale * (dy[j] - mdy - xh[j] * mdyx);
                }
            }
        }
    }
}
