/* Option parsing for every subcommand: "--name value", "--name=value",
 * "--flag"; unknown options, short options and stray arguments are usage
 * errors (exit 2) that suggest the nearest valid name. Also the checks of
 * output paths (cli_check_named_output: --force) and "-" for stdout. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/signals.h"
#include "core/dist.h"
#include "data/text.h"
#include "io/outpath.h"
#include "nn/model.h"

/* Where errors go: stderr, or under mpirun on ranks other than 0, whose
 * stderr is closed (main.c), a copy of it (cli_set_error_stream). */
static FILE *err_stream;

void cli_set_error_stream(FILE *f) { err_stream = f; }

/* "lethe CMD: message" on stderr, one line. */
static void say(const char *cmd, const char *fmt, va_list ap)
{
    /* Under mpirun: an error every rank found together is printed once;
     * one a rank found alone names it. */
    if (core_dist_size() > 1 && core_dist_error_is_shared() && !core_dist_root()) return;
    FILE *e = err_stream ? err_stream : stderr;
    fprintf(e, "lethe %s: ", cmd);
    if (core_dist_size() > 1 && !core_dist_error_is_shared())
        fprintf(e, "rank %d of %d: ", core_dist_rank(), core_dist_size());
    vfprintf(e, fmt, ap);
    fputc('\n', e);
    fflush(e);
}

int cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(cmd, fmt, ap);
    va_end(ap);
    return 1;
}

int cli_lib_error(const char *cmd, lethe_status st)
{
    int rc = cli_error(cmd, "%s", lethe_last_error());
    /* A loop stopped by SIGINT/SIGTERM that saved its state: 130 or 143. */
    if (st == LETHE_ERR_INTERRUPTED) rc = 128 + (cli_stop_signal() ? cli_stop_signal() : SIGINT);
    return rc;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    core_dist_error_shared();   /* the ranks' command lines agree (main.c) */
    va_list ap;
    va_start(ap, fmt);
    say(cmd, fmt, ap);
    va_end(ap);
    return 2;
}

/* Columns of --help: options from 2, their help from 30, lines up to 79. */
enum { HELP_INDENT = 2, HELP_COL = 30, HELP_WIDTH = 79 };

/* Characters (not bytes: λ, ε and … are two or three) in s[0..n). */
static int text_width(const char *s, size_t n)
{
    int w = 0;
    for (size_t i = 0; i < n; i++) w += ((unsigned char)s[i] & 0xC0) != 0x80;
    return w;
}

/* text from column `col` (the cursor is there), wrapped at spaces to
 * HELP_WIDTH, each further line indented to `col`. A command line (shell)
 * breaks with " \" so that it can still be pasted. */
static void print_wrapped_as(int col, const char *text, int shell)
{
    const char *p = text;
    int at = col, first = 1, width = HELP_WIDTH - (shell ? 2 : 0);
    while (*p) {
        while (*p == ' ') p++;
        size_t wl = strcspn(p, " ");
        if (!wl) break;
        int w = text_width(p, wl);
        if (!first && at + 1 + w > width) {
            printf("%s\n%*s", shell ? " \\" : "", col, "");
            at = col;
            first = 1;
        }
        if (!first) {
            putchar(' ');
            at++;
        }
        printf("%.*s", (int)wl, p);
        at += w;
        first = 0;
        p += wl;
    }
    putchar('\n');
}

static void print_wrapped(int col, const char *text) { print_wrapped_as(col, text, 0); }

static void print_opt(const char *name, const char *arg, const char *help)
{
    char left[80];
    snprintf(left, sizeof left, "--%s%s%s", name, arg ? " " : "", arg ? arg : "");
    int w = text_width(left, strlen(left));
    printf("%*s%s", HELP_INDENT, "", left);
    if (HELP_INDENT + w + 1 > HELP_COL) printf("\n%*s", HELP_COL, "");
    else printf("%*s", HELP_COL - HELP_INDENT - w, "");
    print_wrapped(HELP_COL, help);
}

static int is_option(const cli_opt *o) { return o->flag == CLI_VALUE || o->flag == CLI_FLAG; }

/* text for roff: '-' and '\\' escaped, a leading '.' or '\'' guarded. */
static void roff(const char *text)
{
    if (*text == '.' || *text == '\'') fputs("\\&", stdout);
    for (const char *p = text; *p; p++) {
        if (*p == '-') fputs("\\-", stdout);
        else if (*p == '\\') fputs("\\e", stdout);
        else putchar(*p);
    }
}

