/*
 * DDPM machinery (Ho et al. 2020; DDIM, Song et al. 2021; classifier-free
 * guidance, Ho & Salimans 2022), independent of the noise predictor, which
 * comes in as a callback (PROTOCOL.md "Generation").
 *
 * Index convention (lethe.h): t ∈ {0, …, T−1} is the paper's step t+1, so
 *     ᾱ[t] = Π_{s≤t} (1 − β[s]),   x_t = √ᾱ[t]·x0 + √(1 − ᾱ[t])·ε,
 * and "before step 0" is x0 itself (ᾱ_{−1} = 1).
 *
 * Both samplers share one step from timestep t to an earlier p (p = −1 at
 * the end) given ε̂ = ε_θ(x_t, t, y):
 *     x̂0     = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t       (clamped to [−1, 1] if asked,
 *                                             then ε̂ re-derived from it)
 *     x_p    = √ᾱ_p·x̂0 + √(1 − ᾱ_p − σ²)·ε̂ + σ·z,  z ~ N(0, I)
 * DDIM:      σ = η·√((1−ᾱ_p)/(1−ᾱ_t))·√(1 − ᾱ_t/ᾱ_p)
 * Ancestral: σ² = β̃ = (1−ᾱ_p)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_p), the DDPM posterior
 *            N(μ̃(x_t, x̂0), β̃) of the (respaced) chain, written in its own
 *            form μ̃ = c0·x̂0 + ct·x_t. It equals DDIM with η = 1.
 * With S = T steps the ancestral coefficients are exactly the schedule's
 * post_c0, post_ct and post_var.
 */
#include "lethe.h"
#include "core/fail.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DDPM_MAX_T 100000

lethe_status lethe_ddpm_init(lethe_ddpm *s, int T, double beta1, double betaT)
{
    if (!s) return lethe_fail(LETHE_ERR_ARG, "lethe_ddpm_init: NULL schedule");
    memset(s, 0, sizeof *s);
    if (T < 1 || T > DDPM_MAX_T)
        return lethe_fail(LETHE_ERR_ARG, "ddpm: T = %d is out of range 1..%d", T, DDPM_MAX_T);
    if (!(beta1 > 0.0) || !(beta1 <= betaT) || !(betaT < 1.0))
        return lethe_fail(LETHE_ERR_ARG, "ddpm: betas %g..%g must satisfy 0 < beta1 <= betaT < 1",
                          beta1, betaT);
    /* One allocation: 8 double arrays. */
    size_t nt = (size_t)T;
    double *mem = malloc(nt * 8 * sizeof(double));
    if (!mem) return lethe_fail(LETHE_ERR_NOMEM, "ddpm: cannot allocate a schedule of %d steps", T);
    s->T = T;
    s->beta = mem;
    s->alpha = mem + nt;
    s->alpha_bar = mem + 2 * nt;
    s->sqrt_ab = mem + 3 * nt;
    s->sqrt_1m_ab = mem + 4 * nt;
    s->post_var = mem + 5 * nt;
    s->post_c0 = mem + 6 * nt;
    s->post_ct = mem + 7 * nt;

    double ab = 1.0;
    for (int t = 0; t < T; t++) {
        double b = T == 1 ? beta1 : beta1 + (betaT - beta1) * t / (T - 1);
        double ab_prev = ab;                 /* ᾱ_{t−1}, 1 before the first step */
        ab *= 1.0 - b;
        s->beta[t] = b;
        s->alpha[t] = 1.0 - b;
        s->alpha_bar[t] = ab;
        s->sqrt_ab[t] = sqrt(ab);
        s->sqrt_1m_ab[t] = sqrt(1.0 - ab);
        s->post_var[t] = (1.0 - ab_prev) / (1.0 - ab) * b;
        s->post_c0[t] = sqrt(ab_prev) * b / (1.0 - ab);
        s->post_ct[t] = sqrt(1.0 - b) * (1.0 - ab_prev) / (1.0 - ab);
    }
    return LETHE_OK;
}

void lethe_ddpm_free(lethe_ddpm *s)
{
    if (!s) return;
    free(s->beta);
    memset(s, 0, sizeof *s);
}

lethe_status lethe_ddpm_q_sample(const lethe_ddpm *s, float *xt, const float *x0,
                                 const float *eps, const int32_t *t, int n, int d)
{
    if (n < 0 || d < 1)
        return lethe_fail(LETHE_ERR_ARG, "ddpm q_sample: bad batch shape (%d, %d)", n, d);
    for (int i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= s->T)
            return lethe_fail(LETHE_ERR_ARG, "ddpm q_sample: t[%d] = %d is out of range 0..%d",
                              i, (int)t[i], s->T - 1);
    for (int i = 0; i < n; i++) {
        /* Rounded to float once per sample, as the float kernels use them. */
        const float a = (float)s->sqrt_ab[t[i]], b = (float)s->sqrt_1m_ab[t[i]];
        const size_t o = (size_t)i * (size_t)d;
        for (int j = 0; j < d; j++) xt[o + j] = a * x0[o + j] + b * eps[o + j];
    }
    return LETHE_OK;
}

