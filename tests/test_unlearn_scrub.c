/* SCRUB and Boundary Shrink (src/unlearn/scrub.c, bs.c) and the input
 * gradient BS's attack needs (lethe_model_backward_ex): the KL term's
 * gradient against finite differences and a hand value, BS's label rule on
 * hand-made logits, ∂L/∂x of whole models against finite differences, and
 * runs on the toy mlp that move the model the way each method should. */
#include "gradcheck.h"
#include "test.h"
#include "toy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe.h"
#include "unlearn/method.h"

/* ------------------------------------------------------- known answers */

typedef struct { float *zs; const float *zt; int k; float tau; } kd_ctx;

static double kd_objective(void *ctx)
{
    kd_ctx *c = ctx;
    return ul_kd(c->zs, c->zt, c->k, c->tau, 0.0f, NULL);
}

TEST(scrub_kd_gradient_matches_finite_differences)
{
    float zs[5] = {0.3f, -1.2f, 2.0f, 0.7f, -0.4f};
    const float zt[5] = {1.5f, 0.2f, -0.8f, 0.9f, 0.0f};
    const float taus[3] = {1.0f, 4.0f, 0.5f};
    for (int i = 0; i < 3; i++) {
        float dz[5] = {0};
        kd_ctx c = {zs, zt, 5, taus[i]};
        double kl = ul_kd(zs, zt, 5, taus[i], 1.0f, dz);
        CHECK(kl > 0.0);
        CHECK_FD(zs, 5, dz, kd_objective, &c, 1e-2f, 2e-3);
        /* The gradient of a KL sums to 0 over the logits (softmax shift). */
        CHECK_NEAR(dz[0] + dz[1] + dz[2] + dz[3] + dz[4], 0.0, 1e-6);
    }
    /* A student equal to its teacher: KL 0, gradient 0. */
    float d0[5] = {0};
    CHECK(ul_kd(zt, zt, 5, 4.0f, 1.0f, d0) == 0.0);
    CHECK(gc_max_abs_diff(d0, (const float[5]){0}, 5) == 0.0);
    /* By hand, two classes: p_t = softmax((ln 3, 0)/τ), p_s = (½, ½),
     * τ²·KL = τ²·Σ p_t log(2 p_t). At τ = 1, p_t = (¾, ¼). */
    const float s2[2] = {0.0f, 0.0f}, t2[2] = {(float)log(3.0), 0.0f};
    CHECK_NEAR(ul_kd(s2, t2, 2, 1.0f, 0.0f, NULL), 0.75 * log(1.5) + 0.25 * log(0.5), 1e-6);
    double a = exp(log(3.0) / 2.0), p0 = a / (1.0 + a), p1 = 1.0 / (1.0 + a);
    float g2[2] = {0};
    CHECK_NEAR(ul_kd(s2, t2, 2, 2.0f, 1.0f, g2), 4.0 * (p0 * log(2 * p0) + p1 * log(2 * p1)),
               1e-6);
    /* ∂/∂z_s = τ·(p_s − p_t): 2·(½ − p0). */
    CHECK_NEAR(g2[0], 2.0 * (0.5 - p0), 1e-6);
}

TEST(bs_label_takes_nearest_wrong_class)
{
    const float z[3] = {1.0f, 5.0f, 3.0f};
    CHECK(ul_bs_label(z, 0, 3) == 1);   /* the attack crossed the boundary: its class */
    CHECK(ul_bs_label(z, 2, 3) == 1);
    CHECK(ul_bs_label(z, 1, 3) == 2);   /* still y: the best other class */
    const float tie[4] = {2.0f, 2.0f, -1.0f, 2.0f};
    CHECK(ul_bs_label(tie, 0, 4) == 1); /* ties: the first */
    CHECK(ul_bs_label(tie, 1, 4) == 0);
    const float neg[3] = {-3.0f, -2.0f, -5.0f};
    CHECK(ul_bs_label(neg, 1, 3) == 0);
}

typedef struct { float *z, *h, *row; int k, dim; } be_ctx;

static double be_objective(void *ctx)
{
    be_ctx *c = ctx;
    return ul_be_shadow(c->z, c->k, c->h, c->dim, c->row, 0.0f, NULL, NULL, NULL);
}

