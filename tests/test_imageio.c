/* Image output: the PNG grid (src/io/png.c, read back with libpng) and
 * IDX writers (src/io/idx_write.c, read back with Lethe's own reader). */
#include "test.h"

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lethe.h"

TEST(imageio_pixels_to_bytes)
{
    const float x[8] = {-1.0f, 0.0f, 0.25f, 0.5f, 1.0f, 2.0f, NAN, 0.998f};
    uint8_t b[8];
    lethe_pixels_to_bytes(b, x, 8, 0.0f, 1.0f);
    /* 0.25·255 = 63.75 → 64; 0.5·255 = 127.5 → 128 (nearest, ties to even);
     * outside [lo, hi] clamps; NaN → 0; 0.998·255 = 254.49 → 254. */
    const uint8_t want[8] = {0, 0, 64, 128, 255, 255, 0, 254};
    CHECK(memcmp(b, want, 8) == 0);
    const float y[3] = {-1.0f, 0.0f, 1.0f};
    lethe_pixels_to_bytes(b, y, 3, -1.0f, 1.0f);
    CHECK(b[0] == 0 && b[1] == 128 && b[2] == 255);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

TEST(imageio_png_grid_roundtrip)
{
    /* 5 tiles of 3×4 in 2 columns: 3 rows; W = 2·4 + 2 = 10, H = 3·3 + 2·2 = 13. */
    enum { N = 5, H = 3, W = 4, COLS = 2, GW = 10, GH = 13 };
    float img[N * H * W];
    for (int k = 0; k < N; k++)
        for (int i = 0; i < H * W; i++) img[k * H * W + i] = -1.0f + 0.1f * (float)(k * H * W + i) / 3.0f;
    img[0] = -5.0f;                 /* clamps to 0 */
    img[1] = 5.0f;                  /* clamps to 255 */
    img[2] = 0.0f;                  /* middle: 127.5 → 128 */
    const char *path = test_path("grid.png");
    CHECK_OK(lethe_png_write_grid(path, img, N, H, W, COLS, -1.0f, 1.0f));

    /* Raw header: signature, IHDR with width, height, depth 8, colour type 0 (gray). */
    uint8_t head[26];
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fread(head, 1, sizeof head, f) == sizeof head);
    fclose(f);
    CHECK(memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(head + 12, "IHDR", 4) == 0);
    CHECK(be32(head + 16) == GW && be32(head + 20) == GH);
    CHECK(head[24] == 8 && head[25] == 0);

    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    CHECK(png_image_begin_read_from_file(&im, path));
    CHECK(im.width == GW && im.height == GH);
    im.format = PNG_FORMAT_GRAY;
    uint8_t px[GW * GH];
    CHECK(png_image_finish_read(&im, NULL, px, GW, NULL));
    png_image_free(&im);

    /* Every tile pixel as lethe_pixels_to_bytes maps it; gaps and the
     * empty sixth tile white. */
    uint8_t want[N * H * W];
    lethe_pixels_to_bytes(want, img, N * H * W, -1.0f, 1.0f);
    CHECK(want[0] == 0 && want[1] == 255 && want[2] == 128);
    int tiles_ok = 1, bg_ok = 1;
    for (int r = 0; r < GH; r++)
        for (int c = 0; c < GW; c++) {
            int tr = r / (H + 2), rr = r % (H + 2), tc = c / (W + 2), cc = c % (W + 2);
            int k = tr * COLS + tc;
            if (rr < H && cc < W && k < N)
                tiles_ok &= px[r * GW + c] == want[k * H * W + rr * W + cc];
            else
                bg_ok &= px[r * GW + c] == 255;
        }
    CHECK(tiles_ok);
    CHECK(bg_ok);
    CHECK(px[0] == 0 && px[1] == 255 && px[2] == 128);
    /* Tile 3 (row 1, column 1) starts at (5, 6). */
    CHECK(px[5 * GW + 6] == want[3 * H * W]);
}

TEST(imageio_png_one_row_when_cols_exceed_n)
{
    float img[2 * 2 * 2] = {0, 1, 0, 1, 1, 0, 1, 0};
    const char *path = test_path("row.png");
    CHECK_OK(lethe_png_write_grid(path, img, 2, 2, 2, 8, 0.0f, 1.0f));
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    CHECK(png_image_begin_read_from_file(&im, path));
    CHECK(im.width == 2 * 2 + 2 && im.height == 2);   /* cols clipped to n */
    png_image_free(&im);
}

/* 1 if a file in test_tmpdir() starts with `prefix`. */
static int any_file_starting(const char *prefix)
{
    DIR *d = opendir(test_tmpdir());
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = 1;
    closedir(d);
    return found;
}

