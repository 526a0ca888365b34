/* lethe table: the results JSON of bench or sweep (or one unlearn report)
 * as a table for a paper: Markdown, LaTeX (booktabs) or CSV. The diagnostics
 * columns appear when any row recorded them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/fail.h"
#include "cli/plot.h"
#include "cli/table.h"

enum { C_UA, C_RA, C_TA, C_MIA, C_GAP, C_RTE, C_FWD, C_BWD, C_CONFLICT, C_LGAP, NCOL };

typedef struct {
    char name[160];
    double v[NCOL];         /* NaN: empty cell */
    double sd[NCOL];        /* spread over seeds (bench --seeds); NaN: none */
} row;

typedef struct {
    int n, cap;
    row *r;
} rows;

static double num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static row *add_row(rows *t, const char *name)
{
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        row *r = realloc(t->r, (size_t)cap * sizeof(row));
        if (!r) return NULL;
        t->r = r;
        t->cap = cap;
    }
    row *r = &t->r[t->n++];
    snprintf(r->name, sizeof r->name, "%s", name);
    for (int k = 0; k < NCOL; k++) r->v[k] = r->sd[k] = NAN;
    return r;
}

/* MIA-Efficacy of a metrics object: "MIA_Eff" (schema 2), "MIA" before. */
static double mia(const cJSON *m)
{
    return cJSON_GetObjectItemCaseSensitive(m, "MIA_Eff") ? num(m, "MIA_Eff") : num(m, "MIA");
}

/* Mean over UA, RA, TA and MIA-Eff. of |m − ref| (lethe_avg_gap's rule). */
static double gap(const cJSON *m, const cJSON *ref)
{
    static const char *keys[] = {"UA", "RA", "TA"};
    if (!cJSON_IsObject(m) || !cJSON_IsObject(ref)) return NAN;
    double s = fabs(mia(m) - mia(ref));
    for (int k = 0; k < 3; k++) s += fabs(num(m, keys[k]) - num(ref, keys[k]));
    return s / 4;
}

/* The standard deviations of a multi-seed row ("spread" of bench --seeds). */
static void fill_sd(row *r, const cJSON *holder)
{
    static const struct { int col; const char *key; } keys[] = {
        {C_UA, "UA"}, {C_RA, "RA"}, {C_TA, "TA"}, {C_GAP, "avg_gap"},
        {C_RTE, "rte_s"}};
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(holder, "spread"), "sd");
    if (!r || !cJSON_IsObject(sd)) return;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) r->sd[keys[k].col] = num(sd, keys[k].key);
    r->sd[C_MIA] = mia(sd);
}

static int fill(row *r, const cJSON *metrics, const cJSON *ref, const cJSON *run, double avg_gap)
{
    if (!r) return 0;
    r->v[C_UA] = num(metrics, "UA");
    r->v[C_RA] = num(metrics, "RA");
    r->v[C_TA] = num(metrics, "TA");
    r->v[C_MIA] = mia(metrics);
    r->v[C_GAP] = isfinite(avg_gap) ? avg_gap : gap(metrics, ref);
    if (run) {
        r->v[C_RTE] = num(run, "seconds");
        r->v[C_FWD] = num(run, "forward_passes");
        r->v[C_BWD] = num(run, "backward_passes");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(run, "diagnostics");
        r->v[C_CONFLICT] = 100.0 * num(d, "conflict_share");
        r->v[C_LGAP] = num(d, "mean_lambda_gap");
    }
    return 1;
}

static lethe_status collect(const cJSON *root, rows *t)
{
    const cJSON *methods = cJSON_GetObjectItemCaseSensitive(root, "methods");
    const cJSON *orig = cJSON_GetObjectItemCaseSensitive(root, "original");
    const cJSON *retr = cJSON_GetObjectItemCaseSensitive(root, "retrain");
    int ok = 1;
    if (cJSON_IsArray(methods)) {
        /* bench or sweep results. */
        if (cJSON_IsObject(orig)) {
            row *r = add_row(t, "Original");
            ok &= fill(r, orig, retr, NULL, NAN);
            fill_sd(r, orig);
            /* Over varied training seeds, the gap is the mean of each seed's. */
            const cJSON *mg = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(orig, "spread"), "mean");
            if (r && isfinite(num(mg, "avg_gap"))) r->v[C_GAP] = num(mg, "avg_gap");
        }
        if (cJSON_IsObject(retr)) {
            row *r = add_row(t, "Retrain");
            ok &= fill(r, retr, retr, NULL, 0.0);
            if (r) r->v[C_RTE] = num(retr, "seconds");
            fill_sd(r, retr);
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, methods) {
            const cJSON *met = cJSON_GetObjectItemCaseSensitive(it, "metrics");
            if (!cJSON_IsObject(met)) continue;
            const cJSON *lab = cJSON_GetObjectItemCaseSensitive(it, "label");
            const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(it, "config");
            const cJSON *meth = cJSON_GetObjectItemCaseSensitive(cfg, "method");
            const char *name = cJSON_IsString(lab)    ? lab->valuestring
                               : cJSON_IsString(meth) ? meth->valuestring : "?";
            row *r = add_row(t, name);
            ok &= fill(r, met, retr, cJSON_GetObjectItemCaseSensitive(it, "run"),
                       num(it, "avg_gap"));
            fill_sd(r, it);
        }
    } else if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "metrics"))) {
        /* One unlearn report. */
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(root, "reference");
        const cJSON *before = cJSON_GetObjectItemCaseSensitive(root, "metrics_before");
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
        const cJSON *meth = cJSON_GetObjectItemCaseSensitive(cfg, "method");
        if (cJSON_IsObject(before)) ok &= fill(add_row(t, "Original"), before, ref, NULL, NAN);
        if (cJSON_IsObject(ref)) ok &= fill(add_row(t, "Retrain"), ref, ref, NULL, 0.0);
        ok &= fill(add_row(t, cJSON_IsString(meth) ? meth->valuestring : "?"),
                   cJSON_GetObjectItemCaseSensitive(root, "metrics"), ref,
                   cJSON_GetObjectItemCaseSensitive(root, "run"), num(root, "avg_gap"));
    } else {
        return lethe_fail(LETHE_ERR_FORMAT, "neither results of bench or sweep (methods) nor an "
                          "unlearn report (metrics)");
    }
    if (!ok) return lethe_fail(LETHE_ERR_NOMEM, "out of memory for the table");
    if (t->n == 0) return lethe_fail(LETHE_ERR_FORMAT, "no rows with metrics");
    return LETHE_OK;
}