TEST(be_shadow_gradient_matches_finite_differences)
{
    float z[3] = {1.0f, -0.5f, 2.0f}, h[4] = {0.5f, 1.5f, 0.0f, 0.8f};
    float row[5] = {0.3f, -0.2f, 0.7f, 0.1f, -0.4f};
    float dz[3] = {0}, drow[5] = {0}, dh[4] = {0};
    be_ctx c = {z, h, row, 3, 4};
    double loss = ul_be_shadow(z, 3, h, 4, row, 1.0f, dz, drow, dh);
    /* By hand: z_k = 0.15 − 0.3 + 0 + 0.08 − 0.4 = −0.47, loss = lse − z_k. */
    double zk = -0.47, lse = log(exp(1.0) + exp(-0.5) + exp(2.0) + exp(zk));
    CHECK_NEAR(loss, lse - zk, 1e-6);
    CHECK_NEAR(drow[4], exp(zk - lse) - 1.0, 1e-6);    /* ∂/∂b_s = p_k − 1 */
    CHECK_FD(z, 3, dz, be_objective, &c, 1e-2f, 2e-3);
    CHECK_FD(h, 4, dh, be_objective, &c, 1e-2f, 2e-3);
    CHECK_FD(row, 5, drow, be_objective, &c, 1e-2f, 2e-3);
    /* Weighted: w times the same, added. */
    float dz2[3] = {1.0f, 1.0f, 1.0f};
    ul_be_shadow(z, 3, h, 4, row, 0.5f, dz2, NULL, NULL);
    for (int j = 0; j < 3; j++) CHECK_NEAR(dz2[j], 1.0 + 0.5 * dz[j], 1e-6);
}

/* ----------------------------------------------------- input gradient */

enum { NB = 4 };

typedef struct {
    lethe_model *m;
    const float *x, *r, *q;     /* q: the features' weights, or NULL */
    int nclass;
} in_ctx;

/* Σ r·logits (+ Σ q·features). */
static double in_objective(void *ctx)
{
    in_ctx *c = ctx;
    const float *lg = NULL;
    if (lethe_model_forward(c->m, c->x, NB, NULL, LETHE_BN_BATCH, &lg) != LETHE_OK) return NAN;
    double s = 0.0;
    for (int i = 0; i < NB * c->nclass; i++) s += (double)c->r[i] * lg[i];
    int dim;
    const float *f = lethe_model_features(c->m, &dim);
    for (int i = 0; c->q && i < NB * dim; i++) s += (double)c->q[i] * f[i];
    return s;
}

/* Central differences in v[idx[..]] against grad, each within 10% of the
 * largest entry; returns how many are within 2% (kinks as in
 * test_model_grad.c: 90% of them must be). */
static int fd_entries(const char *what, float *v, const float *grad, const size_t *idx, int cnt,
                       double scale, in_ctx *c)
{
    int close = 0;
    for (int p = 0; p < cnt; p++) {
        size_t i = idx[p];
        double num = gc_fd_one(v, i, in_objective, c, 1e-3f);
        CHECK_MSG(fabs(num - grad[i]) < 0.1 * scale + 1e-3, "%s[%zu]: analytic %.6g, numeric %.6g",
                  what, i, (double)grad[i], num);
        close += fabs(num - grad[i]) < 0.02 * scale + 1e-3;
    }
    return close;
}

/* lethe_model_backward_ex: ∂J/∂x by finite differences, with and without
 * a features term; the weight gradient the same as a plain backward's
 * without it, and by finite differences with it. */
