/*
 * Unlearning a class from a class-conditional noise predictor ε_θ(x_t, t, c)
 * (ALGORITHM.md §5): the step machinery of step.c with images for rows.
 * Each drawn row gets a timestep t, noise ε and x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε;
 * a per-row target stands where classification has a label:
 *
 *     retain rows, ℓ_r:      ‖ε_θ(x_t, t, c) − ε‖²   (c dropped to the null
 *                            class with probability p_uncond, as in training,
 *                            so the unconditional model is kept too)
 *     forget rows, `ga`:     −‖ε_θ(x_t, t, c_f) − ε‖²
 *     forget rows, `rl`:     ‖ε_θ(x_t, t, c_f) − sg[ε_θ(x_t, t, c')]‖²,
 *                            c' a random other class, redrawn every time;
 *                            sg: the target is a forward at θ_t whose output
 *                            is copied, so no gradient reaches it
 *
 * The loss kinds map as in classification: CE → +MSE to the row's target,
 * NEG_CE → −MSE; `nc` has no diffusion form.
 */
#include <stdlib.h>
#include <string.h>

#include "unlearn/method.h"
#include "core/fail.h"

static void diff_free(ul_ctx *c)
{
    ul_diff *df = c->diff;
    if (!df) return;
    free(df->x0);
    free(df->target);
    free(df->t);
    free(df->yc);
    free(df);
    c->diff = NULL;
}

static lethe_status diff_init(ul_ctx *c, size_t rows)
{
    ul_diff *df = calloc(1, sizeof *df);
    if (!df) return lethe_fail(LETHE_ERR_NOMEM, "out of memory for diffusion unlearning buffers");
    c->diff = df;
    df->s = c->cfg->ddpm;
    df->p_uncond = c->cfg->p_uncond;
    df->d = c->px;
    lethe_dataset_unit_view(&df->unit, c->ds);
    lethe_rng_seed(&df->rng, c->cfg->seed ^ 0xd1ff05eULL);
    size_t d = df->d;
    df->x0 = malloc(rows * d * sizeof(float));
    df->target = malloc(rows * d * sizeof(float));
    df->t = malloc(rows * sizeof(int32_t));
    df->yc = malloc(rows * sizeof(int32_t));
    if (!df->x0 || !df->target || !df->t || !df->yc) {
        diff_free(c);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for diffusion unlearning buffers");
    }
    c->ds = &df->unit;      /* rows are images in [−1, 1] */
    return LETHE_OK;
}

/* Rows [from, from + count) of c->x hold clean images in [−1, 1] and c->y,
 * c->yt their labels: noise them in place. With rl, their target is the
 * stop-gradient prediction for the class yt (one forward, counted). */
static lethe_status diff_prepare(ul_ctx *c, int from, int count, int rl)
{
    ul_diff *df = c->diff;
    if (count <= 0) return LETHE_OK;
    size_t d = df->d, off = (size_t)from * d;
    memcpy(df->x0 + off, c->x + off, (size_t)count * d * sizeof(float));
    /* Forgetting rows keep their class: it is the class to forget. */
    float pu = from < c->cur_nf ? 0.0f : df->p_uncond;
    lethe_status st = lethe_ddpm_train_batch(df->s, &df->rng, df->x0 + off, c->y + from, count,
                                             (int)d, c->nclass, pu, c->x + off,
                                             df->target + off, df->t + from, df->yc + from);
    if (st != LETHE_OK || !rl) return st;
    const float *out;
    c->res->fwd_samples += count;
    if ((st = lethe_model_set_cond(c->m, df->t + from, c->yt + from)) != LETHE_OK ||
        (st = lethe_model_forward(c->m, c->x + off, count, NULL, LETHE_BN_EVAL, &out)) != LETHE_OK)
        return st;
    memcpy(df->target + off, out, (size_t)count * d * sizeof(float));
    return LETHE_OK;
}

static lethe_status diff_cond(ul_ctx *c, int from)
{
    return lethe_model_set_cond(c->m, c->diff->t + from, c->diff->yc + from);
}