/* The same table as a man page, lethe-CMD(1) (LETHE_HELP_FORMAT=man, as
 * `make man` runs it): the pages cannot disagree with --help. */
static void print_man(const char *cmd, const char *usage, const cli_opt *opts)
{
    printf(".TH LETHE\\-%s 1 \"\" \"lethe %s\" \"Lethe manual\"\n.SH NAME\nlethe\\-%s \\- ",
           cmd, LETHE_VERSION, cmd);
    const cli_opt *o = opts;
    if (o->name && o->flag == CLI_ROW_NOTE) roff(o->help);
    else printf("the %s command of Lethe, machine unlearning in C", cmd);
    printf("\n.SH SYNOPSIS\n.B lethe %s\n", cmd);
    roff(usage);
    printf("\n.SH OPTIONS\n");
    for (; o->name && o->flag == CLI_ROW_NOTE; o++) {
        printf(".PP\n");
        roff(o->help);
        putchar('\n');
    }
    for (; o->name; o++) {
        if (o->flag == CLI_ROW_HEADING) {
            printf(".SS ");
            roff(o->help);
            putchar('\n');
        } else if (o->flag == CLI_ROW_NOTE) {
            printf(".PP\n");
            roff(o->help);
            putchar('\n');
        } else if (is_option(o)) {
            /* .BI "--name " ARG: the name bold, its argument italic. */
            printf(".TP\n%s\"\\-\\-", o->flag == CLI_FLAG ? ".B " : ".BI ");
            roff(o->name);
            if (o->flag != CLI_FLAG) {
                printf(" \" ");
                roff(o->arg ? o->arg : "X");
            } else {
                putchar('"');
            }
            putchar('\n');
            roff(o->help);
            putchar('\n');
        }
    }
    printf(".TP\n.B \\-\\-force\nreplace output files you name that already exist\n"
           ".TP\n.B \\-\\-help\nshow the help (also: lethe help %s)\n", cmd);
    int examples = 0;
    for (o = opts; o->name; o++)
        if (o->flag == CLI_ROW_EXAMPLE) {
            if (!examples++) printf(".SH EXAMPLES\n");
            printf(".PP\n.nf\n");
            roff(o->help);
            printf("\n.fi\n");
        }
    printf(".SH EXIT STATUS\n0 success, 1 runtime error, 2 usage error, 3 a utility budget no run "
           "kept (unlearn), 130/143 interrupted (SIGINT/SIGTERM).\n.SH SEE ALSO\n"
           ".BR lethe (1)\n");
}

/* The help of a command from its table: the usage line, the options in
 * their groups (or under "options:"), --force and --help, the examples,
 * then what every command shares. */
static void print_help(const char *cmd, const char *usage, const cli_opt *opts)
{
    const char *fmt = getenv("LETHE_HELP_FORMAT");
    if (fmt && strcmp(fmt, "man") == 0) {
        print_man(cmd, usage, opts);
        return;
    }
    int grouped = 0, examples = 0;
    printf("usage: lethe %s ", cmd);
    print_wrapped(text_width(cmd, strlen(cmd)) + 14, usage);
    const cli_opt *o = opts;
    /* Notes before any option describe the command. */
    if (o->name && o->flag == CLI_ROW_NOTE) putchar('\n');
    for (; o->name && o->flag == CLI_ROW_NOTE; o++) print_wrapped(0, o->help);
    if (!o->name || o->flag != CLI_ROW_HEADING) printf("\noptions:\n");
    for (; o->name; o++) {
        if (o->flag == CLI_ROW_HEADING) {
            printf("\n%s:\n", o->help);
            grouped = 1;
        } else if (o->flag == CLI_ROW_NOTE) {
            printf("%*s", HELP_INDENT, "");
            print_wrapped(HELP_INDENT + 2, o->help);
        } else if (o->flag == CLI_ROW_EXAMPLE) {
            examples++;
        } else {
            print_opt(o->name, o->flag == CLI_FLAG ? NULL : (o->arg ? o->arg : "X"), o->help);
        }
    }
    if (grouped) printf("\nevery command:\n");
    print_opt("force", NULL, "replace output files you name that already exist");
    print_opt("help", NULL, "show this help (also: lethe help COMMAND)");
    if (examples) {
        printf("\nexample%s:\n", examples > 1 ? "s" : "");
        for (o = opts; o->name; o++)
            if (o->flag == CLI_ROW_EXAMPLE) {
                printf("%*s", HELP_INDENT, "");
                print_wrapped_as(HELP_INDENT + 4, o->help, 1);
            }
    }
    printf("\n--name=value is the same as --name value. Exit status: 0 success, 1 runtime\n"
           "error, 2 usage error, 3 a utility budget no run kept (unlearn), 130/143\n"
           "interrupted (SIGINT/SIGTERM).\n");
}

