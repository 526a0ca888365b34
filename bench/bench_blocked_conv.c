/*
 * What a channel-blocked activation layout would buy the 3×3 convolutions
 * (docs/PERFORMANCE.md, "A channel-blocked layout, measured"): a direct
 * forward on activations stored 16 channels to a pixel, with the zero
 * border already in place, against Lethe's own forward (nn_conv2d_forward_ex
 * on NCHW) for resnet20's three stride-1 shapes, batch 128, one thread;
 * then the backward: the input gradient by the same kernel (the output
 * gradient, bordered, against the weights transposed and flipped) and the
 * weight gradient as a reduction over pixels, against nn_conv2d_backward_ex.
 *
 * The blocked kernel is a measurement, not the engine's code: it sums in
 * another order than Lethe's lowerings, so the engine cannot take it
 * without changing every conv model's bits (and so rerunning the tables).
 * It is checked here against a double-precision reference.
 *
 *     build/bench/bench_blocked_conv [--runs R]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lethe.h"
#include "nn/kernels.h"
#include "nn/layers.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_BLOCKED 1
#else
#define HAVE_BLOCKED 0
#endif

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#if HAVE_BLOCKED
/* y (N, OC/16, H, W, 16) ← x (N, C/16, H + 2, W + 2, 16, zero border) ∗ w
 * (OC/16, C/16, 3, 3, 16 in, 16 out). Sixteen accumulators: 8 pixels × 2
 * output blocks when W = 8, else 16 pixels × 1 block. Each value is a
 * chain of fused multiply-adds over (input block, ky, kx, channel). */
__attribute__((target("avx512f,fma"))) static void
conv_blocked(float *y, const float *x, const float *w, int n, int c, int oc, int h, int wd)
{
    const int hp = h + 2, wp = wd + 2, cb = c / 16, ocb = oc / 16;
    const int px = wd == 8 ? 8 : 16, nob = wd == 8 ? 2 : 1;
    const size_t xplane = (size_t)hp * wp * 16, yplane = (size_t)h * wd * 16;
    for (int s = 0; s < n; s++)
        for (int ob = 0; ob < ocb; ob += nob)
            for (int oy = 0; oy < h; oy++)
                for (int ox = 0; ox < wd; ox += px) {
                    __m512 a[16];
#pragma GCC unroll 16
                    for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
                    for (int ib = 0; ib < cb; ib++) {
                        const float *xb = x + ((size_t)s * cb + ib) * xplane;
                        for (int k = 0; k < 9; k++) {
                            const float *xr = xb + ((size_t)(oy + k / 3) * wp + ox + k % 3) * 16;
                            const float *w0 = w + (((size_t)ob * cb + ib) * 9 + k) * 256;
                            const float *w1 = w0 + (size_t)cb * 9 * 256;
                            if (nob == 2) {
#pragma GCC unroll 2
                                for (int ic = 0; ic < 16; ic++) {
                                    const __m512 va = _mm512_loadu_ps(w0 + ic * 16);
                                    const __m512 vb = _mm512_loadu_ps(w1 + ic * 16);
#pragma GCC unroll 8
                                    for (int i = 0; i < 8; i++) {
                                        const __m512 xv = _mm512_set1_ps(xr[i * 16 + ic]);
                                        a[i] = _mm512_fmadd_ps(xv, va, a[i]);
                                        a[8 + i] = _mm512_fmadd_ps(xv, vb, a[8 + i]);
                                    }
                                }
                            } else {
#pragma GCC unroll 2
                                for (int ic = 0; ic < 16; ic++) {
                                    const __m512 va = _mm512_loadu_ps(w0 + ic * 16);
#pragma GCC unroll 16
                                    for (int i = 0; i < 16; i++)
                                        a[i] = _mm512_fmadd_ps(_mm512_set1_ps(xr[i * 16 + ic]), va,
                                                               a[i]);
                                }
                            }
                        }
                    }
                    for (int j = 0; j < nob; j++) {
                        float *yr = y + ((size_t)s * ocb + ob + j) * yplane +
                                    ((size_t)oy * wd + ox) * 16;
                        for (int i = 0; i < px; i++)
                            _mm512_storeu_ps(yr + i * 16, a[j * px + i]);
                    }
                }
}

