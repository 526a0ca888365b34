/* Generation around the DDPM core: the denoising loss and its gradient,
 * training a small U-Net lowers that loss, sampling streams that pair up
 * (same seed, same class: same images, whatever the chunking), and the
 * generation metrics' bookkeeping on a toy set of 8×8 images. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "lethe.h"

enum { GS = 8, GD = GS * GS, GN = 96 };

/* Two classes of 8×8 images: class 0 bright on the left half, class 1 on
 * the right, with a little noise. */
static void gen_toy(lethe_dataset *ds, lethe_subset *all)
{
    memset(ds, 0, sizeof *ds);
    ds->n = GN;
    ds->c = 1;
    ds->h = ds->w = GS;
    ds->nclass = 2;
    ds->pixels = malloc((size_t)GN * GD);
    ds->labels = malloc(GN);
    ds->mean[0] = 0.3f;
    ds->std[0] = 0.4f;
    snprintf(ds->name, sizeof ds->name, "toy");
    lethe_rng r;
    lethe_rng_seed(&r, 77);
    for (int i = 0; i < GN; i++) {
        int y = i % 2;
        ds->labels[i] = (uint8_t)y;
        for (int p = 0; p < GD; p++) {
            int left = p % GS < GS / 2;
            int v = (left == (y == 0)) ? 220 : 30;
            v += (int)lethe_rng_below(&r, 31) - 15;
            ds->pixels[(size_t)i * GD + p] = (uint8_t)v;
        }
    }
    all->n = GN;
    all->idx = malloc(GN * sizeof(int32_t));
    for (int i = 0; i < GN; i++) all->idx[i] = i;
}

static void gen_toy_free(lethe_dataset *ds, lethe_subset *all)
{
    free(ds->pixels);
    free(ds->labels);
    lethe_subset_free(all);
}

TEST(gen_denoise_loss_value_and_gradient)
{
    const float pred[6] = {0.5f, -1.0f, 2.0f, 0.0f, 0.25f, -0.5f};
    const float tgt[6] = {0.0f, -1.0f, 1.0f, 1.0f, 0.25f, 0.5f};
    float losses[2], d[6] = {0};
    /* rows: (0.25 + 0 + 1)/3 and (1 + 0 + 1)/3 */
    float mean = lethe_denoise_loss(losses, d, pred, tgt, 0.5f, 2, 3);
    CHECK_NEAR(losses[0], 1.25 / 3, 1e-7);
    CHECK_NEAR(losses[1], 2.0 / 3, 1e-7);
    CHECK_NEAR(mean, (1.25 / 3 + 2.0 / 3) / 2, 1e-7);
    /* d = 0.5 · 2(p − t)/3, checked against central differences too. */
    for (int j = 0; j < 6; j++) {
        CHECK_NEAR(d[j], 0.5 * 2.0 * (pred[j] - tgt[j]) / 3.0, 1e-7);
        float p[6], l2[2];
        memcpy(p, pred, sizeof p);
        p[j] += 1e-3f;
        lethe_denoise_loss(l2, NULL, p, tgt, 0.0f, 2, 3);
        double up = l2[j / 3];
        p[j] -= 2e-3f;
        lethe_denoise_loss(l2, NULL, p, tgt, 0.0f, 2, 3);
        double fd = 0.5 * (up - l2[j / 3]) / 2e-3;
        CHECK_NEAR(d[j], fd, 1e-4);
    }
    /* Accumulates. */
    lethe_denoise_loss(losses, d, pred, tgt, 0.5f, 2, 3);
    CHECK_NEAR(d[0], 2 * 0.5 * 2.0 * 0.5 / 3.0, 1e-7);
}

static lethe_model *toy_unet(void)
{
    lethe_model *m = NULL;
    CHECK_OK(lethe_model_create(&m, "unet", 1, GS, GS, 2));
    return m;
}

