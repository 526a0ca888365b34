/* Layer kernels against central finite differences (in double, of the
 * scalar L = Σ r·out for a fixed random r, so backward runs with dout = r),
 * against naive reference loops, and grouped weight gradients against
 * separate per-group calls (ALGORITHM.md §2.1). */
#include "test.h"
#include "gradcheck.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "lethe.h"
#include "nn/layers.h"

/* ------------------------------------------------------------- helpers */

/* Uniform in ±[0.05, 1]: at least 0.05 away from the ReLU kink. */
static void fill_away0(lethe_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v;
        do v = 2.0f * lethe_rng_uniform(r) - 1.0f; while (fabsf(v) < 0.05f);
        x[i] = v;
    }
}

static float *zalloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static double max_rel_diff(const float *a, const double *ref, size_t n)
{
    double err = 0.0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - ref[i]);
        if (!(d <= err)) err = d;
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    return err / scale;
}

/* -------------------------------------------------------------- linear */

typedef struct { float *in, *w, *b, *out, *r; int n, in_f, out_f; } linear_ctx;

static double linear_obj(void *p)
{
    linear_ctx *c = p;
    nn_linear_forward(c->out, c->in, c->w, c->b, c->n, c->in_f, c->out_f);
    return gc_dot(c->r, c->out, (size_t)c->n * c->out_f);
}

TEST_KSETS(linear_forward_matches_loops)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 1);
    int n = 3, in_f = 5, out_f = 4;
    float in[15], w[20], b[4], out[12];
    gc_fill(&rng, in, 15, -1, 1);
    gc_fill(&rng, w, 20, -1, 1);
    gc_fill(&rng, b, 4, -1, 1);
    nn_linear_forward(out, in, w, b, n, in_f, out_f);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out_f; o++) {
            double s = b[o];
            for (int j = 0; j < in_f; j++) s += (double)in[i * in_f + j] * w[o * in_f + j];
            CHECK_NEAR(out[i * out_f + o], s, 1e-5);
        }
    nn_linear_forward(out, in, w, NULL, n, in_f, out_f);
    double s = 0.0;
    for (int j = 0; j < in_f; j++) s += (double)in[in_f + j] * w[2 * in_f + j];
    CHECK_NEAR(out[out_f + 2], s, 1e-5);
}

TEST_KSETS(linear_gradients_finite_differences)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 2);
    enum { N = 5, IN = 7, OUT = 4 };
    float in[N * IN], w[OUT * IN], b[OUT], out[N * OUT], r[N * OUT];
    float din[N * IN] = {0}, dw[OUT * IN] = {0}, db[OUT] = {0};
    gc_fill(&rng, in, N * IN, -1, 1);
    gc_fill(&rng, w, OUT * IN, -1, 1);
    gc_fill(&rng, b, OUT, -1, 1);
    gc_fill(&rng, r, N * OUT, -1, 1);
    linear_ctx c = {in, w, b, out, r, N, IN, OUT};
    /* Two groups into one buffer: the sum is the whole-batch gradient. */
    lethe_groups g;
    gc_groups(&g, 2, 3);
    float *dws[2] = {dw, dw}, *dbs[2] = {db, db};
    nn_linear_backward(din, dws, dbs, r, in, w, &g, IN, OUT);
    CHECK_FD(in, N * IN, din, linear_obj, &c, 1e-2f, 1e-3);
    CHECK_FD(w, OUT * IN, dw, linear_obj, &c, 1e-2f, 1e-3);
    CHECK_FD(b, OUT, db, linear_obj, &c, 1e-2f, 1e-3);

    /* Backward accumulates: a second call doubles everything. */
    float din2[N * IN], dw2[OUT * IN];
    memcpy(din2, din, sizeof din);
    memcpy(dw2, dw, sizeof dw);
    nn_linear_backward(din, dws, dbs, r, in, w, &g, IN, OUT);
    for (int i = 0; i < N * IN; i++) CHECK_NEAR(din[i], 2 * din2[i], 1e-5);
    for (int i = 0; i < OUT * IN; i++) CHECK_NEAR(dw[i], 2 * dw2[i], 1e-5);
}

TEST_KSETS(linear_grouped_weight_gradient)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 3);
    enum { N0 = 3, N1 = 5, N = 8, IN = 6, OUT = 3 };
    float in[N * IN], w[OUT * IN], dout[N * OUT];
    gc_fill(&rng, in, N * IN, -1, 1);
    gc_fill(&rng, w, OUT * IN, -1, 1);
    gc_fill(&rng, dout, N * OUT, -1, 1);
    lethe_groups g2, g1, ga, gb;
    gc_groups(&g2, N0, N1);
    gc_groups(&g1, N, 0);
    gc_groups(&ga, N0, 0);
    gc_groups(&gb, N1, 0);

    float dw0[OUT * IN] = {0}, dw1[OUT * IN] = {0}, db0[OUT] = {0}, db1[OUT] = {0};
    float *dws[2] = {dw0, dw1}, *dbs[2] = {db0, db1};
    nn_linear_backward(NULL, dws, dbs, dout, in, w, &g2, IN, OUT);

    /* Each group alone, on its own rows. */
    float ea[OUT * IN] = {0}, eb[OUT * IN] = {0}, fa[OUT] = {0}, fb[OUT] = {0};
    float *pa = ea, *pb = eb, *qa = fa, *qb = fb;
    nn_linear_backward(NULL, &pa, &qa, dout, in, w, &ga, IN, OUT);
    nn_linear_backward(NULL, &pb, &qb, dout + N0 * OUT, in + N0 * IN, w, &gb, IN, OUT);
    CHECK(gc_max_abs_diff(dw0, ea, OUT * IN) < 1e-6);
    CHECK(gc_max_abs_diff(dw1, eb, OUT * IN) < 1e-6);
    CHECK(gc_max_abs_diff(db0, fa, OUT) < 1e-6);
    CHECK(gc_max_abs_diff(db1, fb, OUT) < 1e-6);
    /* The groups are really different, so the split means something. */
    CHECK(gc_max_abs_diff(dw0, dw1, OUT * IN) > 1e-2);

    /* Sum over groups = one-group gradient. */
    float all[OUT * IN] = {0}, *pall = all;
    nn_linear_backward(NULL, &pall, NULL, dout, in, w, &g1, IN, OUT);
    float sum[OUT * IN];
    for (int i = 0; i < OUT * IN; i++) sum[i] = dw0[i] + dw1[i];
    CHECK(gc_max_abs_diff(sum, all, OUT * IN) < 1e-5);

    /* NULL skips a group. */
    float only1[OUT * IN] = {0};
    float *skip[2] = {NULL, only1};
    nn_linear_backward(NULL, skip, NULL, dout, in, w, &g2, IN, OUT);
    CHECK(gc_max_abs_diff(only1, dw1, OUT * IN) < 1e-6);
}

