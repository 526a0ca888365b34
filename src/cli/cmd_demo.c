/* lethe demo: train the original cnn (or reuse it), retrain without class 0,
 * unlearn class 0 with EUPMU, and print the before/after table with Retrain
 * beside it. */
#include <limits.h>

#include "cli/protocol.h"

static const cli_opt opts[] = {
    CLI_NOTE("Trains the original cnn on Fashion-MNIST and the Retrain model without class 0 "
             "(or reuses them from the cache), unlearns class 0 with EUPMU and prints the "
             "table: before, after and Retrain."),
    CLI_HEADING("models and data"),
    {"cache", "DIR", "cached models (default: runs/cache of the tree the program was built in, "
                     "else ~/.cache/lethe/cache)", 0},
    {"data-dir", "DIR", "folder of Fashion-MNIST (default: Debian's)", 0},
    {"epochs", "N", "epochs of the original/Retrain recipe (default 8)", 0},
    {"tuned", "FILE", "tuned settings (default: configs/tuned.json beside the program, "
                      "else in the current folder)", 0},
    CLI_HEADING("run control"),
    {"quiet", NULL, "print only the table (no progress, no settings line)", 1},
    CLI_EXAMPLE("lethe demo"),
    CLI_EXAMPLE("lethe demo --data-dir ~/data/fashion-mnist --cache /tmp/lethe-cache"),
    {NULL, NULL, NULL, 0},
};

int cmd_demo(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "demo", "[options]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    long epochs;
    if (cli_int(&a, "epochs", 8, 1, 1000, &epochs)) return 2;
    const proto_scenario *sc = proto_find("fmnist-cw");
    lethe_unlearn_config cfg;
    lethe_unlearn_config_default(&cfg);
    cfg.method = "eupmu";
    int quiet = cli_flag(&a, "quiet");
    char tbuf[4096];
    const char *tuned = cli_settings_path("demo", cli_str(&a, "tuned", NULL), tbuf, sizeof tbuf);
    if (!tuned) return 2;
    lethe_status st = proto_tuned(tuned, sc->name, "eupmu", &cfg);
    if (st != LETHE_OK) return cli_lib_error("demo", st);
    cli_settings_note("demo", tuned, quiet);
    proto_ctx p;
    char cdef[4096];
    const char *cache = cli_str(&a, "cache", cli_runs_path("cache", cdef, sizeof cdef));
    if ((st = proto_open(&p, sc, cache, cli_str(&a, "data-dir", NULL), (int)epochs, 0,
                         quiet)) != LETHE_OK) {
        proto_close(&p);
        return cli_lib_error("demo", st);
    }
    proto_run run;
    if ((st = proto_run_method(&p, &cfg, &run)) != LETHE_OK) {
        proto_close(&p);
        return cli_lib_error("demo", st);
    }
    printf("\nForget class 0 (T-shirt/top) of Fashion-MNIST from a cnn with EUPMU "
           "(lr %g, eps %g, beta %g, %ld steps):\n\n", (double)cfg.lr, (double)cfg.eps,
           (double)cfg.beta, run.res.steps);
    table t;
    proto_table_begin(&t, "method");
    proto_table_row(&t, "Original (before)", &p.m_orig, lethe_avg_gap(&p.m_orig, &p.m_retrain),
                    -1, NULL);
    proto_table_row(&t, "EUPMU (after)", &run.m, run.gap, run.res.seconds, &run.res);
    proto_table_row(&t, "Retrain (gold standard)", &p.m_retrain, 0.0,
                    p.retrain_seconds > 0 ? p.retrain_seconds : -1, NULL);
    printf("\nUA = 100 - accuracy on the forgotten images, RA = accuracy on the kept ones,\n"
           "TA = test accuracy on the kept classes, MIA-Eff. = share of forgotten images a\n"
           "membership attack calls non-members; Avg. Gap = mean distance to Retrain.\n");
    lethe_unlearn_result_free(&run.res);
    proto_close(&p);
    return 0;
}
