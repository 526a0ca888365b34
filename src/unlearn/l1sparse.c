/*
 * ℓ1-sparse (ALGORITHM.md §6): fine-tuning with a decaying ℓ1 penalty,
 *     d_t = ∇ℓ_r(θ_t; B_r) + γ_t·sign(θ_t),   γ_t = γ_0·(1 − t/T)
 * (the subgradient of γ_t‖θ‖₁, with sign(0) = 0).
 */
#include "unlearn/method.h"

static lethe_status l1_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    lethe_status st;
    ul_draw(c, 0, 1, 0);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    ul_clear_dlogits(c);
    tr->loss_r_before = ul_loss(c, LETHE_LOSS_CE, 0, c->nr, 1.0f / (float)c->nr);
    if ((st = ul_backward(c, c->grad, c->grad)) != LETHE_OK) return st;
    float gam = c->cfg->l1 * (1.0f - (float)t / (float)c->res->steps);
    for (size_t i = 0; i < c->n; i++) {
        float th = c->theta[i];
        c->grad[i] += th > 0.0f ? gam : th < 0.0f ? -gam : 0.0f;
    }
    ul_apply(c, c->grad);
    return LETHE_OK;
}

static const lethe_param l1_params[] = {
    UL_REAL("l1", NULL, l1, 0, 0, 10, 0, "0.0001,0.0005",
            "initial penalty γ of γ_t‖θ‖₁, decaying linearly to 0 (default 5e-4)"),
};

const ul_method ul_l1sparse = {
    .name = "l1-sparse",
    .summary = "fine-tune with a linearly decaying l1 penalty",
    .uses_retain = 1,
    .step = l1_step,
    .params = l1_params,
    .nparams = 1,
    .grid = "lr=0.01,0.02,0.05;l1=0.0001,0.0005",
};
