/*
 * FT: fine-tune on the retaining set only (ALGORITHM.md §6):
 *     θ_{t+1} = θ_t − α_t ∇ℓ_r(θ_t; B_r)
 * Forgetting comes only from catastrophic forgetting of D_f.
 */
#include "unlearn/method.h"

static lethe_status ft_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    (void)t;
    lethe_status st;
    ul_draw(c, 0, 1, 0);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    ul_clear_dlogits(c);
    tr->loss_r_before = ul_loss(c, LETHE_LOSS_CE, 0, c->nr, 1.0f / (float)c->nr);
    if ((st = ul_backward(c, c->grad, c->grad)) != LETHE_OK) return st;
    ul_apply(c, c->grad);
    return LETHE_OK;
}

const ul_method ul_ft = {
    .name = "ft",
    .summary = "fine-tune on D_r only",
    .uses_retain = 1,
    .step = ft_step,
    .grid = "lr=0.01,0.02,0.05,0.1,0.2",
    .gen_grid = "lr=0.0001,0.0003,0.001",
};
