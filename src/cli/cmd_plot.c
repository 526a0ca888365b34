/* lethe plot: figures from the JSON that unlearn, sweep and bench write.
 * An unlearn report (run.trace) gives λ_t, the losses, and the audit and
 * diagnostics when recorded; a sweep or bench results file gives the
 * trade-off of UA against RA and TA. PNG and SVG through gnuplot. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/fail.h"
#include "cli/plot.h"

/* ------------------------------------------------------------ helpers */

/* Buffers a figure points into, freed together. */
#define MAX_BUFS 64
typedef struct { int n; void *p[MAX_BUFS]; } bufs;

static void *buf_alloc(bufs *b, size_t bytes)
{
    if (b->n >= MAX_BUFS) return NULL;
    void *p = calloc(1, bytes ? bytes : 1);
    if (p) b->p[b->n++] = p;
    return p;
}

static void buf_free(bufs *b)
{
    for (int i = 0; i < b->n; i++) free(b->p[i]);
    b->n = 0;
}

static double num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static plot_series *add_series(plot_panel *p)
{
    if (p->nseries >= PLOT_MAX_SERIES) return NULL;
    plot_series *s = &p->series[p->nseries++];
    memset(s, 0, sizeof *s);
    return s;
}

/* ---------------------------------------------------------- trade-off */

typedef struct {
    int n;
    double *ua, *ra, *ta;
    const char **label;
} point_set;

static int point_alloc(bufs *b, point_set *s, int n)
{
    s->n = 0;
    s->ua = buf_alloc(b, (size_t)n * sizeof(double));
    s->ra = buf_alloc(b, (size_t)n * sizeof(double));
    s->ta = buf_alloc(b, (size_t)n * sizeof(double));
    s->label = buf_alloc(b, (size_t)n * sizeof(char *));
    return s->ua && s->ra && s->ta && s->label;
}

static void point_add(point_set *s, const cJSON *metrics, const char *label)
{
    s->ua[s->n] = num(metrics, "UA");
    s->ra[s->n] = num(metrics, "RA");
    s->ta[s->n] = num(metrics, "TA");
    s->label[s->n] = label;
    s->n++;
}

static void tradeoff_series(plot_figure *fig, const point_set *s, const char *title,
                            plot_style style, int pt, double size, const char *color, int labels)
{
    for (int p = 0; p < 2; p++) {
        plot_series *se = add_series(&fig->panel[p]);
        if (!se) return;
        se->title = title;
        se->n = s->n;
        se->x = p == 0 ? s->ra : s->ta;
        se->y = s->ua;
        se->labels = labels ? s->label : NULL;
        se->style = style;
        se->point = pt;
        se->size = size;
        se->color = color;
    }
}

