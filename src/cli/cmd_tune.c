/* lethe tune: the small grid of PROTOCOL.md for one method and scenario;
 * the setting with the smallest Avg. Gap wins and, with --write, goes into
 * the versioned settings file that bench reads. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/protocol.h"
#include "cli/report.h"

static const cli_opt opts[] = {
    CLI_HEADING("what to tune (both required)"),
    {"method", "NAME", "method to tune", 0},
    {"scenario", "NAME", "fmnist-cw | fmnist-rnd | cifar10-cw | cifar10-rnd | fmnist-ddpm-cw "
                         "(its own options: lethe tune --scenario fmnist-ddpm-cw --help) | "
                         "fmnist-vit-cw | sms-rnd | sms-idx", 0},
    {"grid", "SPEC", "e.g. 'lr=0.005,0.01;eps=0.01,0.1' (default: the method's grid)", 0},
    CLI_HEADING("settings file"),
    {"tuned", "FILE", "settings file (default: configs/tuned.json beside the program, else in "
                      "the current folder); the base of every setting tried", 0},
    {"write", NULL, "store the best setting in the settings file (a named file is created if "
                    "missing)", 1},
    CLI_HEADING("original and Retrain models"),
    {"cache", "DIR", "cached original/Retrain models (default: runs/cache of the tree the "
                     "program was built in, else ~/.cache/lethe/cache)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    {"epochs", "N", "epochs of the original/Retrain recipe (default 8; cifar10-*: "
                    PROTO_CIFAR_EPOCHS_TEXT ")", 0},
    {"seed", "N", "seed (default 0)", 0},
    CLI_HEADING("run control"),
    {"quiet", NULL, "print only the table (no progress, no settings lines)", 1},
    CLI_EXAMPLE("lethe tune --method eupmu --scenario fmnist-cw"),
    CLI_EXAMPLE("lethe tune --method salun --scenario fmnist-rnd --grid 'lr=0.005,0.01' "
                "--write"),
    {NULL, NULL, NULL, 0},
};


int cmd_tune(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "tune", "--method NAME --scenario NAME [options]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *method = cli_str(&a, "method", NULL), *scn = cli_str(&a, "scenario", NULL);
    if (!method || !scn) return cli_usage_error("tune", "--method and --scenario are required");
    const proto_scenario *sc = proto_find(scn);
    const char *names[16];
    if (!sc)
        return cli_unknown_choice("tune", "scenario", scn, names,
                                  proto_scenario_names(names, 16, 1));
    long epochs, seed;
    if (cli_int(&a, "epochs", sc->epochs, 1, 1000, &epochs) || cli_int(&a, "seed", 0, 0, LONG_MAX, &seed))
        return 2;
    /* A named file that --write is to create need not exist yet. */
    int quiet = cli_flag(&a, "quiet");
    const char *given = cli_str(&a, "tuned", NULL);
    char tbuf[4096];
    const char *tuned;
    if (given && cli_flag(&a, "write") && access(given, F_OK) != 0)
        tuned = given;
    else if (!(tuned = cli_settings_path("tune", given, tbuf, sizeof tbuf)))
        return 2;
    if ((r = proto_check_method("tune", "--method", method, tuned, scn))) return r;
    const char *gtext = cli_str(&a, "grid", NULL);
    lethe_unlearn_config base;
    lethe_unlearn_config_default(&base);
    base.method = method;
    base.seed = (uint64_t)seed;
    lethe_status st = proto_tuned(tuned, scn, method, &base);
    if (st != LETHE_OK) return cli_lib_error("tune", st);
    /* An unknown method or a bad grid: the command line's (exit 2). */
    if ((st = lethe_unlearn_validate(&base)) != LETHE_OK) return cli_lib_error("tune", st) + 1;
    if (!gtext) gtext = lethe_method_grid(base.method, 0);   /* the method's own */
    if (!gtext) return cli_usage_error("tune", "no default grid for '%s': give --grid", method);
    proto_grid g;
    if ((st = proto_parse_grid(gtext, &base, &g)) != LETHE_OK) return cli_lib_error("tune", st) + 1;

    cli_settings_note("tune", tuned, quiet);
    proto_ctx p;
    char cdef[4096];
    const char *cache = cli_str(&a, "cache", cli_runs_path("cache", cdef, sizeof cdef));
    if ((st = proto_open(&p, sc, cache, cli_str(&a, "data-dir", NULL), (int)epochs,
                         (uint64_t)seed, quiet)) != LETHE_OK) {
        proto_close(&p);
        return cli_lib_error("tune", st);
    }
    int total = 1;
    for (int k = 0; k < g.np; k++) total *= g.nv[k];
    printf("\ntuning %s on %s: %d settings, Avg. Gap against Retrain\n\n", method, scn, total);
    static const char *const heads[] = {"UA", "RA", "TA", "MIA-Eff.", "Avg. Gap"};
    table_col cols[PROTO_GRID_PARAMS + 5];
    for (int k = 0; k < g.np + 5; k++)
        cols[k] = k < g.np ? (table_col)TABLE_COL(g.name[k], "%g")
                           : (table_col)TABLE_COL(heads[k - g.np], "%.2f");
    table t;
    table_begin(&t, stdout, TABLE_MARKDOWN, cols, g.np + 5);
    int best[PROTO_GRID_PARAMS] = {0}, cur[PROTO_GRID_PARAMS] = {0};
    double best_gap = INFINITY;
    int rc = 0;
    for (int i = 0; i < total; i++) {
        int rem = i;
        lethe_unlearn_config cfg = base;
        for (int k = g.np - 1; k >= 0; k--) {
            cur[k] = rem % g.nv[k];
            rem /= g.nv[k];
            lethe_unlearn_set_number(&cfg, g.name[k], g.v[k][cur[k]]);  /* checked */
        }
        proto_run run;
        for (int k = 0; k < g.np; k++) table_num(&t, g.v[k][cur[k]]);
        if ((st = lethe_unlearn_validate(&cfg)) != LETHE_OK ||
            (st = proto_run_method(&p, &cfg, &run)) != LETHE_OK) {
            table_text(&t, "failed: %s", lethe_last_error());
            table_end_row(&t);
            continue;
        }
        table_nums(&t, (const double[]){run.m.ua, run.m.ra, run.m.ta, run.m.mia, run.gap}, 5);
        table_end_row(&t);
        lethe_unlearn_result_free(&run.res);
        if (run.gap < best_gap) {
            best_gap = run.gap;
            memcpy(best, cur, sizeof best);
        }
    }
    if (!isfinite(best_gap)) {
        rc = cli_error("tune", "every setting failed");
    } else {
        printf("\nbest:");
        for (int k = 0; k < g.np; k++) printf(" %s=%g", g.name[k], g.v[k][best[k]]);
        printf(" (Avg. Gap %.2f)\n", best_gap);
        if (cli_flag(&a, "write")) {
            if ((st = proto_write_best(tuned, scn, method, &g, best)) != LETHE_OK)
                rc = cli_lib_error("tune", st);
            else if (!quiet)
                fprintf(stderr, "stored in %s\n", tuned);
        }
    }
    proto_close(&p);
    return rc;
}
