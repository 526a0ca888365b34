/*
 * ε from a utility budget (lethe_unlearn_budget): the largest ε whose run
 * keeps the accuracy on a held-out part of D_r within `budget` points of
 * the original model's.
 *
 * ε bounds the first-order rise of the retain loss (ALGORITHM.md §1, §4),
 * so the accuracy drop is taken to grow with ε and the search is a
 * bisection on a log scale:
 *     trial(ε_hi): kept → ε_hi (the budget does not bind in the range);
 *     trial(ε_lo): broken → trial(0): ε = 0 (feasible only if kept);
 *     otherwise `iters` times: ε_m = √(ε_kept · ε_broken), keep the side.
 * Each trial is a run from a copy of the original model on D_r less the
 * held-out part, judged by the held-out accuracy (EVAL mode) of its final
 * model. It is checked every check_every steps too, and stops at a check
 * over budget from step early_from·T on: the first steps of a forgetting
 * run dip and recover (lethe.h), so only later checks may end it. With full-
 * length trials the chosen trial is the final model (the run with that ε,
 * bit for bit); with shortened trials a full final run follows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/runstate.h"
#include "core/fail.h"
#include "nn/model.h"
#include "core/loop.h"
#include "unlearn/method.h"

void lethe_budget_config_default(lethe_budget_config *c)
{
    memset(c, 0, sizeof *c);
    c->budget = 1.0;
    c->eps_lo = 1e-4f;
    c->eps_hi = 0.5f;
    c->iters = 5;
    c->holdout = 1000;
    c->check_every = 0;
    c->early_from = 0.5;
    c->trial_steps = 0;
    c->lr_halvings = 3;
}

void lethe_budget_result_free(lethe_budget_result *r)
{
    lethe_subset_free(&r->holdout);
}

typedef struct {
    const lethe_dataset *ds;
    const lethe_subset *held;
    const lethe_unlearn_config *cfg;
    const lethe_subset *forget, *rest;
    const lethe_model *orig;
    lethe_model *work;
    lethe_model *snap;          /* work at the last check within budget */
    long snap_step;             /* its step (0: none this trial) */
    double snap_ra;
    lethe_budget_result *br;
    double budget;
    long every, steps;          /* check period; steps of a trial */
    long binding_from;          /* checks at step ≥ this may stop a trial */
    double ra;                  /* held-out accuracy at the last check */
    int broke;
    lethe_progress_fn cb;
    void *cbctx;
} search_ctx;

static lethe_status held_accuracy(search_ctx *s, lethe_model *m, double *acc)
{
    s->br->fwd_samples += (long)s->held->n;
    return lethe_eval_accuracy(m, s->ds, s->held, LETHE_EVAL_BATCH, acc, NULL);
}

static lethe_status forget_accuracy(search_ctx *s, lethe_model *m, double *acc)
{
    s->br->fwd_samples += (long)s->forget->n;
    return lethe_eval_accuracy(m, s->ds, s->forget, LETHE_EVAL_BATCH, acc, NULL);
}

static int check_hook(lethe_model *m, long t, void *ctx, lethe_status *st)
{
    search_ctx *s = ctx;
    if ((t + 1) % s->every != 0) return 0;
    if ((*st = held_accuracy(s, m, &s->ra)) != LETHE_OK) return 1;
    int over = s->br->ra_orig - s->ra > s->budget;
    if (!over) {
        /* A shorter run that keeps the budget: the model as it is now. */
        if ((*st = lethe_model_copy(s->snap, m)) != LETHE_OK) return 1;
        s->snap_step = t + 1;
        s->snap_ra = s->ra;
    }
    s->broke = t + 1 >= s->binding_from && over;
    return s->broke;
}

/* One trial with ε = eps and learning rate lr from a copy of the original.
 * res keeps its run. */