lethe_status plot_tradeoff(const cJSON *root, const char *prefix)
{
    const cJSON *methods = cJSON_GetObjectItemCaseSensitive(root, "methods");
    if (!cJSON_IsArray(methods))
        return lethe_fail(LETHE_ERR_FORMAT, "results have no \"methods\" array to plot");
    int n = cJSON_GetArraySize(methods);
    bufs b = {0};
    point_set sweep, other, orig, retr;
    if (!point_alloc(&b, &sweep, n + 1) || !point_alloc(&b, &other, n + 1) ||
        !point_alloc(&b, &orig, 1) || !point_alloc(&b, &retr, 1)) {
        buf_free(&b);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for a plot");
    }
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sweep");
    const char *param = str(sw, "param"), *smethod = str(sw, "method");
    char *texts = buf_alloc(&b, (size_t)(n + 1) * 48);     /* (n + 1, 48) value labels */
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, methods) {
        const cJSON *met = cJSON_GetObjectItemCaseSensitive(it, "metrics");
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(it, "config");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "sweep_value");
        if (!cJSON_IsObject(met)) continue;
        const char *label = str(it, "label");
        if (!label) label = str(cfg, "method");
        if (!label) label = "?";
        if (cJSON_IsNumber(v) && texts) {
            snprintf(texts + (size_t)i * 48, 48, "%g", v->valuedouble);
            point_add(&sweep, met, texts + (size_t)i * 48);
        } else {
            point_add(&other, met, label);
        }
        i++;
    }
    const cJSON *mo = cJSON_GetObjectItemCaseSensitive(root, "original");
    const cJSON *mr = cJSON_GetObjectItemCaseSensitive(root, "retrain");
    if (cJSON_IsObject(mo)) point_add(&orig, mo, "Original");
    if (cJSON_IsObject(mr)) point_add(&retr, mr, "Retrain");

    plot_figure fig;
    memset(&fig, 0, sizeof fig);
    char title[512], stitle[160];
    const char *scn = str(root, "scenario"), *forget = str(root, "forget");
    if (param)
        snprintf(title, sizeof title, "%s (forget %s): %s, sweep of %s — higher UA forgets more, "
                 "Retrain is the target", scn ? scn : "", forget ? forget : "?",
                 smethod ? smethod : "?", param);
    else
        snprintf(title, sizeof title, "%s (forget %s): methods — higher UA forgets more, Retrain "
                 "is the target", scn ? scn : "", forget ? forget : "?");
    snprintf(stitle, sizeof stitle, "%s over %s (labels: values)", smethod ? smethod : "?",
             param ? param : "?");
    fig.title = title;
    fig.rows = 1;
    fig.cols = 2;
    fig.npanels = 2;
    fig.panel[0] = (plot_panel){.title = "UA against RA", .xlabel = "RA: accuracy on D_r (%)",
                                .ylabel = "UA: 100 − accuracy on D_f (%)", .key_below = 1};
    fig.panel[1] = (plot_panel){.title = "UA against TA", .xlabel = "TA: test accuracy (%)",
                                .ylabel = "UA: 100 − accuracy on D_f (%)", .key_below = 1};
    if (sweep.n) tradeoff_series(&fig, &sweep, stitle, PLOT_LINESPOINTS, 7, 1.3, "#1f77b4", 1);
    if (other.n)
        tradeoff_series(&fig, &other, param ? "other methods (tuned)" : "methods", PLOT_POINTS,
                        13, 1.6, "#8c564b", 1);
    if (orig.n) tradeoff_series(&fig, &orig, "Original", PLOT_POINTS, 5, 2.0, "#000000", 0);
    if (retr.n) tradeoff_series(&fig, &retr, "Retrain", PLOT_POINTS, 9, 2.4, "#d62728", 0);
    lethe_status st = sweep.n + other.n + orig.n + retr.n == 0
                          ? lethe_fail(LETHE_ERR_FORMAT, "results have no metrics to plot")
                          : plot_render(&fig, prefix);
    buf_free(&b);
    return st;
}

/* -------------------------------------------------------------- traces */

/* trace[name] as doubles (NaN for null); NULL if absent or no finite value. */
static double *trace_get(bufs *b, const cJSON *trace, const char *name, int n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(trace, name);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return NULL;
    double *v = buf_alloc(b, (size_t)n * sizeof(double));
    if (!v) return NULL;
    int i = 0, finite = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        v[i] = cJSON_IsNumber(e) ? e->valuedouble : cJSON_IsBool(e) ? (double)cJSON_IsTrue(e)
                                                                    : NAN;
        finite += isfinite(v[i]);
        i++;
    }
    return finite ? v : NULL;
}

static plot_series *line(plot_panel *p, const char *title, const double *x, const double *y,
                         int n, const char *color, int dashed)
{
    plot_series *s = y ? add_series(p) : NULL;
    if (!s) return NULL;
    s->title = title;
    s->n = n;
    s->x = x;
    s->y = y;
    s->style = PLOT_LINES;
    s->color = color;
    s->dashed = dashed;
    s->width = 2;
    return s;
}

