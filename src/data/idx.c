/*
 * IDX files (the MNIST format): a big-endian u32 magic 0x000008DD (0x08 =
 * unsigned bytes, DD = number of dimensions), DD big-endian u32 sizes, then
 * the bytes in row-major order. Files may be gzip-compressed; zlib's gzread
 * detects the 0x1f 0x8b magic and reads raw files unchanged, so one path
 * serves both. Every size in the header is bounded before anything is
 * allocated, and the gzip trailer is read so that its CRC is checked.
 */
#include "lethe.h"
#include "core/fail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/formats.h"
#include "io/outpath.h"

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES_C 0x00000804u      /* images with a channel dimension */
#define IDX_MAX_CHANNELS 3u
#define IDX_MAX_N        10000000u          /* images or labels in one file */
#define IDX_MAX_SIDE     4096u              /* rows, cols */
#define IDX_MAX_BYTES    ((uint64_t)INT32_MAX) /* whole payload */

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Open through our own fd so that errno tells a missing file from others. */
static lethe_status idx_open(gzFile *out, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return lethe_fail(e == ENOENT ? LETHE_ERR_NOTFOUND : LETHE_ERR_IO,
                          "%s: cannot open: %s", path, strerror(e));
    }
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: cannot start zlib", path);
    }
    gzbuffer(f, 1u << 17); /* larger reads: the big files are tens of MB */
    *out = f;
    return LETHE_OK;
}

/* Read up to len bytes into buf; *got receives how many arrived before the
 * end of the data. A zlib error (bad deflate data, bad CRC) is an error;
 * running out of input is not (the caller compares *got with len). */
static lethe_status idx_read(gzFile f, const char *path, void *buf, size_t len,
                             size_t *got)
{
    size_t done = 0;
    while (done < len) {
        size_t left = len - done;
        unsigned chunk = left > (1u << 30) ? 1u << 30 : (unsigned)left;
        int r = gzread(f, (uint8_t *)buf + done, chunk);
        if (r <= 0) break;
        done += (size_t)r;
    }
    *got = done;
    int err;
    const char *msg = gzerror(f, &err);
    if (err == Z_ERRNO)
        return lethe_fail(LETHE_ERR_IO, "%s: read error: %s", path, strerror(errno));
    if (err != Z_OK && err != Z_BUF_ERROR) /* Z_BUF_ERROR: input ended early */
        return lethe_fail(LETHE_ERR_FORMAT, "%s: corrupt gzip data (%s)", path, msg);
    return LETHE_OK;
}

/* Read a whole IDX file of `ndim` dimensions with magic `magic` into a fresh
 * buffer (*out, dims[0]·…·dims[ndim−1] bytes). `what` names the file kind and
 * `unit` the payload in messages. magic 0 takes images of 3 or 4
 * dimensions (0x803, 0x804), *ndim_out saying which. */
static lethe_status idx_load_any(const char *path, uint32_t magic, int ndim,
                                 const char *what, const char *unit,
                                 uint8_t **out, uint32_t dims[4], int *ndim_out)
{
    gzFile f = NULL;
    uint8_t *data = NULL;
    uint8_t head[20];                       /* magic + up to 4 sizes */
    size_t head_len = 4 + 4 * (size_t)ndim, got;
    lethe_status st = idx_open(&f, path);
    if (st != LETHE_OK) return st;

    st = idx_read(f, path, head, 4, &got);
    if (st != LETHE_OK) goto done;
    if (got < 4) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: truncated: expected a %zu-byte IDX header, got %zu",
                        path, head_len, got);
        goto done;
    }
    uint32_t m = get_be32(head);
    if (!magic && (m == IDX_MAGIC_IMAGES || m == IDX_MAGIC_IMAGES_C)) {
        ndim = (int)(m & 0xff);
        head_len = 4 + 4 * (size_t)ndim;
    } else if (!magic) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: wrong magic 0x%08x (expected IDX %s 0x%08x, or "
                        "0x%08x with a channel dimension)", path, m, what, IDX_MAGIC_IMAGES,
                        IDX_MAGIC_IMAGES_C);
        goto done;
    } else if (m != magic) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: wrong magic 0x%08x (expected IDX %s 0x%08x)",
                        path, m, what, magic);
        goto done;
    }
    st = idx_read(f, path, head + 4, head_len - 4, &got);
    if (st != LETHE_OK) goto done;
    if (got < head_len - 4) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: truncated: expected a %zu-byte IDX header, got %zu",
                        path, head_len, got + 4);
        goto done;
    }

    /* Bound every size before trusting it with an allocation. */
    static const char *const dim_name[2][4] = {{"count", "rows", "cols", ""},
                                               {"count", "size 1", "size 2", "size 3"}};
    uint64_t total = 1;
    for (int d = 0; d < ndim; d++) {
        dims[d] = get_be32(head + 4 + 4 * d);
        uint32_t lim = d == 0 ? IDX_MAX_N : IDX_MAX_SIDE;
        if (dims[d] > lim || (d > 0 && dims[d] == 0)) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: %s %u in the header is out of range %u..%u",
                            path, dim_name[ndim == 4][d], dims[d], d > 0 ? 1u : 0u, lim);
            goto done;
        }
        total *= dims[d];                   /* ≤ 1e7·4096³ < 2^64 */
    }
    if (total > IDX_MAX_BYTES) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: header asks for %llu bytes of %s (limit %llu)",
                        path, (unsigned long long)total, unit,
                        (unsigned long long)IDX_MAX_BYTES);
        goto done;
    }

    data = malloc(total ? (size_t)total : 1);
    if (!data) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: cannot allocate %llu bytes", path,
                        (unsigned long long)total);
        goto done;
    }
    st = idx_read(f, path, data, (size_t)total, &got);
    if (st != LETHE_OK) goto done;
    if (got < total) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: truncated: expected %llu bytes of %s, got %zu",
                        path, (unsigned long long)total, unit, got);
        goto done;
    }
    /* One more byte: reaches the gzip trailer (CRC, length) and finds junk. */
    uint8_t extra;
    st = idx_read(f, path, &extra, 1, &got);
    if (st != LETHE_OK) goto done;
    if (got) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: unexpected data after %llu bytes of %s",
                        path, (unsigned long long)total, unit);
        goto done;
    }
    *out = data;
    data = NULL;
    if (ndim_out) *ndim_out = ndim;

