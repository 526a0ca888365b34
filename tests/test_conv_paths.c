/* Every lowering of conv2d (Winograd F(2×2, 3×3), the polyphase split of
 * stride-2 convs, the direct kernels on the padded grid, im2col) against a convolution and its
 * gradients computed directly in double, on the shapes that select each
 * path: odd planes, several samples a chunk, two sample groups with their
 * own weight gradients, a fused ReLU and max pool, overwriting and
 * accumulating input gradients. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "nn/layers.h"
#include "test.h"

static float *fz(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static double max_rel(const float *a, const double *b, size_t n)
{
    double m = 0.0, e = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(b[i]) > m) m = fabs(b[i]);
        const double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d;
    }
    return e / (m > 1.0 ? m : 1.0);
}

/* One shape, one epilogue, one lowering switch: forward output, argmax,
 * and the gradients of two groups against the double reference. */
static void check_case(const int *cs, int wino, const char *what)
{
    /* n0, n1, c, h, w, oc, k, stride, pad, relu, pool */
    const int n0 = cs[0], n1 = cs[1], N = n0 + n1, relu = cs[9], pool = cs[10];
    nn_conv_set_fast_paths(wino);
    nn_conv_shape s;
    nn_conv_shape_set(&s, N, cs[2], cs[3], cs[4], cs[5], cs[6], cs[7], cs[8]);
    const int ph = pool ? (s.oh - 2) / 2 + 1 : s.oh, pw = pool ? (s.ow - 2) / 2 + 1 : s.ow;
    const size_t ni = (size_t)N * s.c * s.h * s.w, nw = (size_t)s.oc * s.c * s.kh * s.kw;
    const size_t no = (size_t)N * s.oc * s.oh * s.ow, np = (size_t)N * s.oc * ph * pw;
    lethe_rng rng;
    lethe_rng_seed(&rng, 77);
    float *in = fz(ni), *w = fz(nw), *b = fz(s.oc), *out = fz(np), *g = fz(np);
    float *ws = fz(nn_conv2d_workspace(&s));
    int32_t *arg = calloc(np, sizeof *arg);
    gc_fill(&rng, in, ni, -1, 1);
    gc_fill(&rng, w, nw, -0.3f, 0.3f);
    gc_fill(&rng, b, s.oc, -0.2f, 0.2f);
    gc_fill(&rng, g, np, -1, 1);
    for (size_t i = 0; i < nn_conv2d_workspace(&s); i++) ws[i] = 1e6f;  /* dirty */
    float *stats = fz((size_t)N * s.oc * 3);
    const nn_epilogue ep = {.relu = relu, .pool_k = pool ? 2 : 0, .pool_s = pool ? 2 : 0,
                            .stats = pool ? NULL : stats};
    nn_conv2d_forward_ex(out, pool ? arg : NULL, in, w, b, &s, &ep, ws);
    /* The epilogue's plane statistics (for a batch norm) are those of the
     * planes it wrote. */
    for (int pl = 0; !pool && pl < N * s.oc; pl++) {
        float st[3];
        nn_plane_stats(out + (size_t)pl * s.oh * s.ow, s.oh * s.ow, st);
        CHECK_MSG(st[0] == stats[3 * pl] && st[1] == stats[3 * pl + 1] &&
                      st[2] == stats[3 * pl + 2],
                  "%s: plane %d statistics", what, pl);
    }
    free(stats);

    /* Reference: conv, ReLU, pool (first maximum wins), in double. */
    double *conv = calloc(no, sizeof *conv), *act = calloc(no, sizeof *act);
    double *refo = calloc(np, sizeof *refo);
    float *dconv = fz(no);
    int32_t *refa = calloc(np, sizeof *refa);
    gc_conv_ref(conv, in, w, b, &s);
    for (size_t i = 0; i < no; i++) act[i] = relu && conv[i] < 0 ? 0.0 : conv[i];
    const size_t ohw = (size_t)s.oh * s.ow;
    for (size_t pl = 0; pl < (size_t)N * s.oc; pl++)
        for (int py = 0; py < ph; py++)
            for (int px = 0; px < pw; px++) {
                const size_t j = pl * ph * pw + (size_t)py * pw + px;
                if (!pool) {
                    refo[j] = act[j];
                    continue;
                }
                int best = 2 * py * s.ow + 2 * px;
                for (int a = 0; a < 2; a++)
                    for (int c = 0; c < 2; c++) {
                        const int p = (2 * py + a) * s.ow + 2 * px + c;
                        if (act[pl * ohw + p] > act[pl * ohw + best]) best = p;
                    }
                refo[j] = act[pl * ohw + best];
                refa[j] = best;
            }
    double e = max_rel(out, refo, np);
    CHECK_MSG(e < 1e-5, "%s: forward error %g", what, e);
    /* Argmax may differ only where two window values are (nearly) tied. */
    int bad = 0;
    for (size_t j = 0; pool && j < np; j++)
        if (arg[j] != refa[j]) {
            const size_t pl = j / ((size_t)ph * pw);
            if (fabs(act[pl * ohw + arg[j]] - act[pl * ohw + refa[j]]) > 1e-5) bad++;
        }
    CHECK_MSG(bad == 0, "%s: %d argmax differ", what, bad);

    /* The conv output's gradient, from the epilogue's (Lethe's argmax, so
     * that ties route the same way). */
    for (size_t pl = 0; pl < (size_t)N * s.oc; pl++)
        for (size_t j = 0; j < (size_t)ph * pw; j++) {
            const size_t q = pl * ph * pw + j;
            const size_t p = pl * ohw + (pool ? (size_t)arg[q] : j);
            if (!relu || out[q] > 0.0f) dconv[p] += g[q];
        }
    double *rdin = calloc(ni, sizeof *rdin), *rdw[2], *rdb[2];
    float *dw[2], *db[2], *din = fz(ni);
    for (int k = 0; k < 2; k++) {
        rdw[k] = calloc(nw, sizeof(double));
        rdb[k] = calloc(s.oc, sizeof(double));
        dw[k] = fz(nw);
        db[k] = fz(s.oc);
    }
    gc_conv_ref_backward(rdin, rdw[0], rdb[0], dconv, in, w, &s, 0, n0);
    gc_conv_ref_backward(rdin, rdw[1], rdb[1], dconv, in, w, &s, n0, N);
    lethe_groups gr;
    gc_groups(&gr, n0, n1);
    for (size_t i = 0; i < ni; i++) din[i] = 5.0f;   /* overwritten */
    nn_conv2d_backward_ex(din, 0, dw, db, g, out, pool ? arg : NULL, in, w, &s, &ep, &gr, ws);
    e = max_rel(din, rdin, ni);
    CHECK_MSG(e < 1e-5, "%s: din error %g", what, e);
    for (int k = 0; k < 2; k++) {
        e = max_rel(dw[k], rdw[k], nw);
        CHECK_MSG(e < 1e-5, "%s: dw[%d] error %g", what, k, e);
        e = max_rel(db[k], rdb[k], s.oc);
        CHECK_MSG(e < 1e-5, "%s: db[%d] error %g", what, k, e);
    }
    /* Accumulating: din += the same gradient, no weight gradients. */
    nn_conv2d_backward_ex(din, 1, NULL, NULL, g, out, pool ? arg : NULL, in, w, &s, &ep, &gr, ws);
    for (size_t i = 0; i < ni; i++) rdin[i] *= 2.0;
    e = max_rel(din, rdin, ni);
    CHECK_MSG(e < 1e-5, "%s: din_add error %g", what, e);

    for (int k = 0; k < 2; k++) {
        free(rdw[k]); free(rdb[k]); free(dw[k]); free(db[k]);
    }
    free(in); free(w); free(b); free(out); free(g); free(ws); free(arg); free(conv);
    free(act); free(refo); free(dconv); free(refa); free(rdin); free(din);
    nn_conv_set_fast_paths(1);
}

