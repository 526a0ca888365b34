/* Every op kind of the op table (src/nn/op.h) against finite differences,
 * through the graph: a tiny graph per case, two sample groups (the
 * grouped backward of ALGORITHM.md §2.1), Σ r·out as the objective.
 * grads[k] must match the finite differences of group k's share of the
 * objective alone (each group's forward depends on its samples only,
 * batch norm included: it normalises each group by itself), and ∂/∂x the
 * whole objective's. Every entry of θ and x is checked.
 *
 * A kind that no case names fails ops_every_kind_has_a_gradient_check:
 * adding an op means adding its case here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "gradcheck.h"
#include "nn/op.h"
#include "nn/seq.h"
#include "test.h"

enum { NB = 5, N0 = 2, KINKS = 1, MASKED = 2 };

/* ------------------------------------------------------------ graphs */

static lethe_status done(lethe_model *m, int last)
{
    (void)m;
    return last < 0 ? LETHE_ERR_ARG : LETHE_OK;
}

static lethe_status g_conv(lethe_model *m)
{
    int x = nn_add_input(m);
    return done(m, nn_add_conv(m, "conv", x, 3, 3, 1, 1, 1));
}

static lethe_status g_conv_s2(lethe_model *m)
{
    int x = nn_add_input(m);
    return done(m, nn_add_conv(m, "conv", x, 3, 3, 2, 1, 0));
}

/* The planner's fusions: conv+ReLU+pool, conv→bn (plane statistics,
 * deferred last pass), bn+ReLU read by a conv (normalised as copied),
 * linear+ReLU, a residual sum with its ReLU. */
static lethe_status g_fused(lethe_model *m)
{
    int x = nn_add_input(m);
    int h = nn_add_maxpool(m, nn_add_relu(m, nn_add_conv(m, "c1", x, 4, 3, 1, 1, 1)), 2, 2);
    int a = nn_add_relu(m, nn_add_bn(m, "bn1", nn_add_conv(m, "c2", h, 4, 3, 1, 1, 0)));
    int b = nn_add_bn(m, "bn2", nn_add_conv(m, "c3", a, 4, 3, 1, 1, 0));
    h = nn_add_relu(m, nn_add_sum(m, b, h));
    h = nn_add_relu(m, nn_add_linear(m, "fc1", nn_add_gap(m, h), 5));
    return done(m, nn_add_linear(m, "fc2", h, 3));
}

static lethe_status g_linear(lethe_model *m)
{
    return done(m, nn_add_linear(m, "fc", nn_add_input(m), 4));
}

static lethe_status g_relu(lethe_model *m) { return done(m, nn_add_relu(m, nn_add_input(m))); }

static lethe_status g_maxpool(lethe_model *m)
{
    return done(m, nn_add_maxpool(m, nn_add_input(m), 2, 2));
}

static lethe_status g_gap(lethe_model *m) { return done(m, nn_add_gap(m, nn_add_input(m))); }

static lethe_status g_bn(lethe_model *m) { return done(m, nn_add_bn(m, "bn", nn_add_input(m))); }

static lethe_status g_add(lethe_model *m)
{
    int x = nn_add_input(m);
    int a = nn_add_conv(m, "a", x, 2, 3, 1, 1, 1), b = nn_add_conv(m, "b", x, 2, 1, 1, 0, 0);
    return done(m, nn_add_sum(m, a, b));
}

static lethe_status g_gn(lethe_model *m)
{
    return done(m, nn_add_groupnorm(m, "gn", nn_add_input(m), 2, 1));
}

static lethe_status g_silu(lethe_model *m) { return done(m, nn_add_silu(m, nn_add_input(m))); }

static lethe_status g_upsample(lethe_model *m)
{
    return done(m, nn_add_upsample(m, nn_add_input(m)));
}

static lethe_status g_concat(lethe_model *m)
{
    int x = nn_add_input(m);
    int a = nn_add_conv(m, "a", x, 2, 3, 1, 1, 1), b = nn_add_conv(m, "b", x, 3, 1, 1, 0, 1);
    return done(m, nn_add_concat(m, a, b));
}

