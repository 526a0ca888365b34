/*
 * RL: random labels on the forgetting set plus the retain loss, summed
 * (ALGORITHM.md §6):
 *     d_t = ∇[CE(f(x_f), ỹ) + CE(f(x_r), y_r)],  ỹ uniform over labels ≠ y
 */
#include "unlearn/method.h"

lethe_status ul_rl_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    (void)t;
    lethe_status st;
    ul_draw(c, 1, 1, 1);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    ul_clear_dlogits(c);
    tr->loss_u = ul_loss(c, LETHE_LOSS_CE, 0, c->nf, 1.0f / (float)c->nf);
    tr->loss_r_before = ul_loss(c, LETHE_LOSS_CE, c->nf, c->nr, 1.0f / (float)c->nr);
    if ((st = ul_backward(c, c->grad, c->grad)) != LETHE_OK) return st;
    ul_apply(c, c->grad);
    return LETHE_OK;
}

const ul_method ul_rl = {
    .name = "rl",
    .summary = "random labels on D_f plus CE on D_r",
    .uses_forget = 1,
    .uses_retain = 1,
    .step = ul_rl_step,
    .grid = "lr=0.002,0.005,0.01,0.02,0.05",
    .gen_grid = "lr=0.0001,0.0003,0.001;retain_weight=1,3",
};
