/* The U-Net noise predictor as a whole model: shape and size, whole-model
 * finite differences of dL/dθ for L = Σ r·ε_θ(x, t, y) in several layers,
 * conditioning that matters, grouped gradients that add up, a forward
 * without conditioning refused, and a checkpoint round trip. */
#include "test.h"
#include "gradcheck.h"

#include <stdlib.h>
#include <string.h>

#include "lethe.h"

enum { UN = 3, PX = 28 * 28 };

static lethe_model *make_unet(uint64_t seed, int batch)
{
    lethe_model *m = NULL;
    CHECK_OK(lethe_model_create(&m, "unet", 1, 28, 28, 10));
    if (!m) return NULL;
    CHECK_OK(lethe_model_reserve(m, batch));
    lethe_rng rng;
    lethe_rng_seed(&rng, seed);
    lethe_model_init(m, &rng);
    return m;
}

/* Forward with (t, y); the output (n, 784), owned by m, or NULL. */
static const float *fwd(lethe_model *m, const float *x, const int32_t *t, const int32_t *y,
                        int n, const lethe_groups *g)
{
    const float *out = NULL;
    CHECK_OK(lethe_model_set_cond(m, t, y));
    CHECK_OK(lethe_model_forward(m, x, n, g, LETHE_BN_TRAIN, &out));
    return out;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

static const int32_t T3[UN] = {0, 417, 999}, Y3[UN] = {3, 10, 7};

TEST(unet_shape_and_size)
{
    lethe_model *m = make_unet(1, UN);
    if (!m) return;
    CHECK(lethe_model_out_size(m) == PX);
    size_t n;
    lethe_model_theta(m, &n);
    CHECK(n > 100000 && n < 1000000);
    const double fl = lethe_model_flops(m);
    CHECK(fl > 40e6 && fl < 60e6);
    const lethe_tensor *t = lethe_model_find(m, "label_embed.weight");
    CHECK(t && t->ndim == 2 && t->shape[0] == 11 && t->shape[1] == 128);
    t = lethe_model_find(m, "down.0.res.conv1.weight");
    CHECK(t && t->ndim == 4 && t->shape[0] == 16 && t->shape[2] == 3);
    t = lethe_model_find(m, "up.0.res.skip.weight");   /* 64 + 32 → 32, 1×1 */
    CHECK(t && t->shape[0] == 32 && t->shape[1] == 96 && t->shape[2] == 1);
    t = lethe_model_find(m, "up.1.res.norm1.weight");  /* γ = 1 after init */
    CHECK(t && t->numel == 48 && t->data[0] == 1.0f && t->data[47] == 1.0f);
    CHECK(lethe_model_find(m, "conv_out.bias") && lethe_model_find(m, "time_embed.2.weight"));

    lethe_rng rng;
    lethe_rng_seed(&rng, 2);
    float x[UN * PX];
    gc_fill(&rng, x, UN * PX, -1, 1);
    const float *out = fwd(m, x, T3, Y3, UN, NULL);
    CHECK(out && lethe_vec_finite(out, UN * PX) && max_abs(out, UN * PX) > 1e-3);

    /* A classifier's output size is its class count, and it ignores the
     * conditioning. */
    lethe_model *c = NULL;
    CHECK_OK(lethe_model_create(&c, "cnn", 1, 28, 28, 10));
    if (c) {
        CHECK(lethe_model_out_size(c) == 10);
        CHECK_OK(lethe_model_reserve(c, 1));
        CHECK_OK(lethe_model_set_cond(c, T3, Y3));
        const float *lg;
        CHECK_OK(lethe_model_forward(c, x, 1, NULL, LETHE_BN_EVAL, &lg));
        CHECK_OK(lethe_model_forward(c, x, 1, NULL, LETHE_BN_EVAL, &lg));
    }
    lethe_model_free(c);
    /* Two downsamplings need H, W divisible by 4. */
    lethe_model *bad = NULL;
    CHECK(lethe_model_create(&bad, "unet", 1, 30, 28, 10) == LETHE_ERR_ARG);
    CHECK(!bad && strstr(lethe_last_error(), "divisible by 4"));
    lethe_model_free(m);
}

/* ------------------------------------------------ finite differences */

typedef struct { lethe_model *m; const float *x, *r; } fd_ctx;

static double fd_obj(void *ctx)
{
    fd_ctx *c = ctx;
    const float *out = fwd(c->m, c->x, T3, Y3, UN, NULL);
    double s = 0.0;
    for (int i = 0; out && i < UN * PX; i++) s += (double)c->r[i] * out[i];
    return s;
}

TEST_KSETS(unet_gradients_finite_differences)
{
    static const char *names[] = {
        "time_embed.0.weight", "time_embed.2.bias", "label_embed.weight", "conv_in.weight",
        "down.0.res.norm1.weight", "down.0.res.emb_proj.weight", "down.0.downsample.weight",
        "down.1.res.skip.weight", "mid.res.norm2.bias", "mid.res.conv2.weight",
        "up.0.res.conv1.weight", "up.1.res.norm1.bias", "norm_out.weight", "conv_out.weight",
        "conv_out.bias",
    };
    lethe_model *m = make_unet(3, UN);
    if (!m) return;
    lethe_rng rng;
    lethe_rng_seed(&rng, 4);
    float *x = malloc(UN * PX * sizeof(float)), *r = malloc(UN * PX * sizeof(float));
    gc_fill(&rng, x, UN * PX, -1, 1);
    gc_fill(&rng, r, UN * PX, -1, 1);
    fd_ctx c = {m, x, r};
    size_t n;
    float *theta = lethe_model_theta(m, &n);
    float *grad = calloc(n, sizeof(float));
    fd_obj(&c);
    float *gs[1] = {grad};
    CHECK_OK(lethe_model_backward(m, r, NULL, gs));
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const lethe_tensor *t = lethe_model_find(m, names[k]);
        CHECK_MSG(t != NULL, "no tensor %s", names[k]);
        if (!t) continue;
        /* The entry with the largest gradient (every tensor must have one
         * that is not ~0), and one other, fixed. */
        size_t best = 0;
        for (size_t j = 1; j < t->numel; j++)
            if (fabsf(grad[t->offset + j]) > fabsf(grad[t->offset + best])) best = j;
        const size_t picks[2] = {best, (best + t->numel / 2 + 1) % t->numel};
        CHECK_MSG(fabsf(grad[t->offset + best]) > 1e-3, "%s: largest gradient %g", names[k],
                  grad[t->offset + best]);
        for (int p = 0; p < 2; p++) {
            const size_t i = t->offset + picks[p];
            const double num = gc_fd_one(theta, i, fd_obj, &c, 1e-2f);
            const double scale = fabs(grad[t->offset + best]);
            CHECK_MSG(fabs(num - grad[i]) < 5e-3 * scale + 1e-4,
                      "%s[%zu]: analytic %.6g, numeric %.6g", names[k], picks[p], grad[i], num);
        }
    }
    free(grad);
    free(x);
    free(r);
    lethe_model_free(m);
}

