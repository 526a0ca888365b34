/*
 * Normalisation ops: batch norm (with the parts the fusion planner hands
 * to the conv beside it) and group norm (with its fused SiLU). Kernels:
 * batchnorm.c, groupnorm.c.
 */
#include "nn/op.h"
#include "core/dist.h"

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f
#define GN_EPS 1e-5f     /* PyTorch's GroupNorm default */

/* ------------------------------------------------------------ batch norm */

int nn_add_bn(lethe_model *m, const char *name, int in)
{
    if (!nn_input_ok(m, name, in)) return -1;
    const nn_node s = m->nodes[in];
    int i = nn_node_add(m, NN_BN, in, s.c, s.h, s.w);
    if (i < 0) return -1;
    int cs[1] = {s.c};
    int tw = nn_tensor_add(m, name, "weight", 1, cs, 1, 0);
    int tb = nn_tensor_add(m, name, "bias", 1, cs, 1, 0);
    int rm = nn_tensor_add(m, name, "running_mean", 1, cs, 0, 0);
    int rv = nn_tensor_add(m, name, "running_var", 1, cs, 0, 0);
    int nb = nn_tensor_add(m, name, "num_batches_tracked", 0, cs, 0, 1);
    nn_node *nd = &m->nodes[i];
    nd->t_w = tw;
    nd->t_b = tb;
    nd->t_rm = rm;
    nd->t_rv = rv;
    nd->t_nb = nb;
    return (tw < 0 || tb < 0 || rm < 0 || rv < 0 || nb < 0) ? -1 : i;
}

static void bn_forward(nn_pass *p)
{
    lethe_model *m = p->m;
    nn_node *nd = p->nd;
    const lethe_groups *g = p->g;
    /* Read only by a conv that copies its input: it normalises as it
     * copies, and the output is not written here. */
    nd->bn_unwritten = nd->bn_to_add;   /* read only by a sum: it normalises as it adds */
    if (nd->bn_to_conv) {
        const int j = nn_sole_consumer(m, nd->head);
        const nn_conv_shape cs = nn_conv_shape_of(m, &m->nodes[j], p->n);
        nd->bn_unwritten = nn_conv2d_takes_affine(&cs);
    }
    nn_batchnorm_forward_ex(nd->bn_unwritten ? NULL : p->h->out, nd->mean, nd->istd, p->in,
                            nn_tdata(m, nd->t_w), nn_tdata(m, nd->t_b), nn_tdata(m, nd->t_rm),
                            nn_tdata(m, nd->t_rv), p->n, nd->c, nd->h * nd->w, g, p->mode,
                            BN_MOMENTUM, BN_EPS, nd->relu,
                            p->mode != LETHE_BN_EVAL ? m->nodes[nd->in0].stats : NULL);
    /* A batch a group; --deterministic's chunks of one batch count once. */
    const core_dist_plan *pl = core_dist_plan_for(g);
    if (p->mode == LETHE_BN_TRAIN) nn_tdata(m, nd->t_nb)[0] += (float)(pl ? pl->sets : g->n);
    else if (p->mode == LETHE_BN_TRAIN_LAST) nn_tdata(m, nd->t_nb)[0] += 1.0f;
}

static void bn_backward(nn_pass *p)
{
    lethe_model *m = p->m;
    nn_node *nd = p->nd;
    int add;
    float *din = nn_grad_of(m, nd->in0, &add);
    if (nd->bn_defer) {   /* its conv is its input's only writer: add is 0 */
        /* Only the sums: the conv before runs the last pass. */
        nn_batchnorm_backward_sums(p->dw, p->db, nd->bsum, p->gin, nd->relu, p->in, nd->mean,
                                   nd->istd, nn_tdata(m, nd->t_w), nn_tdata(m, nd->t_b), p->n,
                                   nd->c, nd->h * nd->w, p->g, m->last_mode);
        return;
    }
    nn_batchnorm_backward_ex(din, add, p->dw, p->db, p->gin, nd->relu, p->in, nd->mean,
                             nd->istd, nn_tdata(m, nd->t_w), nn_tdata(m, nd->t_b), p->n, nd->c,
                             nd->h * nd->w, p->g, m->last_mode);
}

