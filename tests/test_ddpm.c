/* Diffusion machinery (src/gen/ddpm.c) and the Fréchet distance
 * (src/eval/fd.c). Reference numbers were computed with numpy (float64)
 * and are literals here; the derivations are in the comments. */
#include "test.h"
#include "core/fail.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe.h"
#include "nn/layers.h"

/* ------------------------------------------------------------- schedule */

TEST(ddpm_schedule_closed_forms)
{
    lethe_ddpm s;
    CHECK_OK(lethe_ddpm_init(&s, LETHE_DDPM_T, LETHE_DDPM_BETA1, LETHE_DDPM_BETAT));
    if (!s.beta) return;
    CHECK(s.T == 1000);
    /* β[1] = 1e-4 + (0.02 − 1e-4)/999. */
    CHECK_NEAR(s.beta[0], 1e-4, 1e-18);
    CHECK_NEAR(s.beta[1], 1e-4 + 0.0199 / 999.0, 1e-15);
    CHECK_NEAR(s.beta[999], 0.02, 1e-15);
    /* ᾱ[0] = 1 − β_1; ᾱ[1] = 0.9999·(1 − 1.1991991991991992e-4). */
    CHECK_NEAR(s.alpha_bar[0], 0.9999, 1e-15);
    CHECK_NEAR(s.alpha_bar[1], 0.9997800920720721, 1e-15);
    CHECK_NEAR(s.alpha_bar[999], 4.035829765375676e-05, 1e-15);
    CHECK_NEAR(s.sqrt_ab[999], 0.006352818087570016, 1e-14);
    CHECK_NEAR(s.sqrt_1m_ab[999], 0.99997982064757, 1e-13);
    CHECK_NEAR(s.sqrt_ab[499], 0.2803341628873981, 1e-14);
    CHECK_NEAR(s.sqrt_1m_ab[499], 0.9599024727117969, 1e-14);
    /* β̃[t] = (1 − ᾱ[t−1])/(1 − ᾱ[t])·β[t]; β̃[0] = 0 by ᾱ_{−1} = 1.
     * β̃[1] = 1e-4/(1 − 0.99978009207…)·1.1991991…e-4 = 5.4531876613021935e-05. */
    CHECK(s.post_var[0] == 0.0);
    CHECK_NEAR(s.post_var[1], 5.4531876613021935e-05, 1e-17);
    CHECK_NEAR(s.post_var[2], 8.548911523090944e-05, 1e-17);
    CHECK_NEAR(s.post_var[499], 0.010031355414613688, 1e-15);
    CHECK_NEAR(s.post_var[999], 0.01999998352656061, 1e-15);
    /* μ̃ coefficients at t = 499 and the t = 0 ends (μ̃ = x0). */
    CHECK_NEAR(s.post_c0[499], 0.0030700711142649766, 1e-15);
    CHECK_NEAR(s.post_ct[499], 0.9941066702101666, 1e-14);
    CHECK_NEAR(s.post_c0[0], 1.0, 1e-10);  /* β_1/(1 − ᾱ_0) = 1 up to rounding */
    CHECK(s.post_ct[0] == 0.0);
    /* Monotone: β up, ᾱ down, √ᾱ² + √(1−ᾱ)² = 1, 0 < β̃ ≤ β. */
    int mono = 1;
    for (int t = 1; t < s.T; t++) {
        mono &= s.beta[t] > s.beta[t - 1] && s.alpha_bar[t] < s.alpha_bar[t - 1];
        mono &= s.post_var[t] > 0.0 && s.post_var[t] <= s.beta[t];
        mono &= fabs(s.sqrt_ab[t] * s.sqrt_ab[t] + s.sqrt_1m_ab[t] * s.sqrt_1m_ab[t] - 1.0) < 1e-14;
    }
    CHECK(mono);
    lethe_ddpm_free(&s);
    CHECK(s.beta == NULL);
}

TEST(ddpm_schedule_rejects_bad_args)
{
    lethe_ddpm s;
    CHECK(lethe_ddpm_init(&s, 0, 1e-4, 0.02) == LETHE_ERR_ARG);
    CHECK(lethe_ddpm_init(&s, 10, 0.0, 0.02) == LETHE_ERR_ARG);
    CHECK(lethe_ddpm_init(&s, 10, 0.03, 0.02) == LETHE_ERR_ARG);
    CHECK(lethe_ddpm_init(&s, 10, 1e-4, 1.0) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "beta") != NULL);
    CHECK_OK(lethe_ddpm_init(&s, 1, 0.5, 0.5));  /* one step: β = beta1 */
    CHECK_NEAR(s.alpha_bar[0], 0.5, 1e-15);
    lethe_ddpm_free(&s);
}

/* ------------------------------------------------------------- q_sample */