/* dw (OC/16, C/16, 3, 3, 16 in, 16 out) = Σ over samples and pixels of
 * x (bordered) ⊗ dy (N, OC/16, H, W, 16): sixteen accumulators, one per
 * input channel, each a vector of 16 output channels. */
__attribute__((target("avx512f,fma"))) static void
conv_blocked_dw(float *dw, const float *x, const float *dy, int n, int c, int oc, int h, int wd)
{
    const int hp = h + 2, wp = wd + 2, cb = c / 16, ocb = oc / 16;
    const size_t xplane = (size_t)hp * wp * 16, yplane = (size_t)h * wd * 16;
    for (int ob = 0; ob < ocb; ob++)
        for (int ib = 0; ib < cb; ib++)
            for (int k = 0; k < 9; k++) {
                __m512 a[16];
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
                for (int s = 0; s < n; s++) {
                    const float *xb = x + ((size_t)s * cb + ib) * xplane;
                    const float *gb = dy + ((size_t)s * ocb + ob) * yplane;
                    for (int y = 0; y < h; y++) {
                        const float *xr = xb + ((size_t)(y + k / 3) * wp + k % 3) * 16;
                        const float *gr = gb + (size_t)y * wd * 16;
                        for (int xx = 0; xx < wd; xx++) {
                            const __m512 g = _mm512_loadu_ps(gr + xx * 16);
#pragma GCC unroll 16
                            for (int ic = 0; ic < 16; ic++)
                                a[ic] = _mm512_fmadd_ps(_mm512_set1_ps(xr[xx * 16 + ic]), g, a[ic]);
                        }
                    }
                }
                float *d = dw + (((size_t)ob * cb + ib) * 9 + k) * 256;
#pragma GCC unroll 16
                for (int ic = 0; ic < 16; ic++) _mm512_storeu_ps(d + ic * 16, a[ic]);
            }
}
#endif

static float frand(unsigned *r)
{
    *r = *r * 1664525u + 1013904223u;
    return (float)(*r >> 8) / 16777216.0f - 0.5f;
}

/* Channel ch of pixel (y, x) of sample s in a blocked tensor (N, C/16,
 * h, w, 16) of c channels; a bordered one is h + 2 by w + 2, (y, x) + 1. */
static size_t blk(int s, int c, int ch, int h, int w, int y, int x)
{
    return ((((size_t)s * (c / 16) + ch / 16) * h + y) * w + x) * 16 + ch % 16;
}

/* Weight (o, ci, k) of a blocked (OC/16, C/16, 9, 16 in, 16 out) array. */
static size_t wblk(int o, int ci, int k, int c)
{
    return ((((size_t)(o / 16) * (c / 16) + ci / 16) * 9 + k) * 16 + ci % 16) * 16 + o % 16;
}

/* The largest |got − ref| relative to the largest |ref|. */
typedef struct { double err, mag; } rel_err;

static void rel_add(rel_err *e, double got, double ref)
{
    if (fabs(got - ref) > e->err) e->err = fabs(got - ref);
    if (fabs(ref) > e->mag) e->mag = fabs(ref);
}

static double rel_of(const rel_err *e) { return e->mag > 0.0 ? e->err / e->mag : e->err; }

/* The largest |error| of the blocked output over the first 2 samples
 * against a double sum, relative to the largest |value|. */
static double check(const float *y, const float *xs, const float *ws, int c, int oc, int h, int wd)
{
    rel_err e = {0.0, 0.0};
    for (int s = 0; s < 2; s++)
        for (int o = 0; o < oc; o++)
            for (int yy = 0; yy < h; yy++)
                for (int xx = 0; xx < wd; xx++) {
                    double ref = 0.0;
                    for (int ci = 0; ci < c; ci++)
                        for (int k = 0; k < 9; k++) {
                            const int iy = yy + k / 3 - 1, ix = xx + k % 3 - 1;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                            ref += (double)xs[(((size_t)s * c + ci) * h + iy) * wd + ix] *
                                   ws[((size_t)o * c + ci) * 9 + k];
                        }
                    rel_add(&e, y[blk(s, oc, o, h, wd, yy, xx)], ref);
                }
    return rel_of(&e);
}