/* n0, n1, c, h, w, oc, k, stride, pad, relu, pool */
static const int cases[][11] = {
    {2, 3, 8, 12, 12, 5, 3, 1, 1, 0, 0},   /* Winograd, even plane */
    {1, 4, 9, 13, 15, 6, 3, 1, 1, 1, 0},   /* odd rows and columns: partial tiles */
    {3, 2, 16, 28, 28, 16, 3, 1, 1, 1, 0}, /* resnet8's layer1: one sample a chunk */
    {2, 2, 8, 14, 13, 4, 3, 1, 1, 1, 1},   /* with ReLU and max pool (cnn's conv2) */
    {2, 7, 8, 12, 12, 3, 3, 1, 1, 0, 0},   /* several samples a chunk, several chunks */
    {2, 3, 8, 7, 7, 5, 3, 1, 1, 1, 0},     /* 7×7: shifted products */
    {2, 3, 16, 14, 14, 8, 3, 2, 1, 1, 0},  /* stride 2 (resnet8's layer2.0.conv1) */
    {2, 3, 8, 13, 11, 6, 3, 2, 1, 0, 0},   /* stride 2, odd planes */
    {2, 3, 16, 14, 14, 8, 1, 2, 0, 0, 0},  /* 1×1 stride-2 shortcut */
    {1, 2, 3, 9, 9, 4, 3, 2, 1, 1, 0},     /* stride 2, few channels */
    {2, 2, 1, 12, 12, 4, 3, 1, 1, 1, 1},   /* one input channel (first layers) */
    {2, 3, 3, 11, 10, 5, 5, 1, 2, 1, 0},   /* 5×5, few channels: direct dW over 25 positions */
    {2, 2, 2, 9, 8, 7, 1, 1, 0, 0, 0},     /* 1×1 stride 1, few channels */
    {2, 3, 16, 8, 8, 10, 3, 1, 1, 1, 0},   /* 8×8: the direct kernel on compact copies */
    {1, 2, 8, 16, 16, 6, 3, 1, 1, 0, 0},   /* 16×16 (plain: two vectors a row) */
    {2, 3, 8, 16, 16, 9, 3, 2, 1, 1, 0},   /* stride 2 onto 8×8 phase planes */
    /* Wide layers (over 2^18 weights, planes of at most 64): im2col of
     * compact columns from the padded grid, two chunks of samples (so two
     * blocks of weight-gradient partials summed in tiles), then 8×8. */
    {6, 7, 192, 4, 4, 160, 3, 1, 1, 1, 0},
    {1, 2, 160, 8, 8, 192, 3, 1, 1, 0, 0},
};