TEST(ddpm_q_sample_exact)
{
    lethe_ddpm s;
    CHECK_OK(lethe_ddpm_init(&s, 1000, 1e-4, 0.02));
    if (!s.beta) return;
    const float x0[4] = {1.0f, -2.0f, 0.5f, 0.25f};     /* (2, 2) */
    const float eps[4] = {0.5f, 0.25f, -1.0f, 2.0f};
    const int32_t t[2] = {999, 499};
    float xt[4];
    CHECK_OK(lethe_ddpm_q_sample(&s, xt, x0, eps, t, 2, 2));
    CHECK_NEAR(xt[0], 0.006352818087570016 * 1.0 + 0.99997982064757 * 0.5, 1e-6);
    CHECK_NEAR(xt[1], 0.006352818087570016 * -2.0 + 0.99997982064757 * 0.25, 1e-6);
    CHECK_NEAR(xt[2], 0.2803341628873981 * 0.5 + 0.9599024727117969 * -1.0, 1e-6);
    CHECK_NEAR(xt[3], 0.2803341628873981 * 0.25 + 0.9599024727117969 * 2.0, 1e-6);
    const int32_t bad[2] = {0, 1000};
    CHECK(lethe_ddpm_q_sample(&s, xt, x0, eps, bad, 2, 2) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "t[1]") != NULL);
    lethe_ddpm_free(&s);
}

TEST(ddpm_train_batch_statistics)
{
    enum { N = 20000, D = 2, NCLASS = 3, T = 10 };
    lethe_ddpm s;
    CHECK_OK(lethe_ddpm_init(&s, T, 1e-3, 0.2));
    float *x0 = malloc(N * D * sizeof(float)), *xt = malloc(N * D * sizeof(float));
    float *eps = malloc(N * D * sizeof(float)), *ref = malloc(N * D * sizeof(float));
    int32_t *y = malloc(N * sizeof(int32_t)), *t = malloc(N * sizeof(int32_t));
    int32_t *yc = malloc(N * sizeof(int32_t));
    if (!x0 || !xt || !eps || !ref || !y || !t || !yc || !s.beta) {
        CHECK(0);
        goto out;
    }
    for (int i = 0; i < N; i++) {
        y[i] = i % NCLASS;
        x0[i * D] = 1.0f;
        x0[i * D + 1] = -0.5f;
    }
    lethe_rng rng;
    lethe_rng_seed(&rng, 42);
    CHECK_OK(lethe_ddpm_train_batch(&s, &rng, x0, y, N, D, NCLASS, 0.1f, xt, eps, t, yc));
    /* xt is exactly q_sample of the drawn t and eps. */
    CHECK_OK(lethe_ddpm_q_sample(&s, ref, x0, eps, t, N, D));
    CHECK(memcmp(ref, xt, N * D * sizeof(float)) == 0);
    int hist[T] = {0}, nnull = 0, kept = 1, in_range = 1;
    double m = 0, v = 0;
    for (int i = 0; i < N; i++) {
        in_range &= t[i] >= 0 && t[i] < T;
        if (t[i] >= 0 && t[i] < T) hist[t[i]]++;
        if (yc[i] == NCLASS) nnull++;
        else kept &= yc[i] == y[i];
        for (int j = 0; j < D; j++) {
            m += eps[i * D + j];
            v += (double)eps[i * D + j] * eps[i * D + j];
        }
    }
    CHECK(in_range && kept);
    for (int k = 0; k < T; k++) CHECK_MSG(abs(hist[k] - N / T) < 200, "t = %d drawn %d times", k, hist[k]);
    CHECK_NEAR((double)nnull / N, 0.1, 0.01);           /* binomial sd 0.002 */
    CHECK_NEAR(m / (N * D), 0.0, 0.03);                 /* sd 1/√40000 = 0.005 */
    CHECK_NEAR(v / (N * D), 1.0, 0.03);
    /* p_uncond 0 keeps every label; 1 drops every one; labels are checked. */
    CHECK_OK(lethe_ddpm_train_batch(&s, &rng, x0, y, 100, D, NCLASS, 0.0f, xt, eps, t, yc));
    CHECK(memcmp(yc, y, 100 * sizeof(int32_t)) == 0);
    CHECK_OK(lethe_ddpm_train_batch(&s, &rng, x0, y, 100, D, NCLASS, 1.0f, xt, eps, t, yc));
    int all_null = 1;
    for (int i = 0; i < 100; i++) all_null &= yc[i] == NCLASS;
    CHECK(all_null);
    y[5] = NCLASS;
    CHECK(lethe_ddpm_train_batch(&s, &rng, x0, y, 100, D, NCLASS, 0.1f, xt, eps, t, yc) ==
          LETHE_ERR_ARG);
out:
    free(x0), free(xt), free(eps), free(ref), free(y), free(t), free(yc);
    lethe_ddpm_free(&s);
}

