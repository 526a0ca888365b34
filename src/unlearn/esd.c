/*
 * ESD, erasing by negative guidance (Gandikota et al., 2023; the DDPM
 * baseline of SalUn's comparison), on a class-conditional noise predictor.
 * On forgetting images only:
 *     target_t = sg[ε_θ(x_t, t, ∅) − η·(ε_θ(x_t, t, c_f) − ε_θ(x_t, t, ∅))]
 *     ℓ_u      = ‖ε_θ(x_t, t, c_f) − target_t‖²   (mean per value)
 * Both predictions of the target come from the current θ_t (stop-gradient:
 * copied values), so a fixed point has ε(·, c_f) = ε(·, ∅): guided sampling
 * of c_f then draws what the unconditional model draws. No retain term:
 * nothing but the shared weights protects the other classes.
 * Cost per step over B_f: 2F + 1B (the unconditional forward, then the
 * conditional one that is backpropagated).
 */
#include <string.h>

#include "unlearn/method.h"

static lethe_status esd_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    (void)t;
    lethe_status st;
    ul_draw(c, 1, 0, 0);
    if ((st = c->task_err) != LETHE_OK) return st;
    int nf = c->nf;
    size_t d = c->diff->d;
    float *target = c->diff->target;            /* (nf, d) */
    /* ε_θ(x_t, t, ∅): the null class is label nclass, as in training. */
    for (int i = 0; i < nf; i++) c->yt[i] = c->nclass;
    const float *e0;
    c->res->fwd_samples += nf;
    if ((st = lethe_model_set_cond(c->m, c->diff->t, c->yt)) != LETHE_OK ||
        (st = lethe_model_forward(c->m, c->x, nf, NULL, LETHE_BN_EVAL, &e0)) != LETHE_OK)
        return st;
    memcpy(target, e0, (size_t)nf * d * sizeof(float));
    /* ε_θ(x_t, t, c_f), the prediction that learns. */
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    const float eta = c->cfg->esd_eta, *ec = c->logits;
    for (size_t i = 0; i < (size_t)nf * d; i++)
        target[i] = (1.0f + eta) * target[i] - eta * ec[i];
    ul_clear_dlogits(c);
    tr->loss_u = ul_diff_loss(c, LETHE_LOSS_CE, 0, nf, 1.0f / (float)nf, 1);
    if ((st = ul_backward(c, c->grad, c->grad)) != LETHE_OK) return st;
    ul_apply(c, c->grad);
    return LETHE_OK;
}

static const lethe_param eta_params[] = {
    UL_REAL("esd_eta", NULL, esd_eta, 0, 0, 1e3, 0, "0.5,1,2",
            "negative-guidance strength η (default 1)"),
};

const ul_method ul_esd = {
    .name = "esd",
    .summary = "negative guidance: ε(x_t, c_f) pulled to sg[ε_∅ − η(ε_c − ε_∅)] (diffusion)",
    .uses_forget = 1,
    .diffusion_only = 1,
    .step = esd_step,
    .params = eta_params,
    .nparams = 1,
    .gen_grid = "lr=0.00003,0.0001,0.0003",
};
