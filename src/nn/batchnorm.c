/* Batch normalisation over (N, C, HW) per channel, with statistics per
 * sample group: each group is normalised alone, exactly as a separate
 * PyTorch forward pass over its samples would be (ALGORITHM.md §2.1), so
 * that one backward pass yields each group's exact gradient.
 *     xhat = (x − μ_k)·istd_k,  istd_k = 1/√(σ²_k + eps),  out = γ·xhat + β
 * σ²_k is the biased variance; the running variance gets the unbiased one
 * (PyTorch). Statistics: each plane (≤ 10³ values) is summed in float
 * lanes, the planes merged in double (a channel of a large batch has 10⁵
 * values; chan_stats). The element loops are marked simd: out may be in
 * (same index read, then written), nothing else overlaps.
 *
 * The model's path (_ex) saves μ and istd per group instead of xhat and
 * recomputes xhat = (x − μ)·istd in backward with the same float
 * operations, so the values are the same and a full-size tensor is neither
 * written nor kept; a following ReLU is fused in (out = max(·, 0); backward
 * masks dout where γ·xhat + β ≤ 0, recomputed from the input). The model
 * may also take the plane statistics from the conv before, leave the
 * normalisation to the conv after (out NULL) and the backward's last pass
 * to the conv before (nn_batchnorm_backward_sums, nn_bn_dx). */
#include "nn/layers.h"
#include "core/dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16

/* Mean and sum of squared deviations M2 of the values of channel ch over
 * samples [s, e) of x (N, C, HW), from each plane's nn_plane_stats (two
 * passes over a plane in cache: no E[x²] − μ² cancellation), given in
 * pst (N, C, 3) or computed here, merged in double (Chan et al.): one pass
 * over memory at most, float arithmetic, errors of one plane's size
 * (≤ 10³ values), not the batch's. */
static void chan_stats(const float *x, const float *pst, int s, int e, int c, int hw, int ch,
                       double *mean, double *m2)
{
    double n = 0.0, mu = 0.0, q = 0.0;
    for (int i = s; i < e; i++) {
        float st[3];
        if (pst) {
            st[0] = pst[((size_t)i * c + ch) * 3];
            st[1] = pst[((size_t)i * c + ch) * 3 + 1];
            st[2] = pst[((size_t)i * c + ch) * 3 + 2];
        } else {
            nn_plane_stats(x + ((size_t)i * c + ch) * hw, hw, st);
        }
        const float pm = st[0], s1 = st[1], s2 = st[2];
        /* This plane: mean pm + s1/hw, M2 = s2 − s1²/hw (exact for the pm used). */
        const double nb = hw, mb = (double)pm + (double)s1 / nb;
        const double qb = (double)s2 - (double)s1 * (double)s1 / nb;
        const double tot = n + nb, delta = mb - mu;
        mu += delta * nb / tot;
        q += qb + delta * delta * n * nb / tot;
        n = tot;
    }
    *mean = mu;
    *m2 = q > 0.0 ? q : 0.0;
}

/* out (N, C, HW); xhat (N, C, HW) or NULL; mean, istd (G, C) (mean may be
 * NULL); in (N, C, HW); gamma, beta (C) or NULL (1 and 0); run_mean,
 * run_var (C). */
