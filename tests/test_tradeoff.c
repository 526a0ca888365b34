/* The trade-off machinery: gradient-conflict diagnostics (same θ as without,
 * and consistent with UNGrad's explicit λ*), the utility audit's sums, the
 * ε search under a utility budget, and the commands sweep, plot and table
 * run as programs ($LETHE_BIN, as in test_cli.c) on a tiny MNIST-format
 * data set. */
#include "test.h"
#include "cli_util.h"
#include "toy.h"

#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lethe.h"

#define BS TOY_BS

/* ------------------------------------------------------------- toy set */

/* n images 1×hw×hw, label i % nclass, each class a random binary prototype
 * with 8% of its pixels flipped; D_f = class 0, D_r the others (as in
 * test_unlearn.c). */

static void toy_make(toy *t, int n, int nclass, int hw, float flip)
{
    toy_images(t, n, nclass, hw, 4242, flip, SIZE_MAX, SIZE_MAX);
}

static void base_cfg(lethe_unlearn_config *c, const char *method, long steps)
{
    lethe_unlearn_config_default(c);
    c->method = method;
    c->steps = steps;
    c->batch = BS;
    c->seed = 3;
    c->lr = 0.05f;
    c->eps = 0.01f;
}

static lethe_status run_clone(const lethe_model *m0, const toy *t, const lethe_unlearn_config *cfg,
                              lethe_unlearn_result *res, lethe_model **out)
{
    *out = toy_clone(m0, t);
    if (!*out) return LETHE_ERR_NOMEM;
    return lethe_unlearn(*out, &t->ds, &t->forget, &t->retain, cfg, res, NULL, NULL);
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double d = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d)) d = e;
    }
    return d;
}

/* ---------------------------------------------------------- diagnostics */

/* For each EUPMU form, and EUPMU in the log form: diagnostics on moves θ
 * as diagnostics off, bit for bit (they only observe), at the same counted
 * cost, with the same λ and losses in the trace; the trace is consistent
 * (conflict ⇔ cos < 0; λ*_t > 0 only in conflict; the summary is the mean of
 * the trace); and step 0's λ* and cos are those of UNGrad, which computes
 * them explicitly from the same batches at the same θ_0. On resnet8 too
 * (batch norm per group). */
static void diag_case(const char *arch, int hw)
{
    toy t;
    toy_make(&t, 96, 4, hw, 0.08f);
    lethe_model *m0 = toy_model(&t, arch, 2);
    CHECK(m0 != NULL);
    if (!m0) goto out;
    size_t n;
    const float *t0 = lethe_model_theta(m0, &n);
    const long T = 6;
    lethe_unlearn_config cu;
    base_cfg(&cu, "ungrad", T);
    cu.diagnostics = 1;
    lethe_unlearn_result ru;
    lethe_model *mu;
    CHECK_OK(run_clone(m0, &t, &cu, &ru, &mu));
    const char *fam[] = {"eupmu", "eupmu-fast", "eupmu-lookahead", "eupmu"};
    for (int k = 0; k < 4; k++) {
        lethe_unlearn_config off, on;
        base_cfg(&off, fam[k], T);
        if (k == 3) off.lambda_form = LETHE_LAMBDA_LOG;
        on = off;
        on.diagnostics = 1;
        lethe_unlearn_result r0, r1;
        lethe_model *a, *b;
        CHECK_OK(run_clone(m0, &t, &off, &r0, &a));
        CHECK_OK(run_clone(m0, &t, &on, &r1, &b));
        if (!r0.trace || !r1.trace) goto next;
        double d = max_abs_diff(lethe_model_theta(a, NULL), lethe_model_theta(b, NULL), n);
        double moved = max_abs_diff(lethe_model_theta(a, NULL), t0, n);
        CHECK_MSG(moved > 1e-4, "%s %s: θ did not move", arch, fam[k]);
        CHECK_MSG(memcmp(lethe_model_theta(a, NULL), lethe_model_theta(b, NULL),
                         n * sizeof(float)) == 0,
                  "%s %s%s: diagnostics changed θ by %g (moved %g)", arch, fam[k],
                  k == 3 ? " (log form)" : "", d, moved);
        CHECK_MSG(r0.fwd_samples == r1.fwd_samples && r0.bwd_samples == r1.bwd_samples,
                  "%s: diagnostics cost passes: %ld/%ld vs %ld/%ld", fam[k], r1.fwd_samples,
                  r1.bwd_samples, r0.fwd_samples, r0.bwd_samples);
        CHECK(r0.diag_steps == 0 && r1.diag_steps == T);
        long conflicts = 0;
        double gap = 0;
        for (long s = 0; s < T; s++) {
            const lethe_trace_step *x = &r1.trace[s], *y = &r0.trace[s];
            CHECK(x->lambda == y->lambda && x->loss_u == y->loss_u &&
                  x->loss_r_before == y->loss_r_before);
            CHECK_MSG(x->cos_ur >= -1.0f && x->cos_ur <= 1.0f, "cos[%ld] = %g", s, (double)x->cos_ur);
            CHECK(x->conflict == (x->cos_ur < 0.0f));
            CHECK(y->conflict == -1 && isnan(y->cos_ur) && isnan(y->lambda_star));
            CHECK(x->lambda_star >= 0.0f && x->lambda_star <= on.lambda_max);
            if (x->lambda_star > 0.0f) CHECK_MSG(x->conflict, "%s: lambda*[%ld] > 0 without "
                                                 "conflict", fam[k], s);
            conflicts += x->conflict;
            gap += fabs((double)x->lambda - (double)x->lambda_star);
        }
        CHECK_NEAR(r1.conflict_share, (double)conflicts / T, 1e-12);
        CHECK_NEAR(r1.mean_lambda_gap, gap / T, 1e-6);
        CHECK(isnan(r0.conflict_share) && isnan(r0.mean_lambda_gap));
        /* Step 0: same θ_0, batches and labels as UNGrad's first step. */
        if (ru.trace) {
            CHECK_NEAR(r1.trace[0].lambda_star, ru.trace[0].lambda_star,
                       1e-4 * (1 + fabs(ru.trace[0].lambda_star)));
            CHECK_NEAR(r1.trace[0].cos_ur, ru.trace[0].cos_ur, 1e-5);
        }
    next:
        lethe_unlearn_result_free(&r0);
        lethe_unlearn_result_free(&r1);
        lethe_model_free(a);
        lethe_model_free(b);
    }
    /* UNGrad: λ = λ*, so the gap is 0; λ* > 0 only in conflict. */
    if (ru.trace) {
        CHECK(ru.diag_steps == T && ru.mean_lambda_gap == 0.0);
        int positive = 0;
        for (long s = 0; s < T; s++) {
            if (ru.trace[s].lambda_star > 0.0f) CHECK(ru.trace[s].conflict == 1);
            positive += ru.trace[s].lambda_star > 0.0f;
        }
        CHECK_MSG(positive > 0, "%s: lambda* never > 0; the test does not exercise conflicts", arch);
    }
    /* Diagnostics do not touch UNGrad's step: θ bit for bit. */
    lethe_unlearn_config cn = cu;
    cn.diagnostics = 0;
    lethe_unlearn_result rn;
    lethe_model *mn;
    CHECK_OK(run_clone(m0, &t, &cn, &rn, &mn));
    CHECK(mu && mn && memcmp(lethe_model_theta(mu, NULL), lethe_model_theta(mn, NULL),
                             n * sizeof(float)) == 0);
    lethe_unlearn_result_free(&rn);
    lethe_model_free(mn);
    lethe_unlearn_result_free(&ru);
    lethe_model_free(mu);
out:
    lethe_model_free(m0);
    toy_free(&t);
}