/* The timestep embedding has no gradient: what follows it gets one. */
static lethe_status g_temb(lethe_model *m)
{
    nn_add_input(m);
    return done(m, nn_add_linear(m, "fc", nn_add_temb(m, 6), 3));
}

static lethe_status g_lemb(lethe_model *m)
{
    nn_add_input(m);
    int e = nn_add_lemb(m, "emb", 4, 3);
    return done(m, nn_add_sum(m, e, nn_add_linear(m, "fc", e, 3)));
}

static lethe_status g_bcast_add(lethe_model *m)
{
    int x = nn_add_input(m);
    int v = nn_add_linear(m, "v", x, 3);
    return done(m, nn_add_bcast_add(m, nn_add_conv(m, "c", x, 3, 3, 1, 1, 1), v));
}

/* Sequences (1, T, D). */
static lethe_status g_tokens(lethe_model *m) { return done(m, nn_add_tokens(m, nn_add_input(m))); }

static lethe_status g_tlinear(lethe_model *m)
{
    return done(m, nn_add_token_linear(m, "fc", nn_add_input(m), 5));
}

static lethe_status g_ln(lethe_model *m)
{
    return done(m, nn_add_layernorm(m, "ln", nn_add_input(m)));
}

static lethe_status g_gelu(lethe_model *m) { return done(m, nn_add_gelu(m, nn_add_input(m))); }

static lethe_status g_attn(lethe_model *m)
{
    return done(m, nn_add_attention(m, nn_add_input(m), 2, 0));
}

static lethe_status g_attn_causal(lethe_model *m)
{
    return done(m, nn_add_attention(m, nn_add_input(m), 2, 1));
}

/* A class token before masked tokens (never masked itself). */
static lethe_status g_attn_cls(lethe_model *m)
{
    int x = nn_add_cls_token(m, "cls_token", nn_add_input(m));
    return done(m, nn_add_attention(m, x, 1, 0));
}

static lethe_status g_matmul(lethe_model *m)
{
    int x = nn_add_input(m);
    return done(m, nn_add_matmul(m, nn_add_token_linear(m, "a", x, 4), x));
}

static lethe_status g_tokemb(lethe_model *m)
{
    nn_add_input(m);
    return done(m, nn_add_token_embed(m, "emb", 7, 3, 4));
}

static lethe_status g_posemb(lethe_model *m)
{
    return done(m, nn_add_pos_embed(m, "pos_embed", nn_add_input(m)));
}

static lethe_status g_cls(lethe_model *m)
{
    return done(m, nn_add_cls_token(m, "cls_token", nn_add_input(m)));
}

static lethe_status g_tmean(lethe_model *m)
{
    return done(m, nn_add_token_mean(m, nn_add_input(m)));
}

static lethe_status g_take0(lethe_model *m)
{
    return done(m, nn_add_take_first(m, nn_add_input(m)));
}

typedef struct {
    const char *op;            /* the kind it checks (nn_op_name) */
    lethe_status (*build)(lethe_model *);
    int c, h, w;               /* input shape */
    int flags;                 /* KINKS: ReLUs and pools inside (a central
                                  difference across a kink misses by up to the
                                  change of slope, so a few entries may miss);
                                  MASKED: forwards with a padding mask */
} op_case;

