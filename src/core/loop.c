/*
 * The run loop (loop.h): one place for what happens between two steps of
 * any long computation.
 */
#include "core/loop.h"
#include "core/fail.h"
#include "core/dist.h"

#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

double core_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int core_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void core_progress_times(lethe_progress *p, double before_s, double here_s, double samples,
                         long done, long left)
{
    p->elapsed_s = before_s + here_s;
    p->images_per_s = samples / (here_s > 0 ? here_s : 1e-9);
    p->eta_s = done > 0 ? here_s / (double)done * (double)left : 0.0;
}

int core_stopping(const lethe_run_control *run) { return run && run->stop && *run->stop; }

int core_due(const lethe_run_control *run, int stop, long done, long total, double now_s,
             double last_save_s)
{
    if (!run || !run->state_path) return 0;
    if (stop || (run->save_final && done == total)) return 1;
    if (run->every_steps > 0 && done % run->every_steps == 0) return 1;
    return run->every_seconds > 0 && now_s - last_save_s >= run->every_seconds;
}

lethe_status core_interrupted(const lethe_run_control *run, long done, long total)
{
    if (run->saved_step == done && run->state_path)
        return lethe_fail(LETHE_ERR_INTERRUPTED, "interrupted at step %ld of %ld; state saved "
                          "to %s", done, total, run->state_path);
    return lethe_fail(LETHE_ERR_INTERRUPTED, "interrupted at step %ld of %ld; no state saved "
                      "(no state file given)", done, total);
}

lethe_status core_loop_run(core_loop *L)
{
    lethe_run_control *run = L->run;
    double t0 = L->t0 > 0 ? L->t0 : core_now(), last_save = t0, samples = 0.0;
    lethe_status st = LETHE_OK;
    L->steps = L->total;
    if (run) run->step = L->start;
    for (long s = L->start; s < L->total; s++) {
        if ((st = L->step(L->ctx, s, &samples)) != LETHE_OK) break;
        double now = core_now();
        if (L->cb) {
            L->p->step = s + 1;
            core_progress_times(L->p, L->before_s, now - t0, samples, s + 1 - L->start,
                                L->total - s - 1);
            L->cb(L->p, L->cbctx);
        }
        if (run) {
            run->step = s + 1;
            int stop = core_stopping(run);
            /* Under mpirun every rank stops after the same step (a signal
             * reaches them at different times), core_dist_alone's runs
             * too; rank 0 writes the state. */
            if ((stop = core_dist_any(stop))) core_dist_error_shared();
            if (core_due(run, stop, s + 1, L->total, now, last_save)) {
                if (core_dist_root() &&
                    (st = L->save(L->ctx, run->state_path, s + 1, L->before_s + now - t0)) !=
                        LETHE_OK)
                    break;
                run->saved_step = s + 1;
                last_save = now;
            }
            if (stop) {
                st = core_interrupted(run, s + 1, L->total);
                break;
            }
        }
        if (L->end && s + 1 < L->total && L->end(L->ctx, s, &st)) {
            if (st == LETHE_OK) L->steps = s + 1;
            break;
        }
    }
    L->here_s = core_now() - t0;
    return st;
}
