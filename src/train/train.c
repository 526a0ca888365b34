/* The training loop: shuffled batches, cross-entropy, one optimiser step
 * per batch, learning rate stepped per batch. Used for the original model
 * and for Retrain (the same recipe on D_r only).
 *
 * Under a run control (lethe_train_run) the loop can stop after any step
 * and go on from a run state to the bitwise-same θ: the state holds θ and
 * buffers, the optimiser's moments and step count, the stream's order,
 * position and rng, and the epoch's running sums (progress only). The
 * weight-init rng is used once before step 1 and is not part of it. */
#include "lethe.h"
#include "core/fail.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/loop.h"
#include "data/augment.h"
#include "io/runstate.h"
#include "nn/model.h"
#include "optim/optim.h"

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
    c->augment = 0;
    c->deterministic = 0;
    c->warmup = 0.0f;
}

/* What a state holds beyond θ, the optimiser and the stream. */
typedef struct {
    long step;              /* batches done */
    double loss_sum;        /* of the current epoch, for progress */
    long correct, seen;     /* of the current epoch */
    long images;
    double seconds;         /* wall clock of the earlier calls */
} train_sums;

/* The settings a resumed run must share with the one that wrote the state,
 * the starting θ included (call it before a resumed state is loaded). */
static void train_config_text(char *buf, size_t len, lethe_model *m,
                              const lethe_dataset *ds, const lethe_subset *sub,
                              const lethe_train_config *c, size_t n)
{
    snprintf(buf, len, "epochs=%d batch=%d lr=%.9g schedule=%d optimizer=%d momentum=%.9g "
             "wd=%.9g nesterov=%d seed=%llu init=%d data=%s:%d subset=%zu:%016llx arch=%s "
             "params=%zu theta0=%016llx",
             c->epochs, c->batch, (double)c->lr, (int)c->schedule, (int)c->optimizer,
             (double)c->momentum, (double)c->weight_decay, c->nesterov,
             (unsigned long long)c->seed, c->init, ds->name, ds->n, sub->n,
             (unsigned long long)rs_hash_ints(sub->idx, sub->n), lethe_model_arch(m), n,
             (unsigned long long)rs_hash_model(m));
    /* Only when on: the states of runs without it keep their config. */
    size_t at = strlen(buf);
    if (c->augment && at < len) snprintf(buf + at, len - at, " augment=%d", c->augment);
    at = strlen(buf);
    if (c->deterministic && at < len) snprintf(buf + at, len - at, " deterministic=1");
    at = strlen(buf);
    if (c->warmup > 0.0f && at < len) snprintf(buf + at, len - at, " warmup=%.9g", (double)c->warmup);
}

static lethe_status train_save(const char *path, lethe_model *m, const lethe_optim *opt,
                               const lethe_stream *stream, const char *config, long total,
                               const train_sums *k)
{
    rs_writer w;
    rs_writer_init(&w, path, "train", k->step, total, config);
    rs_put_model(&w, m);
    rs_put_optim(&w, opt);
    rs_put_stream(&w, "data", stream);
    rs_set_double(&w, "loss_sum", k->loss_sum);
    rs_set_long(&w, "correct", k->correct);
    rs_set_long(&w, "seen", k->seen);
    rs_set_long(&w, "images", k->images);
    rs_set_double(&w, "seconds", k->seconds);
    lethe_status st = rs_write(&w);
    rs_writer_free(&w);
    return st;
}