lethe_status plot_report(const cJSON *root, const char *prefix)
{
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(root, "run");
    const cJSON *trace = cJSON_GetObjectItemCaseSensitive(run, "trace");
    const cJSON *lam_a = cJSON_GetObjectItemCaseSensitive(trace, "lambda");
    if (!cJSON_IsObject(trace) || !cJSON_IsArray(lam_a))
        return lethe_fail(LETHE_ERR_FORMAT, "report has no run.trace to plot");
    int n = cJSON_GetArraySize(lam_a);
    if (n < 1) return lethe_fail(LETHE_ERR_FORMAT, "report's trace is empty");
    bufs b = {0};
    double *x = buf_alloc(&b, (size_t)n * sizeof(double));     /* (n) step numbers */
    if (!x) return lethe_fail(LETHE_ERR_NOMEM, "out of memory for a plot");
    for (int i = 0; i < n; i++) x[i] = i + 1;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const char *method = str(cfg, "method");
    const cJSON *diag = cJSON_GetObjectItemCaseSensitive(run, "diagnostics");
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(run, "audit");

    plot_figure fig;
    memset(&fig, 0, sizeof fig);
    char title[512], ltitle[160], atitle[200], ctitle[160];
    snprintf(title, sizeof title, "%s: forget %s, %d steps, lr %g, eps %g", method ? method : "?",
             str(cfg, "forget") ? str(cfg, "forget") : "?", n, num(cfg, "lr"),
             num(run, "eps_used"));
    fig.title = title;

    /* λ_t beside λ*_t (UNGrad's, or EUPMU's with diagnostics). */
    plot_panel *p = &fig.panel[fig.npanels++];
    double gap = num(diag, "mean_lambda_gap");
    if (isfinite(gap)) snprintf(ltitle, sizeof ltitle, "λ over the steps (mean |λ − λ*| = %.3g)", gap);
    else snprintf(ltitle, sizeof ltitle, "λ over the steps");
    *p = (plot_panel){.title = ltitle, .xlabel = "step", .ylabel = "λ", .tight_x = 1};
    double *lam = trace_get(&b, trace, "lambda", n), *lstar = trace_get(&b, trace, "lambda_star", n);
    /* λ*_t is noisy (one batch each): thin, under the λ_t actually used. */
    plot_series *ls = line(p, "λ*_t (explicit, ALGORITHM §2)", x, lstar, n, "#f4a3a3", 0);
    if (ls) ls->width = 1;
    line(p, lam && lstar && memcmp(lam, lstar, (size_t)n * sizeof(double)) == 0
                ? "λ_t = λ*_t (UNGrad)" : "λ_t (used)", x, lam, n, "#1f77b4", 0);
    if (!p->nseries) line(p, "λ_t (this method has none)", x, x, 0, "#1f77b4", 0);

    p = &fig.panel[fig.npanels++];
    /* ℓ_u and ℓ_r differ in scale (and ℓ_u may be negative): two axes. */
    *p = (plot_panel){.title = "losses over the steps", .xlabel = "step",
                      .ylabel = "ℓ_u (forgetting loss)", .y2label = "ℓ_r (retaining loss)",
                      .tight_x = 1};
    line(p, "ℓ_u(θ_t; B_f) (left)", x, trace_get(&b, trace, "loss_u", n), n, "#9467bd", 0);
    plot_series *r1 = line(p, "ℓ_r(θ_t) before (right)", x,
                           trace_get(&b, trace, "loss_r_before", n), n, "#2ca02c", 0);
    plot_series *r2 = line(p, "ℓ_r(θ_t+1) after (right)", x,
                           trace_get(&b, trace, "loss_r_after", n), n, "#ff7f0e", 0);
    if (r1) r1->y2 = r1->width = 1;
    if (r2) r2->y2 = r2->width = 1;
    if (!r1 && !r2) p->y2label = NULL;

    double *sd = trace_get(&b, trace, "audit_sum_delta", n);
    if (sd) {
        long first = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(aud, "first_violation_step"))
                         ? (long)num(aud, "first_violation_step") : -1;
        const cJSON *held = cJSON_GetObjectItemCaseSensitive(aud, "bound_held");
        if (cJSON_IsTrue(held))
            snprintf(atitle, sizeof atitle, "audit on %g held-out samples: bound held at every step",
                     num(aud, "probe"));
        else if (first > 0)
            snprintf(atitle, sizeof atitle, "audit on %g held-out samples: bound broken from step %ld",
                     num(aud, "probe"), first);
        else
            snprintf(atitle, sizeof atitle, "audit on %g held-out samples (no ε: no bound)",
                     num(aud, "probe"));
        p = &fig.panel[fig.npanels++];
        *p = (plot_panel){.title = atitle, .xlabel = "step", .ylabel = "cumulative change of ℓ_r",
                          .zero_line = 1, .tight_x = 1};
        line(p, "Σ Δ_t measured on the probe", x, sd, n, "#1f77b4", 0);
        line(p, "Σ α_t ε_t allowed", x, trace_get(&b, trace, "audit_sum_allowed", n), n,
             "#d62728", 1);
        p = &fig.panel[fig.npanels++];
        *p = (plot_panel){.title = "audit per step", .xlabel = "step",
                          .ylabel = "change of ℓ_r in one step", .zero_line = 1, .tight_x = 1};
        plot_series *d = line(p, "Δ_t = ℓ_r(θ_t+1) − ℓ_r(θ_t) on the probe", x,
                              trace_get(&b, trace, "audit_delta", n), n, "#1f77b4", 0);
        if (d) d->width = 1;
        line(p, "α_t ε_t allowed", x, trace_get(&b, trace, "audit_allowed", n), n, "#d62728", 0);
    }
    double *cosv = trace_get(&b, trace, "cos", n);
    if (cosv) {
        p = &fig.panel[fig.npanels++];
        snprintf(ctitle, sizeof ctitle, "gradient conflict: %.0f%% of steps have ⟨g_u, g_r⟩ < 0",
                 100.0 * num(diag, "conflict_share"));
        *p = (plot_panel){.title = ctitle, .xlabel = "step", .ylabel = "cos(g_u, g_r)",
                          .zero_line = 1, .tight_x = 1};
        plot_series *cs = line(p, "cos(g_u, g_r); below 0: the gradients conflict", x, cosv, n,
                               "#8c564b", 0);
        if (cs) cs->width = 1;
    }
    fig.rows = fig.npanels <= 2 ? 1 : 2;
    fig.cols = fig.npanels <= 4 ? 2 : 3;
    lethe_status st = plot_render(&fig, prefix);
    buf_free(&b);
    return st;
}

