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

lethe_status ul_diff_init(ul_diff *df, const lethe_dataset *ds, const lethe_unlearn_config *cfg,
                          size_t rows, size_t d)
{
    memset(df, 0, sizeof *df);
    df->s = cfg->ddpm;
    df->p_uncond = cfg->p_uncond;
    df->d = d;
    lethe_dataset_unit_view(&df->unit, ds);
    lethe_rng_seed(&df->rng, cfg->seed ^ 0xd1ff05eULL);
    df->x0 = malloc(rows * d * sizeof(float));
    df->target = malloc(rows * d * sizeof(float));
    df->t = malloc(rows * sizeof(int32_t));
    df->yc = malloc(rows * sizeof(int32_t));
    if (!df->x0 || !df->target || !df->t || !df->yc) {
        ul_diff_free(df);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for diffusion unlearning buffers");
    }
    return LETHE_OK;
}

void ul_diff_free(ul_diff *df)
{
    free(df->x0);
    free(df->target);
    free(df->t);
    free(df->yc);
    df->x0 = df->target = NULL;
    df->t = df->yc = NULL;
}

/* Rows [from, from + count) of c->x hold clean images in [−1, 1] and c->y,
 * c->yt their labels: noise them in place. With rl, their target is the
 * stop-gradient prediction for the class yt (one forward, counted). */
lethe_status ul_diff_noise(ul_ctx *c, int from, int count, int rl)
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

lethe_status ul_diff_cond(ul_ctx *c, int from)
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

void ul_diff_move_rows(ul_ctx *c, int from, int to, int count)
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
