/* Group normalisation (Wu & He 2018) with an optional fused SiLU, as the
 * DDPM U-Net uses it (GroupNorm then SiLU before every conv):
 *     xhat = (x − μ_{i,q})·istd_{i,q},  y = γ_c·xhat + β_c,  out = y or y·σ(y)
 * μ, σ² over the (C/ng)·HW values of sample i's channel group q (biased
 * variance, as PyTorch). Statistics never mix samples, so a group of
 * samples is normalised exactly as its own forward pass would be; only
 * dγ and dβ are split by sample group (ALGORITHM.md §2.1).
 * Backward, with dy = dout·σ(y)(1 + y(1 − σ(y))) under SiLU and M the
 * values of the channel group:
 *     din = istd·(γ·dy − mean_M(γ·dy) − xhat·mean_M(γ·dy·xhat))
 * y is recomputed from in, μ, istd with the forward's float operations,
 * so nothing of full size is saved. Sums are in double. */
#include "nn/layers.h"

#include <math.h>

#define GN_PAR_MIN 32768

/* Σ (p[j] − c)^e over n values, e = 1 or 2 (c = 0 for e = 1), in double.
 * Eight lanes in a fixed-length inner loop, which GCC vectorises (an omp
 * simd reduction over doubles it does not), added up in lane order:
 * deterministic. */
static inline __attribute__((always_inline)) double
gn_sum(const float *p, size_t n, double c, const int e)
{
    double a[8] = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) {
            const double d = (double)p[j + l] - c;
            a[l] += e == 2 ? d * d : d;
        }
    double s = 0.0;
    for (int l = 0; l < 8; l++) s += a[l];
    for (; j < n; j++) {
        const double d = (double)p[j] - c;
        s += e == 2 ? d * d : d;
    }
    return s;
}

/* out (N, C, HW); mean, istd (N, ng); in (N, C, HW); gamma, beta (C). */
void nn_groupnorm_forward(float *out, float *mean, float *istd, const float *in,
                          const float *gamma, const float *beta, int n, int c, int hw,
                          int ng, float eps, int silu)
{
    const int cpg = c / ng;
    const size_t cnt = (size_t)cpg * hw;
#pragma omp parallel for schedule(static) if ((long)n * c * hw > GN_PAR_MIN)
    for (int iq = 0; iq < n * ng; iq++) {
        const int i = iq / ng, q = iq % ng;
        const size_t o = ((size_t)i * c + (size_t)q * cpg) * hw;
        const float *p = in + o;
        const double mu = gn_sum(p, cnt, 0.0, 1) / (double)cnt;
        /* Two passes: no cancellation in E[x²] − μ². */
        const double ss = gn_sum(p, cnt, mu, 2);
        const float mf = (float)mu, isf = (float)(1.0 / sqrt(ss / (double)cnt + eps));
        mean[iq] = mf;
        istd[iq] = isf;
        for (int cc = 0; cc < cpg; cc++) {
            const int ch = q * cpg + cc;
            const float ga = gamma[ch], be = beta[ch];
            const float *x = p + (size_t)cc * hw;
            float *y = out + o + (size_t)cc * hw;
            if (silu) {
#pragma omp simd
                for (int j = 0; j < hw; j++) {
                    const float v = ga * ((x[j] - mf) * isf) + be;
                    y[j] = v * nn_sigmoidf(v);
                }
            } else {
#pragma omp simd
                for (int j = 0; j < hw; j++) y[j] = ga * ((x[j] - mf) * isf) + be;
            }
        }
    }
}

/* dy at j: dout, times SiLU's derivative at the recomputed y when silu. */
static inline float gn_dy(const float *dout, const float *x, int j, float ga, float be,
                          float mf, float isf, const int silu)
{
    if (!silu) return dout[j];
    const float v = ga * ((x[j] - mf) * isf) + be;
    const float s = nn_sigmoidf(v);
    return dout[j] * (s * (1.0f + v * (1.0f - s)));
}

/* *sdy += Σ dy, *sdyx += Σ dy·xhat over a plane of hw values, in double
 * lanes as gn_sum. */