TEST(diagnostics_keep_theta_and_match_ungrad_mlp) { diag_case("mlp", 28); }
TEST(diagnostics_keep_theta_and_match_ungrad_resnet8) { diag_case("resnet8", 8); }

TEST(diagnostics_rejected_where_there_is_no_surgery)
{
    lethe_unlearn_config c;
    base_cfg(&c, "ft", 2);
    c.diagnostics = 1;
    CHECK(lethe_unlearn_validate(&c) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "ft") != NULL);
    c.method = "ungrad-mixed";
    CHECK_OK(lethe_unlearn_validate(&c));
    CHECK(lethe_method_uses_eps("eupmu-lookahead") && !lethe_method_uses_eps("salun") &&
          !lethe_method_uses_eps("nope"));
}

/* ---------------------------------------------------------------- audit */

/* The per-step Δ_t add up to the reported sums (and telescope to the probe
 * loss at the end less at the start), the running sums are the prefix sums,
 * α_t ε_t is the step's, the first violation is the first prefix where
 * Σ Δ > Σ α ε, and the probe costs P forwards per step plus P. */
TEST(audit_sums_equal_the_per_step_values)
{
    toy t;
    toy_make(&t, 160, 4, 28, 0.08f);
    lethe_model *m0 = toy_model(&t, "mlp", 2);
    CHECK(m0 != NULL);
    if (!m0) goto out;
    const long T = 9;
    const int P = 24;
    const char *methods[] = {"eupmu", "ungrad", "ft"};
    for (int k = 0; k < 3; k++) {
        lethe_unlearn_config c, plain;
        base_cfg(&c, methods[k], T);
        c.schedule = LETHE_SCHED_COSINE;    /* α_t varies: each step's own α_t ε_t */
        c.eps = 0.05f;
        plain = c;
        c.audit = 1;
        c.audit_probe = P;
        lethe_unlearn_result r, r0;
        lethe_model *m, *m1;
        CHECK_OK(run_clone(m0, &t, &c, &r, &m));
        CHECK_OK(run_clone(m0, &t, &plain, &r0, &m1));
        if (!r.trace || !r0.trace) goto next;
        int has_eps = k < 2;
        CHECK(r.audit_probe_n == P);
        CHECK(r.audit_fwd_samples == (long)P * (T + 1));
        CHECK_MSG(r.fwd_samples == r0.fwd_samples + (long)P * (T + 1) &&
                      r.bwd_samples == r0.bwd_samples,
                  "%s: %ld/%ld samples with the audit, %ld/%ld without", methods[k],
                  r.fwd_samples, r.bwd_samples, r0.fwd_samples, r0.bwd_samples);
        double sd = 0, sa = 0;
        long first = -1;
        for (long s = 0; s < T; s++) {
            const lethe_trace_step *x = &r.trace[s];
            float before = s ? r.trace[s - 1].probe_loss : r.audit_probe_loss0;
            CHECK_NEAR(x->audit_delta, (double)x->probe_loss - before, 1e-6);
            sd += x->audit_delta;
            CHECK_NEAR(x->audit_sum_delta, sd, 1e-5);
            if (has_eps) {
                CHECK_NEAR(x->audit_allowed, (double)x->lr * c.eps, 1e-9);
                sa += x->audit_allowed;
                CHECK_NEAR(x->audit_sum_allowed, sa, 1e-6);
                if (first < 0 && x->audit_sum_delta > x->audit_sum_allowed + 1e-6) first = s;
            } else {
                CHECK(isnan(x->audit_allowed) && isnan(x->audit_sum_allowed));
            }
        }
        CHECK_NEAR(r.audit_sum_delta, sd, 1e-5);
        CHECK_NEAR(r.audit_sum_delta, (double)r.trace[T - 1].probe_loss - r.audit_probe_loss0,
                   1e-5);
        if (has_eps) {
            CHECK_NEAR(r.audit_sum_allowed, sa, 1e-6);
            /* Equal up to float rounding of the stored prefix sums. */
            CHECK_MSG(r.audit_first_violation == first ||
                          fabs(r.trace[r.audit_first_violation >= 0 ? r.audit_first_violation : 0]
                                   .audit_sum_delta -
                               r.trace[r.audit_first_violation >= 0 ? r.audit_first_violation : 0]
                                   .audit_sum_allowed) < 1e-5,
                      "%s: first violation %ld, recomputed %ld", methods[k],
                      r.audit_first_violation, first);
        } else {
            CHECK(isnan(r.audit_sum_allowed) && r.audit_first_violation == -1);
        }
    next:
        lethe_unlearn_result_free(&r);
        lethe_unlearn_result_free(&r0);
        lethe_model_free(m);
        lethe_model_free(m1);
    }
out:
    lethe_model_free(m0);
    toy_free(&t);
}

