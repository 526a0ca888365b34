/* Winograd F(2×2, 3×3) transforms (see winograd.h); conv2d.c runs the 16
 * products and everything around them. With
 *     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
 *     G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
 *     Aᵀ = [1 1 1 0; 0 1 −1 −1]
 * each 2-D transform is the 1-D one on the rows, then on the columns. */
#include "nn/winograd.h"

/* Bᵀ applied to four values. */
#define BT(d0, d1, d2, d3, o0, o1, o2, o3) \
    do {                                   \
        o0 = (d0) - (d2);                  \
        o1 = (d1) + (d2);                  \
        o2 = (d2) - (d1);                  \
        o3 = (d1) - (d3);                  \
    } while (0)

void wino_weights(float *U, const float *w, int oc, int c)
{
    const size_t pos = (size_t)oc * c;
    for (int o = 0; o < oc; o++)
        for (int ci = 0; ci < c; ci++) {
            const float *g = w + ((size_t)o * c + ci) * 9;
            float t[4][3];
            for (int j = 0; j < 3; j++) {
                t[0][j] = g[j];
                t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
                t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
                t[3][j] = g[6 + j];
            }
            float *u = U + (size_t)o * c + ci;
            for (int k = 0; k < 4; k++) {
                u[(4 * k + 0) * pos] = t[k][0];
                u[(4 * k + 1) * pos] = 0.5f * (t[k][0] + t[k][1] + t[k][2]);
                u[(4 * k + 2) * pos] = 0.5f * (t[k][0] - t[k][1] + t[k][2]);
                u[(4 * k + 3) * pos] = t[k][2];
            }
        }
}

void wino_weights_adjoint(float *dw, const float *dU, size_t stride, int nblk, int oc, int c,
                          int o0, int o1)
{
    const size_t pos = (size_t)oc * c;
    for (int o = o0; o < o1; o++)
        for (int ci = 0; ci < c; ci++) {
            float u[16];
            for (int p = 0; p < 16; p++) {
                float sum = 0.0f;
                for (int b = 0; b < nblk; b++)
                    sum += dU[(size_t)b * stride + (size_t)p * pos + (size_t)o * c + ci];
                u[p] = sum;
            }
            /* Gᵀ on the rows: 4 → 3. */
            float t[3][4];
            for (int l = 0; l < 4; l++) {
                t[0][l] = u[l] + 0.5f * (u[4 + l] + u[8 + l]);
                t[1][l] = 0.5f * (u[4 + l] - u[8 + l]);
                t[2][l] = 0.5f * (u[4 + l] + u[8 + l]) + u[12 + l];
            }
            float *g = dw + ((size_t)o * c + ci) * 9;
            for (int a = 0; a < 3; a++) {
                g[3 * a + 0] += t[a][0] + 0.5f * (t[a][1] + t[a][2]);
                g[3 * a + 1] += 0.5f * (t[a][1] - t[a][2]);
                g[3 * a + 2] += 0.5f * (t[a][1] + t[a][2]) + t[a][3];
            }
        }
}

/* The tiles of a plane are numbered u = i·tx + j over a grid of tx = wp/2
 * tiles per row, the last of each row junk. Planes keep their even rows
 * and their odd rows apart (odd: the offset of the odd rows), so tile u
 * starts at offset 2u in both halves, whatever its row: every loop below
 * runs over all tiles of a plane at once, reading and writing at fixed
 * offsets from 2u (long vectors even for 7×7 planes). */

/* Offset of row r (0…3) of a tile within a plane, from 2u. */
static inline size_t rowoff(int r, int wp, size_t odd)
{
    return (size_t)(r & 1) * odd + (size_t)(r >> 1) * wp;
}

void wino_input(float *V, size_t pos, int c, int T, int t0, const float *P, size_t pplane, int wp,
                size_t odd, int tiles)
{
    const size_t o1 = rowoff(1, wp, odd), o2 = rowoff(2, wp, odd), o3 = rowoff(3, wp, odd);
    for (int ci = 0; ci < c; ci++) {
        const float *pl = P + (size_t)ci * pplane;
        float *v = V + (size_t)ci * T + t0;
#pragma omp simd
        for (int u = 0; u < tiles; u++) {
            const float *d = pl + 2 * u;
            float e[4][4];
#pragma GCC unroll 4
            for (int x = 0; x < 4; x++)
                BT(d[x], d[o1 + x], d[o2 + x], d[o3 + x], e[0][x], e[1][x], e[2][x], e[3][x]);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                BT(e[k][0], e[k][1], e[k][2], e[k][3], v[(4 * k) * pos + u],
                   v[(4 * k + 1) * pos + u], v[(4 * k + 2) * pos + u], v[(4 * k + 3) * pos + u]);
        }
    }
}

