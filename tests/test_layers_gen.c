/* The generation layers (group norm with fused SiLU, SiLU, ×2 upsampling,
 * channel concatenation, timestep and label embeddings, channel-broadcast
 * add): forward against direct loops or hand-computed values, backward
 * against central finite differences of L = Σ r·out (in double, for a
 * fixed random r, so dout = r), and grouped parameter gradients against the
 * one-group gradient (ALGORITHM.md §2.1). */
#include "test.h"
#include "gradcheck.h"

#include <stdlib.h>
#include <string.h>

#include "lethe.h"
#include "nn/layers.h"

/* ------------------------------------------------------------- sigmoid */

TEST(gen_sigmoid_matches_libm)
{
    double worst = 0.0;
    for (int i = -20000; i <= 20000; i++) {
        const float x = (float)i * 0.005f;    /* ±100, past the clamp */
        const double ref = 1.0 / (1.0 + exp(-(double)x));
        const double err = fabs(nn_sigmoidf(x) - ref) / (ref > 1e-30 ? ref : 1e-30);
        if (!(err <= worst)) worst = err;
    }
    CHECK_MSG(worst < 1e-6, "relative error of nn_sigmoidf %g", worst);
    CHECK(nn_sigmoidf(1e30f) == 1.0f);
    CHECK(nn_sigmoidf(-1e30f) >= 0.0f && nn_sigmoidf(-1e30f) < 1e-37f);
    CHECK(nn_sigmoidf(0.0f) == 0.5f);
}

/* ---------------------------------------------------------- group norm */

enum { GN_N0 = 2, GN_N1 = 3, GN_N = 5, GN_C = 6, GN_G = 3, GN_HW = 7,
       GN_SZ = GN_N * GN_C * GN_HW };

typedef struct {
    float *in, *gamma, *beta, *r;
    float out[GN_SZ], mean[GN_N * GN_G], istd[GN_N * GN_G];
    int silu;
} gn_ctx;

static double gn_obj(void *p)
{
    gn_ctx *c = p;
    nn_groupnorm_forward(c->out, c->mean, c->istd, c->in, c->gamma, c->beta, GN_N, GN_C, GN_HW,
                         GN_G, 1e-5f, c->silu);
    return gc_dot(c->r, c->out, GN_SZ);
}

TEST_KSETS(gen_groupnorm_forward_matches_loops)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 41);
    float in[GN_SZ], gamma[GN_C], beta[GN_C], out[GN_SZ], mean[GN_N * GN_G], istd[GN_N * GN_G];
    gc_fill(&rng, in, GN_SZ, -2, 3);
    gc_fill(&rng, gamma, GN_C, 0.5f, 1.5f);
    gc_fill(&rng, beta, GN_C, -1, 1);
    for (int silu = 0; silu <= 1; silu++) {
        nn_groupnorm_forward(out, mean, istd, in, gamma, beta, GN_N, GN_C, GN_HW, GN_G, 1e-5f,
                             silu);
        const int cpg = GN_C / GN_G;
        for (int i = 0; i < GN_N; i++)
            for (int q = 0; q < GN_G; q++) {
                double s = 0.0, ss = 0.0;
                const float *p = in + ((size_t)i * GN_C + q * cpg) * GN_HW;
                for (int j = 0; j < cpg * GN_HW; j++) s += p[j];
                double mu = s / (cpg * GN_HW);
                for (int j = 0; j < cpg * GN_HW; j++) ss += (p[j] - mu) * (p[j] - mu);
                double is = 1.0 / sqrt(ss / (cpg * GN_HW) + 1e-5);
                CHECK_NEAR(mean[i * GN_G + q], mu, 1e-6);
                CHECK_NEAR(istd[i * GN_G + q], is, 1e-5 * is);
                for (int j = 0; j < cpg * GN_HW; j++) {
                    const int ch = q * cpg + j / GN_HW;
                    double y = gamma[ch] * (p[j] - mu) * is + beta[ch];
                    if (silu) y = y / (1.0 + exp(-y));
                    CHECK_NEAR(out[(p - in) + j], y, 1e-5);
                }
            }
    }
}

