/* Training a class-conditional noise predictor (DDPM, Ho et al. 2020):
 * per batch, x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε at a uniform t, the label dropped
 * to the null class with probability p_uncond (classifier-free guidance),
 * loss ‖ε_θ(x_t, t, y) − ε‖² (mean over pixels and batch), one optimiser
 * step; optionally an exponential moving average of θ, which is what the
 * sampler gets at the end (it smooths the last steps' noise). */
#include "lethe.h"
#include "core/fail.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/loop.h"
#include "io/runstate.h"

void lethe_diffusion_config_default(lethe_diffusion_config *c)
{
    memset(c, 0, sizeof *c);
    c->train.epochs = 12;
    c->train.batch = 128;
    c->train.lr = 1e-3f;
    c->train.schedule = LETHE_SCHED_COSINE;
    c->train.optimizer = LETHE_OPT_ADAMW;
    c->train.momentum = 0.0f;
    c->train.weight_decay = 0.0f;
    c->train.seed = 0;
    c->train.init = 1;
    c->p_uncond = 0.1f;
    c->ema = 0.999f;
}

void lethe_dataset_unit_view(lethe_dataset *view, const lethe_dataset *ds)
{
    *view = *ds;
    for (int k = 0; k < 3; k++) {
        view->mean[k] = 0.5f;
        view->std[k] = 0.5f;
    }
}

float lethe_denoise_loss(float *losses, float *dpred, const float *pred, const float *target,
                         float weight, int n, int d)
{
    if (n <= 0 || d <= 0) return 0.0f;
    double total = 0.0;
    const float sc = weight * 2.0f / (float)d;
    for (int i = 0; i < n; i++) {
        const float *p = pred + (size_t)i * d, *t = target + (size_t)i * d;
        double sum = 0.0;
        for (int j = 0; j < d; j++) sum += ((double)p[j] - t[j]) * ((double)p[j] - t[j]);
        losses[i] = (float)(sum / d);
        total += losses[i];
        if (dpred) {
            float *g = dpred + (size_t)i * d;
            for (int j = 0; j < d; j++) g[j] += sc * (p[j] - t[j]);
        }
    }
    return (float)(total / n);
}

/* Beyond θ, the optimiser and the stream, what a state holds. */
typedef struct {
    long step, seen, images;
    double loss_sum, seconds;
} diff_sums;

static void config_text(char *buf, size_t len, lethe_model *m, const lethe_dataset *ds,
                        const lethe_subset *sub, const lethe_ddpm *s,
                        const lethe_diffusion_config *c, size_t n)
{
    const lethe_train_config *t = &c->train;
    snprintf(buf, len, "task=diffusion epochs=%d batch=%d lr=%.9g schedule=%d optimizer=%d "
             "wd=%.9g seed=%llu init=%d p_uncond=%.9g ema=%.9g T=%d beta=%.17g..%.17g "
             "data=%s:%d subset=%zu:%016llx arch=%s params=%zu theta0=%016llx",
             t->epochs, t->batch, (double)t->lr, (int)t->schedule, (int)t->optimizer,
             (double)t->weight_decay, (unsigned long long)t->seed, t->init, (double)c->p_uncond,
             (double)c->ema, s->T, s->beta[0], s->beta[s->T - 1], ds->name, ds->n, sub->n,
             (unsigned long long)rs_hash_ints(sub->idx, sub->n), lethe_model_arch(m), n,
             (unsigned long long)rs_hash_model(m));
}

static lethe_status state_save(const char *path, lethe_model *m, const lethe_optim *opt,
                               const lethe_stream *stream, const lethe_rng *noise,
                               const float *ema, size_t n, const char *config, long total,
                               const diff_sums *k)
{
    rs_writer w;
    rs_writer_init(&w, path, "train", k->step, total, config);
    rs_put_model(&w, m);
    rs_put_optim(&w, opt);
    rs_put_stream(&w, "data", stream);
    rs_set_words(&w, "noise.rng", noise->s, 4);
    if (ema) rs_put_floats(&w, "ema", ema, n, 0);
    rs_set_double(&w, "loss_sum", k->loss_sum);
    rs_set_long(&w, "seen", k->seen);
    rs_set_long(&w, "images", k->images);
    rs_set_double(&w, "seconds", k->seconds);
    lethe_status st = rs_write(&w);
    rs_writer_free(&w);
    return st;
}