/* Large enough to be split over threads (with OpenBLAS on one thread):
 * forward, din and grouped dw against their definitions in double. */
TEST_KSETS(linear_threaded_matches_definition)
{
    enum { N0 = 24, N = 64, IN = 300, OUT = 20 };
    int saved = openblas_get_num_threads();
    lethe_rng rng;
    lethe_rng_seed(&rng, 16);
    float *in = zalloc(N * IN), *w = zalloc(OUT * IN), *b = zalloc(OUT), *out = zalloc(N * OUT);
    float *dout = zalloc(N * OUT), *din = zalloc(N * IN), *dw0 = zalloc(OUT * IN);
    float *dw1 = zalloc(OUT * IN);
    double *rdin = calloc(N * IN, sizeof *rdin), *rw0 = calloc(OUT * IN, sizeof *rw0);
    double *rw1 = calloc(OUT * IN, sizeof *rw1), *rout = calloc(N * OUT, sizeof *rout);
    gc_fill(&rng, in, N * IN, -1, 1);
    gc_fill(&rng, w, OUT * IN, -1, 1);
    gc_fill(&rng, b, OUT, -1, 1);
    gc_fill(&rng, dout, N * OUT, -1, 1);
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OUT; o++) {
            double acc = b[o];
            for (int j = 0; j < IN; j++) {
                acc += (double)in[i * IN + j] * w[o * IN + j];
                rdin[i * IN + j] += (double)dout[i * OUT + o] * w[o * IN + j];
                (i < N0 ? rw0 : rw1)[o * IN + j] += (double)dout[i * OUT + o] * in[i * IN + j];
            }
            rout[i * OUT + o] = acc;
        }
    lethe_groups g;
    gc_groups(&g, N0, N - N0);
    for (int bt = 1; bt <= 2; bt++) {
        openblas_set_num_threads(bt);
        nn_linear_forward(out, in, w, b, N, IN, OUT);
        CHECK_MSG(max_rel_diff(out, rout, N * OUT) < 1e-5, "%d BLAS threads: out", bt);
        memset(din, 0, sizeof(float) * N * IN);
        memset(dw0, 0, sizeof(float) * OUT * IN);
        memset(dw1, 0, sizeof(float) * OUT * IN);
        float *dws[2] = {dw0, dw1};
        nn_linear_backward(din, dws, NULL, dout, in, w, &g, IN, OUT);
        CHECK_MSG(max_rel_diff(din, rdin, N * IN) < 1e-5, "%d BLAS threads: din", bt);
        CHECK_MSG(max_rel_diff(dw0, rw0, OUT * IN) < 1e-5, "%d BLAS threads: dw0", bt);
        CHECK_MSG(max_rel_diff(dw1, rw1, OUT * IN) < 1e-5, "%d BLAS threads: dw1", bt);
    }
    openblas_set_num_threads(saved);
    free(in); free(w); free(b); free(out); free(dout); free(din); free(dw0); free(dw1);
    free(rdin); free(rw0); free(rw1); free(rout);
}

/* -------------------------------------------------------------- conv2d */

typedef struct {
    nn_conv_shape s;
    float *in, *w, *b, *out, *r, *ws;
} conv_ctx;

static double conv_obj(void *p)
{
    conv_ctx *c = p;
    nn_conv2d_forward(c->out, c->in, c->w, c->b, &c->s, c->ws);
    return gc_dot(c->r, c->out, (size_t)c->s.n * c->s.oc * c->s.oh * c->s.ow);
}


/* k, stride, pad, h, w: 3×3 same, strided, 1×1, 1×1 strided (ResNet
 * shortcut), 5×5 strided with padding, 2×2 with no padding, odd sizes. */
static const int conv_cases[][5] = {
    {3, 1, 1, 6, 5}, {3, 2, 1, 7, 6}, {1, 1, 0, 4, 5}, {1, 2, 0, 5, 4},
    {5, 2, 2, 7, 7}, {2, 1, 0, 5, 6}, {3, 3, 0, 8, 7},
};
#define NCONV ((int)(sizeof conv_cases / sizeof conv_cases[0]))

