/*
 * Sequence ops: a per-sample sequence (T, D) is a (1, T, D) node (c = 1,
 * h = T, w = D). Builders, rows and glue to the kernels of seq.c (and
 * linear.c, embed.c for the per-token linear and the token table, with
 * the sample groups stretched to token rows).
 */
#include <math.h>
#include <string.h>

#include "core/fail.h"
#include "nn/op.h"
#include "nn/seq.h"

#define LN_EPS 1e-6f     /* timm's ViT layer norms */

/* The sample groups of g as groups of token rows (t per sample). */
static lethe_groups token_rows(const lethe_groups *g, int t)
{
    lethe_groups r = *g;
    for (int k = 0; k <= g->n; k++) r.start[k] = g->start[k] * t;
    return r;
}

/* −1 (recorded) unless node `in` is a sequence (1, T, D). */
static int seq_in(lethe_model *m, const char *op, int in)
{
    if (!nn_input_ok(m, op, in)) return 0;
    if (m->nodes[in].c != 1)
        return nn_build_fail(m, "%s: input node %d is %dx%dx%d, not a sequence (1, T, D)", op,
                             in, m->nodes[in].c, m->nodes[in].h, m->nodes[in].w) + 1;
    return 1;
}

/* N(0, std) for every entry of tensor t. */
static void init_normal(lethe_model *m, int t, float std, lethe_rng *rng)
{
    lethe_tensor *w = &m->tensors[t];
    for (size_t j = 0; j < w->numel; j++) w->data[j] = std * lethe_rng_normal(rng);
}

/* ------------------------------------------------------- image to tokens */

int nn_add_tokens(lethe_model *m, int in)
{
    if (!nn_input_ok(m, "tokens", in)) return -1;
    const nn_node s = m->nodes[in];
    return nn_node_add(m, NN_TOKENS, in, 1, s.h * s.w, s.c);
}

static void tokens_forward(nn_pass *p)
{
    const nn_node *s = &p->m->nodes[p->nd->in0];
    nn_tokens_forward(p->nd->out, p->in, p->n, s->c, s->h * s->w);
}

static void tokens_backward(nn_pass *p)
{
    const nn_node *s = &p->m->nodes[p->nd->in0];
    int add;
    float *din = nn_grad_of(p->m, p->nd->in0, &add);
    if (din) nn_tokens_backward(din, add, p->gin, p->n, s->c, s->h * s->w);
}

const nn_op_desc nn_op_tokens = {
    .name = "tokens", .forward = tokens_forward, .backward = tokens_backward};

/* ------------------------------------------------------ per-token linear */

int nn_add_token_linear(lethe_model *m, const char *name, int in, int out_f)
{
    if (!seq_in(m, name, in)) return -1;
    if (out_f < 1) return nn_build_fail(m, "linear %s: %d output features", name, out_f);
    const nn_node s = m->nodes[in];
    int i = nn_node_add(m, NN_TLINEAR, in, 1, s.h, out_f);
    if (i < 0) return -1;
    int ws[2] = {out_f, s.w}, bs[1] = {out_f};
    int tw = nn_tensor_add(m, name, "weight", 2, ws, 1, 0);
    int tb = nn_tensor_add(m, name, "bias", 1, bs, 1, 0);
    m->nodes[i].t_w = tw;
    m->nodes[i].t_b = tb;
    return (tw < 0 || tb < 0) ? -1 : i;
}

static void tlinear_forward(nn_pass *p)
{
    lethe_model *m = p->m;
    const nn_node *nd = p->nd;
    nn_linear_forward_ex(nd->out, p->in, nn_tdata(m, nd->t_w), nn_tdata(m, nd->t_b),
                         p->n * nd->h, m->nodes[nd->in0].w, nd->w, 0);
}

static void tlinear_backward(nn_pass *p)
{
    lethe_model *m = p->m;
    const nn_node *nd = p->nd;
    const lethe_groups rows = token_rows(p->g, nd->h);
    int add;
    float *din = nn_grad_of(m, nd->in0, &add);
    nn_linear_backward_ex(din, add, p->dw, p->db, p->gin, p->in, nn_tdata(m, nd->t_w), &rows,
                          m->nodes[nd->in0].w, nd->w);
}

