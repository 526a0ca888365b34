/*
 * GA: gradient ascent on the forgetting set (ALGORITHM.md §6):
 *     θ_{t+1} = θ_t − α_t ∇(−CE(f(x), y))(θ_t; B_f)
 * Unbounded below; nothing protects utility.
 */
#include "unlearn/method.h"

static lethe_status ga_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    (void)t;
    lethe_status st;
    ul_draw(c, 1, 0, 0);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    ul_clear_dlogits(c);
    tr->loss_u = ul_loss(c, LETHE_LOSS_NEG_CE, 0, c->nf, 1.0f / (float)c->nf);
    if ((st = ul_backward(c, c->grad, c->grad)) != LETHE_OK) return st;
    ul_apply(c, c->grad);
    return LETHE_OK;
}

const ul_method ul_ga = {
    .name = "ga",
    .summary = "gradient ascent on D_f",
    .uses_forget = 1,
    .step = ga_step,
    .grid = "lr=0.0001,0.0003,0.001,0.003",
    .gen_grid = "lr=0.00001,0.00003,0.0001",
};
