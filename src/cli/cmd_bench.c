/* lethe bench: the whole protocol of a scenario in one command — the
 * original and Retrain models (trained once, then cached), every method
 * with its tuned settings, the table of PROTOCOL.md and a JSON file. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli/protocol.h"
#include "cli/report.h"
#include "io/paths.h"

static const cli_opt opts[] = {
    CLI_HEADING("scenario (required)"),
    {"scenario", "NAME", "fmnist-cw | fmnist-rnd | fmnist-ddpm-cw", 0},
    CLI_NOTE("fmnist-cw: forget class 0 (T-shirt/top) of Fashion-MNIST from a cnn."),
    CLI_NOTE("fmnist-rnd: forget a random 10% of Fashion-MNIST's training images from a cnn."),
    CLI_NOTE("fmnist-ddpm-cw: forget class 0 from a class-conditional DDPM (unet); its own "
             "options: lethe bench --scenario fmnist-ddpm-cw --help."),
    CLI_HEADING("methods"),
    {"methods", "LIST", "comma-separated methods (default: every method that runs on "
                        "classifiers, as `lethe help unlearn` lists them)", 0},
    {"tuned", "FILE", "tuned settings (default: configs/tuned.json beside the program, "
                      "else in the current folder)", 0},
    {"steps", "N", "override every method's step count (default: 5·ceil(|D_f|/128))", 0},
    {"match-unseen", "MODE", "forget just enough: auto (default: on for fmnist-rnd, off for "
                             "fmnist-cw) | on | off (lethe unlearn --help)", 0},
    {"diagnostics", NULL, "record cos(g_u, g_r), conflicts and |λ − λ*| for the surgery methods", 1},
    CLI_HEADING("original and Retrain models"),
    {"cache", "DIR", "cached original/Retrain models (default runs/cache)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    {"epochs", "N", "epochs of the original/Retrain recipe (default 8)", 0},
    {"seed", "N", "seed (default 0)", 0},
    {"forget-seed", "N", "fmnist-rnd: seed of the random forget set (default: --seed); another "
                         "draw trains its own Retrain", 0},
    CLI_HEADING("outputs"),
    {"report", "FILE", "results as JSON (default runs/bench-SCENARIO.json); - for stdout", 0},
    {"quiet", NULL, "print only the table (no progress, no settings or 'wrote' lines)", 1},
    CLI_EXAMPLE("lethe bench --scenario fmnist-cw"),
    CLI_EXAMPLE("lethe bench --scenario fmnist-rnd --methods eupmu,salun,ft --report -"),
    {NULL, NULL, NULL, 0},
};

/* Every scenario of bench and tune: fmnist-ddpm-cw went to cmd_gen_bench.c
 * (main.c), so here it can only be misspelt. */
static const char *const bench_scenarios[] = {"fmnist-cw", "fmnist-rnd", "fmnist-ddpm-cw"};

/* Every registered method that runs on classifiers, in registry order. */
static const char *default_methods(char *buf, size_t n)
{
    int nm;
    const char *const *names = lethe_methods(&nm);
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < nm && at < n; i++)
        if (lethe_method_classifies(names[i]))
            at += (size_t)snprintf(buf + at, n - at, "%s%s", at ? "," : "", names[i]);
    return buf;
}

