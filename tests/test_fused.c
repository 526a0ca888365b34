/* The fused kernels (conv/linear/batch norm/residual sum with their ReLU,
 * conv with ReLU and max pool, overwriting backward) against the separate
 * layers chained as before, and the fused model graph against the same
 * model with fusion undone: same logits, same gradients, per group. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "lethe.h"
#include "nn/layers.h"
#include "nn/model.h"

static void fill(lethe_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * lethe_rng_uniform(r);
}

static float *zalloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;   /* NaN wins */
    }
    return m;
}

/* Largest |a − b| relative to the largest |b|. */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return m / scale;
}

static void two_groups(lethe_groups *g, int n0, int n1)
{
    memset(g, 0, sizeof *g);
    g->n = 2;
    g->start[1] = n0;
    g->start[2] = n0 + n1;
}

/* ------------------------------------------------------------- conv2d */

/* conv → [ReLU] → [max pool k/s] fused, against the three layers one after
 * the other; backward with two groups, din overwritten (over garbage) and
 * added. Cases: k, stride, pad, H, W, pool k, pool s, relu, C. */
TEST_KSETS(conv2d_epilogue_matches_chain)
{
    static const int cases[][9] = {
        {3, 1, 1, 9, 10, 2, 2, 1, 3},  /* padded grid, odd plane: a row and a column left out */
        {3, 1, 1, 8, 8, 0, 0, 1, 3},   /* ReLU only */
        {3, 2, 1, 9, 9, 2, 2, 1, 3},   /* strided lowering */
        {3, 1, 0, 8, 9, 3, 2, 1, 3},   /* overlapping pool windows */
        {1, 1, 0, 6, 6, 2, 2, 0, 3},   /* pool without ReLU */
        {3, 1, 1, 28, 28, 2, 2, 1, 1}, /* the cnn's first layer, one sample a chunk */
        {3, 1, 1, 7, 7, 2, 2, 1, 8},   /* shifted products, several samples a chunk */
        {3, 1, 1, 12, 11, 0, 0, 1, 9}, /* shifted products, one sample a chunk */
    };
    enum { N0 = 2, N1 = 3, N = 5, OC = 4 };
    lethe_rng rng;
    lethe_rng_seed(&rng, 40);
    for (int t = 0; t < (int)(sizeof cases / sizeof cases[0]); t++) {
        const int *cs = cases[t], C = cs[8];
        nn_conv_shape s;
        nn_conv_shape_set(&s, N, C, cs[3], cs[4], OC, cs[0], cs[1], cs[2]);
        const nn_epilogue ep = {.relu = cs[7], .pool_k = cs[5], .pool_s = cs[6]};
        const int pool = cs[5] > 0;
        const int ph = pool ? (s.oh - cs[5]) / cs[6] + 1 : s.oh;
        const int pw = pool ? (s.ow - cs[5]) / cs[6] + 1 : s.ow;
        size_t ni = (size_t)N * C * s.h * s.w, nw = (size_t)OC * C * s.kh * s.kw;
        size_t no = (size_t)N * OC * s.oh * s.ow, np = (size_t)N * OC * ph * pw;
        float *in = zalloc(ni), *w = zalloc(nw), *b = zalloc(OC);
        float *ws = zalloc(nn_conv2d_workspace(&s));
        float *conv = zalloc(no), *act = zalloc(no), *ref = zalloc(np), *out = zalloc(np);
        int32_t *arg_ref = calloc(np, sizeof(int32_t)), *arg = calloc(np, sizeof(int32_t));
        fill(&rng, in, ni, -1, 1);
        fill(&rng, w, nw, -1, 1);
        fill(&rng, b, OC, -0.5f, 0.5f);

        /* The chain. */
        nn_conv2d_forward(conv, in, w, b, &s, ws);
        if (ep.relu) nn_relu_forward(act, conv, no);
        else memcpy(act, conv, no * sizeof(float));
        if (pool) nn_maxpool_forward(ref, arg_ref, act, N, OC, s.oh, s.ow, cs[5], cs[6]);
        else memcpy(ref, act, no * sizeof(float));
        /* Fused: the same float operations, so the same bits. */
        for (size_t i = 0; i < np; i++) out[i] = -3.0f;
        nn_conv2d_forward_ex(out, arg, in, w, b, &s, &ep, ws);
        CHECK_MSG(max_abs_diff(out, ref, np) == 0.0, "case %d: forward differs by %g", t,
                  max_abs_diff(out, ref, np));
        if (pool) CHECK_MSG(memcmp(arg, arg_ref, np * sizeof(int32_t)) == 0, "case %d: argmax", t);

        /* Backward of the chain, per group. */
        float *g = zalloc(np), *dact = zalloc(no), *dconv = zalloc(no), *din_ref = zalloc(ni);
        float *dw0r = zalloc(nw), *dw1r = zalloc(nw), db0r[OC] = {0}, db1r[OC] = {0};
        fill(&rng, g, np, -1, 1);
        if (pool) nn_maxpool_backward(dact, g, arg_ref, N, OC, s.oh, s.ow, ph, pw);
        else memcpy(dact, g, no * sizeof(float));
        if (ep.relu) nn_relu_backward(dconv, dact, act, no);
        else memcpy(dconv, dact, no * sizeof(float));
        lethe_groups g2;
        two_groups(&g2, N0, N1);
        float *dws_r[2] = {dw0r, dw1r}, *dbs_r[2] = {db0r, db1r};
        nn_conv2d_backward(din_ref, dws_r, dbs_r, dconv, in, w, &s, &g2, ws);

        float *din = zalloc(ni), *dw0 = zalloc(nw), *dw1 = zalloc(nw), db0[OC] = {0}, db1[OC] = {0};
        for (size_t i = 0; i < ni; i++) din[i] = 1e6f;   /* overwritten, not added to */
        float *dws[2] = {dw0, dw1}, *dbs[2] = {db0, db1};
        nn_conv2d_backward_ex(din, 0, dws, dbs, g, out, arg, in, w, &s, &ep, &g2, ws);
        CHECK_MSG(rel_diff(din, din_ref, ni) < 1e-6, "case %d: din %g", t,
                  rel_diff(din, din_ref, ni));
        CHECK_MSG(rel_diff(dw0, dw0r, nw) < 1e-5, "case %d: dw0", t);
        CHECK_MSG(rel_diff(dw1, dw1r, nw) < 1e-5, "case %d: dw1", t);
        CHECK_MSG(rel_diff(db0, db0r, OC) < 1e-5 && rel_diff(db1, db1r, OC) < 1e-5,
                  "case %d: db", t);
        CHECK(max_abs_diff(dw0, dw1, nw) > 1e-3);   /* the groups really differ */
        /* din_add: a second backward adds the same again. */
        nn_conv2d_backward_ex(din, 1, NULL, NULL, g, out, arg, in, w, &s, &ep, &g2, ws);
        for (size_t i = 0; i < ni; i++) din_ref[i] *= 2.0f;
        CHECK_MSG(rel_diff(din, din_ref, ni) < 1e-6, "case %d: din added", t);

        free(in); free(w); free(b); free(ws); free(conv); free(act); free(ref); free(out);
        free(arg_ref); free(arg); free(g); free(dact); free(dconv); free(din_ref);
        free(dw0r); free(dw1r); free(din); free(dw0); free(dw1);
    }
}

