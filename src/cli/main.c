/* lethe: the command line. Subcommands live one per file (cmd_*.c). */
#include <string.h>

#include "cli/cli.h"
#include "cli/gen.h"

/* The trade-off commands (cmd_sweep.c, cmd_plot.c, cmd_table.c). */
int cmd_sweep(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_table(int argc, char **argv);

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"train", cmd_train, "train a model (or Retrain without a forget set)"},
    {"eval", cmd_eval, "accuracy, or the unlearning metrics of a model"},
    {"info", cmd_info, "show a checkpoint's metadata and tensors"},
    {"unlearn", cmd_unlearn, "make a trained model forget data"},
    {"bench", cmd_bench, "run a whole unlearning protocol and print its table"},
    {"tune", cmd_tune, "grid-search a method's hyperparameters by Avg. Gap"},
    {"demo", cmd_demo, "train, retrain, unlearn class 0 with EUPMU, compare"},
    {"sweep", cmd_sweep, "one method over values of a parameter: table, JSON, trade-off plot"},
    {"plot", cmd_plot, "plots of an unlearn report (λ, losses, audit) or of sweep results"},
    {"table", cmd_table, "results JSON of bench or sweep as Markdown, LaTeX or CSV"},
    {"sample", cmd_sample, "generate images from a diffusion model: PNG grid, IDX"},
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
};

static int wants_diffusion(int argc, char **argv)
{
    for (int i = 0; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--task") == 0) return strcmp(argv[i + 1], "diffusion") == 0;
        if (strcmp(argv[i], "--scenario") == 0) return strcmp(argv[i + 1], "fmnist-ddpm-cw") == 0;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "lethe %s — machine unlearning in C\n\nusage: lethe COMMAND [options]\n\n"
            "commands:\n", LETHE_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nGeneration: train, eval and unlearn take --task diffusion (a class-conditional\n"
            "DDPM, the arch unet); bench takes --scenario fmnist-ddpm-cw.\n"
            "'lethe COMMAND --help' (with --task diffusion) shows a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lethe %s\n", LETHE_VERSION);
        return 0;
    }
    if (wants_diffusion(argc - 2, argv + 2))
        for (size_t i = 0; i < sizeof diffusion_forms / sizeof diffusion_forms[0]; i++)
            if (strcmp(argv[1], diffusion_forms[i].name) == 0)
                return diffusion_forms[i].run(argc - 2, argv + 2);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "lethe: unknown command '%s' (see lethe --help)\n", argv[1]);
    return 2;
}
