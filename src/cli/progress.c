/* Progress lines on stderr: step, loss, accuracy or λ, rate, time left. */
#include <math.h>
#include <unistd.h>

#include "cli/cli.h"

void cli_progress_init(cli_progress *p, const char *what)
{
    p->what = what;
    p->last = -1e9;
    p->tty = isatty(2);
}

static void fmt_time(char *buf, size_t n, double s)
{
    if (!(s >= 0) || s > 1e7) s = 0;
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%d:%02d", t / 60, t % 60);
}

void cli_progress_cb(const lethe_progress *pr, void *ctx)
{
    cli_progress *p = ctx;
    double now = core_now();
    int last = pr->step == pr->total;
    /* A terminal gets 10 updates a second, a log a line every 5 seconds. */
    if (!last && now - p->last < (p->tty ? 0.1 : 5.0)) return;
    p->last = now;
    char eta[32], el[32];
    fmt_time(eta, sizeof eta, pr->eta_s);
    fmt_time(el, sizeof el, pr->elapsed_s);
    char extra[64] = "";
    if (!isnan(pr->lambda)) snprintf(extra, sizeof extra, "  λ %.4f", pr->lambda);
    else if (!isnan(pr->acc)) snprintf(extra, sizeof extra, "  acc %5.2f%%", pr->acc);
    fprintf(stderr, "%s%s epoch %d/%d  step %ld/%ld (%3.0f%%)  loss %.4f%s  %.0f img/s  "
            "%s elapsed, %s left%s",
            p->tty ? "\r\033[K" : "", p->what, pr->epoch, pr->epochs, pr->step, pr->total,
            100.0 * (double)pr->step / (double)(pr->total ? pr->total : 1), pr->loss, extra,
            pr->images_per_s, el, eta, p->tty ? "" : "\n");
    fflush(stderr);
}

void cli_progress_done(cli_progress *p)
{
    if (p->tty) fputc('\n', stderr);
}
