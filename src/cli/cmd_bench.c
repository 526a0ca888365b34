/* lethe bench: the whole protocol of a scenario in one command — the
 * original and Retrain models (trained once, then cached), every method
 * with its tuned settings, the table of PROTOCOL.md and a JSON file. */
#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli/protocol.h"
#include "cli/report.h"
#include "io/paths.h"

static const cli_opt opts[] = {
    CLI_HEADING("scenario (required)"),
    {"scenario", "NAME", "fmnist-cw | fmnist-rnd | cifar10-cw | cifar10-rnd | fmnist-ddpm-cw | "
                         "fmnist-vit-cw | sms-rnd | sms-idx", 0},
    CLI_NOTE("fmnist-cw: forget class 0 (T-shirt/top) of Fashion-MNIST from a cnn."),
    CLI_NOTE("fmnist-rnd: forget a random 10% of Fashion-MNIST's training images from a cnn."),
    CLI_NOTE("cifar10-cw, cifar10-rnd: the same on CIFAR-10 (class 0, airplane) from a "
             "resnet20 trained with augmentation (lethe data fetch cifar10 first)."),
    CLI_NOTE("fmnist-ddpm-cw: forget class 0 from a class-conditional DDPM (unet); its own "
             "options: lethe bench --scenario fmnist-ddpm-cw --help."),
    CLI_NOTE("fmnist-vit-cw: fmnist-cw's class 0 from a vit-tiny (AdamW recipe)."),
    CLI_NOTE("sms-rnd: forget a random 10% of the SMS Spam training messages from a "
             "text-transformer (--data-dir: the SMSSpamCollection folder, default "
             LETHE_SMS_SPAM_DIR "); sms-idx: the same for the index list 0, 45, …, 4455."),
    CLI_HEADING("methods"),
    {"methods", "LIST", "comma-separated methods (default: every method that runs on "
                        "classifiers, as `lethe help unlearn` lists them)", 0},
    {"tuned", "FILE", "tuned settings (default: configs/tuned.json beside the program, "
                      "else in the current folder)", 0},
    {"steps", "N", "override every method's step count (default: 5·ceil(|D_f|/128))", 0},
    {"match-unseen", "MODE", "forget just enough: auto (default: on for the random scenarios, "
                             "off for the class-wise ones) | on | off (lethe unlearn --help)", 0},
    {"seeds", "N", "run every method with N unlearning seeds (--seed, --seed + 1, …) and print "
                   "mean ± sd (default 1)", 0},
    {"retrain-seeds", NULL, "with --seeds: vary the Original and Retrain training seeds too "
                            "(each trained once and cached: minutes per seed)", 1},
    {"diagnostics", NULL, "record cos(g_u, g_r), conflicts and |λ − λ*| for the surgery methods", 1},
    CLI_HEADING("original and Retrain models"),
    {"cache", "DIR", "cached original/Retrain models (default: runs/cache of the tree the "
                     "program was built in, else ~/.cache/lethe/cache)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    {"epochs", "N", "epochs of the original/Retrain recipe (default 8; cifar10-*: "
                    PROTO_CIFAR_EPOCHS_TEXT "; sms-*: 10)", 0},
    {"seed", "N", "seed (default 0)", 0},
    {"forget-seed", "N", "fmnist-rnd, cifar10-rnd, sms-rnd: seed of the random forget set (default: "
                         "--seed); another "
                         "draw trains its own Retrain", 0},
    CLI_HEADING("outputs"),
    {"report", "FILE", "results as JSON (default runs/bench-SCENARIO.json beside the "
                       "default cache); - for stdout", 0},
    {"quiet", NULL, "print only the table (no progress, no settings or 'wrote' lines)", 1},
    CLI_EXAMPLE("lethe bench --scenario fmnist-cw"),
    CLI_EXAMPLE("lethe bench --scenario fmnist-rnd --methods eupmu,salun,ft --report -"),
    {NULL, NULL, NULL, 0},
};


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

#define BENCH_MAX_METHODS 64

/* One run's figures: UA, RA, TA, MIA, Avg. Gap, RTE (s). */
enum { F_UA, F_RA, F_TA, F_MIA, F_GAP, F_RTE, NFIG };
typedef struct {
    double v[NFIG];
    double fwd, bwd;
    int ok;
} fig;

static void fig_of(fig *f, const lethe_metrics *m, double gap, double secs)
{
    *f = (fig){{m->ua, m->ra, m->ta, m->mia, gap, secs}, 0, 0, 1};
}

/* Mean and sample standard deviation of figure k over the runs that
 * finished; *n: their count. */
static void spread_of(const fig *f, int n, int k, double *mean, double *sd, int *cnt)
{
    double s = 0, ss = 0;
    int c = 0;
    for (int i = 0; i < n; i++)
        if (f[i].ok && isfinite(f[i].v[k])) {
            s += f[i].v[k];
            c++;
        }
    *mean = c ? s / c : NAN;
    for (int i = 0; i < n; i++)
        if (f[i].ok && isfinite(f[i].v[k])) ss += (f[i].v[k] - *mean) * (f[i].v[k] - *mean);
    *sd = c > 1 ? sqrt(ss / (c - 1)) : NAN;
    *cnt = c;
}

static void print_spread(table *t, const char *name, const fig *f, int n, double fwd,
                         double bwd)
{
    table_text(t, "%s", name);
    for (int k = 0; k < NFIG; k++) {
        double m, sd;
        int c;
        spread_of(f, n, k, &m, &sd, &c);
        table_sd(t, c > 0 && (k != F_RTE || m >= 0) ? m : NAN, sd);
    }
    table_nums(t, (const double[]){fwd > 0 || bwd > 0 ? fwd : NAN, bwd}, 2);
    int failed = 0;
    for (int i = 0; i < n; i++) failed += !f[i].ok;
    if (failed) table_note(t, "(%d of %d seeds failed)", failed, n);
    table_end_row(t);
}

/* A method's row of a multi-seed bench: the first seed's object, holding
 * every seed's in "seeds". */
static void seed_entry(cJSON **row, cJSON *methods, cJSON *o)
{
    if (!*row) {
        *row = cJSON_Duplicate(o, 1);
        cJSON_AddItemToArray(methods, *row);
        cJSON_DeleteItemFromObjectCaseSensitive(*row, "seed");
        cJSON_AddArrayToObject(*row, "seeds");
    }
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(*row, "seeds"), o);
}