/* The same for the input gradient dx (N, C/16, H, W, 16) of dys (NCHW). */
static double check_dx(const float *dx, const float *dys, const float *ws, int c, int oc, int h,
                       int wd)
{
    rel_err e = {0.0, 0.0};
    for (int s = 0; s < 2; s++)
        for (int ci = 0; ci < c; ci++)
            for (int iy = 0; iy < h; iy++)
                for (int ix = 0; ix < wd; ix++) {
                    double ref = 0.0;
                    for (int o = 0; o < oc; o++)
                        for (int k = 0; k < 9; k++) {
                            const int y = iy - k / 3 + 1, x = ix - k % 3 + 1;
                            if (y < 0 || y >= h || x < 0 || x >= wd) continue;
                            ref += (double)dys[(((size_t)s * oc + o) * h + y) * wd + x] *
                                   ws[((size_t)o * c + ci) * 9 + k];
                        }
                    rel_add(&e, dx[blk(s, c, ci, h, wd, iy, ix)], ref);
                }
    return rel_of(&e);
}

/* The same for 64 entries of the weight gradient, each a sum over the batch. */
static double check_dw(const float *dw, const float *xs, const float *dys, int n, int c, int oc,
                       int h, int wd)
{
    rel_err e = {0.0, 0.0};
    for (int j = 0; j < 64; j++) {
        const int o = (j * 7) % oc, ci = (j * 5) % c, k = j % 9;
        double ref = 0.0;
        for (int s = 0; s < n; s++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < wd; x++) {
                    const int iy = y + k / 3 - 1, ix = x + k % 3 - 1;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                    ref += (double)xs[(((size_t)s * c + ci) * h + iy) * wd + ix] *
                           dys[(((size_t)s * oc + o) * h + y) * wd + x];
                }
        rel_add(&e, dw[wblk(o, ci, k, c)], ref);
    }
    return rel_of(&e);
}

int main(int argc, char **argv)
{
    int runs = 10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_blocked_conv [--runs R]\n");
            return 2;
        }
    }
    if (runs < 1) runs = 1;
#if HAVE_BLOCKED
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        printf("bench_blocked_conv: the blocked kernel needs AVX-512; nothing measured\n");
        return 0;
    }
#else
    printf("bench_blocked_conv: the blocked kernel is x86-64 only; nothing measured\n");
    return 0;
