/* The gnuplot driver: one generated script per figure, data inline as
 * datablocks, rendered twice (pngcairo, svg) to temporary files that are
 * put in place (io_out_copy: a regular file renamed over, a device or a
 * FIFO written through) only when gnuplot succeeded. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/plot.h"
#include "core/fail.h"
#include "io/json.h"
#include "io/outpath.h"

/* Text for a double-quoted gnuplot string: no quotes, backslashes or line
 * breaks (the terminals run noenhanced, so _ and ^ are literal). */
static void put_text(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        char ch = *s;
        if (ch == '"') ch = '\'';
        else if (ch == '\\') ch = '/';
        else if (ch == '\n' || ch == '\r') ch = ' ';
        fputc(ch, f);
    }
    fputc('"', f);
}

/* A file name as a single-quoted gnuplot string ('' stands for '). */
static void put_path(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static void put_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("NaN", f);
}

static void write_data(FILE *f, const plot_figure *fig)
{
    for (int p = 0; p < fig->npanels; p++)
        for (int s = 0; s < fig->panel[p].nseries; s++) {
            const plot_series *se = &fig->panel[p].series[s];
            fprintf(f, "$d_%d_%d << EOD\n", p, s);
            for (int i = 0; i < se->n; i++) {
                put_num(f, se->x[i]);
                fputc(' ', f);
                put_num(f, se->y[i]);
                if (se->labels) {
                    fputc(' ', f);
                    put_text(f, se->labels[i] ? se->labels[i] : "");
                }
                fputc('\n', f);
            }
            /* gnuplot rejects an empty datablock in a plot: one gap point. */
            if (se->n == 0) fputs(se->labels ? "NaN NaN \"\"\n" : "NaN NaN\n", f);
            fputs("EOD\n", f);
        }
}

static void write_panel(FILE *f, const plot_panel *pn, int p)
{
    fputs("set title ", f);
    put_text(f, pn->title ? pn->title : "");
    fputs("\nset xlabel ", f);
    put_text(f, pn->xlabel ? pn->xlabel : "");
    fputs("\nset ylabel ", f);
    put_text(f, pn->ylabel ? pn->ylabel : "");
    fputs("\nunset logscale\n", f);
    if (pn->logx) fputs("set logscale x\n", f);
    if (pn->logy) fputs("set logscale y\n", f);
    fputs(pn->zero_line ? "set xzeroaxis lt 1 lw 1 lc rgb '#777777'\n" : "unset xzeroaxis\n", f);
    /* The legend sits in a band kept free above the data (the top offset
     * grows with its lines), so it never hides a curve. */
    int lines = 0;
    for (int s = 0; s < pn->nseries; s++) lines += pn->series[s].title != NULL;
    if (pn->key_below) {
        /* gnuplot's own bottom margin lets the key cover the x label. */
        fputs("set key below horizontal box lc rgb '#cccccc' font ',10' samplen 2 maxrows 2\n"
              "set bmargin 7\n", f);
        lines = 0;
    } else {
        fprintf(f, "set key %s opaque box lc rgb '#cccccc' font ',10' samplen 2 spacing 1.1\n"
                "set bmargin\n", pn->key ? pn->key : "top right");
    }
    fputs("set grid lc rgb '#dddddd'\nset autoscale\n", f);
    /* Room around the points (labels, markers); step axes end at the data. */
    fprintf(f, "set offsets %s, graph %.2f, graph 0.06\n",
            pn->tight_x ? "0, 0" : "graph 0.06, graph 0.12", 0.08 + 0.13 * lines);
    if (pn->y2label) {
        fputs("set y2label ", f);
        put_text(f, pn->y2label);
        fputs("\nset y2tics nomirror\nset ytics nomirror\n", f);
        /* offsets act on y1 only: leave the same band free on y2. */
        double lo = INFINITY, hi = -INFINITY;
        for (int s = 0; s < pn->nseries; s++)
            for (int i = 0; pn->series[s].y2 && i < pn->series[s].n; i++) {
                double v = pn->series[s].y[i];
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
        double r = hi - lo > 0 ? hi - lo : 1.0;
        if (isfinite(lo) && isfinite(hi))
            fprintf(f, "set y2range [%.9g:%.9g]\n", lo - 0.06 * r, hi + (0.08 + 0.13 * lines) * r);
        else
            fputs("set y2range [*:*]\n", f);
    } else {
        fputs("unset y2label\nunset y2tics\nset ytics mirror\n", f);
    }
    fputs("plot ", f);
    int first = 1;
    for (int s = 0; s < pn->nseries; s++) {
        const plot_series *se = &pn->series[s];
        static const char *styles[] = {"lines", "points", "linespoints", "steps"};
        if (!first) fputs(", \\\n     ", f);
        first = 0;
        fprintf(f, "$d_%d_%d using 1:2%s with %s", p, s, se->y2 ? " axes x1y2" : "",
                styles[se->style]);
        if (se->style != PLOT_LINES && se->style != PLOT_STEPS)
            fprintf(f, " pt %d ps %.2f", se->point ? se->point : 7, se->size > 0 ? se->size : 1.2);
        fprintf(f, " lw %d", se->width ? se->width : 2);
        if (se->dashed) fputs(" dt 2", f);
        if (se->color) fprintf(f, " lc rgb '%s'", se->color);
        if (se->title) {
            fputs(" title ", f);
            put_text(f, se->title);
        } else {
            fputs(" notitle", f);
        }
        /* Labels alternate above and below their points: neighbours overlap less. */
        for (int half = 0; se->labels && half < 2; half++) {
            fprintf(f, ", \\\n     $d_%d_%d using 1:2:(int($0) %% 2 == %d ? strcol(3) : '') "
                    "with labels offset char 0.8,%s font ',9' left", p, s, half,
                    half ? "-0.8" : "0.8");
            if (se->color) fprintf(f, " tc rgb '%s'", se->color);
            fputs(" notitle", f);
        }
    }
    fputc('\n', f);
}

static void write_body(FILE *f, const plot_figure *fig)
{
    fprintf(f, "set multiplot layout %d,%d title ", fig->rows, fig->cols);
    put_text(f, fig->title ? fig->title : "");
    fputs(" font ',13'\n", f);
    for (int p = 0; p < fig->npanels; p++) write_panel(f, &fig->panel[p], p);
    fputs("unset multiplot\nunset output\n", f);
}

/* The first line of gnuplot's stderr that reports an error, else the last. */
static void first_error(const char *path, char *msg, size_t n)
{
    msg[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || strspn(line, " ^") == strlen(line)) continue;
        snprintf(msg, n, "%s", line);
        if (strstr(line, "rror") || strstr(line, "line ")) break;
    }
    fclose(f);
}