TEST_KSETS(gen_groupnorm_gradients_finite_differences)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 42);
    float in[GN_SZ], gamma[GN_C], beta[GN_C], r[GN_SZ];
    gc_fill(&rng, in, GN_SZ, -2, 2);
    gc_fill(&rng, gamma, GN_C, 0.5f, 1.5f);
    gc_fill(&rng, beta, GN_C, -1, 1);
    gc_fill(&rng, r, GN_SZ, -1, 1);
    for (int silu = 0; silu <= 1; silu++) {
        gn_ctx c = {.in = in, .gamma = gamma, .beta = beta, .r = r, .silu = silu};
        gn_obj(&c);
        /* Two sample groups into one buffer; din overwritten over garbage. */
        lethe_groups g;
        gc_groups(&g, GN_N0, GN_N1);
        float din[GN_SZ], dg[GN_C] = {0}, db[GN_C] = {0};
        for (int i = 0; i < GN_SZ; i++) din[i] = 1e3f;
        float *dgs[2] = {dg, dg}, *dbs[2] = {db, db};
        nn_groupnorm_backward(din, 0, dgs, dbs, r, in, c.mean, c.istd, gamma, beta, GN_C, GN_HW,
                              GN_G, &g, silu);
        double e = gc_fd_error(in, GN_SZ, din, gn_obj, &c, 1e-2f);
        CHECK_MSG(e < 3e-3, "silu %d: din error %g", silu, e);
        e = gc_fd_error(gamma, GN_C, dg, gn_obj, &c, 1e-2f);
        CHECK_MSG(e < 3e-3, "silu %d: dgamma error %g", silu, e);
        e = gc_fd_error(beta, GN_C, db, gn_obj, &c, 1e-2f);
        CHECK_MSG(e < 3e-3, "silu %d: dbeta error %g", silu, e);
        /* din_add accumulates onto what is there. */
        float din2[GN_SZ];
        memcpy(din2, din, sizeof din);
        nn_groupnorm_backward(din2, 1, NULL, NULL, r, in, c.mean, c.istd, gamma, beta, GN_C,
                              GN_HW, GN_G, &g, silu);
        for (int i = 0; i < GN_SZ; i++) CHECK_NEAR(din2[i], 2.0f * din[i], 1e-5);
    }
}

TEST_KSETS(gen_groupnorm_grouped_weight_gradient)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 43);
    float in[GN_SZ], gamma[GN_C], beta[GN_C], dout[GN_SZ], out[GN_SZ];
    float mean[GN_N * GN_G], istd[GN_N * GN_G];
    gc_fill(&rng, in, GN_SZ, -2, 2);
    gc_fill(&rng, gamma, GN_C, 0.5f, 1.5f);
    gc_fill(&rng, beta, GN_C, -1, 1);
    gc_fill(&rng, dout, GN_SZ, -1, 1);
    nn_groupnorm_forward(out, mean, istd, in, gamma, beta, GN_N, GN_C, GN_HW, GN_G, 1e-5f, 1);
    lethe_groups g2, g1;
    gc_groups(&g2, GN_N0, GN_N1);
    gc_groups(&g1, GN_N, 0);
    float dg0[GN_C] = {0}, dg1[GN_C] = {0}, db0[GN_C] = {0}, db1[GN_C] = {0};
    float *dgs[2] = {dg0, dg1}, *dbs[2] = {db0, db1};
    float din2[GN_SZ], din1[GN_SZ];
    nn_groupnorm_backward(din2, 0, dgs, dbs, dout, in, mean, istd, gamma, beta, GN_C, GN_HW,
                          GN_G, &g2, 1);
    float ga[GN_C] = {0}, ba[GN_C] = {0}, *pga = ga, *pba = ba;
    nn_groupnorm_backward(din1, 0, &pga, &pba, dout, in, mean, istd, gamma, beta, GN_C, GN_HW,
                          GN_G, &g1, 1);
    float sg[GN_C], sb[GN_C];
    for (int i = 0; i < GN_C; i++) {
        sg[i] = dg0[i] + dg1[i];
        sb[i] = db0[i] + db1[i];
    }
    CHECK(gc_max_abs_diff(sg, ga, GN_C) < 1e-5);
    CHECK(gc_max_abs_diff(sb, ba, GN_C) < 1e-5);
    CHECK(gc_max_abs_diff(dg0, dg1, GN_C) > 1e-2);   /* the split is real */
    /* Statistics are per sample: grouping leaves din unchanged. */
    CHECK(gc_max_abs_diff(din2, din1, GN_SZ) == 0.0);
    /* Group 1 alone, on its own samples, gives dg1. */
    lethe_groups gb;
    gc_groups(&gb, GN_N1, 0);
    float e1[GN_C] = {0}, *pe1 = e1;
    const size_t off = (size_t)GN_N0 * GN_C * GN_HW;
    nn_groupnorm_backward(NULL, 0, &pe1, NULL, dout + off, in + off, mean + GN_N0 * GN_G,
                          istd + GN_N0 * GN_G, gamma, beta, GN_C, GN_HW, GN_G, &gb, 1);
    CHECK(gc_max_abs_diff(e1, dg1, GN_C) < 1e-6);
}