static const op_case cases[] = {
    {"input", g_linear, 2, 3, 3, 0},   /* ∂/∂x of every case */
    {"conv", g_conv, 2, 5, 5, 0},
    {"conv", g_conv_s2, 2, 6, 6, 0},
    {"conv", g_fused, 2, 8, 8, KINKS},
    {"linear", g_linear, 2, 3, 3, 0},
    {"relu", g_relu, 2, 3, 3, 0},
    {"maxpool", g_maxpool, 2, 6, 6, 0},
    {"gap", g_gap, 3, 4, 4, 0},
    {"batchnorm", g_bn, 3, 4, 4, 0},
    {"add", g_add, 2, 4, 4, 0},
    {"groupnorm", g_gn, 4, 3, 3, 0},
    {"silu", g_silu, 2, 3, 3, 0},
    {"upsample", g_upsample, 2, 3, 3, 0},
    {"concat", g_concat, 2, 4, 4, 0},
    {"timestep_embed", g_temb, 1, 2, 2, 0},
    {"label_embed", g_lemb, 1, 2, 2, 0},
    {"bcast_add", g_bcast_add, 2, 4, 4, 0},
    {"tokens", g_tokens, 3, 2, 2, 0},
    {"token_linear", g_tlinear, 1, 4, 3, 0},
    {"layernorm", g_ln, 1, 3, 6, 0},
    {"gelu", g_gelu, 1, 3, 4, 0},
    {"attention", g_attn, 1, 4, 12, MASKED},
    {"attention", g_attn_causal, 1, 4, 12, 0},
    {"attention", g_attn_cls, 1, 4, 6, MASKED},
    {"matmul", g_matmul, 1, 4, 4, 0},
    {"token_embed", g_tokemb, 1, 1, 1, 0},
    {"pos_embed", g_posemb, 1, 3, 4, 0},
    {"cls_token", g_cls, 1, 3, 4, 0},
    {"token_mean", g_tmean, 1, 4, 3, MASKED},
    {"token_mean", g_tmean, 1, 4, 3, 0},
    {"take_first", g_take0, 1, 3, 4, 0},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* ------------------------------------------------------------ the check */

typedef struct {
    lethe_model *m;
    const float *x, *r;
    const lethe_groups *g;
    int lo, hi;                /* the samples whose share counts */
    size_t out;
    const int32_t *t, *y, *ids;
    const uint8_t *mask;
} obj_ctx;

static double objective(void *ctx)
{
    obj_ctx *c = ctx;
    const float *o = NULL;
    lethe_model_set_cond(c->m, c->t, c->y);
    lethe_model_set_tokens(c->m, c->ids, c->mask);
    if (lethe_model_forward(c->m, c->x, NB, c->g, LETHE_BN_BATCH, &o) != LETHE_OK) return NAN;
    double s = 0.0;
    for (size_t i = (size_t)c->lo * c->out; i < (size_t)c->hi * c->out; i++)
        s += (double)c->r[i] * o[i];
    return s;
}

/* Entries of grad (n) whose central difference misses by more than tol of
 * the largest gradient, and the worst miss (relative) in *worst. */
static size_t fd_misses(float *x, size_t n, const float *grad, gc_objective f, void *ctx,
                        double tol, double *worst)
{
    double scale = 1e-3;
    double *num = malloc((n + 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        num[i] = gc_fd_one(x, i, f, ctx, 1e-3f);
        if (fabs(num[i]) > scale) scale = fabs(num[i]);
        if (fabs((double)grad[i]) > scale) scale = fabs((double)grad[i]);
    }
    size_t miss = 0;
    *worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs(num[i] - grad[i]) / scale;
        if (!(e <= *worst)) *worst = e;
        miss += !(e <= tol);
    }
    free(num);
    return miss;
}

/* All entries within 1% of the largest gradient; with kinks, 97% of them,
 * and all within 20%. */
static void fd_check(const char *what, const op_case *k, float *x, size_t n,
                     const float *grad, obj_ctx *c)
{
    double worst;
    const size_t miss = fd_misses(x, n, grad, objective, c, 1e-2, &worst);
    if (k->flags & KINKS)
        CHECK_MSG(miss <= n / 32 && worst < 0.2,
                  "%s (%s): %zu of %zu entries off by over 1%%, worst %.3g", what, k->op, miss,
                  n, worst);
    else
        CHECK_MSG(miss == 0, "%s (%s): %zu of %zu entries off by over 1%%, worst %.3g", what,
                  k->op, miss, n, worst);
}

static void check_case(const op_case *k)
{
    lethe_model *m = NULL;
    CHECK_OK(nn_model_create_graph(&m, k->op, k->build, k->c, k->h, k->w, 3));
    if (!m) return;
    CHECK_OK(lethe_model_reserve(m, NB));
    lethe_rng rng;
    lethe_rng_seed(&rng, 21);
    lethe_model_init(m, &rng);
    size_t n;
    float *theta = lethe_model_theta(m, &n);
    /* Away from the defaults (γ = 1, β = 0), so every term shows. */
    for (size_t i = 0; i < n; i++) theta[i] += 0.3f * (2.0f * lethe_rng_uniform(&rng) - 1.0f);
    const size_t in = (size_t)k->c * k->h * k->w, out = lethe_model_out_size(m);
    float *x = malloc(NB * in * sizeof(float)), *r = malloc(NB * out * sizeof(float));
    float *dx = calloc(NB * in, sizeof(float));
    float *gr[2] = {calloc(n + 1, sizeof(float)), calloc(n + 1, sizeof(float))};
    gc_fill(&rng, x, NB * in, -1, 1);
    gc_fill(&rng, r, NB * out, -1, 1);
    int32_t t[NB], y[NB];
    for (int i = 0; i < NB; i++) {
        t[i] = 17 * i + 3;
        y[i] = (i * 3) % 4;
    }
    /* Token ids, and a mask that leaves sample i T − (i % 3) tokens. */
    int32_t ids[NB * 8];
    uint8_t mask[NB * 8];
    const int tm = k->h;
    for (int i = 0; i < NB * 8; i++) ids[i] = (i * 5 + 1) % 7;
    for (int i = 0; i < NB; i++)
        for (int j = 0; j < tm; j++) mask[i * tm + j] = j < tm - i % 3;
    lethe_groups g;
    gc_groups(&g, N0, NB - N0);
    obj_ctx c = {m, x, r, &g, 0, NB, out, t, y, ids, k->flags & MASKED ? mask : NULL};
    objective(&c);
    CHECK_OK(lethe_model_backward_ex(m, r, NULL, &g, gr, dx));
    /* Each group's parameter gradient against its own share. */
    for (int grp = 0; grp < 2; grp++) {
        c.lo = g.start[grp];
        c.hi = g.start[grp + 1];
        fd_check(grp ? "group 1's parameter gradient" : "group 0's parameter gradient", k,
                 theta, n, gr[grp], &c);
    }
    c.lo = 0;
    c.hi = NB;
    fd_check("input gradient", k, x, NB * in, dx, &c);
    free(x);
    free(r);
    free(dx);
    free(gr[0]);
    free(gr[1]);
    lethe_model_free(m);
}

TEST(ops_every_kind_has_a_gradient_check)
{
    for (int op = 0; op < NN_OP_COUNT; op++) {
        const nn_op_desc *d = nn_op_get((nn_op)op);
        CHECK_MSG(d && d->name && d->forward, "op kind %d has no row in the op table", op);
        if (!d || !d->name) continue;
        int found = 0;
        for (int i = 0; i < NCASES; i++) found += strcmp(cases[i].op, d->name) == 0;
        CHECK_MSG(found > 0, "op kind %s has no gradient check in tests/test_ops.c", d->name);
    }
    for (int i = 0; i < NCASES; i++) {
        int known = 0;
        for (int op = 0; op < NN_OP_COUNT; op++)
            known += strcmp(cases[i].op, nn_op_name((nn_op)op)) == 0;
        CHECK_MSG(known == 1, "case %d names op %s, which the table does not have", i,
                  cases[i].op);
    }
}

TEST_KSETS(ops_gradients_finite_differences_two_groups)
{
    for (int i = 0; i < NCASES; i++) check_case(&cases[i]);
}

/* What a builder refuses, it says. */
static lethe_status g_bad_sum(lethe_model *m)
{
    int x = nn_add_input(m);
    int a = nn_add_conv(m, "a", x, 2, 3, 1, 1, 1), b = nn_add_conv(m, "b", x, 3, 3, 1, 1, 1);
    return done(m, nn_add_relu(m, nn_add_sum(m, a, b)));
}

static lethe_status g_dup_name(lethe_model *m)
{
    int x = nn_add_input(m);
    return done(m, nn_add_conv(m, "a", nn_add_conv(m, "a", x, 2, 3, 1, 1, 1), 2, 3, 1, 1, 1));
}

static lethe_status g_many(lethe_model *m)
{
    /* 400 tensors: more than the old fixed table of 256. */
    int h = nn_add_input(m);
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "fc%d", i);
        h = nn_add_linear(m, name, h, 2);
    }
    return done(m, h);
}