static void bn_forward(float *out, float *xhat, float *mean_out, float *istd,
                       const float *in, const float *gamma, const float *beta,
                       float *run_mean, float *run_var, int n, int c, int hw,
                       const lethe_groups *g, lethe_bn_mode mode, float momentum, float eps,
                       int relu, const float *pstats, const double *gst, int run_every)
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
                /* Under mpirun (gst): the group's count and statistics over
                 * every rank's samples (bn_sync_stats). */
                const size_t n_st = gst ? (size_t)gst[((size_t)k * c + ch) * 3] : cnt;
                if (n_st == 0) {
                    istd[(size_t)k * c + ch] = 0.0f;
                    if (mean_out) mean_out[(size_t)k * c + ch] = 0.0f;
                    continue;
                }
                double ss;
                if (gst) {
                    mean = gst[((size_t)k * c + ch) * 3 + 1];
                    ss = gst[((size_t)k * c + ch) * 3 + 2];
                } else {
                    chan_stats(in, pstats, s, e, c, hw, ch, &mean, &ss);
                }
                double var = ss / (double)n_st;
                is = 1.0 / sqrt(var + eps);
                /* --deterministic: a set's chunks share its statistics,
                 * which move the running averages once (its first). */
                if ((mode == LETHE_BN_TRAIN ||
                     (mode == LETHE_BN_TRAIN_LAST && k >= g->n - run_every)) &&
                    k % run_every == 0) {
                    /* One value per channel: PyTorch refuses; keep var finite. */
                    double unbiased = n_st > 1 ? ss / (double)(n_st - 1) : var;
                    run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + momentum * mean);
                    run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + momentum * unbiased);
                }
            }
            const float mf = (float)mean, isf = (float)is;
            istd[(size_t)k * c + ch] = isf;
            if (mean_out) mean_out[(size_t)k * c + ch] = mf;
            for (int i = s; out && i < e; i++) {
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
                } else if (relu) {
#pragma omp simd
                    for (int j = 0; j < hw; j++) {
                        float v = nn_bn_y(p[j], ga, be, mf, isf);
                        q[j] = v > 0.0f ? v : 0.0f;
                    }
                } else {
#pragma omp simd
                    for (int j = 0; j < hw; j++) q[j] = nn_bn_y(p[j], ga, be, mf, isf);
                }
            }
        }
    }
}

/* Under mpirun (core_dist_bn_gather set): a buffer for the gathered
 * per-channel values, grown to the largest layer's once, then reused. */
static void *sync_buf;
static size_t sync_cap;

static double *sync_space(size_t n)
{
    return core_dist_scratch(&sync_buf, &sync_cap, n * sizeof(double));
}

/* Each group's (count, mean, M2) per channel over its rows of in into
 * mine (G, C, 3). */
static void bn_local_stats(double *mine, const float *in, const float *pstats, int c, int hw,
                           const lethe_groups *g)
{
#pragma omp parallel for schedule(dynamic, 1)
    for (int ch = 0; ch < c; ch++)
        for (int k = 0; k < g->n; k++) {
            const int s = g->start[k], e = g->start[k + 1];
            double *o = mine + ((size_t)k * c + ch) * 3, mu = 0.0, q = 0.0;
            if (e > s) chan_stats(in, pstats, s, e, c, hw, ch, &mu, &q);
            o[0] = (double)(e - s) * hw;
            o[1] = mu;
            o[2] = q;
        }
}

/* (count, mean, M2) v merged into (*n, *mu, *q) (Chan et al.). */
static void bn_merge(double *n, double *mu, double *q, const double *v)
{
    if (v[0] == 0.0) return;
    const double tot = *n + v[0], delta = v[1] - *mu;
    *mu += delta * v[0] / tot;
    *q += v[2] + delta * delta * *n * v[0] / tot;
    *n = tot;
}

/* Each group's (count, mean, M2) per channel over every rank's samples
 * into gst (G, C, 3): this rank's from chan_stats, gathered, merged in
 * rank order (Chan et al., as chan_stats merges planes), so every rank
 * holds the same values and they do not depend on how the batch was cut.
 * Returns gst, or NULL (no memory: the caller's statistics stay local). */
static const double *bn_sync_stats(const float *in, const float *pstats, int c, int hw,
                                   const lethe_groups *g)
{
    const size_t per = (size_t)g->n * c * 3;
    const int ranks = core_dist_size();
    double *buf = sync_space(per * (size_t)(ranks + 2));
    if (!buf) return NULL;
    double *mine = buf, *gst = buf + per, *all = buf + 2 * per;
    bn_local_stats(mine, in, pstats, c, hw, g);
    core_dist_bn_gather(mine, all, per);
    for (size_t j = 0; j < per; j += 3) {
        double n = 0.0, mu = 0.0, q = 0.0;
        for (int r = 0; r < ranks; r++) bn_merge(&n, &mu, &q, all + (size_t)r * per + j);
        gst[j] = n;
        gst[j + 1] = mu;
        gst[j + 2] = q > 0.0 ? q : 0.0;
    }
    return gst;
}

