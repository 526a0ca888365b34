/*
 * The step machinery every method shares: drawing the two batches, one
 * grouped forward, per-sample losses with group weights, one (grouped)
 * backward, the update, pass counting, and the check that names the step
 * of a non-finite value. What a row is (an image and label, or a noised
 * image and its target) is the run's task (ul_task); the driver is run.c,
 * the run states state.c.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "core/dist.h"
#include "core/fail.h"
#include "unlearn/method.h"

/* ------------------------------------------------------------ pieces */

/* Under mpirun: move `count` rows (image, label, target, forget target)
 * from row `from` to row `to` (to <= from). */
static void dist_move_rows(ul_ctx *c, int from, int to, int count)
{
    if (from == to || count <= 0) return;
    if (c->task->move_rows) {   /* the task's rows (diffusion: x_t, t, label, target) */
        c->task->move_rows(c, from, to, count);
        memmove(c->yt + to, c->yt + from, (size_t)count * sizeof(int32_t));
        return;
    }
    memmove(c->x + (size_t)to * c->px, c->x + (size_t)from * c->px,
            (size_t)count * c->px * sizeof(float));
    memmove(c->y + to, c->y + from, (size_t)count * sizeof(int32_t));
    memmove(c->yt + to, c->yt + from, (size_t)count * sizeof(int32_t));
}

/* Rows split over ranks: under mpirun, or --deterministic (chunks). */
static int dist_on(const ul_ctx *c) { return core_dist_size() > 1 || c->chunks; }

/* Under mpirun: every rank drew and loaded the whole global batches (the
 * same indices and random labels as one process, B_f in rows [0, nf), B_r
 * in [nf, nf + nr)); keep this rank's share of each, B_f's first.
 * --deterministic: this rank's chunks of each (c->plan). */
static void dist_keep_shard(ul_ctx *c, int nf, int nr)
{
    long flo, fhi, rlo, rhi;
    if (c->chunks) {
        const int rows[2] = {nf ? nf : nr, nr};
        core_dist_plan_init(&c->plan, nf && nr ? 2 : 1, rows, UL_CHUNKS);
        flo = fhi = rlo = rhi = 0;
        if (nf) core_dist_plan_rows(&c->plan, 0, &flo, &fhi);
        if (nr) core_dist_plan_rows(&c->plan, nf ? 1 : 0, &rlo, &rhi);
    } else {
        core_dist_shard(nf, &flo, &fhi);
        core_dist_shard(nr, &rlo, &rhi);
    }
    dist_move_rows(c, (int)flo, 0, (int)(fhi - flo));
    dist_move_rows(c, nf + (int)rlo, (int)(fhi - flo), (int)(rhi - rlo));
    c->dist_nf = (int)(fhi - flo);
    c->dist_nr = (int)(rhi - rlo);
    c->dist_all = nf + nr;
    c->dist_drew_f = nf > 0;
}

void ul_local_rows(const ul_ctx *c, int *from, int *count)
{
    if (!dist_on(c)) return;
    if (*from == 0 && c->dist_drew_f) {
        *count = c->dist_nf;
    } else {
        *from = c->dist_nf;
        *count = c->dist_nr;
    }
}

/* Under mpirun: the mean of the per-sample losses of this rank's rows
 * [from, from + count) and every other rank's (one all-reduce).
 * --deterministic: summed chunk by chunk, the chunks in order. */
static float dist_mean_loss(const ul_ctx *c, int from, int count)
{
    if (c->chunks) {
        /* The set of the rows: B_f's chunks are groups [0, cnt) when drawn. */
        const core_dist_plan *p = &c->plan;
        const int cnt = p->hi - p->lo, s = p->sets == 2 && from >= c->dist_nf ? 1 : 0;
        const int base = from - p->g.start[s * cnt];   /* 0, or the look-ahead's offset */
        double part[LETHE_MAX_GROUPS] = {0}, tot[2];
        for (int k = s * cnt; k < (s + 1) * cnt; k++)
            for (int i = p->g.start[k]; i < p->g.start[k + 1]; i++)
                part[k] += c->losses[base + i];
        core_dist_plan_sum_d(p, part, tot);
        return (float)(tot[s] / (double)p->rows[s]);
    }
    double v[2] = {0.0, (double)count};
    for (int i = 0; i < count; i++) v[0] += c->losses[from + i];
    core_dist_sum_d(v, 2);
    return (float)(v[0] / v[1]);
}

