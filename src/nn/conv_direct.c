/* Direct convolution on the padded grid (conv2d.c's shifted products in
 * one kernel): out[o][j] = Σ_c Σ_k wtap[k][c][o] · in[c][j + toff[k]].
 *
 * The shifted products ran KH·KW sgemm calls with K = C (16–64), each
 * reading and writing the whole output block; here a register tile of 8
 * output channels × 48 output columns is accumulated over every channel
 * and kernel position and written once. Per (c, k): two input vectors
 * loaded, eight weights broadcast, 16 FMAs — FMA-bound, not load-bound;
 * 32 columns, so that a 7×7 plane (63 columns on its padded grid) wastes
 * one.
 * The output stays in NCHW planes (vectors run along a plane's columns),
 * so nothing is transposed. Each output value is one chain of FMAs in a
 * fixed order (c, then k): deterministic. Without AVX-512 a plain loop
 * nest does the same sums (GCC vectorises its inner loop). */
#include "nn/conv_direct.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#define ROWS 8
#define VECS 2
#define COLS (16 * VECS)

/* Rows [o0, o0 + r) × columns [j0, j0 + COLS) of out, the columns past n
 * masked off. r is a constant in each inlined copy. */
static inline __attribute__((always_inline)) void
tile(const int r, float *out, size_t ocs, int n, const float *in, size_t ics, int nin,
     const size_t *toff, const float *const *wtap, int kk, int nout, int o0, int j0)
{
    __mmask16 mk[VECS];
    for (int v = 0; v < VECS; v++) {
        const int left = n - j0 - 16 * v;
        mk[v] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
    }
    __m512 acc[ROWS][VECS];
#pragma GCC unroll 8
    for (int i = 0; i < r; i++)
        for (int v = 0; v < VECS; v++) acc[i][v] = _mm512_setzero_ps();
    for (int c = 0; c < nin; c++) {
        const float *pc = in + (size_t)c * ics + j0;
        const size_t wc = (size_t)c * nout + (size_t)o0;
        for (int k = 0; k < kk; k++) {
            const float *p = pc + toff[k];
            __m512 x[VECS];
            for (int v = 0; v < VECS; v++) x[v] = _mm512_maskz_loadu_ps(mk[v], p + 16 * v);
            const float *w = wtap[k] + wc;
#pragma GCC unroll 8
            for (int i = 0; i < r; i++) {
                const __m512 b = _mm512_set1_ps(w[i]);
                for (int v = 0; v < VECS; v++) acc[i][v] = _mm512_fmadd_ps(b, x[v], acc[i][v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < r; i++) {
        float *o = out + (size_t)(o0 + i) * ocs + j0;
        for (int v = 0; v < VECS; v++) _mm512_mask_storeu_ps(o + 16 * v, mk[v], acc[i][v]);
    }
}

void conv_direct(float *out, size_t ocs, int nout, int n, const float *in, size_t ics, int nin,
                 const size_t *toff, const float *const *wtap, int kk)
{
    for (int j0 = 0; j0 < n; j0 += COLS) {
        int o0 = 0;
        for (; o0 + ROWS <= nout; o0 += ROWS)
            tile(ROWS, out, ocs, n, in, ics, nin, toff, wtap, kk, nout, o0, j0);
        for (; o0 < nout; o0++) tile(1, out, ocs, n, in, ics, nin, toff, wtap, kk, nout, o0, j0);
    }
}

#else

void conv_direct(float *out, size_t ocs, int nout, int n, const float *in, size_t ics, int nin,
                 const size_t *toff, const float *const *wtap, int kk)
{
    for (int o = 0; o < nout; o++) {
        float *dst = out + (size_t)o * ocs;
        for (int j = 0; j < n; j++) dst[j] = 0.0f;
        for (int c = 0; c < nin; c++)
            for (int k = 0; k < kk; k++) {
                const float w = wtap[k][(size_t)c * nout + o];
                const float *p = in + (size_t)c * ics + toff[k];
#pragma omp simd
                for (int j = 0; j < n; j++) dst[j] += w * p[j];
            }
    }
}

#endif