/* ------------------------------------------------------- utility budget */

static double held_acc(lethe_model *m, const toy *t, const lethe_subset *s)
{
    double acc = -1;
    if (lethe_model_reserve(m, 256) != LETHE_OK ||
        lethe_eval_accuracy(m, &t->ds, s, 256, &acc, NULL) != LETHE_OK)
        return -1;
    return acc;
}

/* A seeded small case in which the largest ε breaks a 2-point budget and a
 * small one keeps it, so the bisection runs: the chosen ε is the largest
 * kept, and the returned model keeps the budget on the held-out part,
 * measured here independently. */
TEST(budget_search_keeps_the_budget_on_its_probe)
{
    toy t;
    toy_make(&t, 480, 4, 12, 0.38f);
    lethe_model *m0 = toy_model(&t, "mlp", 3);
    CHECK(m0 != NULL);
    if (!m0) goto out;
    lethe_unlearn_config c;
    base_cfg(&c, "eupmu", 24);
    c.lr = 0.16f;
    lethe_budget_config bc;
    lethe_budget_config_default(&bc);
    bc.budget = 2.0;
    bc.holdout = 120;
    bc.eps_lo = 1e-3f;
    bc.eps_hi = 50.0f;
    bc.iters = 4;
    bc.check_every = 4;
    lethe_model *m = toy_clone(m0, &t);
    lethe_budget_result br;
    lethe_unlearn_result res;
    CHECK_OK(lethe_unlearn_budget(m, &t.ds, &t.forget, &t.retain, &c, &bc, &br, &res, NULL, NULL));
    if (!res.trace) goto done;
    CHECK(br.holdout.n == 120);
    CHECK_MSG(br.ntrials == 2 + bc.iters, "%d trials (the ends did not bracket the budget: "
              "first %s, second %s)", br.ntrials, br.trial[0].kept ? "kept" : "broke",
              br.ntrials > 1 && br.trial[1].kept ? "kept" : "broke");
    CHECK(br.feasible && br.reused);
    double best = -1;
    for (int i = 0; i < br.ntrials; i++) {
        const lethe_budget_trial *x = &br.trial[i];
        CHECK(x->eps >= bc.eps_lo * 0.999f && x->eps <= bc.eps_hi);
        CHECK(x->kept == (x->ra_drop <= bc.budget));
        if (x->kept) CHECK(x->steps_run == 24);
        if (x->kept && x->eps > best) best = x->eps;
    }
    CHECK_MSG(br.eps == (float)best, "chose %g, largest kept %g", (double)br.eps, best);
    CHECK(res.steps == 24 && res.eps_used == br.eps);
    /* Independently, on the held-out part: original vs returned model. */
    double ra0 = held_acc(m0, &t, &br.holdout), ra1 = held_acc(m, &t, &br.holdout);
    CHECK_NEAR(ra0, br.ra_orig, 1e-9);
    CHECK_NEAR(ra1, br.ra_final, 1e-9);
    CHECK_MSG(ra0 - ra1 <= bc.budget, "held-out RA dropped %g > %g points", ra0 - ra1, bc.budget);
    /* The held-out samples are retain samples. */
    for (size_t i = 0; i < br.holdout.n; i++) CHECK(t.ds.labels[br.holdout.idx[i]] != 0);
    lethe_unlearn_result_free(&res);
    lethe_budget_result_free(&br);

    /* Shortened trials: a final full run with the chosen ε follows. */
    lethe_model_copy(m, m0);
    bc.trial_steps = 8;
    bc.iters = 1;
    CHECK_OK(lethe_unlearn_budget(m, &t.ds, &t.forget, &t.retain, &c, &bc, &br, &res, NULL, NULL));
    /* A kept ε: a final full run with it; none: the search's shorter runs
     * (verified within budget) or smaller learning rates. */
    if (br.feasible && br.lr == c.lr && br.steps == 24) CHECK(!br.reused && res.steps == 24);
    else CHECK(br.reused && res.steps == br.steps && br.steps <= 8);
    for (int i = 0; i < br.ntrials; i++) CHECK(br.trial[i].steps_run <= 8);
done:
    lethe_unlearn_result_free(&res);
    lethe_budget_result_free(&br);
    lethe_model_free(m);
out:
    lethe_model_free(m0);
    toy_free(&t);
}