static lethe_status trial(search_ctx *s, float eps, float lr, lethe_unlearn_result *res)
{
    lethe_budget_result *br = s->br;
    if (br->ntrials >= LETHE_BUDGET_MAX_TRIALS)
        return lethe_fail(LETHE_ERR_ARG, "utility budget: more than %d trials",
                          LETHE_BUDGET_MAX_TRIALS);
    lethe_status st = lethe_model_copy(s->work, s->orig);
    if (st != LETHE_OK) return st;
    lethe_unlearn_config c = *s->cfg;
    c.eps = eps;
    c.lr = lr;
    c.steps = s->steps;
    s->broke = 0;
    s->ra = NAN;
    s->snap_step = 0;
    s->snap_ra = NAN;
    ul_hook hook = {check_hook, s};
    st = ul_run(s->work, s->ds, s->forget, s->rest, &c, res, s->cb, s->cbctx, &hook);
    br->fwd_samples += res->fwd_samples;
    br->bwd_samples += res->bwd_samples;
    if (st == LETHE_ERR_NUMERIC) {
        /* A large ε can let the run diverge: that ε is over any budget. */
        lethe_budget_trial *tr = &br->trial[br->ntrials++];
        memset(tr, 0, sizeof *tr);
        tr->eps = eps;
        tr->lr = lr;
        tr->ra = tr->kept_ra = NAN;
        tr->ra_drop = INFINITY;
        tr->diverged = 1;
        s->snap_step = 0;       /* the run is void, its checks too */
        return LETHE_OK;
    }
    if (st != LETHE_OK) return st;
    /* The last check is at the end of a run that was not stopped. */
    if (!s->broke) {
        if ((st = held_accuracy(s, s->work, &s->ra)) != LETHE_OK) {
            lethe_unlearn_result_free(res);
            return st;
        }
        s->broke = br->ra_orig - s->ra > s->budget;
    }
    lethe_budget_trial *tr = &br->trial[br->ntrials++];
    memset(tr, 0, sizeof *tr);
    tr->eps = eps;
    tr->lr = lr;
    tr->ra = s->ra;
    tr->ra_drop = br->ra_orig - s->ra;
    tr->kept = !s->broke;
    tr->steps_run = res->steps;
    tr->kept_steps = tr->kept ? res->steps : s->snap_step;
    tr->kept_ra = tr->kept ? s->ra : s->snap_ra;
    return LETHE_OK;
}

static lethe_status clone_model(lethe_model **out, const lethe_model *m)
{
    lethe_status st = lethe_model_create(out, m->arch, m->in_c, m->in_h, m->in_w, m->nclass);
    if (st == LETHE_OK) st = lethe_model_copy(*out, m);
    if (st == LETHE_OK) st = lethe_model_reserve(*out, LETHE_EVAL_BATCH);
    return st;
}

/* The best run so far when no ε keeps the budget at the given learning
 * rate: the kept model that forgets most, else the one that drops least. */
typedef struct {
    lethe_model *m;
    lethe_unlearn_result res;
    int have;
    double forget_acc, drop;
    float eps, lr;
    long steps;
} candidate;

/* Offer model x (the run `r`, cut at `steps`) as a candidate: kept ones
 * compete on forgetting, broken ones on their drop. */
static lethe_status offer(search_ctx *s, candidate *c, lethe_model *x, lethe_unlearn_result *r,
                          float eps, float lr, long steps, double drop, int kept)
{
    double fa = NAN;
    lethe_status st = LETHE_OK;
    if (kept && (st = forget_accuracy(s, x, &fa)) != LETHE_OK) return st;
    /* A kept run beats any broken one; kept ones compete on forgetting,
     * broken ones on their drop. */
    int c_kept = c->have && isfinite(c->forget_acc);
    int better = !c->have || (kept ? !c_kept || fa < c->forget_acc : !c_kept && drop < c->drop);
    if (!better) return LETHE_OK;
    if ((st = lethe_model_copy(c->m, x)) != LETHE_OK) return st;
    lethe_unlearn_result_free(&c->res);
    c->res = *r;
    c->res.trace = NULL;
    if (r->trace) {
        c->res.trace = malloc((size_t)steps * sizeof *r->trace);
        if (!c->res.trace) return lethe_fail(LETHE_ERR_NOMEM, "utility budget: no memory");
        memcpy(c->res.trace, r->trace, (size_t)steps * sizeof *r->trace);
    }
    c->res.steps = steps;
    c->have = 1;
    c->forget_acc = fa;
    c->drop = drop;
    c->eps = eps;
    c->lr = lr;
    c->steps = steps;
    return LETHE_OK;
}