static lethe_status train_load(const char *path, lethe_model *m, lethe_optim *opt,
                               lethe_stream *stream, const char *config, long total,
                               train_sums *k)
{
    rs_reader r;
    lethe_status st = rs_open(&r, path, "train", config);
    long tot;
    if (st == LETHE_OK) st = rs_get_long(&r, "total", total, total, &tot);
    if (st == LETHE_OK) st = rs_get_long(&r, "step", 1, total, &k->step);
    if (st == LETHE_OK) st = rs_get_long(&r, "correct", 0, 1L << 62, &k->correct);
    if (st == LETHE_OK) st = rs_get_long(&r, "seen", 0, 1L << 62, &k->seen);
    if (st == LETHE_OK) st = rs_get_long(&r, "images", 0, 1L << 62, &k->images);
    if (st == LETHE_OK) st = rs_get_double(&r, "loss_sum", &k->loss_sum);
    if (st == LETHE_OK) st = rs_get_double(&r, "seconds", &k->seconds);
    if (st == LETHE_OK) st = rs_get_model(&r, m);
    if (st == LETHE_OK) st = rs_get_optim(&r, opt);
    if (st == LETHE_OK) st = rs_get_stream(&r, "data", stream);
    rs_close(&r);
    return st;
}

/* "step S: the QUANTITY is NaN|infinite; …" (S counted from 1). */
static lethe_status numeric(long step, const char *what, double v, const char *hint)
{
    return lethe_fail(LETHE_ERR_NUMERIC, "step %ld: %s is %s%s; stopping, no model written",
                      step, what, isnan(v) ? "NaN" : "infinite", hint);
}

/* The first non-finite value of a (n), or 0 if all are finite. */
static float first_bad(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return a[i];
    return 0.0f;
}

/* What a step of the loop sees. */
typedef struct {
    lethe_model *m;
    const lethe_dataset *ds;
    lethe_optim *opt;
    lethe_stream *stream;
    const lethe_schedule *sched;
    float *theta, *grad;
    size_t n;
    float *x, *losses, *dlogits, *w;
    int32_t *y, *idx;
    int bs, c;
    size_t px;              /* floats per image */
    int augment;
    uint64_t aug_seed;      /* with the step, the seed of that step's crops and flips */
    long per_epoch, total;
    long warmup;            /* steps of linear warm-up (0: none) */
    train_sums *k;
    const char *config;
    lethe_progress *p;
    float *chunks;          /* --deterministic: the chunks' gradients (TRAIN_CHUNKS, n), or NULL */
} train_loop;

/* --deterministic: each batch in this many fixed chunks (core_dist_plan). */
#define TRAIN_CHUNKS LETHE_MAX_GROUPS

/* Forward and backward of the rows [lo, hi) of the batch of nb in L->x
 * (groups g: --deterministic's chunks, or NULL), and the sums over every
 * rank: the gradient into L->grad, the loss sum into *bl, the correct
 * answers into *correct. */
