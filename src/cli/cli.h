/* Shared pieces of the command line: option parsing, progress display,
 * data/model helpers. Only the command line prints and exits. */
#ifndef LETHE_CLI_H
#define LETHE_CLI_H

#include <stdio.h>

#include "core/loop.h"
#include "lethe.h"

#define CLI_MAX_ARGS 64

/* One row of a command's option table, which ends with {NULL, …}. An
 * option "--name" takes a value (flag CLI_VALUE, 0) or none (CLI_FLAG, 1).
 * The other kinds only shape --help, so that one table describes the
 * command: CLI_HEADING("outputs") starts a group of options, CLI_NOTE(text)
 * prints a line of text in the group, CLI_EXAMPLE("lethe …") adds an
 * example command line at the end; CLI_UNLEARN_OPTS (ulopts.h) stands for
 * --method and every option of the unlearning methods, made from their
 * tables. A table without headings lists its options under "options:". */
typedef struct { const char *name, *arg, *help; int flag; } cli_opt;
enum {
    CLI_VALUE = 0, CLI_FLAG = 1, CLI_ROW_HEADING = 2, CLI_ROW_NOTE = 3, CLI_ROW_EXAMPLE = 4,
    CLI_ROW_UNLEARN = 5
};
#define CLI_HEADING(text) {"", NULL, (text), CLI_ROW_HEADING}
#define CLI_NOTE(text) {"", NULL, (text), CLI_ROW_NOTE}
#define CLI_EXAMPLE(text) {"", NULL, (text), CLI_ROW_EXAMPLE}

typedef struct {
    const char *cmd;
    int n;
    const char *key[CLI_MAX_ARGS], *val[CLI_MAX_ARGS];
    int npos;
    const char *pos[CLI_MAX_ARGS];
} cli_args;

/* Parse argv (after the subcommand): "--name value", "--name=value",
 * "--flag", "--" (the rest are arguments), and --force, which every
 * command takes without listing it (see cli_check_named_output). A short
 * option ("-q"), an unknown option or an argument that is not an option
 * is a usage error that names the nearest valid option. cli_parse takes
 * no arguments besides options; cli_parse_pos up to maxpos (in a->pos).
 * Returns 0 to go on, 1 when --help was printed (exit 0), 2 on a usage
 * error (already printed to stderr). */
int cli_parse(cli_args *a, const char *cmd, const char *usage, const cli_opt *opts,
              int argc, char **argv);
int cli_parse_pos(cli_args *a, const char *cmd, const char *usage, const cli_opt *opts,
                  int maxpos, int argc, char **argv);
/* 0 if `name` is a registered unlearning method; else 2 after one line
 * "lethe CMD: OPT: unknown method 'x' (did you mean 'y'? known: …)". */
int cli_check_method(const char *cmd, const char *opt, const char *name);
/* names[0..n) as "a, b, c" in buf (cut at cap); buf. */
const char *cli_join(const char *const *names, int n, char *buf, size_t cap);
/* lethe_train_config.augment's name in recipes and reports: "crop4+flip",
 * "flip" or "off". */
const char *cli_augment_name(int augment);
/* Usage error (returns 2) for a word that is none of names[0..n): "lethe
 * CMD: unknown WHAT 'word' (did you mean 'x'? known: a, b, c)". */
int cli_unknown_choice(const char *cmd, const char *what, const char *word,
                       const char *const *names, int n);
/* The name among names[0..n) nearest to word (edit distance, a swap of
 * neighbours counted as one), or NULL if none is a likely typo of it. */
const char *cli_nearest(const char *word, const char *const *names, int n);
/* 0 if `arch` is a classifier's architecture (mlp, cnn, resnet8, resnet20,
 * resnet18); else 2 after one line: unet is named as the diffusion model
 * it is (use --task diffusion), any other name gets the nearest valid one
 * and the list. */
int cli_check_arch(const char *cmd, const char *arch);
/* 0 if `name` names a data set: fmnist, mnist, cifar10, or one's own
 * (idx, idx:K, cifar:K with K from 2 to 256); else 2 after one line with
 * the nearest name and the list. */
