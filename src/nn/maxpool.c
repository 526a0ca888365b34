/* Max pooling k×k, stride s, no padding. The argmax of each window is saved
 * (flat index within its channel plane) so backward is a scatter. */
#include "nn/layers.h"

/* in (N, C, H, W) → out (N, C, OH, OW), arg (N, C, OH, OW). */
void nn_maxpool_forward(float *out, int32_t *arg, const float *in,
                        int n, int c, int h, int w, int k, int s)
{
    if (k <= 0 || s <= 0 || h < k || w < k) return;
    const int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    const int planes = n * c;
#pragma omp parallel for schedule(static) if (planes * oh * ow > 16384)
    for (int pl = 0; pl < planes; pl++) {
        const float *x = in + (size_t)pl * h * w;
        float *o = out + (size_t)pl * oh * ow;
        int32_t *a = arg + (size_t)pl * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                int best = oy * s * w + ox * s;
                float m = x[best];
                for (int ki = 0; ki < k; ki++) {
                    const float *r = x + (size_t)(oy * s + ki) * w + ox * s;
                    for (int kj = 0; kj < k; kj++) {
                        /* Strict >: ties keep the first in scan order. */
                        if (r[kj] > m) {
                            m = r[kj];
                            best = (oy * s + ki) * w + ox * s + kj;
                        }
                    }
                }
                o[oy * ow + ox] = m;
                a[oy * ow + ox] = best;
            }
        }
    }
}

/* din (N, C, H, W) += dout (N, C, OH, OW) routed to the saved argmax. Planes
 * are independent; inside one, overlapping windows add up in order. */
void nn_maxpool_backward(float *din, const float *dout, const int32_t *arg,
                         int n, int c, int h, int w, int oh, int ow)
{
    const int planes = n * c;
#pragma omp parallel for schedule(static) if (planes * oh * ow > 16384)
    for (int pl = 0; pl < planes; pl++) {
        float *d = din + (size_t)pl * h * w;
        const float *g = dout + (size_t)pl * oh * ow;
        const int32_t *a = arg + (size_t)pl * oh * ow;
        for (int j = 0; j < oh * ow; j++) d[a[j]] += g[j];
    }
}
