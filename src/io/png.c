/*
 * A grid of grayscale images as one 8-bit PNG (PROTOCOL.md "Generation":
 * a picture of samples per class). libpng's simplified API encodes into
 * memory (no setjmp/longjmp error handling to get wrong); the encoded file
 * then goes through lethe_write_file_atomic (temporary, fsync, rename), so
 * a failed write never leaves a half-written PNG under the final name.
 */
#include "lethe.h"
#include "core/fail.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#define GRID_GAP   2        /* pixels between tiles */
#define GRID_BG    255      /* gaps and empty tiles: white */
#define GRID_MAX   65535    /* grid side in pixels */

lethe_status lethe_png_write_grid(const char *path, const float *img, int n, int h,
                                  int w, int cols, float lo, float hi)
{
    if (!path) return lethe_fail(LETHE_ERR_ARG, "png: NULL path");
    if (!img || n < 1 || h < 1 || w < 1 || cols < 1)
        return lethe_fail(LETHE_ERR_ARG, "%s: cannot draw %d images of %dx%d in %d columns",
                          path, n, h, w, cols);
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi))
        return lethe_fail(LETHE_ERR_ARG, "%s: value range [%g, %g] is empty", path, (double)lo,
                          (double)hi);
    if (cols > n) cols = n;
    const int rows = (n + cols - 1) / cols;
    const long gw = (long)cols * w + (long)(cols - 1) * GRID_GAP;
    const long gh = (long)rows * h + (long)(rows - 1) * GRID_GAP;
    if (gw > GRID_MAX || gh > GRID_MAX)
        return lethe_fail(LETHE_ERR_ARG, "%s: a %ldx%ld grid is larger than %d pixels a side",
                          path, gw, gh, GRID_MAX);

    const size_t W = (size_t)gw, H = (size_t)gh, hw = (size_t)h * (size_t)w;
    uint8_t *pix = malloc(W * H);       /* the grid (H, W) */
    if (!pix) return lethe_fail(LETHE_ERR_NOMEM, "%s: cannot allocate a %ldx%ld grid", path, gw, gh);
    memset(pix, GRID_BG, W * H);
    for (int k = 0; k < n; k++) {
        size_t y0 = (size_t)(k / cols) * (size_t)(h + GRID_GAP);
        size_t x0 = (size_t)(k % cols) * (size_t)(w + GRID_GAP);
        for (int r = 0; r < h; r++)
            lethe_pixels_to_bytes(pix + (y0 + (size_t)r) * W + x0,
                                  img + (size_t)k * hw + (size_t)r * (size_t)w, (size_t)w, lo, hi);
    }

    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)W;
    im.height = (png_uint_32)H;
    im.format = PNG_FORMAT_GRAY;
    png_alloc_size_t len = 0;
    uint8_t *buf = NULL;
    lethe_status st = LETHE_OK;
    /* First call sizes the file, the second encodes it. */
    if (!png_image_write_to_memory(&im, NULL, &len, 0, pix, (png_int_32)W, NULL)) {
        st = lethe_fail(LETHE_ERR_IO, "%s: PNG encoding failed: %s", path, im.message);
        goto done;
    }
    buf = malloc(len ? len : 1);
    if (!buf) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, (size_t)len);
        goto done;
    }
    if (!png_image_write_to_memory(&im, buf, &len, 0, pix, (png_int_32)W, NULL)) {
        st = lethe_fail(LETHE_ERR_IO, "%s: PNG encoding failed: %s", path, im.message);
        goto done;
    }
    st = lethe_write_file_atomic(path, buf, (size_t)len);
done:
    png_image_free(&im);
    free(buf);
    free(pix);
    return st;
}