/* "spread": {n, mean: {…}, sd: {…}} of the figures; the row's own metrics
 * (and avg_gap) become the means, so that readers of one-seed results read
 * means. */
static void add_spread(cJSON *row, const fig *f, int n, int is_method)
{
    static const char *keys[NFIG] = {"UA", "RA", "TA", "MIA_Eff", "avg_gap", "rte_s"};
    cJSON *sp = cJSON_CreateObject(), *mj = cJSON_CreateObject(), *sj = cJSON_CreateObject();
    int cnt = 0;
    cJSON *metrics = cJSON_GetObjectItemCaseSensitive(row, "metrics");
    if (!is_method) metrics = row;
    for (int k = 0; k < NFIG; k++) {
        double m, sd;
        int c;
        spread_of(f, n, k, &m, &sd, &c);
        if (k == F_UA) cnt = c;
        if (k == F_RTE && !(m >= 0)) continue;
        cJSON_AddItemToObject(mj, keys[k], isfinite(m) ? cJSON_CreateNumber(m) : cJSON_CreateNull());
        cJSON_AddItemToObject(sj, keys[k], isfinite(sd) ? cJSON_CreateNumber(sd)
                                                        : cJSON_CreateNull());
        if (k < F_GAP && metrics && isfinite(m))
            cJSON_ReplaceItemInObjectCaseSensitive(metrics, keys[k], cJSON_CreateNumber(m));
        if (k == F_GAP && is_method && isfinite(m))
            cJSON_ReplaceItemInObjectCaseSensitive(row, "avg_gap", cJSON_CreateNumber(m));
    }
    cJSON_AddNumberToObject(sp, "n", cnt);
    cJSON_AddItemToObject(sp, "mean", mj);
    cJSON_AddItemToObject(sp, "sd", sj);
    cJSON_AddItemToObject(row, "spread", sp);
}