/* γ = 1, β = 0, running mean 0 and variance 1, no batches tracked. */
static void bn_init(lethe_model *m, const nn_node *nd, lethe_rng *rng)
{
    (void)rng;
    for (int j = 0; j < nd->c; j++) {
        m->tensors[nd->t_w].data[j] = 1.0f;
        m->tensors[nd->t_b].data[j] = 0.0f;
        m->tensors[nd->t_rm].data[j] = 0.0f;
        m->tensors[nd->t_rv].data[j] = 1.0f;
    }
    m->tensors[nd->t_nb].data[0] = 0.0f;
}

/* μ and 1/σ per sample group and channel, and the backward's sums. */
static size_t bn_state(lethe_model *m, int i, float *p, size_t N)
{
    (void)N;
    nn_node *nd = &m->nodes[i];
    const size_t gc = (size_t)LETHE_MAX_GROUPS * nd->c;
    if (p) {
        nd->mean = p;
        nd->istd = p + gc;
        nd->bsum = p + 2 * gc;
    }
    return 4 * gc;
}

const nn_op_desc nn_op_bn = {
    .name = "batchnorm",
    .forward = bn_forward,
    .backward = bn_backward,
    .init = bn_init,
    .state = bn_state,
};

/* ------------------------------------------------------------ group norm */

int nn_add_groupnorm(lethe_model *m, const char *name, int in, int ng, int silu)
{
    if (!nn_input_ok(m, name, in)) return -1;
    const nn_node s = m->nodes[in];
    if (ng < 1 || s.c % ng != 0)
        return nn_build_fail(m, "group norm %s: %d channels do not split into %d groups",
                             name, s.c, ng);
    int i = nn_node_add(m, NN_GN, in, s.c, s.h, s.w);
    if (i < 0) return -1;
    int cs[1] = {s.c};
    int tw = nn_tensor_add(m, name, "weight", 1, cs, 1, 0);
    int tb = nn_tensor_add(m, name, "bias", 1, cs, 1, 0);
    nn_node *nd = &m->nodes[i];
    nd->ng = ng;
    nd->silu = silu;
    nd->t_w = tw;
    nd->t_b = tb;
    return (tw < 0 || tb < 0) ? -1 : i;
}

static void gn_forward(nn_pass *p)
{
    lethe_model *m = p->m;
    nn_node *nd = p->nd;
    nn_groupnorm_forward(nd->out, nd->mean, nd->istd, p->in, nn_tdata(m, nd->t_w),
                         nn_tdata(m, nd->t_b), p->n, nd->c, nd->h * nd->w, nd->ng, GN_EPS,
                         nd->silu);
}

static void gn_backward(nn_pass *p)
{
    lethe_model *m = p->m;
    nn_node *nd = p->nd;
    int add;
    float *din = nn_grad_of(m, nd->in0, &add);
    nn_groupnorm_backward(din, add, p->dw, p->db, p->gin, p->in, nd->mean, nd->istd,
                          nn_tdata(m, nd->t_w), nn_tdata(m, nd->t_b), nd->c, nd->h * nd->w,
                          nd->ng, p->g, nd->silu);
}

static void gn_init(lethe_model *m, const nn_node *nd, lethe_rng *rng)
{
    (void)rng;
    for (int j = 0; j < nd->c; j++) {
        m->tensors[nd->t_w].data[j] = 1.0f;
        m->tensors[nd->t_b].data[j] = 0.0f;
    }
}

/* Statistics 4 and normalise-and-affine 4 operations per value, SiLU 6. */
static double gn_flops(const lethe_model *m, const nn_node *nd)
{
    (void)m;
    return (nd->silu ? 14.0 : 8.0) * (double)nd->size;
}

/* μ and 1/σ per sample and channel group. */
static size_t gn_state(lethe_model *m, int i, float *p, size_t N)
{
    nn_node *nd = &m->nodes[i];
    if (p) {
        nd->mean = p;
        nd->istd = p + N * nd->ng;
    }
    return 2 * N * (size_t)nd->ng;
}

const nn_op_desc nn_op_gn = {
    .name = "groupnorm",
    .forward = gn_forward,
    .backward = gn_backward,
    .init = gn_init,
    .flops = gn_flops,
    .state = gn_state,
};
