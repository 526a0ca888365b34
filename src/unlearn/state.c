/*
 * The run states of lethe_unlearn_run: what a stopped run needs to go on
 * to the bitwise-same result. The driver's values (θ, optimiser, streams,
 * λ, counters, audit, trace) are written here; the task's and the
 * method's own values through their save/load hooks.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/runstate.h"
#include "core/fail.h"
#include "nn/model.h"
#include "unlearn/method.h"

/* The settings a resumed run must share with the one that wrote the state;
 * theta0 is the hash of the model the run starts from. */
void ul_config_text(char *buf, size_t len, const ul_ctx *c, long T, uint64_t theta0)
{
    const lethe_unlearn_config *g = c->cfg;
    const lethe_subset *r = c->retain;
    snprintf(buf, len, "method=%s loss=%d T=%ld batch=%d lr=%.9g sched=%d mom=%.9g eps=%.9g "
             "epsb=%.9g beta=%.9g bdecay=%d lam0=%.9g D=%.9g a=%.9g gamma=%.9g l1=%.9g form=%d "
             "seed=%llu diag=%d audit=%d probe=%d data=%s:%d forget=%zu:%016llx "
             "retain=%zu:%016llx arch=%s params=%zu theta0=%016llx ddpm=%d p_uncond=%.9g",
             g->method, (int)g->loss, T, g->batch, (double)g->lr, (int)g->schedule,
             (double)g->momentum, (double)g->eps, (double)g->eps_budget, (double)g->beta,
             g->beta_decay, (double)g->lambda0, (double)g->lambda_max, (double)g->neggrad_a,
             (double)g->salun_gamma, (double)g->l1, (int)g->ungrad_form,
             (unsigned long long)g->seed, g->diagnostics, g->audit, g->audit_probe,
             c->ds->name, c->ds->n, c->forget->n,
             (unsigned long long)rs_hash_ints(c->forget->idx, c->forget->n),
             r ? r->n : 0, (unsigned long long)(r ? rs_hash_ints(r->idx, r->n) : 0),
             lethe_model_arch(c->m), c->n, (unsigned long long)theta0,
             g->ddpm ? g->ddpm->T : 0, g->ddpm ? (double)g->p_uncond : 0.0);
    /* Settings added later are written only when set, so that states of
     * earlier runs keep their text and stay resumable; as a hash, so the
     * text stays within a metadata value. */
    char more[256] = "";
    size_t k = 0;
    if (g->optim != LETHE_OPT_SGD)
        k += (size_t)snprintf(more + k, sizeof more - k, " adam=%.9g,%.9g",
                              (double)g->adam_beta1, (double)g->adam_beta2);
    if (k < sizeof more && g->weight_decay != 0.0f)
        k += (size_t)snprintf(more + k, sizeof more - k, " wd=%.9g", (double)g->weight_decay);
    if (k < sizeof more && g->clip_grad > 0.0f)
        k += (size_t)snprintf(more + k, sizeof more - k, " clip=%.9g", (double)g->clip_grad);
    if (k < sizeof more && g->lambda_form == LETHE_LAMBDA_LOG)
        k += (size_t)snprintf(more + k, sizeof more - k, " log=%.9g,%.9g,%.9g", (double)g->w0,
                              (double)g->w_lr, (double)g->w_decay);
    if (k < sizeof more && g->retain_weight != 1.0f)
        k += (size_t)snprintf(more + k, sizeof more - k, " rw=%.9g", (double)g->retain_weight);
    if (k < sizeof more && strcmp(g->method, "esd") == 0)
        k += (size_t)snprintf(more + k, sizeof more - k, " eta=%.9g", (double)g->esd_eta);
    if (k < sizeof more && g->unseen)
        k += (size_t)snprintf(more + k, sizeof more - k, " unseen=%s:%zu:%016llx",
                              g->unseen_data ? g->unseen_data->name : "?", g->unseen->n,
                              (unsigned long long)rs_hash_ints(g->unseen->idx, g->unseen->n));
    if (k < sizeof more && g->deterministic)
        k += (size_t)snprintf(more + k, sizeof more - k, " deterministic=1");
    if (k < sizeof more && g->bn_running != LETHE_BN_RUNNING_ALL)
        k += (size_t)snprintf(more + k, sizeof more - k, " bn_running=%d", g->bn_running);
    /* Options in method_opt slots (methods added through the registry). */
    const ul_method *meth = ul_find_method(g->method);
    for (int i = 0; meth && i < meth->nparams && k < sizeof more; i++)
        if (meth->params[i].store == LETHE_STORE_OPT)
            k += (size_t)snprintf(more + k, sizeof more - k, " %s=%.9g", meth->params[i].name,
                                  lethe_unlearn_get(g, &meth->params[i]));
    if (k) {
        uint64_t h = 0xcbf29ce484222325ULL;     /* FNV-1a */
        for (const char *p = more; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
        size_t at = strlen(buf);
        if (at < len) snprintf(buf + at, len - at, " more=%016llx", (unsigned long long)h);
    }
}

/* The trace as (steps, TRACE_COLS) floats; conflict as −1, 0 or 1. */
#define TRACE_COLS 14
static void trace_pack(const lethe_trace_step *s, long steps, float *out)
{
    for (long t = 0; t < steps; t++, s++, out += TRACE_COLS) {
        const float v[TRACE_COLS] = {s->loss_u, s->loss_r_before, s->loss_r_after, s->delta,
                                     s->lambda, s->lambda_star, s->lr, s->cos_ur,
                                     (float)s->conflict, s->probe_loss, s->audit_delta,
                                     s->audit_allowed, s->audit_sum_delta,
                                     s->audit_sum_allowed};
        memcpy(out, v, sizeof v);
    }
}

static lethe_status trace_unpack(const float *in, long steps, lethe_trace_step *s,
                                 const char *label)
{
    for (long t = 0; t < steps; t++, s++, in += TRACE_COLS) {
        float cf = in[8];
        if (cf != -1.0f && cf != 0.0f && cf != 1.0f)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: run state: trace step %ld has conflict %g",
                              label, t + 1, (double)cf);
        *s = (lethe_trace_step){in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7],
                                (int)cf, in[9], in[10], in[11], in[12], in[13], NAN};
    }
    return LETHE_OK;
}