/* λ_t of several runs side by side, and the gap |λ_t − λ*_t| where the
 * runs recorded λ*_t (diagnostics), as a moving mean: per-step λ*_t is as
 * noisy as one batch. */
lethe_status plot_lambda_compare(const char *const *labels, const cJSON *const *runs, int n,
                                 const char *title, const char *prefix)
{
    static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                   "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
    if (n < 1) return lethe_fail(LETHE_ERR_FORMAT, "no runs with a trace to compare");
    if (n > PLOT_MAX_SERIES) n = PLOT_MAX_SERIES;
    bufs b = {0};
    plot_figure fig;
    memset(&fig, 0, sizeof fig);
    fig.title = title;
    char gtitle[160];
    plot_panel *pl = &fig.panel[0], *pg = &fig.panel[1];
    *pl = (plot_panel){.title = "λ_t over the steps", .xlabel = "step", .ylabel = "λ_t",
                       .tight_x = 1};
    long window = 1;
    for (int r = 0; r < n; r++) {
        const cJSON *trace = cJSON_GetObjectItemCaseSensitive(runs[r], "trace");
        int T = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(trace, "lambda"));
        if (T / 25 > window) window = T / 25;
    }
    snprintf(gtitle, sizeof gtitle, "gap to the explicit λ*_t (mean over %ld steps)", window);
    *pg = (plot_panel){.title = gtitle, .xlabel = "step", .ylabel = "|λ_t − λ*_t|", .tight_x = 1};
    for (int r = 0; r < n; r++) {
        const cJSON *trace = cJSON_GetObjectItemCaseSensitive(runs[r], "trace");
        int T = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(trace, "lambda"));
        if (T < 1) continue;
        double *x = buf_alloc(&b, (size_t)T * sizeof(double));     /* (T) */
        double *lam = trace_get(&b, trace, "lambda", T);
        double *ls = trace_get(&b, trace, "lambda_star", T);
        if (!x) break;
        for (int i = 0; i < T; i++) x[i] = i + 1;
        line(pl, labels[r], x, lam, T, colors[r % 8], 0);
        if (!lam || !ls) continue;
        double *gap = buf_alloc(&b, (size_t)T * sizeof(double));   /* (T) moving mean */
        if (!gap) break;
        for (int i = 0; i < T; i++) {
            double sum = 0;
            int k = 0;
            for (long j = i - window + 1 < 0 ? 0 : i - window + 1; j <= i; j++)
                if (isfinite(lam[j]) && isfinite(ls[j])) {
                    sum += fabs(lam[j] - ls[j]);
                    k++;
                }
            gap[i] = k ? sum / k : NAN;
        }
        line(pg, labels[r], x, gap, T, colors[r % 8], 0);
    }
    if (!pl->nseries) {
        buf_free(&b);
        return lethe_fail(LETHE_ERR_FORMAT, "no run has a λ trace");
    }
    fig.npanels = pg->nseries ? 2 : 1;
    fig.rows = 1;
    fig.cols = fig.npanels;
    lethe_status st = plot_render(&fig, prefix);
    buf_free(&b);
    return st;
}

