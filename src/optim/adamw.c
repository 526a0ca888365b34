/*
 * AdamW with PyTorch's semantics (torch.optim.AdamW, amsgrad off), at step
 * t = 1, 2, ...:
 *     θ  ← θ·(1 − lr·wd)                         (decoupled weight decay)
 *     m  ← β1·m + (1 − β1)·g
 *     v  ← β2·v + (1 − β2)·g²
 *     θ  ← θ − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + eps)
 * The bias corrections use the global step count o->t; masked entries keep
 * m and v unchanged (a mask freezes a fixed set of weights, as SalUn does).
 */
#include "optim/optim.h"

#include <math.h>

void optim_adamw_step(lethe_optim *o, float *theta, const float *g,
                      const uint8_t *mask, float lr)
{
    const size_t n = o->n;
    float *m = o->m, *v = o->v;     /* (n) each */
    const double t = (double)o->t;
    /* Scalars in double as PyTorch's Python side computes them, then used
     * as float multipliers as its float kernels do. */
    const float decay = (float)(1.0 - (double)lr * o->weight_decay);
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    const float c1 = (float)(1.0 - (double)b1), c2 = (float)(1.0 - (double)b2);
    const float step = (float)((double)lr / (1.0 - pow((double)b1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow((double)b2, t));

#pragma omp parallel for schedule(static) if (n > OPTIM_OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i]) continue;
        float gi = g[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        theta[i] = theta[i] * decay - step * (mi / denom);
    }
}