/* ------------------------------------------------------------- samplers */

/* ε of the single-point distribution x0 ≡ c: (x_t − √ᾱ_t c)/√(1−ᾱ_t). */
typedef struct {
    const lethe_ddpm *s;
    const float *c;     /* (d) */
    int d;
    int calls;
    int32_t ts[1024];   /* timestep of each call */
} oracle_ctx;

static lethe_status oracle_eps(void *vctx, const float *x, const int32_t *t,
                               const int32_t *y, int n, float *eps)
{
    oracle_ctx *o = vctx;
    (void)y;
    if (o->calls < 1024) o->ts[o->calls] = t[0];
    o->calls++;
    for (int i = 0; i < n; i++) {
        double sa = o->s->sqrt_ab[t[i]], s1 = o->s->sqrt_1m_ab[t[i]];
        for (int j = 0; j < o->d; j++)
            eps[i * o->d + j] = (float)((x[i * o->d + j] - sa * o->c[j]) / s1);
    }
    return LETHE_OK;
}

TEST(ddpm_oracle_point_mass_returns_the_point)
{
    enum { N = 16, D = 3 };
    const float c[D] = {0.5f, -0.3f, 0.8f};
    lethe_ddpm s;
    lethe_ddpm_sampler w;
    CHECK_OK(lethe_ddpm_init(&s, 1000, 1e-4, 0.02));
    CHECK_OK(lethe_ddpm_sampler_init(&w, N, D));
    if (!s.beta || !w.x2) return;
    int32_t y[N] = {0};
    float x[N * D];
    const struct { lethe_sampler_kind kind; int steps; float eta; int clip; } cases[] = {
        {LETHE_SAMPLER_DDIM, 50, 0.0f, 0},  {LETHE_SAMPLER_DDIM, 50, 0.0f, 1},
        {LETHE_SAMPLER_DDIM, 7, 0.5f, 1},   {LETHE_SAMPLER_ANCESTRAL, 1000, 0.0f, 0},
        {LETHE_SAMPLER_ANCESTRAL, 25, 0.0f, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        oracle_ctx o = {.s = &s, .c = c, .d = D};
        lethe_sample_config sc;
        lethe_sample_config_default(&sc);
        sc.kind = cases[k].kind;
        sc.steps = cases[k].steps;
        sc.eta = cases[k].eta;
        sc.clip_x0 = cases[k].clip;
        lethe_rng rng;
        lethe_rng_seed(&rng, 3 + k);
        CHECK_OK(lethe_ddpm_sample(&s, &sc, &w, oracle_eps, &o, 1, y, N, &rng, x));
        double err = 0;
        for (int i = 0; i < N * D; i++) err = fmax(err, fabs(x[i] - c[i % D]));
        CHECK_MSG(err < 1e-4, "case %zu: max |x − c| = %g", k, err);
        CHECK(o.calls == sc.steps);
        /* Trailing timesteps: τ_i = ⌊(i+1)·T/S⌋ − 1, visited downwards. */
        CHECK(o.ts[0] == 999);
        CHECK(o.ts[sc.steps - 1] == 1000 / sc.steps - 1);
    }
    lethe_ddpm_sampler_free(&w);
    lethe_ddpm_free(&s);
}

TEST(ddpm_ddim_strided_timesteps)
{
    lethe_ddpm s;
    lethe_ddpm_sampler w;
    CHECK_OK(lethe_ddpm_init(&s, 1000, 1e-4, 0.02));
    CHECK_OK(lethe_ddpm_sampler_init(&w, 2, 1));
    if (!s.beta || !w.x2) return;
    const float c = 0.0f;
    oracle_ctx o = {.s = &s, .c = &c, .d = 1};
    lethe_sample_config sc;
    lethe_sample_config_default(&sc);
    sc.steps = 4;
    lethe_rng rng;
    lethe_rng_seed(&rng, 1);
    int32_t y[2] = {0, 1};
    float x[2];
    CHECK_OK(lethe_ddpm_sample(&s, &sc, &w, oracle_eps, &o, 2, y, 2, &rng, x));
    CHECK(o.calls == 4 && o.ts[0] == 999 && o.ts[1] == 749 && o.ts[2] == 499 && o.ts[3] == 249);
    /* Bad arguments. */
    sc.steps = 1001;
    CHECK(lethe_ddpm_sample(&s, &sc, &w, oracle_eps, &o, 2, y, 2, &rng, x) == LETHE_ERR_ARG);
    sc.steps = 4;
    CHECK(lethe_ddpm_sample(&s, &sc, &w, oracle_eps, &o, 2, y, 3, &rng, x) == LETHE_ERR_ARG);
    y[1] = 3;
    CHECK(lethe_ddpm_sample(&s, &sc, &w, oracle_eps, &o, 2, y, 2, &rng, x) == LETHE_ERR_ARG);
    lethe_ddpm_sampler_free(&w);
    lethe_ddpm_free(&s);
}

/* A smooth, non-oracle predictor: ε = 0.6·x + 0.1·sin(x + t/100 + y). */
static lethe_status smooth_eps(void *ctx, const float *x, const int32_t *t, const int32_t *y,
                               int n, float *eps)
{
    int d = *(const int *)ctx;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            float v = x[i * d + j];
            eps[i * d + j] = 0.6f * v + 0.1f * sinf(v + t[i] / 100.0f + (float)y[i]);
        }
    return LETHE_OK;
}

