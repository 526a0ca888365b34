/* Figures through gnuplot (Debian gnuplot-nox): a figure is a grid of
 * panels, each a few series of points; plot_render writes a gnuplot script
 * with the data inline to a temporary file, runs gnuplot on it and leaves
 * PREFIX.png (pngcairo) and PREFIX.svg, each written to a temporary name
 * and renamed. The figures of lethe sweep and lethe plot are built here
 * from the JSON those commands write. */
#ifndef LETHE_CLI_PLOT_H
#define LETHE_CLI_PLOT_H

#include <cjson/cJSON.h>

#include "lethe.h"

#define PLOT_MAX_SERIES 8
#define PLOT_MAX_PANELS 6

typedef enum { PLOT_LINES, PLOT_POINTS, PLOT_LINESPOINTS, PLOT_STEPS } plot_style;

typedef struct {
    const char *title;          /* legend entry (NULL: none) */
    int n;
    const double *x, *y;        /* (n); a NaN y leaves a gap */
    const char *const *labels;  /* (n) text beside each point, or NULL */
    plot_style style;
    int point;                  /* gnuplot point type (0: default) */
    double size;                /* point size (0: 1.2) */
    const char *color;          /* "#rrggbb" (NULL: gnuplot's sequence) */
    int width;                  /* line width (0: 2) */
    int dashed;
    int y2;                     /* on the right-hand y axis */
} plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    const char *y2label;        /* set: a right-hand axis for series with y2 */
    int logx, logy;
    int zero_line;              /* draw y = 0 */
    int tight_x;                /* x range exactly the data's (step axes) */
    const char *key;            /* key position inside, e.g. "top left" (NULL: top right) */
    int key_below;              /* key under the panel instead (no band kept free) */
    int nseries;
    plot_series series[PLOT_MAX_SERIES];
} plot_panel;

typedef struct {
    const char *title;
    int rows, cols;
    int npanels;
    plot_panel panel[PLOT_MAX_PANELS];
} plot_figure;

/* Render f to PREFIX.png and PREFIX.svg. LETHE_ERR_NOTFOUND if gnuplot is
 * missing; LETHE_ERR_IO (with gnuplot's first error line) if it fails. */
lethe_status plot_render(const plot_figure *f, const char *prefix);

/* UA against RA and against TA, one point per setting (from the JSON of
 * lethe sweep or lethe bench), with Original and Retrain marked. */
lethe_status plot_tradeoff(const cJSON *results, const char *prefix);
/* λ_t, ℓ_u, ℓ_r over the steps of an unlearn report (its run.trace), with
 * the audit and the diagnostics when present. */
lethe_status plot_report(const cJSON *report, const char *prefix);

/* λ_t of n runs (report "run" objects with a trace) in one panel, and
 * the moving mean of |λ_t − λ*_t| where λ*_t was recorded in another. */
lethe_status plot_lambda_compare(const char *const *labels, const cJSON *const *runs, int n,
                                 const char *title, const char *prefix);

/* Read a whole JSON file (caller frees with cJSON_Delete). */
lethe_status plot_read_json(const char *path, cJSON **out);

#endif