static uint64_t dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double bitsd(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* Hex of a method's plain-data state (at most 240 bytes: metadata values
 * are shorter than 512 characters). */
#define UL_MAX_STATE 240

lethe_status ul_save(const char *path, ul_ctx *c, const ul_method *meth,
                            const ul_audit *audit, const char *config, long done, long T,
                            double seconds)
{
    lethe_unlearn_result *res = c->res;
    float *trace = malloc(((size_t)done * TRACE_COLS + 1) * sizeof(float));  /* (done, 14) */
    if (!trace) return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
    trace_pack(res->trace, done, trace);
    rs_writer w;
    rs_writer_init(&w, path, "unlearn", done, T, config);
    rs_put_model(&w, c->m);
    rs_put_optim(&w, &c->opt);
    rs_put_stream(&w, "forget", &c->fs);
    if (c->nr) rs_put_stream(&w, "retain", &c->rs);
    rs_set_words(&w, "labels.rng", c->rng.s, 4);
    if (c->task->save) c->task->save(c, &w);
    uint64_t igs[3] = {dbits(c->igs.lambda), (uint64_t)c->igs.t, dbits(c->igs.last_delta)};
    rs_set_words(&w, "igs", igs, 3);
    if (c->igs.form == LETHE_LAMBDA_LOG) {
        uint64_t lg[2] = {dbits(c->igs.w_m), dbits(c->igs.w_v)};
        rs_set_words(&w, "igs.log", lg, 2);
    }
    uint64_t samples[3] = {(uint64_t)res->fwd_samples, (uint64_t)res->bwd_samples,
                           (uint64_t)res->audit_fwd_samples};
    rs_set_words(&w, "samples", samples, 3);
    uint64_t au[5] = {dbits(audit->last), dbits(audit->sum_delta), dbits(audit->sum_allowed),
                      dbits(res->audit_probe_loss0), (uint64_t)res->audit_first_violation};
    rs_set_words(&w, "audit", au, 5);
    rs_set_double(&w, "seconds", seconds);
    if (meth->save) meth->save(c, &w);
    if (meth->state_size) {
        char hex[2 * UL_MAX_STATE + 1];
        const uint8_t *b = c->state;
        if (meth->state_size > UL_MAX_STATE || !b) {
            free(trace);
            rs_writer_free(&w);
            return lethe_fail(LETHE_ERR_ARG, "%s: method %s keeps %zu bytes of state, more than "
                              "a run state holds", path, meth->name, meth->state_size);
        }
        for (size_t i = 0; i < meth->state_size; i++) snprintf(hex + 2 * i, 3, "%02x", b[i]);
        rs_set_text(&w, "method.state", hex);
    }
    for (int i = 0; i < c->nsaved; i++)
        rs_put_floats(&w, c->saved[i].name, c->saved[i].p, c->saved[i].n, 0);
    rs_put_floats(&w, "trace", trace, (size_t)done * TRACE_COLS, done > 0 ? (size_t)done : 0);
    float *share = NULL;    /* (done) a view until rs_write, as trace */
    if (c->row_tau) {
        /* Forget just enough: its counters and its column of the trace
         * (absent when off, so that other states stay as they were). */
        uint64_t un[3] = {(uint64_t)res->unseen_rows, (uint64_t)res->unseen_gated,
                          (uint64_t)res->unseen_fwd_samples};
        rs_set_words(&w, "unseen", un, 3);
        if (!(share = malloc(((size_t)done + 1) * sizeof(float)))) {
            free(trace);
            rs_writer_free(&w);
            return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
        }
        for (long t = 0; t < done; t++) share[t] = res->trace[t].unseen_share;
        rs_put_floats(&w, "unseen.trace", share, (size_t)done, 0);
    }
    lethe_status st = rs_write(&w);
    free(share);
    rs_writer_free(&w);
    free(trace);
    return st;
}

