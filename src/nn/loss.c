/* Classification losses over logits z (N, C), every one through
 * log-sum-exp so that no probability is ever rounded to 0 or 1 first:
 *     CE     = lse(z) − z_y                        ∂/∂z = p − e_y
 *     NEG_CE = −CE                                 ∂/∂z = e_y − p
 *     NC     = −log(1 − p_y) = lse(z) − lse(z₋y)   ∂/∂z = p − q
 * where p = softmax(z) and q = softmax over the classes other than y
 * (q_y = 0). Per-row work is in double; C is small. */
#include "lethe.h"

#include <math.h>

/* log Σ_j exp(z_j) over j ≠ skip (skip = −1: all). −∞ if nothing is left. */
static double lse(const float *z, int c, int skip)
{
    double m = -INFINITY;
    for (int j = 0; j < c; j++)
        if (j != skip && z[j] > m) m = z[j];
    if (m == -INFINITY) return m;
    double s = 0.0;
    for (int j = 0; j < c; j++)
        if (j != skip) s += exp((double)z[j] - m);
    return m + log(s);
}

/* losses (N) or NULL; dlogits (N, C) or NULL (+=); logits (N, C);
 * y (N) in [0, C); w (N) or NULL (1). */
void lethe_loss(lethe_loss_kind k, float *losses, float *dlogits,
                const float *logits, const int32_t *y, const float *w,
                int n, int c)
{
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * c;
        const int yi = y[i];
        const double l = lse(z, c, -1);
        double loss;
        double lq = 0.0;   /* lse(z₋y), NC only */
        switch (k) {
        case LETHE_LOSS_NEG_CE: loss = -(l - z[yi]); break;
        case LETHE_LOSS_NC:
            lq = lse(z, c, yi);
            loss = l - lq;
            break;
        case LETHE_LOSS_CE:
        default: loss = l - z[yi]; break;
        }
        if (losses) losses[i] = (float)loss;
        if (!dlogits) continue;
        const double wi = w ? w[i] : 1.0;
        float *d = dlogits + (size_t)i * c;
        for (int j = 0; j < c; j++) {
            double p = exp((double)z[j] - l), gj;
            if (k == LETHE_LOSS_NC)
                gj = j == yi ? p : p - exp((double)z[j] - lq);
            else {
                gj = p - (j == yi);
                if (k == LETHE_LOSS_NEG_CE) gj = -gj;
            }
            d[j] += (float)(wi * gj);
        }
    }
}

/* Rows of logits (N, C) whose first maximum is at y[i]. */
int lethe_correct(const float *logits, const int32_t *y, int n, int c)
{
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * c;
        int best = 0;
        for (int j = 1; j < c; j++)
            if (z[j] > z[best]) best = j;
        hits += best == y[i];
    }
    return hits;
}
