/* Mean squared error per sample (regression targets, e.g. logit matching). */
#include "nn/layers.h"

/* losses (N) or NULL; dpred (N, D) or NULL (+=); pred, target (N, D);
 * w (N) or NULL (1). */
void nn_mse(float *losses, float *dpred, const float *pred, const float *target,
            const float *w, int n, int d)
{
    if (d <= 0) return;
    for (int i = 0; i < n; i++) {
        const float *p = pred + (size_t)i * d, *t = target + (size_t)i * d;
        double sum = 0.0;
        for (int j = 0; j < d; j++) sum += ((double)p[j] - t[j]) * ((double)p[j] - t[j]);
        if (losses) losses[i] = (float)(sum / d);
        if (dpred) {
            const float sc = (w ? w[i] : 1.0f) * 2.0f / (float)d;
            float *g = dpred + (size_t)i * d;
            for (int j = 0; j < d; j++) g[j] += sc * (p[j] - t[j]);
        }
    }
}