done:
    free(data);
    gzclose(f);
    return st;
}

static lethe_status idx_load(const char *path, uint32_t magic, int ndim, const char *what,
                             const char *unit, uint8_t **out, uint32_t dims[4])
{
    return idx_load_any(path, magic, ndim, what, unit, out, dims, NULL);
}

lethe_status idx_read_images_any(const char *path, uint8_t **out, int *n, int *c, int *h,
                                 int *w)
{
    uint32_t dims[4];
    int ndim;
    uint8_t *px = NULL;
    lethe_status st = idx_load_any(path, 0, 3, "images", "pixels", &px, dims, &ndim);
    if (st != LETHE_OK) return st;
    *n = (int)dims[0];
    if (ndim == 3) {
        *c = 1, *h = (int)dims[1], *w = (int)dims[2];
        *out = px;
        return LETHE_OK;
    }
    /* (N, H, W, C), channels last as numpy keeps images, or (N, C, H, W):
     * the channel count is the last size, else the first after N. */
    int last = dims[3] <= IDX_MAX_CHANNELS;
    if (!last && dims[1] > IDX_MAX_CHANNELS) {
        free(px);
        return lethe_fail(LETHE_ERR_FORMAT, "%s: images of %u x %u x %u: no channel count (1 to "
                          "%u) as the last size (N, H, W, C) or the first after N (N, C, H, W)",
                          path, dims[1], dims[2], dims[3], IDX_MAX_CHANNELS);
    }
    if (!last) {
        *c = (int)dims[1], *h = (int)dims[2], *w = (int)dims[3];
        *out = px;
        return LETHE_OK;
    }
    *c = (int)dims[3], *h = (int)dims[1], *w = (int)dims[2];
    size_t hw = (size_t)*h * (size_t)*w, C = (size_t)*c;
    uint8_t *chw = malloc(dims[0] ? (size_t)dims[0] * hw * C : 1);   /* (N, C, H, W) */
    if (!chw) {
        free(px);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: cannot allocate %u images", path, dims[0]);
    }
    for (size_t i = 0; i < dims[0]; i++)
        for (size_t p = 0; p < hw; p++)
            for (size_t k = 0; k < C; k++)
                chw[(i * C + k) * hw + p] = px[(i * hw + p) * C + k];
    free(px);
    *out = chw;
    return LETHE_OK;
}

lethe_status lethe_idx_read_images(const char *path, uint8_t **out, int *n,
                                   int *rows, int *cols)
{
    uint32_t dims[4];
    lethe_status st = idx_load(path, IDX_MAGIC_IMAGES, 3, "images", "pixels", out, dims);
    if (st != LETHE_OK) return st;
    *n = (int)dims[0];
    *rows = (int)dims[1];
    *cols = (int)dims[2];
    return LETHE_OK;
}

lethe_status lethe_idx_read_labels(const char *path, uint8_t **out, int *n)
{
    uint32_t dims[4];
    lethe_status st = idx_load(path, IDX_MAGIC_LABELS, 1, "labels", "labels", out, dims);
    if (st != LETHE_OK) return st;
    *n = (int)dims[0];
    return LETHE_OK;
}

/* Uncompressed, through io_out_write: a regular file is written to
 * PATH.tmp.PID, synced, then renamed over PATH, so a crash leaves either
 * the old file or the whole new one; a device or a FIFO is written in
 * place. */
lethe_status lethe_idx_write_images(const char *path, const uint8_t *px,
                                    int n, int rows, int cols)
{
    if (n < 0 || (uint32_t)n > IDX_MAX_N || rows < 1 || (uint32_t)rows > IDX_MAX_SIDE ||
        cols < 1 || (uint32_t)cols > IDX_MAX_SIDE || (n > 0 && !px))
        return lethe_fail(LETHE_ERR_ARG, "%s: cannot write %d images of %dx%d", path, n,
                          rows, cols);
    uint64_t total = (uint64_t)n * (uint64_t)rows * (uint64_t)cols;
    if (total > IDX_MAX_BYTES)
        return lethe_fail(LETHE_ERR_ARG, "%s: %llu bytes of pixels exceed the IDX limit",
                          path, (unsigned long long)total);
    uint8_t head[16]; /* magic, n, rows, cols */
    put_be32(head, IDX_MAGIC_IMAGES);
    put_be32(head + 4, (uint32_t)n);
    put_be32(head + 8, (uint32_t)rows);
    put_be32(head + 12, (uint32_t)cols);
    io_piece pc[2] = {{head, sizeof head}, {px, (size_t)total}};
    return io_out_write(path, pc, 2);
}
