/* 2-D convolution (cross-correlation, like PyTorch) lowered onto
 * cblas_sgemm with im2col, a chunk of samples at a time:
 *     col (CKK, cc)              CKK = C·KH·KW, cc = m·OH·OW for m samples,
 *                                column i·OH·OW + j = output pixel j of sample i
 *     t   (OC, cc) = w (OC, CKK) · col
 *     out (N, OC, OH, OW) ← t scattered, plus the bias.
 * Backward gathers a chunk of dout into t's layout; then
 *     dw  (OC, CKK) += t · colᵀ      (per sample group, see below)
 *     dcol (CKK, cc) = wᵀ · t   → col2im adds it into din.
 *
 * Why chunks and not one im2col of the whole batch: col of a whole batch is
 * CKK/OC times larger than the output (75 MB for 16→16 channels, 32×32,
 * batch 128), so writing it and reading it back is memory-bound and costs
 * more than the product. A chunk of about 1 MiB stays in L2 between im2col
 * and sgemm. Chunks are split over OpenMP threads, one parallel region per
 * call, each thread with its own slot of the workspace.
 *
 * Threading: each thread calls cblas_sgemm itself, so OpenBLAS should run
 * single-threaded (openblas_set_num_threads(1)); a threaded pthread OpenBLAS
 * and libgomp's spinning workers fight over the cores (measured 2× slower on
 * 2 cores). If OpenBLAS has several threads, the kernels here use one
 * OpenMP thread and let OpenBLAS parallelise each product instead.
 *
 * Groups (ALGORITHM.md §2.1): groups are contiguous sample ranges; runs of
 * neighbouring groups with the same dw destination are processed one after
 * the other, chunks never straddle a run, so each run's dw is exact. Each
 * thread sums its chunks into a private partial dwᵀ, added to dw[k] in
 * thread order at the end of the run (deterministic for a thread count). */
#include "nn/layers.h"