/* Mean denoising loss of m on a fixed batch of the toy (fixed t and ε). */
static double fixed_loss(lethe_model *m, const lethe_dataset *ds, const lethe_ddpm *s)
{
    lethe_dataset u;
    lethe_dataset_unit_view(&u, ds);
    int32_t idx[32], y[32], t[32], yc[32];
    float x0[32 * GD], xt[32 * GD], eps[32 * GD], losses[32];
    for (int i = 0; i < 32; i++) idx[i] = i;
    lethe_dataset_batch(&u, idx, 32, x0, y);
    lethe_rng r;
    lethe_rng_seed(&r, 5);
    CHECK_OK(lethe_ddpm_train_batch(s, &r, x0, y, 32, GD, 2, 0.0f, xt, eps, t, yc));
    const float *out = NULL;
    CHECK_OK(lethe_model_reserve(m, 32));
    CHECK_OK(lethe_model_set_cond(m, t, yc));
    CHECK_OK(lethe_model_forward(m, xt, 32, NULL, LETHE_BN_EVAL, &out));
    return out ? lethe_denoise_loss(losses, NULL, out, eps, 0.0f, 32, GD) : 1e9;
}

TEST(gen_train_diffusion_lowers_the_loss)
{
    if (test_skip_under_asan("LETHE_SLOW_SAN", "diffusion training runs")) return;
    lethe_dataset ds;
    lethe_subset all;
    gen_toy(&ds, &all);
    lethe_ddpm s;
    CHECK_OK(lethe_ddpm_init(&s, 100, 1e-3, 0.2));
    lethe_model *m = toy_unet(), *e = toy_unet();
    if (!m || !e) goto out;
    lethe_diffusion_config cfg;
    lethe_diffusion_config_default(&cfg);
    cfg.train.epochs = 12;
    cfg.train.batch = 32;
    cfg.train.lr = 3e-3f;
    cfg.ema = 0.0f;
    lethe_rng r;
    lethe_rng_seed(&r, cfg.train.seed);
    lethe_model_init(m, &r);
    double before = fixed_loss(m, &ds, &s);
    CHECK_OK(lethe_train_diffusion(m, &ds, &all, &s, &cfg, NULL, NULL));
    double after = fixed_loss(m, &ds, &s);
    CHECK_MSG(after < 0.6 * before, "loss %g -> %g", before, after);
    /* The same run with an average returns other (averaged) weights. */
    cfg.ema = 0.9f;
    CHECK_OK(lethe_train_diffusion(e, &ds, &all, &s, &cfg, NULL, NULL));
    size_t n;
    const float *a = lethe_model_theta(m, &n), *b = lethe_model_theta(e, NULL);
    CHECK(memcmp(a, b, n * sizeof(float)) != 0);
    CHECK(lethe_vec_finite(b, n));
    CHECK(fixed_loss(e, &ds, &s) < 0.8 * before);
    /* Bad settings and a classifier are refused. */
    cfg.p_uncond = 1.5f;
    CHECK(lethe_train_diffusion(e, &ds, &all, &s, &cfg, NULL, NULL) == LETHE_ERR_ARG);
    cfg.p_uncond = 0.1f;
    cfg.ema = 1.0f;
    CHECK(lethe_train_diffusion(e, &ds, &all, &s, &cfg, NULL, NULL) == LETHE_ERR_ARG);
    cfg.ema = 0.0f;
    lethe_model *c = NULL;
    CHECK_OK(lethe_model_create(&c, "mlp", 1, GS, GS, 2));
    CHECK(lethe_train_diffusion(c, &ds, &all, &s, &cfg, NULL, NULL) == LETHE_ERR_MISMATCH);
    lethe_model_free(c);
out:
    lethe_model_free(m);
    lethe_model_free(e);
    lethe_ddpm_free(&s);
    gen_toy_free(&ds, &all);
}

/* A U-Net and a classifier trained briefly on the toy. */
static int toy_pair(lethe_model **unet, lethe_model **clf, const lethe_dataset *ds,
                    const lethe_subset *all, const lethe_ddpm *s)
{
    *unet = toy_unet();
    *clf = NULL;
    CHECK_OK(lethe_model_create(clf, "cnn", 1, GS, GS, 2));
    if (!*unet || !*clf) return 0;
    lethe_diffusion_config cfg;
    lethe_diffusion_config_default(&cfg);
    cfg.train.epochs = 4;
    cfg.train.batch = 32;
    cfg.train.lr = 3e-3f;
    lethe_train_config tc;
    lethe_train_config_default(&tc);
    tc.epochs = 3;
    tc.batch = 16;
    lethe_status a = lethe_train_diffusion(*unet, ds, all, s, &cfg, NULL, NULL);
    lethe_status b = lethe_train(*clf, ds, all, &tc, NULL, NULL);
    CHECK_OK(a);
    CHECK_OK(b);
    return a == LETHE_OK && b == LETHE_OK;
}