/* --deterministic (core_dist_plan): every chunk's values (this rank's
 * groups' in mine, (G, C, 3), padded here to LETHE_MAX_GROUPS) gathered, and each set's chunks combined in
 * chunk order into every group of the set in out (G, C, 3): merged as
 * statistics (count, mean, M2) when merge, else added (Σdy, Σdy·x̂,
 * count). The same values on every rank for any number of ranks. */
static void bn_plan_reduce(const core_dist_plan *pl, double *mine, double *all, double *out,
                           int c, int merge)
{
    const size_t per = (size_t)LETHE_MAX_GROUPS * c * 3;
    for (size_t j = (size_t)pl->g.n * c * 3; j < per; j++) mine[j] = 0.0;
    core_dist_gather_d(mine, all, per);
    const int cnt = pl->hi - pl->lo;
    for (int s = 0; s < pl->sets; s++)
        for (int ch = 0; ch < c; ch++) {
            double v[3] = {0.0, 0.0, 0.0};
            for (int j = 0; j < pl->k; j++) {
                int r, loc;
                core_dist_plan_where(pl, s, j, &r, &loc);
                const double *x = all + (size_t)r * per + ((size_t)loc * c + ch) * 3;
                if (merge) {
                    bn_merge(&v[0], &v[1], &v[2], x);
                } else {
                    v[0] += x[0];
                    v[1] += x[1];
                    v[2] += x[2];
                }
            }
            if (merge && v[2] < 0.0) v[2] = 0.0;
            for (int k = s * cnt; k < (s + 1) * cnt; k++)
                memcpy(out + ((size_t)k * c + ch) * 3, v, sizeof v);
        }
}

/* The statistics of a plan's groups (bn_plan_reduce), or NULL (no memory). */
static const double *bn_plan_stats(const core_dist_plan *pl, const float *in,
                                   const float *pstats, int c, int hw)
{
    const size_t per = (size_t)LETHE_MAX_GROUPS * c * 3;
    double *buf = sync_space(per * (size_t)(core_dist_size() + 2));
    if (!buf) return NULL;
    double *mine = buf, *gst = buf + per, *all = buf + 2 * per;
    bn_local_stats(mine, in, pstats, c, hw, &pl->g);
    bn_plan_reduce(pl, mine, all, gst, c, 1);
    return gst;
}

/* bn_forward, with statistics over every rank when under mpirun. */
static void bn_forward_all(float *out, float *xhat, float *mean_out, float *istd,
                           const float *in, const float *gamma, const float *beta,
                           float *run_mean, float *run_var, int n, int c, int hw,
                           const lethe_groups *g, lethe_bn_mode mode, float momentum,
                           float eps, int relu, const float *pstats)
{
    const double *gst = NULL;
    const core_dist_plan *pl = mode != LETHE_BN_EVAL ? core_dist_plan_for(g) : NULL;
    if (pl) gst = bn_plan_stats(pl, in, pstats, c, hw);
    else if (core_dist_bn_gather && core_dist_size() > 1 && mode != LETHE_BN_EVAL)
        gst = bn_sync_stats(in, pstats, c, hw, g);
    bn_forward(out, xhat, mean_out, istd, in, gamma, beta, run_mean, run_var, n, c, hw, g, mode,
               momentum, eps, relu, pstats, gst, pl && gst ? pl->hi - pl->lo : 1);
}

void nn_batchnorm_forward(float *out, float *xhat, float *istd,
                          const float *in, const float *gamma, const float *beta,
                          float *run_mean, float *run_var,
                          int n, int c, int hw, const lethe_groups *g,
                          lethe_bn_mode mode, float momentum, float eps)
{
    bn_forward_all(out, xhat, NULL, istd, in, gamma, beta, run_mean, run_var, n, c, hw, g, mode,
                   momentum, eps, 0, NULL);
}

void nn_batchnorm_forward_ex(float *out, float *mean, float *istd,
                             const float *in, const float *gamma, const float *beta,
                             float *run_mean, float *run_var,
                             int n, int c, int hw, const lethe_groups *g,
                             lethe_bn_mode mode, float momentum, float eps, int relu,
                             const float *pstats)
{
    bn_forward_all(out, NULL, mean, istd, in, gamma, beta, run_mean, run_var, n, c, hw, g, mode,
                   momentum, eps, relu, pstats);
}