static double tlinear_flops(const lethe_model *m, const nn_node *nd)
{
    return 2.0 * (double)m->tensors[nd->t_w].numel * nd->h;
}

const nn_op_desc nn_op_tlinear = {
    .name = "token_linear",
    .forward = tlinear_forward,
    .backward = tlinear_backward,
    .init = nn_init_fan_in,
    .flops = tlinear_flops,
};

/* ------------------------------------------------------------ layer norm */

int nn_add_layernorm(lethe_model *m, const char *name, int in)
{
    if (!seq_in(m, name, in)) return -1;
    const nn_node s = m->nodes[in];
    int i = nn_node_add(m, NN_LN, in, 1, s.h, s.w);
    if (i < 0) return -1;
    int ds[1] = {s.w};
    int tw = nn_tensor_add(m, name, "weight", 1, ds, 1, 0);
    int tb = nn_tensor_add(m, name, "bias", 1, ds, 1, 0);
    m->nodes[i].t_w = tw;
    m->nodes[i].t_b = tb;
    return (tw < 0 || tb < 0) ? -1 : i;
}

static void ln_forward(nn_pass *p)
{
    nn_node *nd = p->nd;
    nn_layernorm_forward(nd->out, nd->mean, nd->istd, p->in, nn_tdata(p->m, nd->t_w),
                         nn_tdata(p->m, nd->t_b), p->n, nd->h, nd->w, LN_EPS);
}

static void ln_backward(nn_pass *p)
{
    nn_node *nd = p->nd;
    int add;
    float *din = nn_grad_of(p->m, nd->in0, &add);
    nn_layernorm_backward(din, add, p->dw, p->db, p->gin, p->in, nd->mean, nd->istd,
                          nn_tdata(p->m, nd->t_w), p->g, nd->h, nd->w);
}

/* γ = 1, β = 0. */
static void ln_init(lethe_model *m, const nn_node *nd, lethe_rng *rng)
{
    (void)rng;
    for (int j = 0; j < nd->w; j++) {
        m->tensors[nd->t_w].data[j] = 1.0f;
        m->tensors[nd->t_b].data[j] = 0.0f;
    }
}

static double ln_flops(const lethe_model *m, const nn_node *nd)
{
    (void)m;
    return 8.0 * (double)nd->size;
}

/* μ and 1/σ per token row. */
static size_t ln_state(lethe_model *m, int i, float *p, size_t N)
{
    nn_node *nd = &m->nodes[i];
    if (p) {
        nd->mean = p;
        nd->istd = p + N * nd->h;
    }
    return 2 * N * (size_t)nd->h;
}

const nn_op_desc nn_op_ln = {
    .name = "layernorm",
    .forward = ln_forward,
    .backward = ln_backward,
    .init = ln_init,
    .flops = ln_flops,
    .state = ln_state,
};

/* ------------------------------------------------------------------ GELU */

int nn_add_gelu(lethe_model *m, int in)
{
    if (!nn_input_ok(m, "gelu", in)) return -1;
    const nn_node s = m->nodes[in];
    return nn_node_add(m, NN_GELU, in, s.c, s.h, s.w);
}

static void gelu_forward(nn_pass *p) { nn_gelu_forward(p->nd->out, p->in, p->len); }

static void gelu_backward(nn_pass *p)
{
    int add;
    float *din = nn_grad_of(p->m, p->nd->in0, &add);
    if (din) nn_gelu_backward(din, add, p->gin, p->in, p->len);
}

static double gelu_flops(const lethe_model *m, const nn_node *nd)
{
    (void)m;
    return 8.0 * (double)nd->size;
}

const nn_op_desc nn_op_gelu = {
    .name = "gelu", .forward = gelu_forward, .backward = gelu_backward, .flops = gelu_flops};

/* ------------------------------------------------------------- attention */

int nn_add_attention(lethe_model *m, int qkv, int heads, int causal)
{
    if (!seq_in(m, "attention", qkv)) return -1;
    const nn_node s = m->nodes[qkv];
    if (heads < 1 || s.w % 3 || (s.w / 3) % heads)
        return nn_build_fail(m, "attention: %d features are not q, k, v of %d heads", s.w,
                             heads);
    int i = nn_node_add(m, NN_ATTN, qkv, 1, s.h, s.w / 3);
    if (i < 0) return -1;
    m->nodes[i].heads = heads;
    m->nodes[i].causal = causal;
    return i;
}