TEST(gen_sampling_streams_pair_up)
{
    lethe_dataset ds;
    lethe_subset all;
    gen_toy(&ds, &all);
    lethe_ddpm s;
    CHECK_OK(lethe_ddpm_init(&s, 100, 1e-3, 0.2));
    lethe_model *m = toy_unet();
    lethe_ddpm_sampler w3 = {0}, w8 = {0};
    if (!m) goto out;
    lethe_rng r;
    lethe_rng_seed(&r, 1);
    lethe_model_init(m, &r);
    CHECK_OK(lethe_model_reserve(m, 16));
    CHECK_OK(lethe_ddpm_sampler_init(&w3, 3, GD));
    CHECK_OK(lethe_ddpm_sampler_init(&w8, 8, GD));
    lethe_sample_config sc;
    lethe_sample_config_default(&sc);
    sc.steps = 4;
    sc.guidance = 2.0f;
    float a[7 * GD], b[7 * GD], c[7 * GD], d[7 * GD];
    CHECK_OK(lethe_gen_sample_class(m, &s, &sc, &w3, 1, 7, 9, a));
    CHECK_OK(lethe_gen_sample_class(m, &s, &sc, &w8, 1, 7, 9, b));
    CHECK_OK(lethe_gen_sample_class(m, &s, &sc, &w8, 0, 7, 9, c));
    CHECK_OK(lethe_gen_sample_class(m, &s, &sc, &w8, 1, 7, 10, d));
    /* DDIM with η = 0 draws only x_T: chunks of 3 or 8 see the same noise
     * (sgemm blocks batches of 3 and 8 differently: rounding, not more). */
    double diff = 0;
    for (int i = 0; i < 7 * GD; i++) diff = fmax(diff, fabs(a[i] - b[i]));
    CHECK_MSG(diff < 1e-3, "chunking changed the samples by %g", diff);
    CHECK(memcmp(b, c, sizeof b) != 0);
    CHECK(memcmp(b, d, sizeof b) != 0);
    CHECK(lethe_gen_sample_class(m, &s, &sc, &w8, 3, 7, 9, a) == LETHE_ERR_ARG);
out:
    lethe_ddpm_sampler_free(&w3);
    lethe_ddpm_sampler_free(&w8);
    lethe_model_free(m);
    lethe_ddpm_free(&s);
    gen_toy_free(&ds, &all);
}

TEST(gen_evaluate_bookkeeping)
{
    if (test_skip_under_asan("LETHE_SLOW_SAN", "diffusion evaluations")) return;
    lethe_dataset ds;
    lethe_subset all;
    gen_toy(&ds, &all);
    lethe_ddpm s;
    CHECK_OK(lethe_ddpm_init(&s, 100, 1e-3, 0.2));
    lethe_model *m = NULL, *clf = NULL;
    float *img = NULL, *again = NULL;
    lethe_ddpm_sampler w = {0};
    if (!toy_pair(&m, &clf, &ds, &all, &s)) goto out;
    lethe_gen_eval_config ec;
    lethe_gen_eval_config_default(&ec);
    ec.per_class = 6;
    ec.batch = 4;
    ec.sample.steps = 5;
    img = malloc(2 * 6 * GD * sizeof(float));
    again = malloc(6 * GD * sizeof(float));
    lethe_gen_metrics g;
    CHECK_OK(lethe_gen_evaluate(m, &s, clf, &ds, 1, &ec, &g, img));
    CHECK(g.nclass == 2 && g.per_class == 6);
    for (int k = 0; k < 2; k++) CHECK(g.acc[k] >= 0 && g.acc[k] <= 100);
    /* Accuracies are counts of 6 images. */
    CHECK_NEAR(fmod(g.acc[0] * 6 / 100.0 + 1e-9, 1.0), 0.0, 1e-6);
    CHECK_NEAR(g.ua_gen, 100.0 - g.acc[0], 1e-12);
    CHECK_NEAR(g.acc_retained, g.acc[1], 1e-12);
    CHECK(g.n_real == GN / 2);
    CHECK(isfinite(g.fd_cls) && g.fd_cls >= 0);
    CHECK(g.fwd_samples == 2L * 6 * 5 * 2);
    /* The images are the class streams of lethe_gen_sample_class. */
    CHECK_OK(lethe_ddpm_sampler_init(&w, 4, GD));
    CHECK_OK(lethe_gen_sample_class(m, &s, &ec.sample, &w, 1, 6, ec.seed, again));
    CHECK(memcmp(again, img + 6 * GD, 6 * GD * sizeof(float)) == 0);
    CHECK(isnan(g.fd_cls_real) && g.n_floor == 0);
    /* The floor: real images in place of the generated ones. With every
     * image of the kept class on both sides it is the distance of a set to
     * itself, 0. */
    ec.floor_set = &ds;
    CHECK_OK(lethe_gen_evaluate(m, &s, clf, &ds, 1, &ec, &g, NULL));
    CHECK(g.n_floor == 6 && isfinite(g.fd_cls_real) && g.fd_cls_real >= 0);
    ec.per_class = GN / 2;
    CHECK_OK(lethe_gen_evaluate(m, &s, clf, &ds, 1, &ec, &g, NULL));
    CHECK(g.n_floor == GN / 2);
    CHECK_NEAR(g.fd_cls_real, 0.0, 1e-6);
    CHECK(g.fd_cls > 1e-3);
    ec.per_class = 6;
    ec.floor_set = NULL;
    /* No forgotten class: no UA_gen; every class forgotten: refused. */
    CHECK_OK(lethe_gen_evaluate(m, &s, clf, &ds, 0, &ec, &g, NULL));
    CHECK(isnan(g.ua_gen) && g.n_real == GN);
    CHECK(lethe_gen_evaluate(m, &s, clf, &ds, 3, &ec, &g, NULL) == LETHE_ERR_ARG);
    ec.per_class = 1;
    CHECK(lethe_gen_evaluate(m, &s, clf, &ds, 1, &ec, &g, NULL) == LETHE_ERR_ARG);
out:
    lethe_ddpm_sampler_free(&w);
    free(img);
    free(again);
    lethe_model_free(m);
    lethe_model_free(clf);
    lethe_ddpm_free(&s);
    gen_toy_free(&ds, &all);
}