TEST(ddpm_ancestral_equals_ddim_eta1)
{
    /* DDIM with η = 1 is the DDPM posterior step (with the ε re-derived
     * from a clipped x̂0); both draw the same noise from the same stream. */
    enum { N = 8, D = 4 };
    lethe_ddpm s;
    lethe_ddpm_sampler w;
    CHECK_OK(lethe_ddpm_init(&s, 1000, 1e-4, 0.02));
    CHECK_OK(lethe_ddpm_sampler_init(&w, N, D));
    if (!s.beta || !w.x2) return;
    int d = D;
    int32_t y[N] = {0, 1, 2, 0, 1, 2, 0, 1};
    float xa[N * D], xb[N * D];
    for (int clip = 0; clip <= 1; clip++) {
        lethe_sample_config sc;
        lethe_sample_config_default(&sc);
        sc.steps = 20;
        sc.clip_x0 = clip;
        sc.kind = LETHE_SAMPLER_ANCESTRAL;
        lethe_rng rng;
        lethe_rng_seed(&rng, 9);
        CHECK_OK(lethe_ddpm_sample(&s, &sc, &w, smooth_eps, &d, 3, y, N, &rng, xa));
        sc.kind = LETHE_SAMPLER_DDIM;
        sc.eta = 1.0f;
        lethe_rng_seed(&rng, 9);
        CHECK_OK(lethe_ddpm_sample(&s, &sc, &w, smooth_eps, &d, 3, y, N, &rng, xb));
        double err = 0, spread = 0;
        for (int i = 0; i < N * D; i++) {
            err = fmax(err, fabs(xa[i] - xb[i]));
            spread = fmax(spread, fabs(xa[i]));
        }
        CHECK_MSG(err < 1e-4, "clip %d: max |ancestral − ddim(η=1)| = %g", clip, err);
        CHECK(spread > 0.05);   /* not trivially zero */
        /* η = 0 differs (no noise). */
        sc.eta = 0.0f;
        lethe_rng_seed(&rng, 9);
        CHECK_OK(lethe_ddpm_sample(&s, &sc, &w, smooth_eps, &d, 3, y, N, &rng, xb));
        err = 0;
        for (int i = 0; i < N * D; i++) err = fmax(err, fabs(xa[i] - xb[i]));
        CHECK(err > 1e-3);
    }
    lethe_ddpm_sampler_free(&w);
    lethe_ddpm_free(&s);
}

/* Constant predictions: a for the null class, b for real classes; records
 * the batch sizes and labels it was called with. */
typedef struct {
    int nclass, d;
    float a, b;
    int calls, last_n, null_rows_ok;
} cfg_ctx;

static lethe_status const_eps(void *vctx, const float *x, const int32_t *t, const int32_t *y,
                              int n, float *eps)
{
    cfg_ctx *c = vctx;
    (void)x, (void)t;
    c->calls++;
    c->last_n = n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < c->d; j++) eps[i * c->d + j] = y[i] == c->nclass ? c->a : c->b;
    /* A doubled batch: the second half is all null-class. */
    c->null_rows_ok = 1;
    if (n % 2 == 0)
        for (int i = n / 2; i < n; i++) c->null_rows_ok &= y[i] == c->nclass;
    return LETHE_OK;
}

static void run_const(const lethe_ddpm *s, lethe_ddpm_sampler *w, cfg_ctx *c, float guidance,
                      const int32_t *y, int n, float *x)
{
    lethe_sample_config sc;
    lethe_sample_config_default(&sc);
    sc.steps = 10;
    sc.guidance = guidance;
    lethe_rng rng;
    lethe_rng_seed(&rng, 5);
    CHECK_OK(lethe_ddpm_sample(s, &sc, w, const_eps, c, c->nclass, y, n, &rng, x));
}

