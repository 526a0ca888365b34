/* Diffusion unlearning's newer settings on a tiny class-conditional U-Net
 * (8×8 images, 3 classes, T = 50): ESD (negative guidance; its passes and
 * its effect, the conditional prediction of the forgotten class pulled to
 * the unconditional one), the retain weight a of ℓ_r = a·MSE, and the
 * generation metrics with a separate count of forgotten-class images
 * (per_forget) and UA_gen's Wilson interval. */
#include "test.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lethe.h"

enum { S = 8, D = S * S, NCLS = 3, NTOY = 48, NFIX = 8 };

typedef struct {
    lethe_dataset ds;
    lethe_subset forget, retain;
    lethe_ddpm s;
    lethe_model *m;
} etoy;

/* 48 random 8×8 images, label i % 3; D_f = class 0. An initialised
 * (untrained) U-Net: its label embedding already makes ε_θ(·, c) and
 * ε_θ(·, ∅) differ. */
static int etoy_make(etoy *t)
{
    memset(t, 0, sizeof *t);
    lethe_dataset *ds = &t->ds;
    ds->n = NTOY;
    ds->c = 1;
    ds->h = ds->w = S;
    ds->nclass = NCLS;
    ds->pixels = malloc(NTOY * D);      /* (N, 1, 8, 8) */
    ds->labels = malloc(NTOY);          /* (N) */
    ds->mean[0] = ds->std[0] = 0.5f;
    snprintf(ds->name, sizeof ds->name, "toy");
    lethe_rng r;
    lethe_rng_seed(&r, 11);
    t->forget.idx = malloc(NTOY * sizeof(int32_t));
    t->retain.idx = malloc(NTOY * sizeof(int32_t));
    for (int i = 0; i < NTOY; i++) {
        ds->labels[i] = (uint8_t)(i % NCLS);
        for (int p = 0; p < D; p++) ds->pixels[i * D + p] = (uint8_t)lethe_rng_below(&r, 256);
        if (i % NCLS == 0) t->forget.idx[t->forget.n++] = i;
        else t->retain.idx[t->retain.n++] = i;
    }
    CHECK_OK(lethe_ddpm_init(&t->s, 50, 1e-3, 0.2));
    CHECK_OK(lethe_model_create(&t->m, "unet", 1, S, S, NCLS));
    if (!t->m) return 0;
    CHECK_OK(lethe_model_reserve(t->m, 16));
    lethe_model_init(t->m, &r);
    return 1;
}

static void etoy_free(etoy *t)
{
    free(t->ds.pixels);
    free(t->ds.labels);
    lethe_subset_free(&t->forget);
    lethe_subset_free(&t->retain);
    lethe_ddpm_free(&t->s);
    lethe_model_free(t->m);
}

/* NFIX forgetting images noised once (fixed t and ε, from seed 99). */
typedef struct { float xt[NFIX * D]; int32_t t[NFIX], yf[NFIX], y0[NFIX]; } fixed_noisy;

static void fixed_make(fixed_noisy *f, const etoy *t)
{
    lethe_dataset u;
    lethe_dataset_unit_view(&u, &t->ds);
    float x0[NFIX * D], eps[NFIX * D];
    int32_t y[NFIX], yc[NFIX];
    lethe_dataset_batch(&u, t->forget.idx, NFIX, x0, y);
    lethe_rng r;
    lethe_rng_seed(&r, 99);
    CHECK_OK(lethe_ddpm_train_batch(&t->s, &r, x0, y, NFIX, D, NCLS, 0.0f, f->xt, eps, f->t, yc));
    for (int i = 0; i < NFIX; i++) {
        f->yf[i] = y[i];            /* the forgotten class, 0 */
        f->y0[i] = NCLS;            /* the null class */
    }
}

