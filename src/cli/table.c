/* The table printer (table.h). */
#include "cli/table.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

static const char *const missing[] = {"–", "--", ""};    /* by table_format */

/* s, escaped for LaTeX or quoted for CSV when esc is set. */
static void put(const table *t, const char *s, int esc)
{
    FILE *f = t->out;
    if (esc && t->format == TABLE_LATEX) {
        for (; *s; s++)
            if (*s == '\\') fputs("\\textbackslash{}", f);
            else fprintf(f, strchr("_%&#$", *s) ? "\\%c" : "%c", *s);
    } else if (esc && t->format == TABLE_CSV && strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) fputs(*s == '"' ? "\"\"" : (char[]){*s, 0}, f);
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

/* The next cell (dropped if its column is hidden); sd: CSV's spread field. */
static void cell(table *t, const char *s, int esc, const char *sd)
{
    if (t->at >= t->ncol || t->col[t->at++].hide) return;
    if (t->format == TABLE_MARKDOWN) fputs(t->shown ? (*s ? " " : "") : (*s ? "| " : "|"), t->out);
    else if (t->shown) fputs(t->format == TABLE_CSV ? "," : " & ", t->out);
    put(t, s, esc);
    if (t->format == TABLE_MARKDOWN) fputs(" |", t->out);
    if (t->format == TABLE_CSV && t->col[t->at - 1].sd) fprintf(t->out, ",%s", sd ? sd : "");
    t->shown++;
}

void table_begin(table *t, FILE *out, table_format format, const table_col *col, int ncol)
{
    *t = (table){out, format, col, ncol, 0, 0};
    if (format == TABLE_LATEX) {
        fputs("\\begin{tabular}{", out);
        for (int k = 0, n = 0; k < ncol; k++) fputs(col[k].hide ? "" : n++ ? "r" : "l", out);
        fputs("}\n\\toprule\n", out);
    }
    for (int k = 0; k < ncol; k++) {
        const char *h = format == TABLE_LATEX && col[k].tex ? col[k].tex
                        : format == TABLE_CSV && col[k].csv ? col[k].csv : col[k].head;
        cell(t, h, 0, NULL);
        if (format == TABLE_CSV && col[k].sd && !col[k].hide) fprintf(out, "%s_sd", h);
    }
    if (format == TABLE_MARKDOWN) fputs("\n|", out);
    for (int k = 0; k < ncol && format == TABLE_MARKDOWN; k++) fputs(col[k].hide ? "" : "---|", out);
    fputs(format == TABLE_LATEX ? " \\\\\n\\midrule\n" : "\n", out);
    fflush(out);
    t->at = t->shown = 0;
}

/* How many numbers the next cell's format takes (1 to 3). */
static int wants(const table *t)
{
    const char *f = t->at < t->ncol ? t->col[t->at].fmt : NULL;
    int n = 0;
    for (; f && *f; f++)
        if (*f == '%' && f[1] == '%') f++;    /* "%%" */
        else if (*f == '%') n++;
    return n < 1 ? 1 : n > 3 ? 3 : n;
}

/* x[0..n) in the next cell's format; CSV writes a single number in "%.6g". */
static void format_nums(const table *t, char *buf, size_t size, const double x[3], int n)
{
    const char *fmt = t->at < t->ncol && t->col[t->at].fmt ? t->col[t->at].fmt : "%g";
    snprintf(buf, size, t->format == TABLE_CSV && n == 1 ? "%.6g" : fmt, x[0], x[1], x[2]);
}

void table_nums(table *t, const double *v, int n)
{
    for (int k; n > 0; v += k, n -= k) {
        double x[3] = {0};
        char buf[256];
        k = wants(t);
        memcpy(x, v, (size_t)(k < n ? k : n) * sizeof x[0]);
        if (isfinite(x[0])) format_nums(t, buf, sizeof buf, x, k);
        cell(t, isfinite(x[0]) ? buf : missing[t->format], 0, NULL);
    }
}

void table_num(table *t, double v)
{
    table_nums(t, &v, 1);
}

void table_sd(table *t, double mean, double sd)
{
    char buf[256] = "", sbuf[128] = "";
    if (isfinite(sd)) format_nums(t, sbuf, sizeof sbuf, (const double[3]){sd}, 1);
    if (isfinite(mean)) format_nums(t, buf, sizeof buf, (const double[3]){mean}, 1);
    if (isfinite(mean) && isfinite(sd) && t->format != TABLE_CSV)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s",
                 t->format == TABLE_LATEX ? " $\\pm$ " : " ± ", sbuf);
    cell(t, isfinite(mean) ? buf : missing[t->format], 0, sbuf);
}

void table_text(table *t, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cell(t, buf, 1, NULL);
}

void table_note(table *t, const char *fmt, ...)
{
    while (t->at < t->ncol) cell(t, "", 0, NULL);
    va_list ap;
    va_start(ap, fmt);
    if (t->format == TABLE_MARKDOWN) {
        fputc(' ', t->out);
        vfprintf(t->out, fmt, ap);
    }
    va_end(ap);
}

void table_end_row(table *t)
{
    while (t->at < t->ncol) cell(t, "", 0, NULL);
    fputs(t->format == TABLE_LATEX ? " \\\\\n" : "\n", t->out);
    fflush(t->out);
    t->at = t->shown = 0;
}

void table_rule(table *t)
{
    if (t->format == TABLE_LATEX) fputs("\\midrule\n", t->out);
}

void table_end(table *t)
{
    if (t->format == TABLE_LATEX) fputs("\\bottomrule\n\\end{tabular}\n", t->out);
}
