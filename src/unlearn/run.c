/*
 * The unlearning driver: checks the inputs, sets up a run's context (its
 * task, buffers, optimiser, streams and λ), loops over the steps of the
 * chosen method with the numeric checks, progress, run-state saves and the
 * stop signal, and cleans up.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/loop.h"
#include "core/fail.h"
#include "io/runstate.h"
#include "nn/model.h"
#include "unlearn/method.h"

/* The first non-finite value of a (n), or 0 if all are finite. */
static float first_bad(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return a[i];
    return 0.0f;
}

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

/* What the run loop's functions see of a run. */
typedef struct {
    ul_ctx *c;
    const ul_method *meth;
    ul_audit *audit;
    const char *config;
    long T;
    const ul_hook *hook;
    lethe_progress *p;
} ul_loop;

/* Step t of the method, its numeric checks and the audit. */
static lethe_status ul_loop_step(void *ctx, long t, double *samples)
{
    ul_loop *L = ctx;
    ul_ctx *c = L->c;
    const ul_method *meth = L->meth;
    lethe_unlearn_result *res = c->res;
    long fwd = res->fwd_samples;
    lethe_status st;
    c->lr = lethe_schedule_lr(&c->sched, t);
    lethe_trace_step *tr = &res->trace[t];
    tr->loss_u = tr->loss_r_before = tr->loss_r_after = tr->delta = NAN;
    tr->lambda = tr->lambda_star = NAN;
    tr->cos_ur = NAN;
    tr->conflict = -1;
    tr->probe_loss = tr->audit_delta = tr->audit_allowed = NAN;
    tr->audit_sum_delta = tr->audit_sum_allowed = NAN;
    tr->lr = c->lr;
    tr->unseen_share = NAN;
    long rows = res->unseen_rows, gated = res->unseen_gated;
    if ((st = meth->step(c, t, tr)) != LETHE_OK) {
        /* Every numeric fault names its step (the λ controller counts its own). */
        if (st == LETHE_ERR_NUMERIC && strncmp(lethe_last_error(), "step ", 5) != 0) {
            char why[400];
            snprintf(why, sizeof why, "%s", lethe_last_error());
            st = lethe_fail(st, "step %ld: %s; stopping, no model written", t + 1, why);
        }
        return st;
    }
    if ((st = ul_check(t, "the forgetting loss", meth->uses_forget ? tr->loss_u : 0)) ||
        (st = ul_check(t, "the retaining loss", meth->uses_retain ? tr->loss_r_before : 0)) ||
        (st = ul_check(t, "lambda", isnan(tr->lambda) ? 0 : tr->lambda)) ||
        (st = ul_check(t, "the gradient", first_bad(c->grad, c->n))) ||
        (st = ul_check(t, "a parameter after the update", first_bad(c->theta, c->n))))
        return st;
    if (c->cfg->audit && (st = ul_audit_step(L->audit, c, t, tr, meth->uses_eps)) != LETHE_OK)
        return st;
    if (res->unseen_rows > rows)
        tr->unseen_share = (float)((double)(res->unseen_gated - gated) /
                                   (double)(res->unseen_rows - rows));
    *samples += (double)(res->fwd_samples - fwd);
    L->p->loss = meth->uses_forget ? tr->loss_u : tr->loss_r_before;
    L->p->lambda = tr->lambda;
    L->p->acc = NAN;
    return LETHE_OK;
}

static lethe_status ul_loop_save(void *ctx, const char *path, long done, double seconds)
{
    ul_loop *L = ctx;
    /* The seconds so far less the diagnostics' (a resumed run goes on from them). */
    return ul_save(path, L->c, L->meth, L->audit, L->config, done, L->T, seconds - L->c->diag_s);
}

/* The caller's hook after step t: 1 ends the run there. */
static int ul_loop_end(void *ctx, long t, lethe_status *st)
{
    ul_loop *L = ctx;
    return L->hook->fn(L->c->m, t, L->hook->ctx, st);
}
/* What does not run data-parallel (under mpirun or --deterministic): a
 * method that forwards or reduces on its own (a teacher, a mask over D_f,
 * a look-ahead batch, an extra class) would see this rank's rows alone,
 * and so would the audit and --unseen; --deterministic has no diffusion
 * form (the task's rows are not cut in chunks). NULL, or what (*method: a
 * method's name, else an option's words). */