/* B applied to four values (the adjoint of Bᵀ). */
#define B1(d0, d1, d2, d3, o0, o1, o2, o3) \
    do {                                   \
        o0 = (d0);                         \
        o1 = (d1) - (d2) + (d3);           \
        o2 = (d1) + (d2) - (d0);           \
        o3 = -(d3);                        \
    } while (0)

void wino_input_adjoint(float *dP, size_t pplane, int wp, size_t odd, float *dV, size_t pos, int c,
                        int T, int t0, int tiles)
{
    for (int ci = 0; ci < c; ci++) {
        float *pl = dP + (size_t)ci * pplane;
        float *v = dV + (size_t)ci * T + t0;
        /* dd = B dV Bᵀ in place: entry 4r + x is row r, column x. */
#pragma omp simd
        for (int u = 0; u < tiles; u++) {
            float e[4][4];
#pragma GCC unroll 4
            for (int l = 0; l < 4; l++)
                B1(v[l * pos + u], v[(4 + l) * pos + u], v[(8 + l) * pos + u],
                   v[(12 + l) * pos + u], e[0][l], e[1][l], e[2][l], e[3][l]);
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++)
                B1(e[r][0], e[r][1], e[r][2], e[r][3], v[(4 * r) * pos + u],
                   v[(4 * r + 1) * pos + u], v[(4 * r + 2) * pos + u], v[(4 * r + 3) * pos + u]);
        }
        /* Neighbouring tiles overlap by two rows and two columns: add one
         * row and one pair of columns of every tile at a time, so that no
         * two tiles of one pass touch the same value. */
        for (int r = 0; r < 4; r++)
            for (int x = 0; x < 4; x += 2) {
                float *dst = pl + rowoff(r, wp, odd) + x;
                const float *a = v + (size_t)(4 * r + x) * pos, *b = a + pos;
#pragma omp simd
                for (int u = 0; u < tiles; u++) {
                    dst[2 * u] += a[u];
                    dst[2 * u + 1] += b[u];
                }
            }
    }
}

/* Aᵀ on four values → two; A on two → four (its adjoint). */
#define AT(m0, m1, m2, m3, y0, y1) \
    do {                           \
        y0 = (m0) + (m1) + (m2);   \
        y1 = (m1) - (m2) - (m3);   \
    } while (0)
#define A1(y0, y1, m0, m1, m2, m3) \
    do {                           \
        m0 = (y0);                 \
        m1 = (y0) + (y1);          \
        m2 = (y0) - (y1);          \
        m3 = -(y1);                \
    } while (0)

void wino_output(float *t, size_t tplane, size_t odd, const float *M, size_t pos, int oc, int T,
                 int t0, int tiles)
{
    for (int o = 0; o < oc; o++) {
        float *pl = t + (size_t)o * tplane;
        const float *m = M + (size_t)o * T + t0;
#pragma omp simd
        for (int u = 0; u < tiles; u++) {
            float a[2][4];
#pragma GCC unroll 4
            for (int l = 0; l < 4; l++)
                AT(m[l * pos + u], m[(4 + l) * pos + u], m[(8 + l) * pos + u],
                   m[(12 + l) * pos + u], a[0][l], a[1][l]);
            float *y = pl + 2 * u;
            AT(a[0][0], a[0][1], a[0][2], a[0][3], y[0], y[1]);
            AT(a[1][0], a[1][1], a[1][2], a[1][3], y[odd], y[odd + 1]);
        }
    }
}

void wino_output_adjoint(float *dM, size_t pos, const float *t, size_t tplane, size_t odd, int oc,
                         int T, int t0, int tiles)
{
    for (int o = 0; o < oc; o++) {
        const float *pl = t + (size_t)o * tplane;
        float *m = dM + (size_t)o * T + t0;
#pragma omp simd
        for (int u = 0; u < tiles; u++) {
            const float *y = pl + 2 * u;
            float a[4][2];
            /* A on the rows, then on the columns. */
            A1(y[0], y[odd], a[0][0], a[1][0], a[2][0], a[3][0]);
            A1(y[1], y[odd + 1], a[0][1], a[1][1], a[2][1], a[3][1]);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                A1(a[k][0], a[k][1], m[(4 * k) * pos + u], m[(4 * k + 1) * pos + u],
                   m[(4 * k + 2) * pos + u], m[(4 * k + 3) * pos + u]);
        }
    }
}
