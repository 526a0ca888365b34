/*
 * SGD with PyTorch's semantics (torch.optim.SGD, dampening 0):
 *     g'  = g + wd·θ
 *     buf = μ·buf + g'                    (momentum μ > 0)
 *     g'' = g' + μ·buf  (Nesterov)  or  buf  (heavy ball)  or  g'  (μ = 0)
 *     θ  −= lr·g''
 * PyTorch sets buf = g' on the first step; the buffer starts at zero, and
 * μ·0 + g' = g' exactly, so the first step needs no special case (and an
 * entry first unmasked late starts its buffer the same way).
 * Plain SGD is the optimiser the theory of ALGORITHM.md §3 assumes; momentum
 * is offered outside that theory (§4).
 */
#include "optim/optim.h"

void optim_sgd_step(lethe_optim *o, float *theta, const float *g,
                    const uint8_t *mask, float lr)
{
    const size_t n = o->n;
    const float wd = o->weight_decay, mu = o->momentum;
    float *buf = o->m;      /* (n) */

    if (mu == 0.0f) {
#pragma omp parallel for schedule(static) if (n > OPTIM_OMP_MIN)
        for (size_t i = 0; i < n; i++) {
            if (mask && !mask[i]) continue;
            float d = g[i] + wd * theta[i];
            theta[i] -= lr * d;
        }
        return;
    }
    const int nesterov = o->nesterov;
#pragma omp parallel for schedule(static) if (n > OPTIM_OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i]) continue;
        float d = g[i] + wd * theta[i];
        float b = mu * buf[i] + d;
        buf[i] = b;
        theta[i] -= lr * (nesterov ? d + mu * b : b);
    }
}
