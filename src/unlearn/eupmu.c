/*
 * EUPMU: implicit gradient surgery (ALGORITHM.md §3).
 *
 *     d_t = ∇(ℓ_u + λ_t ℓ_r)(θ_t)            one backward over B_f ∪ B_r
 *     θ_{t+1} = θ_t − α_t d_t
 *     δ_t = (ℓ_r(θ_t; B_r) − ℓ_r(θ_{t+1}; B_r)) / α_t + ε_t
 *     λ_{t+1} = clip(λ_t − β_t δ_t, 0, D)
 *
 * The paper's form: ℓ_r(θ_{t+1}; B_r) comes from one extra forward of the
 * same retaining batch (batch statistics, running averages untouched).
 * Cost 3F + 2B per step. Known bias (§3.1): B_r was just descended on, so
 * the "after" loss is low and λ drifts down; see eupmu-lookahead.
 * The backward (shared by the family) is ul_composite_backward in
 * diagnostics.c: with diagnostics on, a second, grouped backward gives g_u
 * and g_r to set λ_t beside the explicit λ*_t; the step keeps its bits.
 */
#include "unlearn/method.h"

static lethe_status eupmu_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    lethe_status st;
    float lam = lethe_igs_weight(&c->igs);
    ul_draw(c, 1, 1, c->cfg->loss == LETHE_UL_RL);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    ul_clear_dlogits(c);
    if ((st = ul_composite_backward(c, lam, tr)) != LETHE_OK) return st;
    /* A bad loss is reported by step number here, not by the λ update below. */
    if ((st = ul_check(t, "the retaining loss", tr->loss_r_before)) != LETHE_OK) return st;
    ul_apply(c, c->grad);
    float after;
    if ((st = ul_eval_loss(c, c->nf, c->nr, &after)) != LETHE_OK) return st;
    tr->loss_r_after = after;
    if ((st = ul_check(t, "the retaining loss after the step", after)) != LETHE_OK) return st;
    if ((st = lethe_igs_observe(&c->igs, tr->loss_r_before, after, c->lr)) != LETHE_OK) return st;
    tr->delta = c->igs.last_delta;
    return LETHE_OK;
}

const ul_method ul_eupmu = {
    .name = "eupmu",
    .summary = "implicit gradient surgery, λ from an extra forward of B_r (§3)",
    .uses_forget = 1,
    .uses_retain = 1,
    .uses_eps = 1,
    .has_lambda_form = 1,
    .step = eupmu_step,
    .grid = "lr=0.005,0.01,0.02,0.05;eps=0.01,0.1,0.5",
    /* Diffusion (Adam at 3e-4, the decaying β of §4): how fast λ adapts. */
    .gen_grid = "beta=1,10,30,100",
};
