/*
 * The unlearning driver and the step machinery every method shares:
 * drawing the two batches, one grouped forward, per-sample losses with
 * group weights, one (grouped) backward, the SGD update, pass counting;
 * the checks that stop a run at the step of a non-finite loss, λ,
 * gradient or parameter; and the run states of lethe_unlearn_run (what a
 * stopped run needs to go on to the bitwise-same result).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/runstate.h"
#include "nn/model.h"
#include "unlearn/method.h"

/* ------------------------------------------------------------ pieces */

void ul_draw(ul_ctx *c, int forget, int retain, int rl_forget)
{
    int nf = forget ? c->nf : 0, nr = retain ? c->nr : 0, reuse = 0;
    if (nf) {
        lethe_stream_next(&c->fs, nf, 1, c->idx);
        lethe_dataset_batch(c->ds, c->idx, nf, c->x, c->y);
        for (int i = 0; i < nf; i++) {
            int y = c->y[i];
            /* ỹ uniform over the other labels, redrawn every time. */
            c->yt[i] = rl_forget ? (y + 1 + (int)lethe_rng_below(&c->rng, (uint32_t)(c->nclass - 1)))
                                       % c->nclass
                                 : y;
        }
    }
    if (nr) {
        /* The look-ahead variant fixes the next retain batch in advance. */
        if (c->have_next_r) {
            memcpy(c->idx, c->next_r, (size_t)nr * sizeof(int32_t));
            c->have_next_r = 0;
            reuse = c->diff != NULL;
        } else {
            lethe_stream_next(&c->rs, nr, 1, c->idx);
        }
        if (reuse) {
            /* Diffusion: the look-ahead rows were noised when they were
             * measured at θ_{t−1}; the same (x_t, t, ε) rows now, so that
             * both sides of δ see one noise draw. */
            ul_diff_move_rows(c, c->nf + c->nr, nf, nr);
        } else {
            lethe_dataset_batch(c->ds, c->idx, nr, c->x + (size_t)nf * c->px, c->y + nf);
        }
        memcpy(c->yt + nf, c->y + nf, (size_t)nr * sizeof(int32_t));
    }
    c->cur_nf = nf;
    lethe_groups_two(&c->g, nf, nr);
    if (!nf || !nr) lethe_groups_one(&c->g, nf + nr);
    if (c->diff) {
        /* Images become (x_t, t, label) rows with their targets. */
        c->diff->err = ul_diff_noise(c, 0, nf, rl_forget);
        if (c->diff->err == LETHE_OK && !reuse) c->diff->err = ul_diff_noise(c, nf, nr, 0);
    }
}

static int drawn(const ul_ctx *c) { return c->g.start[c->g.n]; }

lethe_status ul_forward(ul_ctx *c, lethe_bn_mode mode)
{
    int n = drawn(c);
    c->res->fwd_samples += n;
    if (c->diff) {
        lethe_status st = c->diff->err;
        if (st == LETHE_OK) st = ul_diff_cond(c, 0);
        if (st != LETHE_OK) return st;
    }
    return lethe_model_forward(c->m, c->x, n, &c->g, mode, &c->logits);
}

void ul_clear_dlogits(ul_ctx *c)
{
    memset(c->dlogits, 0, (size_t)drawn(c) * c->dout * sizeof(float));
}

float ul_loss(ul_ctx *c, lethe_loss_kind k, int from, int count, float weight)
{
    if (count <= 0) return 0.0f;
    if (c->diff) return ul_diff_loss(c, k, from, count, weight, weight != 0.0f);
    for (int i = 0; i < count; i++) c->w[from + i] = weight;
    size_t off = (size_t)from * (size_t)c->nclass;
    lethe_loss(k, c->losses + from, weight != 0.0f ? c->dlogits + off : NULL, c->logits + off,
               c->yt + from, c->w + from, count, c->nclass);
    double s = 0.0;
    for (int i = 0; i < count; i++) s += c->losses[from + i];
    return (float)(s / count);
}