/* Large enough for the threaded path: with γ = 1, β = 0 every (sample,
 * channel group) comes out with mean 0 and variance 1. */
TEST_KSETS(gen_groupnorm_large_normalises)
{
    enum { N = 4, C = 32, HW = 784, G = 8 };
    const size_t sz = (size_t)N * C * HW;
    float *in = malloc(sz * sizeof(float)), *out = malloc(sz * sizeof(float));
    float gamma[C], beta[C], mean[N * G], istd[N * G];
    lethe_rng rng;
    lethe_rng_seed(&rng, 44);
    gc_fill(&rng, in, sz, 1, 5);
    for (int i = 0; i < C; i++) gamma[i] = 1.0f, beta[i] = 0.0f;
    nn_groupnorm_forward(out, mean, istd, in, gamma, beta, N, C, HW, G, 1e-5f, 0);
    const size_t cnt = (size_t)(C / G) * HW;
    for (int iq = 0; iq < N * G; iq++) {
        double s = 0.0, ss = 0.0;
        for (size_t j = 0; j < cnt; j++) s += out[iq * cnt + j];
        for (size_t j = 0; j < cnt; j++) ss += (double)out[iq * cnt + j] * out[iq * cnt + j];
        CHECK_NEAR(s / cnt, 0.0, 1e-5);
        CHECK_NEAR(ss / cnt, 1.0, 1e-3);
        CHECK(mean[iq] > 2.5f && mean[iq] < 3.5f);
    }
    free(in);
    free(out);
}

/* ---------------------------------------------------------------- silu */

typedef struct { float *in, *out, *r; size_t n; } silu_ctx;

static double silu_obj(void *p)
{
    silu_ctx *c = p;
    nn_silu_forward(c->out, c->in, c->n);
    return gc_dot(c->r, c->out, c->n);
}

TEST_KSETS(gen_silu_values_and_gradients)
{
    enum { N = 40 };
    lethe_rng rng;
    lethe_rng_seed(&rng, 45);
    float in[N], out[N], r[N], din[N];
    gc_fill(&rng, in, N, -6, 6);
    gc_fill(&rng, r, N, -1, 1);
    in[0] = 0.0f;
    in[1] = 1.0f;
    silu_ctx c = {in, out, r, N};
    silu_obj(&c);
    CHECK(out[0] == 0.0f);
    CHECK_NEAR(out[1], 0.731058579, 1e-6);
    for (int i = 0; i < N; i++) CHECK_NEAR(out[i], in[i] / (1.0 + exp(-(double)in[i])), 1e-5);
    for (int i = 0; i < N; i++) din[i] = -7.0f;
    nn_silu_backward(din, 0, r, in, N);
    CHECK_NEAR(din[0], 0.5 * r[0], 1e-6);   /* silu'(0) = 1/2 */
    CHECK_FD(in, N, din, silu_obj, &c, 1e-2f, 1e-3);
    float d2[N];
    memcpy(d2, din, sizeof din);
    nn_silu_backward(d2, 1, r, in, N);
    for (int i = 0; i < N; i++) CHECK_NEAR(d2[i], 2.0f * din[i], 1e-6);
}

/* ------------------------------------------------------------ upsample */

enum { UP_N = 2, UP_C = 3, UP_H = 3, UP_W = 4, UP_SZ = UP_N * UP_C * UP_H * UP_W };

typedef struct { float *in, *out, *r; } up_ctx;

static double up_obj(void *p)
{
    up_ctx *c = p;
    nn_upsample2_forward(c->out, c->in, UP_N, UP_C, UP_H, UP_W);
    return gc_dot(c->r, c->out, 4 * UP_SZ);
}

TEST_KSETS(gen_upsample_values_and_gradients)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 46);
    float in[UP_SZ], out[4 * UP_SZ], r[4 * UP_SZ], din[UP_SZ];
    gc_fill(&rng, in, UP_SZ, -1, 1);
    gc_fill(&rng, r, 4 * UP_SZ, -1, 1);
    up_ctx c = {in, out, r};
    up_obj(&c);
    for (int pl = 0; pl < UP_N * UP_C; pl++)
        for (int y = 0; y < 2 * UP_H; y++)
            for (int x = 0; x < 2 * UP_W; x++)
                CHECK(out[(pl * 2 * UP_H + y) * 2 * UP_W + x] ==
                      in[(pl * UP_H + y / 2) * UP_W + x / 2]);
    for (int i = 0; i < UP_SZ; i++) din[i] = 5.0f;
    nn_upsample2_backward(din, 0, r, UP_N, UP_C, UP_H, UP_W);
    CHECK_FD(in, UP_SZ, din, up_obj, &c, 1e-2f, 1e-4);
    float d2[UP_SZ];
    memcpy(d2, din, sizeof din);
    nn_upsample2_backward(d2, 1, r, UP_N, UP_C, UP_H, UP_W);
    for (int i = 0; i < UP_SZ; i++) CHECK_NEAR(d2[i], 2.0f * din[i], 1e-6);
}