static const char *not_parallel(const ul_method *meth, const lethe_unlearn_config *cfg,
                                int *method)
{
    static const char *const alone[] = {"be", "bs", "eupmu-lookahead", "salun", "scrub", "esd"};
    *method = 1;
    for (size_t i = 0; i < sizeof alone / sizeof alone[0]; i++)
        if (strcmp(meth->name, alone[i]) == 0) return meth->name;
    *method = 0;
    if (cfg->ddpm && cfg->deterministic) return "unlearning a diffusion model";
    if (cfg->audit) return "the utility audit (--audit)";
    if (cfg->unseen) return "forgetting just enough (--unseen)";
    return NULL;
}

#define PARALLEL_METHODS "eupmu, eupmu-fast, ungrad, ungrad-mixed, ft, ga, rl, neggrad+, " \
                         "l1-sparse, pcgrad, cagrad, mgda"

/* The batch sizes of a run: B_f and B_r (a side the method does not draw: big). */
static long smaller_batch(const ul_method *meth, const lethe_unlearn_config *cfg,
                          const lethe_subset *forget, const lethe_subset *retain)
{
    long bs = cfg->batch, big = LONG_MAX;
    long nf = meth->uses_forget ? ((long)forget->n < bs ? (long)forget->n : bs) : big;
    long nr = meth->uses_retain && retain ? ((long)retain->n < bs ? (long)retain->n : bs) : big;
    return nf < nr ? nf : nr;
}

/* not_parallel's refusal, under mpirun or (det) --deterministic. */
static lethe_status refuse_not_parallel(const ul_method *meth, const lethe_unlearn_config *cfg,
                                        int det)
{
    int method;
    const char *what = not_parallel(meth, cfg, &method);
    if (!what) return LETHE_OK;
    if (method && det)
        return lethe_fail(LETHE_ERR_ARG, "--deterministic: method %s forwards on its own; "
                          "supported: " PARALLEL_METHODS, what);
    if (method)
        return lethe_fail(LETHE_ERR_ARG, "method %s runs in one process only (not under "
                          "mpirun); data-parallel: " PARALLEL_METHODS, what);
    if (det) return lethe_fail(LETHE_ERR_ARG, "--deterministic does not support %s", what);
    return lethe_fail(LETHE_ERR_ARG, "%s runs in one process only (not under mpirun)", what);
}

/* Under mpirun (core/dist.h): every rank needs rows of each batch. */
static lethe_status dist_refuse(const ul_method *meth, const lethe_unlearn_config *cfg,
                                const lethe_subset *forget, const lethe_subset *retain)
{
    lethe_status st = refuse_not_parallel(meth, cfg, 0);
    if (st != LETHE_OK) return st;
    long ranks = core_dist_size(), small = smaller_batch(meth, cfg, forget, retain);
    if (ranks > small)
        return lethe_fail(LETHE_ERR_ARG, "%ld ranks, but a batch of %ld samples: each rank needs "
                          "at least one sample of every batch (use -np %ld or fewer, or a larger "
                          "--batch)", ranks, small, small);
    return LETHE_OK;
}

/* --deterministic, in one process or under mpirun: the same methods, at
 * most UL_CHUNKS ranks, batches of UL_CHUNKS samples or more. */
static lethe_status det_refuse(const ul_method *meth, const lethe_unlearn_config *cfg,
                               const lethe_subset *forget, const lethe_subset *retain)
{
    lethe_status st = refuse_not_parallel(meth, cfg, 1);
    if (st != LETHE_OK) return st;
    if (core_dist_size() > UL_CHUNKS)
        return lethe_fail(LETHE_ERR_ARG, "--deterministic runs unlearning on at most %d ranks "
                          "(its %d fixed chunks of every batch), not %d", UL_CHUNKS, UL_CHUNKS,
                          core_dist_size());
    long small = smaller_batch(meth, cfg, forget, retain);
    if (small < UL_CHUNKS)
        return lethe_fail(LETHE_ERR_ARG, "--deterministic cuts every batch in %d chunks, but a "
                          "batch has %ld sample%s", UL_CHUNKS, small, small == 1 ? "" : "s");
    return LETHE_OK;
}

