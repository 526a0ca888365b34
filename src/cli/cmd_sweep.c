/* lethe sweep: one method over the values of one of its options (eps, lr,
 * beta, a, gamma, …: any numeric option it takes), each run from a copy of the
 * original on a protocol scenario (cached original and Retrain) or on a
 * setup of one's own (--model/--forget/--reference). Writes a Markdown table
 * on stdout, the results as JSON (the format of bench, readable by lethe
 * table and lethe plot) and the trade-off plot: UA against RA and TA. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/plot.h"
#include "cli/protocol.h"
#include "cli/report.h"
#include "io/paths.h"
#include "cli/ulopts.h"

static const cli_opt opts[] = {
    CLI_HEADING("setup: a scenario, or a model of one's own"),
    {"scenario", "NAME", "fmnist-cw | fmnist-rnd | cifar10-cw | cifar10-rnd | fmnist-vit-cw | "
                         "sms-rnd | sms-idx (cached original and Retrain)", 0},
    {"model", "FILE", "instead of --scenario: the trained original model", 0},
    {"forget", "SPEC", "with --model: class:C | random:P% | indices:FILE", 0},
    {"reference", "FILE", "with --model: the Retrain model (gaps and the Retrain mark)", 0},
    {"arch", "NAME", "with --model: mlp | cnn | resnet8 | resnet20 | resnet18 | vit-tiny, "
                     "for a checkpoint whose metadata names no architecture (a PyTorch "
                     "state_dict)", 0},
    {"data", "NAME", "with --model: data set (default: the checkpoint's)", 0},
    {"forget-seed", "N", "with --model: seed of a random forget set (default 0)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    {"cache", "DIR", "cached original/Retrain models (default: runs/cache of the tree the "
                     "program was built in, else ~/.cache/lethe/cache)", 0},
    {"epochs", "N", "epochs of the original/Retrain recipe (default 8; cifar10-*: "
                    PROTO_CIFAR_EPOCHS_TEXT ")", 0},
    CLI_HEADING("what to sweep (required: --method, --param, --values)"),
    {"param", "NAME", "the method's option to sweep: lr, eps, beta, a, gamma, l1, … (its "
                      "options: lethe help unlearn)", 0},
    {"values", "LIST", "comma-separated values, e.g. 0.001,0.01,0.1,0.5", 0},
    {"compare", "LIST", "other methods to run with their tuned settings, e.g. ungrad,salun", 0},
    {"tuned", "FILE", "tuned settings (default: configs/tuned.json beside the program, else "
                      "in the current folder)", 0},
    CLI_HEADING("method and its settings"),
    CLI_UNLEARN_OPTS,
    {"diagnostics", NULL, "record gradient-conflict diagnostics (eupmu*, ungrad*)", 1},
    {"audit", NULL, "run the utility audit in every run (counted forwards)", 1},
    CLI_HEADING("outputs"),
    {"report", "FILE", "results (default runs/sweep-SCENARIO-METHOD-PARAM.json beside the "
                       "default cache); - for stdout", 0},
    {"plot", "PREFIX", "plot files PREFIX.png, PREFIX.svg (default: the JSON path less .json)", 0},
    {"no-plot", NULL, "no plot (no gnuplot needed)", 1},
    {"quiet", NULL, "print only the table (no progress, no settings or 'wrote' lines)", 1},
    CLI_EXAMPLE("lethe sweep --scenario fmnist-cw --method eupmu --param eps "
                "--values 0.001,0.01,0.1 --compare salun"),
    CLI_EXAMPLE("lethe sweep --model my.safetensors --forget class:3 --method eupmu --param lr "
                "--values 0.005,0.01,0.02"),
    {NULL, NULL, NULL, 0},
};

#define MAX_VALUES 64

static int parse_values(const char *text, double *v, int *n)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", text);
    *n = 0;
    char *save;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        double x = strtod(tok, &end);
        if (end == tok || *end || !isfinite(x))
            return cli_usage_error("sweep", "--values: '%s' is not a number", tok);
        if (*n >= MAX_VALUES)
            return cli_usage_error("sweep", "--values: more than %d values", MAX_VALUES);
        v[(*n)++] = x;
    }
    return *n ? 0 : cli_usage_error("sweep", "--values: no values");
}

/* Settings shared by every run of the sweep: budget, seed, instruments. */
static void common(lethe_unlearn_config *c, const lethe_unlearn_config *base, int steps_given,
                   int batch_given, int diag, int audit)
{
    if (steps_given) c->steps = base->steps;
    if (batch_given) c->batch = base->batch;
    c->seed = base->seed;
    /* Diagnostics only where there are g_u and g_r to compare. */
    c->diagnostics = diag && lethe_method_uses_eps(c->method);
    c->audit = audit;
}