static void attn_forward(nn_pass *p)
{
    nn_node *nd = p->nd;
    nn_attention_forward(nd->out, nd->mean, p->in, p->mask, p->tm, nd->causal, p->n, nd->h,
                         nd->heads, nd->w);
}

static void attn_backward(nn_pass *p)
{
    nn_node *nd = p->nd;
    int add;
    float *din = nn_grad_of(p->m, nd->in0, &add);
    if (din)
        nn_attention_backward(din, add, p->gin, nd->mean, p->in, p->n, nd->h, nd->heads, nd->w,
                              p->m->ws);
}

/* Q·Kᵀ and P·V: 4·T·D per token. */
static double attn_flops(const lethe_model *m, const nn_node *nd)
{
    (void)m;
    return 4.0 * (double)nd->h * nd->h * nd->w;
}

static size_t attn_workspace(const lethe_model *m, const nn_node *nd, int n)
{
    (void)m;
    (void)n;
    return nn_attention_workspace(nd->h);
}

/* The probabilities (N, H, T, T), in `mean`. */
static size_t attn_state(lethe_model *m, int i, float *p, size_t N)
{
    nn_node *nd = &m->nodes[i];
    if (p) nd->mean = p;
    return N * (size_t)nd->heads * nd->h * nd->h;
}

static lethe_status attn_check(const lethe_model *m, const nn_node *nd, const nn_pass *p)
{
    if (p->mask && (m->seq_t < 1 || m->seq_t > nd->h))
        return lethe_fail(LETHE_ERR_ARG, "%s model: a padding mask of %d tokens for "
                          "attention over %d", m->arch, m->seq_t, nd->h);
    return LETHE_OK;
}

const nn_op_desc nn_op_attn = {
    .name = "attention",
    .forward = attn_forward,
    .backward = attn_backward,
    .flops = attn_flops,
    .workspace = attn_workspace,
    .state = attn_state,
    .check = attn_check,
};

/* ---------------------------------------------------------------- matmul */

int nn_add_matmul(lethe_model *m, int a, int b)
{
    if (!seq_in(m, "matmul", a) || !seq_in(m, "matmul", b)) return -1;
    const nn_node s = m->nodes[a], t = m->nodes[b];
    if (s.w != t.h)
        return nn_build_fail(m, "matmul: (%d, %d) times (%d, %d)", s.h, s.w, t.h, t.w);
    int i = nn_node_add(m, NN_MATMUL, a, 1, s.h, t.w);
    if (i >= 0) m->nodes[i].in1 = b;
    return i;
}

static void matmul_forward(nn_pass *p)
{
    const nn_node *nd = p->nd;
    nn_matmul_forward(nd->out, p->in, nn_node_out(p->m, nd->in1), p->n, nd->h,
                      p->m->nodes[nd->in0].w, nd->w);
}

static void matmul_backward(nn_pass *p)
{
    const nn_node *nd = p->nd;
    int add, add1;
    float *da = nn_grad_of(p->m, nd->in0, &add);
    float *db = nn_grad_of(p->m, nd->in1, &add1);
    nn_matmul_backward(da, add, db, add1, p->gin, p->in, nn_node_out(p->m, nd->in1), p->n,
                       nd->h, p->m->nodes[nd->in0].w, nd->w);
}

static double matmul_flops(const lethe_model *m, const nn_node *nd)
{
    return 2.0 * (double)nd->size * m->nodes[nd->in0].w;
}

const nn_op_desc nn_op_matmul = {
    .name = "matmul",
    .forward = matmul_forward,
    .backward = matmul_backward,
    .flops = matmul_flops,
};

/* ------------------------------------------------------- token embedding */

