/*
 * Sequence kernels (seq.h): layer norm, multi-head attention and the
 * per-sample matmul on cblas_sgemm, and the token reshapes (GELU and the
 * attention's softmax are kernel-set files: gelu.c, softmax.c). Threads as in
 * linear.c: OpenMP over samples (attention: samples × heads), each thread
 * calling a single-threaded OpenBLAS, unless a pthread OpenBLAS has
 * threads of its own (nn_outer_threads).
 */
#include "nn/seq.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many multiply-adds a loop is not worth threading. */
#define SEQ_PAR_MIN (1 << 16)
/* The layer norm's row loops run on one thread below this much work, in
 * units of about 0.8 ns of one thread (elements × 4 for a forward, 6
 * backward): about 1.5 ms (GELU's loops likewise, gelu.c). A parallel
 * region is a fork and a join, cheap on an idle machine but on a loaded
 * one a wait for the sibling thread to be scheduled (perf: most of
 * 2-thread text training at batch 16 spun in OpenMP barriers).
 * text-transformer at batch 16 then runs its layer norms (0.2 ms) on one
 * thread, at batch 128 on all. Each row's arithmetic is the same on any
 * thread, so the threshold moves no bit. */
#define SEQ_ROW_PAR_MIN (1 << 21)

static int threads_for(double work) { return work < SEQ_PAR_MIN ? 1 : nn_outer_threads(); }

static int row_threads_for(double work)
{
    return work < SEQ_ROW_PAR_MIN ? 1 : nn_outer_threads();
}

/* ------------------------------------------------------------ layer norm */

void nn_layernorm_forward(float *out, float *mean, float *istd, const float *in,
                          const float *gamma, const float *beta, int n, int t, int d, float eps)
{
    const long rows = (long)n * t;
    const int nt = row_threads_for((double)rows * d * 4);
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < rows; r++) {
        const float *x = in + r * d;
        float *y = out + r * d;
        double s = 0.0;
        for (int j = 0; j < d; j++) s += x[j];
        const float mu = (float)(s / d);
        double v = 0.0;
        for (int j = 0; j < d; j++) v += (double)(x[j] - mu) * (x[j] - mu);
        const float is = 1.0f / sqrtf((float)(v / d) + eps);
        mean[r] = mu;
        istd[r] = is;
        for (int j = 0; j < d; j++) y[j] = gamma[j] * ((x[j] - mu) * is) + beta[j];
    }
}

void nn_layernorm_backward(float *din, int din_add, float *const dgamma[], float *const dbeta[],
                           const float *dout, const float *in, const float *mean,
                           const float *istd, const float *gamma, const lethe_groups *g, int t,
                           int d)
{
    /* Parameter gradients per group, rows in order (one thread: the sums
     * are small beside the products around them). */
    for (int k = 0; k < g->n; k++) {
        float *dg = dgamma[k], *db = dbeta[k];
        if (!dg && !db) continue;
        for (long r = (long)g->start[k] * t; r < (long)g->start[k + 1] * t; r++) {
            const float *x = in + r * d, *dy = dout + r * d;
            for (int j = 0; j < d; j++) {
                if (dg) dg[j] += dy[j] * ((x[j] - mean[r]) * istd[r]);
                if (db) db[j] += dy[j];
            }
        }
    }
    if (!din) return;
    const long rows = (long)g->start[g->n] * t;
    const int nt = row_threads_for((double)rows * d * 6);
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < rows; r++) {
        const float *x = in + r * d, *dy = dout + r * d;
        float *dx = din + r * d;
        const float mu = mean[r], is = istd[r];
        double a = 0.0, b = 0.0;   /* mean(dy·γ), mean(dy·γ·xhat) */
        for (int j = 0; j < d; j++) {
            const double e = (double)dy[j] * gamma[j];
            a += e;
            b += e * ((x[j] - mu) * is);
        }
        const float ma = (float)(a / d), mb = (float)(b / d);
        for (int j = 0; j < d; j++) {
            const float v = is * (dy[j] * gamma[j] - ma - ((x[j] - mu) * is) * mb);
            dx[j] = din_add ? dx[j] + v : v;
        }
    }
}

/* ------------------------------------------------------------- attention */

size_t nn_attention_workspace(int t)
{
    int nt = nn_outer_threads();
    return (size_t)(nt < 1 ? 1 : nt) * (size_t)t * t;
}