float ul_forget_loss(ul_ctx *c, float wf)
{
    /* rl is plain CE against the random targets drawn in ul_draw. */
    lethe_loss_kind k = c->cfg->loss == LETHE_UL_GA ? LETHE_LOSS_NEG_CE
                        : c->cfg->loss == LETHE_UL_NC ? LETHE_LOSS_NC : LETHE_LOSS_CE;
    return ul_loss(c, k, 0, c->nf, wf);
}

lethe_status ul_backward(ul_ctx *c, float *g_forget, float *g_retain)
{
    if (g_forget) lethe_vec_zero(g_forget, c->n);
    if (g_retain && g_retain != g_forget) lethe_vec_zero(g_retain, c->n);
    float *grads[LETHE_MAX_GROUPS] = {0};
    if (c->g.n == 2) {
        grads[0] = g_forget;
        grads[1] = g_retain;
    } else {
        grads[0] = g_forget ? g_forget : g_retain;
    }
    c->res->bwd_samples += drawn(c);
    return lethe_model_backward(c->m, c->dlogits, &c->g, grads);
}

lethe_status ul_two_grads(ul_ctx *c, lethe_trace_step *tr)
{
    lethe_status st;
    ul_draw(c, 1, 1, c->cfg->loss == LETHE_UL_RL);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    ul_clear_dlogits(c);
    tr->loss_u = ul_forget_loss(c, 1.0f / (float)c->nf);
    tr->loss_r_before = ul_loss(c, LETHE_LOSS_CE, c->nf, c->nr, 1.0f / (float)c->nr);
    return ul_backward(c, c->g_u, c->g_r);
}

lethe_status ul_combine_step(ul_ctx *c, long t, lethe_trace_step *tr,
                             void (*weights)(const ul_ctx *c, double uu, double rr, double ur,
                                             double *au, double *ar))
{
    lethe_status st = ul_two_grads(c, tr);
    if (st != LETHE_OK) return st;
    double ur = lethe_vec_dot(c->g_u, c->g_r, c->n);
    double uu = lethe_vec_norm2(c->g_u, c->n), rr = lethe_vec_norm2(c->g_r, c->n);
    double au, ar;
    weights(c, uu, rr, ur, &au, &ar);
    if ((st = ul_check(t, "the forgetting weight", au)) != LETHE_OK ||
        (st = ul_check(t, "the retaining weight", ar)) != LETHE_OK)
        return st;
    /* λ of the trace: the weight of g_r relative to g_u's (NaN when g_u's is 0). */
    tr->lambda = au > 0 ? (float)(ar / au) : NAN;
    if (c->cfg->diagnostics) ul_diag_record(c, tr, ur, rr, 0);
    float fu = (float)au, fr = (float)ar;
    for (size_t i = 0; i < c->n; i++) c->grad[i] = fu * c->g_u[i] + fr * c->g_r[i];
    ul_apply(c, c->grad);
    return LETHE_OK;
}

void ul_apply(ul_ctx *c, const float *d)
{
    if (c->dclip) {
        /* clip_grad_norm_ over what moves: SalUn's frozen weights do not
         * count (the direction is masked first). */
        double s2 = 0.0;
        for (size_t i = 0; i < c->n; i++)
            if (!c->mask || c->mask[i]) s2 += (double)d[i] * d[i];
        double norm = sqrt(s2), clip = c->cfg->clip_grad;
        c->last_norm = (float)norm;
        if (norm > clip) {
            float sc = (float)(clip / (norm + 1e-6));   /* torch's 1e-6 */
            for (size_t i = 0; i < c->n; i++) c->dclip[i] = d[i] * sc;
            d = c->dclip;
        }
    }
    lethe_optim_step(&c->opt, c->theta, d, c->mask, c->lr);
}

lethe_status ul_frozen_copy(ul_ctx *c, lethe_model **out)
{
    int ic, ih, iw;
    lethe_model_input_shape(c->m, &ic, &ih, &iw);
    lethe_status st = lethe_model_create(out, lethe_model_arch(c->m), ic, ih, iw, c->nclass);
    if (st == LETHE_OK) st = lethe_model_copy(*out, c->m);
    if (st == LETHE_OK) st = lethe_model_reserve(*out, c->nf + c->nr);
    if (st != LETHE_OK) {
        lethe_model_free(*out);
        *out = NULL;
    }
    return st;
}