/* Checks before early_from·T never stop a trial (the transient dip of the
 * first steps); from there on they do; 1 judges only the final model. */
TEST(budget_early_checks_bind_from_early_from)
{
    toy t;
    toy_make(&t, 480, 4, 12, 0.38f);
    lethe_model *m0 = toy_model(&t, "mlp", 3);
    CHECK(m0 != NULL);
    if (!m0) goto out;
    lethe_unlearn_config c;
    base_cfg(&c, "eupmu", 24);
    c.lr = 0.16f;
    const double from[3] = {0.0, 0.5, 1.0};
    int stopped_early[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        lethe_budget_config bc;
        lethe_budget_config_default(&bc);
        bc.budget = 2.0;
        bc.holdout = 120;
        bc.eps_lo = 1e-3f;
        bc.eps_hi = 50.0f;
        bc.iters = 2;
        bc.check_every = 4;
        bc.early_from = from[k];
        lethe_model *m = toy_clone(m0, &t);
        lethe_budget_result br;
        lethe_unlearn_result res;
        CHECK_OK(lethe_unlearn_budget(m, &t.ds, &t.forget, &t.retain, &c, &bc, &br, &res, NULL,
                                      NULL));
        for (int i = 0; i < br.ntrials; i++) {
            const lethe_budget_trial *x = &br.trial[i];
            if (x->diverged) continue;
            if (x->steps_run < 24) {
                stopped_early[k]++;
                CHECK(!x->kept);
                CHECK_MSG(x->steps_run >= (long)(from[k] * 24),
                          "early_from %g: stopped at step %ld", from[k], x->steps_run);
            }
            if (x->kept) CHECK(x->ra_drop <= bc.budget);
        }
        lethe_unlearn_result_free(&res);
        lethe_budget_result_free(&br);
        lethe_model_free(m);
    }
    CHECK(stopped_early[2] == 0);
    CHECK_MSG(stopped_early[0] > 0, "no trial stopped early with every check binding");
    lethe_budget_config bc;
    lethe_budget_config_default(&bc);
    bc.early_from = 1.5;
    lethe_budget_result br;
    lethe_unlearn_result res;
    CHECK(lethe_unlearn_budget(m0, &t.ds, &t.forget, &t.retain, &c, &bc, &br, &res, NULL, NULL) ==
          LETHE_ERR_ARG);
out:
    lethe_model_free(m0);
    toy_free(&t);
}

/* When no ε keeps the budget at the given learning rate, the search goes
 * on over shorter runs and smaller learning rates; what it returns keeps
 * the budget on the held-out part (measured here independently), or is
 * flagged infeasible. */
TEST(budget_falls_back_to_fewer_steps_and_smaller_lr)
{
    toy t;
    toy_make(&t, 480, 4, 12, 0.38f);
    lethe_model *m0 = toy_model(&t, "mlp", 3);
    CHECK(m0 != NULL);
    if (!m0) goto out;
    lethe_unlearn_config c;
    base_cfg(&c, "eupmu", 24);
    c.lr = 0.64f;
    static const double budgets[] = {1.0, 0.0, 0.0};
    int fell_back = 0;
    for (int k = 0; k < 3; k++) {
        lethe_budget_config bc;
        lethe_budget_config_default(&bc);
        bc.budget = budgets[k];
        bc.holdout = 120;
        bc.eps_lo = 1e-3f;
        bc.eps_hi = 50.0f;
        bc.iters = 2;
        bc.check_every = k < 2 ? 4 : 24;
        if (k == 2) bc.lr_halvings = 0;
        lethe_model *m = toy_clone(m0, &t);
        lethe_budget_result br;
        lethe_unlearn_result res;
        CHECK_OK(lethe_unlearn_budget(m, &t.ds, &t.forget, &t.retain, &c, &bc, &br, &res, NULL,
                                      NULL));
        if (!res.trace) {
            lethe_model_free(m);
            continue;
        }
        double ra0 = held_acc(m0, &t, &br.holdout), ra1 = held_acc(m, &t, &br.holdout);
        double fa = held_acc(m, &t, &t.forget);
        CHECK_NEAR(ra1, br.ra_final, 1e-9);
        CHECK_NEAR(fa, br.forget_acc, 1e-9);
        CHECK(res.steps == br.steps && br.steps >= 1 && br.steps <= 24);
        CHECK(br.lr <= c.lr && br.lr > 0);
        if (br.lr < c.lr || br.steps < 24) fell_back++;
        /* Cases 0 and 1 find a kept run by the fallback; case 2 (only the
         * final check, no smaller learning rate) cannot. */
        CHECK_MSG(br.feasible == (k < 2), "case %d: feasible %d (lr %g, %ld steps, drop %g)", k,
                  br.feasible, (double)br.lr, br.steps, ra0 - ra1);
        if (br.feasible) {
            CHECK_MSG(ra0 - ra1 <= bc.budget, "budget %g: returned a drop of %g points",
                      bc.budget, ra0 - ra1);
        } else {
            /* Nothing kept: every trial broke it, and the returned run
             * drops least among them. */
            for (int i = 0; i < br.ntrials; i++) {
                CHECK(!br.trial[i].kept && br.trial[i].kept_steps == 0);
                if (!br.trial[i].diverged) CHECK(br.trial[i].ra_drop >= ra0 - ra1 - 1e-9);
            }
            CHECK(ra0 - ra1 > bc.budget);
        }
        lethe_unlearn_result_free(&res);
        lethe_budget_result_free(&br);
        lethe_model_free(m);
    }
    CHECK_MSG(fell_back > 0, "the case never needed the fallback (recalibrate the toy)");
    /* Methods without ε, a given ε budget and bad budgets are refused. */
    lethe_budget_config bc;
    lethe_budget_config_default(&bc);
    lethe_budget_result br;
    lethe_unlearn_result res;
    lethe_model *m = toy_clone(m0, &t);
    c.method = "ga";
    CHECK(lethe_unlearn_budget(m, &t.ds, &t.forget, &t.retain, &c, &bc, &br, &res, NULL, NULL) ==
          LETHE_ERR_ARG);
    c.method = "eupmu";
    c.eps_budget = 1.0f;
    CHECK(lethe_unlearn_budget(m, &t.ds, &t.forget, &t.retain, &c, &bc, &br, &res, NULL, NULL) ==
          LETHE_ERR_ARG);
    c.eps_budget = 0.0f;
    const double bad[] = {-0.5, NAN, INFINITY};
    for (int i = 0; i < 3; i++) {
        bc.budget = bad[i];
        CHECK(lethe_unlearn_budget(m, &t.ds, &t.forget, &t.retain, &c, &bc, &br, &res, NULL,
                                   NULL) == LETHE_ERR_ARG);
    }
    lethe_budget_config_default(&bc);
    bc.lr_halvings = 9;
    CHECK(lethe_unlearn_budget(m, &t.ds, &t.forget, &t.retain, &c, &bc, &br, &res, NULL, NULL) ==
          LETHE_ERR_ARG);
    lethe_model_free(m);
out:
    lethe_model_free(m0);
    toy_free(&t);
}

