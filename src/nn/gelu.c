/* GELU, the exact form (seq.h): x·Φ(x) = 0.5·x·(1 + erf(x/√2)), PyTorch's
 * nn.GELU(). A kernel-set file, so that vmath.h's e^x and erf vectorise
 * (glibc's erff and expf are a call per element: they made GELU a fifth of
 * a transformer's training step, docs/PERFORMANCE.md). Backward reads the
 * input:
 *     d/dx x·Φ(x) = Φ(x) + x·φ(x),  φ(x) = e^(−x²/2)/√(2π)
 * and uses one e^(−x²/2) for both φ and erf's tail. Forward and backward
 * compute Φ the same way, so their values agree. */
#include "nn/seq.h"
#include "nn/vmath.h"

/* Below this many elements one thread does it: about 1.5 ms of work, a
 * parallel region costs more than that on a loaded machine (seq.c's
 * SEQ_ROW_PAR_MIN). Each element's arithmetic is the same on any thread. */
#define GELU_PAR_MIN (1 << 20)

static int gelu_threads(size_t n) { return n < GELU_PAR_MIN ? 1 : nn_outer_threads(); }

/* out (n) = GELU(in); out may be in. */
void nn_gelu_forward(float *out, const float *in, size_t n)
{
    const int nt = gelu_threads(n);
    (void)nt;
#pragma omp parallel for simd num_threads(nt) schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float x = in[i];
        out[i] = 0.5f * x * (1.0f + nn_erff_v(x * 0.70710678f));
    }
}

/* dGELU/dx at x, times dy. */
static inline __attribute__((always_inline)) float gelu_grad(float dy, float x)
{
    const float z = x * 0.70710678f;
    const float e = nn_expf_v(-(z * z));   /* e^(−x²/2) */
    const float cdf = 0.5f * (1.0f + nn_erff_ve(z, e));
    return dy * NN_FMA(x, 0.39894228f * e, cdf);
}

/* din (n) op= dout·GELU'(in), op += when din_add, else =. */
void nn_gelu_backward(float *din, int din_add, const float *dout, const float *in, size_t n)
{
    const int nt = gelu_threads(n);
    (void)nt;
    if (din_add) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (size_t i = 0; i < n; i++) din[i] += gelu_grad(dout[i], in[i]);
    } else {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (size_t i = 0; i < n; i++) din[i] = gelu_grad(dout[i], in[i]);
    }
}

/* out (n) = e^in, erf(in): vmath.h's functions over an array, for the
 * tests that check them in every kernel set. */
void nn_vexpf(float *out, const float *in, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = nn_expf_v(in[i]);
}

void nn_verff(float *out, const float *in, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = nn_erff_v(in[i]);
}