static cJSON *entry(const char *label, const lethe_unlearn_config *cfg, const char *forget,
                    const proto_run *run)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "label", label);
    cJSON_AddItemToObject(o, "config", report_config(cfg, forget));
    cJSON_AddItemToObject(o, "metrics", report_metrics(&run->m));
    if (isfinite(run->gap)) cJSON_AddNumberToObject(o, "avg_gap", run->gap);
    else cJSON_AddNullToObject(o, "avg_gap");
    cJSON_AddItemToObject(o, "run", report_run(&run->res, 1));
    return o;
}

int cmd_sweep(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "sweep",
                      "(--scenario NAME | --model FILE --forget SPEC [--reference FILE]) "
                      "--method NAME --param NAME --values LIST [options]",
                      opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *scn = cli_str(&a, "scenario", NULL), *mpath = cli_str(&a, "model", NULL);
    const char *param = cli_str(&a, "param", NULL), *vtext = cli_str(&a, "values", NULL);
    const char *method = cli_str(&a, "method", NULL);
    if (!scn == !mpath)
        return cli_usage_error("sweep", "give either --scenario NAME or --model FILE");
    if (mpath && !cli_str(&a, "forget", NULL))
        return cli_usage_error("sweep", "--model needs --forget SPEC");
    if (!method) return cli_usage_error("sweep", "--method NAME is required");
    if ((r = cli_check_method("sweep", "--method", method))) return r;
    if (!param || !vtext)
        return cli_usage_error("sweep", "--param NAME and --values LIST are required");
    const proto_scenario *sc = scn ? proto_find(scn) : NULL;
    const char *names[16];
    if (scn && !sc)
        return cli_unknown_choice("sweep", "scenario", scn, names,
                                  proto_scenario_names(names, 16, 0));
    if (cli_str(&a, "data", NULL) && (r = cli_check_data("sweep", cli_str(&a, "data", NULL))))
        return r;
    if (cli_str(&a, "arch", NULL) && (r = cli_check_arch("sweep", cli_str(&a, "arch", NULL))))
        return r;
    lethe_forget_spec fs;
    if (mpath && (r = cli_forget_parse("sweep", "--forget", cli_str(&a, "forget", NULL), &fs)))
        return r;
    double values[MAX_VALUES];
    int nv;
    if ((r = parse_values(vtext, values, &nv))) return r;
    long epochs, fseed;
    if (cli_int(&a, "epochs", sc ? sc->epochs : 8, 1, 1000, &epochs) ||
        cli_int(&a, "forget-seed", 0, 0, LONG_MAX, &fseed))
        return 2;
    int quiet = cli_flag(&a, "quiet");
    char tbuf[4096];
    const char *tuned = cli_settings_path("sweep", cli_str(&a, "tuned", NULL), tbuf, sizeof tbuf);
    if (!tuned) return 2;
    int diag = cli_flag(&a, "diagnostics"), audit = cli_flag(&a, "audit");
    int steps_given = cli_str(&a, "steps", NULL) != NULL;
    int batch_given = cli_str(&a, "batch", NULL) != NULL;

    /* The swept method: defaults, tuned settings, then the options given. */
    lethe_unlearn_config base;
    lethe_unlearn_config_default(&base);
    base.method = method;
    lethe_status st = scn ? proto_tuned(tuned, scn, method, &base) : LETHE_OK;
    if (st != LETHE_OK) return cli_lib_error("sweep", st);
    if ((r = cli_unlearn_config(&a, &base))) return r;
    common(&base, &base, 0, 0, diag, audit);
    /* Every setting and every compared method is checked before any work. */
    for (int i = 0; i < nv; i++) {
        lethe_unlearn_config c = base;
        if ((st = lethe_unlearn_set_number(&c, param, values[i])) != LETHE_OK ||
            (st = lethe_unlearn_validate(&c)) != LETHE_OK)
            return cli_usage_error("sweep", "%s = %g: %s", param, values[i], lethe_last_error());
    }
    char clist[1024] = "";
    snprintf(clist, sizeof clist, "%s", cli_str(&a, "compare", ""));
    char *save, *tok, tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", clist);
    for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        lethe_unlearn_config c;
        lethe_unlearn_config_default(&c);
        c.method = tok;
        if ((r = proto_check_method("sweep", "--compare", tok, tuned, scn))) return r;
        st = scn ? proto_tuned(tuned, scn, tok, &c) : LETHE_OK;
        if (st != LETHE_OK) return cli_error("sweep", "--compare %s: %s", tok, lethe_last_error());
        common(&c, &base, steps_given, batch_given, diag, audit);
        if ((st = lethe_unlearn_validate(&c)) != LETHE_OK)
            return cli_usage_error("sweep", "--compare %s: %s", tok, lethe_last_error());
    }

    char jdef[4096], pdef[4096], jrel[512], cdef[4096];
    snprintf(jrel, sizeof jrel, "sweep-%s-%s-%s.json", scn ? scn : "custom", method, param);
    cli_runs_path(jrel, jdef, sizeof jdef);
    const char *json = cli_str(&a, "report", jdef);
    /* The plot is named after the JSON, or after the default name when the
     * JSON goes to standard output. */
    snprintf(pdef, sizeof pdef, "%s", strcmp(json, "-") == 0 ? jdef : json);
    size_t k = strlen(pdef);
    if (k > 5 && strcmp(pdef + k - 5, ".json") == 0) pdef[k - 5] = 0;
    const char *prefix = cli_str(&a, "plot", pdef);
    int do_plot = !cli_flag(&a, "no-plot");
    char png[4200], svg[4200];
    snprintf(png, sizeof png, "%s.png", prefix);
    snprintf(svg, sizeof svg, "%s.svg", prefix);
    /* Default paths: their folder (the runs folder) is made. */
    int json_def = !cli_str(&a, "report", NULL), png_def = do_plot && !cli_str(&a, "plot", NULL) &&
                                                           strncmp(png, jdef, strlen(jdef) - 5) == 0;
    if ((json_def && io_mkdir_parent(json) != 0) || (png_def && io_mkdir_parent(png) != 0))
        return cli_error("sweep", "%s: cannot create its folder: %s", json_def ? json : png,
                         strerror(errno));
    /* Paths the user named follow the rule of outputs (--force); the
     * defaults are Lethe's own and replaced freely. */
    int named_plot = cli_str(&a, "plot", NULL) || (cli_str(&a, "report", NULL) && strcmp(json, "-"));
    if (cli_str(&a, "report", NULL) ? (r = cli_check_named_output(&a, "report", json)) != 0
                                  : (r = cli_check_output("sweep", NULL, json)) != 0)
        return r;
    if (do_plot && named_plot && ((r = cli_check_named_output(&a, "plot", png)) ||
                                  (r = cli_check_named_output(&a, "plot", svg))))
        return r;
    if (do_plot && !named_plot && (r = cli_check_output("sweep", NULL, png))) return r;

    if (scn) cli_settings_note("sweep", tuned, quiet);
    proto_ctx p;
    if (scn)
        st = proto_open(&p, sc, cli_str(&a, "cache", cli_runs_path("cache", cdef, sizeof cdef)),
                        cli_str(&a, "data-dir", NULL), (int)epochs, base.seed, quiet);
    else
        st = proto_open_custom(&p, mpath, cli_str(&a, "arch", NULL), cli_str(&a, "reference", NULL),
                               cli_str(&a, "forget", NULL), (uint64_t)fseed,
                               cli_str(&a, "data", NULL), cli_str(&a, "data-dir", NULL),
                               base.seed, quiet);
    if (st != LETHE_OK) {
        proto_close(&p);
        return cli_lib_error("sweep", st);
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "scenario", p.sc->name);
    cJSON_AddStringToObject(root, "forget", p.sp.spec_text);
    cJSON_AddStringToObject(root, "arch", p.sc->arch);
    cJSON *sj = cJSON_AddObjectToObject(root, "sweep");
    cJSON_AddStringToObject(sj, "method", method);
    cJSON_AddStringToObject(sj, "param", param);
    cJSON *va = cJSON_AddArrayToObject(sj, "values");
    for (int i = 0; i < nv; i++) cJSON_AddItemToArray(va, cJSON_CreateNumber(values[i]));
    cJSON_AddItemToObject(root, "original", report_metrics(&p.m_orig));
    if (p.retrain) {
        cJSON *rj = report_metrics(&p.m_retrain);
        if (p.retrain_seconds > 0) cJSON_AddNumberToObject(rj, "seconds", p.retrain_seconds);
        cJSON_AddItemToObject(root, "retrain", rj);
    }
    cJSON *methods = cJSON_AddArrayToObject(root, "methods");

    printf("\n%s: forget %s (%zu images), %s; %s over %s\n\n", p.sc->name, p.sp.spec_text,
           p.sp.forget.n, p.sc->arch, method, param);
    table t;
    proto_table_begin(&t, "method");
    proto_table_row(&t, "Original", &p.m_orig,
                    p.retrain ? lethe_avg_gap(&p.m_orig, &p.m_retrain) : NAN, -1, NULL);
    if (p.retrain)
        proto_table_row(&t, "Retrain", &p.m_retrain, 0.0,
                        p.retrain_seconds > 0 ? p.retrain_seconds : -1, NULL);
    int rc = 0, ok = 0;
    for (int i = 0; i < nv; i++) {
        lethe_unlearn_config c = base;
        lethe_unlearn_set_number(&c, param, values[i]);   /* checked above */
        char label[128];
        snprintf(label, sizeof label, "%s %s=%g", method, param, values[i]);
        proto_run run;
        if ((st = proto_run_method(&p, &c, &run)) != LETHE_OK) {
            cli_error("sweep", "%s: %s", label, lethe_last_error());
            rc = 1;
            continue;
        }
        proto_table_row(&t, label, &run.m, run.gap, run.res.seconds, &run.res);
        cJSON *o = entry(label, &c, p.sp.spec_text, &run);
        cJSON_AddNumberToObject(o, "sweep_value", values[i]);
        cJSON_AddItemToArray(methods, o);
        lethe_unlearn_result_free(&run.res);
        ok++;
    }
    for (tok = strtok_r(clist, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        lethe_unlearn_config c;
        lethe_unlearn_config_default(&c);
        c.method = tok;
        if (scn) proto_tuned(tuned, scn, tok, &c);
        common(&c, &base, steps_given, batch_given, diag, audit);
        proto_run run;
        if ((st = proto_run_method(&p, &c, &run)) != LETHE_OK) {
            cli_error("sweep", "%s: %s", tok, lethe_last_error());
            rc = 1;
            continue;
        }
        proto_table_row(&t, tok, &run.m, run.gap, run.res.seconds, &run.res);
        cJSON *o = entry(tok, &c, p.sp.spec_text, &run);
        cJSON_AddBoolToObject(o, "compare", 1);
        cJSON_AddItemToArray(methods, o);
        lethe_unlearn_result_free(&run.res);
    }
    if ((st = report_write(json, root)) != LETHE_OK) rc = cli_lib_error("sweep", st);
    else if (!quiet) fprintf(stderr, "wrote %s\n", json);
    if (do_plot && ok && st == LETHE_OK) {
        if ((st = plot_tradeoff(root, prefix)) != LETHE_OK) rc = cli_lib_error("sweep", st);
        else if (!quiet) fprintf(stderr, "wrote %s.png and %s.svg\n", prefix, prefix);
    }
    cJSON_Delete(root);
    proto_close(&p);
    return rc;
}
