/* The training loop: shuffled batches, cross-entropy, one optimiser step
 * per batch, learning rate stepped per batch. Used for the original model
 * and for Retrain (the same recipe on D_r only). */
#include "lethe.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

void lethe_train_config_default(lethe_train_config *c)
{
    c->epochs = 8;
    c->batch = 128;
    c->lr = 0.05f;
    c->schedule = LETHE_SCHED_COSINE;
    c->optimizer = LETHE_OPT_SGD;
    c->momentum = 0.9f;
    c->weight_decay = 5e-4f;
    c->nesterov = 0;
    c->seed = 0;
    c->init = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

lethe_status lethe_train(lethe_model *m, const lethe_dataset *ds, const lethe_subset *sub,
                         const lethe_train_config *cfg, lethe_progress_fn cb, void *ctx)
{
    if (cfg->epochs < 1 || cfg->batch < 1 || !(cfg->lr > 0.0f) || !isfinite(cfg->lr))
        return lethe_fail(LETHE_ERR_ARG, "training needs epochs >= 1, batch >= 1, lr > 0");
    if (!sub || sub->n == 0) return lethe_fail(LETHE_ERR_ARG, "training set is empty");
    int bs = cfg->batch, c = lethe_model_nclass(m);
    lethe_status st = lethe_model_check_data(m, ds);
    if (st != LETHE_OK) return st;
    if ((st = lethe_model_reserve(m, bs)) != LETHE_OK) return st;

    /* Distinct streams for weights and data order, both from the seed. */
    lethe_rng rng;
    lethe_rng_seed(&rng, cfg->seed);
    if (cfg->init) lethe_model_init(m, &rng);

    size_t n;
    float *theta = lethe_model_theta(m, &n);
    float *grad = lethe_model_grad(m, NULL);
    size_t px = (size_t)ds->c * ds->h * ds->w;
    float *x = malloc((size_t)bs * px * sizeof(float));        /* (B, C, H, W) */
    int32_t *y = malloc((size_t)bs * sizeof(int32_t));          /* (B) */
    int32_t *idx = malloc((size_t)bs * sizeof(int32_t));        /* (B) */
    float *losses = malloc((size_t)bs * sizeof(float));         /* (B) */
    float *dlogits = malloc((size_t)bs * c * sizeof(float));    /* (B, C) */
    float *w = malloc((size_t)bs * sizeof(float));              /* (B) */
    lethe_optim opt = {0};
    lethe_stream stream = {0};
    if (!x || !y || !idx || !losses || !dlogits || !w) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for training buffers");
        goto done;
    }
    if ((st = lethe_optim_init(&opt, cfg->optimizer, n)) != LETHE_OK) goto done;
    opt.momentum = cfg->momentum;
    opt.weight_decay = cfg->weight_decay;
    opt.nesterov = cfg->nesterov;
    if ((st = lethe_stream_init(&stream, sub, cfg->seed ^ 0x5eedda7aULL)) != LETHE_OK) goto done;

    long per_epoch = (long)((sub->n + (size_t)bs - 1) / (size_t)bs);
    lethe_schedule sched = {cfg->schedule, cfg->lr, per_epoch * cfg->epochs, per_epoch, 0.1f};
    lethe_progress p = {0};
    p.total = per_epoch * cfg->epochs;
    p.epochs = cfg->epochs;
    p.lambda = NAN;
    double t0 = now_s();
    long images = 0;
    for (int e = 0; e < cfg->epochs; e++) {
        double loss_sum = 0.0;
        long correct = 0, seen = 0;
        for (long b = 0; b < per_epoch; b++) {
            int nb = lethe_stream_next(&stream, bs, 0, idx);
            lethe_dataset_batch(ds, idx, nb, x, y);
            const float *logits;
            if ((st = lethe_model_forward(m, x, nb, NULL, LETHE_BN_TRAIN, &logits)) != LETHE_OK)
                goto done;
            for (int i = 0; i < nb; i++) w[i] = 1.0f / (float)nb;
            for (size_t i = 0; i < (size_t)nb * c; i++) dlogits[i] = 0.0f;
            lethe_loss(LETHE_LOSS_CE, losses, dlogits, logits, y, w, nb, c);
            double bl = 0.0;
            for (int i = 0; i < nb; i++) bl += losses[i];
            if (!isfinite(bl)) {
                st = lethe_fail(LETHE_ERR_NUMERIC, "training loss is not finite at epoch %d, "
                                "step %ld (lower the learning rate)", e + 1, p.step + 1);
                goto done;
            }
            correct += lethe_correct(logits, y, nb, c);
            loss_sum += bl;
            seen += nb;
            lethe_vec_zero(grad, n);
            float *gs[1] = {grad};
            if ((st = lethe_model_backward(m, dlogits, NULL, gs)) != LETHE_OK) goto done;
            lethe_optim_step(&opt, theta, grad, NULL, lethe_schedule_lr(&sched, p.step));
            p.step++;
            images += nb;
            if (cb) {
                p.epoch = e + 1;
                p.loss = loss_sum / (double)seen;
                p.acc = 100.0 * (double)correct / (double)seen;
                p.elapsed_s = now_s() - t0;
                p.images_per_s = (double)images / (p.elapsed_s > 0 ? p.elapsed_s : 1e-9);
                p.eta_s = p.elapsed_s / (double)p.step * (double)(p.total - p.step);
                cb(&p, ctx);
            }
        }
    }
    if (!lethe_vec_finite(theta, n))
        st = lethe_fail(LETHE_ERR_NUMERIC, "parameters are not finite after training");
done:
    lethe_stream_free(&stream);
    lethe_optim_free(&opt);
    free(x);
    free(y);
    free(idx);
    free(losses);
    free(dlogits);
    free(w);
    return st;
}