int cli_check_data(const char *cmd, const char *name);
/* Parse the forget spec `text` of option `opt` into *spec: 0, or 2 after
 * one line with the library's reason and a hint of the form meant
 * ("random:10" → random:10%, "clas:0" → class:0). */
int cli_forget_parse(const char *cmd, const char *opt, const char *text,
                     lethe_forget_spec *spec);

/* The command line of this run, for the reports: main() records argv once
 * (the strings must live until exit); cli_command_line() gives the words
 * joined by spaces, each quoted for the shell where needed ("" before the
 * first call of cli_set_command_line). */
void cli_set_command_line(int argc, char **argv);
const char *cli_command_line(void);

/* The tuned-settings file of a command (given: --tuned, or NULL). A named
 * file must exist: otherwise NULL after one line "lethe CMD: --tuned FILE:
 * no such file" (a usage error: exit 2). Without one, the first
 * configs/tuned.json found beside the program (the folder of
 * /proc/self/exe, then its parent: build/lethe finds its tree's own), then
 * PREFIX/share/lethe/tuned.json of an installed PREFIX/bin/lethe, then
 * in the current folder, as an absolute path; when none exists,
 * "configs/tuned.json" (untuned defaults; `tune --write` creates it).
 * Returns `given` or buf (n bytes). Prints nothing else: a command checks
 * its whole command line first, then calls cli_settings_note. */
const char *cli_settings_path(const char *cmd, const char *given, char *buf, size_t n);
/* Where Lethe keeps what it makes by itself (the model cache, default
 * reports and grids): `rel` inside the runs folder, into buf (n bytes),
 * which is returned. The runs folder is the runs/ of the source tree the
 * program was built in (build/lethe, found by its configs/tuned.json),
 * so that no command depends on the current folder; an installed program
 * uses $XDG_CACHE_HOME/lethe, else ~/.cache/lethe. Messages name the
 * files there by their whole path. */
const char *cli_runs_path(const char *rel, char *buf, size_t n);
/* Unless quiet, one line on stderr: "lethe CMD: settings from PATH", or
 * that there is none and the defaults are used. Call it when the work
 * begins (after every check), so that a refused command prints one line. */
void cli_settings_note(const char *cmd, const char *path, int quiet);

const char *cli_str(const cli_args *a, const char *name, const char *def);
int cli_flag(const cli_args *a, const char *name);
/* Numeric getters print "lethe CMD: --name: ..." and return non-zero on
 * a malformed or out-of-range value. */
int cli_int(const cli_args *a, const char *name, long def, long lo, long hi, long *out);
int cli_float(const cli_args *a, const char *name, double def, double lo, double hi,
              double *out);

/* Errors to f instead of stderr (under mpirun, ranks other than 0). */
void cli_set_error_stream(FILE *f);

/* Exit statuses: 0 success, 1 runtime error (cli_error), 2 usage error:
 * the command line must change (cli_usage_error), 128 + signal when
 * interrupted (130 SIGINT, 143 SIGTERM; see signals.h). */
/* "lethe CMD: message" on stderr; returns 1 (the exit status). */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same message; returns 2, for a usage error. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same with lethe_last_error() appended. */
int cli_lib_error(const char *cmd, lethe_status st);

/* Progress on stderr: one updating line on a terminal, a line every few
 * seconds otherwise. */
typedef struct { const char *what; double last; int tty; } cli_progress;
void cli_progress_init(cli_progress *p, const char *what);
void cli_progress_cb(const lethe_progress *p, void *ctx);
void cli_progress_done(cli_progress *p);

/* An output path of option `opt`: not a folder, in a folder that exists
 * and takes a new file (one is created and removed there). Returns 0, or
 * 1 after printing "lethe CMD: --opt PATH: why". */
int cli_check_output(const char *cmd, const char *opt, const char *path);

/* An output the user named with --opt (opt without the dashes, e.g.
 * "out"): the checks of cli_check_output, then the rule of outputs: a
 * regular file that exists already (perhaps through a symbolic link) is
 * refused, "lethe CMD: --opt PATH: the file exists; add --force to replace
 * it", unless --force or --resume (a resumed run writes its own outputs)
 * was given. "-" (or /dev/stdout) is standard output: one output may take
 * it, and until it is written (report_write, or cli_stdout_restore(path)
 * before writing it otherwise) what the command prints on stdout goes to
 * stderr. A device or a FIFO is written through, never replaced. Call it only for paths the
 * user named (cli_str(a, opt, NULL) non-NULL), not for defaults Lethe
 * chooses. Returns 0, or the exit status after one line: 1 when the path
 * cannot be written, 2 when the command line must change. */