/* Optimal string alignment distance (Levenshtein plus the swap of two
 * neighbours, so that "trian" is one edit from "train"); 99 when either
 * word is too long to be a name. */
static int edit_distance(const char *a, const char *b)
{
    enum { MAXW = 48 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= MAXW || m >= MAXW) return 99;
    int d[MAXW][MAXW];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int c = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + c < v) v = d[i - 1][j - 1] + c;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

const char *cli_nearest(const char *word, const char *const *names, int n)
{
    size_t len = strlen(word);
    /* A typo, not another word: one edit in a short name, two or three in
     * a long one. */
    int best_d = len <= 3 ? 2 : len <= 6 ? 3 : 4;
    const char *best = NULL;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(word, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best;
}

/* Names every command accepts besides its own table. */
static const char *const common_names[] = {"force", "help"};

static const cli_opt *find_opt(const cli_opt *opts, const char *name, size_t len)
{
    for (const cli_opt *o = opts; o->name; o++)
        if (is_option(o) && strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    /* --json, the older name of --report (the JSON output, one name in
     * every command), still read where a command writes a report. */
    if (len == 4 && strncmp(name, "json", 4) == 0) return find_opt(opts, "report", 6);
    return NULL;
}

/* The option names of a command (its table, --force, --help) into names. */
static int all_names(const cli_opt *opts, const char **names, int cap)
{
    int n = 0;
    for (const cli_opt *o = opts; o->name && n < cap; o++)
        if (is_option(o)) names[n++] = o->name;
    for (size_t i = 0; i < sizeof common_names / sizeof common_names[0] && n < cap; i++)
        if (!find_opt(opts, common_names[i], strlen(common_names[i])))
            names[n++] = common_names[i];
    return n;
}

/* The long option meant by the short (or single-dash) option s, or NULL. */
static const char *long_form(const cli_opt *opts, const char *s)
{
    const char *names[CLI_MAX_ARGS * 2];
    int n = all_names(opts, names, CLI_MAX_ARGS * 2);
    if (s[2]) {                 /* "-out": one dash too few */
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], s + 1) == 0) return names[i];
        return cli_nearest(s + 1, names, n);
    }
    /* The letters other tools use, then the one option with that initial. */
    static const struct { char c; const char *name; } usual[] = {
        {'q', "quiet"}, {'o', "out"}, {'f', "force"}, {'m', "model"}};
    for (size_t i = 0; i < sizeof usual / sizeof usual[0]; i++)
        if (usual[i].c == s[1])
            for (int k = 0; k < n; k++)
                if (strcmp(names[k], usual[i].name) == 0) return names[k];
    const char *only = NULL;
    for (int k = 0; k < n; k++)
        if (names[k][0] == s[1]) {
            if (only) return NULL;
            only = names[k];
        }
    return only;
}

static int unknown_option(const char *cmd, const cli_opt *opts, const char *s, size_t len)
{
    const char *guess;
    if (s[1] != '-') {
        guess = long_form(opts, s);
    } else {
        char word[64];
        size_t wl = len - 2 < sizeof word ? len - 2 : sizeof word - 1;
        snprintf(word, sizeof word, "%.*s", (int)wl, s + 2);
        const char *names[CLI_MAX_ARGS * 2];
        guess = cli_nearest(word, names, all_names(opts, names, CLI_MAX_ARGS * 2));
    }
    if (guess)
        return cli_usage_error(cmd, "unknown option %.*s (did you mean --%s? see lethe %s --help)",
                               (int)len, s, guess, cmd);
    return cli_usage_error(cmd, "unknown option %.*s (see lethe %s --help)", (int)len, s, cmd);
}

const char *cli_join(const char *const *names, int n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", names[i]);
    return buf;
}

const char *cli_augment_name(int augment)
{
    return augment == LETHE_AUGMENT_CROP_FLIP ? "crop4+flip"
           : augment == LETHE_AUGMENT_FLIP    ? "flip"
                                              : "off";
}