static void backward_ex_fd(const char *arch)
{
    const int nclass = 10, px = 784;
    lethe_model *m = NULL;
    CHECK_OK(lethe_model_create(&m, arch, 1, 28, 28, nclass));
    if (!m) return;
    CHECK_OK(lethe_model_reserve(m, NB));
    lethe_rng rng;
    lethe_rng_seed(&rng, 21);
    lethe_model_init(m, &rng);
    size_t n;
    float *theta = lethe_model_theta(m, &n);
    int dim;
    lethe_model_features(m, &dim);
    CHECK(dim > 0);
    float *x = malloc(NB * px * sizeof(float)), *r = malloc(NB * nclass * sizeof(float));
    float *q = malloc((size_t)NB * dim * sizeof(float)), *dx = malloc(NB * px * sizeof(float));
    float *g0 = calloc(n, sizeof(float)), *g1 = calloc(n, sizeof(float));
    gc_fill(&rng, x, NB * px, -1, 1);
    gc_fill(&rng, r, NB * nclass, -1, 1);
    gc_fill(&rng, q, (size_t)NB * dim, -1, 1);
    for (int with_q = 0; with_q < 2; with_q++) {
        char what[64];
        for (int i = 0; i < NB * px; i++) dx[i] = NAN;    /* overwritten, not added to */
        memset(g0, 0, n * sizeof(float));
        in_ctx c = {m, x, r, with_q ? q : NULL, nclass};
        in_objective(&c);
        float *gs0[1] = {g0}, *gs1[1] = {g1};
        CHECK_OK(lethe_model_backward_ex(m, r, c.q, NULL, gs0, dx));
        double scale = 0.0;
        for (int i = 0; i < NB * px; i++)
            if (fabs(dx[i]) > scale) scale = fabs(dx[i]);
        CHECK_MSG(scale > 1e-4, "%s: largest input gradient %g", arch, scale);
        size_t idx[40];
        for (int p = 0; p < 40; p++) idx[p] = lethe_rng_below(&rng, (uint32_t)(NB * px));
        snprintf(what, sizeof what, "%s%s x", arch, with_q ? " +features" : "");
        int close = fd_entries(what, x, dx, idx, 40, scale, &c);
        CHECK_MSG(close >= 36, "%s: %d of 40 entries within 2%%", what, close);
        if (!with_q) {
            /* The differences left other forwards: each backward after one at x. */
            memset(g0, 0, n * sizeof(float));
            in_objective(&c);
            CHECK_OK(lethe_model_backward_ex(m, r, NULL, NULL, gs0, dx));
            in_objective(&c);
            CHECK_OK(lethe_model_backward(m, r, NULL, gs1));
            CHECK_MSG(memcmp(g0, g1, n * sizeof(float)) == 0, "%s: weight gradient changed by dx",
                      arch);
            continue;
        }
        /* Three entries of each trainable tensor, the largest first. */
        int checked = 0;
        close = 0;
        for (int k = 0; k < lethe_model_ntensors(m); k++) {
            const lethe_tensor *t = lethe_model_tensor(m, k);
            if (!t->trainable) continue;
            size_t best = 0;
            for (size_t j = 1; j < t->numel; j++)
                if (fabsf(g0[t->offset + j]) > fabsf(g0[t->offset + best])) best = j;
            double sc = fabsf(g0[t->offset + best]);
            size_t pk[3] = {t->offset + best, t->offset + (best + t->numel / 2 + 1) % t->numel,
                            t->offset + (best + t->numel / 3 + 2) % t->numel};
            snprintf(what, sizeof what, "%s +features %s", arch, t->name);
            close += fd_entries(what, theta, g0, pk, 3, sc, &c);
            checked += 3;
        }
        CHECK_MSG(checked >= 9 && close >= 0.9 * checked, "%s θ: %d of %d entries within 2%%",
                  arch, close, checked);
    }
    free(x);
    free(r);
    free(q);
    free(dx);
    free(g0);
    free(g1);
    lethe_model_free(m);
}

TEST(model_backward_ex_finite_differences)
{
    backward_ex_fd("mlp");
    backward_ex_fd("cnn");
    backward_ex_fd("resnet8");
}

/* ---------------------------------------------------------------- runs */

static void toy_make(toy *t)
{
    toy_images(t, 120, 4, 28, 12345, 0.08f, 1000, 1000);
}

static void base_cfg(lethe_unlearn_config *c, const char *method, long steps)
{
    lethe_unlearn_config_default(c);
    c->method = method;
    c->steps = steps;
    c->batch = TOY_BS;
    c->seed = 3;
    c->lr = 0.05f;
}

static double accuracy(lethe_model *m, const toy *t, const lethe_subset *s)
{
    double acc = -1.0;
    if (lethe_eval_accuracy(m, &t->ds, s, 64, &acc, NULL) != LETHE_OK) return -1.0;
    return acc;
}

