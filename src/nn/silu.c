/* SiLU (swish), x·σ(x): the DDPM U-Net's activation. Where it follows a
 * group norm the model fuses it there (groupnorm.c); this is the free form,
 * used on the time embedding. Backward reads the input:
 *     d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))) */
#include "nn/layers.h"

#define SILU_PAR_MIN 65536

/* out (n) = in·σ(in); out may be in. */
void nn_silu_forward(float *out, const float *in, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > SILU_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = in[i] * nn_sigmoidf(in[i]);
}

/* din (n) op= dout·silu'(in), op being += when din_add, else =. */
void nn_silu_backward(float *din, int din_add, const float *dout, const float *in, size_t n)
{
    if (din_add) {
#pragma omp parallel for simd schedule(static) if (n > SILU_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            const float s = nn_sigmoidf(in[i]);
            din[i] += dout[i] * (s * (1.0f + in[i] * (1.0f - s)));
        }
    } else {
#pragma omp parallel for simd schedule(static) if (n > SILU_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            const float s = nn_sigmoidf(in[i]);
            din[i] = dout[i] * (s * (1.0f + in[i] * (1.0f - s)));
        }
    }
}