void nn_attention_forward(float *out, float *p, const float *qkv, const uint8_t *mask, int tm,
                          int causal, int n, int t, int heads, int d)
{
    const int dh = d / heads, ld = 3 * d;
    const float scale = 1.0f / sqrtf((float)dh);
    const int nt = threads_for((double)n * heads * t * t * dh * 2);
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long nh = 0; nh < (long)n * heads; nh++) {
        const int i = (int)(nh / heads), h = (int)(nh % heads);
        const float *q = qkv + (long)i * t * ld + h * dh, *k = q + d, *v = q + 2 * d;
        float *P = p + nh * t * t;
        /* S = scale · Q·Kᵀ (T, T) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, dh, scale, q, ld, k, ld,
                    0.0f, P, t);
        nn_attention_softmax(P, mask ? mask + (long)i * tm : NULL, tm, causal, t);
        /* O = P·V (T, dh) into the head's columns. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, dh, t, 1.0f, P, t, v, ld, 0.0f,
                    out + (long)i * t * d + h * dh, d);
    }
}

void nn_attention_backward(float *dqkv, int din_add, const float *dout, const float *p,
                           const float *qkv, int n, int t, int heads, int d, float *ws)
{
    const int dh = d / heads, ld = 3 * d;
    const float scale = 1.0f / sqrtf((float)dh);
    const float beta = din_add ? 1.0f : 0.0f;
    const int nt = threads_for((double)n * heads * t * t * dh * 4);
    (void)nt;
#pragma omp parallel num_threads(nt)
    {
        float *dP = ws + (size_t)nn_thread_id() * t * t;
#pragma omp for schedule(static)
        for (long nh = 0; nh < (long)n * heads; nh++) {
            const int i = (int)(nh / heads), h = (int)(nh % heads);
            const long base = (long)i * t * ld + h * dh;
            const float *q = qkv + base, *k = q + d, *v = q + 2 * d;
            float *dq = dqkv + base, *dk = dq + d, *dv = dq + 2 * d;
            const float *P = p + nh * t * t, *dO = dout + (long)i * t * d + h * dh;
            /* dV = Pᵀ·dO; dP = dO·Vᵀ */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, dh, t, 1.0f, P, t, dO, d,
                        beta, dv, ld);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, dh, 1.0f, dO, d, v, ld,
                        0.0f, dP, t);
            /* dS = P ⊙ (dP − Σ_j dP·P), scaled for the products below */
            nn_attention_softmax_backward(dP, P, scale, t);
            /* dQ = dS·K; dK = dSᵀ·Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, dh, t, 1.0f, dP, t, k, ld,
                        beta, dq, ld);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, dh, t, 1.0f, dP, t, q, ld,
                        beta, dk, ld);
        }
    }
}

/* ---------------------------------------------------------------- matmul */

void nn_matmul_forward(float *out, const float *a, const float *b, int n, int t, int k, int mm)
{
    const int nt = threads_for((double)n * t * k * mm);
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int i = 0; i < n; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, mm, k, 1.0f,
                    a + (long)i * t * k, k, b + (long)i * k * mm, mm, 0.0f,
                    out + (long)i * t * mm, mm);
}

void nn_matmul_backward(float *da, int da_add, float *db, int db_add, const float *dout,
                        const float *a, const float *b, int n, int t, int k, int mm)
{
    const int nt = threads_for((double)n * t * k * mm * 2);
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int i = 0; i < n; i++) {
        const float *dO = dout + (long)i * t * mm;
        if (da)   /* dA = dO·Bᵀ */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, k, mm, 1.0f, dO, mm,
                        b + (long)i * k * mm, mm, da_add ? 1.0f : 0.0f, da + (long)i * t * k, k);
        if (db)   /* dB = Aᵀ·dO */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, mm, t, 1.0f,
                        a + (long)i * t * k, k, dO, mm, db_add ? 1.0f : 0.0f,
                        db + (long)i * k * mm, mm);
    }
}

/* ---------------------------------------------------------------- tokens */

void nn_tokens_forward(float *out, const float *in, int n, int c, int hw)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                out[((long)i * hw + p) * c + ch] = in[((long)i * c + ch) * hw + p];
}

void nn_tokens_backward(float *din, int din_add, const float *dout, int n, int c, int hw)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) {
                const float v = dout[((long)i * hw + p) * c + ch];
                float *o = &din[((long)i * c + ch) * hw + p];
                *o = din_add ? *o + v : v;
            }
}

/* Tokens sample i keeps, and their count. */
static int kept(const uint8_t *mask, int tm, int shift, int i, int j)
{
    return !mask || j < shift || mask[(long)i * tm + j - shift] != 0;
}

void nn_token_mean_forward(float *out, const float *in, const uint8_t *mask, int tm, int n, int t,
                           int d)
{
    const int shift = t - tm;
    for (int i = 0; i < n; i++) {
        float *o = out + (long)i * d;
        memset(o, 0, (size_t)d * sizeof(float));
        int cnt = 0;
        for (int j = 0; j < t; j++) {
            if (!kept(mask, tm, shift, i, j)) continue;
            cnt++;
            const float *x = in + ((long)i * t + j) * d;
            for (int c = 0; c < d; c++) o[c] += x[c];
        }
        const float inv = cnt ? 1.0f / (float)cnt : 0.0f;
        for (int c = 0; c < d; c++) o[c] *= inv;
    }
}

void nn_token_mean_backward(float *din, int din_add, const float *dout, const uint8_t *mask,
                            int tm, int n, int t, int d)
{
    const int shift = t - tm;
    for (int i = 0; i < n; i++) {
        int cnt = 0;
        for (int j = 0; j < t; j++) cnt += kept(mask, tm, shift, i, j);
        const float inv = cnt ? 1.0f / (float)cnt : 0.0f;
        for (int j = 0; j < t; j++) {
            float *dx = din + ((long)i * t + j) * d;
            const float *dy = dout + (long)i * d;
            const int k = kept(mask, tm, shift, i, j);
            for (int c = 0; c < d; c++) {
                const float v = k ? dy[c] * inv : 0.0f;
                dx[c] = din_add ? dx[c] + v : v;
            }
        }
    }
}
