/*
 * Internal to src/optim: one step function per optimiser, dispatched by
 * lethe_optim_step (optim.c). Each updates θ in place over n floats;
 * entries with mask[i] == 0 neither move nor change their state.
 */
#ifndef LETHE_OPTIM_OPTIM_H
#define LETHE_OPTIM_OPTIM_H

#include "lethe.h"

/* Below this many floats a parallel region costs more than the loop. */
#define OPTIM_OMP_MIN 65536

/* theta (n), g (n), mask (n) or NULL; state in o->m (n). */
void optim_sgd_step(lethe_optim *o, float *theta, const float *g,
                    const uint8_t *mask, float lr);
/* theta (n), g (n), mask (n) or NULL; state in o->m, o->v (n each);
 * o->t has already been advanced to this step's number (1 on the first). */
void optim_adamw_step(lethe_optim *o, float *theta, const float *g,
                      const uint8_t *mask, float lr);

/* Linear warm-up (lethe_train_config.warmup): lr·(t + 1)/warm for the
 * steps t < warm, lr from then on (and always when warm <= 0). PyTorch's
 * LinearLR(start_factor = 1/warm, total_iters = warm - 1) chained onto the
 * schedule. */
float optim_warmup_lr(float lr, long t, long warm);

#endif
