/* The attention's masked softmax (seq.h, nn_attention_softmax): a
 * kernel-set file, so that vmath.h's e^x vectorises. The key mask is read
 * once per call, not once per score: keys past the last one kept are cut
 * off by the row's length (with the causal prefix j ≤ r), and only a mask
 * with holes before that is applied element-wise (as −inf, which e^x
 * turns into 0). Also the softmax's backward, vectorised likewise. */
#include "nn/seq.h"
#include "nn/vmath.h"

#include <math.h>
#include <string.h>

void nn_attention_softmax(float *p, const uint8_t *keep, int tm, int causal, int t)
{
    const int shift = t - tm;
    /* kend: keys [0, kend) hold every key kept; holes: one masked below. */
    int kend = t, holes = 0;
    if (keep) {
        kend = shift;
        for (int j = 0; j < tm; j++)
            if (keep[j]) kend = shift + j + 1;
        for (int j = shift; j < kend; j++) holes |= !keep[j - shift];
    }
    for (int r = 0; r < t; r++) {
        float *row = p + (long)r * t;
        const int len = causal && r + 1 < kend ? r + 1 : kend;
        if (holes)
            for (int j = shift; j < len; j++) row[j] = keep[j - shift] ? row[j] : -INFINITY;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < len; j++) mx = row[j] > mx ? row[j] : mx;
        if (len <= 0 || mx == -INFINITY) {   /* no key left: 0 */
            memset(row, 0, (size_t)t * sizeof *row);
            continue;
        }
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < len; j++) {
            row[j] = nn_expf_v(row[j] - mx);
            s += row[j];
        }
        const float inv = (float)(1.0 / s);
#pragma omp simd
        for (int j = 0; j < len; j++) row[j] *= inv;
        if (len < t) memset(row + len, 0, (size_t)(t - len) * sizeof *row);
    }
}

void nn_attention_softmax_backward(float *dp, const float *p, float scale, int t)
{
    for (int r = 0; r < t; r++) {
        const float *pr = p + (long)r * t;
        float *dr = dp + (long)r * t;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < t; j++) s += (double)dr[j] * pr[j];
        const float sf = (float)s;
#pragma omp simd
        for (int j = 0; j < t; j++) dr[j] = pr[j] * (dr[j] - sf) * scale;
    }
}