/* Mean softmax(f(x))_y over s: the model's confidence in the true labels. */
static double mean_p_true(lethe_model *m, const toy *t, const lethe_subset *s)
{
    double acc, sum = 0.0;
    float *p = malloc(s->n * sizeof(float));
    if (!p || lethe_eval_accuracy(m, &t->ds, s, 64, &acc, p) != LETHE_OK) sum = NAN;
    for (size_t i = 0; p && i < s->n; i++) sum += p[i];
    free(p);
    return sum / (double)s->n;
}

/* Mean τ²·KL(p_teacher ‖ p_student) over s (running averages). */
static double mean_kd(lethe_model *teacher, lethe_model *student, const toy *t,
                      const lethe_subset *s, float tau)
{
    int k = t->ds.nclass;
    size_t px = (size_t)t->ds.h * t->ds.w;
    float *x = malloc(s->n * px * sizeof(float)), *zt = malloc(s->n * k * sizeof(float));
    int32_t *y = malloc(s->n * sizeof(int32_t));
    double sum = 0.0;
    for (size_t b = 0; b < s->n; b += 64) {
        int cnt = (int)(s->n - b < 64 ? s->n - b : 64);
        const float *z;
        lethe_dataset_batch(&t->ds, s->idx + b, cnt, x, y);
        if (lethe_model_forward(teacher, x, cnt, NULL, LETHE_BN_EVAL, &z) != LETHE_OK) {
            sum = NAN;
            break;
        }
        memcpy(zt, z, (size_t)cnt * k * sizeof(float));
        if (lethe_model_forward(student, x, cnt, NULL, LETHE_BN_EVAL, &z) != LETHE_OK) {
            sum = NAN;
            break;
        }
        for (int i = 0; i < cnt; i++)
            sum += ul_kd(z + (size_t)i * k, zt + (size_t)i * k, k, tau, 0.0f, NULL);
    }
    free(x);
    free(zt);
    free(y);
    return sum / (double)s->n;
}

/* Max steps push the student away from the teacher on D_f, min steps keep
 * it close on D_r; step 1's KL on B_f is 0 (the teacher is θ_0), and so is
 * its gradient: the max steps move the mlp (no batch norm, no dropout) only
 * once a min step has made student and teacher differ. */
TEST(scrub_moves_away_from_teacher_on_forget_set)
{
    toy t;
    toy_make(&t);
    lethe_model *m0 = toy_model(&t, "mlp", 2);
    CHECK(m0 != NULL);
    if (!m0) goto out;
    double f0 = accuracy(m0, &t, &t.forget);
    double kf[2], kr[2], ff[2], rr[2];
    for (int v = 0; v < 2; v++) {
        lethe_unlearn_config cfg;
        base_cfg(&cfg, "scrub", 20);
        /* v = 0: max steps in the first half; v = 1: only in step 1. */
        CHECK_OK(lethe_unlearn_set_number(&cfg, "max_frac", v == 0 ? 0.5 : 0.01));
        lethe_model *m = toy_clone(m0, &t);
        lethe_unlearn_result res;
        CHECK_OK(lethe_unlearn(m, &t.ds, &t.forget, &t.retain, &cfg, &res, NULL, NULL));
        CHECK(res.trace && res.trace[0].loss_u == 0.0f);
        CHECK(res.trace && isfinite(res.trace[19].loss_r_before));
        kf[v] = mean_kd(m0, m, &t, &t.forget, 4.0f);
        kr[v] = mean_kd(m0, m, &t, &t.retain, 4.0f);
        ff[v] = accuracy(m, &t, &t.forget);
        rr[v] = accuracy(m, &t, &t.retain);
        lethe_unlearn_result_free(&res);
        lethe_model_free(m);
    }
    CHECK_MSG(kf[0] > 1.0 && kf[0] > 5.0 * kr[0],
              "max steps: KL on D_f %.4g, on D_r %.4g", kf[0], kr[0]);
    CHECK_MSG(kf[0] > 5.0 * kf[1], "KL on D_f %.4g with max steps, %.4g without", kf[0], kf[1]);
    CHECK_MSG(ff[0] < f0 - 20.0 && ff[1] > ff[0],
              "forget accuracy %.1f%% / %.1f%% (before %.1f%%)", ff[0], ff[1], f0);
    CHECK_MSG(rr[0] > 90.0, "retain accuracy %.1f%% after the max steps", rr[0]);
out:
    lethe_model_free(m0);
    toy_free(&t);
}

