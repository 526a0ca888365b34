/*
 * Optimiser state and dispatch. State is allocated once here, zeroed, so
 * that the step loop never allocates; defaults are PyTorch's for each kind
 * and the caller overrides fields after init.
 */
#include "optim/optim.h"
#include "core/fail.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

lethe_status lethe_optim_init(lethe_optim *o, lethe_opt_kind kind, size_t n)
{
    if (!o) return lethe_fail(LETHE_ERR_ARG, "optimiser: NULL state");
    memset(o, 0, sizeof *o);
    if (kind != LETHE_OPT_SGD && kind != LETHE_OPT_ADAMW)
        return lethe_fail(LETHE_ERR_ARG, "optimiser: unknown kind %d", (int)kind);
    if (n > SIZE_MAX / sizeof(float))
        return lethe_fail(LETHE_ERR_NOMEM, "optimiser: %zu floats of state overflow size_t", n);
    o->kind = kind;
    o->n = n;
    /* torch.optim.SGD / AdamW defaults. */
    o->momentum = 0.0f;
    o->nesterov = 0;
    o->weight_decay = kind == LETHE_OPT_ADAMW ? 0.01f : 0.0f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    if (n == 0) return LETHE_OK;
    /* SGD keeps a momentum buffer even at momentum 0: the caller may set
     * momentum after init, and the buffer must then already exist. */
    o->m = calloc(n, sizeof(float));
    if (kind == LETHE_OPT_ADAMW) o->v = calloc(n, sizeof(float));
    if (!o->m || (kind == LETHE_OPT_ADAMW && !o->v)) {
        lethe_optim_free(o);
        return lethe_fail(LETHE_ERR_NOMEM, "optimiser: cannot allocate state for %zu parameters", n);
    }
    return LETHE_OK;
}

void lethe_optim_free(lethe_optim *o)
{
    if (!o) return;
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void lethe_optim_step(lethe_optim *o, float *theta, const float *g,
                      const uint8_t *mask, float lr)
{
    o->t++;
    if (o->n == 0) return;
    if (o->kind == LETHE_OPT_ADAMW)
        optim_adamw_step(o, theta, g, mask, lr);
    else
        optim_sgd_step(o, theta, g, mask, lr);
}