/* Mean over values of (ε_θ(x_t, t, c_f) − ε_θ(x_t, t, ∅))². */
static double cond_gap(lethe_model *m, const fixed_noisy *f)
{
    static float ec[NFIX * D];
    const float *out = NULL;
    CHECK_OK(lethe_model_set_cond(m, f->t, f->yf));
    CHECK_OK(lethe_model_forward(m, f->xt, NFIX, NULL, LETHE_BN_EVAL, &out));
    if (!out) return NAN;
    memcpy(ec, out, sizeof ec);
    CHECK_OK(lethe_model_set_cond(m, f->t, f->y0));
    CHECK_OK(lethe_model_forward(m, f->xt, NFIX, NULL, LETHE_BN_EVAL, &out));
    if (!out) return NAN;
    double s = 0.0;
    for (int i = 0; i < NFIX * D; i++) s += ((double)ec[i] - out[i]) * ((double)ec[i] - out[i]);
    return s / (NFIX * D);
}

/* ESD: 2 forwards and 1 backward of the forgetting batch per step, no
 * retain batch, no λ; over a dozen SGD steps (lr 0.1) the gap between the
 * forgotten class's prediction and the unconditional one shrinks. */
TEST(gen_esd_counts_and_closes_the_gap)
{
    etoy t;
    if (!etoy_make(&t)) goto out;
    fixed_noisy f;
    fixed_make(&f, &t);
    size_t n;
    const float *th = lethe_model_theta(t.m, &n);
    float *start = malloc(n * sizeof(float));
    memcpy(start, th, n * sizeof(float));
    double g0 = cond_gap(t.m, &f);
    CHECK_MSG(g0 > 1e-6, "the untrained model has no conditional gap (%g)", g0);
    lethe_unlearn_config cfg;
    lethe_unlearn_config_default(&cfg);
    cfg.method = "esd";
    cfg.ddpm = &t.s;
    cfg.batch = 4;
    cfg.lr = 0.1f;
    const long T = 12;
    cfg.steps = T;
    lethe_unlearn_result res;
    lethe_status st = lethe_unlearn(t.m, &t.ds, &t.forget, &t.retain, &cfg, &res, NULL, NULL);
    CHECK_MSG(st == LETHE_OK, "esd: %s", lethe_last_error());
    if (st == LETHE_OK) {
        CHECK_MSG(res.fwd_samples == 2 * T * 4 && res.bwd_samples == T * 4,
                  "esd: %ld/%ld samples forward/backward, expected %ld/%ld", res.fwd_samples,
                  res.bwd_samples, 2 * T * 4, T * 4);
        CHECK(res.steps == T && res.batch == 4);
        int bad = 0;
        for (long k = 0; k < T; k++) {
            const lethe_trace_step *s = &res.trace[k];
            bad += !(isfinite(s->loss_u) && s->loss_u >= 0.0f);
            bad += !isnan(s->loss_r_before) || !isnan(s->lambda) || !isnan(s->delta);
        }
        CHECK_MSG(bad == 0, "esd: %d odd trace values", bad);
        double g1 = cond_gap(t.m, &f);
        CHECK_MSG(g1 < 0.5 * g0, "esd: gap %.6g before, %.6g after %ld steps", g0, g1, T);
        CHECK(lethe_vec_finite(lethe_model_theta(t.m, NULL), n));
        lethe_unlearn_result_free(&res);
    }
    /* η = 0 is a plain pull of ε_c to ε_∅; it also closes the gap, and is
     * another run than η = 1. */
    float *eta1 = malloc(n * sizeof(float));
    memcpy(eta1, lethe_model_theta(t.m, NULL), n * sizeof(float));
    memcpy(lethe_model_theta(t.m, NULL), start, n * sizeof(float));
    cfg.esd_eta = 0.0f;
    cfg.steps = 6;
    st = lethe_unlearn(t.m, &t.ds, &t.forget, &t.retain, &cfg, &res, NULL, NULL);
    CHECK_MSG(st == LETHE_OK, "esd η 0: %s", lethe_last_error());
    if (st == LETHE_OK) {
        CHECK(cond_gap(t.m, &f) < g0);
        CHECK(memcmp(eta1, lethe_model_theta(t.m, NULL), n * sizeof(float)) != 0);
        lethe_unlearn_result_free(&res);
    }
    free(eta1);
    free(start);
out:
    etoy_free(&t);
}