int cli_unknown_choice(const char *cmd, const char *what, const char *word,
                       const char *const *names, int n)
{
    char list[1024];
    cli_join(names, n, list, sizeof list);
    const char *guess = cli_nearest(word, names, n);
    if (guess)
        return cli_usage_error(cmd, "unknown %s '%s' (did you mean '%s'? known: %s)", what, word,
                               guess, list);
    return cli_usage_error(cmd, "unknown %s '%s' (known: %s)", what, word, list);
}

int cli_check_method(const char *cmd, const char *opt, const char *name)
{
    int n;
    const char *const *names = lethe_methods(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return 0;
    char list[1024] = "";
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof list; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", names[i]);
    const char *guess = cli_nearest(name, names, n);
    if (guess)
        return cli_usage_error(cmd, "%s: unknown method '%s' (did you mean '%s'? known: %s)", opt,
                               name, guess, list);
    return cli_usage_error(cmd, "%s: unknown method '%s' (known: %s)", opt, name, list);
}

/* The classifiers of src/nn/model.c; its "unet" is the diffusion model. */
static const char *const classifier_archs[] = {"mlp", "cnn", "resnet8", "resnet20", "resnet18", "vit-tiny",
                                               "text-transformer", "text-bag"};

int cli_check_arch(const char *cmd, const char *arch)
{
    int n = (int)(sizeof classifier_archs / sizeof classifier_archs[0]);
    for (int i = 0; i < n; i++)
        if (strcmp(arch, classifier_archs[i]) == 0) return 0;
    if (strcmp(arch, "unet") == 0)
        return cli_usage_error(cmd, "--arch unet: unet is a diffusion model (it predicts noise, "
                               "it does not classify): use lethe %s --task diffusion", cmd);
    const char *guess = cli_nearest(arch, classifier_archs, n);
    if (!guess && strncmp(arch, "resnet", 6) == 0) guess = "resnet8";
    if (guess)
        return cli_usage_error(cmd, "--arch: unknown architecture '%s' (did you mean '%s'? "
                               "classifiers: mlp, cnn, resnet8, resnet20, resnet18, vit-tiny, "
                               "text-transformer, text-bag)", arch, guess);
    return cli_usage_error(cmd, "--arch: unknown architecture '%s' (classifiers: mlp, cnn, "
                           "resnet8, resnet20, resnet18, vit-tiny, text-transformer, text-bag)", arch);
}

int cli_check_data(const char *cmd, const char *name)
{
    static const char *const named[] = {"fmnist", "mnist", "cifar10", "idx", "sms-spam", "text"};
    const char *colon = strchr(name, ':');
    for (int i = 0; i < 6; i++)
        if (strcmp(name, named[i]) == 0) return 0;
    if (colon && (strncmp(name, "idx:", 4) == 0 || strncmp(name, "cifar:", 6) == 0)) {
        char *end;
        errno = 0;
        long k = strtol(colon + 1, &end, 10);
        if (end != colon + 1 && !*end && !errno && k >= 2 && k <= 256) return 0;
        return cli_usage_error(cmd, "--data %s: the class count after ':' must be a whole number "
                               "from 2 to 256", name);
    }
    static const char *const forms[] = {"fmnist", "mnist", "cifar10", "idx", "cifar", "sms-spam",
                                        "text"};
    char kind[64];
    snprintf(kind, sizeof kind, "%.*s", colon ? (int)(colon - name) : (int)strlen(name), name);
    const char *guess = cli_nearest(kind, forms, 7);
    if (guess && strcmp(guess, "cifar") == 0) guess = "cifar:K";
    if (guess)
        return cli_usage_error(cmd, "--data: unknown data set '%s' (did you mean '%s'? known: "
                               "fmnist, mnist, cifar10, sms-spam; one's own: idx, idx:K, "
                               "cifar:K, text)", name, guess);
    return cli_usage_error(cmd, "--data: unknown data set '%s' (known: fmnist, mnist, cifar10, "
                           "sms-spam; one's own: idx, idx:K, cifar:K, text)", name);
}

int cli_forget_parse(const char *cmd, const char *opt, const char *text,
                     lethe_forget_spec *spec)
{
    if (lethe_forget_parse(spec, text) == LETHE_OK) return 0;
    char why[600];
    snprintf(why, sizeof why, "%s", lethe_last_error());
    const char *colon = strchr(text, ':');
    if (strncmp(text, "random:", 7) == 0) {
        /* "random:10" meant ten percent: a number of at least 1 without %. */
        char *end;
        errno = 0;
        double v = strtod(text + 7, &end);
        if (end != text + 7 && !*end && !errno && v >= 1 && v < 100)
            return cli_usage_error(cmd, "%s: %s (did you mean %s %s%%? random:F takes a fraction "
                                   "0 < F < 1, random:P%% a percentage)", opt, why, opt, text);
    } else if (colon) {
        static const char *const forms[] = {"class", "random", "indices"};
        char kind[32];
        snprintf(kind, sizeof kind, "%.*s", (int)(colon - text), text);
        const char *guess = cli_nearest(kind, forms, 3);
        if (guess)
            return cli_usage_error(cmd, "%s: %s (did you mean %s %s%s?)", opt, why, opt, guess,
                                   colon);
    }
    return cli_usage_error(cmd, "%s: %s", opt, why);
}

/* The words of this run's command line (see cli_set_command_line): set
 * once by main() before any command runs, read by the reports. */
static struct {
    int argc;
    char **argv;
} command_line;

void cli_set_command_line(int argc, char **argv)
{
    command_line.argc = argc;
    command_line.argv = argv;
}

const char *cli_command_line(void)
{
    static char buf[8192];
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < command_line.argc && k + 1 < sizeof buf; i++) {
        const char *w = command_line.argv[i];
        /* Quoted when the shell would split or expand it: 'it''s' style. */
        int plain = *w != '\0';
        for (const char *c = w; *c && plain; c++)
            plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                           "-_./:=,%+@", *c) != NULL;
        if (i) buf[k++] = ' ';
        if (plain) {
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s", w);
        } else {
            buf[k++] = '\'';
            for (const char *c = w; *c && k + 5 < sizeof buf; c++) {
                if (*c == '\'') {
                    memcpy(buf + k, "'\\''", 4);
                    k += 4;
                } else {
                    buf[k++] = *c;
                }
            }
            if (k + 1 < sizeof buf) buf[k++] = '\'';
        }
        if (k >= sizeof buf) k = sizeof buf - 1;
        buf[k] = '\0';
    }
    return buf;
}