/* ------------------------------------------ linear, batch norm, sum, gap */

TEST_KSETS(linear_relu_and_overwrite_match_chain)
{
    enum { N = 37, IN = 300, OUT = 24 };
    lethe_rng rng;
    lethe_rng_seed(&rng, 41);
    float *in = zalloc(N * IN), *w = zalloc(OUT * IN), *b = zalloc(OUT), *ref = zalloc(N * OUT);
    float *out = zalloc(N * OUT), *g = zalloc(N * OUT);
    float *din = zalloc(N * IN), *dref = zalloc(N * IN);
    fill(&rng, in, N * IN, -1, 1);
    fill(&rng, w, OUT * IN, -0.2f, 0.2f);
    fill(&rng, b, OUT, -1, 1);
    fill(&rng, g, N * OUT, -1, 1);
    nn_linear_forward(ref, in, w, b, N, IN, OUT);
    nn_relu_forward(ref, ref, N * OUT);
    nn_linear_forward_ex(out, in, w, b, N, IN, OUT, 1);
    CHECK(max_abs_diff(out, ref, N * OUT) == 0.0);
    int zeros = 0;
    for (int i = 0; i < N * OUT; i++) zeros += out[i] == 0.0f;
    CHECK(zeros > 0 && zeros < N * OUT);
    lethe_groups g1;
    lethe_groups_one(&g1, N);
    nn_linear_backward(dref, NULL, NULL, g, in, w, &g1, IN, OUT);
    for (int i = 0; i < N * IN; i++) din[i] = 1e6f;
    nn_linear_backward_ex(din, 0, NULL, NULL, g, in, w, &g1, IN, OUT);
    CHECK(rel_diff(din, dref, N * IN) < 1e-6);
    /* The model's mask for a fused ReLU. */
    float m[4] = {1, -2, 3, 4}, o[4] = {0.5f, 0.0f, -1.0f, 2.0f};
    nn_relu_mask(m, o, 4);
    CHECK(m[0] == 1 && m[1] == 0 && m[2] == 0 && m[3] == 4);
    free(in); free(w); free(b); free(ref); free(out); free(g); free(din); free(dref);
}

