/* Interruptible runs on the command line (see signals.h). The flag below
 * is the program's one piece of global mutable state: a signal handler can
 * reach nothing else. The handler only stores the signal number; the loops
 * finish their step, save the run state and return. */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/signals.h"
#include "core/dist.h"
#include "core/fail.h"
#include "io/outpath.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

/* The default run state is named after the first output that is a file
 * (or nothing yet): never "-.state" or "/dev/null.state". */
static const char *state_base(const char *out, const char *report)
{
    const char *cand[2] = {out, report};
    char target[PATH_MAX];
    for (int i = 0; i < 2; i++) {
        if (!cand[i]) continue;
        io_out_kind k = io_out_resolve(cand[i], target, sizeof target);
        if (k == IO_OUT_FILE || k == IO_OUT_NEW) return cand[i];
    }
    return NULL;
}

int cli_run_setup(cli_run *r, const cli_args *a, const char *out, const char *report)
{
    const char *cmd = a->cmd;
    memset(r, 0, sizeof *r);
    lethe_run_control_default(&r->ctl);
    long every;
    if (cli_int(a, "checkpoint-every", -1, 0, LONG_MAX, &every)) return 2;
    if (every < 0) {            /* not given */
        r->ctl.every_steps = 500;
        r->ctl.every_seconds = 60.0;
    } else {
        r->ctl.every_steps = every;
    }
    /* With checkpoints on, the finished loop's state is kept until every
     * output is written: an interrupted evaluation or a full disk loses
     * no training. */
    r->ctl.save_final = every != 0;
    const char *state = cli_str(a, "state", NULL), *base = state_base(out, report);
    if (state) snprintf(r->state, sizeof r->state, "%s", state);
    else if (base && snprintf(r->state, sizeof r->state, "%s.state", base) >= (int)sizeof r->state)
        return cli_error(cmd, "%s: path too long", base);
    if (r->state[0]) {
        if ((out && strcmp(r->state, out) == 0) || (report && strcmp(r->state, report) == 0))
            return cli_usage_error(cmd, "--state %s: the same file as an output", r->state);
        if (cli_check_output(cmd, "state", r->state)) return 1;
        r->ctl.state_path = r->state;
    }
    r->resume = cli_str(a, "resume", NULL);
    if (r->resume) {
        lethe_metadata md;
        if (lethe_runstate_read_meta(r->resume, &md) != LETHE_OK)
            return cli_error(cmd, "--resume: %s", lethe_last_error());
        const char *kind = lethe_meta_get(&md, "kind");
        if (!kind || strcmp(kind, cmd) != 0)
            return cli_error(cmd, "--resume %s: the state of a '%s' run, not of '%s'", r->resume,
                             kind ? kind : "unknown", cmd);
        r->ctl.resume_path = r->resume;
        const char *step = lethe_meta_get(&md, "step"), *total = lethe_meta_get(&md, "total");
        const char *threads = lethe_meta_get(&md, "threads");
        fprintf(stderr, "resuming from %s: step %s of %s\n", r->resume, step ? step : "?",
                total ? total : "?");
        if (threads && atoi(threads) != core_threads())
            fprintf(stderr, "note: the state was written with %s threads, this run has %d: "
                    "the result may differ in the last bits from an uninterrupted run\n",
                    threads, core_threads());
    }
    return 0;
}

int cli_run_off(cli_run *r, const cli_args *a, const char *what)
{
    memset(r, 0, sizeof *r);
    lethe_run_control_default(&r->ctl);
    if (cli_str(a, "resume", NULL) || cli_str(a, "state", NULL) ||
        cli_str(a, "checkpoint-every", NULL))
        return cli_usage_error(a->cmd, "%s are not checkpointed: drop --resume, --state and "
                               "--checkpoint-every", what);
    return 0;
}

/* Handle sig unless it was ignored when lethe started (nohup, `cmd &`). */
static void catch_signal(int sig)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* SA_RESETHAND: a second signal finds the default action and ends the
     * process (the last state on disk stays whole: writes are atomic). */
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    if (sigaction(sig, &sa, &old) == 0 && old.sa_handler == SIG_IGN) sigaction(sig, &old, NULL);
}

void cli_run_begin(cli_run *r)
{
    stop_signal = 0;
    catch_signal(SIGINT);
    catch_signal(SIGTERM);
    /* A signal blocked by whoever started us would never reach the loop. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    r->ctl.stop = &stop_signal;
}

/* Back to the default action, unless the signal is ignored. */
static void release_signal(int sig)
{
    struct sigaction old;
    if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == on_signal) signal(sig, SIG_DFL);
}