TEST(ops_builder_errors_say_what_was_wrong)
{
    lethe_model *m = NULL;
    CHECK(nn_model_create_graph(&m, "bad", g_bad_sum, 1, 4, 4, 3) == LETHE_ERR_ARG);
    CHECK(!m);
    const char *msg = lethe_last_error();
    CHECK_MSG(strstr(msg, "sum") && strstr(msg, "differ"), "message: %s", msg);
    CHECK(nn_model_create_graph(&m, "dup", g_dup_name, 1, 4, 4, 3) == LETHE_ERR_ARG);
    msg = lethe_last_error();
    CHECK_MSG(strstr(msg, "a.weight used twice"), "message: %s", msg);
    CHECK_OK(nn_model_create_graph(&m, "many", g_many, 1, 4, 4, 3));
    if (m) {
        CHECK(lethe_model_ntensors(m) == 400);
        CHECK(strcmp(lethe_model_tensor(m, 399)->name, "fc199.bias") == 0);
        CHECK(lethe_model_find(m, "fc0.weight") == lethe_model_tensor(m, 0));
        lethe_model_free(m);
    }
}

/* Attention and matmul split samples × heads over the OpenMP threads:
 * each (sample, head) is computed by one thread with the same products,
 * so one thread and all of them give the same bits. */
