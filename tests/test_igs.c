/* The λ controller of implicit gradient surgery and the UNGrad multiplier
 * (ALGORITHM.md §2, §3, §8), on small quadratic problems: the test runs
 * EUPMU's loop itself, θ ← θ − α(g_u + λ g_r), with exact gradients. */
#include "test.h"

#include <float.h>
#include <string.h>

#include "lethe.h"

/* ℓ(θ) = ½ (θ − c)ᵀ A (θ − c), θ in R^n, n ≤ 3; A (n, n) symmetric. */
typedef struct { int n; double A[9]; float c[3]; } quad;

static double quad_loss(const quad *q, const float *th)
{
    double d[3], s = 0.0;
    for (int i = 0; i < q->n; i++) d[i] = (double)th[i] - q->c[i];
    for (int i = 0; i < q->n; i++)
        for (int j = 0; j < q->n; j++) s += 0.5 * d[i] * q->A[i * q->n + j] * d[j];
    return s;
}

static void quad_grad(const quad *q, const float *th, float *g)
{
    for (int i = 0; i < q->n; i++) {
        double s = 0.0;
        for (int j = 0; j < q->n; j++) s += q->A[i * q->n + j] * ((double)th[j] - q->c[j]);
        g[i] = (float)s;
    }
}

/* One EUPMU step on θ (n): the composite gradient with the controller's λ,
 * then the controller observes ℓ_r before and after. Returns ℓ_r after. */
static double eupmu_step(lethe_igs *c, const quad *u, const quad *r, float *th,
                         float lr, lethe_status *st)
{
    float gu[3], gr[3];
    quad_grad(u, th, gu);
    quad_grad(r, th, gr);
    float lam = lethe_igs_weight(c);
    float before = (float)quad_loss(r, th);
    for (int i = 0; i < u->n; i++) th[i] -= lr * (gu[i] + lam * gr[i]);
    double after = quad_loss(r, th);
    *st = lethe_igs_observe(c, before, (float)after, lr);
    return after;
}

/* The exact UNGrad multiplier at θ (ε as given). */
static float exact_lambda(const quad *u, const quad *r, const float *th, float eps,
                          double *dot_out, double *norm2_out)
{
    float gu[3], gr[3];
    quad_grad(u, th, gu);
    quad_grad(r, th, gr);
    double dot = lethe_vec_dot(gr, gu, (size_t)u->n), nr = lethe_vec_norm2(gr, (size_t)u->n);
    if (dot_out) *dot_out = dot;
    if (norm2_out) *norm2_out = nr;
    return lethe_ungrad_lambda(dot, nr, eps, 100.0f);
}

/* ℓ_u pulls toward a = (2, 0, 1), ℓ_r toward b = (−1, 1, 0): they conflict. */
static const quad iso_u = {3, {1, 0, 0, 0, 1, 0, 0, 0, 1}, {2, 0, 1}};
static const quad iso_r = {3, {1, 0, 0, 0, 1, 0, 0, 0, 1}, {-1, 1, 0}};

