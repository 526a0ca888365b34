/* lethe unlearn --task diffusion: make a class-conditional DDPM forget
 * classes (ℓ_r the denoising loss on the other classes, ℓ_u `rl` or `ga`,
 * ALGORITHM.md §5), then measure it with a classifier (UA_gen, accuracy on
 * the retained classes, FD-cls) and draw before/after samples. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/gen.h"
#include "core/fail.h"
#include "cli/protocol.h"
#include "cli/report.h"
#include "cli/signals.h"
#include "cli/ulopts.h"

static const cli_opt opts[] = {
    {"task", "NAME", "diffusion", 0},
    {"model", "FILE", "the trained diffusion model (.safetensors)", 0},
    {"forget", "SPEC", "class:C[,C…]", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    {"epochs", "N", "steps = N·ceil(|D_f|/batch) (instead of --steps)", 0},
    {"match-unseen", "MODE", "auto | off (forgetting just enough applies to classifiers; "
                             "on is refused here)", 0},
    CLI_UNLEARN_OPTS,
    {"p-uncond", "X", "retain rows trained without their class, as in training (default 0.1)", 0},
    {"classifier", "FILE", "classifier for the metrics (without it: no metrics)", 0},
    {"before", NULL, "also measure the model before unlearning", 1},
    {"diagnostics", NULL, "record cos(g_u,g_r), conflicts and λ*_t per step (observes: one "
                          "more backward)", 1},
    {"n", "N", "generated images per retained class for the metrics (default 200)", 0},
    {"n-forget", "N", "generated images of each forgotten class, for UA_gen (default 500)", 0},
    {"tuned", "FILE", "defaults from this file's fmnist-ddpm-cw entries (default: "
                      "configs/tuned.json of the tree; 'none': the library's)", 0},
    {"sampler", "NAME", "ddim | ancestral (default ddim)", 0},
    {"steps-sample", "N", "sampling steps (default 50)", 0},
    {"eta", "X", "DDIM noise (default 0)", 0},
    {"guidance", "W", "classifier-free guidance scale (default 2)", 0},
    {"grid", "FILE", "PNG: a row per class, 8 samples before | 8 after (same noise)", 0},
    {"out", "FILE", "write the unlearned model here", 0},
    {"report", "FILE", "write the JSON report (config, run, trace, metrics) here", 0},
    CLI_RUN_OPTS,
    {"quiet", NULL, "no progress on stderr", 1},
    {NULL, NULL, NULL, 0},
};

/* Samples of every class, grid_n each, from a fixed noise seed. */
static lethe_status sample_rows(lethe_model *m, const lethe_ddpm *s, const lethe_sample_config *sc,
                                int grid_n, float *x)
{
    int nclass = lethe_model_nclass(m), c, h, w;
    lethe_model_input_shape(m, &c, &h, &w);
    lethe_ddpm_sampler ws = {0};
    lethe_status st = lethe_model_reserve(m, 2 * grid_n);
    if (st == LETHE_OK) st = lethe_ddpm_sampler_init(&ws, grid_n, c * h * w);
    for (int k = 0; k < nclass && st == LETHE_OK; k++)
        st = lethe_gen_sample_class(m, s, sc, &ws, k, grid_n, 0,
                                    x + (size_t)k * grid_n * c * h * w);
    lethe_ddpm_sampler_free(&ws);
    return st;
}