static lethe_status state_load(const char *path, lethe_model *m, lethe_optim *opt,
                               lethe_stream *stream, lethe_rng *noise, float *ema, size_t n,
                               const char *config, long total, diff_sums *k)
{
    rs_reader r;
    long tot;
    /* rs_close in every case: a refused state is read before it is refused. */
    lethe_status st = rs_open(&r, path, "train", config);
    if (st == LETHE_OK) st = rs_get_long(&r, "total", total, total, &tot);
    if (st == LETHE_OK) st = rs_get_long(&r, "step", 1, total, &k->step);
    if (st == LETHE_OK) st = rs_get_long(&r, "seen", 0, 1L << 62, &k->seen);
    if (st == LETHE_OK) st = rs_get_long(&r, "images", 0, 1L << 62, &k->images);
    if (st == LETHE_OK) st = rs_get_double(&r, "loss_sum", &k->loss_sum);
    if (st == LETHE_OK) st = rs_get_double(&r, "seconds", &k->seconds);
    if (st == LETHE_OK) st = rs_get_words(&r, "noise.rng", noise->s, 4);
    if (st == LETHE_OK && ema) st = rs_get_floats(&r, "ema", ema, n, 0);
    if (st == LETHE_OK) st = rs_get_model(&r, m);
    if (st == LETHE_OK) st = rs_get_optim(&r, opt);
    if (st == LETHE_OK) st = rs_get_stream(&r, "data", stream);
    rs_close(&r);
    return st;
}

/* What a step of the loop sees. */
typedef struct {
    lethe_model *m;
    const lethe_dataset *unit;
    const lethe_ddpm *sched;
    const lethe_diffusion_config *cfg;
    lethe_optim *opt;
    lethe_stream *stream;
    lethe_rng *noise;
    const lethe_schedule *lr_sched;
    float *theta, *grad, *ema;
    size_t n, d;
    float *x0, *xt, *eps, *dpred, *losses;
    int32_t *y, *yc, *t, *idx;
    int bs, nclass;
    long per_epoch, total;
    diff_sums *k;
    const char *config;
    lethe_progress *p;
} diff_loop;

static lethe_status diff_step(void *ctx, long s, double *samples)
{
    diff_loop *L = ctx;
    diff_sums *k = L->k;
    size_t n = L->n, d = L->d;
    lethe_status st;
    if (s % L->per_epoch == 0) {
        k->loss_sum = 0.0;
        k->seen = 0;
    }
    int nb = lethe_stream_next(L->stream, L->bs, 0, L->idx);
    lethe_dataset_batch(L->unit, L->idx, nb, L->x0, L->y);
    if ((st = lethe_ddpm_train_batch(L->sched, L->noise, L->x0, L->y, nb, (int)d, L->nclass,
                                     L->cfg->p_uncond, L->xt, L->eps, L->t, L->yc)) != LETHE_OK)
        return st;
    /* Under mpirun this rank's rows [lo, hi) of the global batch (every
     * rank drew all of it, noise and timesteps too: one process's draws);
     * the loss weights stay 1/nb. One process: [0, nb). */
    long lo = 0, hi = nb;
    const int dist = core_dist_size() > 1;
    if (dist) core_dist_shard(nb, &lo, &hi);
    const int nl = (int)(hi - lo);
    const float *pred;
    if ((st = lethe_model_set_cond(L->m, L->t + lo, L->yc + lo)) != LETHE_OK ||
        (st = lethe_model_forward(L->m, L->xt + (size_t)lo * d, nl, NULL, LETHE_BN_TRAIN,
                                  &pred)) != LETHE_OK)
        return st;
    memset(L->dpred, 0, (size_t)nl * d * sizeof(float));
    float bl = lethe_denoise_loss(L->losses, L->dpred, pred, L->eps + (size_t)lo * d,
                                  1.0f / (float)nb, nl, (int)d);
    if (dist && core_dist_fault(s)) bl = NAN;       /* the fault test's NaN */
    if (!isfinite(bl))
        return lethe_fail(LETHE_ERR_NUMERIC, "step %ld: the denoising loss is %s; stopping, "
                          "no model written (lower the learning rate)", s + 1,
                          isnan(bl) ? "NaN" : "infinite");
    lethe_vec_zero(L->grad, n);
    float *gs[1] = {L->grad};
    if ((st = lethe_model_backward(L->m, L->dpred, NULL, gs)) != LETHE_OK) return st;
    if (dist) {
        /* One fused in-place all-reduce of the gradient; the batch's mean loss. */
        core_dist_sum_f(L->grad, n);
        double sum = (double)bl * nl;
        core_dist_sum_d(&sum, 1);
        bl = (float)(sum / nb);
    }
    k->loss_sum += (double)bl * nb;
    k->seen += nb;
    lethe_optim_step(L->opt, L->theta, L->grad, NULL, lethe_schedule_lr(L->lr_sched, s));
    if (!lethe_vec_finite(L->theta, n))
        return lethe_fail(LETHE_ERR_NUMERIC, "step %ld: a parameter is not finite after the "
                          "update; stopping, no model written (lower the learning rate)", s + 1);
    if (L->ema) {
        /* Warm-up (1+k)/(10+k) so the average does not remember the
         * random initialisation for thousands of steps. */
        float kk = (float)(s + 1);
        float a = fminf(L->cfg->ema, (1.0f + kk) / (10.0f + kk));
        for (size_t i = 0; i < n; i++) L->ema[i] = a * L->ema[i] + (1.0f - a) * L->theta[i];
    }
    k->step = s + 1;
    k->images += nb;
    *samples += nb;
    L->p->epoch = (int)(s / L->per_epoch) + 1;
    L->p->loss = k->loss_sum / (double)k->seen;
    return LETHE_OK;
}

