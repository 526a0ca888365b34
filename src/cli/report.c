/* JSON reports of unlearning runs (cJSON), written atomically. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    return o;
}

/* NaN is not JSON: missing values become null. */
static cJSON *num_or_null(float v)
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
    }
    return o;
}

lethe_status report_write(const char *path, const cJSON *root)
{
    char *text = cJSON_Print(root);
    if (!text) return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory formatting JSON", path);
    size_t len = strlen(text);
    text[len] = '\n';   /* cJSON_Print's buffer ends in a NUL we may overwrite */
    lethe_status st = lethe_write_file_atomic(path, text, len + 1);
    free(text);
    return st;
}