/* The gradient reaching the normalisation: dout, masked by out > 0 when a
 * ReLU was fused (relu is a constant in each instance of bn_backward).
 * The output is not read: its sign is recomputed from the input p with the
 * forward's very operations (bn_forward), which costs a few flops on a
 * value already loaded instead of a pass over a tensor. */
static inline float bn_dy_at(const float *dy, const float *p, int j, float ga, float mf,
                             float isf, float be, const int relu)
{
    if (!relu) return dy[j];
    const float v = nn_bn_y(p[j], ga, be, mf, isf);
    /* v > 0 ? dy : +0 as a bit mask: GCC vectorises this in a reduction,
     * the conditional it does not. */
    uint32_t bits, m = v > 0.0f ? 0xffffffffu : 0u;
    float d = dy[j];
    memcpy(&bits, &d, sizeof bits);
    bits &= m;
    memcpy(&d, &bits, sizeof d);
    return d;
}
#define bn_dy(dy, p, j) bn_dy_at(dy, p, j, ga, mf, isf, be, relu)

/* *sdy += Σ dy, *sdyx += Σ dy·xhat over one plane's hw values, xhat =
 * (p − μ)·istd, dy masked when relu. Float lanes in a fixed-length inner
 * loop (GCC vectorises it), added up in lane order (deterministic); the
 * planes are added in double. */
static inline __attribute__((always_inline)) void
bn_sums(const float *dy, const float *p, float ga, float mf, float isf, float be, int hw,
        double *sdy, double *sdyx, const int relu)
{
    /* Lanes 0–7 and 8–15 in registers (an array of lanes stays in memory). */
    typedef int32_t v8i __attribute__((vector_size(32)));
    const nn_v8f vm = {mf, mf, mf, mf, mf, mf, mf, mf}, vi = {isf, isf, isf, isf, isf, isf, isf, isf};
    const nn_v8f vg = {ga, ga, ga, ga, ga, ga, ga, ga}, vb = {be, be, be, be, be, be, be, be};
    const nn_v8f zero = {0};
    nn_v8f a[2] = {{0}, {0}}, b[2] = {{0}, {0}};
    int j = 0;
    for (; j + LANES <= hw; j += LANES)
        for (int h = 0; h < 2; h++) {
            nn_v8f x, d;
            NN_V8_LOAD(x, p + j + 8 * h);
            NN_V8_LOAD(d, dy + j + 8 * h);
            const nn_v8f xh = (x - vm) * vi;
            if (relu) d = (nn_v8f)((v8i)d & (vg * xh + vb > zero));   /* as bn_dy_at */
            a[h] += d;
            b[h] += d * xh;
        }
    float sa = 0.0f, sb = 0.0f;
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 8; l++) {
            sa += a[h][l];
            sb += b[h][l];
        }
    for (; j < hw; j++) {
        const float d = bn_dy_at(dy, p, j, ga, mf, isf, be, relu);
        sa += d;
        sb += d * ((p[j] - mf) * isf);
    }
    *sdy += sa;
    *sdyx += sb;
}

/* din (N, C, HW) or NULL (+= when din_add, else =); dgamma[k], dbeta[k]
 * (C) per group, NULL skips; dout (N, C, HW); relu: a ReLU was fused
 * (then in, mean and beta (C, or NULL: 0) give its mask);
 * xhat (N, C, HW), or NULL to recompute it from in (N, C, HW) and mean
 * (G, C); istd (G, C); gamma (C) or NULL (1).
 * With batch statistics, μ and σ depend on every sample of the group:
 *     din = γ·istd·(dout − mean(dout) − xhat·mean(dout·xhat))
 * In EVAL mode they are constants and din = γ·istd·dout. */