/* ------------------------------------------------------ conditioning */

TEST(unet_conditioning_changes_output)
{
    lethe_model *m = make_unet(5, UN);
    if (!m) return;
    lethe_rng rng;
    lethe_rng_seed(&rng, 6);
    float x[UN * PX], a[UN * PX], b[UN * PX];
    gc_fill(&rng, x, PX, -1, 1);   /* the same image thrice */
    for (int i = 1; i < UN; i++) memcpy(x + i * PX, x, PX * sizeof(float));
    const int32_t t_same[UN] = {500, 500, 500}, y_diff[UN] = {0, 1, 10};
    const int32_t t_diff[UN] = {10, 500, 990}, y_same[UN] = {4, 4, 4};
    const float *out = fwd(m, x, t_same, y_diff, UN, NULL);
    if (out) memcpy(a, out, sizeof a);
    /* Same t, different labels: different predictions per sample. */
    CHECK(gc_max_abs_diff(a, a + PX, PX) > 1e-3);
    CHECK(gc_max_abs_diff(a + PX, a + 2 * PX, PX) > 1e-3);
    out = fwd(m, x, t_diff, y_same, UN, NULL);
    if (out) memcpy(b, out, sizeof b);
    CHECK(gc_max_abs_diff(b, b + PX, PX) > 1e-3);
    CHECK(gc_max_abs_diff(b + PX, b + 2 * PX, PX) > 1e-3);
    /* Sample independence: sample 1 alone gives what it gave in the batch
     * (group norm's statistics are per sample). */
    out = fwd(m, x, t_diff + 1, y_same + 1, 1, NULL);
    CHECK(out && gc_max_abs_diff(out, b + PX, PX) < 1e-5);
    /* Deterministic. */
    out = fwd(m, x, t_same, y_diff, UN, NULL);
    CHECK(out && gc_max_abs_diff(out, a, UN * PX) == 0.0);
    lethe_model_free(m);
}

TEST(unet_forward_without_cond_fails)
{
    lethe_model *m = make_unet(7, UN);
    if (!m) return;
    float x[UN * PX] = {0};
    const float *out;
    CHECK(lethe_model_forward(m, x, UN, NULL, LETHE_BN_TRAIN, &out) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "lethe_model_set_cond") != NULL);
    /* Labels only: the timesteps are missing. */
    CHECK_OK(lethe_model_set_cond(m, NULL, Y3));
    CHECK(lethe_model_forward(m, x, UN, NULL, LETHE_BN_TRAIN, &out) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "timesteps") != NULL);
    /* Set, it works once; the next forward needs it set again. */
    CHECK(fwd(m, x, T3, Y3, UN, NULL) != NULL);
    CHECK(lethe_model_forward(m, x, UN, NULL, LETHE_BN_TRAIN, &out) == LETHE_ERR_ARG);
    /* A label past the null class is refused, with the sample named. */
    const int32_t ybad[UN] = {0, 11, 2};
    CHECK_OK(lethe_model_set_cond(m, T3, ybad));
    CHECK(lethe_model_forward(m, x, UN, NULL, LETHE_BN_TRAIN, &out) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "label 11 of sample 1") != NULL);
    const int32_t yneg[UN] = {-1, 0, 0};
    CHECK_OK(lethe_model_set_cond(m, T3, yneg));
    CHECK(lethe_model_forward(m, x, UN, NULL, LETHE_BN_TRAIN, &out) == LETHE_ERR_ARG);
    lethe_model_free(m);
}