lethe_status ul_eval_loss(ul_ctx *c, int from, int count, float *loss)
{
    lethe_groups g;
    lethe_groups_one(&g, count);
    const float *logits;
    c->res->fwd_samples += count;
    lethe_status st = c->diff ? ul_diff_cond(c, from) : LETHE_OK;
    if (st == LETHE_OK)
        st = lethe_model_forward(c->m, c->x + (size_t)from * c->px, count, &g, LETHE_BN_BATCH,
                                 &logits);
    if (st != LETHE_OK) return st;
    if (c->diff) {
        size_t off = (size_t)from * c->diff->d;
        *loss = lethe_denoise_loss(c->losses + from, NULL, logits, c->diff->target + off, 0.0f,
                                   count, (int)c->diff->d);
        if (from >= c->cur_nf && c->cfg->retain_weight != 1.0f) *loss *= c->cfg->retain_weight;
        return LETHE_OK;
    }
    lethe_loss(LETHE_LOSS_CE, c->losses + from, NULL, logits, c->yt + from, NULL, count,
               c->nclass);
    double s = 0.0;
    for (int i = 0; i < count; i++) s += c->losses[from + i];
    *loss = (float)(s / count);
    return LETHE_OK;
}

lethe_status ul_check(long t, const char *what, double v)
{
    if (isfinite(v)) return LETHE_OK;
    return lethe_fail(LETHE_ERR_NUMERIC, "step %ld: %s is %s; stopping, no model written",
                      t + 1, what, isnan(v) ? "NaN" : "infinite");
}

/* --------------------------------------------------------- run states */

/* The settings a resumed run must share with the one that wrote the state;
 * theta0 is the hash of the model the run starts from. */
static void ul_config_text(char *buf, size_t len, const ul_ctx *c, long T, uint64_t theta0)
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
                                (int)cf, in[9], in[10], in[11], in[12], in[13]};
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

static lethe_status ul_save(const char *path, ul_ctx *c, const ul_method *meth,
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
    if (c->diff) rs_set_words(&w, "noise.rng", c->diff->rng.s, 4);
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
    rs_set_long(&w, "have_next_r", c->have_next_r);
    if (c->have_next_r) rs_put_ints(&w, "lookahead.next_r", c->next_r, (size_t)c->nr);
    if (c->have_next_r && c->diff) {
        /* The look-ahead rows' noise was drawn already: keep the rows. */
        size_t base = (size_t)c->nf + (size_t)c->nr, d = c->diff->d;
        rs_put_floats(&w, "lookahead.xt", c->x + base * d, (size_t)c->nr * d, (size_t)c->nr);
        rs_put_floats(&w, "lookahead.target", c->diff->target + base * d, (size_t)c->nr * d,
                      (size_t)c->nr);
        rs_put_ints(&w, "lookahead.t", c->diff->t + base, (size_t)c->nr);
        rs_put_ints(&w, "lookahead.yc", c->diff->yc + base, (size_t)c->nr);
    }
    if (c->mask) rs_put_bytes(&w, "mask", c->mask, c->n);
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
    lethe_status st = rs_write(&w);
    rs_writer_free(&w);
    free(trace);
    return st;
}

/* Continue from a state: everything ul_save wrote, into a context whose
 * buffers, streams, method state and audit are initialised for this run. */