float ul_diff_loss(ul_ctx *c, lethe_loss_kind k, int from, int count, float weight, int grad)
{
    if (count <= 0) return 0.0f;
    size_t d = c->diff->d, off = (size_t)from * d;
    float sign = k == LETHE_LOSS_NEG_CE ? -1.0f : 1.0f;
    /* Retain rows: ℓ_r = a·MSE (retain_weight; 1 leaves every bit as before). */
    float a = from >= c->cur_nf ? c->cfg->retain_weight : 1.0f;
    if (a != 1.0f) weight *= a;
    float mean = lethe_denoise_loss(c->losses + from, grad ? c->dlogits + off : NULL,
                                    c->logits + off, c->diff->target + off, sign * weight,
                                    count, (int)d);
    if (sign < 0.0f || a != 1.0f)
        for (int i = 0; i < count; i++) c->losses[from + i] *= sign * a;
    return sign * mean * a;
}

static void diff_move_rows(ul_ctx *c, int from, int to, int count)
{
    ul_diff *df = c->diff;
    size_t d = df->d, n = (size_t)count;
    memmove(c->x + (size_t)to * d, c->x + (size_t)from * d, n * d * sizeof(float));
    memmove(df->x0 + (size_t)to * d, df->x0 + (size_t)from * d, n * d * sizeof(float));
    memmove(df->target + (size_t)to * d, df->target + (size_t)from * d, n * d * sizeof(float));
    memmove(df->t + to, df->t + from, n * sizeof(int32_t));
    memmove(df->yc + to, df->yc + from, n * sizeof(int32_t));
    memmove(c->y + to, c->y + from, n * sizeof(int32_t));
}

static float diff_task_loss(ul_ctx *c, lethe_loss_kind k, int from, int count, float weight,
                            int grad)
{
    return ul_diff_loss(c, k, from, count, weight, grad);
}

/* The retain loss of rows measured alone (the λ's look-ahead, the audit):
 * a·MSE for retain rows, the per-sample values left unweighted. */
static float diff_eval_loss(ul_ctx *c, const float *out, int from, int count)
{
    size_t off = (size_t)from * c->diff->d;
    float loss = lethe_denoise_loss(c->losses + from, NULL, out, c->diff->target + off, 0.0f,
                                    count, (int)c->diff->d);
    if (from >= c->cur_nf && c->cfg->retain_weight != 1.0f) loss *= c->cfg->retain_weight;
    return loss;
}

static void diff_save(ul_ctx *c, rs_writer *w)
{
    rs_set_words(w, "noise.rng", c->diff->rng.s, 4);
}

static lethe_status diff_load(ul_ctx *c, const rs_reader *r)
{
    return rs_get_words(r, "noise.rng", c->diff->rng.s, 4);
}

/* The look-ahead rows' noise was drawn already: keep the rows. */
static void diff_save_rows(ul_ctx *c, rs_writer *w, int at, int count)
{
    size_t base = (size_t)at, d = c->diff->d, n = (size_t)count;
    rs_put_floats(w, "lookahead.xt", c->x + base * d, n * d, n);
    rs_put_floats(w, "lookahead.target", c->diff->target + base * d, n * d, n);
    rs_put_ints(w, "lookahead.t", c->diff->t + base, n);
    rs_put_ints(w, "lookahead.yc", c->diff->yc + base, n);
}

static lethe_status diff_load_rows(ul_ctx *c, const rs_reader *r, int at, int count,
                                   const int32_t *idx)
{
    size_t base = (size_t)at, d = c->diff->d, n = (size_t)count;
    lethe_status st;
    if ((st = rs_get_floats(r, "lookahead.xt", c->x + base * d, n * d, n)) != LETHE_OK ||
        (st = rs_get_floats(r, "lookahead.target", c->diff->target + base * d, n * d, n)) !=
            LETHE_OK ||
        (st = rs_get_ints(r, "lookahead.t", c->diff->t + base, n, 0, c->cfg->ddpm->T - 1)) !=
            LETHE_OK ||
        (st = rs_get_ints(r, "lookahead.yc", c->diff->yc + base, n, 0, c->nclass)) != LETHE_OK)
        return st;
    lethe_dataset_batch(c->ds, idx, count, c->diff->x0 + base * d, c->y + base);
    return LETHE_OK;
}

const ul_task ul_task_diffusion = {
    .name = "diffusion",
    .init = diff_init,
    .free = diff_free,
    .prepare = diff_prepare,
    .move_rows = diff_move_rows,
    .cond = diff_cond,
    .loss = diff_task_loss,
    .eval_loss = diff_eval_loss,
    .save = diff_save,
    .load = diff_load,
    .save_rows = diff_save_rows,
    .load_rows = diff_load_rows,
};