TEST(bs_lowers_forget_accuracy)
{
    toy t;
    toy_make(&t);
    lethe_model *m0 = toy_model(&t, "mlp", 2);
    CHECK(m0 != NULL);
    if (!m0) goto out;
    double f0 = accuracy(m0, &t, &t.forget), r0 = accuracy(m0, &t, &t.retain);
    lethe_unlearn_config cfg;
    base_cfg(&cfg, "bs", 15);
    lethe_model *m = toy_clone(m0, &t);
    lethe_unlearn_result res;
    CHECK_OK(lethe_unlearn(m, &t.ds, &t.forget, &t.retain, &cfg, &res, NULL, NULL));
    /* The loss is CE against labels ≠ y: it starts high and falls. */
    CHECK(res.trace && res.trace[0].loss_u > res.trace[14].loss_u);
    double f = accuracy(m, &t, &t.forget), r = accuracy(m, &t, &t.retain);
    CHECK_MSG(f < f0 - 50.0, "forget accuracy %.1f%% (before %.1f%%)", f, f0);
    CHECK_MSG(r >= 0.0, "retain accuracy %.1f%% (before %.1f%%)", r, r0);
    lethe_unlearn_result_free(&res);
    lethe_model_free(m);
out:
    lethe_model_free(m0);
    toy_free(&t);
}

/* On the toy set the argmax among the k classes mostly stays y once the
 * shadow class is dropped (the classes are far apart), but the model's
 * confidence in y on D_f falls, and on D_r it does not. */
TEST(be_lowers_forget_confidence)
{
    toy t;
    toy_make(&t);
    lethe_model *m0 = toy_model(&t, "mlp", 2);
    CHECK(m0 != NULL);
    if (!m0) goto out;
    double pf0 = mean_p_true(m0, &t, &t.forget), pr0 = mean_p_true(m0, &t, &t.retain);
    lethe_unlearn_config cfg;
    base_cfg(&cfg, "be", 15);
    lethe_model *m = toy_clone(m0, &t);
    lethe_unlearn_result res;
    CHECK_OK(lethe_unlearn(m, &t.ds, &t.forget, &t.retain, &cfg, &res, NULL, NULL));
    /* CE toward the shadow class: high at first (the class is new), then
     * falling as D_f moves into it. */
    CHECK(res.trace && res.trace[0].loss_u > 1.0f &&
          res.trace[14].loss_u < 0.1f * res.trace[0].loss_u);
    double pf = mean_p_true(m, &t, &t.forget), pr = mean_p_true(m, &t, &t.retain);
    CHECK_MSG(pf < 0.6 * pf0 && pr > pr0 - 0.05,
              "mean p_y on D_f %.3f (before %.3f), on D_r %.3f (before %.3f)", pf, pf0, pr, pr0);
    lethe_unlearn_result_free(&res);
    lethe_model_free(m);
out:
    lethe_model_free(m0);
    toy_free(&t);
}

/* They read class logits: refused on the diffusion task, naming why. */
TEST(scrub_bs_be_refuse_diffusion)
{
    const char *names[3] = {"scrub", "bs", "be"};
    lethe_ddpm s = {0};
    for (int i = 0; i < 3; i++) {
        lethe_unlearn_config c;
        lethe_unlearn_config_default(&c);
        c.method = names[i];
        CHECK_OK(lethe_unlearn_validate(&c));
        CHECK(lethe_method_classifies(names[i]));
        c.ddpm = &s;
        CHECK(lethe_unlearn_validate(&c) == LETHE_ERR_ARG);
        CHECK_MSG(strstr(lethe_last_error(), "classification") != NULL, "%s: '%s'", names[i],
                  lethe_last_error());
    }
    /* Options out of range are refused by their tables. */
    lethe_unlearn_config c;
    lethe_unlearn_config_default(&c);
    c.method = "scrub";
    CHECK(lethe_unlearn_set(&c, "max_frac", "0") != LETHE_OK);
    CHECK(lethe_unlearn_set(&c, "kd_t", "0") != LETHE_OK);
    CHECK_OK(lethe_unlearn_set(&c, "alpha", "0.5"));
    c.method = "bs";
    CHECK(lethe_unlearn_set(&c, "bound", "-1") != LETHE_OK);
    CHECK(lethe_unlearn_set(&c, "alpha", "0.5") != LETHE_OK);   /* SCRUB's, not BS's */
}