TEST(imageio_png_failed_write_leaves_nothing)
{
    float img[4] = {0, 0.5f, 1, 0.25f};
    /* A missing directory: the temporary cannot even be created. */
    const char *bad = test_path("no-such-dir/grid.png");
    CHECK(lethe_png_write_grid(bad, img, 1, 2, 2, 1, 0.0f, 1.0f) == LETHE_ERR_IO);
    CHECK(strstr(lethe_last_error(), "no-such-dir/grid.png") != NULL);
    CHECK(access(bad, F_OK) != 0);
    /* The final name is a directory: the temporary is written, the rename
     * fails, and the temporary is removed again. */
    const char *dir = test_path("isdir.png");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(lethe_png_write_grid(dir, img, 1, 2, 2, 1, 0.0f, 1.0f) == LETHE_ERR_IO);
    CHECK(strstr(lethe_last_error(), "isdir.png") != NULL);
    CHECK(!any_file_starting("isdir.png."));
    struct stat st;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    /* Bad arguments name the path too. */
    CHECK(lethe_png_write_grid(test_path("x.png"), img, 1, 2, 2, 1, 1.0f, 1.0f) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "x.png") != NULL);
    CHECK(lethe_png_write_grid(test_path("x.png"), img, 0, 2, 2, 1, 0.0f, 1.0f) == LETHE_ERR_ARG);
    CHECK(lethe_png_write_grid(test_path("x.png"), img, 1, 70000, 1, 1, 0.0f, 1.0f) == LETHE_ERR_ARG);
    CHECK(access(test_path("x.png"), F_OK) != 0);
}

static void idx_roundtrip(const char *name, const char *label_name)
{
    enum { N = 3, H = 2, W = 5, NL = 5 };
    float img[N * H * W];
    for (int i = 0; i < N * H * W; i++) img[i] = -0.1f + 1.2f * (float)i / (N * H * W - 1);
    char ipath[512], lpath[512];
    snprintf(ipath, sizeof ipath, "%s", test_path(name));
    snprintf(lpath, sizeof lpath, "%s", test_path(label_name));
    CHECK_OK(lethe_idx_write_images_float(ipath, img, N, H, W, 0.0f, 1.0f));
    uint8_t *px = NULL;
    int n = 0, r = 0, c = 0;
    CHECK_OK(lethe_idx_read_images(ipath, &px, &n, &r, &c));
    CHECK(n == N && r == H && c == W);
    uint8_t want[N * H * W];
    lethe_pixels_to_bytes(want, img, N * H * W, 0.0f, 1.0f);
    CHECK(want[0] == 0 && want[N * H * W - 1] == 255);   /* both ends clamp */
    if (px) CHECK(memcmp(px, want, sizeof want) == 0);
    free(px);

    const int32_t y[NL] = {0, 9, 3, 255, 7};
    CHECK_OK(lethe_idx_write_labels(lpath, y, NL));
    uint8_t *lab = NULL;
    CHECK_OK(lethe_idx_read_labels(lpath, &lab, &n));
    CHECK(n == NL);
    if (lab) {
        int same = 1;
        for (int i = 0; i < NL; i++) same &= lab[i] == y[i];
        CHECK(same);
    }
    free(lab);

    /* The file's first bytes: gzip magic, or the raw IDX magic. */
    uint8_t head[4];
    FILE *f = fopen(ipath, "rb");
    CHECK(f && fread(head, 1, 4, f) == 4);
    if (f) fclose(f);
    if (strstr(name, ".gz"))
        CHECK(head[0] == 0x1f && head[1] == 0x8b);
    else
        CHECK(be32(head) == 0x00000803u);
}

TEST(imageio_idx_roundtrip_raw) { idx_roundtrip("gen-images-idx3-ubyte", "gen-labels-idx1-ubyte"); }
TEST(imageio_idx_roundtrip_gz)
{
    idx_roundtrip("gen-images-idx3-ubyte.gz", "gen-labels-idx1-ubyte.gz");
}

TEST(imageio_idx_rejects_bad_args)
{
    const float img[4] = {0, 0, 0, 0};
    const int32_t y[2] = {1, 256};
    CHECK(lethe_idx_write_labels(test_path("l"), y, 2) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "256") != NULL);
    CHECK(lethe_idx_write_images_float(test_path("i"), img, 1, 2, 2, 1.0f, 0.0f) == LETHE_ERR_ARG);
    CHECK(lethe_idx_write_images_float(test_path("i"), img, 1, 0, 2, 0.0f, 1.0f) == LETHE_ERR_ARG);
    CHECK(access(test_path("l"), F_OK) != 0 && access(test_path("i"), F_OK) != 0);
    CHECK(lethe_idx_write_labels(test_path("none/l.gz"), y, 1) == LETHE_ERR_IO);
    CHECK(strstr(lethe_last_error(), "none/l.gz") != NULL);
    /* Zero images is a valid (empty) file. */
    CHECK_OK(lethe_idx_write_images_float(test_path("empty"), NULL, 0, 2, 2, 0.0f, 1.0f));
    uint8_t *px = NULL;
    int n = -1, r = 0, c = 0;
    CHECK_OK(lethe_idx_read_images(test_path("empty"), &px, &n, &r, &c));
    CHECK(n == 0 && r == 2 && c == 2);
    free(px);
}
