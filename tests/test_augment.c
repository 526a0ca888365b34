/* Training-time augmentation (data/augment.c): with a fixed seed the batch
 * is a crop and flip computed here by hand; on any image it is the
 * definition (4-pixel zero padding, crop, mirror) applied to the stored
 * bytes; the draws reach every offset; and in the training loop it is
 * seeded (same seed, same θ), off by default, and changes the run when
 * on. That the loop without it is unchanged is test_train.c's golden
 * trajectory. */
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "lethe.h"
#include "test.h"

/* n images of c × h × w; pixel (k, ch, r, q) = 100·k + 30·ch + 10·r + q + 1
 * (bytes), labels k % 10, channel ch normalised with mean 0.1·(ch + 1)
 * and std 0.25·(ch + 1). */
static void small_set(lethe_dataset *ds, int n, int c, int h, int w)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->nclass = 10;
    ds->pixels = malloc((size_t)n * c * h * w);
    ds->labels = malloc((size_t)n);
    for (int k = 0; k < n; k++) {
        ds->labels[k] = (uint8_t)(k % 10);
        for (int ch = 0; ch < c; ch++)
            for (int r = 0; r < h; r++)
                for (int q = 0; q < w; q++)
                    ds->pixels[(((size_t)k * c + ch) * h + r) * w + q] =
                        (uint8_t)(100 * k + 30 * ch + 10 * r + q + 1);
    }
    for (int ch = 0; ch < 3; ch++) {
        ds->mean[ch] = 0.1f * (float)(ch + 1);
        ds->std[ch] = 0.25f * (float)(ch + 1);
    }
    snprintf(ds->name, sizeof ds->name, "small");
}

/* The normalised value of byte b in channel ch, as lethe_dataset_batch. */
static float norm(const lethe_dataset *ds, int ch, int b)
{
    return ((float)b / 255.0f - ds->mean[ch]) / ds->std[ch];
}

TEST(augment_hand_computed_crop_flip)
{
    /* Two 1×4×4 images; image k has pixel (r, q) = 100k + 10r + q + 1. */
    lethe_dataset ds;
    small_set(&ds, 2, 1, 4, 4);
    /* Seed 4456 draws (dy, dx, flip) = (3, 5, 1) for the first image of
     * the batch, then (6, 2, 0) for the second. */
    lethe_rng r;
    lethe_rng_seed(&r, 4456);
    aug_draw d0 = aug_draw_next(&r), d1 = aug_draw_next(&r);
    CHECK(d0.dy == 3 && d0.dx == 5 && d0.flip == 1);
    CHECK(d1.dy == 6 && d1.dx == 2 && d1.flip == 0);

    /* Batch: image 1 then image 0.
     * Image 1, crop at (3, 5) of the padded image: rows −1..2, columns
     * 1..4 of the image; mirrored, the columns read 4, 3, 2, 1.
     * Image 0, crop at (6, 2): rows 2..5, columns −2..1; not mirrored. */
    static const int want[2][16] = {
        {  0,   0,   0,   0,
           0, 104, 103, 102,
           0, 114, 113, 112,
           0, 124, 123, 122},
        {  0,   0,  21,  22,
           0,   0,  31,  32,
           0,   0,   0,   0,
           0,   0,   0,   0},
    };
    int32_t idx[2] = {1, 0}, y[2] = {-1, -1};
    float x[32];
    lethe_rng_seed(&r, 4456);
    aug_dataset_batch(&ds, idx, 2, x, y, &r);
    for (int i = 0; i < 2; i++)
        for (int p = 0; p < 16; p++)
            CHECK_MSG(x[i * 16 + p] == norm(&ds, 0, want[i][p]),
                      "image %d pixel %d: %g, expected byte %d (%g)", i, p, (double)x[i * 16 + p],
                      want[i][p], (double)norm(&ds, 0, want[i][p]));
    CHECK(y[0] == 1 && y[1] == 0);
    /* The padding is a black pixel, normalised: not 0. */
    CHECK(x[0] == -0.1f / 0.25f);
    lethe_dataset_free(&ds);
}

