/* Channel concatenation (torch.cat(dim=1)): the U-Net's skip connections.
 * Per sample the two inputs are contiguous runs of the output. */
#include "nn/layers.h"

#include <string.h>

/* d (len) op= s, op being += when add, else =. */
static void put(float *d, int add, const float *s, size_t len)
{
    if (add) {
#pragma omp simd
        for (size_t j = 0; j < len; j++) d[j] += s[j];
    } else {
        memcpy(d, s, len * sizeof(float));
    }
}

/* a (N, CA, HW), b (N, CB, HW) → out (N, CA+CB, HW). */
void nn_concat_forward(float *out, const float *a, const float *b, int n, int ca, int cb,
                       int hw)
{
    const size_t la = (size_t)ca * hw, lb = (size_t)cb * hw;
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * (la + lb);
        memcpy(o, a + (size_t)i * la, la * sizeof(float));
        memcpy(o + la, b + (size_t)i * lb, lb * sizeof(float));
    }
}

/* dout (N, CA+CB, HW) → da (N, CA, HW), db (N, CB, HW), either NULL. */
void nn_concat_backward(float *da, int da_add, float *db, int db_add, const float *dout,
                        int n, int ca, int cb, int hw)
{
    const size_t la = (size_t)ca * hw, lb = (size_t)cb * hw;
    for (int i = 0; i < n; i++) {
        const float *d = dout + (size_t)i * (la + lb);
        if (da) put(da + (size_t)i * la, da_add, d, la);
        if (db) put(db + (size_t)i * lb, db_add, d + la, lb);
    }
}