int cli_check_named_output(const cli_args *a, const char *opt, const char *path);
/* Give standard output back before writing `path`, if `path` names it
 * ("-", /dev/stdout) and cli_check_named_output held it; else a no-op. */
void cli_stdout_restore(const char *path);

/* Load the train and test splits of --data/--data-dir. */
lethe_status cli_load_data(const char *name, const char *dir, lethe_dataset *train,
                           lethe_dataset *test);
/* For a trained model m: a text model's data set (text, sms-spam) encoded
 * with the model's own vocabulary and classes (its text.vocab), not ones
 * built anew from the training split, which differ as soon as the data
 * do; anything else as lethe_dataset_load / cli_load_data. */
lethe_status cli_dataset_load_for(const lethe_model *m, lethe_dataset *ds, const char *name,
                                  const char *dir, int train);
lethe_status cli_load_data_for(const lethe_model *m, const char *name, const char *dir,
                               lethe_dataset *train, lethe_dataset *test);

/* train's table on stdout: | arch | data | images | epochs | train acc | test acc |
 * time (s) |, the accuracies left out when NaN (a diffusion model has none). */
void cli_train_table(const char *arch, const char *data, size_t n, int epochs, double acc_train,
                     double acc_test, double secs);
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
    /* Random and listed forget sets: the unseen reference of "forget just
     * enough", CLI_UNSEEN_N test images drawn by CLI_UNSEEN_SEED and left
     * out of test_retain (TA and MIA never see them; test_full keeps the
     * whole test split); empty for classes, and once switched off. */
    lethe_subset unseen, test_full;
} cli_split;
#define CLI_UNSEEN_N 1000
#define CLI_UNSEEN_SEED 0x756e7365656eULL       /* "unseen" */
/* The mode of --match-unseen: "auto" (on for random and listed forget sets
 * of a classifier, off for classes and diffusion), "on" (refused with the
 * reason where it cannot apply, LETHE_ERR_ARG) or "off" (the reference
 * goes back into the test split). Call before measuring anything. */
lethe_status cli_split_match(cli_split *s, const char *mode, int diffusion);
/* cfg's unseen reference from the split (none when it has none). */
void cli_split_unseen(const cli_split *s, lethe_unlearn_config *cfg);
lethe_status cli_split_load(cli_split *s, const char *data, const char *dir,
                            const char *spec, uint64_t seed);
/* The same with the data read for model m (cli_load_data_for). */
lethe_status cli_split_load_for(cli_split *s, const lethe_model *m, const char *data,
                                const char *dir, const char *spec, uint64_t seed);
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
/* The same, for a checkpoint whose metadata may name no architecture (a
 * PyTorch state_dict saved as safetensors): `arch` (--arch, or NULL) is
 * then the one to load it as; its input shape and class count come from
 * the metadata, else from the test split of `data` (NULL: the metadata's
 * data set, else fmnist) in `dir`. An arch that contradicts the metadata's
 * is refused, and a missing one is an error that names --arch. *md gets
 * arch, in_shape and nclass, so that models saved from it carry them. */
lethe_status cli_open_model_as(const char *path, const char *arch, const char *data,
                               const char *dir, lethe_model **m, lethe_metadata *md);
/* The input normalisation a model was trained with, in its metadata as
 * input_mean and input_std ("0.4914,0.4822,0.4465"), one value a channel,
 * so that the model says how to feed it (checkpoints made before have none,
 * and are not checked). */
lethe_status cli_meta_put_norm(lethe_metadata *md, const lethe_dataset *ds);
/* 0 if md's normalisation (when it names one for ds's channel count) is
 * ds's, to 1e-4; else non-zero with why (which channel, both values). */
int cli_norm_differs(const lethe_metadata *md, const lethe_dataset *ds, char *why, size_t n);

#endif
