/*
 * Learning-rate schedules α_t (ALGORITHM.md §4), as closed forms of t:
 *   constant  lr0
 *   cosine    lr0·½·(1 + cos(π·t/total)), t clamped to [0, total]
 *             (PyTorch CosineAnnealingLR, eta_min 0, stepped every step)
 *   step      lr0·gamma^⌊t/step_every⌋ (PyTorch StepLR)
 * and training's linear warm-up, a factor on any of them.
 */
#include "lethe.h"
#include "core/fail.h"
#include "optim/optim.h"

#include <math.h>
#include <string.h>

float lethe_schedule_lr(const lethe_schedule *s, long t)
{
    static const double pi = 3.14159265358979323846;
    if (t < 0) t = 0;
    switch (s->kind) {
    case LETHE_SCHED_CONSTANT:
        return s->lr0;
    case LETHE_SCHED_COSINE:
        if (s->total <= 0) return s->lr0;       /* no horizon: nothing to anneal */
        if (t > s->total) t = s->total;
        return (float)(s->lr0 * 0.5 * (1.0 + cos(pi * (double)t / (double)s->total)));
    case LETHE_SCHED_STEP:
        if (s->step_every <= 0) return s->lr0;
        return (float)(s->lr0 * pow((double)s->gamma, (double)(t / s->step_every)));
    }
    return s->lr0;
}

float optim_warmup_lr(float lr, long t, long warm)
{
    if (warm <= 0 || t >= warm) return lr;
    return (float)((double)lr * (double)(t < 0 ? 1 : t + 1) / (double)warm);
}

lethe_status lethe_schedule_parse(lethe_schedule *s, const char *name)
{
    static const struct { const char *name; lethe_sched_kind kind; } table[] = {
        {"constant", LETHE_SCHED_CONSTANT},
        {"cosine", LETHE_SCHED_COSINE},
        {"step", LETHE_SCHED_STEP},
    };
    if (!name) return lethe_fail(LETHE_ERR_ARG, "schedule: no name given (constant, cosine, step)");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(name, table[i].name) == 0) {
            s->kind = table[i].kind;
            return LETHE_OK;
        }
    }
    return lethe_fail(LETHE_ERR_ARG, "schedule: unknown name '%s' (expected constant, cosine or step)", name);
}
