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
#include "core/dist.h"

#include <cblas.h>
#include <string.h>
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

static int team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* --deterministic (core_dist_plan_active): a row of an sgemm's result
 * takes other bits with its place in OpenBLAS's tile of rows (12 rows on
 * an AVX-512 EPYC: the same row at another offset, or in the product's
 * last, partial tile, differs in the last bits), so a sample's output
 * would depend on where in a rank's rows it falls. There, every product
 * runs in blocks of DET_ROWS rows (a multiple of any tile height) counted
 * from the first row of the sample's chunk (the plan's group), the last
 * block of a chunk padded with zeros in a scratch: each row's bits depend
 * on its chunk's values only, whatever the batch, the rank or the threads. */
#define DET_ROWS 48

/* Scratch for the padded blocks: `per` floats a thread, grown (once per
 * shape) by the calling thread before a parallel region. */
static void *det_buf;
static size_t det_cap;

static float *det_space(size_t floats)
{
    return core_dist_scratch(&det_buf, &det_cap, floats * sizeof(float));
}

/* The chunks the rows of a product of n rows are cut in: the plan's
 * groups when they cover the n rows, else one. */
static lethe_groups det_groups(int n)
{
    const core_dist_plan *pl = core_dist_plan_active();
    lethe_groups g;
    if (pl && pl->g.start[pl->g.n] == n) return pl->g;
    lethe_groups_one(&g, n);
    return g;
}

/* C (M, N, row-major, ldc) = A (M, K, lda)·op(B) + beta·C in blocks of
 * DET_ROWS rows; op(B) is B (K, N) or Bᵀ (B (N, K)) per tb. pad: DET_ROWS·
 * (K + N) floats for the last block. */
static void det_gemm(int tb, int m, int nn, int k, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc, float *pad)
{
    const CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
    int r = 0;
    for (; r + DET_ROWS <= m; r += DET_ROWS)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, opb, DET_ROWS, nn, k, 1.0f,
                    a + (size_t)r * lda, lda, b, ldb, beta, c + (size_t)r * ldc, ldc);
    if (r == m) return;
    float *pa = pad, *pc = pad + (size_t)DET_ROWS * k;
    memset(pad, 0, sizeof(float) * (size_t)DET_ROWS * ((size_t)k + nn));
    for (int i = r; i < m; i++) {
        memcpy(pa + (size_t)(i - r) * k, a + (size_t)i * lda, sizeof(float) * (size_t)k);
        if (beta != 0.0f)
            memcpy(pc + (size_t)(i - r) * nn, c + (size_t)i * ldc, sizeof(float) * (size_t)nn);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, opb, DET_ROWS, nn, k, 1.0f, pa, k, b, ldb, beta, pc,
                nn);
    for (int i = r; i < m; i++)
        memcpy(c + (size_t)i * ldc, pc + (size_t)(i - r) * nn, sizeof(float) * (size_t)nn);
}

/* nn_linear_forward_ex under --deterministic: the blocks of every chunk
 * (det_groups), shared out among the threads. */
static void linear_forward_det(float *out, const float *in, const float *w, const float *b,
                               int n, int in_f, int out_f, int relu, int nt)
{
    const lethe_groups g = det_groups(n);
    int first[LETHE_MAX_GROUPS + 1];    /* the chunks' first block */
    first[0] = 0;
    for (int k = 0; k < g.n; k++)
        first[k + 1] = first[k] + (g.start[k + 1] - g.start[k] + DET_ROWS - 1) / DET_ROWS;
    const size_t per = (size_t)DET_ROWS * ((size_t)in_f + out_f);
    float *pad = det_space(per * (size_t)nt);
    (void)nt;
#pragma omp parallel num_threads(nt)
    {
        int f0, f1;
        slice(first[g.n], nn_thread_id(), team_size(), &f0, &f1);
        for (int f = f0, k = 0; f < f1; f++) {
            while (f >= first[k + 1]) k++;
            const int r0 = g.start[k] + (f - first[k]) * DET_ROWS;
            const int r1 = r0 + DET_ROWS < g.start[k + 1] ? r0 + DET_ROWS : g.start[k + 1];
            float *o = out + (size_t)r0 * out_f;
            for (int i = 0; i < (r1 - r0) * out_f; i++) o[i] = b ? b[i % out_f] : 0.0f;
            if (pad)
                det_gemm(1, r1 - r0, out_f, in_f, in + (size_t)r0 * in_f, in_f, w, in_f, 1.0f, o,
                         out_f, pad + per * (size_t)nn_thread_id());
            else    /* no memory for the scratch: right, if not bitwise so */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, out_f, in_f, 1.0f,
                            in + (size_t)r0 * in_f, in_f, w, in_f, 1.0f, o, out_f);
            if (relu)
                for (int i = 0; i < (r1 - r0) * out_f; i++) o[i] = o[i] > 0.0f ? o[i] : 0.0f;
        }
    }
}

