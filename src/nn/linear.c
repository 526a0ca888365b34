/* Fully connected layer: out = in·wᵀ + b, every product one cblas_sgemm
 * (row-major). The weight gradient is split by sample group (ALGORITHM.md
 * §2.1): group k's rows give dw[k] += dout_kᵀ·in_k. */
#include "nn/layers.h"

#include <cblas.h>

/* in (N, IN), w (OUT, IN), b (OUT) or NULL → out (N, OUT). */
void nn_linear_forward(float *out, const float *in, const float *w, const float *b,
                       int n, int in_f, int out_f)
{
    if (n <= 0 || out_f <= 0) return;
    float beta = 0.0f;
    if (b) {
        /* Seed every row with the bias so one sgemm (beta = 1) adds the product. */
        for (int i = 0; i < n; i++) {
            float *o = out + (size_t)i * out_f;
            for (int j = 0; j < out_f; j++) o[j] = b[j];
        }
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out_f, in_f,
                1.0f, in, in_f, w, in_f, beta, out, out_f);
}

/* dout (N, OUT), in (N, IN), w (OUT, IN); din (N, IN) or NULL;
 * dw[k] (OUT, IN), db[k] (OUT), each per group, NULL skips. */
void nn_linear_backward(float *din, float *const dw[], float *const db[],
                        const float *dout, const float *in, const float *w,
                        const lethe_groups *g, int in_f, int out_f)
{
    int n = g->start[g->n];
    if (n <= 0 || out_f <= 0) return;
    if (din && in_f > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in_f, out_f,
                    1.0f, dout, out_f, w, in_f, 1.0f, din, in_f);

    /* Neighbouring groups that share a destination are one product: the
     * common one-group and summed two-group cases cost a single sgemm. */
    if (dw && in_f > 0) {
        for (int k = 0; k < g->n;) {
            float *d = dw[k];
            int s = g->start[k], e = g->start[k + 1];
            for (k++; k < g->n && dw[k] == d; k++) e = g->start[k + 1];
            if (!d || e <= s) continue;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_f, in_f, e - s,
                        1.0f, dout + (size_t)s * out_f, out_f, in + (size_t)s * in_f, in_f,
                        1.0f, d, in_f);
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