/* ℓ_r = a·MSE: with the same seed the first step's ℓ_r(θ_0) doubles with
 * a = 2, and ℓ_u (which a does not touch) is the same. */
TEST(gen_retain_weight_scales_retain_loss)
{
    etoy t;
    if (!etoy_make(&t)) goto out;
    size_t n;
    lethe_model_theta(t.m, &n);
    float *start = malloc(n * sizeof(float));
    memcpy(start, lethe_model_theta(t.m, NULL), n * sizeof(float));
    static const char *methods[] = {"eupmu", "eupmu-fast", "rl"};
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        lethe_trace_step first[2];
        float *after[2] = {NULL, NULL};
        for (int j = 0; j < 2; j++) {
            memcpy(lethe_model_theta(t.m, NULL), start, n * sizeof(float));
            lethe_unlearn_config cfg;
            lethe_unlearn_config_default(&cfg);
            cfg.method = methods[k];
            cfg.ddpm = &t.s;
            cfg.batch = 4;
            cfg.lr = 1e-3f;
            cfg.steps = 2;
            cfg.seed = 5;
            cfg.retain_weight = j ? 2.0f : 1.0f;
            lethe_unlearn_result res;
            lethe_status st =
                lethe_unlearn(t.m, &t.ds, &t.forget, &t.retain, &cfg, &res, NULL, NULL);
            CHECK_MSG(st == LETHE_OK, "%s: %s", methods[k], lethe_last_error());
            if (st != LETHE_OK) {
                memset(&first[j], 0, sizeof first[j]);
                continue;
            }
            first[j] = res.trace[0];
            after[j] = malloc(n * sizeof(float));
            memcpy(after[j], lethe_model_theta(t.m, NULL), n * sizeof(float));
            lethe_unlearn_result_free(&res);
        }
        double r1 = first[0].loss_r_before, r2 = first[1].loss_r_before;
        CHECK_MSG(isfinite(r1) && r1 > 0 && fabs(r2 - 2.0 * r1) <= 1e-6 * r1,
                  "%s: ℓ_r(θ_0) %.9g with a = 1, %.9g with a = 2", methods[k], r1, r2);
        CHECK_MSG(first[0].loss_u == first[1].loss_u, "%s: ℓ_u %.9g vs %.9g", methods[k],
                  (double)first[0].loss_u, (double)first[1].loss_u);
        /* And a reaches the gradient: the step differs. */
        if (after[0] && after[1])
            CHECK_MSG(memcmp(after[0], after[1], n * sizeof(float)) != 0,
                      "%s: the retain weight did not change the step", methods[k]);
        free(after[0]);
        free(after[1]);
    }
    free(start);
out:
    etoy_free(&t);
}

/* per_forget images of each forgotten class, per_class of every other:
 * n_forget, the counts behind UA_gen and its Wilson interval. */