static lethe_status ul_load(const char *path, ul_ctx *c, const ul_method *meth, ul_audit *audit,
                            const char *config, long T, long *done, double *seconds)
{
    rs_reader r;
    lethe_unlearn_result *res = c->res;
    float *trace = NULL;
    long step, tot, have;
    uint64_t igs[3], samples[3], au[5];
    lethe_status st = rs_open(&r, path, "unlearn", config);
    if (st != LETHE_OK) goto done;
    if ((st = rs_get_long(&r, "total", T, T, &tot)) != LETHE_OK ||
        (st = rs_get_long(&r, "step", 1, T, &step)) != LETHE_OK ||
        (st = rs_get_long(&r, "have_next_r", 0, 1, &have)) != LETHE_OK ||
        (st = rs_get_words(&r, "labels.rng", c->rng.s, 4)) != LETHE_OK ||
        (c->diff && (st = rs_get_words(&r, "noise.rng", c->diff->rng.s, 4)) != LETHE_OK) ||
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
    if (have && (!c->nr || !meth->uses_retain)) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: run state: a look-ahead batch without retain "
                        "batches", r.label);
        goto done;
    }
    if ((st = rs_get_model(&r, c->m)) != LETHE_OK ||
        (st = rs_get_optim(&r, &c->opt)) != LETHE_OK ||
        (st = rs_get_stream(&r, "forget", &c->fs)) != LETHE_OK ||
        (c->nr && (st = rs_get_stream(&r, "retain", &c->rs)) != LETHE_OK))
        goto done;
    if (have && (st = rs_get_ints(&r, "lookahead.next_r", c->next_r, (size_t)c->nr, 0,
                                  c->ds->n - 1)) != LETHE_OK)
        goto done;
    if (have && c->diff) {
        size_t base = (size_t)c->nf + (size_t)c->nr, d = c->diff->d;
        if ((st = rs_get_floats(&r, "lookahead.xt", c->x + base * d, (size_t)c->nr * d,
                                (size_t)c->nr)) != LETHE_OK ||
            (st = rs_get_floats(&r, "lookahead.target", c->diff->target + base * d,
                                (size_t)c->nr * d, (size_t)c->nr)) != LETHE_OK ||
            (st = rs_get_ints(&r, "lookahead.t", c->diff->t + base, (size_t)c->nr, 0,
                              c->cfg->ddpm->T - 1)) != LETHE_OK ||
            (st = rs_get_ints(&r, "lookahead.yc", c->diff->yc + base, (size_t)c->nr, 0,
                              c->nclass)) != LETHE_OK)
            goto done;
        lethe_dataset_batch(c->ds, c->next_r, c->nr, c->diff->x0 + base * d, c->y + base);
    }
    if (c->mask && (st = rs_get_bytes(&r, "mask", c->mask, c->n, 1)) != LETHE_OK) goto done;
    if (!c->mask && rs_has(&r, "mask")) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: run state holds a mask that method %s does not "
                        "use", r.label, meth->name);
        goto done;
    }
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
    c->igs.lambda = (float)lam;
    c->igs.w_m = bitsd(lg[0]);
    c->igs.w_v = bitsd(lg[1]);
    c->igs.t = (long)igs[1];
    c->igs.last_delta = (float)bitsd(igs[2]);
    c->have_next_r = (int)have;
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

/* The first non-finite value of a (n), or 0 if all are finite. */
static float first_bad(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return a[i];
    return 0.0f;
}

/* ------------------------------------------------------------- driver */

static lethe_status run_core(lethe_model *m, const lethe_dataset *ds, const lethe_subset *forget,
                             const lethe_subset *retain, const lethe_unlearn_config *cfg,
                             lethe_unlearn_result *res, lethe_progress_fn cb, void *cbctx,
                             const ul_hook *hook, lethe_run_control *run);

lethe_status lethe_unlearn(lethe_model *m, const lethe_dataset *ds,
                           const lethe_subset *forget, const lethe_subset *retain,
                           const lethe_unlearn_config *cfg, lethe_unlearn_result *res,
                           lethe_progress_fn cb, void *cbctx)
{
    return run_core(m, ds, forget, retain, cfg, res, cb, cbctx, NULL, NULL);
}

lethe_status lethe_unlearn_run(lethe_model *m, const lethe_dataset *ds,
                               const lethe_subset *forget, const lethe_subset *retain,
                               const lethe_unlearn_config *cfg, lethe_run_control *run,
                               lethe_unlearn_result *res, lethe_progress_fn cb, void *cbctx)
{
    return run_core(m, ds, forget, retain, cfg, res, cb, cbctx, NULL, run);
}

lethe_status ul_run(lethe_model *m, const lethe_dataset *ds, const lethe_subset *forget,
                    const lethe_subset *retain, const lethe_unlearn_config *cfg,
                    lethe_unlearn_result *res, lethe_progress_fn cb, void *cbctx,
                    const ul_hook *hook)
{
    return run_core(m, ds, forget, retain, cfg, res, cb, cbctx, hook, NULL);
}