/* -------------------------------------------------------------- concat */

enum { CC_N = 3, CC_A = 2, CC_B = 3, CC_HW = 5 };

typedef struct { float *a, *b, *out, *r; } cc_ctx;

static double cc_obj(void *p)
{
    cc_ctx *c = p;
    nn_concat_forward(c->out, c->a, c->b, CC_N, CC_A, CC_B, CC_HW);
    return gc_dot(c->r, c->out, CC_N * (CC_A + CC_B) * CC_HW);
}

TEST_KSETS(gen_concat_values_and_gradients)
{
    enum { SA = CC_N * CC_A * CC_HW, SB = CC_N * CC_B * CC_HW, SO = SA + SB };
    lethe_rng rng;
    lethe_rng_seed(&rng, 47);
    float a[SA], b[SB], out[SO], r[SO], da[SA], db[SB];
    gc_fill(&rng, a, SA, -1, 1);
    gc_fill(&rng, b, SB, -1, 1);
    gc_fill(&rng, r, SO, -1, 1);
    cc_ctx c = {a, b, out, r};
    cc_obj(&c);
    for (int i = 0; i < CC_N; i++)
        for (int ch = 0; ch < CC_A + CC_B; ch++)
            for (int j = 0; j < CC_HW; j++) {
                const float o = out[(i * (CC_A + CC_B) + ch) * CC_HW + j];
                CHECK(o == (ch < CC_A ? a[(i * CC_A + ch) * CC_HW + j]
                                      : b[(i * CC_B + ch - CC_A) * CC_HW + j]));
            }
    for (int i = 0; i < SA; i++) da[i] = 9.0f;
    for (int i = 0; i < SB; i++) db[i] = 9.0f;
    nn_concat_backward(da, 0, db, 0, r, CC_N, CC_A, CC_B, CC_HW);
    CHECK_FD(a, SA, da, cc_obj, &c, 1e-2f, 1e-4);
    CHECK_FD(b, SB, db, cc_obj, &c, 1e-2f, 1e-4);
    nn_concat_backward(da, 1, NULL, 0, r, CC_N, CC_A, CC_B, CC_HW);
    CHECK_NEAR(da[7], 2.0f * r[7], 1e-6);   /* sample 0, channel 1 of a */
}

/* ---------------------------------------------------------- embeddings */

TEST_KSETS(gen_timestep_embed_by_hand)
{
    /* D = 8: f = 1, 0.1, 0.01, 0.001 (python: math.sin(t * 10000**(-j/4))). */
    static const int32_t t[3] = {0, 1, 500};
    static const double want[3][8] = {
        {0, 0, 0, 0, 1, 1, 1, 1},
        {0.841470985, 0.099833417, 0.009999833, 0.001000000,
         0.540302306, 0.995004165, 0.999950000, 0.999999500},
        {-0.467771805, -0.262374854, -0.958924275, 0.479425539,
         -0.883849273, 0.964966028, 0.283662185, 0.877582562},
    };
    float out[3 * 8];
    nn_timestep_embed(out, t, 3, 8);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 8; j++) CHECK_NEAR(out[i * 8 + j], want[i][j], 2e-7);
    /* Odd D: the last column is zero, the rest as for D − 1 rounded down. */
    float odd[9];
    nn_timestep_embed(odd, t + 1, 1, 9);
    for (int j = 0; j < 8; j++) CHECK_NEAR(odd[j], want[1][j], 2e-7);
    CHECK(odd[8] == 0.0f);
}

enum { LE_K = 4, LE_D = 5, LE_N = 6 };

typedef struct { float *table, *out, *r; const int32_t *y; } le_ctx;

static double le_obj(void *p)
{
    le_ctx *c = p;
    nn_label_embed_forward(c->out, c->y, c->table, LE_N, LE_D);
    return gc_dot(c->r, c->out, LE_N * LE_D);
}

