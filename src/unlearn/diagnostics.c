/*
 * Gradient-conflict diagnostics (lethe_unlearn_config.diagnostics) and the
 * composite backward of the EUPMU family (ALGORITHM.md §3, step 2).
 *
 * Per step, from the exact g_u = ∇ℓ_u(θ_t; B_f) and g_r = ∇ℓ_r(θ_t; B_r):
 *     cos_t      = ⟨g_u, g_r⟩ / (‖g_u‖ ‖g_r‖)
 *     conflict_t = ⟨g_u, g_r⟩ < 0
 *     λ*_t       = clip(max(0, −(⟨g_r, g_u⟩ + ε_t) / ‖g_r‖²), 0, D)   (§2)
 * so the implicit λ_t of EUPMU can be set beside the explicit multiplier it
 * approximates. The diagnostics only observe: the method's own backward
 * runs as without them (d keeps its bits, so a run with diagnostics is the
 * run without), then a second backward of the same forward, split by
 * sample group (§2.1), gives g_u and g_r. That backward is the whole cost;
 * it is counted neither in the run's passes nor in its seconds, which are
 * the method's.
 */
#include <math.h>

#include "unlearn/method.h"
#include "core/fail.h"
#include "core/loop.h"

/* g_u = ∇ℓ_u and g_r = ∇ℓ_r (weight 1 each, so g_r is ℓ_r's gradient
 * whatever λ is) from the forward already run, and the step's record.
 * The losses' gate counters and the passes are restored, and its time is
 * left out of the run's: to the run (and to its RTE in a table), the
 * observation never happened. */
static lethe_status observe(ul_ctx *c, lethe_trace_step *tr)
{
    const double t0 = core_now();
    lethe_unlearn_result *res = c->res;
    const long bwd = res->bwd_samples, rows = res->unseen_rows, gated = res->unseen_gated;
    ul_clear_dlogits(c);
    (void)ul_forget_loss(c, 1.0f / (float)c->nf);
    (void)ul_loss(c, LETHE_LOSS_CE, c->nf, c->nr, 1.0f / (float)c->nr);
    lethe_status st = ul_backward(c, c->g_u, c->g_r);
    res->bwd_samples = bwd;
    res->unseen_rows = rows;
    res->unseen_gated = gated;
    if (st == LETHE_OK)
        ul_diag_record(c, tr, lethe_vec_dot(c->g_u, c->g_r, c->n),
                       lethe_vec_norm2(c->g_r, c->n), 1);
    c->diag_s += core_now() - t0;
    return st;
}

/* Multiply the loss gradients of rows [from, from + count) by s. */
static void scale_rows(ul_ctx *c, int from, int count, float s)
{
    float *g = c->dlogits + (size_t)from * c->dout;
    for (size_t i = 0; i < (size_t)count * c->dout; i++) g[i] *= s;
}

/* The authors' log form (§7): ∇(w⁺·log ℓ_r + log ℓ_u) = ∇ℓ_u/ℓ_u + w⁺·∇ℓ_r/ℓ_r,
 * or with plain losses (their fast variant) ∇ℓ_u/(1 + w⁺) + w⁺/(1 + w⁺)·∇ℓ_r.
 * The same one backward: the weights are known once the losses are, so each
 * group's loss gradient is scaled before it is backpropagated. */
static lethe_status log_backward(ul_ctx *c, float w, lethe_trace_step *tr)
{
    float lu = ul_forget_loss(c, 1.0f / (float)c->nf);
    float lr = ul_loss(c, LETHE_LOSS_CE, c->nf, c->nr, 1.0f / (float)c->nr);
    tr->loss_u = lu;
    tr->loss_r_before = lr;
    tr->lambda = w;
    if (!c->log_plain && !(lu > 0.0f && lr > 0.0f))
        return lethe_fail(LETHE_ERR_NUMERIC, "the log form needs positive losses (ℓ_u %g, "
                          "ℓ_r %g)", (double)lu, (double)lr);
    float su = c->log_plain ? 1.0f / (1.0f + w) : 1.0f / lu;
    float sr = c->log_plain ? w / (1.0f + w) : w / lr;
    scale_rows(c, 0, c->nf, su);
    scale_rows(c, c->nf, c->nr, sr);
    lethe_status st = ul_backward(c, c->grad, c->grad);
    if (st != LETHE_OK || !c->cfg->diagnostics) return st;
    return observe(c, tr);
}

lethe_status ul_composite_backward(ul_ctx *c, float lam, lethe_trace_step *tr)
{
    if (c->cfg->lambda_form == LETHE_LAMBDA_LOG) return log_backward(c, lam, tr);
    tr->loss_u = ul_forget_loss(c, 1.0f / (float)c->nf);
    tr->lambda = lam;
    tr->loss_r_before = ul_loss(c, LETHE_LOSS_CE, c->nf, c->nr, lam / (float)c->nr);
    lethe_status st = ul_backward(c, c->grad, c->grad);
    if (st != LETHE_OK || !c->cfg->diagnostics) return st;
    return observe(c, tr);
}

void ul_diag_record(ul_ctx *c, lethe_trace_step *tr, double dot, double nr2,
                    int with_lambda_star)
{
    double nu2 = lethe_vec_norm2(c->g_u, c->n);
    /* A zero gradient has no direction: report cos 0 (and no conflict). */
    tr->cos_ur = nu2 > 0.0 && nr2 > 0.0 ? (float)(dot / sqrt(nu2 * nr2)) : 0.0f;
    tr->conflict = dot < 0.0;
    if (with_lambda_star)
        tr->lambda_star = lethe_ungrad_lambda(dot, nr2, c->eps, c->cfg->lambda_max);
}

void ul_diag_summarise(lethe_unlearn_result *res)
{
    long n = 0, conflicts = 0, ngap = 0;
    double cos_sum = 0.0, gap_sum = 0.0;
    for (long t = 0; t < res->steps; t++) {
        const lethe_trace_step *s = &res->trace[t];
        if (s->conflict < 0) continue;
        n++;
        conflicts += s->conflict;
        cos_sum += s->cos_ur;
        if (isfinite(s->lambda) && isfinite(s->lambda_star)) {
            gap_sum += fabs((double)s->lambda - (double)s->lambda_star);
            ngap++;
        }
    }
    res->diag_steps = n;
    res->conflict_share = n ? (double)conflicts / (double)n : NAN;
    res->mean_cos = n ? cos_sum / (double)n : NAN;
    res->mean_lambda_gap = ngap ? gap_sum / (double)ngap : NAN;
}