TEST_KSETS(conv2d_forward_matches_direct)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 4);
    for (int t = 0; t < NCONV; t++) {
        nn_conv_shape s;
        nn_conv_shape_set(&s, 3, 2, conv_cases[t][3], conv_cases[t][4], 4,
                          conv_cases[t][0], conv_cases[t][1], conv_cases[t][2]);
        CHECK(s.oh == (s.h + 2 * s.pad - s.kh) / s.stride + 1);
        size_t ni = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.oc * s.c * s.kh * s.kw;
        size_t no = (size_t)s.n * s.oc * s.oh * s.ow;
        float *in = zalloc(ni), *w = zalloc(nw), *b = zalloc(s.oc), *out = zalloc(no);
        float *ws = zalloc(nn_conv2d_workspace(&s));
        double *ref = calloc(no, sizeof *ref);
        gc_fill(&rng, in, ni, -1, 1);
        gc_fill(&rng, w, nw, -1, 1);
        gc_fill(&rng, b, s.oc, -1, 1);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            const float *bb = with_bias ? b : NULL;
            /* Dirty workspace and output: forward must not depend on them. */
            for (size_t i = 0; i < nn_conv2d_workspace(&s); i++) ws[i] = 1e6f;
            for (size_t i = 0; i < no; i++) out[i] = -7.0f;
            nn_conv2d_forward(out, in, w, bb, &s, ws);
            gc_conv_ref(ref, in, w, bb, &s);
            double err = 0.0;
            for (size_t i = 0; i < no; i++)
                if (fabs(out[i] - ref[i]) > err) err = fabs(out[i] - ref[i]);
            CHECK_MSG(err < 1e-5, "case %d bias %d: max error %g", t, with_bias, err);
        }
        free(in); free(w); free(b); free(out); free(ws); free(ref);
    }
}

TEST_KSETS(conv2d_gradients_finite_differences)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 5);
    for (int t = 0; t < NCONV; t++) {
        conv_ctx c;
        nn_conv_shape_set(&c.s, 2, 3, conv_cases[t][3], conv_cases[t][4], 2,
                          conv_cases[t][0], conv_cases[t][1], conv_cases[t][2]);
        const nn_conv_shape *s = &c.s;
        size_t ni = (size_t)s->n * s->c * s->h * s->w, nw = (size_t)s->oc * s->c * s->kh * s->kw;
        size_t no = (size_t)s->n * s->oc * s->oh * s->ow;
        c.in = zalloc(ni); c.w = zalloc(nw); c.b = zalloc(s->oc);
        c.out = zalloc(no); c.r = zalloc(no); c.ws = zalloc(nn_conv2d_workspace(s));
        float *din = zalloc(ni), *dw = zalloc(nw), *db = zalloc(s->oc);
        gc_fill(&rng, c.in, ni, -1, 1);
        gc_fill(&rng, c.w, nw, -1, 1);
        gc_fill(&rng, c.b, s->oc, -1, 1);
        gc_fill(&rng, c.r, no, -1, 1);
        lethe_groups g;
        gc_groups(&g, 2, 0);
        /* Run forward first: backward must not rely on what it left in ws. */
        conv_obj(&c);
        nn_conv2d_backward(din, &dw, &db, c.r, c.in, c.w, s, &g, c.ws);
        double e;
        e = gc_fd_error(c.in, ni, din, conv_obj, &c, 1e-2f);
        CHECK_MSG(e < 1e-3, "case %d: din error %g", t, e);
        e = gc_fd_error(c.w, nw, dw, conv_obj, &c, 1e-2f);
        CHECK_MSG(e < 1e-3, "case %d: dw error %g", t, e);
        e = gc_fd_error(c.b, s->oc, db, conv_obj, &c, 1e-2f);
        CHECK_MSG(e < 1e-3, "case %d: db error %g", t, e);
        free(c.in); free(c.w); free(c.b); free(c.out); free(c.r); free(c.ws);
        free(din); free(dw); free(db);
    }
}

/* Grouped conv gradients against per-group calls. With OpenBLAS on one
 * thread the kernel splits chunks over OpenMP threads and reduces private
 * partials; with several it runs one chunk loop: check both. N1 = 9 gives
 * the second group several chunks. */
static void conv_grouped_check(int blas_threads)
{
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(blas_threads);
    lethe_rng rng;
    lethe_rng_seed(&rng, 6);
    enum { N0 = 2, N1 = 9, N = 11 };
    nn_conv_shape s, sa, sb;
    nn_conv_shape_set(&s, N, 3, 6, 6, 4, 3, 2, 1);
    nn_conv_shape_set(&sa, N0, 3, 6, 6, 4, 3, 2, 1);
    nn_conv_shape_set(&sb, N1, 3, 6, 6, 4, 3, 2, 1);
    size_t plane_in = (size_t)s.c * s.h * s.w, plane_out = (size_t)s.oc * s.oh * s.ow;
    size_t nw = (size_t)s.oc * s.c * s.kh * s.kw;
    float *in = zalloc(N * plane_in), *w = zalloc(nw), *dout = zalloc(N * plane_out);
    float *ws = zalloc(nn_conv2d_workspace(&s));
    gc_fill(&rng, in, N * plane_in, -1, 1);
    gc_fill(&rng, w, nw, -1, 1);
    gc_fill(&rng, dout, N * plane_out, -1, 1);
    lethe_groups g2, g1, ga, gb;
    gc_groups(&g2, N0, N1);
    gc_groups(&g1, N, 0);
    gc_groups(&ga, N0, 0);
    gc_groups(&gb, N1, 0);

    float *dw0 = zalloc(nw), *dw1 = zalloc(nw), db0[4] = {0}, db1[4] = {0};
    float *din2 = zalloc(N * plane_in);
    float *dws[2] = {dw0, dw1}, *dbs[2] = {db0, db1};
    nn_conv2d_backward(din2, dws, dbs, dout, in, w, &s, &g2, ws);

    float *ea = zalloc(nw), *eb = zalloc(nw), fa[4] = {0}, fb[4] = {0};
    float *din_a = zalloc(N * plane_in);
    float *pa = ea, *pb = eb, *qa = fa, *qb = fb;
    nn_conv2d_backward(din_a, &pa, &qa, dout, in, w, &sa, &ga, ws);
    nn_conv2d_backward(din_a + N0 * plane_in, &pb, &qb, dout + N0 * plane_out,
                       in + N0 * plane_in, w, &sb, &gb, ws);
    CHECK(gc_max_abs_diff(dw0, ea, nw) < 1e-5);
    CHECK(gc_max_abs_diff(dw1, eb, nw) < 1e-5);
    CHECK(gc_max_abs_diff(db0, fa, 4) < 1e-5);
    CHECK(gc_max_abs_diff(db1, fb, 4) < 1e-5);
    CHECK(gc_max_abs_diff(dw0, dw1, nw) > 1e-2);
    /* Input gradients are per sample: the same either way. */
    CHECK(gc_max_abs_diff(din2, din_a, N * plane_in) < 1e-5);

    /* Sum over groups = one-group gradient, also when both alias one buffer. */
    float *all = zalloc(nw), *alias = zalloc(nw), *sum = zalloc(nw);
    float *pall = all, *al[2] = {alias, alias};
    nn_conv2d_backward(NULL, &pall, NULL, dout, in, w, &s, &g1, ws);
    nn_conv2d_backward(NULL, al, NULL, dout, in, w, &s, &g2, ws);
    for (size_t i = 0; i < nw; i++) sum[i] = dw0[i] + dw1[i];
    CHECK(gc_max_abs_diff(sum, all, nw) < 1e-4);
    CHECK(gc_max_abs_diff(alias, all, nw) < 1e-4);

    /* NULL skips a group; a NULL din skips col2im but not dw. */
    float *only1 = zalloc(nw), *skip[2] = {NULL, only1};
    nn_conv2d_backward(NULL, skip, NULL, dout, in, w, &s, &g2, ws);
    CHECK(gc_max_abs_diff(only1, dw1, nw) < 1e-6);

    free(in); free(w); free(dout); free(ws); free(dw0); free(dw1); free(din2);
    free(ea); free(eb); free(din_a); free(all); free(alias); free(sum); free(only1);
    openblas_set_num_threads(saved);
}