#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CONV_SLOTS 16               /* most threads one conv call uses */
#define CONV_CHUNK_FLOATS (1 << 18) /* col + t of one chunk: 1 MiB */

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* OpenMP threads to use around sgemm calls: 1 when OpenBLAS is threaded. */
static int outer_threads(void)
{
#ifdef _OPENMP
    return openblas_get_num_threads() > 1 ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

void nn_conv_shape_set(nn_conv_shape *s, int n, int c, int h, int w, int oc,
                       int k, int stride, int pad)
{
    s->n = n; s->c = c; s->h = h; s->w = w; s->oc = oc;
    s->kh = k; s->kw = k; s->stride = stride; s->pad = pad;
    s->oh = stride > 0 ? (h + 2 * pad - k) / stride + 1 : 0;
    s->ow = stride > 0 ? (w + 2 * pad - k) / stride + 1 : 0;
}

/* Samples per chunk that fit CONV_CHUNK_FLOATS (at least 1, at most n). */
static int chunk_max(const nn_conv_shape *s)
{
    size_t per = ((size_t)s->c * s->kh * s->kw + (size_t)s->oc) * s->oh * s->ow;
    size_t nb = per ? CONV_CHUNK_FLOATS / per : 1;
    if (nb < 1) nb = 1;
    if (nb > (size_t)s->n) nb = (size_t)s->n;
    return (int)nb;
}

static int slots(const nn_conv_shape *s) { return s->n < CONV_SLOTS ? s->n : CONV_SLOTS; }

/* One slot: col (CKK, cmax) + t (OC, cmax) + partial dwᵀ (CKK, OC). */
static size_t slot_floats(const nn_conv_shape *s)
{
    size_t ckk = (size_t)s->c * s->kh * s->kw;
    size_t cmax = (size_t)chunk_max(s) * s->oh * s->ow;
    return (ckk + (size_t)s->oc) * cmax + (size_t)s->oc * ckk;
}

/* A pure function of the shape, so sizing and running always agree. */
size_t nn_conv2d_workspace(const nn_conv_shape *s)
{
    if (s->n <= 0 || s->oh <= 0 || s->ow <= 0) return 0;
    return (size_t)slots(s) * slot_floats(s);
}

/* How a range of `n` samples is cut: `threads` threads, `nb` samples per
 * chunk, `chunks` chunks (at least one per thread when there are enough). */
typedef struct { int threads, nb, chunks; } conv_plan;

static conv_plan plan(const nn_conv_shape *s, int n)
{
    conv_plan p;
    int t = outer_threads();
    if (t > slots(s)) t = slots(s);
    if (t > n) t = n;
    if (t < 1) t = 1;
    int nb = chunk_max(s), even = (n + t - 1) / t;
    if (nb > even) nb = even;
    p.threads = t;
    p.nb = nb;
    p.chunks = (n + nb - 1) / nb;
    return p;
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

/* in (m, C, H, W) → col (CKK, m·OH·OW); zero where the window hits padding. */
static void im2col(float *col, const float *in, const nn_conv_shape *s, int m)
{
    const int ohw = s->oh * s->ow;
    const size_t cc = (size_t)m * ohw;
    for (int c = 0; c < s->c; c++) {
        for (int ki = 0; ki < s->kh; ki++) {
            for (int kj = 0; kj < s->kw; kj++) {
                int off = kj - s->pad, x0, x1;
                valid_range(off, s->stride, s->w, s->ow, &x0, &x1);
                float *row = col + ((size_t)(c * s->kh + ki) * s->kw + kj) * cc;
                for (int n = 0; n < m; n++) {
                    const float *plane = in + ((size_t)n * s->c + c) * s->h * s->w;
                    float *dst = row + (size_t)n * ohw;
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

/* din (m, C, H, W) += col2im(dcol (CKK, m·OH·OW)). */
static void col2im_add(float *din, const float *dcol, const nn_conv_shape *s, int m)
{
    const int ohw = s->oh * s->ow;
    const size_t cc = (size_t)m * ohw;
    for (int c = 0; c < s->c; c++) {
        for (int ki = 0; ki < s->kh; ki++) {
            for (int kj = 0; kj < s->kw; kj++) {
                int off = kj - s->pad, x0, x1;
                valid_range(off, s->stride, s->w, s->ow, &x0, &x1);
                const float *row = dcol + ((size_t)(c * s->kh + ki) * s->kw + kj) * cc;
                for (int n = 0; n < m; n++) {
                    float *plane = din + ((size_t)n * s->c + c) * s->h * s->w;
                    const float *src = row + (size_t)n * ohw;
                    for (int oy = 0; oy < s->oh; oy++) {
                        int iy = oy * s->stride - s->pad + ki;
                        if (iy < 0 || iy >= s->h) continue;
                        const float *d = src + (size_t)oy * s->ow;
                        float *r = plane + (size_t)iy * s->w;
                        /* dcol and din never overlap: let the loop vectorise. */
                        if (s->stride == 1) {
#pragma omp simd
                            for (int ox = x0; ox < x1; ox++) r[ox + off] += d[ox];
                        } else {
                            for (int ox = x0; ox < x1; ox++) r[ox * s->stride + off] += d[ox];
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
    if (s->n <= 0 || s->oh <= 0 || s->ow <= 0 || s->oc <= 0) return;
    const int ohw = s->oh * s->ow, ckk = s->c * s->kh * s->kw;
    const size_t in_plane = (size_t)s->c * s->h * s->w, out_plane = (size_t)s->oc * ohw;
    const size_t cmax = (size_t)chunk_max(s) * ohw, slot = slot_floats(s);
    const conv_plan p = plan(s, s->n);
#pragma omp parallel num_threads(p.threads)
    {
        float *col = ws + (size_t)thread_id() * slot;   /* (CKK, cc) */
        float *t = col + (size_t)ckk * cmax;             /* (OC, cc) */
#pragma omp for schedule(static)
        for (int q = 0; q < p.chunks; q++) {
            const int a = q * p.nb, m = s->n - a < p.nb ? s->n - a : p.nb;
            const int cc = m * ohw;
            im2col(col, in + (size_t)a * in_plane, s, m);
            /* One sample: t's layout is the output's, so write it in place. */
            float *dst = m == 1 ? out + (size_t)a * out_plane : t;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, cc, ckk,
                        1.0f, w, ckk, col, cc, 0.0f, dst, cc);
            for (int i = 0; i < m; i++) {
                for (int oc = 0; oc < s->oc; oc++) {
                    float *o = out + (size_t)(a + i) * out_plane + (size_t)oc * ohw;
                    const float bias = b ? b[oc] : 0.0f;
                    if (m == 1) {
                        if (b)
                            for (int j = 0; j < ohw; j++) o[j] += bias;
                    } else {
                        const float *src = t + (size_t)oc * cc + (size_t)i * ohw;
                        for (int j = 0; j < ohw; j++) o[j] = src[j] + bias;
                    }
                }
            }
        }
    }
}

/* dout (N, OC, OH, OW), in (N, C, H, W), w (OC, C, KH, KW); din (N, C, H, W)
 * or NULL; dw[k] (OC, C, KH, KW) and db[k] (OC) per group, NULL skips. */
void nn_conv2d_backward(float *din, float *const dw[], float *const db[],
                        const float *dout, const float *in, const float *w,
                        const nn_conv_shape *s, const lethe_groups *g, float *ws)
{
    if (s->n <= 0 || s->oh <= 0 || s->ow <= 0 || s->oc <= 0) return;
    const int ohw = s->oh * s->ow, ckk = s->c * s->kh * s->kw;
    const size_t in_plane = (size_t)s->c * s->h * s->w, out_plane = (size_t)s->oc * ohw;
    const size_t cmax = (size_t)chunk_max(s) * ohw, slot = slot_floats(s);

    if (db) {
        /* Per channel, every group in order: aliased db[k] stay race-free. */
#pragma omp parallel for schedule(static) num_threads(outer_threads()) \
    if ((size_t)s->n * out_plane > 65536)
        for (int oc = 0; oc < s->oc; oc++) {
            for (int k = 0; k < g->n; k++) {
                if (!db[k]) continue;
                double sum = 0.0;
                for (int i = g->start[k]; i < g->start[k + 1]; i++) {
                    const float *r = dout + (size_t)i * out_plane + (size_t)oc * ohw;
#pragma omp simd reduction(+ : sum)
                    for (int j = 0; j < ohw; j++) sum += r[j];
                }
                db[k][oc] += (float)sum;
            }
        }
    }

    for (int k = 0; k < g->n;) {
        float *d = dw ? dw[k] : NULL;
        const int r0 = g->start[k];
        int r1 = g->start[k + 1];
        for (k++; k < g->n && (dw ? dw[k] : NULL) == d; k++) r1 = g->start[k + 1];
        if ((!d && !din) || r1 <= r0) continue;
        const conv_plan p = plan(s, r1 - r0);
#pragma omp parallel num_threads(p.threads)
        {
            const int nt = team_size();
            float *col = ws + (size_t)thread_id() * slot;   /* (CKK, cc), then dcol */
            float *t = col + (size_t)ckk * cmax;             /* (OC, cc) */
            float *part = t + (size_t)s->oc * cmax;          /* dwᵀ (CKK, OC) */
            if (d) memset(part, 0, sizeof(float) * (size_t)s->oc * ckk);
#pragma omp for schedule(static)
            for (int q = 0; q < p.chunks; q++) {
                const int a = r0 + q * p.nb, m = r1 - a < p.nb ? r1 - a : p.nb;
                const int cc = m * ohw;
                const float *tc = dout + (size_t)a * out_plane;   /* one sample: as is */
                if (m > 1) {
                    for (int oc = 0; oc < s->oc; oc++)
                        for (int i = 0; i < m; i++)
                            memcpy(t + (size_t)oc * cc + (size_t)i * ohw,
                                   dout + (size_t)(a + i) * out_plane + (size_t)oc * ohw,
                                   sizeof(float) * (size_t)ohw);
                    tc = t;
                }
                if (d) {
                    /* dwᵀ += col·tᵀ: OpenBLAS runs this shape ~20% faster than
                     * t·colᵀ when OC is small. */
                    im2col(col, in + (size_t)a * in_plane, s, m);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ckk, s->oc, cc,
                                1.0f, col, cc, tc, cc, 1.0f, part, s->oc);
                }
                if (din) {
                    /* dcol (CKK, cc) = wᵀ·t, into col: dw is done with it. */
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, cc, s->oc,
                                1.0f, w, ckk, tc, cc, 0.0f, col, cc);
                    col2im_add(din + (size_t)a * in_plane, col, s, m);
                }
            }
            if (d) {
                /* The implicit barrier above made every partial complete. */
                const float *base = ws + (size_t)ckk * cmax + (size_t)s->oc * cmax;
#pragma omp for schedule(static)
                for (int o = 0; o < s->oc; o++) {
                    for (int i = 0; i < ckk; i++) {
                        float sum = 0.0f;
                        for (int th = 0; th < nt; th++)
                            sum += base[(size_t)th * slot + (size_t)i * s->oc + o];
                        d[(size_t)o * ckk + i] += sum;
                    }
                }
            }
        }
    }
}