void ul_draw(ul_ctx *c, int forget, int retain, int rl_forget)
{
    int nf = forget ? c->nf : 0, nr = retain ? c->nr : 0, reuse = 0;
    c->draw_nf = nf;
    c->draw_nr = nr;
    if (nf) {
        lethe_stream_next(&c->fs, nf, 1, c->idx);
        lethe_dataset_batch(c->ds, c->idx, nf, c->x, c->y);
        if (c->row_tau)
            for (int i = 0; i < nf; i++) c->row_tau[i] = c->tau_by_index[c->idx[i]];
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
            reuse = c->task->move_rows != NULL;
        } else {
            lethe_stream_next(&c->rs, nr, 1, c->idx);
        }
        if (reuse) {
            /* The look-ahead rows were prepared (diffusion: noised) when
             * they were measured at θ_{t−1}; the same rows now, so that
             * both sides of δ see one draw. */
            c->task->move_rows(c, c->nf + c->nr, nf, nr);
        } else {
            lethe_dataset_batch(c->ds, c->idx, nr, c->x + (size_t)nf * c->px, c->y + nf);
        }
        memcpy(c->yt + nf, c->y + nf, (size_t)nr * sizeof(int32_t));
    }
    c->cur_nf = nf;
    if (dist_on(c)) {
        /* The task's rows of the global batches first (diffusion: the noise
         * and timesteps every rank draws alike, as one process), then this
         * rank's share; the groups' number from the global batch: each
         * rank has rows of both. */
        c->task_err = ul_prepare(c, 0, nf, rl_forget);
        if (c->task_err == LETHE_OK && !reuse) c->task_err = ul_prepare(c, nf, nr, 0);
        dist_keep_shard(c, nf, nr);
        c->cur_nf = c->dist_nf;
        lethe_groups_two(&c->g, c->dist_nf, c->dist_nr);
        if (!nf || !nr) lethe_groups_one(&c->g, c->dist_nf + c->dist_nr);
        if (c->chunks) c->g = c->plan.g;
        return;
    }
    lethe_groups_two(&c->g, nf, nr);
    if (!nf || !nr) lethe_groups_one(&c->g, nf + nr);
    /* The task's rows (diffusion: (x_t, t, label) with their targets). */
    c->task_err = ul_prepare(c, 0, nf, rl_forget);
    if (c->task_err == LETHE_OK && !reuse) c->task_err = ul_prepare(c, nf, nr, 0);
}

lethe_status ul_prepare(ul_ctx *c, int from, int count, int rl)
{
    return c->task->prepare && count > 0 ? c->task->prepare(c, from, count, rl) : LETHE_OK;
}

static int drawn(const ul_ctx *c) { return c->g.start[c->g.n]; }

/* The rows drawn over every rank (the passes counted are the global batch's). */
static int drawn_all(const ul_ctx *c) { return dist_on(c) ? c->dist_all : drawn(c); }

/* A forward of a draw ([B_f, B_r]: the retain rows last) under
 * lethe_unlearn_config.bn_running: FROZEN normalises every batch with the
 * running averages and leaves them (the retain loss after a step too, so
 * that δ_t compares losses of the model as the steps see it); with RETAIN
 * only B_r's statistics move them in training mode, and a draw of B_f
 * alone leaves them. */
static lethe_bn_mode bn_mode_of(const ul_ctx *c, lethe_bn_mode mode)
{
    if (c->cfg->bn_running == LETHE_BN_RUNNING_FROZEN) return LETHE_BN_EVAL;
    if (mode != LETHE_BN_TRAIN || c->cfg->bn_running == LETHE_BN_RUNNING_ALL) return mode;
    if (!c->draw_nr) return LETHE_BN_BATCH;
    return c->draw_nf ? LETHE_BN_TRAIN_LAST : LETHE_BN_TRAIN;
}

lethe_status ul_forward(ul_ctx *c, lethe_bn_mode mode)
{
    mode = bn_mode_of(c, mode);
    int n = drawn(c);
    c->res->fwd_samples += drawn_all(c);
    lethe_status st = c->task_err;
    if (st == LETHE_OK && c->task->cond) st = c->task->cond(c, 0);
    if (st != LETHE_OK) return st;
    core_dist_plan_use(c->chunks ? &c->plan : NULL);
    st = lethe_model_forward(c->m, c->x, n, &c->g, mode, &c->logits);
    core_dist_plan_use(NULL);
    return st;
}

void ul_clear_dlogits(ul_ctx *c)
{
    memset(c->dlogits, 0, (size_t)drawn(c) * c->dout * sizeof(float));
}