TEST_KSETS(conv2d_grouped_weight_gradient)
{
    conv_grouped_check(1);
    conv_grouped_check(2);
}

/* Larger planes, so that chunks hold one sample (32 channels, 32×32) or a
 * few (8 channels, 26×26): forward and grouped backward by definition,
 * with OpenBLAS on one and on two threads. */
TEST_KSETS(conv2d_chunks_match_definition)
{
    static const int cases[][5] = {{32, 32, 3, 1, 1}, {8, 26, 3, 2, 1}, {8, 26, 1, 1, 0}};
    enum { N0 = 4, N1 = 7, N = 11 };
    int saved = openblas_get_num_threads();
    lethe_rng rng;
    lethe_rng_seed(&rng, 15);
    for (int t = 0; t < 3; t++) {
        nn_conv_shape s;
        nn_conv_shape_set(&s, N, cases[t][0], cases[t][1], cases[t][1], 4, cases[t][2],
                          cases[t][3], cases[t][4]);
        size_t ni = (size_t)N * s.c * s.h * s.w, nw = (size_t)s.oc * s.c * s.kh * s.kw;
        size_t no = (size_t)N * s.oc * s.oh * s.ow;
        float *in = zalloc(ni), *w = zalloc(nw), *b = zalloc(s.oc), *out = zalloc(no);
        float *dout = zalloc(no), *din = zalloc(ni), *dw0 = zalloc(nw), *dw1 = zalloc(nw);
        float db0[4], db1[4];
        float *ws = zalloc(nn_conv2d_workspace(&s));
        double *ref = calloc(no, sizeof *ref), *rdin = calloc(ni, sizeof *rdin);
        double *rw0 = calloc(nw, sizeof *rw0), *rw1 = calloc(nw, sizeof *rw1);
        double rb0[4] = {0}, rb1[4] = {0};
        gc_fill(&rng, in, ni, -1, 1);
        gc_fill(&rng, w, nw, -1, 1);
        gc_fill(&rng, b, s.oc, -1, 1);
        gc_fill(&rng, dout, no, -1, 1);
        gc_conv_ref(ref, in, w, b, &s);
        gc_conv_ref_backward(rdin, rw0, rb0, dout, in, w, &s, 0, N0);
        gc_conv_ref_backward(rdin, rw1, rb1, dout, in, w, &s, N0, N);
        lethe_groups g;
        gc_groups(&g, N0, N1);
        for (int bt = 1; bt <= 2; bt++) {
            openblas_set_num_threads(bt);
            nn_conv2d_forward(out, in, w, b, &s, ws);
            double e = 0.0;
            for (size_t i = 0; i < no; i++)
                if (fabs(out[i] - ref[i]) > e) e = fabs(out[i] - ref[i]);
            CHECK_MSG(e < 1e-4, "case %d, %d BLAS threads: forward error %g", t, bt, e);
            memset(din, 0, ni * sizeof *din);
            memset(dw0, 0, nw * sizeof *dw0);
            memset(dw1, 0, nw * sizeof *dw1);
            memset(db0, 0, sizeof db0);
            memset(db1, 0, sizeof db1);
            float *dws[2] = {dw0, dw1}, *dbs[2] = {db0, db1};
            nn_conv2d_backward(din, dws, dbs, dout, in, w, &s, &g, ws);
            CHECK_MSG(max_rel_diff(din, rdin, ni) < 1e-5, "case %d, %d threads: din", t, bt);
            CHECK_MSG(max_rel_diff(dw0, rw0, nw) < 1e-5, "case %d, %d threads: dw0", t, bt);
            CHECK_MSG(max_rel_diff(dw1, rw1, nw) < 1e-5, "case %d, %d threads: dw1", t, bt);
            CHECK_MSG(max_rel_diff(db0, rb0, 4) < 1e-5 && max_rel_diff(db1, rb1, 4) < 1e-5,
                      "case %d, %d threads: db", t, bt);
        }
        free(in); free(w); free(b); free(out); free(dout); free(din); free(dw0); free(dw1);
        free(ws); free(ref); free(rdin); free(rw0); free(rw1);
    }
    openblas_set_num_threads(saved);
}

