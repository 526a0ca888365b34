/* Diffusion unlearning losses (ALGORITHM.md §5) at the level of the step
 * machinery: `rl`'s gradient is that of ‖ε_θ(x_t, t, c_f) − T‖² with the
 * target T held fixed (finite differences agree; they do not when T moves
 * with θ, so the target gets no gradient), `ga` is −(denoising loss) with
 * the negated gradient, forgetting rows keep their class while retain rows
 * may be dropped to the null class, and whole runs of every method work. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "lethe.h"
#include "unlearn/method.h"

enum { S = 8, D = S * S, NF = 3, NR = 3, NTOY = 48 };

typedef struct {
    lethe_dataset ds;
    lethe_subset forget, retain;
    lethe_ddpm s;
    lethe_model *m;
} dtoy;

static int dtoy_make(dtoy *t)
{
    memset(t, 0, sizeof *t);
    lethe_dataset *ds = &t->ds;
    ds->n = NTOY;
    ds->c = 1;
    ds->h = ds->w = S;
    ds->nclass = 3;
    ds->pixels = malloc(NTOY * D);
    ds->labels = malloc(NTOY);
    ds->mean[0] = ds->std[0] = 0.5f;
    snprintf(ds->name, sizeof ds->name, "toy");
    lethe_rng r;
    lethe_rng_seed(&r, 3);
    t->forget.idx = malloc(NTOY * sizeof(int32_t));
    t->retain.idx = malloc(NTOY * sizeof(int32_t));
    for (int i = 0; i < NTOY; i++) {
        ds->labels[i] = (uint8_t)(i % 3);
        for (int p = 0; p < D; p++) ds->pixels[i * D + p] = (uint8_t)lethe_rng_below(&r, 256);
        if (i % 3 == 0) t->forget.idx[t->forget.n++] = i;
        else t->retain.idx[t->retain.n++] = i;
    }
    CHECK_OK(lethe_ddpm_init(&t->s, 50, 1e-3, 0.2));
    CHECK_OK(lethe_model_create(&t->m, "unet", 1, S, S, 3));
    if (!t->m) return 0;
    CHECK_OK(lethe_model_reserve(t->m, 16));
    lethe_model_init(t->m, &r);
    return 1;
}

static void dtoy_free(dtoy *t)
{
    free(t->ds.pixels);
    free(t->ds.labels);
    lethe_subset_free(&t->forget);
    lethe_subset_free(&t->retain);
    lethe_ddpm_free(&t->s);
    lethe_model_free(t->m);
}

/* A bare step context over the toy: NF forgetting rows then NR retaining. */
typedef struct {
    ul_ctx c;
    ul_diff *df;                /* the diffusion task's rows (c.diff) */
    lethe_unlearn_config cfg;
    lethe_unlearn_result res;
    float x[(NF + NR) * D], losses[NF + NR], dl[(NF + NR) * D];
    int32_t y[NF + NR], yt[NF + NR];
} bare;

static int bare_make(bare *b, dtoy *t, uint64_t seed)
{
    memset(b, 0, sizeof *b);
    lethe_unlearn_config_default(&b->cfg);
    b->cfg.ddpm = &t->s;
    b->cfg.seed = seed;
    b->cfg.p_uncond = 0.5f;
    ul_ctx *c = &b->c;
    c->m = t->m;
    c->cfg = &b->cfg;
    c->res = &b->res;
    c->nclass = 3;
    c->nf = NF;
    c->nr = NR;
    c->cur_nf = NF;             /* as ul_draw leaves it after drawing both sets */
    c->px = D;
    c->dout = D;
    c->x = b->x;
    c->y = b->y;
    c->yt = b->yt;
    c->losses = b->losses;
    c->dlogits = b->dl;
    c->ds = &t->ds;
    c->task = &ul_task_diffusion;
    CHECK_OK(c->task->init(c, NF + NR));     /* c->ds becomes the [−1, 1] view */
    b->df = c->diff;
    if (!b->df) return 0;
    int32_t idx[NF + NR] = {0, 3, 6, 1, 2, 4};
    lethe_dataset_batch(c->ds, idx, NF + NR, c->x, c->y);
    for (int i = 0; i < NF + NR; i++) c->yt[i] = i < NF ? 1 + i % 2 : c->y[i];
    return 1;
}

/* Mean over the forgetting rows of ‖ε_θ(x_t, t, c) − T‖² with T given, or
 * (T NULL) with T = ε_θ(x_t, t, yt) recomputed at the current θ. */
