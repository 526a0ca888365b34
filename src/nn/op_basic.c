/*
 * The graph's input and the ops without statistics: linear, ReLU, max
 * pool, global average pool, residual sum, SiLU, ×2 upsampling, channel
 * concatenation and the channel-broadcast add. Kernels: linear.c,
 * relu.c, maxpool.c, gap.c, silu.c, upsample.c, concat.c, embed.c.
 */
#include <string.h>

#include "nn/op.h"

/* ------------------------------------------------------------------ input */

int nn_add_input(lethe_model *m)
{
    return nn_node_add(m, NN_INPUT, -1, m->in_c, m->in_h, m->in_w);
}

/* Never called: the graph skips its input node. */
static void input_forward(nn_pass *p) { (void)p; }

const nn_op_desc nn_op_input = {.name = "input", .forward = input_forward};

/* ----------------------------------------------------------------- linear */

int nn_add_linear(lethe_model *m, const char *name, int in, int out_f)
{
    if (!nn_input_ok(m, name, in)) return -1;
    if (out_f < 1) return nn_build_fail(m, "linear %s: %d output features", name, out_f);
    int in_f = (int)m->nodes[in].size;
    int i = nn_node_add(m, NN_LINEAR, in, out_f, 1, 1);
    if (i < 0) return -1;
    int ws[2] = {out_f, in_f}, bs[1] = {out_f};
    int tw = nn_tensor_add(m, name, "weight", 2, ws, 1, 0);
    int tb = nn_tensor_add(m, name, "bias", 1, bs, 1, 0);
    m->nodes[i].t_w = tw;
    m->nodes[i].t_b = tb;
    return (tw < 0 || tb < 0) ? -1 : i;
}

static void linear_forward(nn_pass *p)
{
    lethe_model *m = p->m;
    nn_node *nd = p->nd;
    nn_linear_forward_ex(p->h->out, p->in, nn_tdata(m, nd->t_w), nn_tdata(m, nd->t_b), p->n,
                         (int)m->nodes[nd->in0].size, nd->c, nd->relu);
}

static void linear_backward(nn_pass *p)
{
    lethe_model *m = p->m;
    nn_node *nd = p->nd;
    if (nd->relu) nn_relu_mask(p->gout, p->h->out, p->len);
    int add;
    float *din = nn_grad_of(m, nd->in0, &add);
    nn_linear_backward_ex(din, add, p->dw, p->db, p->gin, p->in, nn_tdata(m, nd->t_w), p->g,
                          (int)m->nodes[nd->in0].size, nd->c);
}

static double linear_flops(const lethe_model *m, const nn_node *nd)
{
    return 2.0 * (double)m->tensors[nd->t_w].numel * nd->h * nd->w;
}

const nn_op_desc nn_op_linear = {
    .name = "linear",
    .forward = linear_forward,
    .backward = linear_backward,
    .init = nn_init_fan_in,
    .flops = linear_flops,
};

/* ------------------------------------------------------------------- ReLU */

int nn_add_relu(lethe_model *m, int in)
{
    if (!nn_input_ok(m, "relu", in)) return -1;
    const nn_node s = m->nodes[in];
    return nn_node_add(m, NN_RELU, in, s.c, s.h, s.w);
}

static void relu_forward(nn_pass *p) { nn_relu_forward(p->nd->out, p->in, p->len); }

static void relu_backward(nn_pass *p)
{
    float *din = nn_grad_acc(p->m, p->nd->in0, p->n);
    if (din) nn_relu_backward(din, p->gin, p->nd->out, p->len);
}

const nn_op_desc nn_op_relu = {
    .name = "relu", .forward = relu_forward, .backward = relu_backward};

/* --------------------------------------------------------------- max pool */

int nn_add_maxpool(lethe_model *m, int in, int k, int stride)
{
    if (!nn_input_ok(m, "max pool", in)) return -1;
    const nn_node s = m->nodes[in];
    if (k < 1 || stride < 1 || k > s.h || k > s.w)
        return nn_build_fail(m, "max pool: window %d, stride %d on a %dx%d input", k, stride,
                             s.h, s.w);
    int i = nn_node_add(m, NN_MAXPOOL, in, s.c, (s.h - k) / stride + 1,
                        (s.w - k) / stride + 1);
    if (i >= 0) {
        m->nodes[i].k = k;
        m->nodes[i].stride = stride;
    }
    return i;
}

static void maxpool_forward(nn_pass *p)
{
    const nn_node *nd = p->nd, *s = &p->m->nodes[nd->in0];
    nn_maxpool_forward(nd->out, nd->arg, p->in, p->n, s->c, s->h, s->w, nd->k, nd->stride);
}

