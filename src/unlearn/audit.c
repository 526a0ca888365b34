/*
 * The utility audit (lethe_unlearn_config.audit) and held-out splits of D_r.
 *
 * The bound of ALGORITHM.md §1, §4: each step may raise the retain loss by
 * at most α_t ε_t to first order, so over a run Σ_t Δ_t ≤ Σ_t α_t ε_t with
 * Δ_t = ℓ_r(θ_{t+1}) − ℓ_r(θ_t). The audit measures Δ_t where the method
 * cannot see it: on a fixed probe of retain samples that no step trains on
 * (drawn by seed, then left out of the retain batches), forwarded in EVAL
 * mode (running statistics, as the model is used and evaluated; Δ_t thus
 * includes the step's update of the running averages). Each step reuses the
 * previous "after" as its "before": one probe forward per step plus one at
 * the start, all counted in fwd_samples.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unlearn/method.h"
#include "core/fail.h"

lethe_status ul_holdout_split(const lethe_subset *from, size_t n, uint64_t seed,
                              lethe_subset *held, lethe_subset *rest)
{
    memset(held, 0, sizeof *held);
    memset(rest, 0, sizeof *rest);
    if (n == 0 || n >= from->n)
        return lethe_fail(LETHE_ERR_ARG, "a held-out part of %zu samples needs a larger retain "
                          "set than %zu", n, from->n);
    /* Positions 0..N−1 shuffled; the first n are held out. */
    int32_t *pos = malloc(from->n * sizeof(int32_t));      /* (N) */
    uint8_t *out = calloc(from->n, 1);                      /* (N) 1 = held */
    held->idx = malloc(n * sizeof(int32_t));
    rest->idx = malloc((from->n - n) * sizeof(int32_t));
    if (!pos || !out || !held->idx || !rest->idx) {
        free(pos);
        free(out);
        lethe_subset_free(held);
        lethe_subset_free(rest);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for a held-out split");
    }
    for (size_t i = 0; i < from->n; i++) pos[i] = (int32_t)i;
    lethe_rng r;
    lethe_rng_seed(&r, seed);
    lethe_rng_shuffle(&r, pos, from->n);
    for (size_t i = 0; i < n; i++) out[pos[i]] = 1;
    /* Both parts keep the order of `from`: the held-out set does not depend
     * on how the rest is streamed. */
    for (size_t i = 0; i < from->n; i++) {
        if (out[i]) held->idx[held->n++] = from->idx[i];
        else rest->idx[rest->n++] = from->idx[i];
    }
    free(pos);
    free(out);
    return LETHE_OK;
}

/* ℓ_r(θ; probe), mean CE in EVAL mode, chunk by chunk. */
static lethe_status probe_loss(ul_audit *a, ul_ctx *c, float *loss)
{
    double s = 0.0;
    for (int i = 0; i < a->n; i += a->chunk) {
        int k = a->n - i < a->chunk ? a->n - i : a->chunk;
        const float *logits;
        lethe_status st = lethe_model_forward(c->m, a->x + (size_t)i * c->px, k, NULL,
                                              LETHE_BN_EVAL, &logits);
        if (st != LETHE_OK) return st;
        lethe_loss(LETHE_LOSS_CE, a->losses, NULL, logits, a->y + i, NULL, k, c->nclass);
        for (int j = 0; j < k; j++) s += a->losses[j];
    }
    c->res->fwd_samples += a->n;
    c->res->audit_fwd_samples += a->n;
    *loss = (float)(s / a->n);
    return LETHE_OK;
}

lethe_status ul_audit_init(ul_audit *a, ul_ctx *c, const lethe_subset *probe)
{
    memset(a, 0, sizeof *a);
    a->n = (int)probe->n;
    /* The model is reserved for the step's batch; the probe goes in chunks of it. */
    a->chunk = c->nf + c->nr;
    a->x = malloc((size_t)a->n * c->px * sizeof(float));
    a->y = malloc((size_t)a->n * sizeof(int32_t));
    a->losses = malloc((size_t)a->chunk * sizeof(float));
    if (!a->x || !a->y || !a->losses) return lethe_fail(LETHE_ERR_NOMEM, "out of memory for the audit probe");
    lethe_dataset_batch(c->ds, probe->idx, a->n, a->x, a->y);
    c->res->audit_probe_n = a->n;
    lethe_status st = probe_loss(a, c, &a->last);
    if (st != LETHE_OK) return st;
    c->res->audit_probe_loss0 = a->last;
    return ul_check(-1, "the audit's probe loss at the start", a->last);
}

lethe_status ul_audit_step(ul_audit *a, ul_ctx *c, long t, lethe_trace_step *tr, int has_eps)
{
    float after;
    lethe_status st = probe_loss(a, c, &after);
    if (st != LETHE_OK) return st;
    if ((st = ul_check(t, "the audit's probe loss", after)) != LETHE_OK) return st;
    double delta = (double)after - (double)a->last;
    double allowed = has_eps ? (double)c->lr * (double)c->eps : NAN;
    a->sum_delta += delta;
    a->sum_allowed += allowed;
    a->last = after;
    tr->probe_loss = after;
    tr->audit_delta = (float)delta;
    tr->audit_allowed = (float)allowed;
    tr->audit_sum_delta = (float)a->sum_delta;
    tr->audit_sum_allowed = (float)a->sum_allowed;
    lethe_unlearn_result *res = c->res;
    res->audit_sum_delta = a->sum_delta;
    res->audit_sum_allowed = a->sum_allowed;
    if (has_eps && res->audit_first_violation < 0 && a->sum_delta > a->sum_allowed)
        res->audit_first_violation = t;
    return LETHE_OK;
}

void ul_audit_free(ul_audit *a)
{
    free(a->x);
    free(a->y);
    free(a->losses);
    memset(a, 0, sizeof *a);
}