/* ---------------------------------------------------- grouped backward */

TEST(unet_two_groups_sum_to_one)
{
    enum { N = 4 };
    static const int32_t t[N] = {3, 250, 600, 999}, y[N] = {0, 5, 10, 9};
    lethe_model *m = make_unet(8, N);
    if (!m) return;
    lethe_rng rng;
    lethe_rng_seed(&rng, 9);
    float *x = malloc(N * PX * sizeof(float)), *r = malloc(N * PX * sizeof(float));
    gc_fill(&rng, x, N * PX, -1, 1);
    gc_fill(&rng, r, N * PX, -1, 1);
    size_t n;
    lethe_model_theta(m, &n);
    float *g0 = calloc(n, sizeof(float)), *g1 = calloc(n, sizeof(float));
    float *all = calloc(n, sizeof(float)), *shared = calloc(n, sizeof(float));
    lethe_groups g2, g1one;
    lethe_groups_two(&g2, 1, 3);
    lethe_groups_one(&g1one, N);
    float *sep[2] = {g0, g1}, *same[2] = {shared, shared}, *one[1] = {all};
    fwd(m, x, t, y, N, &g2);
    CHECK_OK(lethe_model_backward(m, r, &g2, sep));
    fwd(m, x, t, y, N, &g2);
    CHECK_OK(lethe_model_backward(m, r, &g2, same));
    fwd(m, x, t, y, N, &g1one);
    CHECK_OK(lethe_model_backward(m, r, &g1one, one));
    double err = 0.0, err2 = 0.0, split = 0.0;
    for (size_t i = 0; i < n; i++) {
        err = fmax(err, fabs((double)g0[i] + g1[i] - all[i]));
        err2 = fmax(err2, fabs((double)shared[i] - all[i]));
        split = fmax(split, fabs((double)g0[i] - g1[i]));
    }
    const double scale = max_abs(all, n);
    CHECK_MSG(err < 1e-5 * scale, "g0 + g1 vs one group: %g (scale %g)", err, scale);
    CHECK_MSG(err2 < 1e-5 * scale, "shared buffer vs one group: %g", err2);
    CHECK(split > 1e-2 * scale);
    /* Only the labels each group used get a label-table gradient. */
    const lethe_tensor *le = lethe_model_find(m, "label_embed.weight");
    if (le) {
        CHECK(max_abs(g0 + le->offset + 0 * 128, 128) > 0.0);    /* sample 0: y = 0 */
        CHECK(max_abs(g1 + le->offset + 0 * 128, 128) == 0.0);
        CHECK(max_abs(g0 + le->offset + 10 * 128, 128) == 0.0);  /* sample 2: null */
        CHECK(max_abs(g1 + le->offset + 10 * 128, 128) > 0.0);
        CHECK(max_abs(all + le->offset + 1 * 128, 128) == 0.0);  /* nobody's label */
    }
    free(g0);
    free(g1);
    free(all);
    free(shared);
    free(x);
    free(r);
    lethe_model_free(m);
}

/* ---------------------------------------------------------- checkpoint */

TEST(unet_checkpoint_roundtrip)
{
    lethe_model *m = make_unet(10, UN);
    if (!m) return;
    lethe_rng rng;
    lethe_rng_seed(&rng, 11);
    float x[UN * PX], a[UN * PX];
    gc_fill(&rng, x, UN * PX, -1, 1);
    const float *out = fwd(m, x, T3, Y3, UN, NULL);
    if (out) memcpy(a, out, sizeof a);
    const char *path = test_path("unet.safetensors");
    CHECK_OK(lethe_checkpoint_save(m, NULL, path));
    lethe_model *r = NULL;
    CHECK_OK(lethe_checkpoint_open(&r, path, NULL));
    if (r) {
        CHECK(strcmp(lethe_model_arch(r), "unet") == 0);
        CHECK_OK(lethe_model_reserve(r, UN));
        out = fwd(r, x, T3, Y3, UN, NULL);
        CHECK(out && gc_max_abs_diff(out, a, UN * PX) == 0.0);
        /* A fresh model differs, so the load did something. */
        lethe_model *f = make_unet(12, UN);
        out = f ? fwd(f, x, T3, Y3, UN, NULL) : NULL;
        CHECK(out && gc_max_abs_diff(out, a, UN * PX) > 1e-3);
        lethe_model_free(f);
    }
    lethe_model_free(r);
    lethe_model_free(m);
}