int cli_parse(cli_args *a, const char *cmd, const char *usage, const cli_opt *opts,
              int argc, char **argv)
{
    return cli_parse_pos(a, cmd, usage, opts, 0, argc, argv);
}

/* ------------------------------------------- the unlearning options */

/* The table with its CLI_UNLEARN_OPTS row replaced by the options of the
 * methods' tables (lethe_all_params): --method, every method's options,
 * then each family's or method's under a note naming who takes them.
 * Made once; `opts` itself when it has no such row. */
#define UL_ROWS 160
static const cli_opt *expand_opts(const cli_opt *opts)
{
    static cli_opt table[UL_ROWS + 96];
    static char names[UL_ROWS][32], notes[24][160], methods[400];
    static const cli_opt *made_from;
    const cli_opt *o = opts;
    while (o->name && o->flag != CLI_ROW_UNLEARN) o++;
    if (!o->name) return opts;
    if (made_from == opts) return table;
    int k = 0, nn = 0, nnote = 0;
    for (const cli_opt *q = opts; q != o && k < UL_ROWS; q++) table[k++] = *q;
    /* --method with the names. */
    int nm;
    const char *const *mnames = lethe_methods(&nm);
    size_t at = 0;
    for (int i = 0; i < nm && at < sizeof methods; i++)
        at += (size_t)snprintf(methods + at, sizeof methods - at, "%s%s%s", i ? " | " : "",
                               mnames[i], lethe_method_classifies(mnames[i]) ? "" : " (diffusion)");
    table[k++] = (cli_opt){"method", "NAME", methods, CLI_VALUE};
    const lethe_param *all[UL_ROWS];
    int np = lethe_all_params(all, UL_ROWS);
    if (np > UL_ROWS) np = UL_ROWS;
    char last[160] = "";
    for (int i = 0; i < np && k < UL_ROWS + 64 && nn < UL_ROWS; i++) {
        /* Who takes it: every method, or a list. */
        char who[160] = "";
        size_t w = 0;
        int every = 1;
        for (int j = 0; j < nm; j++) {
            if (lethe_method_takes(mnames[j], all[i])) {
                if (w < sizeof who)
                    w += (size_t)snprintf(who + w, sizeof who - w, "%s%s", w ? ", " : "", mnames[j]);
            } else {
                every = 0;
            }
        }
        if (!every && strcmp(who, last) != 0 && nnote < 24) {
            snprintf(notes[nnote], sizeof notes[0], "%s:", who);
            table[k++] = (cli_opt){"", NULL, notes[nnote++], CLI_ROW_NOTE};
            snprintf(last, sizeof last, "%s", who);
        }
        snprintf(names[nn], sizeof names[0], "%s", all[i]->name);
        for (char *c = names[nn]; *c; c++)
            if (*c == '_') *c = '-';
        table[k++] = (cli_opt){names[nn++], all[i]->arg, all[i]->help, CLI_VALUE};
    }
    for (const cli_opt *q = o + 1; q->name && k < UL_ROWS + 95; q++) table[k++] = *q;
    table[k] = (cli_opt){NULL, NULL, NULL, 0};
    made_from = opts;
    return table;
}

