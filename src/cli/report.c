/* JSON reports of unlearning runs (cJSON), written atomically (a regular
 * file) or in place (a device, a FIFO, "-" for standard output). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/fail.h"
#include "cli/report.h"
#include "io/runstate.h"

cJSON *report_metrics(const lethe_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "UA", m->ua);
    cJSON_AddNumberToObject(o, "RA", m->ra);
    cJSON_AddNumberToObject(o, "TA", m->ta);
    if (m->has_ta_forget) cJSON_AddNumberToObject(o, "TA_forget", m->ta_forget);
    cJSON_AddNumberToObject(o, "MIA_Eff", m->mia);     /* the tables' "MIA-Eff." */
    return o;
}

/* A float as the shortest decimal that reads back to it: 0.01, not
 * 0.00999999977648258 (the double nearest the float). */
cJSON *report_float(float v)
{
    if (!isfinite(v)) return cJSON_CreateNull();
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
    cJSON_AddItemToObject(o, "lr", report_float(c->lr));
    cJSON_AddStringToObject(o, "schedule", c->schedule == LETHE_SCHED_COSINE ? "cosine"
                                           : c->schedule == LETHE_SCHED_STEP ? "step" : "constant");
    cJSON_AddItemToObject(o, "momentum", report_float(c->momentum));
    cJSON_AddItemToObject(o, "eps", report_float(c->eps));
    cJSON_AddItemToObject(o, "eps_budget", report_float(c->eps_budget));
    cJSON_AddItemToObject(o, "beta", report_float(c->beta));
    cJSON_AddStringToObject(o, "beta_schedule", c->beta_decay ? "decay" : "constant");
    cJSON_AddItemToObject(o, "lambda0", report_float(c->lambda0));
    cJSON_AddItemToObject(o, "lambda_max", report_float(c->lambda_max));
    /* Named as the options (--a, --gamma); settings files also read the
     * older neggrad_a and salun_gamma. */
    cJSON_AddItemToObject(o, "a", report_float(c->neggrad_a));
    cJSON_AddItemToObject(o, "gamma", report_float(c->salun_gamma));
    cJSON_AddItemToObject(o, "l1", report_float(c->l1));
    cJSON_AddStringToObject(o, "ungrad_form",
                            c->ungrad_form == LETHE_UNGRAD_MIXED ? "mixed" : "grouped");
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON_AddStringToObject(o, "optim", c->optim == LETHE_OPT_ADAMW ? "adam" : "sgd");
    if (c->optim == LETHE_OPT_ADAMW) {
        cJSON_AddItemToObject(o, "adam_beta1", report_float(c->adam_beta1));
        cJSON_AddItemToObject(o, "adam_beta2", report_float(c->adam_beta2));
    }
    cJSON_AddItemToObject(o, "wd", report_float(c->weight_decay));
    cJSON_AddItemToObject(o, "clip_grad", report_float(c->clip_grad));
    if (lethe_method_uses_eps(c->method)) {
        cJSON_AddStringToObject(o, "lambda_form",
                                c->lambda_form == LETHE_LAMBDA_LOG ? "log" : "paper");
        if (c->lambda_form == LETHE_LAMBDA_LOG) {
            cJSON_AddItemToObject(o, "w0", report_float(c->w0));
            cJSON_AddItemToObject(o, "w_lr", report_float(c->w_lr));
            cJSON_AddItemToObject(o, "w_decay", report_float(c->w_decay));
        }
    }
    if (strcmp(c->method, "esd") == 0)
        cJSON_AddItemToObject(o, "esd_eta", report_float(c->esd_eta));
    /* The options kept in method_opt slots, by their names. */
    const lethe_param *ps[64];
    int np = lethe_method_params(c->method, ps, 64);
    for (int i = 0; i < np && i < 64; i++)
        if (ps[i]->store == LETHE_STORE_OPT)
            cJSON_AddItemToObject(o, ps[i]->name, report_float((float)lethe_unlearn_get(c, ps[i])));
    if (c->diagnostics) cJSON_AddBoolToObject(o, "diagnostics", 1);
    if (c->ddpm) {
        cJSON_AddStringToObject(o, "task", "diffusion");
        cJSON_AddNumberToObject(o, "ddpm_T", c->ddpm->T);
        cJSON_AddItemToObject(o, "p_uncond", report_float(c->p_uncond));
        cJSON_AddItemToObject(o, "retain_weight", report_float(c->retain_weight));
    }
    if (c->audit) cJSON_AddNumberToObject(o, "audit_probe", c->audit_probe);
    if (c->unseen) {
        /* The non-member reference of "forget just enough": which images. */
        cJSON *u = cJSON_AddObjectToObject(o, "unseen_reference");
        cJSON_AddStringToObject(u, "data", c->unseen_data ? c->unseen_data->name : "?");
        cJSON_AddNumberToObject(u, "samples", (double)c->unseen->n);
        cJSON_AddStringToObject(u, "split", "test images drawn by a fixed seed and left out of "
                                            "the TA and MIA sets (docs/PROTOCOL.md)");
        char h[17];
        snprintf(h, sizeof h, "%016llx",
                 (unsigned long long)rs_hash_ints(c->unseen->idx, c->unseen->n));
        cJSON_AddStringToObject(u, "index_hash", h);
    }
    return o;
}