/* ------------------------------------------------------------- maxpool */

typedef struct { float *in, *out, *r; int32_t *arg; int n, c, h, w, k, s, oh, ow; } pool_ctx;

static double pool_obj(void *p)
{
    pool_ctx *c = p;
    nn_maxpool_forward(c->out, c->arg, c->in, c->n, c->c, c->h, c->w, c->k, c->s);
    return gc_dot(c->r, c->out, (size_t)c->n * c->c * c->oh * c->ow);
}

TEST_KSETS(maxpool_gradients_finite_differences)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 7);
    static const int cases[][4] = {{2, 2, 6, 6}, {3, 2, 7, 6}, {3, 1, 5, 5}, {2, 2, 5, 7}};
    for (int t = 0; t < 4; t++) {
        pool_ctx c = {0};
        c.n = 2; c.c = 3; c.k = cases[t][0]; c.s = cases[t][1];
        c.h = cases[t][2]; c.w = cases[t][3];
        c.oh = (c.h - c.k) / c.s + 1;
        c.ow = (c.w - c.k) / c.s + 1;
        size_t ni = (size_t)c.n * c.c * c.h * c.w, no = (size_t)c.n * c.c * c.oh * c.ow;
        c.in = zalloc(ni); c.out = zalloc(no); c.r = zalloc(no);
        c.arg = calloc(no, sizeof *c.arg);
        float *din = zalloc(ni);
        /* Distinct values 0.1 apart, shuffled: no window is near a tie. */
        int32_t *perm = calloc(ni, sizeof *perm);
        for (size_t i = 0; i < ni; i++) perm[i] = (int32_t)i;
        lethe_rng_shuffle(&rng, perm, ni);
        for (size_t i = 0; i < ni; i++) c.in[i] = 0.1f * (float)perm[i] - 3.0f;
        gc_fill(&rng, c.r, no, -1, 1);
        pool_obj(&c);
        /* Forward picks the window maximum. */
        for (int oy = 0; oy < c.oh; oy++)
            for (int ox = 0; ox < c.ow; ox++) {
                float m = -1e30f;
                for (int a = 0; a < c.k; a++)
                    for (int b = 0; b < c.k; b++) {
                        float v = c.in[(oy * c.s + a) * c.w + ox * c.s + b];
                        if (v > m) m = v;
                    }
                CHECK(c.out[oy * c.ow + ox] == m);
                CHECK(c.in[c.arg[oy * c.ow + ox]] == m);
            }
        nn_maxpool_backward(din, c.r, c.arg, c.n, c.c, c.h, c.w, c.oh, c.ow);
        double e = gc_fd_error(c.in, ni, din, pool_obj, &c, 1e-2f);
        CHECK_MSG(e < 1e-3, "case %d: din error %g", t, e);
        free(c.in); free(c.out); free(c.r); free(c.arg); free(din); free(perm);
    }
}

TEST_KSETS(maxpool_ties_go_to_first)
{
    float in[16], out[4];
    int32_t arg[4];
    for (int i = 0; i < 16; i++) in[i] = 1.0f;
    nn_maxpool_forward(out, arg, in, 1, 1, 4, 4, 2, 2);
    CHECK(arg[0] == 0 && arg[1] == 2 && arg[2] == 8 && arg[3] == 10);
    in[5] = 2.0f;
    nn_maxpool_forward(out, arg, in, 1, 1, 4, 4, 2, 2);
    CHECK(arg[0] == 5 && out[0] == 2.0f);
}

/* ------------------------------------------------ gap, relu, add, mse */

typedef struct { float *in, *in2, *out, *r; int n, c, hw; } ew_ctx;

static double gap_obj(void *p)
{
    ew_ctx *c = p;
    nn_gap_forward(c->out, c->in, c->n, c->c, c->hw);
    return gc_dot(c->r, c->out, (size_t)c->n * c->c);
}

static double relu_obj(void *p)
{
    ew_ctx *c = p;
    nn_relu_forward(c->out, c->in, (size_t)c->n);
    return gc_dot(c->r, c->out, (size_t)c->n);
}

static double add_obj(void *p)
{
    ew_ctx *c = p;
    nn_add_forward(c->out, c->in, c->in2, (size_t)c->n);
    return gc_dot(c->r, c->out, (size_t)c->n);
}

TEST_KSETS(gap_gradients_finite_differences)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 8);
    enum { N = 2, C = 3, HW = 5 };
    float in[N * C * HW], out[N * C], r[N * C], din[N * C * HW] = {0};
    gc_fill(&rng, in, N * C * HW, -1, 1);
    gc_fill(&rng, r, N * C, -1, 1);
    ew_ctx c = {in, NULL, out, r, N, C, HW};
    gap_obj(&c);
    double s = 0.0;
    for (int j = 0; j < HW; j++) s += in[HW + j];
    CHECK_NEAR(out[1], s / HW, 1e-6);
    nn_gap_backward(din, r, N, C, HW);
    CHECK_FD(in, N * C * HW, din, gap_obj, &c, 1e-2f, 1e-3);
}

TEST_KSETS(relu_gradients_finite_differences)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 9);
    enum { N = 40 };
    float in[N], out[N], r[N], din[N] = {0}, copy[N];
    fill_away0(&rng, in, N);
    gc_fill(&rng, r, N, -1, 1);
    ew_ctx c = {in, NULL, out, r, N, 0, 0};
    relu_obj(&c);
    int pos = 0;
    for (int i = 0; i < N; i++) {
        CHECK(out[i] == (in[i] > 0 ? in[i] : 0.0f));
        pos += in[i] > 0;
    }
    CHECK(pos > 5 && pos < N - 5);   /* both sides of the kink are exercised */
    nn_relu_backward(din, r, out, N);
    CHECK_FD(in, N, din, relu_obj, &c, 1e-2f, 1e-3);
    /* In place. */
    relu_obj(&c);
    memcpy(copy, in, sizeof in);
    nn_relu_forward(copy, copy, N);
    CHECK(gc_max_abs_diff(copy, out, N) == 0.0);
}