/* ------------------------------------------------------ command line */

/* Scratch files in test_tmpdir()/tradeoff; a tiny MNIST-format data set
 * (as in test_cli.c, every file gzipped). */
#define NTRAIN 300
#define NTEST 100
#define SIDE 28

typedef cli_t_path_buf path_buf;
static const char *tpath(path_buf buf, const char *name)
{
    return cli_t_path(buf, "tradeoff", name);
}

static int run_lethe(const char *args, char **out, char **err)
{
    return cli_t_run("tradeoff", args, out, err);
}

/* The data folder, an original mlp and its Retrain (class 0 left out),
 * made once per run by the first test that asks. */
typedef struct { path_buf dir, model, ref; } fixture_paths;

static int fixture(fixture_paths *f)
{
    static const cli_t_mnist spec = {NTRAIN, NTEST, SIDE, 99, 1, 2, 1, 1};
    if (!cli_t_have_bin() || !cli_t_mkdir("tradeoff")) return 0;
    tpath(f->dir, "mnist");
    tpath(f->model, "orig.safetensors");
    tpath(f->ref, "retrain.safetensors");
    if (cli_t_exists(f->model) && cli_t_exists(f->ref)) return 1;
    CHECK(cli_t_write_mnist(f->dir, &spec));
    char *o, *e, args[4096];
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --epochs 1 "
                 "--batch 32 --quiet --out '%s' %s", f->dir, k ? f->ref : f->model,
                 k ? "--forget class:0" : "");
        int rc = run_lethe(args, &o, &e);
        CHECK_MSG(rc == 0, "lethe train exited %d: %s", rc, e ? e : "");
        free(o);
        free(e);
    }
    return cli_t_exists(f->model) && cli_t_exists(f->ref);
}

static int is_svg(const char *path)
{
    char *b = cli_t_slurp(path, NULL);
    int ok = b && (strncmp(b, "<?xml", 5) == 0 || strncmp(b, "<svg", 4) == 0) && strstr(b, "</svg>");
    free(b);
    return ok;
}

/* Bad input: non-zero exit, one line "lethe …" naming `needle`. */
#define expect_fail(args, needle) \
    cli_t_expect_fail_at(__FILE__, __LINE__, "tradeoff", args, needle, 0)

/* The sweep runs every value (a row each, in the table and the JSON), and
 * writes a PNG and an SVG; lethe table renders the JSON in every format;
 * lethe plot redraws it. */