lethe_status lethe_ddpm_train_batch(const lethe_ddpm *s, lethe_rng *rng,
                                    const float *x0, const int32_t *y, int n, int d,
                                    int nclass, float p_uncond, float *xt, float *eps,
                                    int32_t *t, int32_t *yc)
{
    if (n < 0 || d < 1 || nclass < 1)
        return lethe_fail(LETHE_ERR_ARG, "ddpm batch: bad shape n = %d, d = %d, nclass = %d",
                          n, d, nclass);
    if (!(p_uncond >= 0.0f && p_uncond <= 1.0f))
        return lethe_fail(LETHE_ERR_ARG, "ddpm batch: p_uncond = %g is not in [0, 1]",
                          (double)p_uncond);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= nclass)
            return lethe_fail(LETHE_ERR_ARG, "ddpm batch: label y[%d] = %d is out of range 0..%d",
                              i, (int)y[i], nclass - 1);
    for (int i = 0; i < n; i++) {
        t[i] = (int32_t)lethe_rng_below(rng, (uint32_t)s->T);
        /* Always draw the coin, so the stream does not depend on p_uncond's
         * outcome; uniform ∈ [0, 1) < p: p = 0 never, p = 1 always. */
        yc[i] = lethe_rng_uniform(rng) < p_uncond ? nclass : y[i];
        float *e = eps + (size_t)i * (size_t)d;
        for (int j = 0; j < d; j++) e[j] = lethe_rng_normal(rng);
    }
    return lethe_ddpm_q_sample(s, xt, x0, eps, t, n, d);
}

void lethe_sample_config_default(lethe_sample_config *c)
{
    c->kind = LETHE_SAMPLER_DDIM;
    c->steps = 50;
    c->eta = 0.0f;
    c->guidance = 1.0f;
    c->clip_x0 = 1;
}

lethe_status lethe_ddpm_sampler_init(lethe_ddpm_sampler *w, int max_batch, int d)
{
    if (!w) return lethe_fail(LETHE_ERR_ARG, "ddpm sampler: NULL workspace");
    memset(w, 0, sizeof *w);
    if (max_batch < 1 || d < 1 || (size_t)max_batch * (size_t)d > ((size_t)1 << 31))
        return lethe_fail(LETHE_ERR_ARG, "ddpm sampler: bad size max_batch = %d, d = %d",
                          max_batch, d);
    size_t rows = 2 * (size_t)max_batch, nx = rows * (size_t)d;
    w->x2 = malloc(nx * sizeof(float));
    w->eps = malloc(nx * sizeof(float));
    w->t = malloc(rows * sizeof(int32_t));
    w->y = malloc(rows * sizeof(int32_t));
    if (!w->x2 || !w->eps || !w->t || !w->y) {
        lethe_ddpm_sampler_free(w);
        return lethe_fail(LETHE_ERR_NOMEM, "ddpm sampler: cannot allocate for %d x %d", max_batch, d);
    }
    w->max_batch = max_batch;
    w->d = d;
    return LETHE_OK;
}

void lethe_ddpm_sampler_free(lethe_ddpm_sampler *w)
{
    if (!w) return;
    free(w->x2);
    free(w->eps);
    free(w->t);
    free(w->y);
    memset(w, 0, sizeof *w);
}

/* ε̂ (n, d) into w->eps for the current x (n, d) at timestep t, labels in
 * w->y[0, n): one call of batch n (guidance 1) or 2n (cond rows, then
 * null-class rows), combined in place into rows [0, n) as ε_u + g·(ε_c − ε_u). */
static lethe_status predict(lethe_ddpm_sampler *w, const lethe_sample_config *c,
                            lethe_eps_fn fn, void *ctx, int nclass, const float *x,
                            int n, int32_t t)
{
    const size_t nd = (size_t)n * (size_t)w->d;
    lethe_status st;
    for (int i = 0; i < 2 * n; i++) w->t[i] = t;
    if (c->guidance == 1.0f) {
        st = fn(ctx, x, w->t, w->y, n, w->eps);
    } else {
        memcpy(w->x2, x, nd * sizeof(float));
        memcpy(w->x2 + nd, x, nd * sizeof(float));
        for (int i = 0; i < n; i++) w->y[n + i] = nclass;
        st = fn(ctx, w->x2, w->t, w->y, 2 * n, w->eps);
        const float g = c->guidance;
        float *ec = w->eps;
        const float *eu = w->eps + nd;
        for (size_t k = 0; st == LETHE_OK && k < nd; k++) ec[k] = eu[k] + g * (ec[k] - eu[k]);
    }
    return st;
}