/* in (N, IN), w (OUT, IN), b (OUT) or NULL → out (N, OUT), then
 * out = max(out, 0) if relu. */
void nn_linear_forward_ex(float *out, const float *in, const float *w, const float *b,
                          int n, int in_f, int out_f, int relu)
{
    if (n <= 0 || out_f <= 0) return;
    const int nt = outer_threads((double)n * in_f * out_f);
    (void)nt; /* used by OpenMP only */
    if (core_dist_plan_active()) {
        linear_forward_det(out, in, w, b, n, in_f, out_f, relu, nt);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int r0, r1;
        slice(n, nn_thread_id(), team_size(), &r0, &r1);
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

/* The weight and input gradients of nn_linear_backward_ex under
 * --deterministic: IN's columns in fixed blocks of DET_ROWS (a column's
 * bits depend on its place in a tile too) shared out among the threads,
 * din's rows in blocks from each group's first (det_gemm), dw[k] per
 * group as the plain path (its product runs over the group's rows). */
static void linear_backward_det(float *din, int din_add, float *const dw[], const float *dout,
                                const float *in, const float *w, const lethe_groups *g,
                                int in_f, int out_f, int nt)
{
    const int blocks = (in_f + DET_ROWS - 1) / DET_ROWS;
    const size_t per = (size_t)DET_ROWS * ((size_t)out_f + DET_ROWS);
    float *pad = din ? det_space(per * (size_t)nt) : NULL;
    (void)nt;
#pragma omp parallel num_threads(nt)
    {
        int b0, b1;
        slice(blocks, nn_thread_id(), team_size(), &b0, &b1);
        for (int bk = b0; bk < b1; bk++) {
            const int c0 = bk * DET_ROWS, cw = in_f - c0 < DET_ROWS ? in_f - c0 : DET_ROWS;
            for (int k = 0; din && k < g->n; k++) {
                const int r0 = g->start[k], m = g->start[k + 1] - r0;
                float *o = din + (size_t)r0 * in_f + c0;
                if (pad)
                    det_gemm(0, m, cw, out_f, dout + (size_t)r0 * out_f, out_f, w + c0, in_f,
                             din_add ? 1.0f : 0.0f, o, in_f, pad + per * (size_t)nn_thread_id());
                else if (m > 0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, cw, out_f, 1.0f,
                                dout + (size_t)r0 * out_f, out_f, w + c0, in_f,
                                din_add ? 1.0f : 0.0f, o, in_f);
            }
            for (int k = 0; dw && k < g->n; k++) {
                const int r0 = g->start[k], m = g->start[k + 1] - r0;
                if (dw[k] && m > 0)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_f, cw, m, 1.0f,
                                dout + (size_t)r0 * out_f, out_f, in + (size_t)r0 * in_f + c0,
                                in_f, 1.0f, dw[k] + c0, in_f);
            }
        }
    }
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
    const int nt = in_f > 0 ? outer_threads(2.0 * n * in_f * out_f) : 1;
    (void)nt;
    if (in_f > 0 && core_dist_plan_active()) {
        linear_backward_det(din, din_add, dw, dout, in, w, g, in_f, out_f, nt);
    } else if (in_f > 0) {
#pragma omp parallel num_threads(nt)
        {
            /* This thread's columns [c0, c1) of IN, in din and in every dw. */
            int c0, c1;
            slice(in_f, nn_thread_id(), team_size(), &c0, &c1);
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
