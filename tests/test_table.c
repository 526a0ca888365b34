/* The command line's table printer (src/cli/table.c, linked into the
 * tests on its own): every format written out by hand. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "cli/table.h"

/* The text the printer writes for cols[0..n) and the rows fill() adds. */
static char *render(table_format format, const table_col *cols, int n, void (*fill)(table *))
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    table t;
    table_begin(&t, f, format, cols, n);
    fill(&t);
    table_end(&t);
    fclose(f);
    return text;
}

/* Two rows of three columns, a value missing. */
static const table_col cols23[] = {{"method", NULL, "Method", NULL, 0, 0}, TABLE_COL("UA", "%.2f"),
                                   {"RTE (s)", "%.1f", NULL, "rte_s", 0, 0}};

static void fill23(table *t)
{
    table_text(t, "ft_%d", 1);
    table_num(t, 99.5);
    table_num(t, 1.26);
    table_end_row(t);
    table_text(t, "a,b");
    table_num(t, NAN);
    table_num(t, 12);
    table_end_row(t);
}

/* A spread (CSV: a column of its own), a hidden column, a cell of two
 * numbers, and a row ended early: padded, with a remark after it. */
static const table_col cols_sd[] = {TABLE_COL("m", NULL), {"x", "%.1f", NULL, NULL, 1, 0},
                                    {"no", "%.0f", NULL, NULL, 0, 1},
                                    TABLE_COL("passes", "%.0f/%.0f")};

static void fill_sd(table *t)
{
    table_text(t, "r");
    table_sd(t, 1.0, 0.26);
    table_num(t, 5);
    table_nums(t, (const double[]){3, 4}, 2);
    table_end_row(t);
    table_text(t, "failed: \"x\"");
    table_note(t, "(%d of %d seeds failed)", 1, 2);
    table_end_row(t);
}

static const struct {
    const table_col *cols;
    int ncol;
    void (*fill)(table *);
    table_format format;
    const char *want;
} cases[] = {
    {cols23, 3, fill23, TABLE_MARKDOWN,
     "| method | UA | RTE (s) |\n"
     "|---|---|---|\n"
     "| ft_1 | 99.50 | 1.3 |\n"
     "| a,b | – | 12.0 |\n"},
    {cols23, 3, fill23, TABLE_LATEX,
     "\\begin{tabular}{lrr}\n"
     "\\toprule\n"
     "Method & UA & RTE (s) \\\\\n"
     "\\midrule\n"
     "ft\\_1 & 99.50 & 1.3 \\\\\n"
     "a,b & -- & 12.0 \\\\\n"
     "\\bottomrule\n"
     "\\end{tabular}\n"},
    {cols23, 3, fill23, TABLE_CSV,
     "method,UA,rte_s\n"
     "ft_1,99.5,1.26\n"
     "\"a,b\",,12\n"},
    {cols_sd, 4, fill_sd, TABLE_MARKDOWN,
     "| m | x | passes |\n"
     "|---|---|---|\n"
     "| r | 1.0 ± 0.3 | 3/4 |\n"
     "| failed: \"x\" | | | (1 of 2 seeds failed)\n"},
    {cols_sd, 4, fill_sd, TABLE_LATEX,     /* the header and closing lines as above */
     "\\begin{tabular}{lrr}\n\\toprule\nm & x & passes \\\\\n\\midrule\n"
     "r & 1.0 $\\pm$ 0.3 & 3/4 \\\\\n"
     "failed: \"x\" &  &  \\\\\n"
     "\\bottomrule\n\\end{tabular}\n"},
    {cols_sd, 4, fill_sd, TABLE_CSV,
     "m,x,x_sd,passes\n"
     "r,1,0.26,3/4\n"
     "\"failed: \"\"x\"\"\",,,\n"},
};

/* The 2×3 table with a missing value, and the spread one, in Markdown,
 * LaTeX and CSV: each the text written out above. */
TEST(table_every_format)
{
    static const char *const name[] = {"markdown", "latex", "csv"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = render(cases[i].format, cases[i].cols, cases[i].ncol, cases[i].fill);
        CHECK_MSG(got && strcmp(got, cases[i].want) == 0, "case %zu (%s):\n%s\nexpected:\n%s", i,
                  name[cases[i].format], got ? got : "(none)", cases[i].want);
        free(got);
    }
}