static lethe_status diff_loop_save(void *ctx, const char *path, long done, double seconds)
{
    diff_loop *L = ctx;
    diff_sums ks = *L->k;
    (void)done;             /* ks.step */
    ks.seconds = seconds;
    return state_save(path, L->m, L->opt, L->stream, L->noise, L->ema, L->n, L->config, L->total,
                      &ks);
}

lethe_status lethe_train_diffusion(lethe_model *m, const lethe_dataset *ds,
                                   const lethe_subset *sub, const lethe_ddpm *sched,
                                   const lethe_diffusion_config *cfg, lethe_progress_fn cb,
                                   void *ctx)
{
    return lethe_train_diffusion_run(m, ds, sub, sched, cfg, NULL, cb, ctx);
}

lethe_status lethe_train_diffusion_run(lethe_model *m, const lethe_dataset *ds,
                                       const lethe_subset *sub, const lethe_ddpm *sched,
                                       const lethe_diffusion_config *cfg, lethe_run_control *run,
                                       lethe_progress_fn cb, void *ctx)
{
    if (run) {
        run->step = 0;
        run->saved_step = -1;
    }
    const lethe_train_config *tc = &cfg->train;
    if (tc->epochs < 1 || tc->batch < 1 || !(tc->lr > 0.0f) || !isfinite(tc->lr))
        return lethe_fail(LETHE_ERR_ARG, "training needs epochs >= 1, batch >= 1, lr > 0");
    if (!(cfg->p_uncond >= 0.0f && cfg->p_uncond <= 1.0f))
        return lethe_fail(LETHE_ERR_ARG, "p_uncond must be in [0, 1], got %g",
                          (double)cfg->p_uncond);
    if (!(cfg->ema >= 0.0f && cfg->ema < 1.0f))
        return lethe_fail(LETHE_ERR_ARG, "ema must be in [0, 1), got %g", (double)cfg->ema);
    if (!sub || sub->n == 0) return lethe_fail(LETHE_ERR_ARG, "training set is empty");
    lethe_status st = lethe_model_check_data(m, ds);
    if (st != LETHE_OK) return st;
    int bs = tc->batch, nclass = lethe_model_nclass(m);
    size_t d = lethe_model_out_size(m);
    if (d != (size_t)ds->c * ds->h * ds->w)
        return lethe_fail(LETHE_ERR_MISMATCH, "model '%s' does not predict images (%zu outputs "
                          "per sample, images have %d)", lethe_model_arch(m), d,
                          ds->c * ds->h * ds->w);
    if ((st = lethe_model_reserve(m, bs)) != LETHE_OK) return st;

    lethe_dataset unit;
    lethe_dataset_unit_view(&unit, ds);
    /* A resumed run initialises too: the starting θ is part of its config. */
    lethe_rng rng, noise;
    lethe_rng_seed(&rng, tc->seed);
    if (tc->init) lethe_model_init(m, &rng);
    lethe_rng_seed(&noise, tc->seed ^ 0xd1ff0510ULL);

    size_t n;
    float *theta = lethe_model_theta(m, &n);
    float *grad = lethe_model_grad(m, NULL);
    float *x0 = malloc((size_t)bs * d * sizeof(float));     /* (B, d) clean images in [−1, 1] */
    float *xt = malloc((size_t)bs * d * sizeof(float));     /* (B, d) noisy inputs */
    float *eps = malloc((size_t)bs * d * sizeof(float));    /* (B, d) the noise to predict */
    float *dpred = malloc((size_t)bs * d * sizeof(float));  /* (B, d) ∂loss/∂ε_θ */
    float *losses = malloc((size_t)bs * sizeof(float));     /* (B) */
    int32_t *y = malloc((size_t)bs * sizeof(int32_t));      /* (B) labels */
    int32_t *yc = malloc((size_t)bs * sizeof(int32_t));     /* (B) conditioning labels */
    int32_t *t = malloc((size_t)bs * sizeof(int32_t));      /* (B) timestep indices */
    int32_t *idx = malloc((size_t)bs * sizeof(int32_t));    /* (B) */
    float *ema = cfg->ema > 0.0f ? malloc(n * sizeof(float)) : NULL;  /* (n) averaged θ */
    lethe_optim opt = {0};
    lethe_stream stream = {0};
    if (!x0 || !xt || !eps || !dpred || !losses || !y || !yc || !t || !idx ||
        (cfg->ema > 0.0f && !ema)) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for diffusion training buffers");
        goto done;
    }
    if (ema) memcpy(ema, theta, n * sizeof(float));
    if ((st = lethe_optim_init(&opt, tc->optimizer, n)) != LETHE_OK) goto done;
    opt.momentum = tc->momentum;
    opt.weight_decay = tc->weight_decay;
    opt.nesterov = tc->nesterov;
    if ((st = lethe_stream_init(&stream, sub, tc->seed ^ 0x5eedda7aULL)) != LETHE_OK) goto done;

    long per_epoch = (long)((sub->n + (size_t)bs - 1) / (size_t)bs);
    long total = per_epoch * tc->epochs;
    lethe_schedule lr_sched = {tc->schedule, tc->lr, total, per_epoch, 0.1f};
    char config[768];
    config_text(config, sizeof config, m, ds, sub, sched, cfg, n);
    if ((st = core_dist_check_train((long)sub->n, bs, config, sizeof config, ds)) != LETHE_OK)
        goto done;
    diff_sums k = {0};
    if (run && run->resume_path)
        st = state_load(run->resume_path, m, &opt, &stream, &noise, ema, n, config, total, &k);
    /* Under mpirun: a state every rank refuses (another rank count) is said once. */
    if (run && run->resume_path && core_dist_size() > 1 && !core_dist_any(st == LETHE_OK))
        core_dist_error_shared();
    if (st != LETHE_OK) goto done;
    lethe_progress p = {0};
    p.total = total;
    p.epochs = tc->epochs;
    p.lambda = NAN;
    p.acc = NAN;
    diff_loop dl = {m, &unit, sched, cfg, &opt, &stream, &noise, &lr_sched, theta, grad, ema, n,
                    d, x0, xt, eps, dpred, losses, y, yc, t, idx, bs, nclass, per_epoch, total,
                    &k, config, &p};
    core_loop L = {.start = k.step, .total = total, .before_s = k.seconds, .run = run,
                   .cb = cb, .cbctx = ctx, .p = &p, .ctx = &dl, .step = diff_step,
                   .save = diff_loop_save};
    if ((st = core_loop_run(&L)) != LETHE_OK) goto done;
    if (ema) memcpy(theta, ema, n * sizeof(float));
    if (!lethe_vec_finite(theta, n))
        st = lethe_fail(LETHE_ERR_NUMERIC, "parameters are not finite after training");
done:
    lethe_stream_free(&stream);
    lethe_optim_free(&opt);
    free(x0);
    free(xt);
    free(eps);
    free(dpred);
    free(losses);
    free(y);
    free(yc);
    free(t);
    free(idx);
    free(ema);
    return st;
}