TEST_KSETS(add_gradients_finite_differences)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 10);
    enum { N = 20 };
    float a[N], b[N], out[N], r[N], da[N] = {0}, db[N] = {0};
    gc_fill(&rng, a, N, -1, 1);
    gc_fill(&rng, b, N, -1, 1);
    gc_fill(&rng, r, N, -1, 1);
    ew_ctx c = {a, b, out, r, N, 0, 0};
    nn_add_backward(da, db, r, N);
    CHECK_FD(a, N, da, add_obj, &c, 1e-2f, 1e-3);
    CHECK_FD(b, N, db, add_obj, &c, 1e-2f, 1e-3);
    nn_add_backward(NULL, db, r, N);   /* NULL side skipped */
    CHECK_NEAR(db[3], 2 * r[3], 1e-6);
}

typedef struct { float *pred, *target, *w, *losses; int n, d; } mse_ctx;

static double mse_obj(void *p)
{
    mse_ctx *c = p;
    nn_mse(c->losses, NULL, c->pred, c->target, NULL, c->n, c->d);
    double s = 0.0;
    for (int i = 0; i < c->n; i++) s += (double)c->w[i] * c->losses[i];
    return s;
}

TEST_KSETS(mse_values_and_gradient)
{
    float pred[2] = {1, 2}, target[2] = {0, 0}, loss;
    nn_mse(&loss, NULL, pred, target, NULL, 1, 2);
    CHECK_NEAR(loss, 2.5, 1e-6);

    lethe_rng rng;
    lethe_rng_seed(&rng, 11);
    enum { N = 3, D = 4 };
    float p[N * D], t[N * D], w[N], losses[N], dp[N * D] = {0};
    gc_fill(&rng, p, N * D, -1, 1);
    gc_fill(&rng, t, N * D, -1, 1);
    gc_fill(&rng, w, N, 0.5f, 1.5f);
    mse_ctx c = {p, t, w, losses, N, D};
    nn_mse(losses, dp, p, t, w, N, D);
    CHECK_FD(p, N * D, dp, mse_obj, &c, 1e-2f, 1e-3);
}

/* ----------------------------------------------------------- batchnorm */

enum { BN_N0 = 2, BN_N1 = 4, BN_N = 6, BN_C = 3, BN_HW = 5, BN_SZ = BN_N * BN_C * BN_HW };

typedef struct {
    float *in, *gamma, *beta, *rm0, *rv0, *r;
    float out[BN_SZ], xhat[BN_SZ], istd[2 * BN_C], rm[BN_C], rv[BN_C];
    lethe_groups g;
    lethe_bn_mode mode;
} bn_ctx;

static double bn_obj(void *p)
{
    bn_ctx *c = p;
    /* Fresh running stats each call, so TRAIN's update does not drift. */
    memcpy(c->rm, c->rm0, sizeof c->rm);
    memcpy(c->rv, c->rv0, sizeof c->rv);
    nn_batchnorm_forward(c->out, c->xhat, c->istd, c->in, c->gamma, c->beta, c->rm, c->rv,
                         BN_N, BN_C, BN_HW, &c->g, c->mode, 0.1f, 1e-5f);
    return gc_dot(c->r, c->out, BN_SZ);
}

TEST_KSETS(batchnorm_gradients_finite_differences)
{
    static const lethe_bn_mode modes[3] = {LETHE_BN_TRAIN, LETHE_BN_BATCH, LETHE_BN_EVAL};
    static const char *names[3] = {"TRAIN", "BATCH", "EVAL"};
    lethe_rng rng;
    lethe_rng_seed(&rng, 12);
    float in[BN_SZ], gamma[BN_C], beta[BN_C], rm0[BN_C], rv0[BN_C], r[BN_SZ];
    gc_fill(&rng, in, BN_SZ, -2, 2);
    gc_fill(&rng, gamma, BN_C, 0.5f, 1.5f);
    gc_fill(&rng, beta, BN_C, -1, 1);
    gc_fill(&rng, rm0, BN_C, -0.5f, 0.5f);
    gc_fill(&rng, rv0, BN_C, 0.5f, 2.0f);
    gc_fill(&rng, r, BN_SZ, -1, 1);
    for (int m = 0; m < 3; m++) {
        bn_ctx c = {.in = in, .gamma = gamma, .beta = beta, .rm0 = rm0, .rv0 = rv0, .r = r};
        c.mode = modes[m];
        gc_groups(&c.g, BN_N0, BN_N1);
        bn_obj(&c);
        float din[BN_SZ] = {0}, dg[BN_C] = {0}, dbt[BN_C] = {0};
        float *dgs[2] = {dg, dg}, *dbs[2] = {dbt, dbt};
        nn_batchnorm_backward(din, dgs, dbs, r, c.xhat, c.istd, gamma, BN_N, BN_C, BN_HW,
                              &c.g, c.mode);
        double e;
        e = gc_fd_error(in, BN_SZ, din, bn_obj, &c, 1e-2f);
        CHECK_MSG(e < 2e-3, "%s: din error %g", names[m], e);
        e = gc_fd_error(gamma, BN_C, dg, bn_obj, &c, 1e-2f);
        CHECK_MSG(e < 2e-3, "%s: dgamma error %g", names[m], e);
        e = gc_fd_error(beta, BN_C, dbt, bn_obj, &c, 1e-2f);
        CHECK_MSG(e < 2e-3, "%s: dbeta error %g", names[m], e);
    }
}