static lethe_status train_pass(train_loop *L, long s, int nb, long lo, long hi,
                               const lethe_groups *g, double *bl, long *correct)
{
    const int dist = core_dist_size() > 1, c = L->c;
    const size_t n = L->n;
    const int nl = (int)(hi - lo);
    const float *xl = L->x + (size_t)lo * L->px;
    const int32_t *yl = L->y + lo;
    const float *logits;
    lethe_status st;
    if ((st = lethe_model_forward(L->m, xl, nl, g, LETHE_BN_TRAIN, &logits)) != LETHE_OK)
        return st;
    for (int i = 0; i < nl; i++) L->w[i] = 1.0f / (float)nb;
    for (size_t i = 0; i < (size_t)nl * c; i++) L->dlogits[i] = 0.0f;
    lethe_loss(LETHE_LOSS_CE, L->losses, L->dlogits, logits, yl, L->w, nl, c);
    *bl = 0.0;
    double part[LETHE_MAX_GROUPS] = {0};
    if (g) {
        /* Per chunk, the chunks added in order (core_dist_plan_sum_d). */
        for (int k = 0; k < g->n; k++)
            for (int i = g->start[k]; i < g->start[k + 1]; i++) part[k] += L->losses[i];
    } else {
        for (int i = 0; i < nl; i++) *bl += L->losses[i];
    }
    if (dist && core_dist_fault(s)) part[0] = *bl = NAN;    /* the fault test's NaN */
    double seen = *bl;
    for (int k = 0; g && k < g->n; k++) seen += part[k];
    if (!isfinite(seen)) return numeric(s + 1, "the training loss", seen, " (lower the learning rate)");
    *correct = lethe_correct(logits, yl, nl, c);
    if (g) {
        /* Each chunk's gradient apart, then their sum in chunk order. */
        float *mine = core_dist_plan_mine(core_dist_plan_for(g), L->chunks, n), *gs[LETHE_MAX_GROUPS];
        lethe_vec_zero(mine, (size_t)g->n * n);
        for (int k = 0; k < g->n; k++) gs[k] = mine + (size_t)k * n;
        if ((st = lethe_model_backward(L->m, L->dlogits, g, gs)) != LETHE_OK) return st;
        if (!lethe_vec_finite(mine, (size_t)g->n * n))
            return numeric(s + 1, "the gradient", first_bad(mine, (size_t)g->n * n), "");
        core_dist_plan_sum_f(core_dist_plan_for(g), L->chunks, n, (float *const[]){L->grad});
        core_dist_plan_sum_d(core_dist_plan_for(g), part, bl);
        if (dist) core_dist_sum_l(correct, 1);
        return LETHE_OK;
    }
    lethe_vec_zero(L->grad, n);
    float *gs[1] = {L->grad};
    if ((st = lethe_model_backward(L->m, L->dlogits, NULL, gs)) != LETHE_OK) return st;
    if (!lethe_vec_finite(L->grad, n))
        return numeric(s + 1, "the gradient", first_bad(L->grad, n), "");
    if (dist) {
        /* One fused in-place all-reduce of the gradient; the progress sums. */
        core_dist_sum_f(L->grad, n);
        double sums[2] = {*bl, (double)*correct};
        core_dist_sum_d(sums, 2);
        *bl = sums[0];
        *correct = (long)sums[1];
    }
    return LETHE_OK;
}

static lethe_status train_step(void *ctx, long s, double *samples)
{
    train_loop *L = ctx;
    train_sums *k = L->k;
    int bs = L->bs;
    lethe_status st;
    if (s % L->per_epoch == 0) {
        k->loss_sum = 0.0;
        k->correct = k->seen = 0;
    }
    /* With wrap = 0 the stream's epochs are exactly per_epoch batches. */
    int nb = lethe_stream_next(L->stream, bs, 0, L->idx);
    if (L->augment) {
        /* A fresh rng a step, from the seed and the step's number: a
         * resumed run draws the same crops with no state to save. */
        lethe_rng ar;
        lethe_rng_seed(&ar, L->aug_seed ^ ((uint64_t)s * 0x9e3779b97f4a7c15ULL));
        aug_dataset_batch_ex(L->ds, L->idx, nb, L->x, L->y, &ar,
                             L->augment == LETHE_AUGMENT_CROP_FLIP);
    } else {
        lethe_dataset_batch(L->ds, L->idx, nb, L->x, L->y);
    }
    /* Under mpirun this rank's rows [lo, hi) of the global batch of nb
     * (every rank drew and loaded all of it: the same order and crops as
     * one process); the loss weights stay 1/nb. One process: [0, nb).
     * --deterministic: this rank's chunks, a sample group each. */
    long lo = 0, hi = nb;
    core_dist_plan pl;
    const lethe_groups *g = NULL;
    if (L->chunks) {
        core_dist_plan_init(&pl, 1, &nb, TRAIN_CHUNKS);
        core_dist_plan_rows(&pl, 0, &lo, &hi);
        core_dist_plan_use(&pl);
        g = &pl.g;
    } else if (core_dist_size() > 1) {
        core_dist_shard(nb, &lo, &hi);
    }
    double bl;
    long correct;
    st = train_pass(L, s, nb, lo, hi, g, &bl, &correct);
    core_dist_plan_use(NULL);
    if (st != LETHE_OK) return st;
    k->correct += correct;
    k->loss_sum += bl;
    k->seen += nb;
    lethe_optim_step(L->opt, L->theta, L->grad, NULL,
                     optim_warmup_lr(lethe_schedule_lr(L->sched, s), s, L->warmup));
    if (!lethe_vec_finite(L->theta, L->n))
        return numeric(s + 1, "a parameter after the update", first_bad(L->theta, L->n),
                       " (lower the learning rate)");
    k->step = s + 1;
    k->images += nb;
    *samples += nb;
    L->p->epoch = (int)(s / L->per_epoch) + 1;
    L->p->loss = k->loss_sum / (double)k->seen;
    L->p->acc = 100.0 * (double)k->correct / (double)k->seen;
    return LETHE_OK;
}

