/* Interruptible runs on the command line (docs/RELIABILITY.md
 * "Interruption and resume"): SIGINT and SIGTERM set the one flag that the
 * training and unlearning loops read after every step
 * (lethe_run_control.stop); the options --state, --checkpoint-every and
 * --resume; and the checks that every output path can be written before
 * any work is done. */
#ifndef LETHE_CLI_SIGNALS_H
#define LETHE_CLI_SIGNALS_H

#include "cli/cli.h"

/* The run-state options of train and unlearn. */
#define CLI_RUN_OPTS                                                                         \
    {"state", "FILE", "run state kept for --resume (default: OUT.state)", 0},               \
    {"checkpoint-every", "N", "save the run state every N steps (default: every 500 steps " \
                              "or 60 s; 0: only when interrupted)", 0},                      \
    {"resume", "FILE", "go on from the state of an interrupted run (same options)", 0}

typedef struct {
    char state[1024];           /* the state path ("" if none) */
    const char *resume;         /* --resume, or NULL */
    lethe_run_control ctl;      /* for lethe_train_run / lethe_unlearn_run */
    int finished;               /* the loop ran to its end */
} cli_run;

/* Read the run-state options. The state defaults to OUT.state (or
 * REPORT.state when there is no --out); it must be writable and differ
 * from out and report; a --resume file must be a run state of `cmd`.
 * Returns 0, or the exit status after printing one line. */
int cli_run_setup(cli_run *r, const cli_args *a, const char *out, const char *report);
/* No run state, for runs that are not checkpointed (`what`, e.g.
 * "--utility-budget runs"): 1 after one line if a run-state option was
 * given, else 0. */
int cli_run_off(cli_run *r, const cli_args *a, const char *what);
/* Catch SIGINT and SIGTERM (unless ignored when lethe started) and point
 * r->ctl.stop at the flag. A second signal ends the process at once. */
void cli_run_begin(cli_run *r);
/* After the loop returned st: restore the default handlers. If the run
 * was interrupted, print "lethe CMD: interrupted at step S; state saved to
 * P; resume with --resume P" and return 128 + the signal (130 for SIGINT,
 * 143 for SIGTERM); otherwise 0. */
int cli_run_end(cli_run *r, const char *cmd, lethe_status st);
/* cli_run_end's first half, for loops inside a bigger command (a cached
 * model's training under bench): the default handlers back, the signal
 * that stopped the loop returned (0 if none), nothing printed. */
int cli_run_release(cli_run *r);
/* The signal that stopped the last loop (0 if none): a command that
 * reports the interruption itself exits 128 + it. */
int cli_stop_signal(void);
/* A model trained for a command's cache (bench's original and Retrain, the
 * DDPMs) keeps its run state in PATH.state: every 500 steps or 60 s, and
 * when SIGINT or SIGTERM stops it. begin sets r up for path, with the
 * state found there to resume ("resuming WHAT from …" on stderr unless
 * quiet; a file that is no run state is refused) and the handlers in
 * place; end, after the loop returned st, restores them and turns an
 * interruption into LETHE_ERR_INTERRUPTED "interrupted at step S of
 * training WHAT; state saved to P; the same command goes on from there"
 * (cli_lib_error then exits 128 + the signal), a state of another run
 * into a line saying to remove it; done removes the state once the model
 * is saved. A CIFAR Retrain is an hour on 2 cores: no session loses it. */
lethe_status cli_cache_run_begin(cli_run *r, const char *path, const char *what, int quiet);
lethe_status cli_cache_run_end(cli_run *r, lethe_status st, const char *what);
void cli_cache_run_done(const char *path);
/* A failure after the loop: the one error line, plus where the finished
 * run's state is kept when there is one. Returns 1. */
int cli_run_fail(const cli_run *r, const char *cmd, lethe_status st);
/* All outputs written: remove the state this run wrote or resumed from. */
void cli_run_finish(const cli_run *r);


#endif
