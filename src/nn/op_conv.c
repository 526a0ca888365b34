/*
 * conv2d as a graph op: builder, table row and the glue to the kernels
 * (conv2d.c), including what the fusion planner (fuse.c) folds into it:
 * a ReLU and max pool after it, the batch norm before it (applied as its
 * input is copied) and the last pass of the batch norm after it.
 */
#include "nn/op.h"

int nn_add_conv(lethe_model *m, const char *name, int in, int oc, int k,
                int stride, int pad, int bias)
{
    if (!nn_input_ok(m, name, in)) return -1;
    if (oc < 1 || k < 1 || stride < 1 || pad < 0)
        return nn_build_fail(m, "conv %s: bad geometry (%d channels, kernel %d, stride %d, "
                             "padding %d)", name, oc, k, stride, pad);
    const nn_node *src = &m->nodes[in];
    if (src->h + 2 * pad < k || src->w + 2 * pad < k)
        return nn_build_fail(m, "conv %s: kernel %d larger than its padded %dx%d input", name,
                             k, src->h + 2 * pad, src->w + 2 * pad);
    int oh = (src->h + 2 * pad - k) / stride + 1;
    int ow = (src->w + 2 * pad - k) / stride + 1;
    const int ic = src->c;
    int i = nn_node_add(m, NN_CONV, in, oc, oh, ow);
    if (i < 0) return -1;
    nn_node *nd = &m->nodes[i];
    nd->k = k;
    nd->stride = stride;
    nd->pad = pad;
    int ws[4] = {oc, ic, k, k}, bs[1] = {oc};
    nd->t_w = nn_tensor_add(m, name, "weight", 4, ws, 1, 0);
    if (bias) nd->t_b = nn_tensor_add(m, name, "bias", 1, bs, 1, 0);
    return (nd->t_w < 0 || (bias && nd->t_b < 0)) ? -1 : i;
}

static void conv_forward(nn_pass *p)
{
    lethe_model *m = p->m;
    nn_node *nd = p->nd;
    const float *in = p->in;
    nn_conv_shape s = nn_conv_shape_of(m, nd, p->n);
    nn_epilogue ep = {.relu = nd->relu, .stats = p->mode != LETHE_BN_EVAL ? nd->stats : NULL};
    if (nd->pool >= 0) {
        ep.pool_k = m->nodes[nd->pool].k;
        ep.pool_s = m->nodes[nd->pool].stride;
    }
    nn_affine af;
    const nn_node *bn = nn_bn_in(m, p->i);
    if (bn) {   /* the batch norm before left its output to this conv */
        af = (nn_affine){bn->mean, bn->istd, nn_tdata(m, bn->t_w), nn_tdata(m, bn->t_b), p->g,
                         bn->relu};
        ep.in_affine = &af;
        in = nn_node_out(m, bn->in0);
    }
    nn_conv2d_forward_ex(p->h->out, p->h->arg, in, nn_tdata(m, nd->t_w), nn_tdata(m, nd->t_b),
                         &s, &ep, m->ws);
}

static void conv_backward(nn_pass *p)
{
    lethe_model *m = p->m;
    nn_node *nd = p->nd, *h = p->h;
    const float *in = p->in, *gin = p->gin;
    const lethe_groups *g = p->g;
    nn_conv_shape s = nn_conv_shape_of(m, nd, p->n);
    nn_epilogue ep = {.relu = nd->relu};
    if (nd->pool >= 0) {
        ep.pool_k = m->nodes[nd->pool].k;
        ep.pool_s = m->nodes[nd->pool].stride;
    }
    nn_affine af;
    const nn_node *bni = nn_bn_in(m, p->i);
    if (bni) {   /* as in forward: its input is normalised as it is copied */
        af = (nn_affine){bni->mean, bni->istd, nn_tdata(m, bni->t_w), nn_tdata(m, bni->t_b), g,
                         bni->relu};
        ep.in_affine = &af;
        in = nn_node_out(m, bni->in0);
    }
    /* The batch norm after it left its last pass to this conv. */
    const int b = nn_sole_consumer(m, p->i);
    nn_bn_grad bg;
    if (b >= 0 && m->nodes[b].bn_defer) {
        const nn_node *bn = &m->nodes[b];
        bg = (nn_bn_grad){.dy = m->nodes[bn->head].dout, .x = h->out, .mean = bn->mean,
                          .istd = bn->istd, .sums = bn->bsum,
                          .gamma = nn_tdata(m, bn->t_w), .beta = nn_tdata(m, bn->t_b),
                          .g = g, .relu = bn->relu,
                          .eval = m->last_mode == LETHE_BN_EVAL};
        ep.bn = &bg;
        gin = NULL;
    }
    int add;
    float *din = nn_grad_of(m, nd->in0, &add);
    nn_conv2d_backward_ex(din, add, p->dw, p->db, gin, h->out, h->arg, in,
                          nn_tdata(m, nd->t_w), &s, &ep, g, m->ws);
}

static double conv_flops(const lethe_model *m, const nn_node *nd)
{
    return 2.0 * (double)m->tensors[nd->t_w].numel * nd->h * nd->w;
}

static size_t conv_workspace(const lethe_model *m, const nn_node *nd, int n)
{
    nn_conv_shape s = nn_conv_shape_of(m, nd, n);
    return nn_conv2d_workspace(&s);
}

/* A conv read only by a batch norm: its output planes' statistics. */
static size_t conv_state(lethe_model *m, int i, float *p, size_t N)
{
    if (!nn_conv_feeds_bn(m, i)) return 0;
    const size_t f = 3 * N * (size_t)m->nodes[i].c;
    if (p) m->nodes[i].stats = p;
    return f;
}

const nn_op_desc nn_op_conv = {
    .name = "conv",
    .forward = conv_forward,
    .backward = conv_backward,
    .init = nn_init_fan_in,
    .flops = conv_flops,
    .workspace = conv_workspace,
    .state = conv_state,
};
