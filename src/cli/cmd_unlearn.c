/* lethe unlearn: make a trained model forget a set, report metrics, cost
 * and the per-step trace. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/protocol.h"
#include "cli/report.h"
#include "cli/signals.h"
#include "cli/ulopts.h"

static const cli_opt opts[] = {
    CLI_HEADING("model and data"),
    {"task", "NAME", "classification (default) | diffusion: see --task diffusion --help (a "
                     "diffusion checkpoint takes that form by itself)", 0},
    {"model", "FILE", "the trained model (.safetensors; required)", 0},
    {"arch", "NAME", "mlp | cnn | resnet8 | resnet20 | resnet18 | vit-tiny: load a "
                     "checkpoint whose metadata names no architecture (a PyTorch "
                     "state_dict) as this one", 0},
    {"forget", "SPEC", "what to forget (required): class:C[,C…] | random:P% | indices:FILE", 0},
    {"forget-seed", "N", "seed of a random forget set (default 0)", 0},
    {"data", "NAME", "fmnist | mnist | cifar10 | idx[:K] | cifar:K (default: the "
                     "checkpoint's)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    CLI_HEADING("method and its settings (default: eupmu for 5·ceil(|D_f|/batch) steps)"),
    {"epochs", "N", "steps = N·ceil(|D_f|/batch) (instead of --steps)", 0},
    {"match-unseen", "MODE", "forget just enough: auto (default: on for random and listed "
                             "forget sets, off for classes) | on | off; a sample stops being "
                             "forgotten at its unseen-data target loss", 0},
    CLI_UNLEARN_OPTS,
    CLI_HEADING("outputs (name at least one of --out and --report)"),
    {"out", "FILE", "write the unlearned model here", 0},
    {"report", "FILE", "write the JSON report (config, metrics, cost, trace) here; - for "
                       "stdout", 0},
    CLI_HEADING("measurements"),
    {"reference", "FILE", "Retrain checkpoint: add its metrics and the gaps", 0},
    {"before", NULL, "also evaluate the model before unlearning", 1},
    {"no-eval", NULL, "skip the metrics (faster)", 1},
    {"diagnostics", NULL, "record cos(g_u,g_r), conflicts and λ*_t per step (observes: one "
                          "more backward)", 1},
    {"deterministic", NULL, "sum each batch in 2 fixed chunks, so that one process and mpirun "
                            "-np 2 write the same bits (docs/PERFORMANCE.md)", 1},
    {"audit", NULL, "measure ℓ_r per step on a held-out probe of D_r against α_t·ε_t (counted)", 1},
    {"audit-probe", "N", "retain samples in the audit's probe (default 512; implies --audit)", 0},
    CLI_HEADING("utility budget: choose ε by how much held-out accuracy may drop"),
    {"utility-budget", "P", "choose ε (replacing --eps): the largest whose run loses at most P "
                            "points of held-out RA", 0},
    {"budget-holdout", "N", "held-out retain samples of the budget search (default 1000)", 0},
    {"budget-eps-max", "X", "largest ε the search tries (default 0.5)", 0},
    {"budget-eps-min", "X", "smallest ε > 0 the search tries (default 1e-4)", 0},
    {"budget-iters", "N", "bisection trials after the ends (default 5)", 0},
    {"budget-check-every", "K", "steps between held-out checks in a trial (default T/10)", 0},
    {"budget-early-from", "F", "checks from step F·T on may stop a trial early (default 0.5; "
                               "0: every check; 1: only the final model judges)", 0},
    {"budget-trial-steps", "N", "steps of a trial (default: all, then no final run)", 0},
    {"budget-lr-halvings", "N", "when no eps keeps the budget: eps 0 at lr/2, lr/4, … (default "
                                "3); shorter runs are tried from every trial's checks", 0},
    CLI_NOTE("no run within the search keeps the budget: the one with the smallest drop is "
             "saved as OUT.over-budget.safetensors and the exit status is 3"),
    CLI_HEADING("run control"),
    CLI_RUN_OPTS,
    {"quiet", NULL, "print only the results (no progress, no banner)", 1},
    CLI_EXAMPLE("lethe unlearn --model runs/cnn.safetensors --forget class:0 --method eupmu "
                "--out runs/unlearned.safetensors"),
    CLI_EXAMPLE("lethe unlearn --model runs/cnn.safetensors --forget random:10% --method salun "
                "--reference runs/retrain.safetensors --report -"),
    {NULL, NULL, NULL, 0},
};

static void print_budget(const lethe_budget_config *bc, const lethe_budget_result *br)
{
    static const table_col cols[] = {
        TABLE_COL("trial", "%.0f"), TABLE_COL("eps", "%.4g"), TABLE_COL("lr", "%.4g"),
        TABLE_COL("held-out RA", "%.2f"), TABLE_COL("RA drop", "%.2f"),
        TABLE_COL("steps run", "%.0f"), TABLE_COL("within budget", NULL)};
    printf("utility budget %g points of RA on %zu held-out retain samples (original %.2f%%)\n\n",
           bc->budget, br->holdout.n, br->ra_orig);
    table t;
    table_begin(&t, stdout, TABLE_MARKDOWN, cols, 7);
    for (int i = 0; i < br->ntrials; i++) {
        const lethe_budget_trial *tr = &br->trial[i];
        double none = tr->diverged ? NAN : 0;   /* a diverged trial measured nothing */
        table_nums(&t, (const double[]){i + 1, tr->eps, tr->lr, tr->ra + none,
                                        tr->ra_drop + none, (double)tr->steps_run + none}, 6);
        if (tr->diverged) table_text(&t, "broke (diverged)");
        else if (tr->kept || !tr->kept_steps) table_text(&t, "%s", tr->kept ? "kept" : "broke");
        else table_text(&t, "broke; kept up to step %ld (drop %.2f)", tr->kept_steps,
                        br->ra_orig - tr->kept_ra);
        table_end_row(&t);
    }
    printf("\n%s eps = %.4g, lr %.4g, %ld steps; held-out RA drop %.2f points; accuracy on the "
           "forget set %.2f%% (UA %.2f); %s\n", br->feasible ? "chosen" : "OVER BUDGET, the "
           "smallest drop:", (double)br->eps, (double)br->lr, br->steps, br->ra_drop_final,
           br->forget_acc, 100.0 - br->forget_acc,
           br->reused ? "the final model is the chosen trial's run"
                      : "final run with the chosen eps");
    printf("search cost: %d trials, %.0f forward / %.0f backward samples, %.1f s\n\n",
           br->ntrials, (double)br->fwd_samples, (double)br->bwd_samples, br->seconds);
}