TEST(ddpm_cfg_guidance_combination)
{
    enum { N = 4, D = 2, NCLASS = 3 };
    lethe_ddpm s;
    lethe_ddpm_sampler w;
    CHECK_OK(lethe_ddpm_init(&s, 1000, 1e-4, 0.02));
    CHECK_OK(lethe_ddpm_sampler_init(&w, N, D));
    if (!s.beta || !w.x2) return;
    const int32_t y[N] = {0, 1, 2, 1}, ynull[N] = {NCLASS, NCLASS, NCLASS, NCLASS};
    float x_w0[N * D], x_null[N * D], x_w1[N * D], x_w2[N * D], x_ref[N * D];

    /* w = 0: only the unconditional prediction counts. */
    cfg_ctx c = {.nclass = NCLASS, .d = D, .a = 0.3f, .b = -0.2f};
    run_const(&s, &w, &c, 0.0f, y, N, x_w0);
    CHECK(c.calls == 10 && c.last_n == 2 * N && c.null_rows_ok);
    cfg_ctx cn = {.nclass = NCLASS, .d = D, .a = 0.3f, .b = -0.2f};
    run_const(&s, &w, &cn, 1.0f, ynull, N, x_null);
    CHECK(cn.last_n == N);                  /* guidance 1: one batch of n */
    double diff = 0;
    for (int i = 0; i < N * D; i++) diff = fmax(diff, fabs(x_w0[i] - x_null[i]));
    CHECK_MSG(diff < 1e-6, "w = 0 vs null labels: %g", diff);

    /* w = 1 uses the conditional prediction: a different result. */
    run_const(&s, &w, &c, 1.0f, y, N, x_w1);
    diff = 0;
    for (int i = 0; i < N * D; i++) diff = fmax(diff, fabs(x_w0[i] - x_w1[i]));
    CHECK(diff > 1e-2);

    /* w = 2: ε = a + 2(b − a) = 2b − a for every real label. */
    run_const(&s, &w, &c, 2.0f, y, N, x_w2);
    cfg_ctx cr = {.nclass = NCLASS, .d = D, .a = 0.0f, .b = 2 * -0.2f - 0.3f};
    run_const(&s, &w, &cr, 1.0f, y, N, x_ref);
    diff = 0;
    for (int i = 0; i < N * D; i++) diff = fmax(diff, fabs(x_w2[i] - x_ref[i]));
    CHECK_MSG(diff < 1e-5, "w = 2 vs ε = 2b − a: %g", diff);
    lethe_ddpm_sampler_free(&w);
    lethe_ddpm_free(&s);
}

static lethe_status failing_eps(void *ctx, const float *x, const int32_t *t, const int32_t *y,
                                int n, float *eps)
{
    (void)ctx, (void)x, (void)t, (void)y, (void)n, (void)eps;
    return lethe_fail(LETHE_ERR_NUMERIC, "predictor exploded");
}

TEST(ddpm_sampler_propagates_callback_errors)
{
    lethe_ddpm s;
    lethe_ddpm_sampler w;
    CHECK_OK(lethe_ddpm_init(&s, 100, 1e-4, 0.02));
    CHECK_OK(lethe_ddpm_sampler_init(&w, 1, 1));
    if (!s.beta || !w.x2) return;
    lethe_sample_config sc;
    lethe_sample_config_default(&sc);
    lethe_rng rng;
    lethe_rng_seed(&rng, 1);
    int32_t y = 0;
    float x;
    CHECK(lethe_ddpm_sample(&s, &sc, &w, failing_eps, NULL, 1, &y, 1, &rng, &x) == LETHE_ERR_NUMERIC);
    CHECK(strstr(lethe_last_error(), "exploded") != NULL);
    lethe_ddpm_sampler_free(&w);
    CHECK(lethe_ddpm_sampler_init(&w, 0, 1) == LETHE_ERR_ARG);
    CHECK(w.x2 == NULL && w.max_batch == 0);
    lethe_ddpm_free(&s);
}

/* ------------------------------------------------ a tiny DDPM that learns */

/* Noise predictor MLP: in (n, IN) = [x_t (2), t/T, sin/cos(kπ t/T) k=1..3,
 * one-hot label (3: class 0, class 1, null)] → 64 → 64 → 2, ReLU. θ is one
 * flat vector with views. */
enum { TOY_IN = 2 + 7 + 3, TOY_H = 64, TOY_OUT = 2, TOY_NC = 2, TOY_MAXB = 256 };

typedef struct {
    const lethe_ddpm *s;
    float *theta, *grad;            /* flat, toy_nparams floats */
    float *w1, *b1, *w2, *b2, *w3, *b3;       /* views into theta */
    float *gw1, *gb1, *gw2, *gb2, *gw3, *gb3; /* views into grad */
    float in[TOY_MAXB * TOY_IN], h1[TOY_MAXB * TOY_H], h2[TOY_MAXB * TOY_H];
    float out[TOY_MAXB * TOY_OUT];
    float d2[TOY_MAXB * TOY_H], d1[TOY_MAXB * TOY_H];
} toy_net;