TEST_KSETS(conv2d_every_lowering_matches_double_reference)
{
    char what[96];
    for (int t = 0; t < (int)(sizeof cases / sizeof cases[0]); t++)
        for (int wino = 1; wino >= 0; wino--) {
            snprintf(what, sizeof what, "case %d (%s)", t, wino ? "fast paths" : "plain");
            check_case(cases[t], wino, what);
        }
}

/* A batch norm applied by the conv as it copies its input (nn_affine)
 * against the same conv on the normalised tensor, for every lowering that
 * copies (Winograd, phase planes, padded grid, first-layer im2col on the
 * padded grid): bitwise the same output and weight gradient. */
TEST_KSETS(conv2d_input_affine_equals_normalised_input)
{
    /* n0, n1, c, h, w, oc, k, stride, pad */
    static const int shapes[][9] = {
        {2, 3, 8, 12, 12, 5, 3, 1, 1}, {1, 4, 9, 13, 15, 6, 3, 1, 1}, {2, 3, 8, 7, 7, 5, 3, 1, 1},
        {2, 3, 16, 14, 14, 8, 3, 2, 1}, {2, 3, 8, 13, 11, 6, 3, 2, 1}, {2, 2, 3, 9, 10, 4, 3, 1, 1},
    };
    for (int t = 0; t < (int)(sizeof shapes / sizeof shapes[0]); t++)
        for (int relu = 0; relu < 2; relu++) {
            const int *cs = shapes[t], N = cs[0] + cs[1];
            nn_conv_shape s;
            nn_conv_shape_set(&s, N, cs[2], cs[3], cs[4], cs[5], cs[6], cs[7], cs[8]);
            CHECK_MSG(nn_conv2d_takes_affine(&s), "shape %d: its lowering copies its input", t);
            const size_t hw = (size_t)s.h * s.w, ni = (size_t)N * s.c * hw;
            const size_t no = (size_t)N * s.oc * s.oh * s.ow, nw = (size_t)s.oc * s.c * s.kh * s.kw;
            lethe_rng rng;
            lethe_rng_seed(&rng, 90 + t);
            float *x = fz(ni), *xn = fz(ni), *w = fz(nw), *g = fz(no), *ws = fz(nn_conv2d_workspace(&s));
            float *o1 = fz(no), *o2 = fz(no), *dw1 = fz(nw), *dw2 = fz(nw);
            float mean[2 * 16], istd[2 * 16], gamma[16], beta[16];
            gc_fill(&rng, x, ni, -2, 3);
            gc_fill(&rng, w, nw, -0.3f, 0.3f);
            gc_fill(&rng, g, no, -1, 1);
            gc_fill(&rng, mean, 2 * 16, -0.5f, 0.5f);
            gc_fill(&rng, istd, 2 * 16, 0.5f, 1.5f);
            gc_fill(&rng, gamma, 16, 0.5f, 1.5f);
            gc_fill(&rng, beta, 16, -0.5f, 0.5f);
            lethe_groups gr;
            gc_groups(&gr, cs[0], cs[1]);
            /* The batch norm's own operations (nn_batchnorm_forward_ex). */
            for (int i = 0; i < N; i++)
                for (int c = 0; c < s.c; c++) {
                    const int k = i >= cs[0];
                    const float ga = gamma[c], be = beta[c], mf = mean[k * s.c + c];
                    const float isf = istd[k * s.c + c];
                    for (size_t j = 0; j < hw; j++) {
                        const size_t q = ((size_t)i * s.c + c) * hw + j;
                        const float v = ga * ((x[q] - mf) * isf) + be;
                        xn[q] = relu && !(v > 0.0f) ? 0.0f : v;
                    }
                }
            const nn_affine af = {mean, istd, gamma, beta, &gr, relu};
            const nn_epilogue e1 = {.in_affine = &af}, e2 = {0};
            nn_conv2d_forward_ex(o1, NULL, x, w, NULL, &s, &e1, ws);
            nn_conv2d_forward_ex(o2, NULL, xn, w, NULL, &s, &e2, ws);
            CHECK_MSG(gc_max_abs_diff(o1, o2, no) == 0.0, "shape %d relu %d: forward differs by %g",
                      t, relu, gc_max_abs_diff(o1, o2, no));
            float *d1[1] = {dw1}, *d2[1] = {dw2};
            lethe_groups one;
            gc_groups(&one, N, 0);
            nn_conv2d_backward_ex(NULL, 0, d1, NULL, g, o1, NULL, x, w, &s, &e1, &one, ws);
            nn_conv2d_backward_ex(NULL, 0, d2, NULL, g, o2, NULL, xn, w, &s, &e2, &one, ws);
            CHECK_MSG(gc_max_abs_diff(dw1, dw2, nw) == 0.0, "shape %d relu %d: dw differs by %g", t,
                      relu, gc_max_abs_diff(dw1, dw2, nw));
            free(x); free(xn); free(w); free(g); free(ws); free(o1); free(o2); free(dw1); free(dw2);
        }
}