TEST_KSETS(gen_label_embed_values_and_grouped_gradients)
{
    static const int32_t y[LE_N] = {2, 0, 2, 3, 1, 2};
    lethe_rng rng;
    lethe_rng_seed(&rng, 48);
    float table[LE_K * LE_D], out[LE_N * LE_D], r[LE_N * LE_D];
    gc_fill(&rng, table, LE_K * LE_D, -1, 1);
    gc_fill(&rng, r, LE_N * LE_D, -1, 1);
    le_ctx c = {table, out, r, y};
    le_obj(&c);
    for (int i = 0; i < LE_N; i++)
        for (int j = 0; j < LE_D; j++) CHECK(out[i * LE_D + j] == table[y[i] * LE_D + j]);
    /* Two groups summed into one buffer = the whole gradient. */
    lethe_groups g2, g1;
    gc_groups(&g2, 2, 4);
    gc_groups(&g1, LE_N, 0);
    float dt[LE_K * LE_D] = {0}, *both[2] = {dt, dt};
    nn_label_embed_backward(both, r, y, &g2, LE_D);
    CHECK_FD(table, LE_K * LE_D, dt, le_obj, &c, 1e-2f, 1e-4);
    /* Separate buffers add up to the one-group gradient; group 0 (samples
     * 0, 1: labels 2, 0) leaves rows 1 and 3 alone. */
    float d0[LE_K * LE_D] = {0}, d1[LE_K * LE_D] = {0}, da[LE_K * LE_D] = {0};
    float *sep[2] = {d0, d1}, *pa = da;
    nn_label_embed_backward(sep, r, y, &g2, LE_D);
    nn_label_embed_backward(&pa, r, y, &g1, LE_D);
    float sum[LE_K * LE_D];
    for (int i = 0; i < LE_K * LE_D; i++) sum[i] = d0[i] + d1[i];
    CHECK(gc_max_abs_diff(sum, da, LE_K * LE_D) < 1e-6);
    for (int j = 0; j < LE_D; j++) {
        CHECK(d0[1 * LE_D + j] == 0.0f && d0[3 * LE_D + j] == 0.0f);
        CHECK_NEAR(d0[2 * LE_D + j], r[j], 1e-7);
        CHECK_NEAR(d1[2 * LE_D + j], r[2 * LE_D + j] + r[5 * LE_D + j], 1e-6);
    }
    /* A NULL group destination is skipped. */
    float dn[LE_K * LE_D] = {0}, *half[2] = {NULL, dn};
    nn_label_embed_backward(half, r, y, &g2, LE_D);
    CHECK(gc_max_abs_diff(dn, d1, LE_K * LE_D) == 0.0);
}

enum { BA_N = 3, BA_C = 4, BA_HW = 6, BA_SZ = BA_N * BA_C * BA_HW };

typedef struct { float *x, *v, *out, *r; } ba_ctx;

static double ba_obj(void *p)
{
    ba_ctx *c = p;
    nn_bcast_add_forward(c->out, c->x, c->v, BA_N, BA_C, BA_HW);
    return gc_dot(c->r, c->out, BA_SZ);
}

TEST_KSETS(gen_bcast_add_values_and_gradients)
{
    lethe_rng rng;
    lethe_rng_seed(&rng, 49);
    float x[BA_SZ], v[BA_N * BA_C], out[BA_SZ], r[BA_SZ], dx[BA_SZ], dv[BA_N * BA_C];
    gc_fill(&rng, x, BA_SZ, -1, 1);
    gc_fill(&rng, v, BA_N * BA_C, -1, 1);
    gc_fill(&rng, r, BA_SZ, -1, 1);
    ba_ctx c = {x, v, out, r};
    ba_obj(&c);
    for (int i = 0; i < BA_SZ; i++) CHECK(out[i] == x[i] + v[i / BA_HW]);
    for (int i = 0; i < BA_SZ; i++) dx[i] = 3.0f;
    for (int i = 0; i < BA_N * BA_C; i++) dv[i] = 3.0f;
    nn_bcast_add_backward(dx, 0, dv, 0, r, BA_N, BA_C, BA_HW);
    CHECK_FD(x, BA_SZ, dx, ba_obj, &c, 1e-2f, 1e-4);
    CHECK_FD(v, BA_N * BA_C, dv, ba_obj, &c, 1e-2f, 1e-4);
    float dv2[BA_N * BA_C];
    memcpy(dv2, dv, sizeof dv);
    nn_bcast_add_backward(NULL, 0, dv2, 1, r, BA_N, BA_C, BA_HW);
    for (int i = 0; i < BA_N * BA_C; i++) CHECK_NEAR(dv2[i], 2.0f * dv[i], 1e-6);
}