static double rl_objective(bare *b, const float *T)
{
    ul_ctx *c = &b->c;
    float tgt[NF * D], l[NF];
    const float *out;
    if (!T) {
        CHECK_OK(lethe_model_set_cond(c->m, b->df->t, c->yt));
        CHECK_OK(lethe_model_forward(c->m, c->x, NF, NULL, LETHE_BN_EVAL, &out));
        memcpy(tgt, out, sizeof tgt);
        T = tgt;
    }
    CHECK_OK(lethe_model_set_cond(c->m, b->df->t, b->df->yc));
    CHECK_OK(lethe_model_forward(c->m, c->x, NF, NULL, LETHE_BN_EVAL, &out));
    return lethe_denoise_loss(l, NULL, out, T, 0.0f, NF, D);
}

TEST(gen_unlearn_rl_target_gets_no_gradient)
{
    dtoy t;
    bare b;
    memset(&b, 0, sizeof b);
    if (!dtoy_make(&t) || !bare_make(&b, &t, 1)) goto out;
    ul_ctx *c = &b.c;
    CHECK_OK(ul_prepare(c, 0, NF, 1));
    CHECK(b.res.fwd_samples == NF);   /* the target's forward is counted */
    /* Forgetting rows keep their class; the target came from class yt. */
    for (int i = 0; i < NF; i++) CHECK(b.df->yc[i] == c->y[i] && c->yt[i] != c->y[i]);
    float T[NF * D];
    memcpy(T, b.df->target, sizeof T);
    /* The rows' loss and gradient through the step machinery. */
    CHECK_OK(c->task->cond(c, 0));
    lethe_groups g;
    lethe_groups_one(&g, NF);
    CHECK_OK(lethe_model_forward(c->m, c->x, NF, &g, LETHE_BN_EVAL, &c->logits));
    memset(b.dl, 0, sizeof b.dl);
    float lu = ul_diff_loss(c, LETHE_LOSS_CE, 0, NF, 1.0f / NF, 1);
    CHECK_NEAR(lu, rl_objective(&b, T), 1e-6);
    size_t n;
    float *theta = lethe_model_theta(c->m, &n);
    float *grad = calloc(n, sizeof(float));
    float *gs[1] = {grad};
    CHECK_OK(c->task->cond(c, 0));
    CHECK_OK(lethe_model_forward(c->m, c->x, NF, &g, LETHE_BN_EVAL, &c->logits));
    CHECK_OK(lethe_model_backward(c->m, b.dl, &g, gs));
    /* The coordinates with the largest gradients, by central differences. */
    int checked = 0, moving_differs = 0;
    for (int k = 0; k < 6; k++) {
        size_t j = 0;
        for (size_t i = 1; i < n; i++)
            if (fabsf(grad[i]) > fabsf(grad[j])) j = i;
        float g0 = grad[j], v = theta[j], h = 2e-3f;
        theta[j] = v + h;
        double up = rl_objective(&b, T), upm = rl_objective(&b, NULL);
        theta[j] = v - h;
        double dn = rl_objective(&b, T), dnm = rl_objective(&b, NULL);
        theta[j] = v;
        double fd = (up - dn) / (2 * h), fdm = (upm - dnm) / (2 * h);
        CHECK_MSG(fabs(fd - g0) <= 2e-2 * fabs(g0) + 1e-4, "θ[%zu]: gradient %g, differences %g",
                  j, (double)g0, fd);
        if (fabs(fdm - g0) > 5e-2 * fabs(g0)) moving_differs++;
        checked++;
        grad[j] = 0.0f;
    }
    CHECK(checked == 6);
    /* With the target moving with θ the slope is another one: sg matters. */
    CHECK_MSG(moving_differs >= 3, "only %d of 6 slopes changed when the target moved",
              moving_differs);
    free(grad);
out:
    if (b.c.task) b.c.task->free(&b.c);
    dtoy_free(&t);
}