float ul_loss(ul_ctx *c, lethe_loss_kind k, int from, int count, float weight)
{
    if (count <= 0) return 0.0f;
    ul_local_rows(c, &from, &count);
    float mean = c->task->loss(c, k, from, count, weight, weight != 0.0f);
    /* Forget just enough: forgetting rows at their target move no further. */
    if (c->row_tau && weight != 0.0f && from < c->cur_nf) ul_unseen_gate(c, from, count);
    if (dist_on(c)) mean = dist_mean_loss(c, from, count);
    return mean;
}

float ul_forget_loss(ul_ctx *c, float wf)
{
    /* rl is plain CE against the random targets drawn in ul_draw. */
    lethe_loss_kind k = c->cfg->loss == LETHE_UL_GA ? LETHE_LOSS_NEG_CE
                        : c->cfg->loss == LETHE_UL_NC ? LETHE_LOSS_NC : LETHE_LOSS_CE;
    return ul_loss(c, k, 0, c->nf, wf);
}

/* ul_backward under --deterministic: each chunk's gradient apart (set s's
 * chunks are groups [s·cnt, (s + 1)·cnt), to dest[s]), then each
 * destination the sum of its chunks in order, over every rank. */
static lethe_status det_backward(ul_ctx *c, float *const dest[])
{
    const core_dist_plan *p = &c->plan;
    const int cnt = p->hi - p->lo;
    float *mine = core_dist_plan_mine(p, c->chunks, c->n), *grads[LETHE_MAX_GROUPS] = {0};
    lethe_vec_zero(mine, (size_t)p->g.n * c->n);
    for (int k = 0; k < p->g.n; k++)
        if (dest[k / cnt]) grads[k] = mine + (size_t)k * c->n;
    core_dist_plan_use(p);
    lethe_status st = lethe_model_backward(c->m, c->dlogits, &p->g, grads);
    core_dist_plan_use(NULL);
    if (st != LETHE_OK) return st;
    core_dist_plan_sum_f(p, c->chunks, c->n, dest);
    return LETHE_OK;
}

lethe_status ul_backward(ul_ctx *c, float *g_forget, float *g_retain)
{
    if (g_forget) lethe_vec_zero(g_forget, c->n);
    if (g_retain && g_retain != g_forget) lethe_vec_zero(g_retain, c->n);
    float *grads[LETHE_MAX_GROUPS] = {0};
    if (c->chunks ? c->plan.sets == 2 : c->g.n == 2) {
        grads[0] = g_forget;
        grads[1] = g_retain;
    } else {
        grads[0] = g_forget ? g_forget : g_retain;
    }
    c->res->bwd_samples += drawn_all(c);
    if (c->chunks) return det_backward(c, grads);
    lethe_status st = lethe_model_backward(c->m, c->dlogits, &c->g, grads);
    if (st != LETHE_OK || !dist_on(c)) return st;
    /* Under mpirun: the sums over every rank's rows, one fused all-reduce
     * (g_u and g_r are adjacent, run.c), so that ⟨g_u, g_r⟩ and ‖g_r‖² are
     * global. */
    float *a = grads[0], *b = c->g.n == 2 ? grads[1] : NULL;
    if (a && b && b == a + c->n) {
        core_dist_sum_f(a, 2 * c->n);
    } else {
        if (a) core_dist_sum_f(a, c->n);
        if (b && b != a) core_dist_sum_f(b, c->n);
    }
    return LETHE_OK;
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
    c->res->fwd_samples += count;
    const int global = count;
    ul_local_rows(c, &from, &count);
    lethe_groups g;
    lethe_groups_one(&g, count);
    /* --deterministic: the retain batch's chunks, as in the draw. */
    core_dist_plan sub;
    if (c->chunks) {
        core_dist_plan_init(&sub, 1, &global, UL_CHUNKS);
        g = sub.g;
        core_dist_plan_use(&sub);
    }
    const float *logits;
    lethe_status st = c->task->cond ? c->task->cond(c, from) : LETHE_OK;
    if (st == LETHE_OK)
        st = lethe_model_forward(c->m, c->x + (size_t)from * c->px, count, &g,
                                 bn_mode_of(c, LETHE_BN_BATCH), &logits);
    core_dist_plan_use(NULL);
    if (st != LETHE_OK) return st;
    *loss = c->task->eval_loss(c, logits, from, count);
    if (dist_on(c)) *loss = dist_mean_loss(c, from, count);
    return LETHE_OK;
}

lethe_status ul_check(long t, const char *what, double v)
{
    if (isfinite(v)) return LETHE_OK;
    return lethe_fail(LETHE_ERR_NUMERIC, "step %ld: %s is %s; stopping, no model written",
                      t + 1, what, isnan(v) ? "NaN" : "infinite");
}

