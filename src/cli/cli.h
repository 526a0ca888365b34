/* Shared pieces of the command line: option parsing, progress display,
 * data/model helpers. Only the command line prints and exits. */
#ifndef LETHE_CLI_H
#define LETHE_CLI_H

#include <stdio.h>

#include "lethe.h"

#define CLI_MAX_ARGS 64

/* One accepted option: "--name"; flag = 1 if it takes no value. */
typedef struct { const char *name, *arg, *help; int flag; } cli_opt;

typedef struct {
    const char *cmd;
    int n;
    const char *key[CLI_MAX_ARGS], *val[CLI_MAX_ARGS];
    int npos;
    const char *pos[CLI_MAX_ARGS];
} cli_args;

/* Parse argv (after the subcommand). Returns 0 to go on, 1 when --help was
 * printed (exit 0), 2 on a usage error (already printed to stderr). */
int cli_parse(cli_args *a, const char *cmd, const char *usage, const cli_opt *opts,
              int argc, char **argv);
const char *cli_str(const cli_args *a, const char *name, const char *def);
int cli_flag(const cli_args *a, const char *name);
/* Numeric getters print "lethe CMD: --name: ..." and return non-zero on
 * a malformed or out-of-range value. */
int cli_int(const cli_args *a, const char *name, long def, long lo, long hi, long *out);
int cli_float(const cli_args *a, const char *name, double def, double lo, double hi,
              double *out);

/* "lethe CMD: message" on stderr; returns 1 (the exit status). */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same with lethe_last_error() appended. */
int cli_lib_error(const char *cmd, lethe_status st);

/* Progress on stderr: one updating line on a terminal, a line every few
 * seconds otherwise. */
typedef struct { const char *what; double last; int tty; } cli_progress;
void cli_progress_init(cli_progress *p, const char *what);
void cli_progress_cb(const lethe_progress *p, void *ctx);
void cli_progress_done(cli_progress *p);

/* Output files: fail early if the folder of `path` is not writable. */
int cli_check_writable(const char *cmd, const char *path);

/* Load the train and test splits of --data/--data-dir. */
lethe_status cli_load_data(const char *name, const char *dir, lethe_dataset *train,
                           lethe_dataset *test);
double cli_now(void);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_unlearn(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_demo(int argc, char **argv);


/* A data set split for unlearning: D_f, D_r and the matching test parts. */
typedef struct {
    lethe_dataset train, test;
    lethe_forget_spec spec;
    char spec_text[600];
    lethe_subset forget, retain, test_forget, test_retain;
} cli_split;
lethe_status cli_split_load(cli_split *s, const char *data, const char *dir,
                            const char *spec, uint64_t seed);
void cli_split_free(cli_split *s);
/* Save an unlearned model: md (the original's metadata) plus the method,
 * the forget spec, the seed and the original's path. */
lethe_status cli_save_unlearned(const lethe_model *m, lethe_metadata *md,
                                const lethe_unlearn_config *cfg, const char *forgot,
                                const char *from, const char *out);
/* What `lethe train` trains on: D_r of `spec` (Retrain) or, spec NULL, the
 * whole set. *sub points at retain or all; the caller frees all three. */
lethe_status cli_training_set(const lethe_forget_spec *spec, const lethe_dataset *train,
                              uint64_t seed, lethe_subset *all, lethe_subset *forget,
                              lethe_subset *retain, const lethe_subset **sub);
/* Evaluate m on the split (reserves batch 256). */
lethe_status cli_split_metrics(cli_split *s, lethe_model *m, uint64_t seed,
                               lethe_metrics *out);
/* Open a checkpoint; with `data` NULL the data set named in its metadata. */
lethe_status cli_open_model(const char *path, lethe_model **m, lethe_metadata *md);

#endif