int cmd_bench(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "bench", "--scenario NAME [options]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *scn = cli_str(&a, "scenario", NULL);
    if (!scn)
        return cli_usage_error("bench", "--scenario NAME is required (fmnist-cw, fmnist-rnd, "
                               "fmnist-ddpm-cw)");
    const proto_scenario *sc = proto_find(scn);
    if (!sc) return cli_unknown_choice("bench", "scenario", scn, bench_scenarios, 3);
    long epochs, seed, steps, fseed;
    if (cli_int(&a, "epochs", 8, 1, 1000, &epochs) || cli_int(&a, "seed", 0, 0, LONG_MAX, &seed) ||
        cli_int(&a, "steps", 0, 0, 10000000, &steps) ||
        cli_int(&a, "forget-seed", seed, 0, LONG_MAX, &fseed))
        return 2;
    const char *match = cli_str(&a, "match-unseen", "auto");
    if (strcmp(match, "auto") && strcmp(match, "on") && strcmp(match, "off"))
        return cli_usage_error("bench", "--match-unseen %s: expected auto, on or off", match);
    if (strcmp(match, "on") == 0 && strcmp(scn, "fmnist-cw") == 0)
        return cli_usage_error("bench", "--match-unseen on: fmnist-cw forgets a class; Retrain "
                               "recognises none of a class it never saw, so unseen data is not "
                               "the target there");
    if (fseed != seed && strcmp(scn, "fmnist-rnd") != 0)
        return cli_usage_error("bench", "--forget-seed: %s forgets a class, which no seed draws",
                               scn);
    int quiet = cli_flag(&a, "quiet");
    char tbuf[4096];
    const char *tuned = cli_settings_path("bench", cli_str(&a, "tuned", NULL), tbuf, sizeof tbuf);
    if (!tuned) return 2;
    char jdef[256];
    snprintf(jdef, sizeof jdef, "runs/bench-%s.json", scn);
    const char *json = cli_str(&a, "report", jdef);
    const char *cache = cli_str(&a, "cache", "runs/cache");
    char mlist[1024];
    char every[1024];
    snprintf(mlist, sizeof mlist, "%s",
             cli_str(&a, "methods", default_methods(every, sizeof every)));

    /* Check every method's settings before any work is done. */
    char *save, *tok;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", mlist);
    for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        lethe_unlearn_config cfg;
        lethe_unlearn_config_default(&cfg);
        cfg.method = tok;
        if ((r = proto_check_method("bench", "--methods", tok, tuned, scn))) return r;
        /* A broken settings file is a runtime error (1); an unknown method
         * or setting, the command line's (2). */
        lethe_status st = proto_tuned(tuned, scn, tok, &cfg);
        if (st != LETHE_OK) return cli_lib_error("bench", st);
        if ((st = lethe_unlearn_validate(&cfg)) != LETHE_OK)
            return cli_lib_error("bench", st) + 1;
    }
    if (strncmp(json, "runs/", 5) == 0 && io_mkdir_parent(json) != 0)
        return cli_error("bench", "%s: cannot create its folder: %s", json, strerror(errno));
    if (cli_str(&a, "report", NULL) ? (r = cli_check_named_output(&a, "report", json)) != 0
                                  : (r = cli_check_output("bench", NULL, json)) != 0)
        return r;

    cli_settings_note("bench", tuned, quiet);
    proto_ctx p;
    lethe_status st = proto_open_draw(&p, sc, cache, cli_str(&a, "data-dir", NULL), (int)epochs,
                                      (uint64_t)seed, (uint64_t)fseed, quiet);
    p.match_unseen = match;
    if (st != LETHE_OK) {
        proto_close(&p);
        return cli_lib_error("bench", st);
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "scenario", scn);
    cJSON_AddStringToObject(root, "forget", p.sp.spec_text);
    if (p.sp.spec.kind != LETHE_FORGET_CLASS) cJSON_AddNumberToObject(root, "forget_seed", fseed);
    cJSON_AddStringToObject(root, "arch", sc->arch);
    cJSON_AddItemToObject(root, "original", report_metrics(&p.m_orig));
    cJSON *rj = report_metrics(&p.m_retrain);
    if (p.retrain_seconds > 0) cJSON_AddNumberToObject(rj, "seconds", p.retrain_seconds);
    cJSON_AddItemToObject(root, "retrain", rj);
    cJSON *methods = cJSON_AddArrayToObject(root, "methods");

    printf("\n%s: forget %s (%zu images), %s, original and Retrain %ld epochs\n\n", scn,
           p.sp.spec_text, p.sp.forget.n, sc->arch, epochs);
    proto_print_header();
    proto_print_row("Original", &p.m_orig, lethe_avg_gap(&p.m_orig, &p.m_retrain), -1, 0, 0);
    proto_print_row("Retrain", &p.m_retrain, 0.0, p.retrain_seconds > 0 ? p.retrain_seconds : -1,
                    0, 0);
    int rc = 0;
    for (tok = strtok_r(mlist, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        lethe_unlearn_config cfg;
        lethe_unlearn_config_default(&cfg);
        cfg.method = tok;
        cfg.seed = (uint64_t)seed;
        proto_tuned(tuned, scn, tok, &cfg);
        if (steps) cfg.steps = steps;
        cfg.diagnostics = cli_flag(&a, "diagnostics") && lethe_method_uses_eps(cfg.method);
        proto_run run;
        if ((st = proto_run_method(&p, &cfg, &run)) != LETHE_OK) {
            /* A diverging baseline (GA is unbounded below) is a result, not
             * a crash: its row says so and the run goes on. */
            printf("| %s | failed: %s | | | | | | |\n", tok, lethe_last_error());
            fflush(stdout);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "config", report_config(&cfg, p.sp.spec_text));
            cJSON_AddStringToObject(o, "error", lethe_last_error());
            cJSON_AddItemToArray(methods, o);
            if (st != LETHE_ERR_NUMERIC) {
                cli_lib_error("bench", st);
                rc = 1;
            }
            continue;
        }
        proto_print_row(tok, &run.m, run.gap, run.res.seconds,
                        (double)run.res.fwd_samples / run.res.batch,
                        (double)run.res.bwd_samples / run.res.batch);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "config", report_config(&run.cfg, p.sp.spec_text));
        cJSON_AddItemToObject(o, "metrics", report_metrics(&run.m));
        cJSON_AddNumberToObject(o, "avg_gap", run.gap);
        cJSON_AddItemToObject(o, "run", report_run(&run.res, 1));
        cJSON_AddItemToArray(methods, o);
        lethe_unlearn_result_free(&run.res);
    }
    if ((st = report_write(json, root)) != LETHE_OK) rc = cli_lib_error("bench", st);
    else if (!quiet) fprintf(stderr, "wrote %s\n", json);
    cJSON_Delete(root);
    proto_close(&p);
    return rc;
}