static inline __attribute__((always_inline)) void
bn_backward_channel(float *din, int din_add, float *const dgamma[], float *const dbeta[],
                    const float *dout, const float *xhat, const float *in,
                    const float *mean, const float *istd, const float *gamma,
                    const float *beta, float *sums, int c, int hw,
                    const lethe_groups *g, lethe_bn_mode mode, int ch, const int relu,
                    double *raw, const double *red)
{
    {
        const float ga = gamma ? gamma[ch] : 1.0f, be = beta ? beta[ch] : 0.0f;
        /* Aliased dgamma[k] of one channel are all written by this thread. */
        for (int k = 0; k < g->n; k++) {
            const int s = g->start[k], e = g->start[k + 1];
            size_t cnt = (size_t)(e - s) * hw;
            /* Under mpirun: first (raw) this rank's sums, then (red) the
             * sums over every rank for the means; dγ, dβ stay this rank's
             * (the gradient's all-reduce adds them up). */
            const size_t o3 = ((size_t)k * c + ch) * 3;
            if (raw) raw[o3] = raw[o3 + 1] = raw[o3 + 2] = 0.0;
            if (red) cnt = (size_t)red[o3 + 2];
            if (cnt == 0) continue;
            const float isf = istd[(size_t)k * c + ch];
            const float mf = mean ? mean[(size_t)k * c + ch] : 0.0f;
            double sdy = 0.0, sdyx = 0.0;
            for (int i = s; !red && i < e; i++) {
                const size_t o = ((size_t)i * c + ch) * hw;
                if (xhat) {
                    const float *dy = dout + o, *xh = xhat + o;
#pragma omp simd reduction(+ : sdy, sdyx)
                    for (int j = 0; j < hw; j++) {
                        sdy += dy[j];
                        sdyx += (double)dy[j] * xh[j];
                    }
                } else {
                    bn_sums(dout + o, in + o, ga, mf, isf, be, hw, &sdy, &sdyx, relu);
                }
            }
            if (red) {
                sdy = red[o3];
                sdyx = red[o3 + 1];
            } else {
                if (dgamma && dgamma[k]) dgamma[k][ch] += (float)sdyx;
                if (dbeta && dbeta[k]) dbeta[k][ch] += (float)sdy;
            }
            if (raw) {
                raw[o3] = sdy;
                raw[o3 + 1] = sdyx;
                raw[o3 + 2] = (double)cnt;
                continue;
            }
            const float scale = ga * isf;
            const float mdy = mode == LETHE_BN_EVAL ? 0.0f : (float)(sdy / (double)cnt);
            const float mdyx = mode == LETHE_BN_EVAL ? 0.0f : (float)(sdyx / (double)cnt);
            if (sums) {
                sums[((size_t)k * c + ch) * 2] = mdy;
                sums[((size_t)k * c + ch) * 2 + 1] = mdyx;
            }
            if (!din) continue;
            for (int i = s; i < e; i++) {
                const size_t o = ((size_t)i * c + ch) * hw;
                const float *dy = dout + o, *p = in ? in + o : NULL;
                float *dx = din + o;
                const int eval = mode == LETHE_BN_EVAL;
                if (xhat && eval) {
#pragma omp simd
                    for (int j = 0; j < hw; j++) dx[j] += scale * dy[j];
                } else if (xhat) {
                    const float *xh = xhat + o;
#pragma omp simd
                    for (int j = 0; j < hw; j++) dx[j] += scale * (dy[j] - mdy - xh[j] * mdyx);
                } else if (din_add) {
                    /* nn_bn_dx: the very operations a conv runs when this
                     * pass is left to it (nn_bn_grad). */
#pragma omp simd
                    for (int j = 0; j < hw; j++)
                        dx[j] += nn_bn_dx(dy[j], p[j], ga, be, mf, isf, scale, mdy, mdyx, relu, eval);
                } else {
#pragma omp simd
                    for (int j = 0; j < hw; j++)
                        dx[j] = nn_bn_dx(dy[j], p[j], ga, be, mf, isf, scale, mdy, mdyx, relu, eval);
                }
            }
        }
    }
}