static size_t toy_nparams(void)
{
    return (size_t)TOY_H * TOY_IN + TOY_H + TOY_H * TOY_H + TOY_H + TOY_OUT * TOY_H + TOY_OUT;
}

static void toy_views(float *p, float **v)
{
    v[0] = p;                  p += TOY_H * TOY_IN;
    v[1] = p;                  p += TOY_H;
    v[2] = p;                  p += TOY_H * TOY_H;
    v[3] = p;                  p += TOY_H;
    v[4] = p;                  p += TOY_OUT * TOY_H;
    v[5] = p;
}

static void toy_input(toy_net *m, const float *x, const int32_t *t, const int32_t *y, int n)
{
    for (int i = 0; i < n; i++) {
        float *r = m->in + i * TOY_IN;
        float s = (float)t[i] / (float)m->s->T;
        r[0] = x[2 * i];
        r[1] = x[2 * i + 1];
        r[2] = s;
        for (int k = 1; k <= 3; k++) {
            r[1 + 2 * k] = sinf(3.14159265f * k * s);
            r[2 + 2 * k] = cosf(3.14159265f * k * s);
        }
        for (int c = 0; c <= TOY_NC; c++) r[9 + c] = y[i] == c ? 1.0f : 0.0f;
    }
}

static void toy_forward(toy_net *m, int n)
{
    nn_linear_forward_ex(m->h1, m->in, m->w1, m->b1, n, TOY_IN, TOY_H, 1);
    nn_linear_forward_ex(m->h2, m->h1, m->w2, m->b2, n, TOY_H, TOY_H, 1);
    nn_linear_forward(m->out, m->h2, m->w3, m->b3, n, TOY_H, TOY_OUT);
}

static lethe_status toy_eps(void *ctx, const float *x, const int32_t *t, const int32_t *y,
                            int n, float *eps)
{
    toy_net *m = ctx;
    for (int s = 0; s < n; s += TOY_MAXB) {
        int b = n - s < TOY_MAXB ? n - s : TOY_MAXB;
        toy_input(m, x + 2 * s, t + s, y + s, b);
        toy_forward(m, b);
        memcpy(eps + 2 * s, m->out, (size_t)b * TOY_OUT * sizeof(float));
    }
    return LETHE_OK;
}

