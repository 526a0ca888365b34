/*
 * CIFAR-10's PNG batches to the official binary layout (cifar_png.h).
 *
 * The PNG is read with libpng's low-level API and no transformation: the
 * simplified API would apply a gAMA chunk's gamma to 8-bit data, and the
 * point of this reader is that the bytes come out exactly as stored. So
 * the header is checked as it is in the file (bit depth 8, colour type
 * RGB, the width and height asked for) before any pixel buffer is touched,
 * and libpng's errors come back through setjmp to one message naming the
 * file. libpng checks the chunks' CRCs and the zlib stream; a file that
 * ends early fails there.
 */
#include "data/cifar_png.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/fail.h"
#include "io/json.h"

/* Where libpng's fatal error lands: its text, then longjmp back. */
typedef struct {
    jmp_buf jump;
    char msg[160];
} png_fault;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_fault *f = png_get_error_ptr(png);
    snprintf(f->msg, sizeof f->msg, "%s", msg ? msg : "unknown error");
    longjmp(f->jump, 1);
}

/* The library never prints: warnings (an unknown chunk, …) are dropped. */
static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static const char *color_type_name(int t)
{
    switch (t) {
    case PNG_COLOR_TYPE_GRAY: return "greyscale";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "greyscale + alpha";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    default: return "unknown colour type";
    }
}

lethe_status cifar_png_read(const char *path, int n, uint8_t *rgb)
{
    if (n < 1 || n > CIFAR_BATCH_N)
        return lethe_fail(LETHE_ERR_ARG, "%s: %d images asked for (1..%d)", path, n,
                          CIFAR_BATCH_N);
    FILE *f = fopen(path, "rb");
    if (!f)
        return lethe_fail(errno == ENOENT ? LETHE_ERR_NOTFOUND : LETHE_ERR_IO,
                          "%s: cannot open: %s", path, strerror(errno));
    uint8_t sig[8];
    if (fread(sig, 1, sizeof sig, f) != sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        fclose(f);
        return lethe_fail(LETHE_ERR_FORMAT, "%s: not a PNG file (no PNG signature)", path);
    }

    png_fault fault;
    fault.msg[0] = 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &fault, on_png_error,
                                             on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* Set after setjmp and read after a longjmp: volatile. */
    png_bytep *volatile rows = NULL;
    lethe_status st = LETHE_OK;
    if (!png || !info) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: cannot set up the PNG reader", path);
        goto done;
    }
    if (setjmp(fault.jump)) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: damaged PNG: %s", path, fault.msg);
        goto done;
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, sizeof sig);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if (ctype != PNG_COLOR_TYPE_RGB || depth != 8) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: %d-bit %s pixels; expected 8-bit RGB", path,
                        depth, color_type_name(ctype));
        goto done;
    }
    if (w != CIFAR_PNG_WIDTH || h != (png_uint_32)n) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: %lux%lu pixels; expected %dx%d (one 32x32 "
                        "image a row)", path, (unsigned long)w, (unsigned long)h,
                        CIFAR_PNG_WIDTH, n);
        goto done;
    }
    /* Adam7 files come out whole rows too; nothing else is transformed. */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != CIFAR_PNG_ROW) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: %zu bytes a row; expected %d", path,
                        (size_t)png_get_rowbytes(png, info), CIFAR_PNG_ROW);
        goto done;
    }
    rows = malloc((size_t)n * sizeof *rows);
    if (!rows) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < n; i++) rows[i] = rgb + (size_t)i * CIFAR_PNG_ROW;
    png_read_image(png, rows);
    png_read_end(png, NULL);    /* the chunks after the pixels, and IEND */
done:
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    fclose(f);
    return st;
}

lethe_status cifar_labels_read(const char *path, int n, uint8_t *labels)
{
    /* A label is one digit and a comma; the bound leaves room for spaces. */
    long max_bytes = 64 + 16L * (n > 0 ? n : 0);
    cJSON *root = NULL;
    lethe_status st = io_json_read_value(path, max_bytes, 0, &root);
    if (st != LETHE_OK) return st;
    if (!cJSON_IsArray(root)) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: not a JSON array of labels", path);
        goto done;
    }
    int len = cJSON_GetArraySize(root);
    if (len != n) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: %d labels; expected %d", path, len, n);
        goto done;
    }
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, root) {
        double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        if (!(d >= 0 && d <= 9 && d == floor(d))) {
            char *text = cJSON_PrintUnformatted(v);
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: label %d is %.40s; expected an integer 0..9",
                            path, i, text ? text : "not a number");
            free(text);
            goto done;
        }
        labels[i++] = (uint8_t)d;
    }
done:
    cJSON_Delete(root);
    return st;
}

void cifar_records_pack(uint8_t *out, const uint8_t *rgb, const uint8_t *labels, int n)
{
    for (int i = 0; i < n; i++) {
        const uint8_t *px = rgb + (size_t)i * CIFAR_PNG_ROW;   /* (1024, 3) */
        uint8_t *rec = out + (size_t)i * CIFAR_BIN_RECORD;     /* label, (3, 1024) */
        rec[0] = labels[i];
        for (int j = 0; j < CIFAR_PNG_WIDTH; j++)
            for (int c = 0; c < 3; c++) rec[1 + c * CIFAR_PNG_WIDTH + j] = px[3 * j + c];
    }
}

lethe_status cifar_png_convert(const char *png, const uint8_t *labels, int n, const char *out)
{
    if (n < 1 || n > CIFAR_BATCH_N)
        return lethe_fail(LETHE_ERR_ARG, "%s: %d images asked for (1..%d)", png, n,
                          CIFAR_BATCH_N);
    for (int i = 0; i < n; i++)
        if (labels[i] > 9)
            return lethe_fail(LETHE_ERR_ARG, "%s: label %d of image %d is out of range 0..9",
                              out, labels[i], i);
    uint8_t *rgb = malloc((size_t)n * CIFAR_PNG_ROW);        /* (n, 1024, 3) */
    uint8_t *rec = malloc((size_t)n * CIFAR_BIN_RECORD);     /* (n, 3073) */
    lethe_status st = LETHE_OK;
    if (!rgb || !rec) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: cannot allocate %d images", png, n);
        goto done;
    }
    if ((st = cifar_png_read(png, n, rgb)) != LETHE_OK) goto done;
    cifar_records_pack(rec, rgb, labels, n);
    st = lethe_write_file_atomic(out, rec, (size_t)n * CIFAR_BIN_RECORD);
done:
    free(rgb);
    free(rec);
    return st;
}