TEST(gen_evaluate_per_forget_and_interval)
{
    etoy t;
    lethe_model *clf = NULL;
    float *img = NULL;
    if (!etoy_make(&t)) goto out;
    CHECK_OK(lethe_model_create(&clf, "cnn", 1, S, S, NCLS));
    if (!clf) goto out;
    lethe_rng r;
    lethe_rng_seed(&r, 4);
    lethe_model_init(clf, &r);
    lethe_gen_eval_config ec;
    lethe_gen_eval_config_default(&ec);
    CHECK(ec.per_forget == 0);
    ec.per_class = 4;
    ec.batch = 4;
    ec.sample.steps = 2;
    static const struct { uint64_t mask; int per_forget; } cases[] = {{1, 10}, {1, 3}, {5, 7}, {2, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ec.per_forget = cases[k].per_forget;
        int pf = cases[k].per_forget ? cases[k].per_forget : ec.per_class;
        lethe_gen_metrics g;
        lethe_status st = lethe_gen_evaluate(t.m, &t.s, clf, &t.ds, cases[k].mask, &ec, &g, NULL);
        CHECK_MSG(st == LETHE_OK, "case %zu: %s", k, lethe_last_error());
        if (st != LETHE_OK) continue;
        int nforget = 0;
        for (int c = 0; c < NCLS; c++) nforget += (int)((cases[k].mask >> c) & 1);
        CHECK(g.n_forget == pf && g.per_class == ec.per_class && g.nclass == NCLS);
        /* Every image is sampled: per class, steps × 2 (guidance 2). */
        long imgs = (long)pf * nforget + (long)ec.per_class * (NCLS - nforget);
        CHECK_MSG(g.fwd_samples == imgs * ec.sample.steps * 2, "case %zu: %ld forwards", k,
                  g.fwd_samples);
        /* Accuracies are counts of pf (forgotten) or per_class images. */
        long correct = 0;
        for (int c = 0; c < NCLS; c++) {
            int nk = (cases[k].mask >> c) & 1 ? pf : ec.per_class;
            double cnt = g.acc[c] * nk / 100.0;
            CHECK_MSG(fabs(cnt - floor(cnt + 0.5)) < 1e-9, "case %zu class %d: acc %g of %d",
                      k, c, g.acc[c], nk);
            if ((cases[k].mask >> c) & 1) correct += lround(cnt);
        }
        /* UA_gen from those counts, and its interval from the same counts. */
        long nimg = (long)pf * nforget, wrong = nimg - correct;
        CHECK_NEAR(g.ua_gen, 100.0 * wrong / nimg, 1e-9);
        long implied = lround(g.ua_gen / 100.0 * nimg);
        CHECK(implied == wrong);
        double lo, hi;
        lethe_wilson95(implied, nimg, &lo, &hi);
        CHECK_NEAR(g.ua_gen_lo, 100.0 * lo, 1e-9);
        CHECK_NEAR(g.ua_gen_hi, 100.0 * hi, 1e-9);
        /* lo ≤ UA_gen ≤ hi, exactly, also at UA_gen = 0 or 100. */
        CHECK_MSG(g.ua_gen_lo <= g.ua_gen && g.ua_gen <= g.ua_gen_hi,
                  "case %zu: UA_gen %.17g outside [%.17g, %.17g]", k, g.ua_gen, g.ua_gen_lo,
                  g.ua_gen_hi);
        CHECK(g.ua_gen_hi > g.ua_gen_lo);
        CHECK(isfinite(g.fd_cls) && g.fd_cls >= 0.0);
    }
    /* Without a forgotten class: no UA_gen, no interval. */
    ec.per_forget = 5;
    lethe_gen_metrics g;
    CHECK_OK(lethe_gen_evaluate(t.m, &t.s, clf, &t.ds, 0, &ec, &g, NULL));
    CHECK(isnan(g.ua_gen) && isnan(g.ua_gen_lo) && isnan(g.ua_gen_hi) && g.n_forget == 0);
    /* images come back class by class, per_class each: per_forget must be
     * 0 or per_class. */
    img = malloc((size_t)NCLS * ec.per_class * D * sizeof(float));
    ec.per_forget = 6;
    CHECK(lethe_gen_evaluate(t.m, &t.s, clf, &t.ds, 1, &ec, &g, img) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "per_forget") != NULL);
    ec.per_forget = 2;
    CHECK(lethe_gen_evaluate(t.m, &t.s, clf, &t.ds, 1, &ec, &g, img) == LETHE_ERR_ARG);
    ec.per_forget = ec.per_class;
    CHECK_OK(lethe_gen_evaluate(t.m, &t.s, clf, &t.ds, 1, &ec, &g, img));
    CHECK(g.n_forget == ec.per_class);
    /* Fewer than 2 images of a forgotten class: refused. */
    ec.per_forget = 1;
    CHECK(lethe_gen_evaluate(t.m, &t.s, clf, &t.ds, 1, &ec, &g, NULL) == LETHE_ERR_ARG);
out:
    free(img);
    lethe_model_free(clf);
    etoy_free(&t);
}

typedef struct { long at; volatile sig_atomic_t flag; } gstopper;

static void gstop_at(const lethe_progress *p, void *ctx)
{
    gstopper *s = ctx;
    if (p->step == s->at) s->flag = 2;
}

