/* Direct convolution on the padded grid (conv2d.c's shifted products in
 * one kernel): out[o][j] = Σ_c Σ_k W(c, o, k) · in[c][j + toff[k]].
 *
 * The shifted products ran KH·KW sgemm calls with K = C (16–64), each
 * reading and writing the whole output block; here a register tile of
 * output channels × output columns is accumulated over every channel and
 * kernel position and written once. With AVX-512: 8 channels × 32 columns
 * (two vectors), per (c, k) two input vectors loaded, eight weights
 * broadcast, 16 FMAs — FMA-bound, not load-bound; 32 columns, so that a
 * 7×7 plane (63 columns on its padded grid) wastes one. With AVX2 and FMA:
 * 4 channels × 24 columns (12 of the 16 registers). The output stays in
 * NCHW planes (vectors run along a plane's columns), so nothing is
 * transposed. Each output value is one chain of FMAs in a fixed order
 * (c, then k): deterministic. Without either, a plain loop nest does the
 * same sums (GCC vectorises its inner loop). */
#include "nn/conv_direct.h"

#if defined(__AVX512F__)
#include <immintrin.h>

/* 8 channels × 2 vectors of 16: 16 accumulators of the 32 registers. */
#define ROWS 8
#define VECS 2
#define VW 16
typedef __m512 vec;
typedef __mmask16 vmask;
static inline vmask vmask_of(int left)
{
    return left >= 16 ? (vmask)0xffff : left <= 0 ? 0 : (vmask)((1u << left) - 1);
}
#define vzero() _mm512_setzero_ps()
#define vload(m, p) _mm512_maskz_loadu_ps((m), (p))
#define vstore(m, p, v) _mm512_mask_storeu_ps((p), (m), (v))
#define vloadu(p) _mm512_loadu_ps(p)
#define vstoreu(p, v) _mm512_storeu_ps((p), (v))
#define vbcast(x) _mm512_set1_ps(x)
#define vfma(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define HAVE_TILE 1

#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* 4 channels × 3 vectors of 8: 12 accumulators of the 16 registers. */
#define ROWS 4
#define VECS 3
#define VW 8
typedef __m256 vec;
typedef __m256i vmask;
static inline vmask vmask_of(int left)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#define vzero() _mm256_setzero_ps()
#define vload(m, p) _mm256_maskload_ps((p), (m))
#define vstore(m, p, v) _mm256_maskstore_ps((p), (m), (v))
#define vloadu(p) _mm256_loadu_ps(p)
#define vstoreu(p, v) _mm256_storeu_ps((p), (v))
#define vbcast(x) _mm256_set1_ps(x)
#define vfma(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define HAVE_TILE 1
#endif

#ifdef HAVE_TILE
#define COLS (VW * VECS)
_Static_assert(VW == CONV_DIRECT_VW, "conv_direct.h's CONV_DIRECT_VW names this set's width");

/* Rows [o0, o0 + r) × columns [j0, j0 + COLS) of out; in the last tile
 * (!full) the columns past n are masked off (not loaded, not stored:
 * masked moves cost more, AVX2's especially, so only there). r and full
 * are constants in each inlined copy: the accumulators stay in registers. */