TEST(tradeoff_cli_sweep_plot_and_table)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf jb, pb, p2b;
    const char *json = tpath(jb, "sweep.json"), *prefix = tpath(pb, "sweep-plot");
    char *o, *e, args[4096], path[400];
    static const double values[] = {0.001, 0.1, 0.5};
    snprintf(args, sizeof args,
             "sweep --model '%s' --forget class:0 --reference '%s' --data mnist --data-dir '%s' "
             "--method eupmu --param eps --values 0.001,0.1,0.5 --compare ungrad,ft --steps 3 "
             "--batch 16 --diagnostics --json '%s' --plot '%s' --quiet",
             f.model, f.ref, f.dir, json, prefix);
    int rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "sweep exited %d: %s", rc, e ? e : "");
    CHECK_MSG(o && strstr(o, "| eupmu eps=0.001 |") && strstr(o, "| eupmu eps=0.1 |") &&
                  strstr(o, "| eupmu eps=0.5 |") && strstr(o, "| ungrad |") &&
                  strstr(o, "| ft |") && strstr(o, "| Retrain |") && strstr(o, "| Original |"),
              "sweep table: %s", o ? o : "");
    free(o);
    free(e);
    snprintf(path, sizeof path, "%s.png", prefix);
    CHECK_MSG(cli_t_is_png(path), "%s is not a PNG", path);
    snprintf(path, sizeof path, "%s.svg", prefix);
    CHECK_MSG(is_svg(path), "%s is not an SVG", path);

    cJSON *root = cli_t_load_json(json);
    CHECK_MSG(root != NULL, "%s is not JSON", json);
    const cJSON *methods = cJSON_GetObjectItemCaseSensitive(root, "methods");
    CHECK(cJSON_GetArraySize(methods) == 5);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, methods) {
        const cJSON *met = cJSON_GetObjectItemCaseSensitive(it, "metrics");
        const cJSON *run = cJSON_GetObjectItemCaseSensitive(it, "run");
        CHECK(cli_t_jnum(met, "UA") >= 0 && cli_t_jnum(met, "RA") <= 100);
        if (i < 3) {
            CHECK_NEAR(cli_t_jnum(it, "sweep_value"), values[i], 1e-12);
            CHECK_NEAR(cli_t_jnum(cJSON_GetObjectItemCaseSensitive(it, "config"), "eps"), values[i], 1e-6);
            /* --diagnostics reached the runs that can have them. */
            CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(run, "diagnostics")));
        } else {
            CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "compare")));
        }
        CHECK(cli_t_jnum(run, "steps") == 3);
        i++;
    }
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "retrain")));
    cJSON_Delete(root);

    /* lethe table, each format. */
    snprintf(args, sizeof args, "table '%s'", json);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0 && o && strstr(o, "| method | UA | RA | TA |") &&
                  strstr(o, "| eupmu eps=0.1 |") && strstr(o, "conflict (%)") &&
                  cli_t_count_lines(o) == 2 + 2 + 5,
              "table markdown: %s %s", o ? o : "", e ? e : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "table '%s' --format latex", json);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0 && o && strstr(o, "\\begin{tabular}") && strstr(o, "\\toprule") &&
                  strstr(o, "eupmu eps=0.5 &") && strstr(o, "\\end{tabular}") &&
                  strstr(o, "Retrain & 100.00"),
              "table latex: %s", o ? o : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "table '%s' --format csv", json);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0 && o && strncmp(o, "method,UA,RA,TA,MIA_Eff,avg_gap", 31) == 0 &&
                  strstr(o, "\neupmu eps=0.001,") && cli_t_count_lines(o) == 1 + 2 + 5,
              "table csv: %s", o ? o : "");
    /* Every CSV row has as many fields as the header. */
    if (o) {
        int fields = -1, ok = 1;
        for (char *line = o; *line;) {
            char *nl = strchr(line, '\n');
            int k = 1;
            for (char *q = line; q < (nl ? nl : line + strlen(line)); q++) k += *q == ',';
            if (fields < 0) fields = k;
            ok &= k == fields;
            line = nl ? nl + 1 : line + strlen(line);
        }
        CHECK_MSG(ok, "CSV rows differ in field count: %s", o);
    }
    free(o);
    free(e);

    /* lethe plot redraws the sweep from its JSON. */
    const char *p2 = tpath(p2b, "sweep-again");
    snprintf(args, sizeof args, "plot '%s' --out '%s'", json, p2);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "plot exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    snprintf(path, sizeof path, "%s.png", p2);
    CHECK(cli_t_is_png(path));
    snprintf(path, sizeof path, "%s.svg", p2);
    CHECK(is_svg(path));

    /* --lambda: λ_t of every run in the sweep, to JSON-less-.json-lambda. */
    snprintf(args, sizeof args, "plot '%s' --lambda", json);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "plot --lambda exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    CHECK(cli_t_is_png(tpath(p2b, "sweep-lambda.png")) && is_svg(tpath(p2b, "sweep-lambda.svg")));
}

/* An unlearn report with diagnostics and the audit: its JSON sums equal the
 * per-step values, and lethe plot draws it to REPORT-less-.json.{png,svg}. */