/* A diffusion training run stopped after step 4 and resumed from its state
 * ends on the bitwise-same θ (the EMA, the noise RNG and AdamW's moments
 * travel in the state) as the uninterrupted run. */
static volatile sig_atomic_t gen_stop;
static void stop_at_4(const lethe_progress *p, void *ctx)
{
    (void)ctx;
    if (p->step == 4) gen_stop = 1;
}

TEST(gen_train_diffusion_resumes_bitwise)
{
    if (test_skip_under_asan("LETHE_SLOW_SAN", "diffusion training runs")) return;
    lethe_dataset ds;
    lethe_subset all;
    gen_toy(&ds, &all);
    lethe_ddpm s;
    CHECK_OK(lethe_ddpm_init(&s, 100, 1e-3, 0.2));
    lethe_model *a = toy_unet(), *b = toy_unet();
    if (!a || !b) goto out;
    lethe_diffusion_config cfg;
    lethe_diffusion_config_default(&cfg);
    cfg.train.epochs = 3;
    cfg.train.batch = 32;
    cfg.ema = 0.9f;
    CHECK_OK(lethe_train_diffusion(a, &ds, &all, &s, &cfg, NULL, NULL));
    lethe_run_control run;
    lethe_run_control_default(&run);
    const char *state = test_path("gen-train.state");
    gen_stop = 0;
    run.stop = &gen_stop;
    run.state_path = state;
    CHECK(lethe_train_diffusion_run(b, &ds, &all, &s, &cfg, &run, stop_at_4, NULL) ==
          LETHE_ERR_INTERRUPTED);
    CHECK(run.step == 4 && run.saved_step == 4);
    lethe_run_control_default(&run);
    run.resume_path = state;
    CHECK_OK(lethe_train_diffusion_run(b, &ds, &all, &s, &cfg, &run, NULL, NULL));
    CHECK(run.step == 9);
    size_t n;
    const float *ta = lethe_model_theta(a, &n), *tb = lethe_model_theta(b, NULL);
    CHECK(memcmp(ta, tb, n * sizeof(float)) == 0);
    /* Another setting is refused, naming it. */
    cfg.p_uncond = 0.2f;
    CHECK(lethe_train_diffusion_run(b, &ds, &all, &s, &cfg, &run, NULL, NULL) ==
          LETHE_ERR_MISMATCH);
out:
    lethe_model_free(a);
    lethe_model_free(b);
    lethe_ddpm_free(&s);
    gen_toy_free(&ds, &all);
}
