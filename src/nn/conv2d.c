/* 2-D convolution (cross-correlation, like PyTorch) lowered onto one
 * cblas_sgemm over the whole batch with im2col:
 *     col (CKK, P)          CKK = C·KH·KW, P = N·OH·OW, column n·OH·OW + j
 *     t   (OC, P)  = w (OC, CKK) · col
 *     out (N, OC, OH, OW) ← t scattered, plus the bias.
 * Backward gathers dout into t's layout; then group k's samples are the
 * contiguous column range [start[k]·OH·OW, start[k+1]·OH·OW) of both t and
 * col, so dw[k] += t_k·col_kᵀ is one sgemm with offset pointers, no copy.
 * One big product beats N small ones for the small planes of deep layers. */
#include "nn/layers.h"

#include <cblas.h>
#include <string.h>

/* Below this many floats moved, a parallel region costs more than it saves. */
#define CONV_PAR_MIN 32768

void nn_conv_shape_set(nn_conv_shape *s, int n, int c, int h, int w, int oc,
                       int k, int stride, int pad)
{
    s->n = n; s->c = c; s->h = h; s->w = w; s->oc = oc;
    s->kh = k; s->kw = k; s->stride = stride; s->pad = pad;
    s->oh = stride > 0 ? (h + 2 * pad - k) / stride + 1 : 0;
    s->ow = stride > 0 ? (w + 2 * pad - k) / stride + 1 : 0;
}

/* col (CKK, P) + t (OC, P). Backward reuses col for dcol = wᵀ·t once the
 * weight gradient no longer needs col, which saves CKK·P floats — the
 * largest buffer of the whole network. */
size_t nn_conv2d_workspace(const nn_conv_shape *s)
{
    if (s->oh <= 0 || s->ow <= 0) return 0;
    size_t p = (size_t)s->n * s->oh * s->ow;
    size_t ckk = (size_t)s->c * s->kh * s->kw;
    return (ckk + (size_t)s->oc) * p;
}

/* Output columns ox whose input column ox·stride + off lies in [0, w):
 * [*x0, *x1), so the inner loops run without bounds tests. */
static void valid_range(int off, int stride, int w, int ow, int *x0, int *x1)
{
    int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int b = w - 1 - off < 0 ? 0 : (w - 1 - off) / stride + 1;
    if (b > ow) b = ow;
    if (a > b) a = b;
    *x0 = a;
    *x1 = b;
}

/* in (N, C, H, W) → col (CKK, P); zero where the window hits the padding. */
static void im2col(float *col, const float *in, const nn_conv_shape *s)
{
    const int ohw = s->oh * s->ow;
    const size_t p = (size_t)s->n * ohw;
    const size_t work = (size_t)s->c * s->kh * s->kw * p;
#pragma omp parallel for collapse(2) schedule(static) if (work > CONV_PAR_MIN)
    for (int c = 0; c < s->c; c++) {
        for (int n = 0; n < s->n; n++) {
            const float *plane = in + ((size_t)n * s->c + c) * s->h * s->w;
            for (int ki = 0; ki < s->kh; ki++) {
                for (int kj = 0; kj < s->kw; kj++) {
                    int off = kj - s->pad, x0, x1;
                    valid_range(off, s->stride, s->w, s->ow, &x0, &x1);
                    float *dst = col + ((size_t)(c * s->kh + ki) * s->kw + kj) * p
                               + (size_t)n * ohw;
                    for (int oy = 0; oy < s->oh; oy++) {
                        float *d = dst + (size_t)oy * s->ow;
                        int iy = oy * s->stride - s->pad + ki;
                        if (iy < 0 || iy >= s->h) {
                            memset(d, 0, sizeof(float) * (size_t)s->ow);
                            continue;
                        }
                        const float *src = plane + (size_t)iy * s->w;
                        for (int ox = 0; ox < x0; ox++) d[ox] = 0.0f;
                        if (s->stride == 1)
                            memcpy(d + x0, src + x0 + off, sizeof(float) * (size_t)(x1 - x0));
                        else
                            for (int ox = x0; ox < x1; ox++) d[ox] = src[ox * s->stride + off];
                        for (int ox = x1; ox < s->ow; ox++) d[ox] = 0.0f;
                    }
                }
            }
        }
    }
}

/* din (N, C, H, W) += col2im(dcol (CKK, P)). Each (n, c) plane is written
 * by one thread only, so overlapping windows need no atomics. */