static inline __attribute__((always_inline)) void
tile(const int r, const int full, float *out, size_t ocs, int n, const float *in, size_t ics,
     int nin, const size_t *toff, const float *wp, int kk, int o0, int j0)
{
    vmask mk[VECS];
#pragma GCC unroll 4
    for (int v = 0; v < VECS; v++) mk[v] = vmask_of(n - j0 - VW * v);
    vec acc[ROWS][VECS];
#pragma GCC unroll 8
    for (int i = 0; i < r; i++)
#pragma GCC unroll 4
        for (int v = 0; v < VECS; v++) acc[i][v] = vzero();
    const float *w = wp + (size_t)o0 * nin * kk;
    for (int c = 0; c < nin; c++) {
        const float *pc = in + (size_t)c * ics + j0;
        for (int k = 0; k < kk; k++, w += r) {
            const float *p = pc + toff[k];
            vec x[VECS];
#pragma GCC unroll 4
            for (int v = 0; v < VECS; v++) x[v] = full ? vloadu(p + VW * v) : vload(mk[v], p + VW * v);
#pragma GCC unroll 8
            for (int i = 0; i < r; i++) {
                const vec b = vbcast(w[i]);
#pragma GCC unroll 4
                for (int v = 0; v < VECS; v++) acc[i][v] = vfma(b, x[v], acc[i][v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < r; i++) {
        float *o = out + (size_t)(o0 + i) * ocs + j0;
#pragma GCC unroll 4
        for (int v = 0; v < VECS; v++) {
            if (full) vstoreu(o + VW * v, acc[i][v]);
            else vstore(mk[v], o + VW * v, acc[i][v]);
        }
    }
}

void conv_direct(float *out, size_t ocs, int nout, int n, const float *in, size_t ics, int nin,
                 const size_t *toff, const float *wp, int kk)
{
    for (int j0 = 0; j0 < n; j0 += COLS) {
        int o0 = 0;
        if (j0 + COLS <= n) {
            for (; o0 + ROWS <= nout; o0 += ROWS)
                tile(ROWS, 1, out, ocs, n, in, ics, nin, toff, wp, kk, o0, j0);
            for (; o0 < nout; o0++) tile(1, 1, out, ocs, n, in, ics, nin, toff, wp, kk, o0, j0);
        } else {
            for (; o0 + ROWS <= nout; o0 += ROWS)
                tile(ROWS, 0, out, ocs, n, in, ics, nin, toff, wp, kk, o0, j0);
            for (; o0 < nout; o0++) tile(1, 0, out, ocs, n, in, ics, nin, toff, wp, kk, o0, j0);
        }
    }
}

/* The same sums over whole vectors of a plane's rows only (w a multiple
 * of VW): vector t of the plane starts at column (t / vpr)·rs + (t % vpr)·VW
 * (vpr = w / VW vectors a row). Tiles of ROWS channels × nv ≤ VECS
 * vectors, nv a constant in each inlined copy. */
static inline __attribute__((always_inline)) void
tile_rows(const int r, const int nv, float *out, size_t ocs, const size_t *off, const float *in,
          size_t ics, int nin, const size_t *toff, const float *wp, int kk, int o0)
{
    vec acc[ROWS][VECS];
#pragma GCC unroll 8
    for (int i = 0; i < r; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[i][v] = vzero();
    const float *w = wp + (size_t)o0 * nin * kk;
    for (int c = 0; c < nin; c++) {
        const float *pc = in + (size_t)c * ics;
        for (int k = 0; k < kk; k++, w += r) {
            const float *p = pc + toff[k];
            vec x[VECS];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) x[v] = vloadu(p + off[v]);
#pragma GCC unroll 8
            for (int i = 0; i < r; i++) {
                const vec b = vbcast(w[i]);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++) acc[i][v] = vfma(b, x[v], acc[i][v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < r; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) vstoreu(out + (size_t)(o0 + i) * ocs + off[v], acc[i][v]);
}

static inline __attribute__((always_inline)) void
rows_tiles(const int nv, float *out, size_t ocs, int nout, const size_t *off, const float *in,
           size_t ics, int nin, const size_t *toff, const float *wp, int kk)
{
    int o0 = 0;
    for (; o0 + ROWS <= nout; o0 += ROWS)
        tile_rows(ROWS, nv, out, ocs, off, in, ics, nin, toff, wp, kk, o0);
    for (; o0 < nout; o0++) tile_rows(1, nv, out, ocs, off, in, ics, nin, toff, wp, kk, o0);
}

void conv_direct_rows(float *out, size_t ocs, int nout, int rows, int w, size_t rs,
                      const float *in, size_t ics, int nin, const size_t *toff, const float *wp,
                      int kk)
{
    if (w % VW != 0 || rs == (size_t)w) {   /* the span, junk included (none when rs = w) */
        conv_direct(out, ocs, nout, (int)((size_t)(rows - 1) * rs + (size_t)w), in, ics, nin, toff,
                    wp, kk);
        return;
    }
    const int vpr = w / VW, nvec = rows * vpr;
    for (int t0 = 0; t0 < nvec; t0 += VECS) {
        size_t off[VECS];
        const int nv = nvec - t0 < VECS ? nvec - t0 : VECS;
        for (int v = 0; v < nv; v++)
            off[v] = (size_t)((t0 + v) / vpr) * rs + (size_t)((t0 + v) % vpr) * VW;
        switch (nv) {
        case VECS: rows_tiles(VECS, out, ocs, nout, off, in, ics, nin, toff, wp, kk); break;
#if VECS > 2
        case 2: rows_tiles(2, out, ocs, nout, off, in, ics, nin, toff, wp, kk); break;
#endif
        default: rows_tiles(1, out, ocs, nout, off, in, ics, nin, toff, wp, kk); break;
        }
    }
}

/* Weight gradient: a tile of DO output channels × DK kernel positions,
 * each a vector of partial sums over columns, reduced at the end. Per
 * column vector: DO + DK loads for DO·DK FMAs. */
#if VW == 16
#define DO 3
#define DK 9
static inline float vsum(vec v) { return _mm512_reduce_add_ps(v); }
#else
#define DO 3
#define DK 3
static inline float vsum(vec v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}
#endif

static inline __attribute__((always_inline)) void
dw_tile(const int ro, const int rk, float *dwt, int nout, int n, const float *pc,
        const size_t *toff, int kk, const float *t, size_t ocs, int c, int o0, int k0)
{
    vec acc[DO][DK];
#pragma GCC unroll 9
    for (int a = 0; a < ro; a++)
#pragma GCC unroll 9
        for (int b = 0; b < rk; b++) acc[a][b] = vzero();
    int j = 0;
    for (; j + VW <= n; j += VW) {
        vec tv[DO];
#pragma GCC unroll 9
        for (int a = 0; a < ro; a++) tv[a] = vloadu(t + (size_t)(o0 + a) * ocs + j);
#pragma GCC unroll 9
        for (int b = 0; b < rk; b++) {
            const vec x = vloadu(pc + toff[k0 + b] + j);
#pragma GCC unroll 9
            for (int a = 0; a < ro; a++) acc[a][b] = vfma(x, tv[a], acc[a][b]);
        }
    }
    if (j < n) {
        const vmask mk = vmask_of(n - j);
        vec tv[DO];
#pragma GCC unroll 9
        for (int a = 0; a < ro; a++) tv[a] = vload(mk, t + (size_t)(o0 + a) * ocs + j);
#pragma GCC unroll 9
        for (int b = 0; b < rk; b++) {
            const vec x = vload(mk, pc + toff[k0 + b] + j);
#pragma GCC unroll 9
            for (int a = 0; a < ro; a++) acc[a][b] = vfma(x, tv[a], acc[a][b]);
        }
    }
#pragma GCC unroll 9
    for (int a = 0; a < ro; a++)
#pragma GCC unroll 9
        for (int b = 0; b < rk; b++)
            dwt[((size_t)c * kk + k0 + b) * nout + o0 + a] += vsum(acc[a][b]);
}

void conv_direct_dw(float *dwt, int nout, int n, const float *in, size_t ics, int nin,
                    const size_t *toff, int kk, const float *t, size_t ocs)
{
    for (int c = 0; c < nin; c++) {
        const float *pc = in + (size_t)c * ics;
        for (int k0 = 0; k0 < kk; k0 += DK) {
            const int rk = kk - k0 < DK ? kk - k0 : DK;
            int o0 = 0;
            if (rk == DK) {
                for (; o0 + DO <= nout; o0 += DO)
                    dw_tile(DO, DK, dwt, nout, n, pc, toff, kk, t, ocs, c, o0, k0);
                for (; o0 < nout; o0++)
                    dw_tile(1, DK, dwt, nout, n, pc, toff, kk, t, ocs, c, o0, k0);
            } else {   /* the last rk < DK positions, one at a time */
                for (int b = 0; b < rk; b++) {
                    for (o0 = 0; o0 + DO <= nout; o0 += DO)
                        dw_tile(DO, 1, dwt, nout, n, pc, toff, kk, t, ocs, c, o0, k0 + b);
                    for (; o0 < nout; o0++)
                        dw_tile(1, 1, dwt, nout, n, pc, toff, kk, t, ocs, c, o0, k0 + b);
                }
            }
        }
    }
}

#else

#define ROWS 1   /* the packed weights of one channel after another */

void conv_direct(float *out, size_t ocs, int nout, int n, const float *in, size_t ics, int nin,
                 const size_t *toff, const float *wp, int kk)
{
    for (int o = 0; o < nout; o++) {
        float *dst = out + (size_t)o * ocs;
        for (int j = 0; j < n; j++) dst[j] = 0.0f;
        for (int c = 0; c < nin; c++)
            for (int k = 0; k < kk; k++) {
                const float w = wp[((size_t)o * nin + c) * kk + k];
                const float *p = in + (size_t)c * ics + toff[k];
#pragma omp simd
                for (int j = 0; j < n; j++) dst[j] += w * p[j];
            }
    }
}

void conv_direct_rows(float *out, size_t ocs, int nout, int rows, int w, size_t rs,
                      const float *in, size_t ics, int nin, const size_t *toff, const float *wp,
                      int kk)
{
    conv_direct(out, ocs, nout, (int)((size_t)(rows - 1) * rs + (size_t)w), in, ics, nin, toff, wp,
                kk);
}

void conv_direct_dw(float *dwt, int nout, int n, const float *in, size_t ics, int nin,
                    const size_t *toff, int kk, const float *t, size_t ocs)
{
    for (int c = 0; c < nin; c++)
        for (int k = 0; k < kk; k++)
            for (int o = 0; o < nout; o++) {
                const float *p = in + (size_t)c * ics + toff[k], *g = t + (size_t)o * ocs;
                float sum = 0.0f;
                for (int j = 0; j < n; j++) sum += p[j] * g[j];
                dwt[((size_t)c * kk + k) * nout + o] += sum;
            }
}

#endif

void conv_direct_pack(float *wp, int nin, int nout, int kk, const float *src, size_t sc, size_t so,
                      const size_t *tap)
{
    int o0 = 0;
    for (; ROWS > 1 && o0 + ROWS <= nout; o0 += ROWS)   /* whole tiles, as conv_direct cuts them */
        for (int c = 0; c < nin; c++)
            for (int k = 0; k < kk; k++)
                for (int i = 0; i < ROWS; i++)
                    *wp++ = src[(size_t)c * sc + (size_t)(o0 + i) * so + tap[k]];
    for (; o0 < nout; o0++)   /* the last channels, one a tile */
        for (int c = 0; c < nin; c++)
            for (int k = 0; k < kk; k++) *wp++ = src[(size_t)c * sc + (size_t)o0 * so + tap[k]];
}