TEST(ddpm_toy_two_points_learns)
{
    if (test_skip_under_asan("LETHE_SLOW_SAN", "2500 diffusion training steps")) return;
    enum { B = 128, STEPS = 2500, NS = 200 };
    const float pt[2] = {-0.8f, 0.8f};      /* the points (p, p) */
    lethe_ddpm s;
    CHECK_OK(lethe_ddpm_init(&s, 1000, 1e-4, 0.02));
    toy_net *m = calloc(1, sizeof *m);
    size_t np = toy_nparams();
    lethe_optim opt;
    memset(&opt, 0, sizeof opt);
    if (m) {
        m->theta = calloc(np, sizeof(float));
        m->grad = calloc(np, sizeof(float));
    }
    lethe_ddpm_sampler w;
    memset(&w, 0, sizeof w);
    if (!s.beta || !m || !m->theta || !m->grad || lethe_optim_init(&opt, LETHE_OPT_ADAMW, np) != LETHE_OK ||
        lethe_ddpm_sampler_init(&w, NS, 2) != LETHE_OK) {
        CHECK(0);
        goto out;
    }
    m->s = &s;
    float *v[6];
    toy_views(m->theta, v);
    m->w1 = v[0], m->b1 = v[1], m->w2 = v[2], m->b2 = v[3], m->w3 = v[4], m->b3 = v[5];
    toy_views(m->grad, v);
    m->gw1 = v[0], m->gb1 = v[1], m->gw2 = v[2], m->gb2 = v[3], m->gw3 = v[4], m->gb3 = v[5];
    lethe_rng rng;
    lethe_rng_seed(&rng, 2024);
    /* PyTorch-like uniform(±1/√fan_in) initialisation. */
    const struct { float *p; size_t n; int fan; } init[] = {
        {m->w1, TOY_H * TOY_IN, TOY_IN}, {m->b1, TOY_H, TOY_IN}, {m->w2, TOY_H * TOY_H, TOY_H},
        {m->b2, TOY_H, TOY_H}, {m->w3, TOY_OUT * TOY_H, TOY_H}, {m->b3, TOY_OUT, TOY_H}};
    for (int k = 0; k < 6; k++)
        for (size_t i = 0; i < init[k].n; i++)
            init[k].p[i] = (2.0f * lethe_rng_uniform(&rng) - 1.0f) / sqrtf((float)init[k].fan);
    opt.weight_decay = 0.0f;

    /* Training: x0 is one of the two points, its label the point's index. */
    static float x0[B * 2], xt[B * 2], eps[B * 2], dout[B * 2];
    int32_t y[B], t[B], yc[B];
    lethe_groups g = {.n = 1, .start = {0, B}};    /* one group: the whole batch */
    float *const dw1[1] = {m->gw1}, *const db1[1] = {m->gb1};
    float *const dw2[1] = {m->gw2}, *const db2[1] = {m->gb2};
    float *const dw3[1] = {m->gw3}, *const db3[1] = {m->gb3};
    double loss_first = 0, loss_last = 0;
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < B; i++) {
            y[i] = (int32_t)lethe_rng_below(&rng, 2);
            x0[2 * i] = x0[2 * i + 1] = pt[y[i]];
        }
        /* p_uncond 0.5 (not the default 0.1): the null-label model must
         * learn the two modes too in this short run; at 0.1 it still
         * averages them (samples between the points) on some seeds. */
        CHECK_OK(lethe_ddpm_train_batch(&s, &rng, x0, y, B, 2, TOY_NC, 0.5f, xt, eps, t, yc));
        toy_input(m, xt, t, yc, B);
        toy_forward(m, B);
        double loss = 0;
        for (int k = 0; k < B * 2; k++) {
            float e = m->out[k] - eps[k];
            loss += (double)e * e;
            dout[k] = 2.0f * e / (B * 2);          /* d mean((out − ε)²) */
        }
        loss /= B * 2;
        if (step < 100) loss_first += loss / 100;
        if (step >= STEPS - 100) loss_last += loss / 100;
        lethe_vec_zero(m->grad, np);
        nn_linear_backward_ex(m->d2, 0, dw3, db3, dout, m->h2, m->w3, &g, TOY_H, TOY_OUT);
        nn_relu_mask(m->d2, m->h2, (size_t)B * TOY_H);
        nn_linear_backward_ex(m->d1, 0, dw2, db2, m->d2, m->h1, m->w2, &g, TOY_H, TOY_H);
        nn_relu_mask(m->d1, m->h1, (size_t)B * TOY_H);
        nn_linear_backward_ex(NULL, 0, dw1, db1, m->d1, m->in, m->w1, &g, TOY_IN, TOY_H);
        float lr = step < STEPS / 2 ? 3e-3f : 1e-3f;
        lethe_optim_step(&opt, m->theta, m->grad, NULL, lr);
    }
    CHECK_MSG(loss_last < 0.8 * loss_first, "loss %g → %g", loss_first, loss_last);

    /* Unconditional samples (null label): both points, ≥ 90% close to one. */
    lethe_sample_config sc;
    lethe_sample_config_default(&sc);       /* DDIM, 50 steps, η 0, clip */
    static float xs[NS * 2];
    int32_t ys[NS];
    for (int i = 0; i < NS; i++) ys[i] = TOY_NC;
    CHECK_OK(lethe_ddpm_sample(&s, &sc, &w, toy_eps, m, TOY_NC, ys, NS, &rng, xs));
    int near[2] = {0, 0};
    for (int i = 0; i < NS; i++)
        for (int p = 0; p < 2; p++)
            if (hypotf(xs[2 * i] - pt[p], xs[2 * i + 1] - pt[p]) < 0.3f) near[p]++;
    CHECK_MSG(near[0] + near[1] >= NS * 9 / 10, "near: %d + %d of %d", near[0], near[1], NS);
    CHECK_MSG(near[0] >= NS / 4 && near[1] >= NS / 4, "near: %d and %d of %d", near[0], near[1], NS);

    /* Conditional samples with guidance 2: each label gives its own point. */
    for (int i = 0; i < NS; i++) ys[i] = i % 2;
    sc.guidance = 2.0f;
    CHECK_OK(lethe_ddpm_sample(&s, &sc, &w, toy_eps, m, TOY_NC, ys, NS, &rng, xs));
    int own = 0;
    for (int i = 0; i < NS; i++)
        if (hypotf(xs[2 * i] - pt[ys[i]], xs[2 * i + 1] - pt[ys[i]]) < 0.3f) own++;
    CHECK_MSG(own >= NS * 9 / 10, "conditional: %d of %d near their class's point", own, NS);
out:
    lethe_ddpm_sampler_free(&w);
    lethe_optim_free(&opt);
    if (m) free(m->theta), free(m->grad);
    free(m);
    lethe_ddpm_free(&s);
}

/* ------------------------------------------------------ Fréchet distance */

TEST(fd_identical_sets_zero)
{
    enum { N = 64, D = 5 };
    float a[N * D];
    lethe_rng rng;
    lethe_rng_seed(&rng, 11);
    for (int i = 0; i < N * D; i++) a[i] = lethe_rng_normal(&rng) * (1 + i % D);
    double fd = -1, tr = 0;
    CHECK_OK(lethe_frechet_distance(a, N, a, N, D, &fd));
    double mu[D], cov[D * D];
    CHECK_OK(lethe_feature_stats(a, N, D, mu, cov));
    for (int j = 0; j < D; j++) tr += cov[j * D + j];
    CHECK_MSG(fd >= 0 && fd <= 1e-9 * tr, "fd = %g, tr = %g", fd, tr);
}

