/* JSON reports of unlearning runs (cJSON), written atomically (a regular
 * file) or in place (a device, a FIFO, "-" for standard output). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/report.h"

cJSON *report_metrics(const lethe_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "UA", m->ua);
    cJSON_AddNumberToObject(o, "RA", m->ra);
    cJSON_AddNumberToObject(o, "TA", m->ta);
    if (m->has_ta_forget) cJSON_AddNumberToObject(o, "TA_forget", m->ta_forget);
    cJSON_AddNumberToObject(o, "MIA", m->mia);
    return o;
}

/* A float as the shortest decimal that reads back to it: 0.01, not
 * 0.00999999977648258 (the double nearest the float). */
static cJSON *fnum(float v)
{
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}

cJSON *report_config(const lethe_unlearn_config *c, const char *forget)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", c->method);
    cJSON_AddStringToObject(o, "forget", forget);
    cJSON_AddStringToObject(o, "loss", lethe_ul_loss_name(c->loss));
    cJSON_AddNumberToObject(o, "steps", (double)c->steps);
    cJSON_AddNumberToObject(o, "batch", c->batch);
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddStringToObject(o, "schedule", c->schedule == LETHE_SCHED_COSINE ? "cosine"
                                           : c->schedule == LETHE_SCHED_STEP ? "step" : "constant");
    cJSON_AddNumberToObject(o, "momentum", c->momentum);
    cJSON_AddNumberToObject(o, "eps", c->eps);
    cJSON_AddNumberToObject(o, "eps_budget", c->eps_budget);
    cJSON_AddNumberToObject(o, "beta", c->beta);
    cJSON_AddStringToObject(o, "beta_schedule", c->beta_decay ? "decay" : "constant");
    cJSON_AddNumberToObject(o, "lambda0", c->lambda0);
    cJSON_AddNumberToObject(o, "lambda_max", c->lambda_max);
    cJSON_AddNumberToObject(o, "neggrad_a", c->neggrad_a);
    cJSON_AddNumberToObject(o, "salun_gamma", c->salun_gamma);
    cJSON_AddNumberToObject(o, "l1", c->l1);
    cJSON_AddStringToObject(o, "ungrad_form",
                            c->ungrad_form == LETHE_UNGRAD_MIXED ? "mixed" : "grouped");
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON_AddStringToObject(o, "optim", c->optim == LETHE_OPT_ADAMW ? "adam" : "sgd");
    if (c->optim == LETHE_OPT_ADAMW) {
        cJSON_AddItemToObject(o, "adam_beta1", fnum(c->adam_beta1));
        cJSON_AddItemToObject(o, "adam_beta2", fnum(c->adam_beta2));
    }
    cJSON_AddItemToObject(o, "wd", fnum(c->weight_decay));
    cJSON_AddItemToObject(o, "clip_grad", fnum(c->clip_grad));
    if (lethe_method_uses_eps(c->method)) {
        cJSON_AddStringToObject(o, "lambda_form",
                                c->lambda_form == LETHE_LAMBDA_LOG ? "log" : "paper");
        if (c->lambda_form == LETHE_LAMBDA_LOG) {
            cJSON_AddItemToObject(o, "w0", fnum(c->w0));
            cJSON_AddItemToObject(o, "w_lr", fnum(c->w_lr));
            cJSON_AddItemToObject(o, "w_decay", fnum(c->w_decay));
        }
    }
    if (strcmp(c->method, "esd") == 0) cJSON_AddItemToObject(o, "esd_eta", fnum(c->esd_eta));
    if (c->diagnostics) cJSON_AddBoolToObject(o, "diagnostics", 1);
    if (c->ddpm) {
        cJSON_AddStringToObject(o, "task", "diffusion");
        cJSON_AddNumberToObject(o, "ddpm_T", c->ddpm->T);
        cJSON_AddNumberToObject(o, "p_uncond", c->p_uncond);
        cJSON_AddItemToObject(o, "retain_weight", fnum(c->retain_weight));
    }
    if (c->audit) cJSON_AddNumberToObject(o, "audit_probe", c->audit_probe);
    return o;
}