int cli_parse_pos(cli_args *a, const char *cmd, const char *usage, const cli_opt *opts,
                  int maxpos, int argc, char **argv)
{
    opts = expand_opts(opts);
    static const cli_opt force = {"force", NULL, "replace output files that already exist", 1};
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!only_pos && (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)) {
            print_help(cmd, usage, opts);
            return 1;
        }
        if (!only_pos && strcmp(s, "--") == 0) {    /* the rest are arguments */
            only_pos = 1;
            continue;
        }
        if (only_pos || s[0] != '-' || s[1] == '\0') {     /* "-" is standard output */
            if (a->npos >= maxpos) {
                if (maxpos == 0)
                    return cli_usage_error(cmd, "unexpected argument '%s': lethe %s takes only "
                                           "options (see lethe %s --help)", s, cmd, cmd);
                return cli_usage_error(cmd, "unexpected argument '%s': lethe %s takes at most "
                                       "%d argument%s (see lethe %s --help)", s, cmd, maxpos,
                                       maxpos == 1 ? "" : "s", cmd);
            }
            a->pos[a->npos++] = s;
            continue;
        }
        /* "--name", "--name=value"; a single dash is no option of ours. */
        const char *eq = s[1] == '-' ? strchr(s, '=') : NULL;
        size_t len = eq ? (size_t)(eq - s) : strlen(s);
        const cli_opt *o = s[1] == '-' ? find_opt(opts, s + 2, len - 2) : NULL;
        if (!o && s[1] == '-' && len - 2 == 5 && strncmp(s + 2, "force", 5) == 0) o = &force;
        if (!o && s[1] == '-' && len - 2 == 4 && strncmp(s + 2, "help", 4) == 0)
            return cli_usage_error(cmd, "option --help takes no value");
        if (!o) return unknown_option(cmd, opts, s, len);
        if (a->n >= CLI_MAX_ARGS) return cli_usage_error(cmd, "too many options");
        a->key[a->n] = o->name;
        if (o->flag == CLI_FLAG) {
            if (eq) return cli_usage_error(cmd, "option --%s takes no value (got '%s')",
                                           o->name, s);
            a->val[a->n++] = "1";
        } else if (eq) {
            a->val[a->n++] = eq + 1;
        } else {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "option %s needs a value (%s)", s,
                                       o->arg ? o->arg : "X");
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