static void col2im_add(float *din, const float *dcol, const nn_conv_shape *s)
{
    const int ohw = s->oh * s->ow;
    const size_t p = (size_t)s->n * ohw;
    const size_t work = (size_t)s->c * s->kh * s->kw * p;
#pragma omp parallel for collapse(2) schedule(static) if (work > CONV_PAR_MIN)
    for (int n = 0; n < s->n; n++) {
        for (int c = 0; c < s->c; c++) {
            float *plane = din + ((size_t)n * s->c + c) * s->h * s->w;
            for (int ki = 0; ki < s->kh; ki++) {
                for (int kj = 0; kj < s->kw; kj++) {
                    int off = kj - s->pad, x0, x1;
                    valid_range(off, s->stride, s->w, s->ow, &x0, &x1);
                    const float *src = dcol + ((size_t)(c * s->kh + ki) * s->kw + kj) * p
                                     + (size_t)n * ohw;
                    for (int oy = 0; oy < s->oh; oy++) {
                        int iy = oy * s->stride - s->pad + ki;
                        if (iy < 0 || iy >= s->h) continue;
                        const float *d = src + (size_t)oy * s->ow;
                        float *row = plane + (size_t)iy * s->w;
                        if (s->stride == 1) {
                            for (int ox = x0; ox < x1; ox++) row[ox + off] += d[ox];
                        } else {
                            for (int ox = x0; ox < x1; ox++) row[ox * s->stride + off] += d[ox];
                        }
                    }
                }
            }
        }
    }
}

/* in (N, C, H, W), w (OC, C, KH, KW), b (OC) or NULL → out (N, OC, OH, OW);
 * ws: nn_conv2d_workspace(s) floats. */
void nn_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                       const nn_conv_shape *s, float *ws)
{
    const int ohw = s->oh * s->ow;
    const size_t p = (size_t)s->n * ohw;
    const int ckk = s->c * s->kh * s->kw;
    if (p == 0 || s->oc <= 0) return;
    float *col = ws;                   /* (CKK, P) */
    float *t = ws + (size_t)ckk * p;   /* (OC, P) */
    im2col(col, in, s);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, (int)p, ckk,
                1.0f, w, ckk, col, (int)p, 0.0f, t, (int)p);
#pragma omp parallel for collapse(2) schedule(static) if (s->oc * p > CONV_PAR_MIN)
    for (int n = 0; n < s->n; n++) {
        for (int oc = 0; oc < s->oc; oc++) {
            const float *src = t + (size_t)oc * p + (size_t)n * ohw;
            float *dst = out + ((size_t)n * s->oc + oc) * ohw;
            float bias = b ? b[oc] : 0.0f;
            for (int j = 0; j < ohw; j++) dst[j] = src[j] + bias;
        }
    }
}

/* dout (N, OC, OH, OW), in (N, C, H, W), w (OC, C, KH, KW); din (N, C, H, W)
 * or NULL; dw[k] (OC, C, KH, KW) and db[k] (OC) per group, NULL skips. */
void nn_conv2d_backward(float *din, float *const dw[], float *const db[],
                        const float *dout, const float *in, const float *w,
                        const nn_conv_shape *s, const lethe_groups *g, float *ws)
{
    const int ohw = s->oh * s->ow;
    const size_t p = (size_t)s->n * ohw;
    const int ckk = s->c * s->kh * s->kw;
    if (p == 0 || s->oc <= 0) return;
    float *col = ws;                   /* (CKK, P), later dcol */
    float *t = ws + (size_t)ckk * p;   /* (OC, P): dout gathered */

#pragma omp parallel for collapse(2) schedule(static) if (s->oc * p > CONV_PAR_MIN)
    for (int oc = 0; oc < s->oc; oc++) {
        for (int n = 0; n < s->n; n++)
            memcpy(t + (size_t)oc * p + (size_t)n * ohw,
                   dout + ((size_t)n * s->oc + oc) * ohw, sizeof(float) * (size_t)ohw);
    }

    if (db) {
        for (int k = 0; k < g->n; k++) {
            float *d = db[k];
            if (!d) continue;
            size_t j0 = (size_t)g->start[k] * ohw, j1 = (size_t)g->start[k + 1] * ohw;
            for (int oc = 0; oc < s->oc; oc++) {
                const float *r = t + (size_t)oc * p;
                double sum = 0.0;
#pragma omp simd reduction(+ : sum)
                for (size_t j = j0; j < j1; j++) sum += r[j];
                d[oc] += (float)sum;
            }
        }
    }

    int need_dw = 0;
    for (int k = 0; dw && k < g->n; k++) need_dw |= dw[k] != NULL;
    if (need_dw) {
        im2col(col, in, s);
        /* Neighbouring groups that share a destination are one product. */
        for (int k = 0; k < g->n;) {
            float *d = dw[k];
            int s0 = g->start[k], s1 = g->start[k + 1];
            for (k++; k < g->n && dw[k] == d; k++) s1 = g->start[k + 1];
            if (!d || s1 <= s0) continue;
            size_t j0 = (size_t)s0 * ohw;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->oc, ckk,
                        (s1 - s0) * ohw, 1.0f, t + j0, (int)p, col + j0, (int)p,
                        1.0f, d, ckk);
        }
    }

    if (din) {
        /* dcol (CKK, P) = wᵀ·t, into col: dw is done with it. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, (int)p, s->oc,
                    1.0f, w, ckk, t, (int)p, 0.0f, col, (int)p);
        col2im_add(din, col, s);
    }
}
