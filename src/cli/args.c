/* Option parsing for every subcommand: "--name value" and "--flag". */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "lethe %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_lib_error(const char *cmd, lethe_status st)
{
    (void)st;
    return cli_error(cmd, "%s", lethe_last_error());
}

static void print_help(const char *cmd, const char *usage, const cli_opt *opts)
{
    printf("usage: lethe %s %s\n\noptions:\n", cmd, usage);
    for (const cli_opt *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->flag ? "" : " ",
                 o->flag ? "" : (o->arg ? o->arg : "X"));
        printf("  %-26s %s\n", left, o->help);
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

int cli_parse(cli_args *a, const char *cmd, const char *usage, const cli_opt *opts,
              int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            print_help(cmd, usage, opts);
            return 1;
        }
        if (strncmp(s, "--", 2) != 0) {
            if (a->npos >= CLI_MAX_ARGS) return 2 + 0 * cli_error(cmd, "too many arguments");
            a->pos[a->npos++] = s;
            continue;
        }
        const cli_opt *o = opts;
        while (o->name && strcmp(o->name, s + 2) != 0) o++;
        if (!o->name) {
            cli_error(cmd, "unknown option %s (see lethe %s --help)", s, cmd);
            return 2;
        }
        if (a->n >= CLI_MAX_ARGS) return 2 + 0 * cli_error(cmd, "too many options");
        a->key[a->n] = o->name;
        if (o->flag) {
            a->val[a->n++] = "1";
        } else {
            if (i + 1 >= argc) {
                cli_error(cmd, "option %s needs a value (%s)", s, o->arg ? o->arg : "X");
                return 2;
            }
            a->val[a->n++] = argv[++i];
        }
    }
    return 0;
}

const char *cli_str(const cli_args *a, const char *name, const char *def)
{
    const char *v = def;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->key[i], name) == 0) v = a->val[i];   /* the last one wins */
    return v;
}

int cli_flag(const cli_args *a, const char *name) { return cli_str(a, name, NULL) != NULL; }

int cli_int(const cli_args *a, const char *name, long def, long lo, long hi, long *out)
{
    const char *v = cli_str(a, name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return cli_error(a->cmd, "--%s: expected an integer in [%ld, %ld], got '%s'", name,
                         lo, hi, v);
    *out = x;
    return 0;
}

int cli_float(const cli_args *a, const char *name, double def, double lo, double hi,
              double *out)
{
    const char *v = cli_str(a, name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi)
        return cli_error(a->cmd, "--%s: expected a number in [%g, %g], got '%s'", name, lo,
                         hi, v);
    *out = x;
    return 0;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_check_writable(const char *cmd, const char *path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK) != 0)
        return cli_error(cmd, "%s: cannot write into folder %s", path, dir);
    return 0;
}

lethe_status cli_load_data(const char *name, const char *dir, lethe_dataset *train,
                           lethe_dataset *test)
{
    lethe_status st = lethe_dataset_load(train, name, dir, 1);
    if (st != LETHE_OK) return st;
    st = lethe_dataset_load(test, name, dir, 0);
    if (st != LETHE_OK) lethe_dataset_free(train);
    return st;
}