lethe_status lethe_unlearn_budget(lethe_model *m, const lethe_dataset *ds,
                                  const lethe_subset *forget, const lethe_subset *retain,
                                  const lethe_unlearn_config *cfg,
                                  const lethe_budget_config *bc, lethe_budget_result *br,
                                  lethe_unlearn_result *res, lethe_progress_fn cb, void *cbctx)
{
    memset(br, 0, sizeof *br);
    memset(res, 0, sizeof *res);
    br->ra_orig = br->ra_final = br->ra_drop_final = br->forget_acc = NAN;
    br->feasible = 1;
    lethe_status st = lethe_unlearn_validate(cfg);
    if (st != LETHE_OK) return st;
    if (!lethe_method_uses_eps(cfg->method))
        return lethe_fail(LETHE_ERR_ARG, "utility budget: method %s has no eps to choose "
                          "(eupmu, eupmu-fast, eupmu-lookahead, ungrad, ungrad-mixed)", cfg->method);
    if (cfg->eps_budget > 0.0f)
        return lethe_fail(LETHE_ERR_ARG, "utility budget: it chooses eps; do not also give an "
                          "eps budget");
    if (!(bc->budget >= 0.0) || !isfinite(bc->budget))
        return lethe_fail(LETHE_ERR_ARG, "utility budget must be >= 0 points, got %g", bc->budget);
    if (!(bc->eps_lo > 0.0f) || !(bc->eps_hi > bc->eps_lo) || !isfinite(bc->eps_hi))
        return lethe_fail(LETHE_ERR_ARG, "utility budget: eps range needs 0 < lo < hi, got "
                          "[%g, %g]", (double)bc->eps_lo, (double)bc->eps_hi);
    if (bc->iters < 0 || bc->iters > 24)
        return lethe_fail(LETHE_ERR_ARG, "utility budget: iterations must be in [0, 24], got %d",
                          bc->iters);
    if (bc->lr_halvings < 0 || bc->lr_halvings > 6)
        return lethe_fail(LETHE_ERR_ARG, "utility budget: learning-rate halvings must be in "
                          "[0, 6], got %d", bc->lr_halvings);
    if (bc->holdout < 1 || bc->check_every < 0 || bc->trial_steps < 0)
        return lethe_fail(LETHE_ERR_ARG, "utility budget: held-out size must be >= 1 and the "
                          "check period and trial steps >= 0");
    if (!(bc->early_from >= 0.0 && bc->early_from <= 1.0))
        return lethe_fail(LETHE_ERR_ARG, "utility budget: early_from must be in [0, 1], got %g",
                          bc->early_from);
    if (!forget || forget->n == 0) return lethe_fail(LETHE_ERR_ARG, "the forget set is empty");
    if (!retain || retain->n < 2)
        return lethe_fail(LETHE_ERR_ARG, "utility budget: the retain set needs at least 2 samples");

    double t0 = core_now();
    lethe_model *work = NULL, *best = NULL, *snap = NULL;
    candidate cand = {0};
    lethe_subset rest = {0};
    lethe_unlearn_result cur = {0}, keep = {0};
    size_t nh = (size_t)bc->holdout;
    if (nh > retain->n / 2) nh = retain->n / 2;
    if ((st = ul_holdout_split(retain, nh, cfg->seed ^ 0x686f6c646f7574ULL, &br->holdout,
                               &rest)) != LETHE_OK)
        goto done;
    if ((st = clone_model(&work, m)) != LETHE_OK || (st = clone_model(&best, m)) != LETHE_OK ||
        (st = clone_model(&snap, m)) != LETHE_OK || (st = clone_model(&cand.m, m)) != LETHE_OK)
        goto done;
    long T = ul_steps(cfg, forget->n);
    search_ctx s = {
        .ds = ds, .held = &br->holdout, .cfg = cfg, .forget = forget, .rest = &rest,
        .orig = m, .work = work, .snap = snap, .br = br, .budget = bc->budget,
        .steps = bc->trial_steps ? bc->trial_steps : T, .cb = cb, .cbctx = cbctx,
    };
    s.every = bc->check_every ? bc->check_every : (s.steps + 9) / 10;
    s.binding_from = (long)ceil(bc->early_from * (double)s.steps);
    if ((st = lethe_model_reserve(m, LETHE_EVAL_BATCH)) != LETHE_OK ||
        (st = held_accuracy(&s, m, &br->ra_orig)) != LETHE_OK)
        goto done;

    /* Each finished trial is also a candidate for the fallback: its final
     * model if kept, else its model at the last check within budget, else
     * (broken throughout) its final model, competing on the drop. */
#define OFFER(e, l)                                                                        \
    do {                                                                                   \
        const lethe_budget_trial *x_ = &br->trial[br->ntrials - 1];                        \
        if (x_->diverged) break;                                                           \
        if (x_->kept)                                                                      \
            st = offer(&s, &cand, work, &cur, (e), (l), x_->steps_run, x_->ra_drop, 1);    \
        else if (x_->kept_steps > 0)                                                       \
            st = offer(&s, &cand, snap, &cur, (e), (l), x_->kept_steps,                    \
                       br->ra_orig - x_->kept_ra, 1);                                      \
        else                                                                               \
            st = offer(&s, &cand, work, &cur, (e), (l), x_->steps_run, x_->ra_drop, 0);    \
        if (st != LETHE_OK) goto done;                                                     \
    } while (0)
    /* Keep the model and run of the largest ε kept so far. */
    int have_kept = 0;
#define TRY(e)                                                                             \
    do {                                                                                   \
        if ((st = trial(&s, (e), cfg->lr, &cur)) != LETHE_OK) goto done;                   \
        if (!have_kept) OFFER((e), cfg->lr);    /* the fallback is for no ε kept */        \
        if (br->trial[br->ntrials - 1].kept && (!have_kept || (e) >= br->eps)) {           \
            if ((st = lethe_model_copy(best, work)) != LETHE_OK) goto done;                \
            lethe_unlearn_result_free(&keep);                                              \
            keep = cur;                                                                    \
            memset(&cur, 0, sizeof cur);                                                   \
            br->eps = (e);                                                                 \
            have_kept = 1;                                                                 \
        }                                                                                  \
        lethe_unlearn_result_free(&cur);                                                   \
    } while (0)

    TRY(bc->eps_hi);
    if (!have_kept) {
        TRY(bc->eps_lo);
        if (!have_kept) {
            TRY(0.0f);
        } else {
            double lo = bc->eps_lo, hi = bc->eps_hi;
            for (int i = 0; i < bc->iters; i++) {
                float mid = (float)sqrt(lo * hi);
                TRY(mid);
                if (br->trial[br->ntrials - 1].kept) lo = mid;
                else hi = mid;
            }
        }
    }
#undef TRY
    br->lr = cfg->lr;
    br->steps = T;
    if (have_kept && s.steps == T) {
        /* The chosen trial ran the whole schedule with that ε: it is the result. */
        if ((st = lethe_model_copy(m, best)) != LETHE_OK) goto done;
        *res = keep;
        memset(&keep, 0, sizeof keep);
        br->reused = 1;
    } else if (have_kept) {
        lethe_unlearn_config c = *cfg;
        c.eps = br->eps;
        if ((st = ul_run(m, ds, forget, &rest, &c, res, cb, cbctx, NULL)) != LETHE_OK) goto done;
    } else {
        /* No ε keeps it at this learning rate: ε = 0 at smaller ones, until
         * one keeps the budget over the whole run. */
        float lr = cfg->lr;
        for (int h = 0; h < bc->lr_halvings && !(cand.have && isfinite(cand.forget_acc) &&
                                                  cand.steps == s.steps); h++) {
            lr *= 0.5f;
            if ((st = trial(&s, 0.0f, lr, &cur)) != LETHE_OK) goto done;
            OFFER(0.0f, lr);
            int kept = br->trial[br->ntrials - 1].kept;
            lethe_unlearn_result_free(&cur);
            if (kept) break;
        }
        /* The candidate: kept (finite forget accuracy) or the smallest drop. */
        br->feasible = cand.have && isfinite(cand.forget_acc);
        if (!cand.have) {
            st = lethe_fail(LETHE_ERR_NUMERIC, "utility budget: every trial diverged");
            goto done;
        }
        if ((st = lethe_model_copy(m, cand.m)) != LETHE_OK) goto done;
        *res = cand.res;
        memset(&cand.res, 0, sizeof cand.res);
        br->eps = cand.eps;
        br->lr = cand.lr;
        br->steps = cand.steps;
        br->reused = 1;
    }
#undef OFFER
    br->seconds = core_now() - t0;
    if ((st = held_accuracy(&s, m, &br->ra_final)) != LETHE_OK ||
        (st = forget_accuracy(&s, m, &br->forget_acc)) != LETHE_OK) {
        lethe_unlearn_result_free(res);
        goto done;
    }
    br->ra_drop_final = br->ra_orig - br->ra_final;
done:
    lethe_unlearn_result_free(&cur);
    lethe_unlearn_result_free(&keep);
    lethe_unlearn_result_free(&cand.res);
    lethe_model_free(cand.m);
    lethe_model_free(work);
    lethe_model_free(best);
    lethe_model_free(snap);
    lethe_subset_free(&rest);
    if (st != LETHE_OK) lethe_budget_result_free(br);
    return st;
}