TEST(igs_init_validates)
{
    lethe_igs c;
    memset(&c, 0, sizeof c);
    CHECK_OK(lethe_igs_init(&c, 0.01f, 1.0f, 1.0f, 100.0f));
    CHECK(c.beta_decay == 1 && c.t == 0 && c.lambda == 1.0f && c.lambda_max == 100.0f);
    CHECK(lethe_igs_weight(&c) == 1.0f);
    CHECK_OK(lethe_igs_init(&c, 0.0f, 0.0f, 0.0f, 1e-3f));   /* bounds are allowed */

    CHECK(lethe_igs_init(&c, -1.0f, 1.0f, 1.0f, 100.0f) == LETHE_ERR_ARG);
    CHECK_MSG(strstr(lethe_last_error(), "eps must be >= 0, got -1") != NULL,
              "message: %s", lethe_last_error());
    CHECK(lethe_igs_init(&c, NAN, 1.0f, 1.0f, 100.0f) == LETHE_ERR_ARG);
    CHECK(lethe_igs_init(&c, INFINITY, 1.0f, 1.0f, 100.0f) == LETHE_ERR_ARG);
    CHECK(lethe_igs_init(&c, 0.1f, -1.0f, 1.0f, 100.0f) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "beta0") != NULL);
    CHECK(lethe_igs_init(&c, 0.1f, INFINITY, 1.0f, 100.0f) == LETHE_ERR_ARG);
    CHECK(lethe_igs_init(&c, 0.1f, 1.0f, -0.5f, 100.0f) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "lambda0") != NULL);
    CHECK(lethe_igs_init(&c, 0.1f, 1.0f, 101.0f, 100.0f) == LETHE_ERR_ARG);
    CHECK(lethe_igs_init(&c, 0.1f, 1.0f, NAN, 100.0f) == LETHE_ERR_ARG);
    CHECK(lethe_igs_init(&c, 0.1f, 1.0f, 0.0f, 0.0f) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "lambda_max") != NULL);
    CHECK(lethe_igs_init(&c, 0.1f, 1.0f, 0.0f, -5.0f) == LETHE_ERR_ARG);
    CHECK(lethe_igs_init(&c, 0.1f, 1.0f, 0.0f, INFINITY) == LETHE_ERR_ARG);
    CHECK(lethe_igs_init(NULL, 0.1f, 1.0f, 0.0f, 1.0f) == LETHE_ERR_ARG);
}

/* The update rule by hand. */
TEST(igs_observe_by_hand)
{
    lethe_igs c;
    CHECK_OK(lethe_igs_init(&c, 0.1f, 2.0f, 1.0f, 100.0f));
    /* δ = (1 − 0.9)/0.1 + 0.1 = 1.1; β = 2·0.1·1 = 0.2; λ = 1 − 0.22. */
    CHECK_OK(lethe_igs_observe(&c, 1.0f, 0.9f, 0.1f));
    CHECK_NEAR(c.last_delta, 1.1, 1e-5);
    CHECK_NEAR(c.lambda, 0.78, 1e-6);
    CHECK(c.t == 1);
    /* Loss rose: δ = (1 − 1.5)/0.1 + 0.1 = −4.9; β = 0.2·2^(−1/3). */
    CHECK_OK(lethe_igs_observe(&c, 1.0f, 1.5f, 0.1f));
    CHECK_NEAR(c.lambda, 0.78 + 0.2 * pow(2.0, -1.0 / 3.0) * 4.9, 1e-5);
    CHECK(c.t == 2);
    /* Constant β: λ − β0·δ, clipped at 0 and at D. */
    c.beta_decay = 0;
    c.lambda = 1.0f;
    CHECK_OK(lethe_igs_observe(&c, 1.0f, 1.05f, 0.5f));      /* δ = −0.1 + 0.1 = 0 */
    CHECK_NEAR(c.lambda, 1.0, 1e-6);
    CHECK_OK(lethe_igs_observe(&c, 1.0f, 0.0f, 0.5f));       /* δ = 2.1 → λ = −3.2 → 0 */
    CHECK(c.lambda == 0.0f);
    CHECK_OK(lethe_igs_observe(&c, 0.0f, 100.0f, 0.5f));     /* δ = −199.9 → 399.8 → D */
    CHECK(c.lambda == 100.0f);
    CHECK(c.t == 5);
}

TEST(igs_observe_rejects_non_finite)
{
    lethe_igs c;
    CHECK_OK(lethe_igs_init(&c, 0.1f, 1.0f, 3.0f, 100.0f));
    CHECK(lethe_igs_observe(&c, NAN, 1.0f, 0.1f) == LETHE_ERR_NUMERIC);
    CHECK(lethe_igs_observe(&c, 1.0f, NAN, 0.1f) == LETHE_ERR_NUMERIC);
    CHECK(lethe_igs_observe(&c, INFINITY, 1.0f, 0.1f) == LETHE_ERR_NUMERIC);
    CHECK(lethe_igs_observe(&c, 1.0f, -INFINITY, 0.1f) == LETHE_ERR_NUMERIC);
    CHECK(lethe_igs_observe(&c, 1.0f, 0.5f, NAN) == LETHE_ERR_NUMERIC);
    CHECK(lethe_igs_observe(&c, 1.0f, 0.5f, 0.0f) == LETHE_ERR_NUMERIC);
    CHECK(lethe_igs_observe(&c, 1.0f, 0.5f, -0.1f) == LETHE_ERR_NUMERIC);
    /* Finite inputs whose δ overflows a float. */
    CHECK(lethe_igs_observe(&c, 3e38f, -3e38f, 1e-30f) == LETHE_ERR_NUMERIC);
    CHECK(strlen(lethe_last_error()) > 0);
    CHECK(c.lambda == 3.0f && c.t == 0);
    c.lambda = NAN;
    CHECK(lethe_igs_observe(&c, 1.0f, 0.5f, 0.1f) == LETHE_ERR_NUMERIC);
    CHECK(c.t == 0);
}