TEST(augment_matches_definition)
{
    /* 3 channels, H ≠ W, so that a swapped axis or channel shows. */
    enum { N = 3, C = 3, H = 5, W = 6, B = 7 };
    lethe_dataset ds;
    small_set(&ds, N, C, H, W);
    int32_t idx[B] = {2, 0, 1, 1, 2, 0, 2}, y[B];
    float x[B * C * H * W], plain[B * C * H * W];
    int32_t py[B];
    lethe_dataset_batch(&ds, idx, B, plain, py);
    int flips = 0, shifted = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        lethe_rng r, q;
        lethe_rng_seed(&r, seed);
        lethe_rng_seed(&q, seed);
        aug_dataset_batch(&ds, idx, B, x, y, &r);
        for (int i = 0; i < B; i++) {
            aug_draw d = aug_draw_next(&q);
            flips += d.flip;
            shifted += d.dy != AUG_PAD || d.dx != AUG_PAD;
            CHECK(y[i] == py[i]);
            for (int ch = 0; ch < C; ch++)
                for (int row = 0; row < H; row++)
                    for (int col = 0; col < W; col++) {
                        int sr = row + d.dy - 4, sc = (d.flip ? W - 1 - col : col) + d.dx - 4;
                        int b = sr < 0 || sr >= H || sc < 0 || sc >= W
                                    ? 0
                                    : ds.pixels[(((size_t)idx[i] * C + ch) * H + sr) * W + sc];
                        float got = x[((i * C + ch) * H + row) * W + col];
                        if (got != norm(&ds, ch, b)) {
                            test_fail(__FILE__, __LINE__, "seed %llu image %d (%d,%d,%d): %g, "
                                      "expected %g", (unsigned long long)seed, i, ch, row, col,
                                      (double)got, (double)norm(&ds, ch, b));
                            goto next;
                        }
                    }
        }
    next:;
    }
    CHECK(flips > 0 && flips < 40 * B);
    CHECK(shifted > 0);
    /* No shift and no mirror is the plain batch, value for value. */
    lethe_rng r;
    for (uint64_t seed = 0; seed < 100000; seed++) {
        lethe_rng_seed(&r, seed);
        aug_draw d = aug_draw_next(&r);
        if (d.dy != AUG_PAD || d.dx != AUG_PAD || d.flip) continue;
        lethe_rng_seed(&r, seed);
        aug_dataset_batch(&ds, idx, 1, x, y, &r);
        CHECK(memcmp(x, plain, C * H * W * sizeof(float)) == 0);
        break;
    }
    lethe_dataset_free(&ds);
}

TEST(augment_draws_cover_every_offset)
{
    enum { T = 9000 };
    int dy[9] = {0}, dx[9] = {0}, flip[2] = {0};
    lethe_rng r;
    lethe_rng_seed(&r, 1);
    for (int t = 0; t < T; t++) {
        aug_draw d = aug_draw_next(&r);
        CHECK(d.dy >= 0 && d.dy <= 8 && d.dx >= 0 && d.dx <= 8 && (d.flip == 0 || d.flip == 1));
        if (d.dy < 0 || d.dy > 8 || d.dx < 0 || d.dx > 8 || d.flip < 0 || d.flip > 1) return;
        dy[d.dy]++;
        dx[d.dx]++;
        flip[d.flip]++;
    }
    /* 1000 expected per offset (sd ≈ 30), 4500 per side of the flip. */
    for (int k = 0; k < 9; k++) {
        CHECK_MSG(dy[k] > 850 && dy[k] < 1150, "dy = %d drawn %d times of %d", k, dy[k], T);
        CHECK_MSG(dx[k] > 850 && dx[k] < 1150, "dx = %d drawn %d times of %d", k, dx[k], T);
    }
    CHECK_MSG(flip[1] > 4200 && flip[1] < 4800, "mirrored %d times of %d", flip[1], T);
}

TEST(augment_flip_only_mirrors)
{
    /* LETHE_AUGMENT_FLIP: the same draws, the crop's corner ignored: each
     * image is the stored one or its mirror, never shifted, and mirrored
     * exactly when the crop-and-flip draw says so. */
    enum { N = 3, C = 2, H = 5, W = 6, B = 9 };
    lethe_dataset ds;
    small_set(&ds, N, C, H, W);
    int32_t idx[B] = {2, 0, 1, 1, 2, 0, 2, 1, 0}, y[B], py[B];
    float x[B * C * H * W], plain[B * C * H * W];
    lethe_dataset_batch(&ds, idx, B, plain, py);
    int flips = 0, shifted_draws = 0;
    for (uint64_t seed = 0; seed < 20; seed++) {
        lethe_rng r, q;
        lethe_rng_seed(&r, seed);
        lethe_rng_seed(&q, seed);
        aug_dataset_batch_ex(&ds, idx, B, x, y, &r, 0);
        for (int i = 0; i < B; i++) {
            aug_draw d = aug_draw_next(&q);
            flips += d.flip;
            shifted_draws += d.dy != AUG_PAD || d.dx != AUG_PAD;
            CHECK(y[i] == py[i]);
            for (int ch = 0; ch < C; ch++)
                for (int row = 0; row < H; row++)
                    for (int col = 0; col < W; col++) {
                        int sc = d.flip ? W - 1 - col : col;
                        float want = plain[((i * C + ch) * H + row) * W + sc];
                        float got = x[((i * C + ch) * H + row) * W + col];
                        if (got != want) {
                            test_fail(__FILE__, __LINE__, "seed %llu image %d (%d,%d,%d): %g, "
                                      "expected %g", (unsigned long long)seed, i, ch, row, col,
                                      (double)got, (double)want);
                            goto next;
                        }
                    }
        }
    next:;
    }
    CHECK(flips > 0 && flips < 20 * B);
    CHECK(shifted_draws > 0);   /* the draws did ask for shifts; none was applied */
    /* The rng is left where crop-and-flip leaves it: the same draws used. */
    lethe_rng r1, r2;
    lethe_rng_seed(&r1, 7);
    lethe_rng_seed(&r2, 7);
    aug_dataset_batch_ex(&ds, idx, B, x, y, &r1, 0);
    aug_dataset_batch(&ds, idx, B, x, y, &r2);
    CHECK(lethe_rng_below(&r1, 1u << 30) == lethe_rng_below(&r2, 1u << 30));
    lethe_dataset_free(&ds);
}

