/* Fully connected layer: out = in·wᵀ + b, every product a cblas_sgemm
 * (row-major). The weight gradient is split by sample group (ALGORITHM.md
 * §2.1): group k's rows give dw[k] += dout_kᵀ·in_k.
 *
 * Threading follows conv2d.c: OpenMP threads each call a single-threaded
 * OpenBLAS on their own slice (rows of the batch forward, columns of IN
 * backward, so no two threads write the same float); when a pthread
 * OpenBLAS has threads of its own, one OpenMP thread leaves the
 * parallelism to it. A fused ReLU (graph fusion, model.c) is applied to the
 * thread's rows while they are in cache. */
#include "nn/layers.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many multiply-adds a product is not worth splitting. */
#define LINEAR_PAR_MIN (1 << 18)

static int outer_threads(double work)
{
    if (work < LINEAR_PAR_MIN) return 1;
    return nn_outer_threads();
}

/* Slice [*a, *b) of `n` items for thread `id` of `nt`. */
static void slice(int n, int id, int nt, int *a, int *b)
{
    *a = (int)((long)n * id / nt);
    *b = (int)((long)n * (id + 1) / nt);
}

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

/* in (N, IN), w (OUT, IN), b (OUT) or NULL → out (N, OUT), then
 * out = max(out, 0) if relu. */
void nn_linear_forward_ex(float *out, const float *in, const float *w, const float *b,
                          int n, int in_f, int out_f, int relu)
{
    if (n <= 0 || out_f <= 0) return;
    const int nt = outer_threads((double)n * in_f * out_f);
    (void)nt; /* used by OpenMP only */
#pragma omp parallel num_threads(nt)
    {
        int r0, r1;
        slice(n, thread_id(), team_size(), &r0, &r1);
        if (r1 > r0) {
            float beta = 0.0f;
            if (b) {
                /* Seed the rows with the bias; the sgemm (beta = 1) adds the product. */
                for (int i = r0; i < r1; i++) {
                    float *o = out + (size_t)i * out_f;
                    for (int j = 0; j < out_f; j++) o[j] = b[j];
                }
                beta = 1.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, out_f, in_f,
                        1.0f, in + (size_t)r0 * in_f, in_f, w, in_f, beta,
                        out + (size_t)r0 * out_f, out_f);
            if (relu) {
                float *o = out + (size_t)r0 * out_f;
                const size_t len = (size_t)(r1 - r0) * out_f;
#pragma omp simd
                for (size_t j = 0; j < len; j++) o[j] = o[j] > 0.0f ? o[j] : 0.0f;
            }
        }
    }
}

void nn_linear_forward(float *out, const float *in, const float *w, const float *b,
                       int n, int in_f, int out_f)
{
    nn_linear_forward_ex(out, in, w, b, n, in_f, out_f, 0);
}

/* dout (N, OUT), in (N, IN), w (OUT, IN); din (N, IN) or NULL, += when
 * din_add, else overwritten; dw[k] (OUT, IN), db[k] (OUT), each per group
 * (+=), NULL skips. */
void nn_linear_backward_ex(float *din, int din_add, float *const dw[], float *const db[],
                           const float *dout, const float *in, const float *w,
                           const lethe_groups *g, int in_f, int out_f)
{
    const int n = g->start[g->n];
    if (n <= 0 || out_f <= 0) return;
    if (in_f > 0) {
        const int nt = outer_threads(2.0 * n * in_f * out_f);
        (void)nt;
#pragma omp parallel num_threads(nt)
        {
            /* This thread's columns [c0, c1) of IN, in din and in every dw. */
            int c0, c1;
            slice(in_f, thread_id(), team_size(), &c0, &c1);
            const int cw = c1 - c0;
            if (cw > 0 && din)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, cw, out_f,
                            1.0f, dout, out_f, w + c0, in_f, din_add ? 1.0f : 0.0f,
                            din + c0, in_f);
            /* Neighbouring groups that share a destination are one product:
             * the one-group and summed two-group cases cost one sgemm. */
            for (int k = 0; cw > 0 && dw && k < g->n;) {
                float *d = dw[k];
                int s = g->start[k], e = g->start[k + 1];
                for (k++; k < g->n && dw[k] == d; k++) e = g->start[k + 1];
                if (!d || e <= s) continue;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_f, cw, e - s,
                            1.0f, dout + (size_t)s * out_f, out_f,
                            in + (size_t)s * in_f + c0, in_f, 1.0f, d + c0, in_f);
            }
        }
    }
    if (db) {
        for (int k = 0; k < g->n; k++) {
            float *d = db[k];
            if (!d) continue;
            for (int i = g->start[k]; i < g->start[k + 1]; i++) {
                const float *r = dout + (size_t)i * out_f;
                for (int j = 0; j < out_f; j++) d[j] += r[j];
            }
        }
    }
}

void nn_linear_backward(float *din, float *const dw[], float *const db[],
                        const float *dout, const float *in, const float *w,
                        const lethe_groups *g, int in_f, int out_f)
{
    nn_linear_backward_ex(din, 1, dw, db, dout, in, w, g, in_f, out_f);
}