TEST(fd_one_dimensional_closed_form)
{
    /* a: mean 1.5, unbiased var 5/3; b: mean 3, var 4.
     * FD = (μa − μb)² + σa² + σb² − 2σaσb. */
    const float a[4] = {0, 1, 2, 3}, b[3] = {1, 3, 5};
    double fd;
    CHECK_OK(lethe_frechet_distance(a, 4, b, 3, 1, &fd));
    double sa = sqrt(5.0 / 3.0), sb = 2.0;
    CHECK_NEAR(fd, 2.25 + sa * sa + sb * sb - 2 * sa * sb, 1e-12);
}

TEST(fd_diagonal_two_dimensional)
{
    /* a = {(±1, 0), (0, ±2)}: μ = 0, Σ = diag(2/3, 8/3). b = a scaled by
     * (2, 1/2) and shifted by (1, −1): Σ = diag(8/3, 2/3). For diagonal Σ
     * FD = ‖Δμ‖² + Σ_i (σa_i − σb_i)² = 2 + 2·(2/3)·(2 − 1)² = 10/3. */
    const float a[8] = {1, 0, -1, 0, 0, 2, 0, -2};
    float b[8];
    for (int i = 0; i < 4; i++) {
        b[2 * i] = 2.0f * a[2 * i] + 1.0f;
        b[2 * i + 1] = 0.5f * a[2 * i + 1] - 1.0f;
    }
    double fd, fd2;
    CHECK_OK(lethe_frechet_distance(a, 4, b, 4, 2, &fd));
    CHECK_NEAR(fd, 10.0 / 3.0, 1e-12);
    CHECK_OK(lethe_frechet_distance(b, 4, a, 4, 2, &fd2));   /* symmetric */
    CHECK_NEAR(fd2, fd, 1e-12);
}

TEST(fd_nondiagonal_against_numpy)
{
    /* numpy (float64 after float32 rounding of the data):
     *   ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
     *   S = V·diag(√w)·Vᵀ from eigh(ca); λ = eigvalsh(S cb S)
     *   fd = ‖μa − μb‖² + tr ca + tr cb − 2 Σ √λ = 0.5522515868237408
     * (the same to 1e-14 from Σ √eig(ca·cb), the non-symmetric route). */
    enum { NA = 50, NB = 40, D = 4 };
    float a[NA * D], b[NB * D];
    for (int i = 0; i < NA; i++)
        for (int j = 0; j < D; j++)
            a[i * D + j] = (float)(sin(0.37 * i * (j + 1) + j) + 0.5 * sin(0.37 * i));
    for (int i = 0; i < NB; i++)
        for (int j = 0; j < D; j++)
            b[i * D + j] = (float)(cos(0.29 * i * (j + 2)) + 0.8 * cos(0.5 * i) * (j + 1) / 4 + 0.1 * j);
    double fd;
    CHECK_OK(lethe_frechet_distance(a, NA, b, NB, D, &fd));
    CHECK_NEAR(fd, 0.5522515868237408, 1e-6);
    /* Through the statistics: the same number; the covariance is symmetric
     * and its first entry matches numpy's 1.16421131. */
    double ma[D], ca[D * D], mb[D], cb[D * D], fd2;
    CHECK_OK(lethe_feature_stats(a, NA, D, ma, ca));
    CHECK_OK(lethe_feature_stats(b, NB, D, mb, cb));
    CHECK_NEAR(ca[0], 1.16421131, 1e-8);
    CHECK_NEAR(ca[1], 0.39101626, 1e-8);
    CHECK(ca[1] == ca[D]);
    CHECK_OK(lethe_frechet_from_stats(ma, ca, mb, cb, D, &fd2));
    CHECK_NEAR(fd2, fd, 1e-12);
}

TEST(fd_rejects_bad_args)
{
    const float a[4] = {0, 1, 2, 3};
    double fd;
    CHECK(lethe_frechet_distance(a, 1, a, 4, 1, &fd) == LETHE_ERR_ARG);
    CHECK(lethe_frechet_distance(a, 4, a, 1, 1, &fd) == LETHE_ERR_ARG);
    CHECK(lethe_frechet_distance(a, 2, a, 2, 0, &fd) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "d = 0") != NULL);
    const float bad[4] = {0, NAN, 1, 2};
    CHECK(lethe_frechet_distance(bad, 4, a, 4, 1, &fd) == LETHE_ERR_NUMERIC);
}