/* eupmu-lookahead on diffusion: the look-ahead batch is noised when it is
 * measured at θ_t and step t+1 reuses those rows, so δ_t compares one
 * noise draw at θ_t and θ_{t+1}: the traced ℓ_r(θ_{t+1}; B_r') of step t
 * is step t+1's ℓ_r(θ_{t+1}) itself. A run stopped between steps (the
 * look-ahead rows pending) and resumed ends bitwise where the
 * uninterrupted one ends. */
TEST(gen_lookahead_reuses_its_noise_and_resumes)
{
    etoy t;
    if (!etoy_make(&t)) goto out;
    size_t n;
    lethe_model_theta(t.m, &n);
    float *start = malloc(n * sizeof(float));
    memcpy(start, lethe_model_theta(t.m, NULL), n * sizeof(float));
    lethe_unlearn_config cfg;
    lethe_unlearn_config_default(&cfg);
    cfg.method = "eupmu-lookahead";
    cfg.ddpm = &t.s;
    cfg.batch = 4;
    cfg.lr = 1e-3f;
    cfg.optim = LETHE_OPT_ADAMW;
    cfg.steps = 5;
    cfg.seed = 3;
    cfg.beta_decay = 0;
    lethe_unlearn_result rr, r1, r2;
    /* Steps so small that θ barely moves: with one noise draw on both
     * sides, ℓ_r(θ_t; B_r') − ℓ_r(θ_{t+1}; B_r') = (δ_t − ε)·α is ~0; with
     * a fresh draw it would be of the order of ℓ_r itself. */
    lethe_unlearn_config tiny = cfg;
    tiny.optim = LETHE_OPT_SGD;
    tiny.lr = 1e-7f;
    CHECK_OK(lethe_unlearn(t.m, &t.ds, &t.forget, &t.retain, &tiny, &rr, NULL, NULL));
    for (int s = 0; rr.trace && s + 1 < 5; s++) {
        double gap = ((double)rr.trace[s].delta - tiny.eps) * tiny.lr;
        CHECK_MSG(fabs(gap) <= 1e-4 * rr.trace[s].loss_r_after,
                  "step %d: ℓ_r before/after the step differ by %.3g (ℓ_r %.4g): not one noise "
                  "draw", s + 1, gap, (double)rr.trace[s].loss_r_after);
    }
    lethe_unlearn_result_free(&rr);
    memcpy(lethe_model_theta(t.m, NULL), start, n * sizeof(float));
    CHECK_OK(lethe_unlearn(t.m, &t.ds, &t.forget, &t.retain, &cfg, &rr, NULL, NULL));
    float *ref = malloc(n * sizeof(float));
    memcpy(ref, lethe_model_theta(t.m, NULL), n * sizeof(float));
    gstopper st = {2, 0};
    lethe_run_control run;
    lethe_run_control_default(&run);
    run.state_path = test_path("gen-ahead.state");
    run.stop = &st.flag;
    memcpy(lethe_model_theta(t.m, NULL), start, n * sizeof(float));
    CHECK(lethe_unlearn_run(t.m, &t.ds, &t.forget, &t.retain, &cfg, &run, &r1, gstop_at, &st) ==
          LETHE_ERR_INTERRUPTED);
    lethe_run_control_default(&run);
    run.resume_path = test_path("gen-ahead.state");
    memcpy(lethe_model_theta(t.m, NULL), start, n * sizeof(float));
    CHECK_OK(lethe_unlearn_run(t.m, &t.ds, &t.forget, &t.retain, &cfg, &run, &r2, NULL, NULL));
    CHECK_MSG(memcmp(ref, lethe_model_theta(t.m, NULL), n * sizeof(float)) == 0,
              "θ differs after resuming at step 2");
    CHECK(rr.trace && r2.trace && memcmp(rr.trace, r2.trace, 5 * sizeof *rr.trace) == 0);
    lethe_unlearn_result_free(&rr);
    lethe_unlearn_result_free(&r2);
    free(ref);
    free(start);
out:
    etoy_free(&t);
}