static inline __attribute__((always_inline)) void
gn_plane_sums(const float *dout, const float *x, int hw, float ga, float be, float mf,
              float isf, double *sdy, double *sdyx, const int silu)
{
    double a[8] = {0}, b[8] = {0};
    int j = 0;
    for (; j + 8 <= hw; j += 8)
        for (int l = 0; l < 8; l++) {
            const float d = gn_dy(dout, x, j + l, ga, be, mf, isf, silu);
            a[l] += d;
            b[l] += (double)d * ((x[j + l] - mf) * isf);
        }
    double sa = 0.0, sb = 0.0;
    for (int l = 0; l < 8; l++) {
        sa += a[l];
        sb += b[l];
    }
    for (; j < hw; j++) {
        const float d = gn_dy(dout, x, j, ga, be, mf, isf, silu);
        sa += d;
        sb += (double)d * ((x[j] - mf) * isf);
    }
    *sdy += sa;
    *sdyx += sb;
}

/* One channel group q over all samples: dγ, dβ of its channels are written
 * by this call alone, so aliased dgamma[k] need no locking. */
static inline __attribute__((always_inline)) void
gn_backward_group(float *din, int din_add, float *const dgamma[], float *const dbeta[],
                  const float *dout, const float *in, const float *mean, const float *istd,
                  const float *gamma, const float *beta, int c, int hw, int ng,
                  const lethe_groups *g, int q, const int silu)
{
    const int cpg = c / ng;
    const double cnt = (double)cpg * hw;
    for (int k = 0; k < g->n; k++) {
        float *dga = dgamma ? dgamma[k] : NULL, *dbe = dbeta ? dbeta[k] : NULL;
        for (int i = g->start[k]; i < g->start[k + 1]; i++) {
            const float mf = mean[(size_t)i * ng + q], isf = istd[(size_t)i * ng + q];
            const size_t o = ((size_t)i * c + (size_t)q * cpg) * hw;
            double a = 0.0, b = 0.0;   /* Σ γ·dy, Σ γ·dy·xhat over the group */
            for (int cc = 0; cc < cpg; cc++) {
                const int ch = q * cpg + cc;
                const float ga = gamma[ch], be = beta[ch];
                const float *x = in + o + (size_t)cc * hw, *dy = dout + o + (size_t)cc * hw;
                double sdy = 0.0, sdyx = 0.0;
                gn_plane_sums(dy, x, hw, ga, be, mf, isf, &sdy, &sdyx, silu);
                if (dga) dga[ch] += (float)sdyx;
                if (dbe) dbe[ch] += (float)sdy;
                a += ga * sdy;
                b += ga * sdyx;
            }
            if (!din) continue;
            const float ma = (float)(a / cnt), mb = (float)(b / cnt);
            for (int cc = 0; cc < cpg; cc++) {
                const int ch = q * cpg + cc;
                const float ga = gamma[ch], be = beta[ch];
                const size_t oc = o + (size_t)cc * hw;
                const float *x = in + oc, *dy = dout + oc;
                float *dx = din + oc;
                if (din_add) {
#pragma omp simd
                    for (int j = 0; j < hw; j++)
                        dx[j] += isf * (ga * gn_dy(dy, x, j, ga, be, mf, isf, silu) - ma -
                                        ((x[j] - mf) * isf) * mb);
                } else {
#pragma omp simd
                    for (int j = 0; j < hw; j++)
                        dx[j] = isf * (ga * gn_dy(dy, x, j, ga, be, mf, isf, silu) - ma -
                                       ((x[j] - mf) * isf) * mb);
                }
            }
        }
    }
}

void nn_groupnorm_backward(float *din, int din_add, float *const dgamma[],
                           float *const dbeta[], const float *dout, const float *in,
                           const float *mean, const float *istd, const float *gamma,
                           const float *beta, int c, int hw, int ng, const lethe_groups *g,
                           int silu)
{
    const long work = (long)g->start[g->n] * c * hw;
    (void)work;
    /* Two loops, so each outlined body sees silu as a constant. */
    if (silu) {
#pragma omp parallel for schedule(dynamic, 1) if (work > GN_PAR_MIN)
        for (int q = 0; q < ng; q++)
            gn_backward_group(din, din_add, dgamma, dbeta, dout, in, mean, istd, gamma, beta,
                              c, hw, ng, g, q, 1);
    } else {
#pragma omp parallel for schedule(dynamic, 1) if (work > GN_PAR_MIN)
        for (int q = 0; q < ng; q++)
            gn_backward_group(din, din_add, dgamma, dbeta, dout, in, mean, istd, gamma, beta,
                              c, hw, ng, g, q, 0);
    }
}
