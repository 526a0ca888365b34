/* Global average pooling: one mean per (sample, channel) plane. */
#include "nn/layers.h"

/* in (N, C, HW) → out (N, C). */
void nn_gap_forward(float *out, const float *in, int n, int c, int hw)
{
    const int planes = n * c;
    const float inv = hw > 0 ? 1.0f / (float)hw : 0.0f;
#pragma omp parallel for schedule(static) if ((long)planes * hw > 65536)
    for (int pl = 0; pl < planes; pl++) {
        const float *x = in + (size_t)pl * hw;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < hw; j++) sum += x[j];
        out[pl] = sum * inv;
    }
}

/* din (N, C, HW) op= dout (N, C) / HW, op being += when din_add, else =. */
void nn_gap_backward_ex(float *din, int din_add, const float *dout, int n, int c, int hw)
{
    const int planes = n * c;
    const float inv = hw > 0 ? 1.0f / (float)hw : 0.0f;
#pragma omp parallel for schedule(static) if ((long)planes * hw > 65536)
    for (int pl = 0; pl < planes; pl++) {
        float *d = din + (size_t)pl * hw;
        const float g = dout[pl] * inv;
        if (din_add) {
#pragma omp simd
            for (int j = 0; j < hw; j++) d[j] += g;
        } else {
#pragma omp simd
            for (int j = 0; j < hw; j++) d[j] = g;
        }
    }
}

void nn_gap_backward(float *din, const float *dout, int n, int c, int hw)
{
    nn_gap_backward_ex(din, 1, dout, n, c, hw);
}