/* NaN is not JSON: missing values become null. */
static cJSON *num_or_null(float v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *dnum_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

cJSON *report_run(const lethe_unlearn_result *r, int with_trace)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "steps", (double)r->steps);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON_AddNumberToObject(o, "forward_samples", (double)r->fwd_samples);
    cJSON_AddNumberToObject(o, "backward_samples", (double)r->bwd_samples);
    cJSON_AddNumberToObject(o, "forward_passes", (double)r->fwd_samples / r->batch);
    cJSON_AddNumberToObject(o, "backward_passes", (double)r->bwd_samples / r->batch);
    cJSON_AddNumberToObject(o, "eps_used", r->eps_used);
    if (r->diag_steps > 0) {
        /* Gradient-conflict diagnostics: no extra passes (same backward). */
        cJSON *d = cJSON_AddObjectToObject(o, "diagnostics");
        cJSON_AddNumberToObject(d, "steps", (double)r->diag_steps);
        cJSON_AddItemToObject(d, "conflict_share", dnum_or_null((double)r->conflict_share));
        cJSON_AddItemToObject(d, "mean_cos", dnum_or_null((double)r->mean_cos));
        cJSON_AddItemToObject(d, "mean_lambda_gap", dnum_or_null((double)r->mean_lambda_gap));
    }
    if (r->audit_probe_n > 0) {
        cJSON *a = cJSON_AddObjectToObject(o, "audit");
        cJSON_AddNumberToObject(a, "probe", r->audit_probe_n);
        cJSON_AddStringToObject(a, "bn_mode", "eval");
        cJSON_AddNumberToObject(a, "forward_samples", (double)r->audit_fwd_samples);
        cJSON_AddNumberToObject(a, "forward_passes", (double)r->audit_fwd_samples / r->batch);
        cJSON_AddItemToObject(a, "probe_loss_start", num_or_null(r->audit_probe_loss0));
        cJSON_AddItemToObject(a, "sum_delta", dnum_or_null((double)r->audit_sum_delta));
        cJSON_AddItemToObject(a, "sum_allowed", dnum_or_null((double)r->audit_sum_allowed));
        int has_bound = isfinite(r->audit_sum_allowed);
        cJSON_AddItemToObject(a, "bound_held", has_bound ? cJSON_CreateBool(r->audit_first_violation < 0)
                                                         : cJSON_CreateNull());
        /* 1-based, as steps are numbered in messages; null if it held. */
        cJSON_AddItemToObject(a, "first_violation_step",
                              r->audit_first_violation >= 0
                                  ? cJSON_CreateNumber((double)r->audit_first_violation + 1)
                                  : cJSON_CreateNull());
    }
    if (with_trace && r->trace) {
        static const char *names[] = {"loss_u", "loss_r_before", "loss_r_after", "delta",
                                      "lambda", "lambda_star", "lr"};
        cJSON *tr = cJSON_AddObjectToObject(o, "trace");
        for (int k = 0; k < 7; k++) {
            cJSON *arr = cJSON_AddArrayToObject(tr, names[k]);
            for (long t = 0; t < r->steps; t++) {
                const lethe_trace_step *s = &r->trace[t];
                const float v[7] = {s->loss_u, s->loss_r_before, s->loss_r_after, s->delta,
                                    s->lambda, s->lambda_star, s->lr};
                cJSON_AddItemToArray(arr, num_or_null(v[k]));
            }
        }
        if (r->diag_steps > 0) {
            cJSON *cs = cJSON_AddArrayToObject(tr, "cos");
            cJSON *cf = cJSON_AddArrayToObject(tr, "conflict");
            for (long t = 0; t < r->steps; t++) {
                const lethe_trace_step *s = &r->trace[t];
                cJSON_AddItemToArray(cs, num_or_null(s->cos_ur));
                cJSON_AddItemToArray(cf, s->conflict < 0 ? cJSON_CreateNull()
                                                         : cJSON_CreateBool(s->conflict));
            }
        }
        if (r->audit_probe_n > 0) {
            static const char *an[] = {"probe_loss", "audit_delta", "audit_allowed",
                                       "audit_sum_delta", "audit_sum_allowed"};
            for (int k = 0; k < 5; k++) {
                cJSON *arr = cJSON_AddArrayToObject(tr, an[k]);
                for (long t = 0; t < r->steps; t++) {
                    const lethe_trace_step *s = &r->trace[t];
                    const float v[5] = {s->probe_loss, s->audit_delta, s->audit_allowed,
                                        s->audit_sum_delta, s->audit_sum_allowed};
                    cJSON_AddItemToArray(arr, num_or_null(v[k]));
                }
            }
        }
    }
    return o;
}

cJSON *report_budget(const lethe_budget_config *bc, const lethe_budget_result *br)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "budget_points", bc->budget);
    cJSON_AddNumberToObject(o, "eps_chosen", br->eps);
    cJSON_AddBoolToObject(o, "feasible", br->feasible);
    cJSON_AddNumberToObject(o, "holdout", (double)br->holdout.n);
    cJSON_AddItemToObject(o, "ra_original", dnum_or_null((double)br->ra_orig));
    cJSON_AddItemToObject(o, "ra_final", dnum_or_null((double)br->ra_final));
    cJSON_AddItemToObject(o, "ra_drop_final", dnum_or_null((double)br->ra_drop_final));
    cJSON_AddBoolToObject(o, "final_is_chosen_trial", br->reused);
    cJSON_AddNumberToObject(o, "eps_lo", bc->eps_lo);
    cJSON_AddNumberToObject(o, "eps_hi", bc->eps_hi);
    cJSON_AddNumberToObject(o, "trial_steps", (double)bc->trial_steps);
    cJSON_AddNumberToObject(o, "check_every", (double)bc->check_every);
    cJSON_AddNumberToObject(o, "early_from", bc->early_from);
    cJSON_AddNumberToObject(o, "search_forward_samples", (double)br->fwd_samples);
    cJSON_AddNumberToObject(o, "search_backward_samples", (double)br->bwd_samples);
    cJSON_AddNumberToObject(o, "search_seconds", br->seconds);
    cJSON *ts = cJSON_AddArrayToObject(o, "trials");
    for (int i = 0; i < br->ntrials; i++) {
        const lethe_budget_trial *t = &br->trial[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "eps", t->eps);
        cJSON_AddItemToObject(j, "ra", dnum_or_null((double)t->ra));
        cJSON_AddItemToObject(j, "ra_drop", dnum_or_null((double)t->ra_drop));
        cJSON_AddBoolToObject(j, "kept", t->kept);
        if (t->diverged) cJSON_AddBoolToObject(j, "diverged", 1);
        cJSON_AddNumberToObject(j, "steps_run", (double)t->steps_run);
        cJSON_AddItemToArray(ts, j);
    }
    return o;
}

lethe_status report_write(const char *path, const cJSON *root)
{
    char *text = cJSON_Print(root);
    if (!text) return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory formatting JSON", path);
    size_t len = strlen(text);
    text[len] = '\n';   /* cJSON_Print's buffer ends in a NUL we may overwrite */
    cli_stdout_restore(path);   /* stdout held for this file ("-") */
    lethe_status st = lethe_write_file_atomic(path, text, len + 1);
    free(text);
    return st;
}