static lethe_status train_loop_save(void *ctx, const char *path, long done, double seconds)
{
    train_loop *L = ctx;
    train_sums ks = *L->k;
    (void)done;             /* ks.step */
    ks.seconds = seconds;
    return train_save(path, L->m, L->opt, L->stream, L->config, L->total, &ks);
}

lethe_status lethe_train(lethe_model *m, const lethe_dataset *ds, const lethe_subset *sub,
                         const lethe_train_config *cfg, lethe_progress_fn cb, void *ctx)
{
    return lethe_train_run(m, ds, sub, cfg, NULL, cb, ctx);
}

lethe_status lethe_train_run(lethe_model *m, const lethe_dataset *ds, const lethe_subset *sub,
                             const lethe_train_config *cfg, lethe_run_control *run,
                             lethe_progress_fn cb, void *ctx)
{
    if (run) {
        run->step = 0;
        run->saved_step = -1;
    }
    if (cfg->epochs < 1 || cfg->batch < 1 || !(cfg->lr > 0.0f) || !isfinite(cfg->lr))
        return lethe_fail(LETHE_ERR_ARG, "training needs epochs >= 1, batch >= 1, lr > 0");
    if (!(cfg->warmup >= 0.0f && cfg->warmup <= (float)cfg->epochs))
        return lethe_fail(LETHE_ERR_ARG, "warm-up of %g epochs: not between 0 and the %d "
                          "epochs of the run", (double)cfg->warmup, cfg->epochs);
    if (!sub || sub->n == 0) return lethe_fail(LETHE_ERR_ARG, "training set is empty");
    int bs = cfg->batch, c = lethe_model_nclass(m);
    lethe_status st = lethe_model_check_data(m, ds);
    if (st != LETHE_OK) return st;
    if (cfg->augment < LETHE_AUGMENT_OFF || cfg->augment > LETHE_AUGMENT_FLIP)
        return lethe_fail(LETHE_ERR_ARG, "augment %d: not a mode (0 off, 1 crop and flip, "
                          "2 flip)", cfg->augment);
    if (cfg->augment && ds->tokens)
        return lethe_fail(LETHE_ERR_ARG, "data set %s holds texts: crop and flip augment "
                          "images only", ds->name);
    /* A text model keeps the vocabulary it learnt, for its checkpoint. */
    if (ds->vocab && !nn_model_vocab(m, NULL) &&
        (st = nn_model_set_vocab(m, ds->vocab, ds->vocab_len)) != LETHE_OK)
        return st;
    if ((st = lethe_model_reserve(m, bs)) != LETHE_OK) return st;
    int resume = run && run->resume_path;

    /* Distinct streams for weights and data order, both from the seed. A
     * resumed run initialises too: the starting θ is part of its config. */
    lethe_rng rng;
    lethe_rng_seed(&rng, cfg->seed);
    if (cfg->init) lethe_model_init(m, &rng);

    size_t n;
    float *theta = lethe_model_theta(m, &n);
    float *grad = lethe_model_grad(m, NULL);
    size_t px = lethe_dataset_sample_size(ds);
    float *x = malloc((size_t)bs * px * sizeof(float));        /* (B, C, H, W) or (B, T) */
    int32_t *y = malloc((size_t)bs * sizeof(int32_t));          /* (B) */
    int32_t *idx = malloc((size_t)bs * sizeof(int32_t));        /* (B) */
    float *losses = malloc((size_t)bs * sizeof(float));         /* (B) */
    float *dlogits = malloc((size_t)bs * c * sizeof(float));    /* (B, C) */
    float *w = malloc((size_t)bs * sizeof(float));              /* (B) */
    lethe_optim opt = {0};
    lethe_stream stream = {0};
    /* --deterministic: each chunk's gradient apart (MPI counts are ints). */
    float *chunks = NULL;
    if (cfg->deterministic && (size_t)TRAIN_CHUNKS * n > (size_t)INT_MAX) {
        st = lethe_fail(LETHE_ERR_ARG, "--deterministic: %zu parameters are too many (at most "
                        "%d)", n, INT_MAX / TRAIN_CHUNKS);
        goto done;
    }
    if (cfg->deterministic) chunks = malloc((size_t)TRAIN_CHUNKS * n * sizeof(float));
    if (!x || !y || !idx || !losses || !dlogits || !w || (cfg->deterministic && !chunks)) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for training buffers");
        goto done;
    }
    if ((st = lethe_optim_init(&opt, cfg->optimizer, n)) != LETHE_OK) goto done;
    opt.momentum = cfg->momentum;
    opt.weight_decay = cfg->weight_decay;
    opt.nesterov = cfg->nesterov;
    if ((st = lethe_stream_init(&stream, sub, cfg->seed ^ 0x5eedda7aULL)) != LETHE_OK) goto done;

    long per_epoch = (long)((sub->n + (size_t)bs - 1) / (size_t)bs);
    long total = per_epoch * cfg->epochs;
    lethe_schedule sched = {cfg->schedule, cfg->lr, total, per_epoch, 0.1f};
    long warmup = lround((double)cfg->warmup * (double)per_epoch);
    char config[512];
    train_config_text(config, sizeof config, m, ds, sub, cfg, n);
    if (cfg->deterministic) {
        /* Every batch in TRAIN_CHUNKS chunks of one sample or more, a rank
         * holding whole chunks. */
        long last = (long)sub->n - (per_epoch - 1) * bs, small = last < bs ? last : bs;
        if (core_dist_size() > TRAIN_CHUNKS || small < TRAIN_CHUNKS) {
            core_dist_error_shared();
            st = core_dist_size() > TRAIN_CHUNKS
                     ? lethe_fail(LETHE_ERR_ARG, "--deterministic runs on at most %d ranks "
                                  "(its %d fixed chunks of every batch), not %d", TRAIN_CHUNKS,
                                  TRAIN_CHUNKS, core_dist_size())
                     : lethe_fail(LETHE_ERR_ARG, "--deterministic cuts every batch in %d "
                                  "chunks, but %s batch has %ld sample%s (another --batch)",
                                  TRAIN_CHUNKS, last < bs ? "the last" : "a", small,
                                  small > 1 ? "s" : "");
            goto done;
        }
    }
    if ((st = core_dist_check_train((long)sub->n, bs, config, sizeof config, ds)) != LETHE_OK)
        goto done;
    train_sums k = {0};
    if (resume) st = train_load(run->resume_path, m, &opt, &stream, config, total, &k);
    /* Under mpirun: a state every rank refuses (another rank count) is said once. */
    if (resume && core_dist_size() > 1 && !core_dist_any(st == LETHE_OK)) core_dist_error_shared();
    if (st != LETHE_OK) goto done;
    lethe_progress p = {0};
    p.total = total;
    p.epochs = cfg->epochs;
    p.lambda = NAN;
    train_loop tl = {m, ds, &opt, &stream, &sched, theta, grad, n, x, losses, dlogits, w, y,
                     idx, bs, c, px, cfg->augment, cfg->seed ^ 0x6175676d656e7400ULL /* "augment" */,
                     per_epoch, total, warmup, &k, config, &p, chunks};
    core_loop L = {.start = k.step, .total = total, .before_s = k.seconds, .run = run,
                   .cb = cb, .cbctx = ctx, .p = &p, .ctx = &tl, .step = train_step,
                   .save = train_loop_save};
    if ((st = core_loop_run(&L)) != LETHE_OK) goto done;
    /* A resumed state at the last step: θ came from the file, check it too. */
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
    free(chunks);
    return st;
}
