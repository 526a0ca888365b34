/* Element-wise layers: ReLU and the residual addition. Memory-bound, so
 * threads only above a size where they pay for their start-up. */
#include "nn/layers.h"

#define NN_PAR_MIN 65536

/* out (n) = max(in, 0); out may be in. */
void nn_relu_forward(float *out, const float *in, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

/* din (n) += dout where out > 0. Reading the output, not the input, lets
 * forward overwrite its input. */
void nn_relu_backward(float *din, const float *dout, const float *out, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) din[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

/* out (n) = a + b. */
void nn_add_forward(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* da (n) += dout, db (n) += dout; either may be NULL. */
void nn_add_backward(float *da, float *db, const float *dout, size_t n)
{
    if (da) {
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
        for (size_t i = 0; i < n; i++) da[i] += dout[i];
    }
    if (db) {
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
        for (size_t i = 0; i < n; i++) db[i] += dout[i];
    }
}