static lethe_status run_core(lethe_model *m, const lethe_dataset *ds, const lethe_subset *forget,
                             const lethe_subset *retain, const lethe_unlearn_config *cfg,
                             lethe_unlearn_result *res, lethe_progress_fn cb, void *cbctx,
                             const ul_hook *hook, lethe_run_control *run)
{
    memset(res, 0, sizeof *res);
    res->audit_first_violation = -1;
    res->conflict_share = res->mean_cos = res->mean_lambda_gap = NAN;
    res->audit_sum_delta = res->audit_sum_allowed = NAN;
    res->audit_probe_loss0 = NAN;
    if (run) {
        run->step = 0;
        run->saved_step = -1;
    }
    lethe_status st = lethe_unlearn_validate(cfg);
    if (st != LETHE_OK) return st;
    const ul_method *meth = ul_find_method(cfg->method);
    /* The forward reads the model's image size from x, and the losses index
     * logits by label: a data set that does not fit would be read past. */
    if (ds->c != m->in_c || ds->h != m->in_h || ds->w != m->in_w || ds->nclass != m->nclass)
        return lethe_fail(LETHE_ERR_MISMATCH,
                          "data set %s (%dx%dx%d, %d classes) does not fit the %s model "
                          "(%dx%dx%d, %d classes)", ds->name, ds->c, ds->h, ds->w, ds->nclass,
                          m->arch, m->in_c, m->in_h, m->in_w, m->nclass);
    if (!forget || forget->n == 0) return lethe_fail(LETHE_ERR_ARG, "the forget set is empty");
    if (meth->uses_retain && (!retain || retain->n == 0))
        return lethe_fail(LETHE_ERR_ARG, "the retain set is empty");
    if (cfg->audit && (!retain || retain->n < 2))
        return lethe_fail(LETHE_ERR_ARG, "the audit needs at least 2 retain samples");
    /* A noise predictor predicts images, a classifier labels: each needs its task. */
    int predicts_images = lethe_model_out_size(m) != (size_t)m->nclass;
    if (predicts_images && !cfg->ddpm)
        return lethe_fail(LETHE_ERR_ARG, "model '%s' is a noise predictor: unlearn it as a "
                          "diffusion model (a noise schedule; lethe unlearn --task diffusion)",
                          m->arch);
    if (!predicts_images && cfg->ddpm)
        return lethe_fail(LETHE_ERR_ARG, "model '%s' is a classifier, not a diffusion model",
                          m->arch);

    ul_ctx c;
    memset(&c, 0, sizeof c);
    ul_diff diff;
    memset(&diff, 0, sizeof diff);
    ul_audit audit;
    memset(&audit, 0, sizeof audit);
    lethe_subset probe = {0}, rest = {0};
    if (cfg->audit) {
        /* The probe is left out of the retain batches: no step trains on it. */
        size_t np = cfg->audit_probe > 0 ? (size_t)cfg->audit_probe : 512;
        if (np > retain->n / 2) np = retain->n / 2;
        if ((st = ul_holdout_split(retain, np, cfg->seed ^ 0x70726f6265ULL, &probe, &rest)) !=
            LETHE_OK)
            return st;
        retain = &rest;
    }
    int diag = cfg->diagnostics;
    c.m = m;
    c.ds = ds;
    c.cfg = cfg;
    c.forget = forget;
    c.retain = retain;
    c.res = res;
    c.theta = lethe_model_theta(m, &c.n);
    c.grad = lethe_model_grad(m, NULL);
    c.nclass = lethe_model_nclass(m);
    c.bs = cfg->batch;
    c.nf = forget->n < (size_t)c.bs ? (int)forget->n : c.bs;
    c.nr = retain && retain->n ? (retain->n < (size_t)c.bs ? (int)retain->n : c.bs) : 0;
    c.cur_nf = c.nf;
    c.px = (size_t)ds->c * ds->h * ds->w;
    c.dout = lethe_model_out_size(m);
    res->batch = c.bs;
    long T = ul_steps(cfg, forget->n);
    res->steps = T;

    size_t rows = (size_t)c.nf + 2 * (size_t)c.nr;
    int maxrows = c.nf + c.nr;
    c.x = malloc(rows * c.px * sizeof(float));
    c.y = malloc(rows * sizeof(int32_t));
    c.yt = malloc(rows * sizeof(int32_t));
    c.idx = malloc((size_t)(c.nf > c.nr ? c.nf : c.nr) * sizeof(int32_t));
    c.next_r = malloc(((size_t)c.nr + 1) * sizeof(int32_t));
    c.w = malloc(rows * sizeof(float));
    c.losses = malloc(rows * sizeof(float));
    c.dlogits = malloc(rows * c.dout * sizeof(float));
    if (cfg->ddpm) {
        if ((st = ul_diff_init(&diff, ds, cfg, rows, c.px)) != LETHE_OK) goto done;
        c.diff = &diff;
        c.ds = &diff.unit;
    }
    res->trace = calloc((size_t)(T > 0 ? T : 1), sizeof(lethe_trace_step));
    /* Diagnostics need g_u and g_r apart even where the method does not. */
    int group_grads = meth->needs_group_grads || diag;
    if (group_grads) {
        c.g_u = malloc(c.n * sizeof(float));
        c.g_r = malloc(c.n * sizeof(float));
    }
    if (!c.x || !c.y || !c.yt || !c.idx || !c.next_r || !c.w || !c.losses || !c.dlogits ||
        !res->trace || (group_grads && (!c.g_u || !c.g_r))) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for unlearning buffers");
        goto done;
    }
    if ((st = lethe_model_reserve(m, maxrows)) != LETHE_OK) goto done;
    if ((st = lethe_optim_init(&c.opt, cfg->optim, c.n)) != LETHE_OK) goto done;
    c.opt.momentum = cfg->momentum;
    c.opt.weight_decay = cfg->weight_decay;
    c.opt.beta1 = cfg->adam_beta1;
    c.opt.beta2 = cfg->adam_beta2;
    if (cfg->clip_grad > 0.0f && !(c.dclip = malloc(c.n * sizeof(float)))) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for gradient clipping");
        goto done;
    }
    if ((st = lethe_stream_init(&c.fs, forget, cfg->seed * 2 + 1)) != LETHE_OK) goto done;
    if (c.nr && (st = lethe_stream_init(&c.rs, retain, cfg->seed * 2 + 2)) != LETHE_OK) goto done;
    lethe_rng_seed(&c.rng, cfg->seed ^ 0x726c6162656c73ULL);
    c.sched = (lethe_schedule){cfg->schedule, cfg->lr, T, T / 3 > 0 ? T / 3 : 1, 0.1f};

    /* ε_t: constant, or from a total budget with Σ_t α_t ε_t = ε_max. */
    c.eps = cfg->eps;
    if (cfg->eps_budget > 0.0f) {
        double sum = 0.0;
        for (long t = 0; t < T; t++) sum += lethe_schedule_lr(&c.sched, t);
        c.eps = (float)(cfg->eps_budget / sum);
    }
    res->eps_used = c.eps;
    if ((st = lethe_igs_init(&c.igs, c.eps, cfg->beta, cfg->lambda0, cfg->lambda_max)) != LETHE_OK)
        goto done;
    c.igs.beta_decay = cfg->beta_decay;
    if (cfg->lambda_form == LETHE_LAMBDA_LOG &&
        (st = lethe_igs_set_log(&c.igs, cfg->w0, cfg->w_lr, cfg->w_decay)) != LETHE_OK)
        goto done;

    double t0 = rs_now(), seconds0 = 0.0;
    uint64_t theta0 = run ? rs_hash_model(m) : 0;
    /* A resumed run initialises as a fresh one (the audit's probe, SalUn's
     * mask: the same passes over the data, so nothing is left half set up),
     * then takes every value the loop carries from the state. */
    if (cfg->audit && (st = ul_audit_init(&audit, &c, &probe)) != LETHE_OK) goto done;
    if (meth->init && (st = meth->init(&c)) != LETHE_OK) goto done;
    char config[512];
    ul_config_text(config, sizeof config, &c, T, theta0);
    long start = 0;
    if (run && run->resume_path &&
        (st = ul_load(run->resume_path, &c, meth, &audit, config, T, &start, &seconds0)) !=
            LETHE_OK)
        goto done;
    if (run) run->step = start;
    double last_save = t0;
    const long fwd0 = res->fwd_samples;     /* where this call started */
    lethe_progress p = {0};
    p.total = T;
    p.epochs = 1;
    p.epoch = 1;
    for (long t = start; t < T; t++) {
        c.lr = lethe_schedule_lr(&c.sched, t);
        lethe_trace_step *tr = &res->trace[t];
        tr->loss_u = tr->loss_r_before = tr->loss_r_after = tr->delta = NAN;
        tr->lambda = tr->lambda_star = NAN;
        tr->cos_ur = NAN;
        tr->conflict = -1;
        tr->probe_loss = tr->audit_delta = tr->audit_allowed = NAN;
        tr->audit_sum_delta = tr->audit_sum_allowed = NAN;
        tr->lr = c.lr;
        if ((st = meth->step(&c, t, tr)) != LETHE_OK) {
            /* Every numeric fault names its step (the λ controller counts its own). */
            if (st == LETHE_ERR_NUMERIC && strncmp(lethe_last_error(), "step ", 5) != 0) {
                char why[400];
                snprintf(why, sizeof why, "%s", lethe_last_error());
                st = lethe_fail(st, "step %ld: %s; stopping, no model written", t + 1, why);
            }
            goto done;
        }
        if ((st = ul_check(t, "the forgetting loss", meth->uses_forget ? tr->loss_u : 0)) ||
            (st = ul_check(t, "the retaining loss", meth->uses_retain ? tr->loss_r_before : 0)) ||
            (st = ul_check(t, "lambda", isnan(tr->lambda) ? 0 : tr->lambda)) ||
            (st = ul_check(t, "the gradient", first_bad(c.grad, c.n))) ||
            (st = ul_check(t, "a parameter after the update", first_bad(c.theta, c.n))))
            goto done;
        if (cfg->audit && (st = ul_audit_step(&audit, &c, t, tr, meth->uses_eps)) != LETHE_OK)
            goto done;
        double now = rs_now();
        if (cb) {
            p.step = t + 1;
            p.loss = meth->uses_forget ? tr->loss_u : tr->loss_r_before;
            p.lambda = tr->lambda;
            p.acc = NAN;
            rs_progress_times(&p, seconds0, now - t0, (double)(res->fwd_samples - fwd0),
                              t + 1 - start, T - t - 1);
            cb(&p, cbctx);
        }
        if (run) {
            run->step = t + 1;
            int stop = rs_stopping(run);
            if (rs_due(run, stop, t + 1, T, now, last_save)) {
                if ((st = ul_save(run->state_path, &c, meth, &audit, config, t + 1, T,
                                  seconds0 + now - t0)) != LETHE_OK)
                    goto done;
                run->saved_step = t + 1;
                last_save = now;
            }
            if (stop) {
                st = rs_interrupted(run, t + 1, T);
                goto done;
            }
        }
        if (hook && t + 1 < T && hook->fn(m, t, hook->ctx, &st)) {
            if (st != LETHE_OK) goto done;
            res->steps = t + 1;     /* stopped early by the caller */
            break;
        }
    }
    if (!lethe_vec_finite(c.theta, c.n))
        st = lethe_fail(LETHE_ERR_NUMERIC, "parameters are not finite after unlearning; "
                        "no model written");
    res->seconds = seconds0 + rs_now() - t0;
    if (diag) ul_diag_summarise(res);
done:
    if (meth->finish) meth->finish(&c);
    lethe_optim_free(&c.opt);
    lethe_stream_free(&c.fs);
    lethe_stream_free(&c.rs);
    free(c.x);
    free(c.y);
    free(c.yt);
    free(c.idx);
    free(c.next_r);
    free(c.w);
    free(c.losses);
    free(c.dlogits);
    ul_diff_free(&diff);
    free(c.g_u);
    free(c.g_r);
    free(c.dclip);
    free(c.mask);
    ul_audit_free(&audit);
    lethe_subset_free(&probe);
    lethe_subset_free(&rest);
    if (st != LETHE_OK) lethe_unlearn_result_free(res);
    return st;
}