/* _ex batch norm (μ saved, xhat recomputed, ReLU fused, din overwritten)
 * against the xhat form followed by nn_relu_*, two groups, every mode. */
TEST_KSETS(batchnorm_ex_matches_xhat_form)
{
    enum { N0 = 3, N1 = 4, N = 7, C = 5, HW = 13 };
    const size_t n = (size_t)N * C * HW;
    lethe_rng rng;
    lethe_rng_seed(&rng, 42);
    float *in = zalloc(n), *g = zalloc(n), *xhat = zalloc(n), *ref = zalloc(n), *act = zalloc(n);
    float *out = zalloc(n), *dact = zalloc(n), *dref = zalloc(n), *din = zalloc(n);
    float gamma[C], beta[C], istd_r[2 * C], istd[LETHE_MAX_GROUPS * C], mean[LETHE_MAX_GROUPS * C];
    fill(&rng, in, n, -2, 3);
    fill(&rng, g, n, -1, 1);
    fill(&rng, gamma, C, 0.5f, 1.5f);
    fill(&rng, beta, C, -0.5f, 0.5f);
    lethe_groups g2;
    two_groups(&g2, N0, N1);
    static const lethe_bn_mode modes[] = {LETHE_BN_TRAIN, LETHE_BN_BATCH, LETHE_BN_EVAL};
    for (int mi = 0; mi < 3; mi++) {
        for (int relu = 0; relu < 2; relu++) {
            float rm_r[C], rv_r[C], rm[C], rv[C];
            for (int c = 0; c < C; c++) {
                rm_r[c] = rm[c] = 0.1f * (float)c;
                rv_r[c] = rv[c] = 1.0f + 0.2f * (float)c;
            }
            nn_batchnorm_forward(ref, xhat, istd_r, in, gamma, beta, rm_r, rv_r, N, C, HW, &g2,
                                 modes[mi], 0.1f, 1e-5f);
            if (relu) nn_relu_forward(act, ref, n);
            else memcpy(act, ref, n * sizeof(float));
            nn_batchnorm_forward_ex(out, mean, istd, in, gamma, beta, rm, rv, N, C, HW, &g2,
                                    modes[mi], 0.1f, 1e-5f, relu, NULL);
            CHECK_MSG(max_abs_diff(out, act, n) == 0.0, "mode %d relu %d: forward", mi, relu);
            CHECK(max_abs_diff(rm, rm_r, C) == 0.0 && max_abs_diff(rv, rv_r, C) == 0.0);
            /* With the planes' statistics given (as a conv's epilogue
             * computes them): the same output and running averages. */
            {
                float *pst = zalloc((size_t)N * C * 3), *out2 = zalloc(n), rm2[C], rv2[C];
                for (int pl = 0; pl < N * C; pl++)
                    nn_plane_stats(in + (size_t)pl * HW, HW, pst + (size_t)pl * 3);
                for (int c = 0; c < C; c++) {
                    rm2[c] = 0.1f * (float)c;
                    rv2[c] = 1.0f + 0.2f * (float)c;
                }
                nn_batchnorm_forward_ex(out2, mean, istd, in, gamma, beta, rm2, rv2, N, C, HW,
                                        &g2, modes[mi], 0.1f, 1e-5f, relu, pst);
                CHECK_MSG(max_abs_diff(out2, act, n) == 0.0, "mode %d relu %d: with stats", mi,
                          relu);
                CHECK(max_abs_diff(rm2, rm_r, C) == 0.0 && max_abs_diff(rv2, rv_r, C) == 0.0);
                free(pst);
                free(out2);
            }

            float dg_r[2][C], dbt_r[2][C], dg[2][C], dbt[2][C];
            memset(dg_r, 0, sizeof dg_r); memset(dbt_r, 0, sizeof dbt_r);
            memset(dg, 0, sizeof dg); memset(dbt, 0, sizeof dbt);
            memset(dact, 0, n * sizeof(float));
            memset(dref, 0, n * sizeof(float));
            if (relu) nn_relu_backward(dact, g, act, n);
            else memcpy(dact, g, n * sizeof(float));
            float *pg_r[2] = {dg_r[0], dg_r[1]}, *pb_r[2] = {dbt_r[0], dbt_r[1]};
            nn_batchnorm_backward(dref, pg_r, pb_r, dact, xhat, istd_r, gamma, N, C, HW, &g2,
                                  modes[mi]);
            for (size_t i = 0; i < n; i++) din[i] = 1e6f;
            float *pg[2] = {dg[0], dg[1]}, *pb[2] = {dbt[0], dbt[1]};
            nn_batchnorm_backward_ex(din, 0, pg, pb, g, relu, in, mean, istd, gamma, beta, N, C,
                                     HW, &g2, modes[mi]);
            CHECK_MSG(rel_diff(din, dref, n) < 1e-5, "mode %d relu %d: din %g", mi, relu,
                      rel_diff(din, dref, n));
            CHECK_MSG(rel_diff(dg[0], dg_r[0], C) < 1e-5 && rel_diff(dg[1], dg_r[1], C) < 1e-5,
                      "mode %d relu %d: dgamma", mi, relu);
            CHECK_MSG(rel_diff(dbt[0], dbt_r[0], C) < 1e-5 && rel_diff(dbt[1], dbt_r[1], C) < 1e-5,
                      "mode %d relu %d: dbeta", mi, relu);
        }
    }
    free(in); free(g); free(xhat); free(ref); free(act); free(out); free(dact); free(dref);
    free(din);
}