/* λ stays in [0, D] over a long random sequence, and both bounds are hit. */
TEST(igs_lambda_stays_in_bounds)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 42);
    for (int decay = 0; decay <= 1; decay++) {
        lethe_igs c;
        CHECK_OK(lethe_igs_init(&c, 0.05f, decay ? 500.0f : 2.0f, 1.0f, 10.0f));
        c.beta_decay = decay;
        int at0 = 0, atD = 0, out = 0;
        for (int t = 0; t < 100000; t++) {
            float before = 10.0f * lethe_rng_uniform(&rng);
            float after = before + (lethe_rng_uniform(&rng) - 0.5f) * (t % 7 ? 0.01f : 50.0f);
            float lr = 1e-4f + lethe_rng_uniform(&rng);
            CHECK_OK(lethe_igs_observe(&c, before, after, lr));
            float lam = lethe_igs_weight(&c);
            out += !(lam >= 0.0f && lam <= 10.0f);
            at0 += lam == 0.0f;
            atD += lam == 10.0f;
        }
        CHECK_MSG(out == 0, "decay %d: λ left [0, D] %d times", decay, out);
        CHECK(at0 > 0 && atD > 0);
        CHECK(c.t == 100000);
    }
}

/* ε very large: λ goes to 0 and stays there, and EUPMU is plain descent on
 * ℓ_u; from λ0 = 0 the iterates are bitwise those of plain descent. */
TEST(igs_large_eps_is_plain_descent)
{
    const float lr = 0.01f;
    for (int start = 0; start <= 1; start++) {
        lethe_igs c;
        CHECK_OK(lethe_igs_init(&c, 1e6f, 10.0f, start ? 1.0f : 0.0f, 100.0f));
        float th[3] = {0, 2, -1}, plain[3] = {0, 2, -1};
        int lam_bad = 0, diff = 0;
        for (int t = 0; t < 1000; t++) {
            lethe_status st;
            eupmu_step(&c, &iso_u, &iso_r, th, lr, &st);
            CHECK_OK(st);
            lam_bad += lethe_igs_weight(&c) != 0.0f;
            if (start == 1 && t == 0) {
                memcpy(plain, th, sizeof th);   /* descent from θ_1 on */
                continue;
            }
            if (start == 0 || t > 0) {
                float g[3];
                quad_grad(&iso_u, plain, g);
                for (int i = 0; i < 3; i++) plain[i] -= lr * g[i];
                for (int i = 0; i < 3; i++) diff += th[i] != plain[i];
            }
        }
        CHECK_MSG(lam_bad == 0, "start %d: λ ≠ 0 on %d steps", start, lam_bad);
        CHECK_MSG(diff == 0, "start %d: %d coordinates differ from plain descent", start, diff);
        /* And it really forgot: θ reached ℓ_u's minimum. */
        for (int i = 0; i < 3; i++) CHECK_NEAR(th[i], iso_u.c[i], 1e-3);
    }
}

/* ε = 0 on an anisotropic toy where forgetting soon conflicts with
 * retaining: λ_t tracks the exact λ* of §2, and ℓ_r never rises more than a
 * small tolerance above its lowest value so far. */
