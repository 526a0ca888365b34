/* Training a class-conditional noise predictor (DDPM, Ho et al. 2020):
 * per batch, x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε at a uniform t, the label dropped
 * to the null class with probability p_uncond (classifier-free guidance),
 * loss ‖ε_θ(x_t, t, y) − ε‖² (mean over pixels and batch), one optimiser
 * step; optionally an exponential moving average of θ, which is what the
 * sampler gets at the end (it smooths the last steps' noise). */
#include "lethe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


void lethe_diffusion_config_default(lethe_diffusion_config *c)
{
    memset(c, 0, sizeof *c);
    c->train.epochs = 15;
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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

lethe_status lethe_train_diffusion(lethe_model *m, const lethe_dataset *ds,
                                   const lethe_subset *sub, const lethe_ddpm *sched,
                                   const lethe_diffusion_config *cfg, lethe_progress_fn cb,
                                   void *ctx)
{
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
    lethe_schedule lr_sched = {tc->schedule, tc->lr, per_epoch * tc->epochs, per_epoch, 0.1f};
    lethe_progress p = {0};
    p.total = per_epoch * tc->epochs;
    p.epochs = tc->epochs;
    p.lambda = NAN;
    p.acc = NAN;
    double t0 = now_s();
    long images = 0;
    for (int e = 0; e < tc->epochs; e++) {
        double loss_sum = 0.0;
        long seen = 0;
        for (long b = 0; b < per_epoch; b++) {
            int nb = lethe_stream_next(&stream, bs, 0, idx);
            lethe_dataset_batch(&unit, idx, nb, x0, y);
            if ((st = lethe_ddpm_train_batch(sched, &noise, x0, y, nb, (int)d, nclass,
                                             cfg->p_uncond, xt, eps, t, yc)) != LETHE_OK)
                goto done;
            const float *pred;
            if ((st = lethe_model_set_cond(m, t, yc)) != LETHE_OK ||
                (st = lethe_model_forward(m, xt, nb, NULL, LETHE_BN_TRAIN, &pred)) != LETHE_OK)
                goto done;
            memset(dpred, 0, (size_t)nb * d * sizeof(float));
            float bl = lethe_denoise_loss(losses, dpred, pred, eps, 1.0f / (float)nb, nb, (int)d);
            if (!isfinite(bl)) {
                st = lethe_fail(LETHE_ERR_NUMERIC, "denoising loss is not finite at epoch %d, "
                                "step %ld (lower the learning rate)", e + 1, p.step + 1);
                goto done;
            }
            loss_sum += (double)bl * nb;
            seen += nb;
            lethe_vec_zero(grad, n);
            float *gs[1] = {grad};
            if ((st = lethe_model_backward(m, dpred, NULL, gs)) != LETHE_OK) goto done;
            lethe_optim_step(&opt, theta, grad, NULL, lethe_schedule_lr(&lr_sched, p.step));
            if (ema) {
                /* Warm-up (1+k)/(10+k) so the average does not remember the
                 * random initialisation for thousands of steps. */
                float k = (float)(p.step + 1);
                float a = fminf(cfg->ema, (1.0f + k) / (10.0f + k));
                for (size_t i = 0; i < n; i++) ema[i] = a * ema[i] + (1.0f - a) * theta[i];
            }
            p.step++;
            images += nb;
            if (cb) {
                p.epoch = e + 1;
                p.loss = loss_sum / (double)seen;
                p.elapsed_s = now_s() - t0;
                p.images_per_s = (double)images / (p.elapsed_s > 0 ? p.elapsed_s : 1e-9);
                p.eta_s = p.elapsed_s / (double)p.step * (double)(p.total - p.step);
                cb(&p, ctx);
            }
        }
    }
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
