/*
 * NegGrad+ (ALGORITHM.md §6):
 *     d_t = ∇[a·CE(f(x_r), y_r) − (1 − a)·CE(f(x_f), y_f)],  a in (0, 1)
 */
#include "unlearn/method.h"

static lethe_status neggrad_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    (void)t;
    lethe_status st;
    float a = c->cfg->neggrad_a;
    ul_draw(c, 1, 1, 0);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    ul_clear_dlogits(c);
    tr->loss_u = ul_loss(c, LETHE_LOSS_NEG_CE, 0, c->nf, (1.0f - a) / (float)c->nf);
    tr->loss_r_before = ul_loss(c, LETHE_LOSS_CE, c->nf, c->nr, a / (float)c->nr);
    if ((st = ul_backward(c, c->grad, c->grad)) != LETHE_OK) return st;
    ul_apply(c, c->grad);
    return LETHE_OK;
}

static const lethe_param a_params[] = {
    UL_REAL("a", "neggrad_a", neggrad_a, 0, 1, 1, 1, "0.9,0.95,0.99",
            "weight a of a·CE(D_r) − (1 − a)·CE(D_f), in (0, 1) (default 0.9)"),
};

const ul_method ul_neggrad = {
    .name = "neggrad+",
    .summary = "a·CE(D_r) − (1 − a)·CE(D_f)",
    .uses_forget = 1,
    .uses_retain = 1,
    .step = neggrad_step,
    .params = a_params,
    .nparams = 1,
    .grid = "lr=0.001,0.003,0.01,0.02;a=0.9,0.95,0.99",
};