TEST_KSETS(add_and_gap_overwrite_or_add)
{
    float a[4] = {1, -2, 0.5f, -0.25f}, b[4] = {0.5f, 1, -1, 0.5f}, o[4], d[4] = {1, 2, 3, 4};
    nn_add_forward_ex(o, a, b, 4, 1);
    CHECK(o[0] == 1.5f && o[1] == 0.0f && o[2] == 0.0f && o[3] == 0.25f);
    float da[4] = {9, 9, 9, 9}, db[4] = {1, 1, 1, 1};
    nn_add_backward_ex(da, 0, db, 1, d, o, 4);   /* d masked in place by o > 0 */
    CHECK(da[0] == 1 && da[1] == 0 && da[2] == 0 && da[3] == 4);
    CHECK(db[0] == 2 && db[1] == 1 && db[2] == 1 && db[3] == 5);
    float gin[2] = {2, 4}, gd[6] = {7, 7, 7, 7, 7, 7};
    nn_gap_backward_ex(gd, 0, gin, 1, 2, 3);
    CHECK_NEAR(gd[0], 2.0 / 3, 1e-7);
    CHECK_NEAR(gd[5], 4.0 / 3, 1e-7);
    nn_gap_backward_ex(gd, 1, gin, 1, 2, 3);
    CHECK_NEAR(gd[5], 8.0 / 3, 1e-6);
}

/* ---------------------------------------------------------- the graph */

/* Undo nn_fuse, so that every ReLU and pool runs as its own node and every
 * batch norm's backward makes its own input gradient. */
static void unfuse(lethe_model *m)
{
    for (int i = 0; i < m->nnodes; i++) {
        m->nodes[i].bn_defer = 0;
        m->nodes[i].bn_to_conv = 0;
        m->nodes[i].bn_to_add = 0;
        m->nodes[i].relu = 0;
        m->nodes[i].pool = -1;
        m->nodes[i].fold = -1;
        m->nodes[i].head = i;
    }
}

