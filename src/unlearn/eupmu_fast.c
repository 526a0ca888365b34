/*
 * EUPMU-fast (ALGORITHM.md §3, step 4): as EUPMU, with no extra forward.
 * ℓ_r(θ_{t+1}) is read from the next step's own forward on the next
 * retaining batch B_r', so δ_t = (ℓ_r(θ_t; B_r) − ℓ_r(θ_{t+1}; B_r'))/α_t + ε_t
 * (unbiased, noisier) and λ_{t+1} is ready just before step t+1's backward.
 * Cost 2F + 2B per step.
 */
#include <stdlib.h>

#include "unlearn/method.h"
#include "core/fail.h"

typedef struct { float prev_before, prev_lr; int have_prev; } fast_state;

static lethe_status fast_init(ul_ctx *c)
{
    c->state = calloc(1, sizeof(fast_state));
    /* The authors' fast variant weighs the plain losses by w⁺/(1 + w⁺) (§7). */
    c->log_plain = c->cfg->lambda_form == LETHE_LAMBDA_LOG;
    return c->state ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
}

static void fast_finish(ul_ctx *c)
{
    free(c->state);
    c->state = NULL;
}

static lethe_status fast_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    fast_state *s = c->state;
    lethe_status st;
    ul_draw(c, 1, 1, c->cfg->loss == LETHE_UL_RL);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    ul_clear_dlogits(c);
    /* ℓ_r(θ_t; B_r) first (loss only), to close the previous step's update. */
    float before = ul_loss(c, LETHE_LOSS_CE, c->nf, c->nr, 0.0f);
    /* A bad loss is reported by step number here, not by the λ update below. */
    if ((st = ul_check(t, "the retaining loss", before)) != LETHE_OK) return st;
    if (s->have_prev) {
        if ((st = lethe_igs_observe(&c->igs, s->prev_before, before, s->prev_lr)) != LETHE_OK)
            return st;
        tr[-1].loss_r_after = before;
        tr[-1].delta = c->igs.last_delta;
    }
    float lam = lethe_igs_weight(&c->igs);
    if ((st = ul_composite_backward(c, lam, tr)) != LETHE_OK) return st;
    ul_apply(c, c->grad);
    s->prev_before = before;
    s->prev_lr = c->lr;
    s->have_prev = 1;
    return LETHE_OK;
}

const ul_method ul_eupmu_fast = {
    .name = "eupmu-fast",
    .summary = "implicit gradient surgery, λ from the next step's retain loss (§3)",
    .uses_forget = 1,
    .uses_retain = 1,
    .uses_eps = 1,
    .has_lambda_form = 1,
    .state_size = sizeof(fast_state),
    .init = fast_init,
    .step = fast_step,
    .finish = fast_finish,
    .grid = "lr=0.005,0.01,0.02,0.05;eps=0.01,0.1,0.5",
    .gen_grid = "lr=0.0001,0.0003,0.001;eps=0,0.001",
};
