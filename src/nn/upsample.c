/* Nearest-neighbour ×2 upsampling (PyTorch's Upsample(scale_factor=2)):
 * out[y][x] = in[y/2][x/2]; backward sums each 2×2 block of dout. */
#include "nn/layers.h"

#define UP_PAR_MIN 65536

/* in (N, C, H, W) → out (N, C, 2H, 2W). */
void nn_upsample2_forward(float *out, const float *in, int n, int c, int h, int w)
{
    const int planes = n * c, ow = 2 * w;
#pragma omp parallel for schedule(static) if ((long)planes * h * w > UP_PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        const float *x = in + (size_t)pl * h * w;
        float *y = out + (size_t)pl * 4 * h * w;
        for (int r = 0; r < h; r++) {
            float *y0 = y + (size_t)(2 * r) * ow, *y1 = y0 + ow;
            const float *xr = x + (size_t)r * w;
            for (int j = 0; j < w; j++) y0[2 * j] = y0[2 * j + 1] = xr[j];
            for (int j = 0; j < ow; j++) y1[j] = y0[j];
        }
    }
}

/* dout (N, C, 2H, 2W) → din (N, C, H, W), += when din_add, else =. */
void nn_upsample2_backward(float *din, int din_add, const float *dout, int n, int c, int h,
                           int w)
{
    const int planes = n * c, ow = 2 * w;
#pragma omp parallel for schedule(static) if ((long)planes * h * w > UP_PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        float *dx = din + (size_t)pl * h * w;
        const float *dy = dout + (size_t)pl * 4 * h * w;
        for (int r = 0; r < h; r++) {
            const float *d0 = dy + (size_t)(2 * r) * ow, *d1 = d0 + ow;
            float *xr = dx + (size_t)r * w;
            for (int j = 0; j < w; j++) {
                const float s = (d0[2 * j] + d0[2 * j + 1]) + (d1[2 * j] + d1[2 * j + 1]);
                xr[j] = din_add ? xr[j] + s : s;
            }
        }
    }
}