static void graph_case(const char *arch, int hw)
{
    enum { N0 = 3, N1 = 5, N = 8 };
    lethe_model *a, *b;
    CHECK_OK(lethe_model_create(&a, arch, 1, hw, hw, 10));
    CHECK_OK(lethe_model_create(&b, arch, 1, hw, hw, 10));
    if (!a || !b) return;
    int folded = 0;
    for (int i = 0; i < a->nnodes; i++) folded += a->nodes[i].fold >= 0;
    CHECK_MSG(folded > 0, "%s: nothing fused", arch);
    int deferred = 0, to_conv = 0, to_add = 0, bns = 0;
    for (int i = 0; i < a->nnodes; i++) {
        deferred += a->nodes[i].bn_defer;
        to_conv += a->nodes[i].bn_to_conv;
        to_add += a->nodes[i].bn_to_add;
        bns += a->nodes[i].op == NN_BN;
    }
    CHECK_MSG(deferred == bns, "%s: %d of %d batch norms leave their last pass to the conv",
              arch, deferred, bns);
    /* resnet8: bn1 feeds a conv and a sum; each of the three blocks' bn1 only its conv2. */
    CHECK_MSG(!strcmp(arch, "resnet8") ? to_conv == 3 : to_conv == 0,
              "%s: %d batch norms left to the conv after", arch, to_conv);
    /* resnet8: each block's bn2 and the two shortcuts' batch norms feed only a sum. */
    CHECK_MSG(!strcmp(arch, "resnet8") ? to_add == 5 : to_add == 0,
              "%s: %d batch norms left to the sum after", arch, to_add);
    unfuse(b);
    CHECK_OK(lethe_model_reserve(a, N));
    CHECK_OK(lethe_model_reserve(b, N));
    /* A batch norm left to the sum has no output buffer at all. */
    for (int i = 0; i < a->nnodes; i++)
        if (a->nodes[i].bn_to_add)
            CHECK_MSG(a->nodes[i].out == NULL, "%s: node %d keeps an unused output buffer",
                      arch, i);
    lethe_rng rng;
    lethe_rng_seed(&rng, 43);
    lethe_model_init(a, &rng);
    size_t n;
    float *ta = lethe_model_theta(a, &n);
    fill(&rng, ta, n, -0.3f, 0.3f);   /* BN γ, β away from 1, 0 too */
    CHECK_OK(lethe_model_copy(b, a));
    float *x = zalloc((size_t)N * hw * hw), *dl = zalloc((size_t)N * 10);
    fill(&rng, x, (size_t)N * hw * hw, -1, 2);
    fill(&rng, dl, (size_t)N * 10, -1, 1);
    lethe_groups g;
    two_groups(&g, N0, N1);
    static const lethe_bn_mode modes[] = {LETHE_BN_TRAIN, LETHE_BN_EVAL};
    for (int mi = 0; mi < 2; mi++) {
        const float *la, *lb;
        CHECK_OK(lethe_model_forward(a, x, N, &g, modes[mi], &la));
        CHECK_OK(lethe_model_forward(b, x, N, &g, modes[mi], &lb));
        CHECK_MSG(max_abs_diff(la, lb, (size_t)N * 10) == 0.0, "%s mode %d: logits differ by %g",
                  arch, mi, max_abs_diff(la, lb, (size_t)N * 10));
        float *ga0 = zalloc(n), *ga1 = zalloc(n), *gb0 = zalloc(n), *gb1 = zalloc(n);
        float *gra[2] = {ga0, ga1}, *grb[2] = {gb0, gb1};
        CHECK_OK(lethe_model_backward(a, dl, &g, gra));
        CHECK_OK(lethe_model_backward(b, dl, &g, grb));
        CHECK_MSG(rel_diff(ga0, gb0, n) < 1e-5 && rel_diff(ga1, gb1, n) < 1e-5,
                  "%s mode %d: gradients differ by %g, %g", arch, mi, rel_diff(ga0, gb0, n),
                  rel_diff(ga1, gb1, n));
        CHECK(max_abs_diff(ga0, ga1, n) > 1e-4);
        /* A second backward of the same forward gives the same bits (no
         * stale buffers): the diagnostics' observing backward relies on it. */
        float *fa0 = zalloc(n), *fa1 = zalloc(n);
        memcpy(fa0, ga0, n * sizeof(float));
        memcpy(fa1, ga1, n * sizeof(float));
        memset(ga0, 0, n * sizeof(float));
        memset(ga1, 0, n * sizeof(float));
        CHECK_OK(lethe_model_backward(a, dl, &g, gra));
        CHECK_MSG(memcmp(ga0, fa0, n * sizeof(float)) == 0 &&
                  memcmp(ga1, fa1, n * sizeof(float)) == 0,
                  "%s mode %d: a second backward differs", arch, mi);
        free(fa0); free(fa1);
        free(ga0); free(ga1); free(gb0); free(gb1);
    }
    free(x);
    free(dl);
    lethe_model_free(a);
    lethe_model_free(b);
}

TEST_KSETS(model_fused_graph_matches_unfused_cnn) { graph_case("cnn", 28); }
TEST_KSETS(model_fused_graph_matches_unfused_resnet8) { graph_case("resnet8", 12); }
TEST_KSETS(model_fused_graph_matches_unfused_mlp) { graph_case("mlp", 10); }