/* NaN is not JSON: missing values become null. A float is written as the
 * shortest decimal that reads back to it (report_float). */
static cJSON *num_or_null(float v) { return report_float(v); }

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
    cJSON_AddItemToObject(o, "eps_used", report_float(r->eps_used));
    if (r->diag_steps > 0) {
        /* Gradient-conflict diagnostics (observed: not in the passes above). */
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
    if (r->unseen_n > 0) {
        cJSON *u = cJSON_AddObjectToObject(o, "forget_just_enough");
        cJSON_AddNumberToObject(u, "reference", r->unseen_n);
        cJSON_AddNumberToObject(u, "forward_samples", (double)r->unseen_fwd_samples);
        cJSON_AddNumberToObject(u, "forward_passes", (double)r->unseen_fwd_samples / r->batch);
        cJSON_AddItemToObject(u, "auc_start", dnum_or_null(r->unseen_auc0));
        cJSON_AddNumberToObject(u, "rows", (double)r->unseen_rows);
        cJSON_AddNumberToObject(u, "rows_at_target", (double)r->unseen_gated);
        cJSON_AddItemToObject(u, "share_at_target_last",
                              dnum_or_null(r->steps > 0 ? r->trace[r->steps - 1].unseen_share : NAN));
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
        if (r->unseen_n > 0) {
            cJSON *arr = cJSON_AddArrayToObject(tr, "unseen_share");
            for (long t = 0; t < r->steps; t++)
                cJSON_AddItemToArray(arr, num_or_null(r->trace[t].unseen_share));
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
    cJSON_AddItemToObject(o, "eps_chosen", report_float(br->eps));
    cJSON_AddItemToObject(o, "lr_chosen", report_float(br->lr));
    cJSON_AddNumberToObject(o, "steps_chosen", (double)br->steps);
    cJSON_AddBoolToObject(o, "feasible", br->feasible);
    cJSON_AddItemToObject(o, "forget_accuracy", dnum_or_null(br->forget_acc));
    cJSON_AddNumberToObject(o, "holdout", (double)br->holdout.n);
    cJSON_AddItemToObject(o, "ra_original", dnum_or_null((double)br->ra_orig));
    cJSON_AddItemToObject(o, "ra_final", dnum_or_null((double)br->ra_final));
    cJSON_AddItemToObject(o, "ra_drop_final", dnum_or_null((double)br->ra_drop_final));
    cJSON_AddBoolToObject(o, "final_is_chosen_trial", br->reused);
    cJSON_AddItemToObject(o, "eps_min", report_float(bc->eps_lo));   /* --budget-eps-min */
    cJSON_AddItemToObject(o, "eps_max", report_float(bc->eps_hi));   /* --budget-eps-max */
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
        cJSON_AddItemToObject(j, "eps", report_float(t->eps));
        cJSON_AddItemToObject(j, "lr", report_float(t->lr));
        cJSON_AddItemToObject(j, "ra", dnum_or_null((double)t->ra));
        cJSON_AddItemToObject(j, "ra_drop", dnum_or_null((double)t->ra_drop));
        cJSON_AddBoolToObject(j, "kept", t->kept);
        if (t->diverged) cJSON_AddBoolToObject(j, "diverged", 1);
        cJSON_AddNumberToObject(j, "steps_run", (double)t->steps_run);
        cJSON_AddNumberToObject(j, "kept_steps", (double)t->kept_steps);
        cJSON_AddItemToArray(ts, j);
    }
    return o;
}

/* The document written for root: the four keys that say what wrote it
 * (REPORTS.md "Every report"), then root's own keys, held by reference
 * (cJSON_Delete of the document leaves root whole). NULL when out of
 * memory. */
static cJSON *stamped(const cJSON *root)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc) return NULL;
    char created[32];
    time_t now = time(NULL);
    struct tm utc;
    if (!gmtime_r(&now, &utc) || !strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &utc))
        snprintf(created, sizeof created, "unknown");
    int ok = cJSON_AddNumberToObject(doc, "schema_version", REPORT_SCHEMA_VERSION) &&
             cJSON_AddStringToObject(doc, "lethe_version", LETHE_VERSION) &&
             cJSON_AddStringToObject(doc, "command_line", cli_command_line()) &&
             cJSON_AddStringToObject(doc, "created", created);
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        /* A report that carries these keys already keeps its own. */
        if (ok && cJSON_GetObjectItemCaseSensitive(doc, it->string))
            cJSON_DeleteItemFromObjectCaseSensitive(doc, it->string);
        ok = ok && cJSON_AddItemReferenceToObject(doc, it->string, (cJSON *)it);
    }
    if (!ok) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

static lethe_status write_json(const char *path, const cJSON *root)
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

lethe_status report_write(const char *path, const cJSON *root)
{
    if (!cJSON_IsObject(root)) return write_json(path, root);
    cJSON *doc = stamped(root);
    if (!doc) return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory formatting JSON", path);
    lethe_status st = write_json(path, doc);
    cJSON_Delete(doc);
    return st;
}

lethe_status report_write_plain(const char *path, const cJSON *root)
{
    return write_json(path, root);
}