/* Continue from a state: everything ul_save wrote, into a context whose
 * buffers, streams, method state and audit are initialised for this run. */
lethe_status ul_load(const char *path, ul_ctx *c, const ul_method *meth, ul_audit *audit,
                            const char *config, long T, long *done, double *seconds)
{
    rs_reader r;
    lethe_unlearn_result *res = c->res;
    float *trace = NULL;
    long step, tot;
    uint64_t igs[3], samples[3], au[5];
    lethe_status st = rs_open(&r, path, "unlearn", config);
    if (st != LETHE_OK) goto done;
    if ((st = rs_get_long(&r, "total", T, T, &tot)) != LETHE_OK ||
        (st = rs_get_long(&r, "step", 1, T, &step)) != LETHE_OK ||
        (st = rs_get_words(&r, "labels.rng", c->rng.s, 4)) != LETHE_OK ||
        (c->task->load && (st = c->task->load(c, &r)) != LETHE_OK) ||
        (st = rs_get_words(&r, "igs", igs, 3)) != LETHE_OK ||
        (st = rs_get_words(&r, "samples", samples, 3)) != LETHE_OK ||
        (st = rs_get_words(&r, "audit", au, 5)) != LETHE_OK ||
        (st = rs_get_double(&r, "seconds", seconds)) != LETHE_OK)
        goto done;
    double lam = bitsd(igs[0]);
    uint64_t lg[2] = {0, 0};
    int logf = c->igs.form == LETHE_LAMBDA_LOG;
    if (logf && (st = rs_get_words(&r, "igs.log", lg, 2)) != LETHE_OK) goto done;
    if (logf && (!isfinite(bitsd(lg[0])) || !(bitsd(lg[1]) >= 0.0) || !isfinite(bitsd(lg[1])))) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: run state: the moments of w are out of range",
                        r.label);
        goto done;
    }
    if (!(logf ? isfinite(lam) && fabs(lam) <= FLT_MAX : lam >= 0.0 && lam <= c->igs.lambda_max) ||
        igs[1] > (uint64_t)step) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: run state: lambda %g or its step count %llu is "
                        "out of range", r.label, lam, (unsigned long long)igs[1]);
        goto done;
    }
    long fv = (long)au[4];
    if (fv < -1 || fv >= step) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: run state: audit violation step %ld out of range",
                        r.label, fv);
        goto done;
    }
    if ((st = rs_get_model(&r, c->m)) != LETHE_OK ||
        (st = rs_get_optim(&r, &c->opt)) != LETHE_OK ||
        (st = rs_get_stream(&r, "forget", &c->fs)) != LETHE_OK ||
        (c->nr && (st = rs_get_stream(&r, "retain", &c->rs)) != LETHE_OK))
        goto done;
    if (meth->load && (st = meth->load(c, &r)) != LETHE_OK) goto done;
    if (meth->state_size) {
        const char *hex = lethe_meta_get(&r.f.md, "method.state");
        uint8_t *b = c->state;
        if (!hex || strlen(hex) != 2 * meth->state_size || !b) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: run state: no %zu-byte state of method %s",
                            r.label, meth->state_size, meth->name);
            goto done;
        }
        for (size_t i = 0; i < meth->state_size; i++) {
            unsigned v;
            if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: run state: method.state is not hex",
                                r.label);
                goto done;
            }
            b[i] = (uint8_t)v;
        }
    }
    for (int i = 0; i < c->nsaved; i++)
        if ((st = rs_get_floats(&r, c->saved[i].name, c->saved[i].p, c->saved[i].n, 0)) !=
            LETHE_OK)
            goto done;
    trace = malloc(((size_t)step * TRACE_COLS + 1) * sizeof(float));    /* (step, 14) */
    if (!trace) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", r.label);
        goto done;
    }
    if ((st = rs_get_floats(&r, "trace", trace, (size_t)step * TRACE_COLS, (size_t)step)) !=
            LETHE_OK ||
        (st = trace_unpack(trace, step, res->trace, r.label)) != LETHE_OK)
        goto done;
    if (c->row_tau) {
        uint64_t un[3];
        if ((st = rs_get_words(&r, "unseen", un, 3)) != LETHE_OK ||
            (st = rs_get_floats(&r, "unseen.trace", trace, (size_t)step, 0)) != LETHE_OK)
            goto done;
        if (un[1] > un[0] || un[2] > samples[0]) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: run state: the unseen-reference counters "
                            "are out of range", r.label);
            goto done;
        }
        for (long t = 0; t < step; t++) {
            float v = trace[t];
            if (!(isnan(v) || (v >= 0.0f && v <= 1.0f))) {
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: run state: unseen share %g at step %ld "
                                "is outside [0, 1]", r.label, (double)v, t + 1);
                goto done;
            }
            res->trace[t].unseen_share = v;
        }
        res->unseen_rows = (long)un[0];
        res->unseen_gated = (long)un[1];
        res->unseen_fwd_samples = (long)un[2];
    }
    c->igs.lambda = (float)lam;
    c->igs.w_m = bitsd(lg[0]);
    c->igs.w_v = bitsd(lg[1]);
    c->igs.t = (long)igs[1];
    c->igs.last_delta = (float)bitsd(igs[2]);
    res->fwd_samples = (long)samples[0];
    res->bwd_samples = (long)samples[1];
    res->audit_fwd_samples = (long)samples[2];
    audit->last = (float)bitsd(au[0]);
    audit->sum_delta = bitsd(au[1]);
    audit->sum_allowed = bitsd(au[2]);
    res->audit_probe_loss0 = (float)bitsd(au[3]);
    res->audit_first_violation = fv;
    if (c->cfg->audit) {
        /* As ul_audit_step leaves them after any step. */
        res->audit_sum_delta = audit->sum_delta;
        res->audit_sum_allowed = audit->sum_allowed;
    }
    *done = step;
done:
    free(trace);
    rs_close(&r);
    return st;
}