TEST(igs_eps0_tracks_exact_lambda)
{
    static const quad u = {2, {1, 0, 0, 1}, {2, 0}};
    static const quad r = {2, {1, 0.5, 0.5, 4}, {0, 0}};
    const float lr = 0.01f;
    float th[2] = {0.0f, 1.0f};
    lethe_igs c;
    CHECK_OK(lethe_igs_init(&c, 0.0f, 300.0f, 1.0f, 100.0f));
    double r0 = quad_loss(&r, th), rmin = r0, rise = 0.0, worst_track = 0.0;
    const int T = 3000;
    for (int t = 0; t < T; t++) {
        lethe_status st;
        double after = eupmu_step(&c, &u, &r, th, lr, &st);
        CHECK_OK(st);
        if (after < rmin) rmin = after;
        if (after - rmin > rise) rise = after - rmin;
        if (t >= T / 2) {
            double e = fabs(lethe_igs_weight(&c) - exact_lambda(&u, &r, th, 0.0f, NULL, NULL));
            if (e > worst_track) worst_track = e;
        }
    }
    double dot, nr;
    float lstar = exact_lambda(&u, &r, th, 0.0f, &dot, &nr);
    CHECK_MSG(lstar > 0.1f, "no conflict at the end: λ* = %g", (double)lstar);
    CHECK_NEAR(lethe_igs_weight(&c), lstar, 1e-3 * lstar);
    CHECK_MSG(worst_track < 1e-2, "λ_t off λ*(θ_t) by %g in the second half", worst_track);
    CHECK_MSG(rise < 0.01 * r0, "retain loss rose %g above its minimum (ℓ_r(θ0) = %g)", rise, r0);
    CHECK(quad_loss(&r, th) <= r0);
    CHECK(quad_loss(&u, th) < quad_loss(&u, (const float[]){0.0f, 1.0f}));  /* it did forget */
}

/* Two isotropic quadratics with minima a and b: the Pareto set is the
 * segment [a, b], where g_u + λ g_r = 0 with θ = (a + λ b)/(1 + λ).
 * EUPMU with ε = 0 must end there, with its λ the multiplier of that point. */
TEST(igs_converges_to_pareto_stationary)
{
    const float lr = 0.01f;
    float th[3] = {0.0f, 2.0f, -1.0f};
    lethe_igs c;
    CHECK_OK(lethe_igs_init(&c, 0.0f, 100.0f, 1.0f, 100.0f));
    for (int t = 0; t < 3000; t++) {
        lethe_status st;
        eupmu_step(&c, &iso_u, &iso_r, th, lr, &st);
        CHECK_OK(st);
    }
    /* Distance from θ to the segment a + s(b − a), s in [0, 1]. */
    double ab[3], at[3], ab2 = 0, proj = 0;
    for (int i = 0; i < 3; i++) {
        ab[i] = (double)iso_r.c[i] - iso_u.c[i];
        at[i] = (double)th[i] - iso_u.c[i];
        ab2 += ab[i] * ab[i];
        proj += ab[i] * at[i];
    }
    double s = proj / ab2, dist2 = 0;
    CHECK_MSG(s > 0.05 && s < 0.95, "θ is at an end of the front (s = %g)", s);
    for (int i = 0; i < 3; i++) dist2 += (at[i] - s * ab[i]) * (at[i] - s * ab[i]);
    CHECK_MSG(sqrt(dist2) < 1e-4, "θ is %g away from the Pareto set", sqrt(dist2));
    /* The controller's λ is the multiplier of that point: s = λ/(1 + λ). */
    double lam = lethe_igs_weight(&c);
    CHECK_NEAR(lam / (1.0 + lam), s, 1e-4);
    /* Pareto stationarity: ‖g_u + λ g_r‖ small, for the final λ and for the
     * least-squares λ̂ = −⟨g_u, g_r⟩/‖g_r‖² (which must be ≥ 0). */
    float gu[3], gr[3];
    quad_grad(&iso_u, th, gu);
    quad_grad(&iso_r, th, gr);
    double dot = lethe_vec_dot(gu, gr, 3), nr = lethe_vec_norm2(gr, 3);
    double lhat = -dot / nr, res = 0, res_hat = 0;
    for (int i = 0; i < 3; i++) {
        res += (gu[i] + lam * gr[i]) * (gu[i] + lam * gr[i]);
        res_hat += (gu[i] + lhat * gr[i]) * (gu[i] + lhat * gr[i]);
    }
    double gnorm = sqrt(lethe_vec_norm2(gu, 3));
    CHECK(lhat >= 0.0);
    CHECK_MSG(sqrt(res) < 1e-4 * gnorm, "‖g_u + λ g_r‖ = %g, ‖g_u‖ = %g", sqrt(res), gnorm);
    CHECK_MSG(sqrt(res_hat) < 1e-4 * gnorm, "‖g_u + λ̂ g_r‖ = %g", sqrt(res_hat));
}