TEST(tradeoff_cli_report_audit_and_plot)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf rb, pb;
    const char *rep = tpath(rb, "report.json");
    char *o, *e, args[4096], path[400];
    snprintf(args, sizeof args,
             "unlearn --model '%s' --data-dir '%s' --forget class:0 --method eupmu-fast --steps 6 "
             "--batch 16 --diagnostics --audit --audit-probe 40 --quiet --report '%s'",
             f.model, f.dir, rep);
    int rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "unlearn exited %d: %s", rc, e ? e : "");
    CHECK_MSG(o && strstr(o, "diagnostics: <g_u, g_r> < 0 in") && strstr(o, "audit on 40 held-out"),
              "unlearn output: %s", o ? o : "");
    free(o);
    free(e);
    cJSON *root = cli_t_load_json(rep);
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(root, "run");
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(run, "audit");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(run, "trace");
    const cJSON *deltas = cJSON_GetObjectItemCaseSensitive(tr, "audit_delta");
    const cJSON *sums = cJSON_GetObjectItemCaseSensitive(tr, "audit_sum_delta");
    CHECK(cli_t_jnum(aud, "probe") == 40 && cli_t_jnum(aud, "forward_samples") == 40 * 7);
    CHECK(cJSON_GetArraySize(deltas) == 6 && cJSON_GetArraySize(sums) == 6);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tr, "cos")) == 6);
    double s = 0;
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, deltas) {
        s += cJSON_IsNumber(it) ? it->valuedouble : NAN;
        CHECK_NEAR(cJSON_GetArrayItem(sums, k)->valuedouble, s, 1e-5);
        k++;
    }
    CHECK_NEAR(cli_t_jnum(aud, "sum_delta"), s, 1e-5);
    CHECK(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(aud, "bound_held")));
    double share = cli_t_jnum(cJSON_GetObjectItemCaseSensitive(run, "diagnostics"), "conflict_share");
    CHECK(share >= 0 && share <= 1);
    cJSON_Delete(root);

    snprintf(args, sizeof args, "plot '%s'", rep);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0 && o && strstr(o, "wrote"), "plot exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    snprintf(path, sizeof path, "%s", tpath(pb, "report.png"));
    CHECK_MSG(cli_t_is_png(path), "%s is not a PNG", path);
    snprintf(path, sizeof path, "%s", tpath(pb, "report.svg"));
    CHECK_MSG(is_svg(path), "%s is not an SVG", path);
    /* Several reports: their λ_t side by side. */
    snprintf(args, sizeof args, "plot '%s' '%s' --out '%s'", rep, rep, tpath(pb, "two"));
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "plot of two reports exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    CHECK(cli_t_is_png(tpath(pb, "two.png")) && is_svg(tpath(pb, "two.svg")));
    snprintf(args, sizeof args, "table '%s' --format csv", rep);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0 && o && strstr(o, "\neupmu-fast,"), "table of a report: %s", o ? o : "");
    free(o);
    free(e);
}

/* --utility-budget reports its trials and uses what it chose; a budget no
 * run keeps exits 3 with the smallest-drop run saved under a name that
 * says so, and nothing at the name asked for. */
TEST(tradeoff_cli_utility_budget)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf rb, ob, xb;
    const char *rep = tpath(rb, "budget.json");
    const char *out = tpath(ob, "budget-u.safetensors");
    const char *over = tpath(xb, "budget-u.over-budget.safetensors");
    char *o, *e, args[4096];
    for (int strict = 0; strict < 2; strict++) {
        remove(out);
        remove(over);
        snprintf(args, sizeof args,
                 "unlearn --model '%s' --data-dir '%s' --forget class:0 --method eupmu --steps 4 "
                 "--batch 16 --utility-budget %s --budget-holdout 50 --budget-iters 2 --quiet "
                 "--no-eval --force --report '%s' --out '%s'%s", f.model, f.dir,
                 strict ? "0" : "3", rep, out,
                 strict ? " --lr 2 --budget-lr-halvings 0 --budget-check-every 4" : "");
        int rc = run_lethe(args, &o, &e);
        cJSON *root = cli_t_load_json(rep);
        const cJSON *ub = cJSON_GetObjectItemCaseSensitive(root, "utility_budget");
        int feasible = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ub, "feasible"));
        CHECK_MSG(rc == (feasible ? 0 : 3), "budget %s: exit %d, feasible %d: %s",
                  strict ? "0" : "3", rc, feasible, e ? e : "");
        CHECK_MSG(o && strstr(o, "| trial | eps | lr |"), "budget output: %s", o ? o : "");
        const cJSON *trials = cJSON_GetObjectItemCaseSensitive(ub, "trials");
        double chosen = cli_t_jnum(ub, "eps_chosen");
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
        CHECK_NEAR(cli_t_jnum(cfg, "eps"), chosen, 1e-6);
        CHECK_NEAR(cli_t_jnum(cfg, "lr"), cli_t_jnum(ub, "lr_chosen"), 1e-6);
        CHECK_NEAR(cli_t_jnum(cJSON_GetObjectItemCaseSensitive(root, "run"), "eps_used"), chosen,
                   1e-6);
        CHECK(cJSON_GetArraySize(trials) >= 1);
        double fa = cli_t_jnum(ub, "forget_accuracy");
        CHECK(fa >= 0 && fa <= 100);
        double budget = strict ? 0.0 : 3.0;
        const cJSON *t;
        cJSON_ArrayForEach(t, trials) {
            int kept = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "kept"));
            CHECK(kept == (cli_t_jnum(t, "ra_drop") <= budget));
        }
        if (feasible) {
            CHECK(cli_t_jnum(ub, "ra_drop_final") <= budget);
            CHECK(cli_t_exists(out) && !cli_t_exists(over));
        } else {
            CHECK(cli_t_jnum(ub, "ra_drop_final") > budget);
            CHECK_MSG(!cli_t_exists(out) && cli_t_exists(over), "over budget: %s %s, %s %s", out,
                      cli_t_exists(out) ? "written" : "absent", over,
                      cli_t_exists(over) ? "written" : "absent");
            CHECK_MSG(e && cli_t_count_lines(e) == 1 && strstr(e, "over-budget") &&
                      strstr(e, "no run within the search"), "stderr: %s", e ? e : "");
        }
        if (strict) CHECK_MSG(!feasible, "lr 2 with a budget of 0 points was kept (recalibrate)");
        free(o);
        free(e);
        cJSON_Delete(root);
    }
}