TEST(gen_unlearn_ga_is_negative_denoising)
{
    dtoy t;
    bare b;
    memset(&b, 0, sizeof b);
    if (!dtoy_make(&t) || !bare_make(&b, &t, 2)) goto out;
    ul_ctx *c = &b.c;
    CHECK_OK(ul_prepare(c, 0, NF, 0));
    CHECK_OK(ul_prepare(c, NF, NR, 0));
    CHECK(b.res.fwd_samples == 0);
    /* x_t = √ᾱ x0 + √(1−ᾱ) ε, the target ε. */
    for (int i = 0; i < NF + NR; i++) {
        int ti = b.df->t[i];
        for (int p = 0; p < D; p += 13)
            CHECK_NEAR(c->x[i * D + p], t.s.sqrt_ab[ti] * b.df->x0[i * D + p] +
                       t.s.sqrt_1m_ab[ti] * b.df->target[i * D + p], 1e-5);
    }
    lethe_groups g;
    lethe_groups_one(&g, NF + NR);
    CHECK_OK(c->task->cond(c, 0));
    CHECK_OK(lethe_model_forward(c->m, c->x, NF + NR, &g, LETHE_BN_EVAL, &c->logits));
    float dpos[(NF + NR) * D], l[NF + NR];
    memset(b.dl, 0, sizeof b.dl);
    float neg = ul_diff_loss(c, LETHE_LOSS_NEG_CE, 0, NF, 0.5f, 1);
    memcpy(dpos, b.dl, sizeof dpos);
    memset(b.dl, 0, sizeof b.dl);
    float pos = ul_diff_loss(c, LETHE_LOSS_CE, 0, NF, 0.5f, 1);
    CHECK_NEAR(neg, -pos, 1e-7);
    CHECK_NEAR(pos, lethe_denoise_loss(l, NULL, c->logits, b.df->target, 0.0f, NF, D), 1e-7);
    for (int i = 0; i < NF * D; i++) CHECK_NEAR(dpos[i], -b.dl[i], 1e-9);
    for (int i = 0; i < NF; i++) CHECK_NEAR(c->losses[i] + 0.0, l[i], 1e-7);
    /* Retain rows: their class or (p_uncond 0.5 here) the null class 3. */
    int nulls = 0;
    for (int k = 0; k < 40; k++) {
        CHECK_OK(ul_prepare(c, NF, NR, 0));
        for (int i = NF; i < NF + NR; i++) {
            CHECK(b.df->yc[i] == c->y[i] || b.df->yc[i] == 3);
            nulls += b.df->yc[i] == 3;
        }
        CHECK_OK(ul_prepare(c, 0, NF, 0));
        for (int i = 0; i < NF; i++) CHECK(b.df->yc[i] == c->y[i]);
    }
    CHECK_MSG(nulls > 30 && nulls < 90, "%d of 120 retain rows unconditional", nulls);
out:
    if (b.c.task) b.c.task->free(&b.c);
    dtoy_free(&t);
}

/* Every diffusion method runs through lethe_unlearn, changes θ, stays
 * finite, and `rl` methods pay one more forward per forgetting batch. */
TEST(gen_unlearn_every_method_runs)
{
    dtoy t;
    if (!dtoy_make(&t)) goto out;
    static const char *methods[] = {"eupmu", "eupmu-fast", "ungrad", "ungrad-mixed", "ga",
                                    "rl", "salun", "ft", "neggrad+", "l1-sparse"};
    size_t n;
    const float *th0 = lethe_model_theta(t.m, &n);
    float *start = malloc(n * sizeof(float));
    memcpy(start, th0, n * sizeof(float));
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        memcpy(lethe_model_theta(t.m, NULL), start, n * sizeof(float));
        lethe_unlearn_config cfg;
        lethe_unlearn_config_default(&cfg);
        cfg.method = methods[k];
        cfg.steps = 2;
        cfg.batch = 4;
        cfg.lr = 1e-3f;
        cfg.ddpm = &t.s;
        lethe_unlearn_result res;
        lethe_status st = lethe_unlearn(t.m, &t.ds, &t.forget, &t.retain, &cfg, &res, NULL, NULL);
        CHECK_MSG(st == LETHE_OK, "%s: %s", methods[k], lethe_last_error());
        if (st != LETHE_OK) continue;
        const float *th = lethe_model_theta(t.m, NULL);
        CHECK_MSG(memcmp(th, start, n * sizeof(float)) != 0, "%s did not move θ", methods[k]);
        CHECK(lethe_vec_finite(th, n));
        CHECK(isfinite(res.trace[1].loss_u) || isfinite(res.trace[1].loss_r_before));
        if (strcmp(methods[k], "eupmu") == 0)   /* sg + forward of 2 batches + ℓ_r after */
            CHECK(res.fwd_samples == 2L * (4 + 8 + 4));
        lethe_unlearn_result_free(&res);
    }
    /* A classifier with a schedule, and a noise predictor without, are refused. */
    lethe_unlearn_config cfg;
    lethe_unlearn_config_default(&cfg);
    cfg.steps = 1;
    lethe_unlearn_result res;
    CHECK(lethe_unlearn(t.m, &t.ds, &t.forget, &t.retain, &cfg, &res, NULL, NULL) ==
          LETHE_ERR_ARG);
    lethe_model *clf = NULL;
    CHECK_OK(lethe_model_create(&clf, "mlp", 1, S, S, 3));
    cfg.ddpm = &t.s;
    if (clf) {
        CHECK_OK(lethe_model_reserve(clf, 16));
        CHECK(lethe_unlearn(clf, &t.ds, &t.forget, &t.retain, &cfg, &res, NULL, NULL) ==
              LETHE_ERR_ARG);
    }
    lethe_model_free(clf);
    free(start);
out:
    dtoy_free(&t);
}
