/*
 * The run loop every long computation shares (training, diffusion
 * training, unlearning): after each step, the progress report with its
 * rate and time left, the stop signal, and the run-state saves; and the
 * clock and thread count those read. The caller's step does the work and
 * its own numeric checks; its save writes the state (io/runstate.h).
 */
#ifndef LETHE_CORE_LOOP_H
#define LETHE_CORE_LOOP_H

#include "lethe.h"

/* Seconds on the monotonic clock: the loops' timings. */
double core_now(void);
/* OpenMP threads this process would use (1 without OpenMP). */
int core_threads(void);
/* p's elapsed_s (before_s, a resumed run's earlier time, plus here_s, this
 * call's), and its images_per_s and eta_s from this call alone: `samples`
 * and `done` steps in here_s, `left` steps to go. A resumed run's rate is
 * its own, not one averaged with an earlier run's machine and load. */
void core_progress_times(lethe_progress *p, double before_s, double here_s, double samples,
                         long done, long left);

/* 1 if a stop was requested. Read it once per step and pass the value on:
 * a signal between two reads would stop a run without its state. */
int core_stopping(const lethe_run_control *run);
/* 1 if the loop must write its state after `done` of `total` steps: a
 * state path is set and `stop` (from core_stopping), a periodic state is
 * due (the last save at last_save_s, now at now_s), or it is the last step
 * and save_final is set. */
int core_due(const lethe_run_control *run, int stop, long done, long total, double now_s,
             double last_save_s);
/* LETHE_ERR_INTERRUPTED with "interrupted at step S of T; state saved to P". */
lethe_status core_interrupted(const lethe_run_control *run, long done, long total);

typedef struct {
    long start, total;              /* steps [start, total): start > 0 when resumed */
    double before_s;                /* a resumed run's earlier seconds */
    double t0;                      /* when this call's time began (core_now; 0: at the
                                       first step), e.g. before a method's set-up */
    lethe_run_control *run;         /* NULL: no states, no stop signal */
    lethe_progress_fn cb;           /* NULL: no progress */
    void *cbctx;
    lethe_progress *p;              /* total, epochs set by the caller; step s fills
                                       loss, acc, λ, epoch */
    void *ctx;                      /* the caller's, passed to the functions below */
    /* Step s (0-based): its work and numeric checks; adds the samples it
     * passed forward to *samples (for the rate). */
    lethe_status (*step)(void *ctx, long s, double *samples);
    /* Write the run state after `done` steps, `seconds` spent in all. */
    lethe_status (*save)(void *ctx, const char *path, long done, double seconds);
    /* After step s (not the last): 1 to end the run there (*st set on
     * failure), 0 to go on. May be NULL. */
    int (*end)(void *ctx, long s, lethe_status *st);
    /* Out: seconds of this call, and the steps run (total, or fewer when
     * end stopped it). */
    double here_s;
    long steps;
} core_loop;

/* Run steps start..total−1 with progress, stop signal and saves. */
lethe_status core_loop_run(core_loop *L);

#endif
