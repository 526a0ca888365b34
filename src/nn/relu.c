/* Element-wise layers: ReLU and the residual addition. Memory-bound, so
 * threads only above a size where they pay for their start-up. The model
 * fuses a ReLU into the layer before it where it can (model.c); the _ex
 * forms here are the fused residual addition and the overwriting
 * backward (the first gradient into a buffer is stored, not added, so no
 * buffer is cleared first). */
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

/* d (n) = 0 where out <= 0: the backward of a fused ReLU, in place. */
void nn_relu_mask(float *d, const float *out, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) d[i] = out[i] > 0.0f ? d[i] : 0.0f;
}

/* out (n) = a + b, then max(·, 0) if relu. */
void nn_add_forward_ex(float *out, const float *a, const float *b, size_t n, int relu)
{
    if (relu) {
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            const float v = a[i] + b[i];
            out[i] = v > 0.0f ? v : 0.0f;
        }
    } else {
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
        for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
    }
}

void nn_add_forward(float *out, const float *a, const float *b, size_t n)
{
    nn_add_forward_ex(out, a, b, n, 0);
}

/* One plane of nn_add_bn_forward; nA, nB, relu constants in each copy. */
static inline __attribute__((always_inline)) void
add_bn_plane(float *restrict o, const float *restrict a, nn_affine_plane A, const int nA,
             const float *restrict b, nn_affine_plane B, const int nB, int hw, const int relu)
{
#pragma omp simd
    for (int j = 0; j < hw; j++) {
        const float x = nA ? nn_bn_y(a[j], A.ga, A.be, A.mf, A.isf) : a[j];
        const float y = nB ? nn_bn_y(b[j], B.ga, B.be, B.mf, B.isf) : b[j];
        const float v = x + y;
        o[j] = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
}

void nn_add_bn_forward(float *out, const float *a, const nn_affine *aa, const float *b,
                       const nn_affine *ab, int n, int c, int hw, int relu)
{
    const int planes = n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw > NN_PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        const int i = pl / c, ch = pl % c;
        const size_t o = (size_t)pl * hw;
        const nn_affine_plane A = aa ? nn_affine_at(aa, i, ch, c) : (nn_affine_plane){0};
        const nn_affine_plane B = ab ? nn_affine_at(ab, i, ch, c) : (nn_affine_plane){0};
        if (aa && ab) {
            if (relu) add_bn_plane(out + o, a + o, A, 1, b + o, B, 1, hw, 1);
            else add_bn_plane(out + o, a + o, A, 1, b + o, B, 1, hw, 0);
        } else if (aa) {
            if (relu) add_bn_plane(out + o, a + o, A, 1, b + o, B, 0, hw, 1);
            else add_bn_plane(out + o, a + o, A, 1, b + o, B, 0, hw, 0);
        } else {
            if (relu) add_bn_plane(out + o, a + o, A, 0, b + o, B, 1, hw, 1);
            else add_bn_plane(out + o, a + o, A, 0, b + o, B, 1, hw, 0);
        }
    }
}

/* d (n) op= v, op being += when add, else =. */
static void put(float *d, int add, const float *v, size_t n)
{
    if (!d) return;
    if (add) {
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
        for (size_t i = 0; i < n; i++) d[i] += v[i];
    } else {
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
        for (size_t i = 0; i < n; i++) d[i] = v[i];
    }
}

/* da, db (n) or NULL receive dout (+= when *_add, else =). With relu_out
 * (the fused ReLU's output) dout is first masked in place by out > 0, so
 * dout must then be writable scratch of the caller's. */
void nn_add_backward_ex(float *da, int da_add, float *db, int db_add, float *dout,
                        const float *relu_out, size_t n)
{
    if (relu_out) nn_relu_mask(dout, relu_out, n);
    put(da, da_add, dout, n);
    put(db, db_add, dout, n);
}

/* da (n) += dout, db (n) += dout; either may be NULL. */
void nn_add_backward(float *da, float *db, const float *dout, size_t n)
{
    put(da, 1, dout, n);
    put(db, 1, dout, n);
}