TEST(ops_attention_threads_bitwise)
{
#ifdef _OPENMP
    enum { N = 4, T = 32, D = 64, H = 4 };
    const int all = omp_get_max_threads();
    if (all < 2) {
        test_skip("one OpenMP thread");
        return;
    }
    lethe_rng rng;
    lethe_rng_seed(&rng, 5);
    const size_t nq = (size_t)N * T * 3 * D, no = (size_t)N * T * D;
    float *qkv = malloc(nq * sizeof(float)), *dout = malloc(no * sizeof(float));
    float *out[2], *p[2], *dq[2], *mm[2];
    float *ws = malloc(nn_attention_workspace(T) * sizeof(float));
    uint8_t mask[N * T];
    for (int i = 0; i < N * T; i++) mask[i] = (i % T) < T - 3 * (i / T);
    gc_fill(&rng, qkv, nq, -1, 1);
    gc_fill(&rng, dout, no, -1, 1);
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r ? all : 1);
        out[r] = malloc(no * sizeof(float));
        p[r] = malloc((size_t)N * H * T * T * sizeof(float));
        dq[r] = malloc(nq * sizeof(float));
        mm[r] = malloc((size_t)N * T * T * sizeof(float));
        nn_attention_forward(out[r], p[r], qkv, mask, T, 1, N, T, H, D);
        nn_attention_backward(dq[r], 0, dout, p[r], qkv, N, T, H, D, ws);
        nn_matmul_forward(mm[r], qkv, qkv, N, T, T, T);
    }
    omp_set_num_threads(all);
    CHECK(memcmp(out[0], out[1], no * sizeof(float)) == 0);
    CHECK(memcmp(dq[0], dq[1], nq * sizeof(float)) == 0);
    CHECK(memcmp(mm[0], mm[1], (size_t)N * T * T * sizeof(float)) == 0);
    /* Masked keys get no weight; the causal mask none above the diagonal. */
    CHECK(p[0][(size_t)3 * H * T * T + T - 1] == 0.0f);
    CHECK(p[0][1] == 0.0f && p[0][0] == 1.0f);
    for (int r = 0; r < 2; r++) {
        free(out[r]);
        free(p[r]);
        free(dq[r]);
        free(mm[r]);
    }
    free(qkv);
    free(dout);
    free(ws);
#else
    test_skip("built without OpenMP");
#endif
}