/* ------------------------------------------------------------ command */

static const cli_opt opts[] = {
    CLI_HEADING("inputs"),
    CLI_NOTE("An unlearn report (--report of lethe unlearn) gives λ_t, the losses and, when "
             "recorded, the audit and diagnostics; results of sweep or bench give UA against "
             "RA and TA; several unlearn reports, their λ_t side by side. Needs gnuplot."),
    CLI_HEADING("outputs"),
    {"out", "PREFIX", "write PREFIX.png and PREFIX.svg (default: the first JSON path less "
                      ".json, plus -lambda for comparisons)", 0},
    {"lambda", NULL, "with sweep or bench results: λ_t of every run side by side", 1},
    {"quiet", NULL, "no 'wrote' line", 1},
    CLI_EXAMPLE("lethe plot runs/unlearn.json"),
    CLI_EXAMPLE("lethe plot runs/sweep-fmnist-cw-eupmu-eps.json --out runs/tradeoff"),
    {NULL, NULL, NULL, 0},
};

#define MAX_FILES 8

int cmd_plot(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse_pos(&a, "plot", "REPORT.json [REPORT2.json …] [--lambda] [--out PREFIX]",
                          opts, MAX_FILES, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    if (a.npos < 1)
        return cli_usage_error("plot", "expected 1 to %d JSON files (unlearn reports, or the "
                               "results of sweep or bench)", MAX_FILES);
    int compare = a.npos > 1 || cli_flag(&a, "lambda");
    const char *path = a.pos[0];
    char prefix[4096];
    snprintf(prefix, sizeof prefix, "%s", cli_str(&a, "out", path));
    size_t k = strlen(prefix);
    if (!cli_str(&a, "out", NULL)) {
        if (k > 5 && strcmp(prefix + k - 5, ".json") == 0) prefix[k - 5] = 0;
        if (compare) strncat(prefix, "-lambda", sizeof prefix - strlen(prefix) - 1);
    }
    char png[4200], svg[4200];
    snprintf(png, sizeof png, "%s.png", prefix);
    snprintf(svg, sizeof svg, "%s.svg", prefix);
    /* A prefix the user named follows the rule of outputs (--force); the
     * default, named after the input, is replaced freely. */
    if (cli_str(&a, "out", NULL) ? ((r = cli_check_named_output(&a, "out", png)) ||
                                    (r = cli_check_named_output(&a, "out", svg)))
                                 : (r = cli_check_output("plot", NULL, png)) != 0)
        return r;
    cJSON *root[MAX_FILES] = {0};
    lethe_status st = LETHE_OK;
    int nf = 0;
    for (; nf < a.npos && st == LETHE_OK; nf++)
        if ((st = plot_read_json(a.pos[nf], &root[nf])) != LETHE_OK) path = a.pos[nf];
    if (st != LETHE_OK) {
        r = cli_lib_error("plot", st);
        goto done;
    }
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(root[0], "run");
    const cJSON *methods = cJSON_GetObjectItemCaseSensitive(root[0], "methods");
    if (compare) {
        /* Runs from several reports, or every run of one results file. */
        const char *labels[PLOT_MAX_SERIES];
        const cJSON *runs[PLOT_MAX_SERIES];
        int n = 0;
        char title[256];
        if (a.npos > 1) {
            for (int i = 0; i < a.npos && n < PLOT_MAX_SERIES; i++) {
                const cJSON *ri = cJSON_GetObjectItemCaseSensitive(root[i], "run");
                const cJSON *ci = cJSON_GetObjectItemCaseSensitive(root[i], "config");
                if (!cJSON_GetObjectItemCaseSensitive(ri, "trace")) {
                    path = a.pos[i];
                    st = lethe_fail(LETHE_ERR_FORMAT, "not an unlearn report (no run.trace)");
                    break;
                }
                labels[n] = str(ci, "method") ? str(ci, "method") : a.pos[i];
                runs[n++] = ri;
            }
            snprintf(title, sizeof title, "λ of %d runs", n);
        } else {
            const cJSON *it;
            cJSON_ArrayForEach(it, methods) {
                const cJSON *ri = cJSON_GetObjectItemCaseSensitive(it, "run");
                if (n >= PLOT_MAX_SERIES || !cJSON_GetObjectItemCaseSensitive(ri, "trace")) continue;
                const char *l = str(it, "label");
                labels[n] = l ? l : str(cJSON_GetObjectItemCaseSensitive(it, "config"), "method");
                if (!labels[n]) labels[n] = "?";
                runs[n++] = ri;
            }
            snprintf(title, sizeof title, "%s (forget %s): λ of each run",
                     str(root[0], "scenario") ? str(root[0], "scenario") : "",
                     str(root[0], "forget") ? str(root[0], "forget") : "?");
        }
        if (st == LETHE_OK) st = plot_lambda_compare(labels, runs, n, title, prefix);
    } else if (cJSON_GetObjectItemCaseSensitive(run, "trace")) {
        st = plot_report(root[0], prefix);
    } else if (methods) {
        st = plot_tradeoff(root[0], prefix);
    } else {
        st = lethe_fail(LETHE_ERR_FORMAT, "neither an unlearn report (run.trace) nor "
                        "results of sweep or bench (methods)");
    }
    if (st != LETHE_OK) {
        r = cli_error("plot", "%s: %s", path, lethe_last_error());
        goto done;
    }
    if (!cli_flag(&a, "quiet")) printf("wrote %s.png and %s.svg\n", prefix, prefix);
    r = 0;
done:
    for (int i = 0; i < nf; i++) cJSON_Delete(root[i]);
    return r;
}