int cmd_unlearn_diffusion(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "unlearn", "--task diffusion --model FILE --forget class:C --method NAME "
                      "[options]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *path = cli_str(&a, "model", NULL), *fspec = cli_str(&a, "forget", NULL);
    if (!path) return cli_usage_error("unlearn", "--model FILE is required");
    if (!fspec) return cli_usage_error("unlearn", "--forget class:C is required");
    const char *match = cli_str(&a, "match-unseen", "auto");
    if (strcmp(match, "on") == 0)
        return cli_usage_error("unlearn", "--match-unseen on: a diffusion model forgets a class "
                               "and has no per-sample class loss to match to unseen data");
    if (strcmp(match, "auto") && strcmp(match, "off"))
        return cli_usage_error("unlearn", "--match-unseen %s: expected auto, on or off", match);
    char tbuf[4096];
    const char *tuned = cli_str(&a, "tuned", NULL);
    if (!(tuned && strcmp(tuned, "none") == 0) &&
        !(tuned = cli_settings_path("unlearn", tuned, tbuf, sizeof tbuf)))
        return 2;
    lethe_unlearn_config cfg;
    lethe_unlearn_config_default(&cfg);
    const char *out = cli_str(&a, "out", NULL), *rep = cli_str(&a, "report", NULL);
    long epochs, ssteps;
    double pu;
    if (cli_int(&a, "epochs", 0, 0, 100000, &epochs) ||
        cli_float(&a, "p-uncond", 0.1, 0, 1, &pu) ||
        cli_int(&a, "steps-sample", 50, 1, 100000, &ssteps))
        return 2;
    lethe_gen_eval_config ec;
    if ((r = gen_eval_opts(&a, "unlearn", &ec)) != 0) return r;
    ec.sample.steps = (int)ssteps;
    /* Counts that can tell (issue 13): UA_gen on 500 images, ±2 points. */
    if (!cli_str(&a, "n", NULL)) ec.per_class = 200;
    if (!cli_str(&a, "n-forget", NULL)) ec.per_forget = 500;
    lethe_forget_spec spec;
    if ((r = cli_forget_parse("unlearn", "--forget", fspec, &spec))) return r;
    if (spec.kind != LETHE_FORGET_CLASS)
        return cli_usage_error("unlearn", "--forget: a diffusion model forgets classes (class:C), "
                               "not '%s'", fspec);
    const char *grid = cli_str(&a, "grid", NULL), *cpath = cli_str(&a, "classifier", NULL);
    if ((out && (r = cli_check_named_output(&a, "out", out))) ||
        (rep && (r = cli_check_named_output(&a, "report", rep))) ||
        (grid && (r = cli_check_named_output(&a, "grid", grid))))
        return r;
    cli_run run;
    if ((r = cli_run_setup(&run, &a, out, rep))) return r;

    int rc = 1;
    lethe_model *m = NULL, *clf = NULL;
    lethe_metadata md = {0}, cmd_ = {0};
    lethe_ddpm s = {0};
    cli_split sp = {0};
    int have_split = 0;
    lethe_unlearn_result res = {0};
    cJSON *root = NULL;
    float *gbefore = NULL, *gafter = NULL, *tiles = NULL;
    lethe_status st = gen_open(path, &m, &md, &s);
    if (st != LETHE_OK) return cli_lib_error("unlearn", st);
    cfg.ddpm = &s;
    cfg.p_uncond = (float)pu;
    if (ec.sample.steps > s.T) {
        rc = cli_usage_error("unlearn", "--steps-sample %d: %s has a schedule of T = %d steps",
                             ec.sample.steps, path, s.T);
        goto done;
    }
    /* The tuned settings of the diffusion scenario are the defaults; every
     * option given overrides them. */
    cfg.method = cli_str(&a, "method", cfg.method);
    if ((r = proto_check_method("unlearn", "--method", cfg.method,
                                strcmp(tuned, "none") != 0 ? tuned : NULL, "fmnist-ddpm-cw"))) {
        rc = r;
        goto done;
    }
    int tuned_used = strcmp(tuned, "none") != 0 && access(tuned, R_OK) == 0;
    if (tuned_used && (st = proto_tuned(tuned, "fmnist-ddpm-cw", cfg.method, &cfg)) != LETHE_OK) {
        rc = cli_lib_error("unlearn", st);
        goto done;
    }
    if ((r = cli_unlearn_options(&a, &cfg))) {
        rc = r;
        goto done;
    }
    cfg.diagnostics = cli_flag(&a, "diagnostics");
    if (!out && !rep) {
        rc = cli_usage_error("unlearn", "nothing would be kept of this run: name --out FILE (the "
                             "model) or --report FILE (the metrics; - for stdout), or both");
        goto done;
    }
    int quiet = cli_flag(&a, "quiet");
    if (strcmp(tuned, "none") != 0) cli_settings_note("unlearn", tuned, quiet);
    const char *data = lethe_meta_get(&md, "dataset");
    if ((st = cli_split_load(&sp, data ? data : "fmnist", cli_str(&a, "data-dir", NULL), fspec,
                             0)) != LETHE_OK)
        goto fail;
    have_split = 1;
    if (cli_check_model_data("unlearn", path, &md, m, &sp.train)) goto done;
    if (cpath && (st = cli_open_model(cpath, &clf, &cmd_)) != LETHE_OK) goto fail;
    if (epochs) cfg.steps = epochs * (long)((sp.forget.n + (size_t)cfg.batch - 1) / (size_t)cfg.batch);
    int nclass = lethe_model_nclass(m), c, h, w, gn = 8;
    lethe_model_input_shape(m, &c, &h, &w);
    size_t d = (size_t)c * h * w;
    lethe_gen_metrics before = {0}, after = {0};
    if (grid) {
        gbefore = malloc((size_t)nclass * gn * d * sizeof(float));  /* (nclass·8, d) */
        gafter = malloc((size_t)nclass * gn * d * sizeof(float));   /* (nclass·8, d) */
        tiles = malloc((size_t)nclass * 2 * gn * d * sizeof(float)); /* (nclass·16, d) */
        if (!gbefore || !gafter || !tiles) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for the grid");
            goto fail;
        }
        if ((st = sample_rows(m, &s, &ec.sample, gn, gbefore)) != LETHE_OK) goto fail;
    }
    if (clf && cli_flag(&a, "before")) {
        if (!quiet) fprintf(stderr, "measuring the model before unlearning (%d images per class)...\n",
                ec.per_class);
        if ((st = lethe_gen_evaluate(m, &s, clf, &sp.test, spec.class_mask, &ec, &before, NULL)) !=
            LETHE_OK)
            goto fail;
    }
    if (!quiet) fprintf(stderr, "unlearning %s from %s (%s diffusion): %zu to forget, %zu to keep, method %s\n",
            sp.spec_text, path, lethe_model_arch(m), sp.forget.n, sp.retain.n, cfg.method);
    cli_progress prog;
    cli_progress_init(&prog, cfg.method);
    cli_run_begin(&run);
    st = lethe_unlearn_run(m, &sp.train, &sp.forget, &sp.retain, &cfg, &run.ctl, &res,
                           quiet ? NULL : cli_progress_cb, &prog);
    if (!quiet) cli_progress_done(&prog);
    if ((rc = cli_run_end(&run, "unlearn", st))) goto done;
    if (st != LETHE_OK) goto fail;
    if (clf) {
        if (!quiet) fprintf(stderr, "measuring the unlearned model (%d images per class)...\n", ec.per_class);
        ec.floor_set = &sp.train;   /* the FD-cls floor, once: it does not depend on the model */
        if ((st = lethe_gen_evaluate(m, &s, clf, &sp.test, spec.class_mask, &ec, &after, NULL)) !=
            LETHE_OK)
            goto fail;
    }
    if (grid) {
        if ((st = sample_rows(m, &s, &ec.sample, gn, gafter)) != LETHE_OK) goto fail;
        for (int k = 0; k < nclass; k++) {
            memcpy(tiles + (size_t)k * 2 * gn * d, gbefore + (size_t)k * gn * d,
                   (size_t)gn * d * sizeof(float));
            memcpy(tiles + ((size_t)k * 2 + 1) * gn * d, gafter + (size_t)k * gn * d,
                   (size_t)gn * d * sizeof(float));
        }
        cli_stdout_restore(grid);
        if ((st = lethe_png_write_grid(grid, tiles, nclass * 2 * gn, h, w, 2 * gn, -1.0f, 1.0f)) !=
            LETHE_OK)
            goto fail;
        if (!quiet) fprintf(stderr, "wrote %s (a row per class: 8 before | 8 after, same noise)\n", grid);
    }
    if (out) cli_stdout_restore(out);
    if (out && (st = cli_save_unlearned(m, &md, &cfg, sp.spec_text, path, out)) != LETHE_OK)
        goto fail;
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", path);
    cJSON_AddStringToObject(root, "task", "diffusion");
    cJSON_AddItemToObject(root, "config", report_config(&cfg, sp.spec_text));
    cJSON_AddItemToObject(root, "run", report_run(&res, 1));
    if (clf) {
        cJSON_AddStringToObject(root, "classifier", cpath);
        cJSON_AddItemToObject(root, "metrics", gen_metrics_json(&after, &ec));
        if (cli_flag(&a, "before"))
            cJSON_AddItemToObject(root, "metrics_before", gen_metrics_json(&before, &ec));
        gen_print_table(cli_flag(&a, "before") ? "original" : NULL, &before, cfg.method, &after);
    }
    printf("%s: %ld steps in %.1f s, %.0f forward / %.0f backward passes of %d images\n",
           cfg.method, res.steps, res.seconds, (double)res.fwd_samples / res.batch,
           (double)res.bwd_samples / res.batch, res.batch);
    cli_print_diagnostics(&res);
    if (rep && (st = report_write(rep, root)) != LETHE_OK) goto fail;
    cli_run_finish(&run);
    rc = 0;
    goto done;
fail:
    rc = cli_run_fail(&run, "unlearn", st);
done:
    cJSON_Delete(root);
    free(gbefore);
    free(gafter);
    free(tiles);
    lethe_unlearn_result_free(&res);
    if (have_split) cli_split_free(&sp);
    lethe_model_free(m);
    lethe_model_free(clf);
    lethe_ddpm_free(&s);
    return rc;
}
