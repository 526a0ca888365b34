/*
 * Random crop with zero padding and horizontal flip, or the flip alone
 * (augment.h).
 *
 * The draws are taken one image after the other from the caller's rng, a
 * chunk of images at a time into a small array on the stack, and the
 * chunk's pixels are then written in parallel: the result depends on the
 * rng's state only, and nothing is allocated (the training step calls
 * this on every batch).
 */
#include "data/augment.h"

#define AUG_CHUNK 256   /* images whose draws are held at once */

aug_draw aug_draw_next(lethe_rng *rng)
{
    aug_draw d;
    d.dy = (int)lethe_rng_below(rng, 2 * AUG_PAD + 1);
    d.dx = (int)lethe_rng_below(rng, 2 * AUG_PAD + 1);
    d.flip = (int)lethe_rng_below(rng, 2);
    return d;
}

void aug_dataset_batch(const lethe_dataset *ds, const int32_t *idx, int n, float *x,
                       int32_t *y, lethe_rng *rng)
{
    aug_dataset_batch_ex(ds, idx, n, x, y, rng, 1);
}

void aug_dataset_batch_ex(const lethe_dataset *ds, const int32_t *idx, int n, float *x,
                          int32_t *y, lethe_rng *rng, int crop)
{
    const int C = ds->c, H = ds->h, W = ds->w;
    const size_t hw = (size_t)H * W, chw = (size_t)C * hw;
    /* The normalised value of each byte and channel (C ≤ 3), as
     * lethe_dataset_batch makes it. */
    float lut[3][256];
    for (int c = 0; c < C; c++)
        for (int p = 0; p < 256; p++)
            lut[c][p] = ((float)p / 255.0f - ds->mean[c]) / ds->std[c];

    aug_draw draw[AUG_CHUNK];
    for (int i0 = 0; i0 < n; i0 += AUG_CHUNK) {
        int m = n - i0 < AUG_CHUNK ? n - i0 : AUG_CHUNK;
        for (int k = 0; k < m; k++) {
            draw[k] = aug_draw_next(rng);
            if (!crop) draw[k].dy = draw[k].dx = AUG_PAD;
        }
#pragma omp parallel for schedule(static) if ((size_t)m * chw > 65536)
        for (int k = 0; k < m; k++) {
            const int i = i0 + k;
            const aug_draw d = draw[k];
            const uint8_t *src = ds->pixels + (size_t)idx[i] * chw;   /* (C, H, W) */
            float *dst = x + (size_t)i * chw;                         /* (C, H, W) */
            for (int c = 0; c < C; c++) {
                const float *t = lut[c];
                const uint8_t *plane = src + (size_t)c * hw;
                for (int r = 0; r < H; r++) {
                    const int sr = r + d.dy - AUG_PAD;              /* source row */
                    float *out = dst + (size_t)c * hw + (size_t)r * W;
                    for (int q = 0; q < W; q++) {
                        const int sq = (d.flip ? W - 1 - q : q) + d.dx - AUG_PAD;
                        const int in = sr >= 0 && sr < H && sq >= 0 && sq < W;
                        out[q] = t[in ? plane[(size_t)sr * W + sq] : 0];
                    }
                }
            }
            y[i] = ds->labels[idx[i]];
        }
    }
}