int nn_add_token_embed(lethe_model *m, const char *name, int vocab, int d, int t)
{
    if (vocab < 1 || d < 1 || t < 1)
        return nn_build_fail(m, "token embedding %s: %d ids of width %d, %d tokens", name,
                             vocab, d, t);
    if (m->seq_t && m->seq_t != t)
        return nn_build_fail(m, "token embedding %s: %d tokens, the model has %d", name, t,
                             m->seq_t);
    m->seq_t = t;
    int i = nn_node_add(m, NN_TOKEMB, -1, 1, t, d);
    if (i < 0) return -1;
    int ws[2] = {vocab, d};
    int tw = nn_tensor_add(m, name, "weight", 2, ws, 1, 0);
    m->nodes[i].t_w = tw;
    return tw < 0 ? -1 : i;
}

static void tokemb_forward(nn_pass *p)
{
    nn_label_embed_forward(p->nd->out, p->tok, nn_tdata(p->m, p->nd->t_w), p->n * p->nd->h,
                           p->nd->w);
}

/* Sparse: only the rows of the ids seen get gradient. */
static void tokemb_backward(nn_pass *p)
{
    const lethe_groups rows = token_rows(p->g, p->nd->h);
    nn_label_embed_backward(p->dw, p->gin, p->tok, &rows, p->nd->w);
}

/* N(0, 1), PyTorch's nn.Embedding. */
static void tokemb_init(lethe_model *m, const nn_node *nd, lethe_rng *rng)
{
    init_normal(m, nd->t_w, 1.0f, rng);
}

static lethe_status tokemb_check(const lethe_model *m, const nn_node *nd, const nn_pass *p)
{
    if (!p->tok)
        return lethe_fail(LETHE_ERR_ARG, "%s model: forward without token ids "
                          "(call lethe_model_set_tokens before each forward)", m->arch);
    const int vocab = m->tensors[nd->t_w].shape[0];
    for (long j = 0; j < (long)p->n * nd->h; j++)
        if (p->tok[j] < 0 || p->tok[j] >= vocab)
            return lethe_fail(LETHE_ERR_ARG, "%s model: token id %d of sample %ld outside "
                              "[0, %d]", m->arch, (int)p->tok[j], j / nd->h, vocab - 1);
    return LETHE_OK;
}

const nn_op_desc nn_op_tokemb = {
    .name = "token_embed",
    .forward = tokemb_forward,
    .backward = tokemb_backward,
    .init = tokemb_init,
    .check = tokemb_check,
};

/* ---------------------------------------------------- learnt positions */

int nn_add_pos_embed(lethe_model *m, const char *name, int in)
{
    if (!seq_in(m, name, in)) return -1;
    const nn_node s = m->nodes[in];
    int i = nn_node_add(m, NN_POSEMB, in, 1, s.h, s.w);
    if (i < 0) return -1;
    /* timm names the tensor itself (pos_embed), no ".weight". */
    int ps[3] = {1, s.h, s.w};
    int tw = nn_tensor_add(m, name, "", 3, ps, 1, 0);
    m->nodes[i].t_w = tw;
    return tw < 0 ? -1 : i;
}

static void posemb_forward(nn_pass *p)
{
    const float *pe = nn_tdata(p->m, p->nd->t_w);
    const size_t sz = p->nd->size;
    for (int i = 0; i < p->n; i++)
        for (size_t j = 0; j < sz; j++) p->nd->out[i * sz + j] = p->in[i * sz + j] + pe[j];
}

static void posemb_backward(nn_pass *p)
{
    const size_t sz = p->nd->size;
    for (int k = 0; k < p->g->n; k++) {
        float *dp = p->dw[k];
        if (!dp) continue;
        for (int i = p->g->start[k]; i < p->g->start[k + 1]; i++)
            for (size_t j = 0; j < sz; j++) dp[j] += p->gin[i * sz + j];
    }
    int add;
    float *din = nn_grad_of(p->m, p->nd->in0, &add);
    if (!din) return;
    for (size_t j = 0; j < p->len; j++) din[j] = add ? din[j] + p->gin[j] : p->gin[j];
}

/* timm: trunc_normal(std 0.02); a normal of 0.02 here. */
static void posemb_init(lethe_model *m, const nn_node *nd, lethe_rng *rng)
{
    init_normal(m, nd->t_w, 0.02f, rng);
}

const nn_op_desc nn_op_posemb = {
    .name = "pos_embed",
    .forward = posemb_forward,
    .backward = posemb_backward,
    .init = posemb_init,
};

/* ----------------------------------------------------------- class token */