#endif
    lethe_init(1);
    printf("3x3 stride-1 convolution forward, batch 128, one thread, min of %d runs; "
           "kernels %s\n\n", runs, nn_kernels_active());
    printf("| shape | forward: Lethe (NCHW) | blocked | ratio | backward (dx + dw): Lethe | "
           "blocked | ratio | blocked GF/s fwd / bwd | rel. error y, dx, dw |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    static const int shapes[3][2] = {{16, 32}, {32, 16}, {64, 8}};
    for (int si = 0; si < 3; si++) {
        const int n = 128, c = shapes[si][0], oc = c, h = shapes[si][1], wd = h;
        const size_t nin = (size_t)n * c * h * wd, nout = (size_t)n * oc * h * wd;
        const size_t nx = (size_t)n * c * (h + 2) * (wd + 2), nw = (size_t)oc * c * 9;
        nn_conv_shape cs;
        nn_conv_shape_set(&cs, n, c, h, wd, oc, 3, 1, 1);
        float *xs = malloc(nin * sizeof(float)), *ws = malloc(nw * sizeof(float));
        float *ys = malloc(nout * sizeof(float)), *x = calloc(nx, sizeof(float));
        float *w = malloc(nw * sizeof(float)), *y = malloc(nout * sizeof(float));
        float *work = malloc((nn_conv2d_workspace(&cs) + 64) * sizeof(float));
        /* Backward: dys (NCHW); dyb bordered and dyp plain, blocked; wt the
         * weights transposed (input and output blocks swapped) and flipped. */
        const size_t nyb = (size_t)n * oc * (h + 2) * (wd + 2);
        float *dys = malloc(nout * sizeof(float)), *dyb = calloc(nyb, sizeof(float));
        float *dyp = malloc(nout * sizeof(float)), *wt = malloc(nw * sizeof(float));
        float *dx = malloc(nin * sizeof(float)), *dwb = malloc(nw * sizeof(float));
        float *dins = malloc(nin * sizeof(float)), *dwl = malloc(nw * sizeof(float));
        if (!xs || !ws || !ys || !x || !w || !y || !work || !dys || !dyb || !dyp || !wt || !dx ||
            !dwb || !dins || !dwl) {
            fprintf(stderr, "bench_blocked_conv: out of memory\n");
            return 1;
        }
        unsigned r = 1u + (unsigned)si;
        for (size_t i = 0; i < nin; i++) xs[i] = frand(&r);
        for (size_t i = 0; i < nw; i++) ws[i] = frand(&r);
        for (int s = 0; s < n; s++)
            for (int ci = 0; ci < c; ci++)
                for (int yy = 0; yy < h; yy++)
                    for (int xx = 0; xx < wd; xx++)
                        x[blk(s, c, ci, h + 2, wd + 2, yy + 1, xx + 1)] =
                            xs[(((size_t)s * c + ci) * h + yy) * wd + xx];
        for (int o = 0; o < oc; o++)
            for (int ci = 0; ci < c; ci++)
                for (int k = 0; k < 9; k++)
                    w[wblk(o, ci, k, c)] = ws[((size_t)o * c + ci) * 9 + k];
        for (size_t i = 0; i < nout; i++) dys[i] = frand(&r);
        for (int s = 0; s < n; s++)
            for (int o = 0; o < oc; o++)
                for (int yy = 0; yy < h; yy++)
                    for (int xx = 0; xx < wd; xx++) {
                        const float g = dys[(((size_t)s * oc + o) * h + yy) * wd + xx];
                        dyb[blk(s, oc, o, h + 2, wd + 2, yy + 1, xx + 1)] = g;
                        dyp[blk(s, oc, o, h, wd, yy, xx)] = g;
                    }
        for (int o = 0; o < oc; o++)
            for (int ci = 0; ci < c; ci++)
                for (int k = 0; k < 9; k++)
                    wt[wblk(ci, o, 8 - k, oc)] = ws[((size_t)o * c + ci) * 9 + k];
        lethe_groups one;
        memset(&one, 0, sizeof one);
        one.n = 1;
        one.start[1] = n;
        float *dws[1] = {dwl};
        double tl = 1e30, tb = 1e30, bl = 1e30, bb = 1e30;
        for (int k = 0; k < runs; k++) {
            double t = now_s();
            nn_conv2d_forward_ex(ys, NULL, xs, ws, NULL, &cs, NULL, work);
            t = now_s() - t;
            if (t < tl) tl = t;
            memset(dwl, 0, nw * sizeof(float));
            t = now_s();
            nn_conv2d_backward_ex(dins, 0, dws, NULL, dys, ys, NULL, xs, ws, &cs, NULL, &one,
                                  work);
            t = now_s() - t;
            if (t < bl) bl = t;
#if HAVE_BLOCKED
            t = now_s();
            conv_blocked(y, x, w, n, c, oc, h, wd);
            t = now_s() - t;
            if (t < tb) tb = t;
            t = now_s();
            conv_blocked(dx, dyb, wt, n, oc, c, h, wd);
            conv_blocked_dw(dwb, x, dyp, n, c, oc, h, wd);
            t = now_s() - t;
            if (t < bb) bb = t;
#endif
        }
        const double flops = 2.0 * n * oc * c * 9 * h * wd;
        printf("| %d→%d, %d×%d | %.2f ms | %.2f ms | %.2f | %.2f ms | %.2f ms | %.2f | %.0f / %.0f "
               "| %.0e, %.0e, %.0e |\n", c, oc, h, wd, tl * 1e3, tb * 1e3, tb / tl, bl * 1e3,
               bb * 1e3, bb / bl, flops / tb / 1e9, 2.0 * flops / bb / 1e9,
               check(y, xs, ws, c, oc, h, wd), check_dx(dx, dys, ws, c, oc, h, wd),
               check_dw(dwb, xs, dys, n, c, oc, h, wd));
        free(xs);
        free(ws);
        free(ys);
        free(x);
        free(w);
        free(y);
        free(work);
        free(dys);
        free(dyb);
        free(dyp);
        free(wt);
        free(dx);
        free(dwb);
        free(dins);
        free(dwl);
    }
    return 0;
}
