/*
 * eupmu-lookahead (ALGORITHM.md §3.1, a Lethe variant, never a replacement
 * for the paper's EUPMU): the λ update measures the retain loss on the NEXT
 * retaining batch B_r' on both sides, a batch the step did not train on:
 *
 *     δ_t = (ℓ_r(θ_t; B_r') − ℓ_r(θ_{t+1}; B_r')) / α_t + ε_t
 *
 * ℓ_r(θ_t; B_r') is one extra forward at θ_t (no backward, running averages
 * untouched); ℓ_r(θ_{t+1}; B_r') is step t+1's ordinary forward. Unbiased
 * like EUPMU-fast, low-noise like EUPMU, and the cost of EUPMU (3F + 2B).
 * Diffusion: B_r' is noised (t, ε, null labels) when it is measured at θ_t
 * and step t+1 reuses those very rows, so both sides of δ_t see one draw.
 */
#include <stdlib.h>
#include <string.h>

#include "unlearn/method.h"
#include "core/fail.h"

typedef struct { float prev_ahead, prev_lr; int have_prev; } ahead_state;

static lethe_status ahead_init(ul_ctx *c)
{
    c->state = calloc(1, sizeof(ahead_state));
    return c->state ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
}

static void ahead_finish(ul_ctx *c)
{
    free(c->state);
    c->state = NULL;
}

static lethe_status ahead_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    ahead_state *s = c->state;
    lethe_status st;
    ul_draw(c, 1, 1, c->cfg->loss == LETHE_UL_RL);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    ul_clear_dlogits(c);
    float before = ul_loss(c, LETHE_LOSS_CE, c->nf, c->nr, 0.0f);
    /* A bad loss is reported by step number here, not by the λ update below. */
    if ((st = ul_check(t, "the retaining loss", before)) != LETHE_OK) return st;
    if (s->have_prev) {
        /* This batch was last step's look-ahead: close its update. */
        if ((st = lethe_igs_observe(&c->igs, s->prev_ahead, before, s->prev_lr)) != LETHE_OK)
            return st;
        tr[-1].loss_r_after = before;
        tr[-1].delta = c->igs.last_delta;
    }
    float lam = lethe_igs_weight(&c->igs);
    if ((st = ul_composite_backward(c, lam, tr)) != LETHE_OK) return st;
    if (t + 1 < c->res->steps) {
        /* Fix B_r' now and measure it at θ_t, before the update. */
        int base = c->nf + c->nr;
        lethe_stream_next(&c->rs, c->nr, 1, c->next_r);
        lethe_dataset_batch(c->ds, c->next_r, c->nr, c->x + (size_t)base * c->px, c->y + base);
        memcpy(c->yt + base, c->y + base, (size_t)c->nr * sizeof(int32_t));
        /* Diffusion: its noise is drawn now and kept for step t+1 (ul_draw). */
        if ((st = ul_prepare(c, base, c->nr, 0)) != LETHE_OK) return st;
        if ((st = ul_eval_loss(c, base, c->nr, &s->prev_ahead)) != LETHE_OK) return st;
        c->have_next_r = 1;
        s->have_prev = 1;
    } else {
        s->have_prev = 0;
    }
    ul_apply(c, c->grad);
    s->prev_lr = c->lr;
    return ul_check(t, "the look-ahead retaining loss", s->have_prev ? s->prev_ahead : 0.0f);
}

/* The fixed next retain batch, and its prepared rows where the task cannot
 * draw them again (diffusion's noise). */
static void ahead_save(ul_ctx *c, rs_writer *w)
{
    rs_set_long(w, "have_next_r", c->have_next_r);
    if (!c->have_next_r) return;
    rs_put_ints(w, "lookahead.next_r", c->next_r, (size_t)c->nr);
    if (c->task->save_rows) c->task->save_rows(c, w, c->nf + c->nr, c->nr);
}

static lethe_status ahead_load(ul_ctx *c, const rs_reader *r)
{
    long have;
    lethe_status st = rs_get_long(r, "have_next_r", 0, 1, &have);
    if (st != LETHE_OK || !have) return st;
    if (!c->nr)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: run state: a look-ahead batch without retain "
                          "batches", r->label);
    if ((st = rs_get_ints(r, "lookahead.next_r", c->next_r, (size_t)c->nr, 0, c->ds->n - 1)) !=
            LETHE_OK ||
        (c->task->load_rows &&
         (st = c->task->load_rows(c, r, c->nf + c->nr, c->nr, c->next_r)) != LETHE_OK))
        return st;
    c->have_next_r = 1;
    return LETHE_OK;
}

const ul_method ul_eupmu_lookahead = {
    .name = "eupmu-lookahead",
    .summary = "EUPMU with an unbiased λ estimate on the next retain batch (§3.1)",
    .uses_forget = 1,
    .uses_retain = 1,
    .uses_eps = 1,
    .has_lambda_form = 1,
    .state_size = sizeof(ahead_state),
    .init = ahead_init,
    .step = ahead_step,
    .finish = ahead_finish,
    .save = ahead_save,
    .load = ahead_load,
    .grid = "lr=0.005,0.01,0.02,0.05;eps=0.01,0.1,0.5",
    .gen_grid = "lr=0.0001,0.0003,0.001;eps=0,0.02,0.05",
};