void cli_print_diagnostics(const lethe_unlearn_result *r)
{
    if (r->diag_steps > 0) {
        printf("diagnostics: <g_u, g_r> < 0 in %.1f%% of %ld steps, mean cos(g_u, g_r) %.3f",
               100.0 * r->conflict_share, r->diag_steps, r->mean_cos);
        if (isfinite(r->mean_lambda_gap)) printf(", mean |lambda - lambda*| %.4g", r->mean_lambda_gap);
        printf("\n");
    }
    if (r->audit_probe_n > 0) {
        printf("audit on %d held-out retain samples (%.0f forward passes): sum of changes of the "
               "retain loss %.4g", r->audit_probe_n, (double)r->audit_fwd_samples / r->batch,
               r->audit_sum_delta);
        if (isfinite(r->audit_sum_allowed)) {
            printf(", allowed %.4g: ", r->audit_sum_allowed);
            if (r->audit_first_violation < 0) printf("bound held at every step\n");
            else printf("bound broken first at step %ld\n", r->audit_first_violation + 1);
        } else {
            printf(" (no eps: no bound)\n");
        }
    }
}

int cmd_unlearn(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "unlearn", "--model FILE --forget SPEC (--out FILE | --report FILE) [--method NAME] "
                      "[options]", opts,
                      argc, argv);
    if (r) return r == 1 ? 0 : 2;
    /* --task diffusion went to the generation commands (main.c). */
    if (cli_str(&a, "task", NULL) && strcmp(cli_str(&a, "task", NULL), "classification") != 0)
        return cli_usage_error("unlearn", "--task: unknown '%s' (classification, diffusion)",
                               cli_str(&a, "task", NULL));
    const char *path = cli_str(&a, "model", NULL), *fspec = cli_str(&a, "forget", NULL);
    if (!path) return cli_usage_error("unlearn", "--model FILE is required");
    if (!fspec) return cli_usage_error("unlearn", "--forget SPEC is required");
    lethe_unlearn_config cfg;
    lethe_unlearn_config_default(&cfg);
    cfg.diagnostics = cli_flag(&a, "diagnostics");
    cfg.deterministic = cli_flag(&a, "deterministic");
    cfg.audit = cli_flag(&a, "audit") || cli_str(&a, "audit-probe", NULL);
    if ((r = cli_unlearn_config(&a, &cfg))) return r;
    long epochs, fseed, probe, bhold, biters, bcheck, bsteps, bhalv;
    double bpoints, bmax, bmin, bearly;
    lethe_budget_config bc;
    lethe_budget_config_default(&bc);
    if (cli_int(&a, "epochs", 0, 0, 100000, &epochs) ||
        cli_int(&a, "forget-seed", 0, 0, LONG_MAX, &fseed) ||
        cli_int(&a, "audit-probe", cfg.audit_probe, 1, 1000000, &probe) ||
        cli_float(&a, "utility-budget", 0, 0, 100, &bpoints) ||
        cli_int(&a, "budget-holdout", bc.holdout, 1, 10000000, &bhold) ||
        cli_float(&a, "budget-eps-max", bc.eps_hi, 1e-9, 1e6, &bmax) ||
        cli_float(&a, "budget-eps-min", bc.eps_lo, 1e-9, 1e6, &bmin) ||
        cli_int(&a, "budget-iters", bc.iters, 0, 24, &biters) ||
        cli_int(&a, "budget-lr-halvings", bc.lr_halvings, 0, 6, &bhalv) ||
        cli_int(&a, "budget-check-every", 0, 0, 100000000, &bcheck) ||
        cli_float(&a, "budget-early-from", bc.early_from, 0, 1, &bearly) ||
        cli_int(&a, "budget-trial-steps", 0, 0, 100000000, &bsteps))
        return 2;
    cfg.audit_probe = (int)probe;
    int use_budget = cli_str(&a, "utility-budget", NULL) != NULL;
    bc.budget = bpoints;
    bc.holdout = (int)bhold;
    bc.eps_hi = (float)bmax;
    bc.eps_lo = (float)bmin;
    bc.iters = (int)biters;
    bc.lr_halvings = (int)bhalv;
    bc.check_every = bcheck;
    bc.early_from = bearly;
    bc.trial_steps = bsteps;
    if (use_budget && !lethe_method_uses_eps(cfg.method))
        return cli_usage_error("unlearn", "--utility-budget: method %s has no eps to choose "
                               "(eupmu, eupmu-fast, eupmu-lookahead, ungrad, ungrad-mixed)",
                               cfg.method);
    if (use_budget && !(bc.eps_lo < bc.eps_hi))
        return cli_usage_error("unlearn", "--budget-eps-min %g must be below --budget-eps-max %g",
                               (double)bc.eps_lo, (double)bc.eps_hi);
    if (use_budget && cfg.eps_budget > 0)
        return cli_usage_error("unlearn", "--utility-budget chooses eps: drop --eps-budget");
    lethe_forget_spec spec;
    if ((r = cli_forget_parse("unlearn", "--forget", fspec, &spec))) return r;
    if (cli_str(&a, "data", NULL) && (r = cli_check_data("unlearn", cli_str(&a, "data", NULL))))
        return r;
    if (cli_str(&a, "arch", NULL) && (r = cli_check_arch("unlearn", cli_str(&a, "arch", NULL))))
        return r;
    int quiet = cli_flag(&a, "quiet");
    const char *out = cli_str(&a, "out", NULL), *rep = cli_str(&a, "report", NULL);
    const char *refpath = cli_str(&a, "reference", NULL);
    if ((out && (r = cli_check_named_output(&a, "out", out))) ||
        (rep && (r = cli_check_named_output(&a, "report", rep))))
        return r;
    /* Under a budget no run keeps, the best run is saved under a name that
     * says so (checked now, like any output). */
    char over[4096];
    if (use_budget && out) {
        const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
        size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - out) : strlen(out);
        snprintf(over, sizeof over, "%.*s.over-budget%s", (int)stem, out, out + stem);
        if (strcmp(out, "-") != 0 && (r = cli_check_named_output(&a, "out", over))) return r;
    }
    /* The ε search runs many trials: it is not checkpointed. */
    cli_run run;
    if ((r = use_budget ? cli_run_off(&run, &a, "--utility-budget runs")
                        : cli_run_setup(&run, &a, out, rep)))
        return r;

    int rc = 1;
    lethe_model *m = NULL, *ref = NULL;
    lethe_metadata md = {0};
    cli_split sp = {0};
    int have_split = 0;
    lethe_unlearn_result res = {0};
    lethe_budget_result br = {0};
    cJSON *root = NULL;
    const char *arch = cli_str(&a, "arch", NULL);
    lethe_status st = cli_open_model_as(path, arch, cli_str(&a, "data", NULL),
                                        cli_str(&a, "data-dir", NULL), &m, &md);
    if (st != LETHE_OK) goto fail;
    if (lethe_model_out_size(m) != (size_t)lethe_model_nclass(m)) {
        cli_error("unlearn", "%s: a diffusion model (%s): use lethe unlearn --task diffusion",
                  path, lethe_model_arch(m));
        goto done;
    }
    /* A run that keeps nothing is a command line to change, not work to do
     * (checked once the model is known: a diffusion model is the first
     * thing to say). */
    if (!out && !rep) {
        rc = cli_usage_error("unlearn", "nothing would be kept of this run: name --out FILE "
                             "(the unlearned model) or --report FILE (the JSON report; - for "
                             "stdout)");
        goto done;
    }
    const char *data = cli_str(&a, "data", lethe_meta_get(&md, "dataset"));
    if ((st = cli_split_load_for(&sp, m, data ? data : "fmnist", cli_str(&a, "data-dir", NULL),
                                 fspec, (uint64_t)fseed)) != LETHE_OK)
        goto fail;
    have_split = 1;
    if (cli_check_model_data("unlearn", path, &md, m, &sp.train)) goto done;
    if (refpath) {
        lethe_metadata rmd = {0};
        if ((st = cli_open_model_as(refpath, arch, data, cli_str(&a, "data-dir", NULL), &ref,
                                    &rmd)) != LETHE_OK)
            goto fail;
        if (strcmp(lethe_model_arch(ref), lethe_model_arch(m)) != 0) {
            cli_error("unlearn", "%s: reference is a %s, the model a %s", refpath,
                      lethe_model_arch(ref), lethe_model_arch(m));
            goto done;
        }
    }
    if (epochs) cfg.steps = epochs * (long)((sp.forget.n + (size_t)cfg.batch - 1) / (size_t)cfg.batch);
    if (cli_split_match(&sp, cli_str(&a, "match-unseen", "auto"), 0) != LETHE_OK) {
        cli_usage_error("unlearn", "%s", lethe_last_error());
        goto done;
    }
    cli_split_unseen(&sp, &cfg);
    int do_eval = !cli_flag(&a, "no-eval");
    lethe_metrics before = {0}, after = {0}, mref = {0};
    if (do_eval && cli_flag(&a, "before") &&
        (st = cli_split_metrics(&sp, m, cfg.seed, &before)) != LETHE_OK)
        goto fail;
    if (!quiet)
        fprintf(stderr, "unlearning %s from %s (%s): %zu to forget, %zu to keep, method %s\n",
                sp.spec_text, path, lethe_model_arch(m), sp.forget.n, sp.retain.n, cfg.method);
    cli_progress prog;
    cli_progress_init(&prog, cfg.method);
    if (use_budget) {
        st = lethe_unlearn_budget(m, &sp.train, &sp.forget, &sp.retain, &cfg, &bc, &br, &res,
                                  quiet ? NULL : cli_progress_cb, &prog);
        if (!quiet) cli_progress_done(&prog);
        if (st != LETHE_OK) goto fail;
        cfg.eps = br.eps;
        cfg.lr = br.lr;
        cfg.steps = br.steps;
        print_budget(&bc, &br);
        if (!br.feasible && out && strcmp(out, "-") != 0) out = over;
    } else {
        cli_run_begin(&run);
        st = lethe_unlearn_run(m, &sp.train, &sp.forget, &sp.retain, &cfg, &run.ctl, &res,
                               quiet ? NULL : cli_progress_cb, &prog);
        if (!quiet) cli_progress_done(&prog);
        if ((rc = cli_run_end(&run, "unlearn", st))) goto done;
        rc = 1;
        if (st != LETHE_OK) goto fail;
    }
    if (do_eval && (st = cli_split_metrics(&sp, m, cfg.seed, &after)) != LETHE_OK) goto fail;
    if (do_eval && ref && (st = cli_split_metrics(&sp, ref, cfg.seed, &mref)) != LETHE_OK)
        goto fail;

    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", path);
    cJSON_AddItemToObject(root, "config", report_config(&cfg, sp.spec_text));
    cJSON_AddItemToObject(root, "run", report_run(&res, 1));
    if (use_budget) cJSON_AddItemToObject(root, "utility_budget", report_budget(&bc, &br));
    if (do_eval) {
        cJSON_AddItemToObject(root, "metrics", report_metrics(&after));
        if (cli_flag(&a, "before")) cJSON_AddItemToObject(root, "metrics_before", report_metrics(&before));
        if (ref) {
            cJSON_AddItemToObject(root, "reference", report_metrics(&mref));
            cJSON_AddNumberToObject(root, "avg_gap", lethe_avg_gap(&after, &mref));
        }
        table t;
        proto_table_begin(&t, "model");
        if (cli_flag(&a, "before"))
            proto_table_row(&t, "original", &before, ref ? lethe_avg_gap(&before, &mref) : NAN,
                            -1, NULL);
        proto_table_row(&t, cfg.method, &after, ref ? lethe_avg_gap(&after, &mref) : NAN,
                        res.seconds, &res);
        if (ref) proto_table_row(&t, "retrain", &mref, lethe_avg_gap(&mref, &mref), -1, NULL);
    } else {
        printf("%s: %ld steps in %.1f s, %.0f forward / %.0f backward passes\n", cfg.method,
               res.steps, res.seconds, (double)res.fwd_samples / res.batch,
               (double)res.bwd_samples / res.batch);
    }
    cli_print_diagnostics(&res);
    /* An output "-" has standard output to itself: the table goes to stderr
     * until the file is written (cli_check_named_output). */
    if (out) cli_stdout_restore(out);
    if (out && (st = cli_save_unlearned(m, &md, &cfg, sp.spec_text, path, out)) != LETHE_OK)
        goto fail;
    if (rep && (st = report_write(rep, root)) != LETHE_OK) goto fail;
    cli_run_finish(&run);
    rc = 0;
    if (use_budget && !br.feasible) {
        cli_error("unlearn", "no run within the search kept the utility budget of %g points (the "
                  "smallest drop: %.2f points, eps %g, lr %g, %ld steps)%s%s", bc.budget,
                  br.ra_drop_final, (double)br.eps, (double)br.lr, br.steps,
                  out ? "; that run is saved as " : "", out ? out : "");
        rc = 3;
    }
    goto done;
fail:
    rc = cli_run_fail(&run, "unlearn", st);
done:
    cJSON_Delete(root);
    lethe_unlearn_result_free(&res);
    lethe_budget_result_free(&br);
    if (have_split) cli_split_free(&sp);
    lethe_model_free(m);
    lethe_model_free(ref);
    return rc;
}