/* 60 images 3×8×8 in 3 classes (class k: channel k bright). */
static void colour_set(lethe_dataset *ds, int n)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = 3;
    ds->h = ds->w = 8;
    ds->nclass = 3;
    ds->pixels = malloc((size_t)n * 192);
    ds->labels = malloc((size_t)n);
    lethe_rng r;
    lethe_rng_seed(&r, 9);
    for (int i = 0; i < n; i++) {
        ds->labels[i] = (uint8_t)(i % 3);
        for (int p = 0; p < 192; p++)
            ds->pixels[(size_t)i * 192 + p] =
                (uint8_t)(p / 64 == i % 3 ? 150 + lethe_rng_below(&r, 100) : lethe_rng_below(&r, 80));
    }
    for (int c = 0; c < 3; c++) {
        ds->mean[c] = 0.3f;
        ds->std[c] = 0.3f;
    }
    snprintf(ds->name, sizeof ds->name, "colour");
}

static lethe_status train_once(const lethe_dataset *ds, int augment, uint64_t seed,
                               float *theta_out, size_t cap)
{
    lethe_subset all;
    lethe_status st = lethe_subset_all(&all, (size_t)ds->n);
    if (st != LETHE_OK) return st;
    lethe_model *m = NULL;
    if ((st = lethe_model_create(&m, "cnn", 3, 8, 8, 3)) == LETHE_OK) {
        lethe_train_config cfg;
        lethe_train_config_default(&cfg);
        cfg.epochs = 2;
        cfg.batch = 16;
        cfg.seed = seed;
        cfg.augment = augment;
        st = lethe_train(m, ds, &all, &cfg, NULL, NULL);
        size_t n;
        const float *t = lethe_model_theta(m, &n);
        if (st == LETHE_OK) memcpy(theta_out, t, (n < cap ? n : cap) * sizeof(float));
    }
    lethe_model_free(m);
    lethe_subset_free(&all);
    return st;
}

TEST(train_augment_seeded)
{
    lethe_train_config cfg;
    lethe_train_config_default(&cfg);
    CHECK(cfg.augment == 0);    /* off unless asked */
    enum { CAP = 65536 };   /* ≥ the 36,291 parameters of cnn at 3×8×8 */
    lethe_dataset ds;
    colour_set(&ds, 60);
    float *a = calloc(CAP, sizeof(float)), *b = calloc(CAP, sizeof(float)),
          *plain = calloc(CAP, sizeof(float));
    CHECK_OK(train_once(&ds, 1, 5, a, CAP));
    CHECK_OK(train_once(&ds, 1, 5, b, CAP));
    CHECK(memcmp(a, b, CAP * sizeof(float)) == 0);    /* seeded: the same θ */
    CHECK_OK(train_once(&ds, 0, 5, plain, CAP));
    CHECK(memcmp(a, plain, CAP * sizeof(float)) != 0);  /* on: another run */
    /* Flip alone: seeded, and neither the plain run nor crop-and-flip. */
    CHECK_OK(train_once(&ds, LETHE_AUGMENT_FLIP, 5, b, CAP));
    CHECK(memcmp(b, plain, CAP * sizeof(float)) != 0);
    CHECK(memcmp(b, a, CAP * sizeof(float)) != 0);
    CHECK_OK(train_once(&ds, LETHE_AUGMENT_FLIP, 5, a, CAP));
    CHECK(memcmp(a, b, CAP * sizeof(float)) == 0);
    /* Not a mode: refused, with the value named. */
    CHECK(train_once(&ds, 3, 5, a, CAP) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "augment 3") != NULL);
    free(a);
    free(b);
    free(plain);
    lethe_dataset_free(&ds);
}