int cmd_bench(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "bench", "--scenario NAME [options]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *scn = cli_str(&a, "scenario", NULL);
    /* fmnist-ddpm-cw went to cmd_gen_bench.c (main.c): here it is only listed. */
    const char *scn_names[16];
    const int nnames = proto_scenario_names(scn_names, 16, 1);
    if (!scn) {
        char list[512];
        return cli_usage_error("bench", "--scenario NAME is required (%s)",
                               cli_join(scn_names, nnames, list, sizeof list));
    }
    const proto_scenario *sc = proto_find(scn);
    if (!sc) return cli_unknown_choice("bench", "scenario", scn, scn_names, nnames);
    long epochs, seed, steps, fseed;
    if (cli_int(&a, "epochs", sc->epochs, 1, 1000, &epochs) || cli_int(&a, "seed", 0, 0, LONG_MAX, &seed) ||
        cli_int(&a, "steps", 0, 0, 10000000, &steps) ||
        cli_int(&a, "forget-seed", seed, 0, LONG_MAX, &fseed))
        return 2;
    long nseeds;
    if (cli_str(&a, "seeds", NULL) && strcmp(cli_str(&a, "seeds", NULL), "0") == 0)
        return cli_usage_error("bench", "--seeds 0: at least one seed is needed");
    if (cli_int(&a, "seeds", 1, 1, 100, &nseeds)) return 2;
    int vary_models = cli_flag(&a, "retrain-seeds");
    if (vary_models && nseeds < 2)
        return cli_usage_error("bench", "--retrain-seeds varies the training seeds of --seeds N: "
                               "give N of 2 or more");
    const char *match = cli_str(&a, "match-unseen", "auto");
    if (strcmp(match, "auto") && strcmp(match, "on") && strcmp(match, "off"))
        return cli_usage_error("bench", "--match-unseen %s: expected auto, on or off", match);
    const int classwise = strncmp(sc->forget, "class:", 6) == 0;
    if (strcmp(match, "on") == 0 && classwise)
        return cli_usage_error("bench", "--match-unseen on: %s forgets a class; Retrain "
                               "recognises none of a class it never saw, so unseen data is not "
                               "the target there", scn);
    if (fseed != seed && classwise)
        return cli_usage_error("bench", "--forget-seed: %s forgets a class, which no seed draws",
                               scn);
    int quiet = cli_flag(&a, "quiet");
    char tbuf[4096];
    const char *tuned = cli_settings_path("bench", cli_str(&a, "tuned", NULL), tbuf, sizeof tbuf);
    if (!tuned) return 2;
    char jdef[4096], jrel[256], cdef[4096];
    snprintf(jrel, sizeof jrel, "bench-%s.json", scn);
    const char *json = cli_str(&a, "report", cli_runs_path(jrel, jdef, sizeof jdef));
    const char *cache = cli_str(&a, "cache", cli_runs_path("cache", cdef, sizeof cdef));
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
    if (!cli_str(&a, "report", NULL) && io_mkdir_parent(json) != 0)
        return cli_error("bench", "%s: cannot create its folder: %s", json, strerror(errno));
    if (cli_str(&a, "report", NULL) ? (r = cli_check_named_output(&a, "report", json)) != 0
                                  : (r = cli_check_output("bench", NULL, json)) != 0)
        return r;

    cli_settings_note("bench", tuned, quiet);
    const char *names[BENCH_MAX_METHODS];
    int nm = 0;
    for (tok = strtok_r(mlist, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (nm == BENCH_MAX_METHODS)
            return cli_usage_error("bench", "--methods: at most %d methods", BENCH_MAX_METHODS);
        names[nm++] = tok;
    }
    int ns = (int)nseeds, nctx = vary_models ? ns : 1;
    fig *runs = calloc((size_t)nm * (size_t)ns, sizeof(fig));     /* (method, seed) */
    fig *refs = calloc(2 * (size_t)ns, sizeof(fig));               /* (Original/Retrain, seed) */
    cJSON **rows = calloc((size_t)nm, sizeof(cJSON *));
    if (!runs || !refs || !rows) {
        free(runs);
        free(refs);
        free(rows);
        return cli_error("bench", "out of memory");
    }
    for (int i = 0; i < nm * ns; i++) runs[i].ok = 0;
    cJSON *root = cJSON_CreateObject();
    cJSON *methods = NULL;
    table t = {0};
    int rc = 0;
    int opened = 1;
    for (int k = 0; k < nctx && opened; k++) {
        proto_ctx p;
        uint64_t mseed = (uint64_t)seed + (uint64_t)k;
        lethe_status st = proto_open_draw(&p, sc, cache, cli_str(&a, "data-dir", NULL),
                                          (int)epochs, mseed, (uint64_t)fseed, match, quiet);
        if (st != LETHE_OK) {
            proto_close(&p);
            rc = cli_lib_error("bench", st);
            opened = 0;
            break;
        }
        fig_of(&refs[k], &p.m_orig, lethe_avg_gap(&p.m_orig, &p.m_retrain), -1);
        fig_of(&refs[ns + k], &p.m_retrain, 0.0, p.retrain_seconds > 0 ? p.retrain_seconds : -1);
        if (k == 0) {
            cJSON_AddStringToObject(root, "scenario", scn);
            cJSON_AddStringToObject(root, "forget", p.sp.spec_text);
            if (p.sp.spec.kind != LETHE_FORGET_CLASS)
                cJSON_AddNumberToObject(root, "forget_seed", fseed);
            cJSON_AddStringToObject(root, "arch", sc->arch);
            cJSON_AddItemToObject(root, "original", report_metrics(&p.m_orig));
            cJSON *rj = report_metrics(&p.m_retrain);
            if (p.retrain_seconds > 0) cJSON_AddNumberToObject(rj, "seconds", p.retrain_seconds);
            cJSON_AddItemToObject(root, "retrain", rj);
            if (ns > 1) {
                cJSON *sj = cJSON_AddObjectToObject(root, "seeds");
                cJSON_AddNumberToObject(sj, "n", ns);
                cJSON_AddNumberToObject(sj, "first", (double)seed);
                cJSON_AddStringToObject(sj, "varied", vary_models ? "unlearning, Original and "
                                        "Retrain training" : "unlearning");
            }
            methods = cJSON_AddArrayToObject(root, "methods");
            printf("\n%s: forget %s (%zu images), %s, original and Retrain %ld epochs", scn,
                   p.sp.spec_text, p.sp.forget.n, sc->arch, epochs);
            if (ns > 1)
                printf("; mean ± sd over %d seeds (%s)", ns,
                       vary_models ? "unlearning, Original and Retrain seeds varied"
                                   : "unlearning seed varied; Original and Retrain fixed");
            printf("\n\n");
            if (ns == 1) {
                proto_table_begin(&t, "method");
                proto_table_row(&t, "Original", &p.m_orig, refs[0].v[F_GAP], -1, NULL);
                proto_table_row(&t, "Retrain", &p.m_retrain, 0.0, refs[ns].v[F_RTE], NULL);
            }
        }
        for (int i = 0; i < nm; i++) {
            int j0 = vary_models ? k : 0, j1 = vary_models ? k + 1 : ns;
            for (int j = j0; j < j1; j++) {
                lethe_unlearn_config cfg;
                lethe_unlearn_config_default(&cfg);
                cfg.method = names[i];
                cfg.seed = (uint64_t)seed + (uint64_t)j;
                proto_tuned(tuned, scn, names[i], &cfg);
                if (steps) cfg.steps = steps;
                cfg.diagnostics = cli_flag(&a, "diagnostics") && lethe_method_uses_eps(cfg.method);
                if (ns > 1 && !quiet)
                    fprintf(stderr, "%s, seed %d of %d\n", names[i], j + 1, ns);
                proto_run run;
                if ((st = proto_run_method(&p, &cfg, &run)) != LETHE_OK) {
                    /* A diverging baseline (GA is unbounded below) is a result,
                     * not a crash: its row says so and the run goes on. */
                    if (ns == 1) {
                        table_text(&t, "%s", names[i]);
                        table_text(&t, "failed: %s", lethe_last_error());
                        table_end_row(&t);
                    }
                    cJSON *o = cJSON_CreateObject();
                    cJSON_AddItemToObject(o, "config", report_config(&cfg, p.sp.spec_text));
                    cJSON_AddStringToObject(o, "error", lethe_last_error());
                    if (ns == 1) {
                        cJSON_AddItemToArray(methods, o);
                    } else {
                        cJSON_AddNumberToObject(o, "seed", (double)cfg.seed);
                        seed_entry(&rows[i], methods, o);
                    }
                    if (st != LETHE_ERR_NUMERIC) {
                        cli_lib_error("bench", st);
                        rc = 1;
                    }
                    continue;
                }
                fig *f = &runs[(size_t)i * ns + j];
                fig_of(f, &run.m, run.gap, run.res.seconds);
                f->fwd = (double)run.res.fwd_samples / run.res.batch;
                f->bwd = (double)run.res.bwd_samples / run.res.batch;
                if (ns == 1)
                    proto_table_row(&t, names[i], &run.m, run.gap, run.res.seconds, &run.res);
                cJSON *o = cJSON_CreateObject();
                if (ns > 1) cJSON_AddNumberToObject(o, "seed", (double)cfg.seed);
                cJSON_AddItemToObject(o, "config", report_config(&run.cfg, p.sp.spec_text));
                cJSON_AddItemToObject(o, "metrics", report_metrics(&run.m));
                cJSON_AddNumberToObject(o, "avg_gap", run.gap);
                cJSON_AddItemToObject(o, "run", report_run(&run.res, 1));
                if (ns == 1) cJSON_AddItemToArray(methods, o);
                else seed_entry(&rows[i], methods, o);
                lethe_unlearn_result_free(&run.res);
            }
        }
        proto_close(&p);
    }
    if (ns > 1 && opened) {
        /* Mean ± sd of every figure, on stdout and in each row's "spread". */
        proto_table_begin(&t, "method");
        print_spread(&t, "Original", refs, nctx, 0, 0);
        print_spread(&t, "Retrain", refs + ns, nctx, 0, 0);
        if (vary_models) {
            add_spread(cJSON_GetObjectItemCaseSensitive(root, "original"), refs, nctx, 0);
            add_spread(cJSON_GetObjectItemCaseSensitive(root, "retrain"), refs + ns, nctx, 0);
        }
        for (int i = 0; i < nm; i++) {
            fig *f = &runs[(size_t)i * ns];
            print_spread(&t, names[i], f, ns, f[0].fwd, f[0].bwd);
            if (rows[i]) add_spread(rows[i], f, ns, 1);
        }
    }
    free(runs);
    free(refs);
    free(rows);
    lethe_status st;
    if (opened) {
        if ((st = report_write(json, root)) != LETHE_OK) rc = cli_lib_error("bench", st);
        else if (!quiet) fprintf(stderr, "wrote %s\n", json);
    }
    cJSON_Delete(root);
    return rc;
}
