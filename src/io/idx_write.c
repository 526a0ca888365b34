/*
 * IDX output of generated images and their labels (the MNIST format, so
 * that Lethe's own reader, src/data/idx.c, and every MNIST tool read them):
 * big-endian u32 magic 0x00000803 (images; n, rows, cols follow) or
 * 0x00000801 (labels; n follows), then the bytes. Floats are mapped from
 * [lo, hi] to 0..255 by lethe_pixels_to_bytes. A path ending in ".gz" is
 * gzip-compressed in memory (zlib). The whole file image then goes through
 * lethe_write_file_atomic, so a crash never leaves half a file.
 */
#include "lethe.h"
#include "core/fail.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDXW_MAGIC_IMAGES 0x00000803u
#define IDXW_MAGIC_LABELS 0x00000801u
#define IDXW_MAX_N        10000000      /* the reader's limits */
#define IDXW_MAX_SIDE     4096
#define IDXW_MAX_BYTES    ((uint64_t)INT32_MAX)

void lethe_pixels_to_bytes(uint8_t *out, const float *x, size_t n, float lo, float hi)
{
    const float scale = 255.0f / (hi - lo);
    for (size_t i = 0; i < n; i++) {
        float v = (x[i] - lo) * scale;
        /* !(v > 0) also sends NaN to 0. */
        out[i] = !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (uint8_t)lrintf(v);
    }
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int ends_with_gz(const char *path)
{
    size_t n = strlen(path);
    return n >= 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* Write buf (len bytes) to path atomically, gzip-compressed first if the
 * name ends in ".gz". */
static lethe_status write_maybe_gz(const char *path, const uint8_t *buf, size_t len)
{
    if (!ends_with_gz(path)) return lethe_write_file_atomic(path, buf, len);
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer instead of zlib's. */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return lethe_fail(LETHE_ERR_NOMEM, "%s: cannot start zlib", path);
    uLong cap = deflateBound(&z, (uLong)len) + 32;   /* + gzip header/trailer slack */
    uint8_t *gz = malloc(cap);
    if (!gz) {
        deflateEnd(&z);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: cannot allocate %lu bytes", path, (unsigned long)cap);
    }
    z.next_in = (Bytef *)(uintptr_t)buf;   /* zlib does not write through next_in */
    z.avail_in = (uInt)len;                /* len ≤ INT32_MAX + 16, checked by callers */
    z.next_out = gz;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    size_t out_len = (size_t)z.total_out;
    deflateEnd(&z);
    lethe_status st;
    if (r != Z_STREAM_END)
        st = lethe_fail(LETHE_ERR_IO, "%s: gzip compression failed (zlib %d)", path, r);
    else
        st = lethe_write_file_atomic(path, gz, out_len);
    free(gz);
    return st;
}

lethe_status lethe_idx_write_images_float(const char *path, const float *img, int n,
                                          int h, int w, float lo, float hi)
{
    if (!path) return lethe_fail(LETHE_ERR_ARG, "idx write: NULL path");
    if (n < 0 || n > IDXW_MAX_N || h < 1 || h > IDXW_MAX_SIDE || w < 1 || w > IDXW_MAX_SIDE ||
        (n > 0 && !img))
        return lethe_fail(LETHE_ERR_ARG, "%s: cannot write %d images of %dx%d", path, n, h, w);
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi))
        return lethe_fail(LETHE_ERR_ARG, "%s: value range [%g, %g] is empty", path, (double)lo,
                          (double)hi);
    uint64_t px = (uint64_t)n * (uint64_t)h * (uint64_t)w;
    if (px > IDXW_MAX_BYTES)
        return lethe_fail(LETHE_ERR_ARG, "%s: %llu pixels exceed the IDX limit", path,
                          (unsigned long long)px);
    uint8_t *buf = malloc(16 + (size_t)px);      /* header (magic, n, h, w), pixels */
    if (!buf) return lethe_fail(LETHE_ERR_NOMEM, "%s: cannot allocate %llu bytes", path,
                                (unsigned long long)px + 16);
    put_be32(buf, IDXW_MAGIC_IMAGES);
    put_be32(buf + 4, (uint32_t)n);
    put_be32(buf + 8, (uint32_t)h);
    put_be32(buf + 12, (uint32_t)w);
    lethe_pixels_to_bytes(buf + 16, img, (size_t)px, lo, hi);
    lethe_status st = write_maybe_gz(path, buf, 16 + (size_t)px);
    free(buf);
    return st;
}

lethe_status lethe_idx_write_labels(const char *path, const int32_t *y, int n)
{
    if (!path) return lethe_fail(LETHE_ERR_ARG, "idx write: NULL path");
    if (n < 0 || n > IDXW_MAX_N || (n > 0 && !y))
        return lethe_fail(LETHE_ERR_ARG, "%s: cannot write %d labels", path, n);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] > 255)
            return lethe_fail(LETHE_ERR_ARG, "%s: label %d = %d does not fit a byte", path, i,
                              (int)y[i]);
    uint8_t *buf = malloc(8 + (size_t)n);        /* header (magic, n), labels */
    if (!buf) return lethe_fail(LETHE_ERR_NOMEM, "%s: cannot allocate %d bytes", path, n + 8);
    put_be32(buf, IDXW_MAGIC_LABELS);
    put_be32(buf + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) buf[8 + i] = (uint8_t)y[i];
    lethe_status st = write_maybe_gz(path, buf, 8 + (size_t)n);
    free(buf);
    return st;
}