static void maxpool_backward(nn_pass *p)
{
    const nn_node *nd = p->nd, *s = &p->m->nodes[nd->in0];
    float *din = nn_grad_acc(p->m, nd->in0, p->n);
    if (din) nn_maxpool_backward(din, p->gin, nd->arg, p->n, s->c, s->h, s->w, nd->h, nd->w);
}

const nn_op_desc nn_op_maxpool = {
    .name = "maxpool",
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .out_arg = 1,
};

/* ---------------------------------------------------- global average pool */

int nn_add_gap(lethe_model *m, int in)
{
    if (!nn_input_ok(m, "global average pool", in)) return -1;
    return nn_node_add(m, NN_GAP, in, m->nodes[in].c, 1, 1);
}

static void gap_forward(nn_pass *p)
{
    const nn_node *s = &p->m->nodes[p->nd->in0];
    nn_gap_forward(p->nd->out, p->in, p->n, s->c, s->h * s->w);
}

static void gap_backward(nn_pass *p)
{
    const nn_node *s = &p->m->nodes[p->nd->in0];
    int add;
    float *din = nn_grad_of(p->m, p->nd->in0, &add);
    if (din) nn_gap_backward_ex(din, add, p->gin, p->n, s->c, s->h * s->w);
}

const nn_op_desc nn_op_gap = {.name = "gap", .forward = gap_forward, .backward = gap_backward};

/* ------------------------------------------------------------ residual sum */

int nn_add_sum(lethe_model *m, int a, int b)
{
    if (!nn_input_ok(m, "sum", a) || !nn_input_ok(m, "sum", b)) return -1;
    const nn_node s = m->nodes[a];
    if (s.size != m->nodes[b].size)
        return nn_build_fail(m, "sum of nodes %d and %d: sizes %zu and %zu differ", a, b,
                             s.size, m->nodes[b].size);
    int i = nn_node_add(m, NN_ADD, a, s.c, s.h, s.w);
    if (i >= 0) m->nodes[i].in1 = b;
    return i;
}

static void add_forward(nn_pass *p)
{
    lethe_model *m = p->m;
    const nn_node *nd = p->nd;
    const nn_node *ba = nn_bn_at(m, nd->in0), *bb = nn_bn_at(m, nd->in1);
    if (!ba && !bb) {
        nn_add_forward_ex(p->h->out, p->in, nn_node_out(m, nd->in1), p->len, nd->relu);
        return;
    }
    /* A batch norm before left its output unwritten (bn_to_add): normalise
     * its input here. */
    nn_affine fa, fb;
    if (ba)
        fa = (nn_affine){ba->mean, ba->istd, nn_tdata(m, ba->t_w), nn_tdata(m, ba->t_b), p->g, 0};
    if (bb)
        fb = (nn_affine){bb->mean, bb->istd, nn_tdata(m, bb->t_w), nn_tdata(m, bb->t_b), p->g, 0};
    nn_add_bn_forward(p->h->out, ba ? nn_node_out(m, ba->in0) : p->in, ba ? &fa : NULL,
                      bb ? nn_node_out(m, bb->in0) : nn_node_out(m, nd->in1), bb ? &fb : NULL,
                      p->n, nd->c, nd->h * nd->w, nd->relu);
}

static void add_backward(nn_pass *p)
{
    lethe_model *m = p->m;
    nn_node *nd = p->nd;
    const size_t len = p->len;
    int add, add1;
    float *da = nn_grad_of(m, nd->in0, &add);
    float *db1 = nn_grad_of(m, nd->in1, &add1);
    if (p->gout) {
        /* An input whose gradient buffer is gout itself (nn_dout_alias)
         * receives it by the masking in place. */
        nn_add_backward_ex(da == p->gout ? NULL : da, add, db1 == p->gout ? NULL : db1, add1,
                           p->gout, nd->relu ? p->h->out : NULL, len);
    } else {
        /* The last node: dlogits is read only (never fused, no mask). */
        if (da && !add) memset(da, 0, len * sizeof(float));
        if (db1 && !add1) memset(db1, 0, len * sizeof(float));
        nn_add_backward(da, db1, p->gin, len);
    }
}

const nn_op_desc nn_op_add = {.name = "add", .forward = add_forward, .backward = add_backward};

/* ------------------------------------------------------------------- SiLU */

int nn_add_silu(lethe_model *m, int in)
{
    if (!nn_input_ok(m, "silu", in)) return -1;
    const nn_node s = m->nodes[in];
    return nn_node_add(m, NN_SILU, in, s.c, s.h, s.w);
}

static void silu_forward(nn_pass *p) { nn_silu_forward(p->nd->out, p->in, p->len); }

static void silu_backward(nn_pass *p)
{
    int add;
    float *din = nn_grad_of(p->m, p->nd->in0, &add);
    if (din) nn_silu_backward(din, add, p->gin, p->in, p->len);
}