int cli_run_release(cli_run *r)
{
    release_signal(SIGINT);
    release_signal(SIGTERM);
    r->ctl.stop = NULL;
    return stop_signal;
}

int cli_stop_signal(void)
{
    return stop_signal;
}

int cli_run_end(cli_run *r, const char *cmd, lethe_status st)
{
    int sig = cli_run_release(r);
    if (st != LETHE_ERR_INTERRUPTED && !(st == LETHE_OK && sig)) {
        r->finished = st == LETHE_OK;
        return 0;
    }
    const lethe_run_control *c = &r->ctl;
    if (c->state_path && c->saved_step == c->step)
        cli_error(cmd, "interrupted at step %ld; state saved to %s; resume with --resume %s",
                  c->step, c->state_path, c->state_path);
    else
        cli_error(cmd, "interrupted at step %ld; no state saved%s", c->step,
                  c->state_path ? "" : " (no --state, and no output file to name it after)");
    return 128 + (sig ? sig : SIGINT);
}

int cli_run_fail(const cli_run *r, const char *cmd, lethe_status st)
{
    const lethe_run_control *c = &r->ctl;
    if (r->finished && c->state_path && c->saved_step == c->step && c->step > 0)
        return cli_error(cmd, "%s; the finished run's state is kept in %s (--resume %s writes "
                         "the outputs again)", lethe_last_error(), c->state_path, c->state_path);
    return cli_lib_error(cmd, st);
}

void cli_run_finish(const cli_run *r)
{
    const lethe_run_control *c = &r->ctl;
    if (!c->state_path || !core_dist_root()) return;   /* rank 0's file */
    if (c->saved_step < 0 && !(r->resume && strcmp(r->resume, c->state_path) == 0)) return;
    /* Only a regular file is removed (the end of a link, where it was
     * written): --state /dev/null stays. */
    char target[PATH_MAX];
    if (io_out_resolve(c->state_path, target, sizeof target) == IO_OUT_FILE) unlink(target);
}

/* The run state of the cache model at path: PATH.state (0 if too long). */
static int cache_state(char *buf, size_t n, const char *path)
{
    return snprintf(buf, n, "%s.state", path) < (int)n;
}

lethe_status cli_cache_run_begin(cli_run *r, const char *path, const char *what, int quiet)
{
    memset(r, 0, sizeof *r);
    lethe_run_control_default(&r->ctl);
    r->ctl.every_steps = 500;
    r->ctl.every_seconds = 60.0;
    if (!cache_state(r->state, sizeof r->state, path))
        return lethe_fail(LETHE_ERR_ARG, "%s: path too long", path);
    r->ctl.state_path = r->state;
    lethe_metadata md;
    if (core_dist_all(access(r->state, R_OK) == 0)) {
        if (lethe_runstate_read_meta(r->state, &md) != LETHE_OK)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: not a run state (%s): remove it to train "
                              "%s from the start", r->state, lethe_last_error(), what);
        r->ctl.resume_path = r->state;
        const char *step = lethe_meta_get(&md, "step"), *total = lethe_meta_get(&md, "total");
        if (!quiet)
            fprintf(stderr, "resuming %s from %s: step %s of %s\n", what, r->state,
                    step ? step : "?", total ? total : "?");
    }
    /* The handlers before the caller's "training …" line: a signal sent
     * once that line is out stops the loop cleanly. */
    cli_run_begin(r);
    return LETHE_OK;
}

lethe_status cli_cache_run_end(cli_run *r, lethe_status st, const char *what)
{
    int sig = cli_run_release(r);
    if (st == LETHE_ERR_MISMATCH && r->ctl.resume_path)
        return lethe_fail(st, "%s; remove %s to train %s from the start", lethe_last_error(),
                          r->state, what);
    if (st != LETHE_ERR_INTERRUPTED && !(st == LETHE_OK && sig)) return st;
    if (r->ctl.saved_step == r->ctl.step)
        return lethe_fail(LETHE_ERR_INTERRUPTED, "interrupted at step %ld of training %s; state "
                          "saved to %s; the same command goes on from there", r->ctl.step, what,
                          r->state);
    return lethe_fail(LETHE_ERR_INTERRUPTED, "interrupted at step %ld of training %s; no state "
                      "saved", r->ctl.step, what);
}

void cli_cache_run_done(const char *path)
{
    char state[sizeof ((cli_run *)0)->state];
    if (!core_dist_root()) return;   /* rank 0 wrote it */
    if (cache_state(state, sizeof state, path)) unlink(state);
}