/* dist_refuse, its error the same on every rank (printed once). */
static lethe_status dist_check(const ul_method *meth, const lethe_unlearn_config *cfg,
                               const lethe_subset *forget, const lethe_subset *retain)
{
    lethe_status st = core_dist_size() > 1 ? dist_refuse(meth, cfg, forget, retain) : LETHE_OK;
    if (st == LETHE_OK && cfg->deterministic) st = det_refuse(meth, cfg, forget, retain);
    if (st != LETHE_OK) core_dist_error_shared();
    return st;
}

static lethe_status run_body(lethe_model *m, const lethe_dataset *ds, const lethe_subset *forget,
                             const lethe_subset *retain, const lethe_unlearn_config *cfg,
                             lethe_unlearn_result *res, lethe_progress_fn cb, void *cbctx,
                             const ul_hook *hook, lethe_run_control *run)
{
    if (!m || !ds || !cfg || !res)
        return lethe_fail(LETHE_ERR_ARG, "unlearn: NULL %s", !m ? "model" : !ds ? "data set"
                          : !cfg ? "configuration" : "result");
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
    if (cfg->unseen) {
        const lethe_dataset *u = cfg->unseen_data;
        if (cfg->ddpm)
            return lethe_fail(LETHE_ERR_ARG, "forgetting just enough (an unseen reference) "
                              "applies to classifiers, not to diffusion models");
        if (!u || cfg->unseen->n == 0)
            return lethe_fail(LETHE_ERR_ARG, "the unseen reference is empty");
        if (u->c != m->in_c || u->h != m->in_h || u->w != m->in_w || u->nclass != m->nclass)
            return lethe_fail(LETHE_ERR_MISMATCH, "the unseen reference %s does not fit the %s "
                              "model", u->name, m->arch);
        for (size_t i = 0; i < cfg->unseen->n; i++)
            if (cfg->unseen->idx[i] < 0 || cfg->unseen->idx[i] >= u->n)
                return lethe_fail(LETHE_ERR_ARG, "the unseen reference's index %d is outside "
                                  "%s (%d samples)", cfg->unseen->idx[i], u->name, u->n);
    }
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
    if ((core_dist_size() > 1 || cfg->deterministic) &&
        (st = dist_check(meth, cfg, forget, retain)) != LETHE_OK)
        return st;
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
    c.px = lethe_dataset_sample_size(ds);
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
    /* What a row is: a noise predictor's rows are noised images. */
    c.task = cfg->ddpm ? &ul_task_diffusion : &ul_task_classify;
    if (c.task->init && (st = c.task->init(&c, rows)) != LETHE_OK) goto done;
    res->trace = calloc((size_t)(T > 0 ? T : 1), sizeof(lethe_trace_step));
    /* Diagnostics need g_u and g_r apart even where the method does not. */
    int group_grads = meth->needs_group_grads || diag;
    if (group_grads) {
        /* One block, g_r right after g_u: under mpirun one all-reduce sums both. */
        c.g_u = malloc(2 * c.n * sizeof(float));
        c.g_r = c.g_u ? c.g_u + c.n : NULL;
    }
    /* --deterministic: every chunk's gradient (the MPI counts are ints). */
    if (cfg->deterministic && 2 * UL_CHUNKS * c.n > (size_t)INT_MAX) {
        st = lethe_fail(LETHE_ERR_ARG, "--deterministic: %zu parameters are too many (at most "
                        "%d)", c.n, INT_MAX / (2 * UL_CHUNKS));
        goto done;
    }
    if (cfg->deterministic) c.chunks = malloc(2 * UL_CHUNKS * c.n * sizeof(float));
    if (!c.x || !c.y || !c.yt || !c.idx || !c.next_r || !c.w || !c.losses || !c.dlogits ||
        !res->trace || (group_grads && (!c.g_u || !c.g_r)) || (cfg->deterministic && !c.chunks)) {
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

    double t0 = core_now(), seconds0 = 0.0;
    uint64_t theta0 = run ? rs_hash_model(m) : 0;
    /* A resumed run initialises as a fresh one (the audit's probe, SalUn's
     * mask: the same passes over the data, so nothing is left half set up),
     * then takes every value the loop carries from the state. */
    if (core_dist_size() > 1) {
        /* Before any collective: every rank has the same run (its settings,
         * θ_0 and data), or none starts. */
        char agree[512];
        ul_config_text(agree, sizeof agree, &c, T, rs_hash_model(m));
        if ((st = core_dist_agree_run(agree, ds)) != LETHE_OK) goto done;
    }
    if (cfg->audit && (st = ul_audit_init(&audit, &c, &probe)) != LETHE_OK) goto done;
    if (cfg->unseen && (st = ul_unseen_init(&c)) != LETHE_OK) goto done;
    if (meth->init && (st = meth->init(&c)) != LETHE_OK) goto done;
    char config[512];
    ul_config_text(config, sizeof config, &c, T, theta0);
    if (core_dist_size() > 1) {
        size_t at = strlen(config);
        snprintf(config + at, sizeof config - at, " ranks=%d", core_dist_size());
    }
    long start = 0;
    if (run && run->resume_path) {
        st = ul_load(run->resume_path, &c, meth, &audit, config, T, &start, &seconds0);
        /* Under mpirun: a state every rank refuses (another rank count) is said once. */
        if (core_dist_size() > 1 && !core_dist_any(st == LETHE_OK)) core_dist_error_shared();
        if (st != LETHE_OK) goto done;
    }
    lethe_progress p = {0};
    p.total = T;
    p.epochs = 1;
    p.epoch = 1;
    ul_loop lc = {&c, meth, &audit, config, T, hook, &p};
    core_loop L = {.start = start, .total = T, .before_s = seconds0, .t0 = t0, .run = run,
                   .cb = cb, .cbctx = cbctx, .p = &p, .ctx = &lc, .step = ul_loop_step,
                   .save = ul_loop_save, .end = hook ? ul_loop_end : NULL};
    if ((st = core_loop_run(&L)) != LETHE_OK) goto done;
    res->steps = L.steps;   /* fewer when the caller's hook stopped it */
    if (!lethe_vec_finite(c.theta, c.n))
        st = lethe_fail(LETHE_ERR_NUMERIC, "parameters are not finite after unlearning; "
                        "no model written");
    res->seconds = seconds0 + core_now() - t0 - c.diag_s;   /* the method's time only */
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
    if (c.task && c.task->free) c.task->free(&c);
    free(c.g_u);            /* g_r with it */
    free(c.dclip);
    free(c.chunks);
    free(c.tau_by_index);
    free(c.row_tau);
    free(c.mask);
    ul_audit_free(&audit);
    lethe_subset_free(&probe);
    lethe_subset_free(&rest);
    if (st != LETHE_OK) lethe_unlearn_result_free(res);
    return st;
}

/* Under mpirun, what does not run data-parallel (not_parallel: SalUn,
 * SCRUB, BS, BE, EUPMU-lookahead, ESD, the audit, --unseen) runs whole on
 * every rank, as one process (core_dist_alone): the same bits on each,
 * no speed-up; then every rank must have succeeded or failed alike. */
static lethe_status run_core(lethe_model *m, const lethe_dataset *ds, const lethe_subset *forget,
                             const lethe_subset *retain, const lethe_unlearn_config *cfg,
                             lethe_unlearn_result *res, lethe_progress_fn cb, void *cbctx,
                             const ul_hook *hook, lethe_run_control *run)
{
    const ul_method *meth = cfg && cfg->method ? ul_find_method(cfg->method) : NULL;
    int method;
    if (core_dist_size() == 1 || !meth || cfg->deterministic || !not_parallel(meth, cfg, &method))
        return run_body(m, ds, forget, retain, cfg, res, cb, cbctx, hook, run);
    core_dist_alone(1);
    lethe_status st = run_body(m, ds, forget, retain, cfg, res, cb, cbctx, hook, run);
    core_dist_alone(0);
    int failed = core_dist_first(st != LETHE_OK), passed = core_dist_first(st == LETHE_OK);
    if (failed < 0 || passed < 0) {
        if (st != LETHE_OK) core_dist_error_shared();   /* the same error on every rank */
        return st;
    }
    if (st == LETHE_OK) {
        lethe_unlearn_result_free(res);
        st = lethe_fail(LETHE_ERR_IO, "rank %d failed running %s (whole, on every rank) where "
                        "this rank did not", failed, meth->name);
    }
    return st;
}