lethe_status lethe_ddpm_sample(const lethe_ddpm *s, const lethe_sample_config *c,
                               lethe_ddpm_sampler *w, lethe_eps_fn fn, void *ctx,
                               int nclass, const int32_t *y, int n, lethe_rng *rng,
                               float *x)
{
    if (!s || !c || !w || !fn || !rng || !x || !y)
        return lethe_fail(LETHE_ERR_ARG, "ddpm sample: NULL argument");
    if (n < 1 || n > w->max_batch)
        return lethe_fail(LETHE_ERR_ARG, "ddpm sample: n = %d is out of range 1..%d (workspace)",
                          n, w->max_batch);
    if (c->steps < 1 || c->steps > s->T)
        return lethe_fail(LETHE_ERR_ARG, "ddpm sample: steps = %d is out of range 1..%d",
                          c->steps, s->T);
    if (c->kind != LETHE_SAMPLER_DDIM && c->kind != LETHE_SAMPLER_ANCESTRAL)
        return lethe_fail(LETHE_ERR_ARG, "ddpm sample: unknown sampler kind %d", (int)c->kind);
    if (!(c->eta >= 0.0f) || !isfinite(c->eta) || !isfinite(c->guidance))
        return lethe_fail(LETHE_ERR_ARG, "ddpm sample: eta = %g, guidance = %g are not valid",
                          (double)c->eta, (double)c->guidance);
    if (nclass < 1)
        return lethe_fail(LETHE_ERR_ARG, "ddpm sample: nclass = %d", nclass);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] > nclass)
            return lethe_fail(LETHE_ERR_ARG, "ddpm sample: label y[%d] = %d is out of range 0..%d",
                              i, (int)y[i], nclass);

    const int d = w->d, S = c->steps, T = s->T;
    const size_t nd = (size_t)n * (size_t)d;
    /* Conditioning labels of the doubled batch: rows [0, n) are y. */
    memcpy(w->y, y, (size_t)n * sizeof(int32_t));
    for (size_t k = 0; k < nd; k++) x[k] = lethe_rng_normal(rng);   /* x_T */

    for (int i = S - 1; i >= 0; i--) {
        const int t = (int)((long)(i + 1) * T / S) - 1;
        const int p = i > 0 ? (int)((long)i * T / S) - 1 : -1;
        lethe_status st = predict(w, c, fn, ctx, nclass, x, n, t);
        if (st != LETHE_OK) return st;

        /* Step coefficients in double, applied in float. */
        const double at = s->alpha_bar[t], ap = p >= 0 ? s->alpha_bar[p] : 1.0;
        const double var_full = (1.0 - ap) / (1.0 - at) * (1.0 - at / ap); /* β̃ of t → p */
        double sigma, c_x0, c_eps, c_xt;
        if (c->kind == LETHE_SAMPLER_ANCESTRAL) {
            sigma = sqrt(var_full);
            c_x0 = sqrt(ap) * (1.0 - at / ap) / (1.0 - at);    /* μ̃ = c_x0·x̂0 + c_xt·x_t */
            c_xt = sqrt(at / ap) * (1.0 - ap) / (1.0 - at);
            c_eps = 0.0;
        } else {
            sigma = c->eta * sqrt(var_full);
            double rest = 1.0 - ap - sigma * sigma;
            c_x0 = sqrt(ap);
            c_eps = sqrt(rest > 0.0 ? rest : 0.0);
            c_xt = 0.0;
        }
        const float inv_sa = (float)(1.0 / sqrt(at)), s1m = (float)sqrt(1.0 - at);
        const float inv_s1m = (float)(1.0 / sqrt(1.0 - at)), sa = (float)sqrt(at);
        const float fx0 = (float)c_x0, feps = (float)c_eps, fxt = (float)c_xt;
        const float fsig = (float)sigma;
        const int noisy = p >= 0 && sigma > 0.0;
        const float *e = w->eps;
        for (size_t k = 0; k < nd; k++) {
            float xt = x[k], ek = e[k];
            float x0 = (xt - s1m * ek) * inv_sa;
            if (c->clip_x0) {
                float cl = x0 < -1.0f ? -1.0f : x0 > 1.0f ? 1.0f : x0;
                if (cl != x0) {
                    x0 = cl;
                    ek = (xt - sa * x0) * inv_s1m;   /* the ε consistent with x̂0 */
                }
            }
            float v = fx0 * x0 + feps * ek + fxt * xt;
            if (noisy) v += fsig * lethe_rng_normal(rng);
            x[k] = v;
        }
    }
    if (!lethe_vec_finite(x, nd))
        return lethe_fail(LETHE_ERR_NUMERIC, "ddpm sample: the samples are not finite");
    return LETHE_OK;
}