/* Term by term what the direct kernel adds: fused in the SIMD sets, a
 * product then a sum in the generic one (and in a native build without
 * FMA). */
static float chain_step(int fused, float acc, float w, float x)
{
    if (fused) return fmaf(w, x, acc);
    volatile float p = w * x;   /* no contraction into an FMA */
    return acc + p;
}

static int kset_fused(void)
{
    const char *k = test_kset();
    if (!k || !strcmp(k, "generic")) return 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (!strcmp(k, "native")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 1;
}

/* The direct kernel's bits, whichever tiles compute them (columns of the
 * padded grid, rows only on 16-wide planes, or compact copies of planes at
 * most 12 wide, phase planes included): each forward value
 * is one chain over input channels, then kernel positions, from zero; each
 * input-gradient value one chain over output channels, then positions.
 * The shapes that take it: stride 1 on planes too small for Winograd or
 * with fast paths off, and stride 2 on phase planes. */
TEST_KSETS(conv2d_direct_kernel_is_one_chain)
{
    /* n, c, h, w, oc, stride, fast paths */
    static const int shapes[][7] = {
        {2, 16, 8, 8, 10, 1, 1}, {2, 8, 7, 7, 5, 1, 1},  {1, 8, 16, 16, 6, 1, 0},
        {2, 8, 16, 16, 9, 2, 1}, {1, 8, 4, 4, 12, 1, 1}, {1, 9, 8, 12, 5, 1, 0},
        {2, 64, 8, 8, 64, 1, 1},  /* resnet20's layer3: whole tiles of compact columns */
        {2, 32, 16, 16, 64, 2, 1}, /* its layer3.0.conv1: 8×8 from phase planes */
        {1, 8, 13, 11, 6, 1, 0},  /* odd planes, fast paths off */
    };
    const int fused = kset_fused();
    for (int t = 0; t < (int)(sizeof shapes / sizeof shapes[0]); t++) {
        const int *cs = shapes[t], N = cs[0];
        nn_conv_set_fast_paths(cs[6]);
        nn_conv_shape s;
        nn_conv_shape_set(&s, N, cs[1], cs[2], cs[3], cs[4], 3, cs[5], 1);
        const size_t ni = (size_t)N * s.c * s.h * s.w, nw = (size_t)s.oc * s.c * 9;
        const size_t no = (size_t)N * s.oc * s.oh * s.ow;
        lethe_rng rng;
        lethe_rng_seed(&rng, 300 + t);
        float *in = fz(ni), *w = fz(nw), *out = fz(no), *g = fz(no), *din = fz(ni);
        float *ws = fz(nn_conv2d_workspace(&s));
        gc_fill(&rng, in, ni, -1, 1);
        gc_fill(&rng, w, nw, -0.3f, 0.3f);
        gc_fill(&rng, g, no, -1, 1);
        for (size_t i = 0; i < nn_conv2d_workspace(&s); i++) ws[i] = 1e6f;   /* dirty */
        const nn_epilogue ep = {0};
        nn_conv2d_forward_ex(out, NULL, in, w, NULL, &s, &ep, ws);
        lethe_groups gr;
        gc_groups(&gr, N, 0);
        nn_conv2d_backward_ex(din, 0, NULL, NULL, g, out, NULL, in, w, &s, &ep, &gr, ws);
        int bad_out = 0, bad_din = 0;
        for (int n = 0; n < N; n++)
            for (int o = 0; o < s.oc; o++)
                for (int y = 0; y < s.oh; y++)
                    for (int x = 0; x < s.ow; x++) {
                        float acc = 0.0f;
                        for (int c = 0; c < s.c; c++)
                            for (int k = 0; k < 9; k++) {
                                const int iy = y * s.stride - 1 + k / 3, ix = x * s.stride - 1 + k % 3;
                                const float v = iy < 0 || iy >= s.h || ix < 0 || ix >= s.w ? 0.0f
                                    : in[(((size_t)n * s.c + c) * s.h + iy) * s.w + ix];
                                acc = chain_step(fused, acc, w[((size_t)o * s.c + c) * 9 + k], v);
                            }
                        bad_out += acc != out[(((size_t)n * s.oc + o) * s.oh + y) * s.ow + x];
                    }
        for (int n = 0; n < N; n++)
            for (int c = 0; c < s.c; c++)
                for (int iy = 0; iy < s.h; iy++)
                    for (int ix = 0; ix < s.w; ix++) {
                        float acc = 0.0f;
                        for (int o = 0; o < s.oc; o++)
                            for (int k = 0; k < 9; k++) {
                                const int sy = iy + 1 - k / 3, sx = ix + 1 - k % 3;
                                if (sy % s.stride || sx % s.stride) continue;   /* another phase */
                                const int y = sy / s.stride, x = sx / s.stride;
                                if (sy < 0 || sx < 0 || y >= s.oh || x >= s.ow) continue;
                                acc = chain_step(fused, acc, w[((size_t)o * s.c + c) * 9 + k],
                                                 g[(((size_t)n * s.oc + o) * s.oh + y) * s.ow + x]);
                            }
                        bad_din += acc != din[(((size_t)n * s.c + c) * s.h + iy) * s.w + ix];
                    }
        CHECK_MSG(bad_out == 0, "shape %d: %d of %zu outputs differ from the chain", t, bad_out, no);
        CHECK_MSG(bad_din == 0, "shape %d: %d of %zu input gradients differ from the chain", t,
                  bad_din, ni);
        free(in); free(w); free(out); free(g); free(din); free(ws);
    }
    nn_conv_set_fast_paths(1);
}