int cli_check_output(const char *cmd, const char *opt, const char *path)
{
    struct stat sb;
    char what[PATH_MAX + 64], target[PATH_MAX];
    while (opt && *opt == '-') opt++;       /* "out" or "--out" */
    if (opt && *opt) snprintf(what, sizeof what, "--%s %s", opt, path);
    else snprintf(what, sizeof what, "%s", path);
    if (!*path) return opt && *opt ? cli_error(cmd, "--%s: empty path", opt)
                                   : cli_error(cmd, "empty output path");
    switch (io_out_resolve(path, target, sizeof target)) {
    case IO_OUT_FD: {       /* "-", /dev/stdout: the descriptor must take writes */
        int fl = fcntl(io_out_fd(path), F_GETFL);
        if ((fl & O_ACCMODE) == O_RDONLY)
            return cli_error(cmd, "%s: not open for writing", what);
        return 0;
    }
    case IO_OUT_STREAM:     /* written in place: no folder entry is made */
        if (access(path, W_OK) != 0)
            return cli_error(cmd, "%s: cannot write: %s", what, strerror(errno));
        return 0;
    case IO_OUT_BAD:
        if (errno == EISDIR) return cli_error(cmd, "%s: is a folder, not a file", what);
        if (errno == ENODEV)
            return cli_error(cmd, "%s: not a regular file, a character device or a FIFO", what);
        return cli_error(cmd, "%s: %s", what, strerror(errno));
    default:
        break;
    }
    /* A file (or a link to one) is replaced through a temporary beside
     * the link's target: that folder must take a new file. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", target);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    if (stat(dir, &sb) != 0) return cli_error(cmd, "%s: folder %s: %s", what, dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return cli_error(cmd, "%s: %s is not a folder", what, dir);
    /* The one sure test: make a file there (not the writer's temporary
     * name, which a later write may find in use) and remove it. */
    char probe[PATH_MAX + 64];
    if (snprintf(probe, sizeof probe, "%s.tmp.probe.%ld", target, (long)getpid()) >=
        (int)sizeof probe)
        return cli_error(cmd, "%s: path too long", what);
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return cli_error(cmd, "%s: cannot write into folder %s: %s", what, dir, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

/* Standard output given to an output file ("-"): until that file is
 * written, what the command prints for people goes to stderr, so that
 * stdout carries the file alone. After the signal flag of signals.c, the
 * program's other piece of global state: the descriptor that holds the
 * real standard output meanwhile (-1: none held), and whether an output
 * has claimed it (one may). */
static struct {
    int fd;
    int claimed;
} held_stdout = {-1, 0};

static int hold_stdout(const char *cmd)
{
    fflush(stdout);
    int fd = dup(STDOUT_FILENO);
    if (fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        if (fd >= 0) close(fd);
        return cli_error(cmd, "cannot set standard output aside: %s", strerror(errno));
    }
    held_stdout.fd = fd;
    return 0;
}

void cli_stdout_restore(const char *path)
{
    if (held_stdout.fd < 0 || io_out_fd(path) != STDOUT_FILENO) return;
    fflush(stdout);
    dup2(held_stdout.fd, STDOUT_FILENO);
    close(held_stdout.fd);
    held_stdout.fd = -1;
}

int cli_check_named_output(const cli_args *a, const char *opt, const char *path)
{
    while (opt && *opt == '-') opt++;
    if (cli_check_output(a->cmd, opt, path)) return 1;
    if (io_out_fd(path) == STDOUT_FILENO) {
        if (held_stdout.claimed)
            return cli_usage_error(a->cmd, "--%s %s: standard output is already taken by "
                                   "another output", opt, path);
        held_stdout.claimed = 1;
        return hold_stdout(a->cmd);
    }
    /* A resumed run writes the outputs its first start was allowed to. */
    if (cli_flag(a, "force") || cli_str(a, "resume", NULL)) return 0;
    char target[PATH_MAX];
    if (io_out_resolve(path, target, sizeof target) == IO_OUT_FILE)
        return cli_usage_error(a->cmd, "--%s %s: the file exists; add --force to replace it",
                               opt, path);
    return 0;
}

lethe_status cli_load_data(const char *name, const char *dir, lethe_dataset *train,
                           lethe_dataset *test)
{
    return cli_load_data_for(NULL, name, dir, train, test);
}

/* The text data sets read both splits at once; train or test may be NULL. */
static lethe_status load_for(const lethe_model *m, const char *name, const char *dir,
                             lethe_dataset *train, lethe_dataset *test)
{
    if (text_dataset_name(name)) {
        size_t len = 0;
        const char *vocab = m ? nn_model_vocab(m, &len) : NULL;
        return text_datasets_load(train, test, name, dir, vocab, len);
    }
    lethe_status st = train ? lethe_dataset_load(train, name, dir, 1) : LETHE_OK;
    if (st != LETHE_OK || !test) return st;
    if ((st = lethe_dataset_load(test, name, dir, 0)) != LETHE_OK && train)
        lethe_dataset_free(train);
    return st;
}

lethe_status cli_dataset_load_for(const lethe_model *m, lethe_dataset *ds, const char *name,
                                  const char *dir, int train)
{
    return load_for(m, name, dir, train ? ds : NULL, train ? NULL : ds);
}

lethe_status cli_load_data_for(const lethe_model *m, const char *name, const char *dir,
                               lethe_dataset *train, lethe_dataset *test)
{
    return load_for(m, name, dir, train, test);
}
