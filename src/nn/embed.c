/* The U-Net's conditioning: the sinusoidal timestep embedding of the
 * Transformer / DDPM (Vaswani et al. 2017; Ho et al. 2020), a class
 * embedding table (row K−1 of the U-Net's is the null class of
 * classifier-free guidance), and the add that broadcasts a per-channel
 * vector over an image's pixels (the embedding's projection into a
 * residual block). */
#include "nn/layers.h"

#include <math.h>
#include <string.h>

/* t (N) → out (N, D): [sin(t·f_j) | cos(t·f_j)], f_j = 10000^(−j/(D/2)).
 * In double: t·f_0 = t reaches 10³, where a float argument would lose
 * three digits of the phase. */
void nn_timestep_embed(float *out, const int32_t *t, int n, int d)
{
    const int half = d / 2;
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * d;
        for (int j = 0; j < half; j++) {
            const double a = (double)t[i] * exp(-log(10000.0) * j / half);
            o[j] = (float)sin(a);
            o[half + j] = (float)cos(a);
        }
        if (d % 2) o[d - 1] = 0.0f;
    }
}

/* y (N) in [0, K), table (K, D) → out (N, D). */
void nn_label_embed_forward(float *out, const int32_t *y, const float *table, int n, int d)
{
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * d, table + (size_t)y[i] * d, (size_t)d * sizeof(float));
}

/* dout (N, D) → dtable[k] (K, D) row y_i += dout_i for the samples of group k. */
void nn_label_embed_backward(float *const dtable[], const float *dout, const int32_t *y,
                             const lethe_groups *g, int d)
{
    if (!dtable) return;
    for (int k = 0; k < g->n; k++) {
        float *dt = dtable[k];
        if (!dt) continue;
        for (int i = g->start[k]; i < g->start[k + 1]; i++) {
            float *row = dt + (size_t)y[i] * d;
            const float *r = dout + (size_t)i * d;
#pragma omp simd
            for (int j = 0; j < d; j++) row[j] += r[j];
        }
    }
}

/* x (N, C, HW), v (N, C) → out (N, C, HW); out may be x. */
void nn_bcast_add_forward(float *out, const float *x, const float *v, int n, int c, int hw)
{
    const int planes = n * c;
#pragma omp parallel for schedule(static) if ((long)planes * hw > 65536)
    for (int pl = 0; pl < planes; pl++) {
        const float b = v[pl];
        const float *p = x + (size_t)pl * hw;
        float *q = out + (size_t)pl * hw;
#pragma omp simd
        for (int j = 0; j < hw; j++) q[j] = p[j] + b;
    }
}

/* dout (N, C, HW) → dx (N, C, HW) and dv (N, C) = Σ_HW dout, either NULL. */
void nn_bcast_add_backward(float *dx, int dx_add, float *dv, int dv_add, const float *dout,
                           int n, int c, int hw)
{
    const int planes = n * c;
#pragma omp parallel for schedule(static) if ((long)planes * hw > 65536)
    for (int pl = 0; pl < planes; pl++) {
        const float *d = dout + (size_t)pl * hw;
        if (dx) {
            float *q = dx + (size_t)pl * hw;
            if (dx_add) {
#pragma omp simd
                for (int j = 0; j < hw; j++) q[j] += d[j];
            } else {
                memcpy(q, d, (size_t)hw * sizeof(float));
            }
        }
        if (dv) {
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int j = 0; j < hw; j++) s += d[j];
            dv[pl] = dv_add ? dv[pl] + s : s;
        }
    }
}