TEST(tradeoff_cli_rejects_bad_input)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    char args[4096];
    path_buf jb, nb;
    const char *json = tpath(jb, "bad.json");
    snprintf(args, sizeof args, "sweep --model '%s' --forget class:0 --data-dir '%s' --method eupmu "
             "--param nope --values 1 --json '%s'", f.model, f.dir, json);
    expect_fail(args, "nope");
    CHECK(!cli_t_exists(json));
    snprintf(args, sizeof args, "sweep --model '%s' --forget class:0 --data-dir '%s' --method eupmu "
             "--param eps --values 0.1,x --json '%s'", f.model, f.dir, json);
    expect_fail(args, "'x'");
    snprintf(args, sizeof args, "sweep --model '%s' --forget class:0 --data-dir '%s' --method eupmu "
             "--param eps --values -1 --json '%s'", f.model, f.dir, json);
    expect_fail(args, "eps");
    snprintf(args, sizeof args, "sweep --scenario fmnist-cw --model '%s' --method eupmu --param eps "
             "--values 1", f.model);
    expect_fail(args, "either");
    snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' --forget class:0 --method ga "
             "--utility-budget 1", f.model, f.dir);
    expect_fail(args, "ga");
    snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' --forget class:0 --method ft "
             "--diagnostics", f.model, f.dir);
    expect_fail(args, "diagnostics");
    const char *nj = tpath(nb, "not-results.json");
    FILE *fp = fopen(nj, "w");
    if (fp) {
        fputs("{\"hello\": 1}\n", fp);
        fclose(fp);
    }
    snprintf(args, sizeof args, "table '%s'", nj);
    expect_fail(args, "not-results.json");
    snprintf(args, sizeof args, "table '%s' --format html", nj);
    expect_fail(args, "html");
    snprintf(args, sizeof args, "plot '%s'", nj);
    expect_fail(args, "not-results.json");
    snprintf(args, sizeof args, "plot '%s'", tpath(nb, "missing.json"));
    expect_fail(args, "missing.json");
}

/* bench --seeds: every method over N unlearning seeds, a row of mean ± sd
 * each (its spread in the JSON, every seed's run kept), and lethe table
 * keeps the spread in each format. Bad counts are refused. */
TEST(tradeoff_bench_seeds_spread)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf jb, cb;
    const char *json = tpath(jb, "bench-seeds.json"), *cache = tpath(cb, "bench-cache");
    char *o, *e, args[4096];
    snprintf(args, sizeof args,
             "bench --scenario fmnist-rnd --data-dir '%s' --cache '%s' --epochs 1 "
             "--methods ga,ft --steps 2 --seeds 3 --quiet --report '%s'", f.dir, cache, json);
    int rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "bench --seeds 3 exited %d: %s", rc, e ? e : "");
    CHECK_MSG(o && strstr(o, "mean ± sd over 3 seeds") && strstr(o, "| ga | ") &&
                  strstr(o, "| ft | ") && strstr(o, " ± "),
              "bench --seeds table: %s", o ? o : "");
    free(o);
    free(e);
    cJSON *root = cli_t_load_json(json);
    CHECK_MSG(root != NULL, "%s is not JSON", json);
    const cJSON *methods = cJSON_GetObjectItemCaseSensitive(root, "methods");
    CHECK(cJSON_GetArraySize(methods) == 2);
    const cJSON *it;
    cJSON_ArrayForEach(it, methods) {
        const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(it, "seeds");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "spread");
        CHECK(cJSON_GetArraySize(seeds) == 3 && cli_t_jnum(sp, "n") == 3);
        /* The row's metrics are the means of its seeds', sd the sample one. */
        static const char *keys[] = {"UA", "RA", "TA", "MIA_Eff"};
        for (int k = 0; k < 4; k++) {
            double v[3], m = 0, ss = 0;
            int i = 0;
            const cJSON *s;
            cJSON_ArrayForEach(s, seeds) {
                CHECK_NEAR(cli_t_jnum(s, "seed"), i, 0);
                v[i++ % 3] = cli_t_jnum(cJSON_GetObjectItemCaseSensitive(s, "metrics"), keys[k]);
            }
            for (i = 0; i < 3; i++) m += v[i] / 3;
            for (i = 0; i < 3; i++) ss += (v[i] - m) * (v[i] - m);
            CHECK_NEAR(cli_t_jnum(cJSON_GetObjectItemCaseSensitive(it, "metrics"), keys[k]), m,
                       1e-9);
            CHECK_NEAR(cli_t_jnum(cJSON_GetObjectItemCaseSensitive(sp, "sd"), keys[k]),
                       sqrt(ss / 2), 1e-9);
        }
    }
    cJSON_Delete(root);
    snprintf(args, sizeof args, "table '%s'", json);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0 && o && strstr(o, "| ga | ") && strstr(o, " ± "), "table: %s", o ? o : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "table '%s' --format latex", json);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0 && o && strstr(o, "$\\pm$"), "table latex: %s", o ? o : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "table '%s' --format csv", json);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0 && o && strstr(o, ",UA_sd,") && strstr(o, ",avg_gap_sd"), "table csv: %s",
              o ? o : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "bench --scenario fmnist-rnd --data-dir '%s' --cache '%s' "
             "--seeds 0 --report '%s'", f.dir, cache, json);
    expect_fail(args, "--seeds 0");
    snprintf(args, sizeof args, "bench --scenario fmnist-rnd --data-dir '%s' --cache '%s' "
             "--retrain-seeds --report '%s'", f.dir, cache, json);
    expect_fail(args, "--retrain-seeds");
}