/* Six operations per value, the exponential's polynomial counted as one. */
static double silu_flops(const lethe_model *m, const nn_node *nd)
{
    (void)m;
    return 6.0 * (double)nd->size;
}

const nn_op_desc nn_op_silu = {
    .name = "silu", .forward = silu_forward, .backward = silu_backward, .flops = silu_flops};

/* ------------------------------------------------------- ×2 upsampling */

int nn_add_upsample(lethe_model *m, int in)
{
    if (!nn_input_ok(m, "upsample", in)) return -1;
    const nn_node s = m->nodes[in];
    return nn_node_add(m, NN_UPSAMPLE, in, s.c, 2 * s.h, 2 * s.w);
}

static void upsample_forward(nn_pass *p)
{
    const nn_node *s = &p->m->nodes[p->nd->in0];
    nn_upsample2_forward(p->nd->out, p->in, p->n, s->c, s->h, s->w);
}

static void upsample_backward(nn_pass *p)
{
    const nn_node *s = &p->m->nodes[p->nd->in0];
    int add;
    float *din = nn_grad_of(p->m, p->nd->in0, &add);
    if (din) nn_upsample2_backward(din, add, p->gin, p->n, s->c, s->h, s->w);
}

const nn_op_desc nn_op_upsample = {
    .name = "upsample", .forward = upsample_forward, .backward = upsample_backward};

/* ------------------------------------------------- channel concatenation */

int nn_add_concat(lethe_model *m, int a, int b)
{
    if (!nn_input_ok(m, "concat", a) || !nn_input_ok(m, "concat", b)) return -1;
    const nn_node s = m->nodes[a], t = m->nodes[b];
    if (s.h != t.h || s.w != t.w)
        return nn_build_fail(m, "concat of nodes %d and %d: planes %dx%d and %dx%d differ", a,
                             b, s.h, s.w, t.h, t.w);
    int i = nn_node_add(m, NN_CONCAT, a, s.c + t.c, s.h, s.w);
    if (i >= 0) m->nodes[i].in1 = b;
    return i;
}

static void concat_forward(nn_pass *p)
{
    const lethe_model *m = p->m;
    const nn_node *nd = p->nd;
    nn_concat_forward(nd->out, p->in, nn_node_out(m, nd->in1), p->n, m->nodes[nd->in0].c,
                      m->nodes[nd->in1].c, nd->h * nd->w);
}

static void concat_backward(nn_pass *p)
{
    lethe_model *m = p->m;
    const nn_node *nd = p->nd;
    int add, add1;
    float *da = nn_grad_of(m, nd->in0, &add);
    float *db1 = nn_grad_of(m, nd->in1, &add1);
    nn_concat_backward(da, add, db1, add1, p->gin, p->n, m->nodes[nd->in0].c,
                       m->nodes[nd->in1].c, nd->h * nd->w);
}

const nn_op_desc nn_op_concat = {
    .name = "concat", .forward = concat_forward, .backward = concat_backward};

/* --------------------------------------------------- broadcast add */

int nn_add_bcast_add(lethe_model *m, int x, int v)
{
    if (!nn_input_ok(m, "broadcast add", x) || !nn_input_ok(m, "broadcast add", v)) return -1;
    const nn_node s = m->nodes[x];
    if (m->nodes[v].size != (size_t)s.c)
        return nn_build_fail(m, "broadcast add: a vector of %zu for %d channels",
                             m->nodes[v].size, s.c);
    int i = nn_node_add(m, NN_BCAST_ADD, x, s.c, s.h, s.w);
    if (i >= 0) m->nodes[i].in1 = v;
    return i;
}

static void bcast_add_forward(nn_pass *p)
{
    const nn_node *nd = p->nd;
    nn_bcast_add_forward(nd->out, p->in, nn_node_out(p->m, nd->in1), p->n, nd->c,
                         nd->h * nd->w);
}

static void bcast_add_backward(nn_pass *p)
{
    const nn_node *nd = p->nd;
    int add, add1;
    float *dx = nn_grad_of(p->m, nd->in0, &add);
    float *dv = nn_grad_of(p->m, nd->in1, &add1);
    nn_bcast_add_backward(dx, add, dv, add1, p->gin, p->n, nd->c, nd->h * nd->w);
}

/* One operation per value. */
static double bcast_add_flops(const lethe_model *m, const nn_node *nd)
{
    (void)m;
    return 1.0 * (double)nd->size;
}

const nn_op_desc nn_op_bcast_add = {
    .name = "bcast_add",
    .forward = bcast_add_forward,
    .backward = bcast_add_backward,
    .flops = bcast_add_flops,
};