TEST_KSETS(batchnorm_two_groups_equal_separate_calls)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 13);
    float in[BN_SZ], gamma[BN_C], beta[BN_C], dout[BN_SZ];
    gc_fill(&rng, in, BN_SZ, -2, 2);
    for (int i = BN_N0 * BN_C * BN_HW; i < BN_SZ; i++) in[i] = 3.0f * in[i] + 1.0f;
    gc_fill(&rng, gamma, BN_C, 0.5f, 1.5f);
    gc_fill(&rng, beta, BN_C, -1, 1);
    gc_fill(&rng, dout, BN_SZ, -1, 1);
    const size_t off = (size_t)BN_N0 * BN_C * BN_HW;
    lethe_groups g2, ga, gb;
    gc_groups(&g2, BN_N0, BN_N1);
    gc_groups(&ga, BN_N0, 0);
    gc_groups(&gb, BN_N1, 0);

    for (int mode = 0; mode < 3; mode++) {
        lethe_bn_mode md = (lethe_bn_mode)mode;
        float rm2[BN_C] = {0.1f, 0.2f, 0.3f}, rv2[BN_C] = {1, 1.5f, 2};
        float rm1[BN_C] = {0.1f, 0.2f, 0.3f}, rv1[BN_C] = {1, 1.5f, 2};
        float out2[BN_SZ], xh2[BN_SZ], is2[2 * BN_C], out1[BN_SZ], xh1[BN_SZ], is1[2 * BN_C];
        nn_batchnorm_forward(out2, xh2, is2, in, gamma, beta, rm2, rv2, BN_N, BN_C, BN_HW,
                             &g2, md, 0.1f, 1e-5f);
        nn_batchnorm_forward(out1, xh1, is1, in, gamma, beta, rm1, rv1, BN_N0, BN_C, BN_HW,
                             &ga, md, 0.1f, 1e-5f);
        nn_batchnorm_forward(out1 + off, xh1 + off, is1 + BN_C, in + off, gamma, beta, rm1,
                             rv1, BN_N1, BN_C, BN_HW, &gb, md, 0.1f, 1e-5f);
        CHECK(gc_max_abs_diff(out2, out1, BN_SZ) < 1e-6);
        CHECK(gc_max_abs_diff(xh2, xh1, BN_SZ) < 1e-6);
        CHECK(gc_max_abs_diff(is2, is1, 2 * BN_C) < 1e-6);
        CHECK(gc_max_abs_diff(rm2, rm1, BN_C) < 1e-7);
        CHECK(gc_max_abs_diff(rv2, rv1, BN_C) < 1e-7);

        float din2[BN_SZ] = {0}, din1[BN_SZ] = {0};
        float g0[BN_C] = {0}, g1[BN_C] = {0}, b0[BN_C] = {0}, b1[BN_C] = {0};
        float h0[BN_C] = {0}, h1[BN_C] = {0}, c0[BN_C] = {0}, c1[BN_C] = {0};
        float *dg[2] = {g0, g1}, *db[2] = {b0, b1}, *ph0 = h0, *ph1 = h1, *pc0 = c0, *pc1 = c1;
        nn_batchnorm_backward(din2, dg, db, dout, xh2, is2, gamma, BN_N, BN_C, BN_HW, &g2, md);
        nn_batchnorm_backward(din1, &ph0, &pc0, dout, xh1, is1, gamma, BN_N0, BN_C, BN_HW,
                              &ga, md);
        nn_batchnorm_backward(din1 + off, &ph1, &pc1, dout + off, xh1 + off, is1 + BN_C,
                              gamma, BN_N1, BN_C, BN_HW, &gb, md);
        CHECK(gc_max_abs_diff(din2, din1, BN_SZ) < 1e-6);
        CHECK(gc_max_abs_diff(g0, h0, BN_C) < 1e-6 && gc_max_abs_diff(g1, h1, BN_C) < 1e-6);
        CHECK(gc_max_abs_diff(b0, c0, BN_C) < 1e-6 && gc_max_abs_diff(b1, c1, BN_C) < 1e-6);
        CHECK(gc_max_abs_diff(g0, g1, BN_C) > 1e-3);
    }
}