static lethe_status run_gnuplot(const char *script, const char *errpath)
{
    pid_t pid = fork();
    if (pid < 0) return lethe_fail(LETHE_ERR_IO, "cannot start gnuplot: %s", strerror(errno));
    if (pid == 0) {
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int nul = open("/dev/null", O_RDWR);
        if (e >= 0) dup2(e, 2);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
        }
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return lethe_fail(LETHE_ERR_IO, "waiting for gnuplot: %s", strerror(errno));
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127)
        return lethe_fail(LETHE_ERR_NOTFOUND, "gnuplot not found: plots need it "
                          "(apt-get install gnuplot-nox)");
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        char msg[512];
        first_error(errpath, msg, sizeof msg);
        return lethe_fail(LETHE_ERR_IO, "gnuplot failed: %s", msg[0] ? msg : "no message");
    }
    return LETHE_OK;
}

lethe_status plot_render(const plot_figure *fig, const char *prefix)
{
    if (fig->npanels < 1 || fig->npanels > PLOT_MAX_PANELS || fig->rows * fig->cols < fig->npanels)
        return lethe_fail(LETHE_ERR_ARG, "plot: %d panels do not fit a %dx%d grid", fig->npanels,
                          fig->rows, fig->cols);
    char png[4096], svg[4096];
    if (snprintf(png, sizeof png, "%s.png", prefix) >= (int)sizeof png ||
        snprintf(svg, sizeof svg, "%s.svg", prefix) >= (int)sizeof svg)
        return lethe_fail(LETHE_ERR_ARG, "%s: plot path too long", prefix);
    /* gnuplot draws into files beside its script; io_out_copy then puts
     * them in place by the rule of every output (io/outpath.h). */
    char script[] = "/tmp/lethe-plot-XXXXXX", errpath[64], tpng[64], tsvg[64];
    int fd = mkstemp(script);
    if (fd < 0) return lethe_fail(LETHE_ERR_IO, "cannot create a plot script: %s", strerror(errno));
    snprintf(errpath, sizeof errpath, "%s.err", script);
    snprintf(tpng, sizeof tpng, "%s.png", script);
    snprintf(tsvg, sizeof tsvg, "%s.svg", script);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        remove(script);
        return lethe_fail(LETHE_ERR_IO, "cannot write the plot script: %s", strerror(errno));
    }
    /* About 500×380 pixels a panel, never below 1000×600. */
    int w = 520 * fig->cols, h = 380 * fig->rows + 40;
    if (w < 1000) w = 1000;
    if (h < 600) h = 600;
    /* NaN data are undefined points: lines break there. */
    fputs("# generated by lethe\nset encoding utf8\n", f);
    write_data(f, fig);
    fprintf(f, "set terminal pngcairo size %d,%d noenhanced font 'DejaVu Sans,11' "
            "background rgb 'white'\nset output ", w, h);
    put_path(f, tpng);
    fputc('\n', f);
    write_body(f, fig);
    fprintf(f, "set terminal svg size %d,%d noenhanced font 'DejaVu Sans,11' "
            "background rgb 'white'\nset output ", w, h);
    put_path(f, tsvg);
    fputc('\n', f);
    write_body(f, fig);
    lethe_status st = LETHE_OK;
    if (ferror(f)) st = lethe_fail(LETHE_ERR_IO, "cannot write the plot script %s", script);
    if (fclose(f) != 0 && st == LETHE_OK)
        st = lethe_fail(LETHE_ERR_IO, "cannot write the plot script %s", script);
    if (st == LETHE_OK) st = run_gnuplot(script, errpath);
    if (st == LETHE_OK) st = io_out_copy(tpng, png);
    if (st == LETHE_OK) st = io_out_copy(tsvg, svg);
    remove(tpng);
    remove(tsvg);
    if (!getenv("LETHE_KEEP_PLOT_SCRIPT")) remove(script);
    remove(errpath);
    return st;
}

lethe_status plot_read_json(const char *path, cJSON **out)
{
    /* Reports of long runs carry their trace: allow up to 256 MiB. */
    return io_json_read(path, 256L << 20, 0, out);
}