static void bn_backward_pass(float *din, int din_add, float *const dgamma[],
                             float *const dbeta[], const float *dout, int relu,
                             const float *xhat, const float *in, const float *mean,
                             const float *istd, const float *gamma, const float *beta,
                             float *sums, int n, int c, int hw, const lethe_groups *g,
                             lethe_bn_mode mode, double *raw, const double *red)
{
    /* Two loops, so that each outlined parallel body sees relu as a
     * constant (OpenMP outlines before inlining). */
    (void)n;
    if (relu) {
#pragma omp parallel for schedule(dynamic, 1) if ((long)n * c * hw > 32768)
        for (int ch = 0; ch < c; ch++)
            bn_backward_channel(din, din_add, dgamma, dbeta, dout, xhat, in, mean, istd, gamma,
                                beta, sums, c, hw, g, mode, ch, 1, raw, red);
    } else {
#pragma omp parallel for schedule(dynamic, 1) if ((long)n * c * hw > 32768)
        for (int ch = 0; ch < c; ch++)
            bn_backward_channel(din, din_add, dgamma, dbeta, dout, xhat, in, mean, istd, gamma,
                                beta, sums, c, hw, g, mode, ch, 0, raw, red);
    }
}

/* Under mpirun with batch statistics, mean(dout) and mean(dout·xhat) are
 * over every rank's samples: a pass for this rank's sums (and dγ, dβ), the
 * sums gathered and added in rank order, a pass for din with them. */
static void bn_backward(float *din, int din_add, float *const dgamma[], float *const dbeta[],
                        const float *dout, int relu, const float *xhat, const float *in,
                        const float *mean, const float *istd, const float *gamma,
                        const float *beta, float *sums, int n, int c, int hw,
                        const lethe_groups *g, lethe_bn_mode mode)
{
    const core_dist_plan *pl = mode != LETHE_BN_EVAL ? core_dist_plan_for(g) : NULL;
    const size_t per = (size_t)(pl ? LETHE_MAX_GROUPS : g->n) * c * 3;
    const int ranks = core_dist_size();
    double *buf = (pl || (core_dist_bn_gather && ranks > 1)) && mode != LETHE_BN_EVAL
                      ? sync_space(per * (size_t)(ranks + 2)) : NULL;
    if (!buf) {
        bn_backward_pass(din, din_add, dgamma, dbeta, dout, relu, xhat, in, mean, istd, gamma,
                         beta, sums, n, c, hw, g, mode, NULL, NULL);
        return;
    }
    double *mine = buf, *red = buf + per, *all = buf + 2 * per;
    bn_backward_pass(NULL, 0, dgamma, dbeta, dout, relu, xhat, in, mean, istd, gamma, beta,
                     NULL, n, c, hw, g, mode, mine, NULL);
    if (pl) {
        bn_plan_reduce(pl, mine, all, red, c, 0);
    } else {
        core_dist_bn_gather(mine, all, per);
        for (size_t j = 0; j < per; j++) {
            double v = 0.0;
            for (int r = 0; r < ranks; r++) v += all[(size_t)r * per + j];
            red[j] = v;
        }
    }
    bn_backward_pass(din, din_add, NULL, NULL, dout, relu, xhat, in, mean, istd, gamma, beta,
                     sums, n, c, hw, g, mode, NULL, red);
}

void nn_batchnorm_backward(float *din, float *const dgamma[], float *const dbeta[],
                           const float *dout, const float *xhat, const float *istd,
                           const float *gamma, int n, int c, int hw,
                           const lethe_groups *g, lethe_bn_mode mode)
{
    bn_backward(din, 1, dgamma, dbeta, dout, 0, xhat, NULL, NULL, istd, gamma, NULL, NULL, n, c,
                hw, g, mode);
}

void nn_batchnorm_backward_ex(float *din, int din_add, float *const dgamma[],
                              float *const dbeta[], const float *dout, int relu,
                              const float *in, const float *mean, const float *istd,
                              const float *gamma, const float *beta, int n, int c, int hw,
                              const lethe_groups *g, lethe_bn_mode mode)
{
    bn_backward(din, din_add, dgamma, dbeta, dout, relu, NULL, in, mean, istd, gamma, beta, NULL,
                n, c, hw, g, mode);
}

void nn_batchnorm_backward_sums(float *const dgamma[], float *const dbeta[], float *sums,
                                const float *dout, int relu, const float *in,
                                const float *mean, const float *istd, const float *gamma,
                                const float *beta, int n, int c, int hw, const lethe_groups *g,
                                lethe_bn_mode mode)
{
    bn_backward(NULL, 0, dgamma, dbeta, dout, relu, NULL, in, mean, istd, gamma, beta, sums, n,
                c, hw, g, mode);
}
