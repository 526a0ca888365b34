/*
 * UNGrad: explicit unilateral gradient surgery (ALGORITHM.md §2).
 *
 *     λ* = clip(max(0, −(⟨g_r, g_u⟩ + ε_t) / ‖g_r‖²), 0, D)   (0 if ‖g_r‖² = 0)
 *     d* = g_u + λ* g_r,   θ_{t+1} = θ_t − α_t d*
 *
 * so that ⟨g_r, d*⟩ = −ε_t whenever λ* > 0: only g_u is changed.
 *
 * Two forms that compute the same g_u and g_r:
 * - grouped (§2.1): one backward pass; each layer's weight gradient is
 *   accumulated per sample group, the forgetting samples' share into g_u and
 *   the retaining samples' into g_r. Cost 2F + 2B.
 * - mixed: the way autograd code runs it; each loss is backpropagated over
 *   the whole mixed batch B_f ∪ B_r, two backward passes. Cost 2F + 4B.
 * Both normalise each group with its own batch statistics, as two separate
 * forward passes would, so the two forms agree to float precision (a
 * mixed batch normalised jointly would couple the groups through batch norm).
 */
#include <math.h>

#include "unlearn/method.h"

static lethe_status surgery(ul_ctx *c, long t, lethe_trace_step *tr)
{
    double dot = lethe_vec_dot(c->g_r, c->g_u, c->n);
    double nr2 = lethe_vec_norm2(c->g_r, c->n);
    float lam = lethe_ungrad_lambda(dot, nr2, c->eps, c->cfg->lambda_max);
    lethe_status st = ul_check(t, "UNGrad's lambda*", lam);
    if (st != LETHE_OK) return st;
    tr->lambda = tr->lambda_star = lam;
    if (c->cfg->diagnostics) ul_diag_record(c, tr, dot, nr2, 0);
    /* d* into the model's gradient vector: g_u + λ* g_r. */
    for (size_t i = 0; i < c->n; i++) c->grad[i] = c->g_u[i] + lam * c->g_r[i];
    ul_apply(c, c->grad);
    return LETHE_OK;
}

static lethe_status grouped_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    lethe_status st = ul_two_grads(c, tr);
    return st != LETHE_OK ? st : surgery(c, t, tr);
}

static lethe_status mixed_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    lethe_status st;
    ul_draw(c, 1, 1, c->cfg->loss == LETHE_UL_RL);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    /* Pass 1: ℓ_u backpropagated over all rows (the retain rows carry zeros). */
    ul_clear_dlogits(c);
    tr->loss_u = ul_forget_loss(c, 1.0f / (float)c->nf);
    if ((st = ul_backward(c, c->g_u, c->g_u)) != LETHE_OK) return st;
    /* Pass 2: ℓ_r over all rows (the forget rows carry zeros). */
    ul_clear_dlogits(c);
    tr->loss_r_before = ul_loss(c, LETHE_LOSS_CE, c->nf, c->nr, 1.0f / (float)c->nr);
    if ((st = ul_backward(c, c->g_r, c->g_r)) != LETHE_OK) return st;
    return surgery(c, t, tr);
}

static lethe_status ungrad_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    return c->cfg->ungrad_form == LETHE_UNGRAD_MIXED ? mixed_step(c, t, tr)
                                                     : grouped_step(c, t, tr);
}

static const lethe_param form_params[] = {
    UL_CHOICE("ungrad_form", NULL, ungrad_form, "grouped|mixed",
              "grouped (one backward, default) | mixed (two, autograd's way)"),
};

const ul_method ul_ungrad = {
    .name = "ungrad",
    .summary = "explicit surgery, one grouped backward (or --ungrad-form mixed) (§2)",
    .uses_forget = 1,
    .uses_retain = 1,
    .needs_group_grads = 1,
    .uses_eps = 1,
    .step = ungrad_step,
    .params = form_params,
    .nparams = 1,
    .grid = "lr=0.005,0.01,0.02,0.05;eps=0.01,0.1,0.5",
    .gen_grid = "lr=0.0001,0.0003,0.001;eps=0,0.001",
};

const ul_method ul_ungrad_mixed = {
    .name = "ungrad-mixed",
    .summary = "explicit surgery, two backward passes over the mixed batch (§2)",
    .uses_forget = 1,
    .uses_retain = 1,
    .needs_group_grads = 1,
    .uses_eps = 1,
    .step = mixed_step,
    .grid = "lr=0.005,0.01,0.02,0.05;eps=0.01,0.1,0.5",
};