/* UNGrad on random conflicting gradients: ⟨g_r, d*⟩ = −ε whenever λ* > 0. */
TEST(ungrad_lambda_meets_constraint)
{
    enum { N = 1000 };
    static float gu[N], gr[N], d[N];
    lethe_rng rng;
    lethe_rng_seed(&rng, 7);
    const float epss[3] = {0.0f, 0.01f, 1.0f};
    for (int trial = 0; trial < 12; trial++) {
        float eps = epss[trial % 3];
        float pull = 0.2f + 0.3f * (float)(trial % 4);     /* conflict strength */
        float scale = trial < 6 ? 1.0f : 1e-2f;
        for (int i = 0; i < N; i++) {
            gr[i] = scale * lethe_rng_normal(&rng);
            gu[i] = -pull * gr[i] / scale + lethe_rng_normal(&rng);
        }
        double dot = lethe_vec_dot(gr, gu, N), nr = lethe_vec_norm2(gr, N);
        float lam = lethe_ungrad_lambda(dot, nr, eps, 1e4f);
        CHECK_MSG(lam > 0.0f, "trial %d: no conflict (dot %g)", trial, dot);
        CHECK_NEAR(lam, -(dot + eps) / nr, 1e-6 * fabs((dot + eps) / nr));
        /* In exact arithmetic: only λ*'s own float rounding remains. */
        CHECK_NEAR(dot + (double)lam * nr, -(double)eps, FLT_EPSILON * fabs(dot));
        /* As a caller computes it, d* in float. */
        memcpy(d, gu, sizeof d);
        lethe_vec_axpy(d, lam, gr, N);                     /* d* = g_u + λ* g_r */
        double rr = lethe_vec_dot(gr, d, N);
        double tol = 4 * FLT_EPSILON * (fabs(dot) + sqrt(nr) * sqrt(lethe_vec_norm2(d, N)));
        CHECK_MSG(fabs(rr + eps) <= tol, "trial %d: <g_r, d*> = %.9g, want %g (tol %g)",
                  trial, rr, -(double)eps, tol);
    }
}

TEST(ungrad_lambda_edges)
{
    /* No conflict beyond the tolerance: λ* = 0. */
    CHECK(lethe_ungrad_lambda(3.0, 2.0, 0.1f, 100.0f) == 0.0f);
    CHECK(lethe_ungrad_lambda(-0.05, 2.0, 0.1f, 100.0f) == 0.0f);
    CHECK(lethe_ungrad_lambda(-0.1, 2.0, 0.1f, 100.0f) == 0.0f);   /* exactly −ε */
    CHECK(lethe_ungrad_lambda(0.0, 2.0, 0.0f, 100.0f) == 0.0f);
    /* Conflict: −(dot + ε)/‖g_r‖². */
    CHECK_NEAR(lethe_ungrad_lambda(-4.1, 2.0, 0.1f, 100.0f), 2.0, 1e-6);
    /* Clipped at D. */
    CHECK(lethe_ungrad_lambda(-1e6, 1.0, 0.0f, 100.0f) == 100.0f);
    CHECK(lethe_ungrad_lambda(-1.0, 1e-30, 0.0f, 5.0f) == 5.0f);
    /* ‖g_r‖² = 0: no retain direction, λ* = 0. */
    CHECK(lethe_ungrad_lambda(0.0, 0.0, 0.1f, 100.0f) == 0.0f);
    CHECK(lethe_ungrad_lambda(-1.0, 0.0, 0.0f, 100.0f) == 0.0f);
    /* A non-finite input is reported as NaN, never hidden as 0. */
    CHECK(isnan(lethe_ungrad_lambda(NAN, 1.0, 0.1f, 100.0f)));
    CHECK(isnan(lethe_ungrad_lambda(-1.0, INFINITY, 0.1f, 100.0f)));
}