int nn_add_cls_token(lethe_model *m, const char *name, int in)
{
    if (!seq_in(m, name, in)) return -1;
    const nn_node s = m->nodes[in];
    int i = nn_node_add(m, NN_CLS, in, 1, s.h + 1, s.w);
    if (i < 0) return -1;
    int cs[3] = {1, 1, s.w};
    int tw = nn_tensor_add(m, name, "", 3, cs, 1, 0);
    m->nodes[i].t_w = tw;
    return tw < 0 ? -1 : i;
}

static void cls_forward(nn_pass *p)
{
    const nn_node *nd = p->nd;
    const float *c = nn_tdata(p->m, nd->t_w);
    const size_t d = (size_t)nd->w, in_sz = (size_t)(nd->h - 1) * d;
    for (int i = 0; i < p->n; i++) {
        memcpy(nd->out + i * nd->size, c, d * sizeof(float));
        memcpy(nd->out + i * nd->size + d, p->in + i * in_sz, in_sz * sizeof(float));
    }
}

static void cls_backward(nn_pass *p)
{
    const nn_node *nd = p->nd;
    const size_t d = (size_t)nd->w, in_sz = (size_t)(nd->h - 1) * d;
    for (int k = 0; k < p->g->n; k++) {
        float *dc = p->dw[k];
        if (!dc) continue;
        for (int i = p->g->start[k]; i < p->g->start[k + 1]; i++)
            for (size_t j = 0; j < d; j++) dc[j] += p->gin[i * nd->size + j];
    }
    int add;
    float *din = nn_grad_of(p->m, nd->in0, &add);
    if (!din) return;
    for (int i = 0; i < p->n; i++) {
        const float *g = p->gin + i * nd->size + d;
        float *o = din + i * in_sz;
        for (size_t j = 0; j < in_sz; j++) o[j] = add ? o[j] + g[j] : g[j];
    }
}

const nn_op_desc nn_op_cls = {
    .name = "cls_token",
    .forward = cls_forward,
    .backward = cls_backward,
    .init = posemb_init,
};

/* ------------------------------------------------ mean over the tokens */

int nn_add_token_mean(lethe_model *m, int in)
{
    if (!seq_in(m, "token mean", in)) return -1;
    return nn_node_add(m, NN_TMEAN, in, 1, 1, m->nodes[in].w);
}

static void tmean_forward(nn_pass *p)
{
    const nn_node *s = &p->m->nodes[p->nd->in0];
    nn_token_mean_forward(p->nd->out, p->in, p->mask, p->tm, p->n, s->h, s->w);
}

static void tmean_backward(nn_pass *p)
{
    const nn_node *s = &p->m->nodes[p->nd->in0];
    int add;
    float *din = nn_grad_of(p->m, p->nd->in0, &add);
    if (din) nn_token_mean_backward(din, add, p->gin, p->mask, p->tm, p->n, s->h, s->w);
}

const nn_op_desc nn_op_tmean = {
    .name = "token_mean", .forward = tmean_forward, .backward = tmean_backward};

/* ------------------------------------------------ the class token's row */

int nn_add_take_first(lethe_model *m, int in)
{
    if (!seq_in(m, "first token", in)) return -1;
    return nn_node_add(m, NN_TAKE0, in, 1, 1, m->nodes[in].w);
}

static void take0_forward(nn_pass *p)
{
    const nn_node *s = &p->m->nodes[p->nd->in0];
    for (int i = 0; i < p->n; i++)
        memcpy(p->nd->out + (size_t)i * s->w, p->in + i * s->size, (size_t)s->w * sizeof(float));
}

static void take0_backward(nn_pass *p)
{
    const nn_node *s = &p->m->nodes[p->nd->in0];
    int add;
    float *din = nn_grad_of(p->m, p->nd->in0, &add);
    if (!din) return;
    for (int i = 0; i < p->n; i++) {
        float *o = din + i * s->size;
        if (!add) memset(o, 0, s->size * sizeof(float));
        for (int j = 0; j < s->w; j++) o[j] += p->gin[(size_t)i * s->w + j];
    }
}

const nn_op_desc nn_op_take0 = {
    .name = "take_first", .forward = take0_forward, .backward = take0_backward};