TEST_KSETS(batchnorm_running_stats_by_hand)
{
    /* N = 4 in two groups of 2, C = 2, HW = 2. */
    float in[16] = {
        1, 2, 10, 20,    /* sample 0: channel 0, channel 1 */
        3, 6, 30, 40,    /* sample 1 */
        -1, 0, 5, 5,     /* sample 2 */
        1, 4, 7, 9,      /* sample 3 */
    };
    float gamma[2] = {2, 0.5f}, beta[2] = {1, -1};
    float rm[2] = {0, 0}, rv[2] = {1, 1}, out[16], xhat[16], istd[4];
    lethe_groups g;
    gc_groups(&g, 2, 2);
    const double m = 0.1, eps = 1e-5;
    double em[2] = {0, 0}, ev[2] = {1, 1};
    double mean[2][2], var[2][2];
    for (int k = 0; k < 2; k++)
        for (int ch = 0; ch < 2; ch++) {
            double v[4], s = 0, ss = 0;
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) v[i * 2 + j] = in[((2 * k + i) * 2 + ch) * 2 + j];
            for (int i = 0; i < 4; i++) s += v[i];
            s /= 4;
            for (int i = 0; i < 4; i++) ss += (v[i] - s) * (v[i] - s);
            mean[k][ch] = s;
            var[k][ch] = ss / 4;
            em[ch] = (1 - m) * em[ch] + m * s;           /* group 0, then group 1 */
            ev[ch] = (1 - m) * ev[ch] + m * ss / 3;      /* unbiased */
        }
    nn_batchnorm_forward(out, xhat, istd, in, gamma, beta, rm, rv, 4, 2, 2, &g,
                         LETHE_BN_TRAIN, (float)m, (float)eps);
    for (int ch = 0; ch < 2; ch++) {
        CHECK_NEAR(rm[ch], em[ch], 1e-5);
        CHECK_NEAR(rv[ch], ev[ch], 1e-4);
    }
    /* Sample 3, channel 1, position 1 normalised with group 1's statistics. */
    CHECK_NEAR(istd[1 * 2 + 1], 1.0 / sqrt(var[1][1] + eps), 1e-6);
    CHECK_NEAR(out[((3 * 2) + 1) * 2 + 1],
               0.5 * (9 - mean[1][1]) / sqrt(var[1][1] + eps) - 1, 1e-5);

    /* BATCH: same output, running stats untouched. */
    float rm_b[2] = {0, 0}, rv_b[2] = {1, 1}, out_b[16];
    nn_batchnorm_forward(out_b, xhat, istd, in, gamma, beta, rm_b, rv_b, 4, 2, 2, &g,
                         LETHE_BN_BATCH, (float)m, (float)eps);
    CHECK(gc_max_abs_diff(out, out_b, 16) < 1e-6);
    CHECK(rm_b[0] == 0 && rm_b[1] == 0 && rv_b[0] == 1 && rv_b[1] == 1);

    /* EVAL: the running stats just computed. */
    nn_batchnorm_forward(out_b, xhat, istd, in, gamma, beta, rm, rv, 4, 2, 2, &g,
                         LETHE_BN_EVAL, (float)m, (float)eps);
    CHECK_NEAR(out_b[2], 0.5 * (10 - em[1]) / sqrt(ev[1] + eps) - 1, 1e-5);
    CHECK_NEAR(istd[2], istd[0], 0);   /* every group gets the same istd */
    CHECK_NEAR(rm[0], em[0], 1e-5);    /* and nothing moves */
}

/* ---------------------------------------------------------------- loss */

typedef struct { lethe_loss_kind k; float *z, *w, *losses; int32_t *y; int n, c; } loss_ctx;

static double loss_obj(void *p)
{
    loss_ctx *c = p;
    lethe_loss(c->k, c->losses, NULL, c->z, c->y, NULL, c->n, c->c);
    double s = 0.0;
    for (int i = 0; i < c->n; i++) s += (double)c->w[i] * c->losses[i];
    return s;
}

TEST(loss_values_by_hand)
{
    const double e = exp(1.0);
    float z[3] = {1, 2, 3}, l;
    int32_t y = 0;
    double ce = log(e + e * e + e * e * e) - 1;
    lethe_loss(LETHE_LOSS_CE, &l, NULL, z, &y, NULL, 1, 3);
    CHECK_NEAR(l, ce, 1e-6);
    lethe_loss(LETHE_LOSS_NEG_CE, &l, NULL, z, &y, NULL, 1, 3);
    CHECK_NEAR(l, -ce, 1e-6);
    double p0 = e / (e + e * e + e * e * e);
    lethe_loss(LETHE_LOSS_NC, &l, NULL, z, &y, NULL, 1, 3);
    CHECK_NEAR(l, -log(1 - p0), 1e-6);

    /* Gradient of CE is softmax − onehot, scaled by w, accumulated. */
    float d[3] = {1, 1, 1}, w = 2;
    lethe_loss(LETHE_LOSS_CE, NULL, d, z, &y, &w, 1, 3);
    CHECK_NEAR(d[0], 1 + 2 * (p0 - 1), 1e-6);
    CHECK_NEAR(d[2], 1 + 2 * (e * e * e / (e + e * e + e * e * e)), 1e-6);

    /* Extreme logits stay finite: naive −log(1 − p_y) would be −log(0). */
    float big[3] = {50, 0, 0}, dz[3] = {0, 0, 0};
    lethe_loss(LETHE_LOSS_NC, &l, dz, big, &y, NULL, 1, 3);
    CHECK_NEAR(l, 50 + log(1 + 2 * exp(-50.0)) - log(2.0), 1e-4);
    CHECK(lethe_vec_finite(dz, 3));
    CHECK_NEAR(dz[0], 1.0, 1e-6);      /* p_y ≈ 1 */
    CHECK_NEAR(dz[1], -0.5, 1e-6);     /* p − q = 0 − 1/2 */
    float huge[3] = {1000, 0, -1000};
    int32_t y1 = 1;
    lethe_loss(LETHE_LOSS_CE, &l, NULL, huge, &y1, NULL, 1, 3);
    CHECK_NEAR(l, 1000.0, 1e-3);
}

TEST(loss_gradients_finite_differences)
{
    static const lethe_loss_kind kinds[3] = {LETHE_LOSS_CE, LETHE_LOSS_NEG_CE, LETHE_LOSS_NC};
    lethe_rng rng;
    lethe_rng_seed(&rng, 14);
    enum { N = 4, C = 5 };
    float z[N * C], w[N], losses[N];
    int32_t y[N] = {0, 3, 4, 1};
    gc_fill(&rng, z, N * C, -2, 2);
    gc_fill(&rng, w, N, 0.5f, 1.5f);
    for (int t = 0; t < 3; t++) {
        float d[N * C] = {0};
        loss_ctx c = {kinds[t], z, w, losses, y, N, C};
        lethe_loss(kinds[t], losses, d, z, y, w, N, C);
        double e = gc_fd_error(z, N * C, d, loss_obj, &c, 1e-2f);
        CHECK_MSG(e < 1e-3, "kind %d: error %g", t, e);
    }
}

TEST(correct_counts_argmax)
{
    float z[9] = {1, 3, 3,    /* tie: the first maximum (1) */
                  5, 0, 0,
                  0, 0, 2};
    int32_t y[3] = {1, 0, 1};
    CHECK(lethe_correct(z, y, 3, 3) == 2);
    y[0] = 2;
    CHECK(lethe_correct(z, y, 3, 3) == 1);
}