/* ------------------------------------------------------------- writers */

static const char *heads_md[NCOL] = {"UA", "RA", "TA", "MIA-Eff.", "Avg. Gap", "RTE (s)",
                                     "fwd passes", "bwd passes", "conflict (%)",
                                     "mean \\|λ−λ*\\|"};    /* a bare bar would end the cell */
static const char *heads_tex[NCOL] = {"UA", "RA", "TA", "MIA-Eff.", "Avg.\\ Gap", "RTE (s)",
                                      "Fwd", "Bwd", "Conflict (\\%)",
                                      "$\\overline{|\\lambda-\\lambda^*|}$"};
static const char *heads_csv[NCOL] = {"UA", "RA", "TA", "MIA_Eff", "avg_gap", "rte_s",
                                      "forward_passes", "backward_passes",
                                      "conflict_percent", "mean_lambda_gap"};
static const char *fmt[NCOL] = {"%.2f", "%.2f", "%.2f", "%.2f", "%.2f", "%.1f",
                                "%.0f", "%.0f", "%.1f", "%.3g"};

/* The columns shown (show[k]); in CSV, a column NAME_sd beside each one
 * that has a spread. */
static void write_table(const rows *tb, table_format format, const int *show)
{
    table_col col[1 + NCOL] = {{"method", NULL, "Method", NULL, 0, 0}};
    for (int k = 0; k < NCOL; k++) {
        col[1 + k] = (table_col){heads_md[k], fmt[k], heads_tex[k], heads_csv[k], 0, !show[k]};
        for (int i = 0; i < tb->n && show[k] && !col[1 + k].sd; i++)
            col[1 + k].sd = isfinite(tb->r[i].sd[k]);
    }
    table t;
    table_begin(&t, stdout, format, col, 1 + NCOL);
    for (int i = 0; i < tb->n; i++) {
        table_text(&t, "%s", tb->r[i].name);
        for (int k = 0; k < NCOL; k++) table_sd(&t, tb->r[i].v[k], tb->r[i].sd[k]);
        table_end_row(&t);
        /* A rule between the references and the methods. */
        if (i + 1 < tb->n && strcmp(tb->r[i].name, "Retrain") == 0) table_rule(&t);
    }
    table_end(&t);
}

static const cli_opt opts[] = {
    {"format", "NAME", "markdown | latex | csv (default markdown)", 0},
    {"quiet", NULL, "no effect: table prints only the table", 1},
    CLI_EXAMPLE("lethe table runs/bench-fmnist-cw.json"),
    CLI_EXAMPLE("lethe table runs/sweep-fmnist-cw-eupmu-eps.json --format latex"),
    {NULL, NULL, NULL, 0},
};

int cmd_table(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse_pos(&a, "table", "RESULTS.json [--format markdown|latex|csv]", opts, 1,
                          argc, argv);
    if (r) return r == 1 ? 0 : 2;
    if (a.npos != 1)
        return cli_usage_error("table", "expected one JSON file (results of bench or sweep)");
    const char *format = cli_str(&a, "format", "markdown");
    if (strcmp(format, "markdown") && strcmp(format, "latex") && strcmp(format, "csv"))
        return cli_usage_error("table", "--format: expected markdown, latex or csv, got '%s'",
                               format);
    cJSON *root;
    lethe_status st = plot_read_json(a.pos[0], &root);
    if (st != LETHE_OK) return cli_lib_error("table", st);
    rows t = {0};
    st = collect(root, &t);
    cJSON_Delete(root);
    if (st != LETHE_OK) {
        free(t.r);
        return cli_error("table", "%s: %s", a.pos[0], lethe_last_error());
    }
    /* Columns nobody filled are left out (e.g. no diagnostics recorded). */
    int show[NCOL];
    for (int k = 0; k < NCOL; k++) {
        show[k] = k < C_RTE;
        for (int i = 0; i < t.n && !show[k]; i++) show[k] = isfinite(t.r[i].v[k]);
    }
    write_table(&t, strcmp(format, "latex") == 0 ? TABLE_LATEX
                    : strcmp(format, "csv") == 0 ? TABLE_CSV : TABLE_MARKDOWN, show);
    free(t.r);
    return 0;
}
