/* The command line's one table printer. A table is a list of columns, each
 * a header and a printf format of its numbers; rows are written cell by cell
 * as they come (tune shows a setting before its results), and a row ended
 * early is padded with empty cells.
 *   Markdown: | a | b | under a |---| rule; missing "–"; spread "m ± sd".
 *   LaTeX:    booktabs tabular; text escaped; missing "--"; "m $\pm$ sd".
 *   CSV:      single numbers "%.6g" (for further processing); text quoted
 *             where needed; missing: empty; a spread in a column HEAD_sd.
 *
 *     static const table_col cols[] = {TABLE_COL("method", NULL), TABLE_COL("UA", "%.2f")};
 *     table t;
 *     table_begin(&t, stdout, TABLE_MARKDOWN, cols, 2);      // | method | UA |, |---|---|
 *     table_text(&t, "%s", "ft");
 *     table_num(&t, NAN);
 *     table_end_row(&t);                                     // | ft | – |          */
#ifndef LETHE_CLI_TABLE_H
#define LETHE_CLI_TABLE_H

#include <stdio.h>

typedef enum { TABLE_MARKDOWN, TABLE_LATEX, TABLE_CSV } table_format;

typedef struct {
    const char *head, *fmt;   /* header; format of 1-3 numbers ("%.0f/%.0f"), NULL: text */
    const char *tex, *csv;    /* the header in LaTeX and CSV (NULL: head) */
    int sd, hide;             /* CSV: a column HEAD_sd beside it; hide: left out */
} table_col;
#define TABLE_COL(head, fmt) {(head), (fmt), NULL, NULL, 0, 0}

typedef struct {
    FILE *out;
    table_format format;
    const table_col *col;     /* the caller's, alive until the last row */
    int ncol, at, shown;      /* next cell's column; cells written in the row */
} table;

/* Write the header to out (flushed, like every row). */
void table_begin(table *t, FILE *out, table_format format, const table_col *col, int ncol);
/* Numbers into cells, each cell taking as many as its column's format (a
 * cell whose first number is not finite is missing). */
void table_nums(table *t, const double *v, int n);
void table_num(table *t, double v);
/* "mean ± sd"; the mean alone if sd is not finite. */
void table_sd(table *t, double mean, double sd);
/* A text cell, printf-style ("" is empty). */
void table_text(table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Markdown: a remark after the row's last bar. */
void table_note(table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void table_end_row(table *t);
/* LaTeX: a rule between groups of rows; the closing lines. */
void table_rule(table *t);
void table_end(table *t);

#endif
