/*
 * The model graph: registration of tensors and nodes, one flat θ, and the
 * forward and (grouped) backward passes that walk the node list.
 */
#include "nn/model.h"
#include "core/fail.h"
#include "nn/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f
#define GN_EPS 1e-5f     /* PyTorch's GroupNorm default */

void lethe_groups_one(lethe_groups *g, int n)
{
    memset(g, 0, sizeof *g);
    g->n = 1;
    g->start[1] = n;
}

void lethe_groups_two(lethe_groups *g, int n0, int n1)
{
    memset(g, 0, sizeof *g);
    g->n = 2;
    g->start[1] = n0;
    g->start[2] = n0 + n1;
}

/* ------------------------------------------------------------ building */

/* Register a tensor; offsets into θ or the buffers are assigned in order,
 * data pointers once the model knows its size. */
static int add_tensor(lethe_model *m, const char *name, int ndim, const int *shape,
                      int trainable, int is_int64)
{
    if (m->ntensors >= NN_MAX_TENSORS) return -1;
    int i = m->ntensors++;
    lethe_tensor *t = &m->tensors[i];
    snprintf(m->names[i], NN_NAME_LEN, "%s", name);
    t->name = m->names[i];
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->numel *= (size_t)shape[d];
    }
    t->trainable = trainable;
    t->is_int64 = is_int64;
    if (trainable) {
        t->offset = m->n;
        m->n += t->numel;
    } else {
        t->offset = m->nbuf;
        m->nbuf += t->numel;
    }
    return i;
}

static int add_tensor_named(lethe_model *m, const char *prefix, const char *suffix,
                            int ndim, const int *shape, int trainable, int is_int64)
{
    char name[NN_NAME_LEN];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    return add_tensor(m, name, ndim, shape, trainable, is_int64);
}

static int add_node(lethe_model *m, nn_op op, int in0, int c, int h, int w)
{
    if (m->nnodes >= NN_MAX_NODES) return -1;
    int i = m->nnodes++;
    nn_node *nd = &m->nodes[i];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->in0 = in0;
    nd->in1 = -1;
    nd->c = c;
    nd->h = h;
    nd->w = w;
    nd->size = (size_t)c * h * w;
    nd->t_w = nd->t_b = nd->t_rm = nd->t_rv = nd->t_nb = -1;
    nd->pool = nd->fold = -1;
    nd->head = i;
    return i;
}

int nn_add_input(lethe_model *m)
{
    return add_node(m, NN_INPUT, -1, m->in_c, m->in_h, m->in_w);
}

int nn_add_conv(lethe_model *m, const char *name, int in, int oc, int k,
                int stride, int pad, int bias)
{
    if (in < 0) return -1;
    const nn_node *src = &m->nodes[in];
    int oh = (src->h + 2 * pad - k) / stride + 1;
    int ow = (src->w + 2 * pad - k) / stride + 1;
    int i = add_node(m, NN_CONV, in, oc, oh, ow);
    if (i < 0) return -1;
    nn_node *nd = &m->nodes[i];
    nd->k = k;
    nd->stride = stride;
    nd->pad = pad;
    int ws[4] = {oc, src->c, k, k}, bs[1] = {oc};
    nd->t_w = add_tensor_named(m, name, "weight", 4, ws, 1, 0);
    if (bias) nd->t_b = add_tensor_named(m, name, "bias", 1, bs, 1, 0);
    return (nd->t_w < 0 || (bias && nd->t_b < 0)) ? -1 : i;
}

int nn_add_linear(lethe_model *m, const char *name, int in, int out_f)
{
    if (in < 0) return -1;
    int in_f = (int)m->nodes[in].size;
    int i = add_node(m, NN_LINEAR, in, out_f, 1, 1);
    if (i < 0) return -1;
    nn_node *nd = &m->nodes[i];
    int ws[2] = {out_f, in_f}, bs[1] = {out_f};
    nd->t_w = add_tensor_named(m, name, "weight", 2, ws, 1, 0);
    nd->t_b = add_tensor_named(m, name, "bias", 1, bs, 1, 0);
    return (nd->t_w < 0 || nd->t_b < 0) ? -1 : i;
}

int nn_add_relu(lethe_model *m, int in)
{
    if (in < 0) return -1;
    const nn_node *s = &m->nodes[in];
    return add_node(m, NN_RELU, in, s->c, s->h, s->w);
}

int nn_add_maxpool(lethe_model *m, int in, int k, int stride)
{
    if (in < 0) return -1;
    const nn_node *s = &m->nodes[in];
    int i = add_node(m, NN_MAXPOOL, in, s->c, (s->h - k) / stride + 1, (s->w - k) / stride + 1);
    if (i >= 0) {
        m->nodes[i].k = k;
        m->nodes[i].stride = stride;
    }
    return i;
}

int nn_add_gap(lethe_model *m, int in)
{
    if (in < 0) return -1;
    return add_node(m, NN_GAP, in, m->nodes[in].c, 1, 1);
}

int nn_add_bn(lethe_model *m, const char *name, int in)
{
    if (in < 0) return -1;
    const nn_node *s = &m->nodes[in];
    int i = add_node(m, NN_BN, in, s->c, s->h, s->w);
    if (i < 0) return -1;
    nn_node *nd = &m->nodes[i];
    int cs[1] = {s->c};
    nd->t_w = add_tensor_named(m, name, "weight", 1, cs, 1, 0);
    nd->t_b = add_tensor_named(m, name, "bias", 1, cs, 1, 0);
    nd->t_rm = add_tensor_named(m, name, "running_mean", 1, cs, 0, 0);
    nd->t_rv = add_tensor_named(m, name, "running_var", 1, cs, 0, 0);
    nd->t_nb = add_tensor_named(m, name, "num_batches_tracked", 0, cs, 0, 1);
    return (nd->t_w < 0 || nd->t_b < 0 || nd->t_rm < 0 || nd->t_rv < 0 || nd->t_nb < 0)
               ? -1 : i;
}

int nn_add_sum(lethe_model *m, int a, int b)
{
    if (a < 0 || b < 0) return -1;
    const nn_node *s = &m->nodes[a];
    if (s->size != m->nodes[b].size) return -1;
    int i = add_node(m, NN_ADD, a, s->c, s->h, s->w);
    if (i >= 0) m->nodes[i].in1 = b;
    return i;
}

int nn_add_groupnorm(lethe_model *m, const char *name, int in, int ng, int silu)
{
    if (in < 0 || ng < 1 || m->nodes[in].c % ng != 0) return -1;
    const nn_node *s = &m->nodes[in];
    int i = add_node(m, NN_GN, in, s->c, s->h, s->w);
    if (i < 0) return -1;
    nn_node *nd = &m->nodes[i];
    nd->ng = ng;
    nd->silu = silu;
    int cs[1] = {s->c};
    nd->t_w = add_tensor_named(m, name, "weight", 1, cs, 1, 0);
    nd->t_b = add_tensor_named(m, name, "bias", 1, cs, 1, 0);
    return (nd->t_w < 0 || nd->t_b < 0) ? -1 : i;
}

int nn_add_silu(lethe_model *m, int in)
{
    if (in < 0) return -1;
    const nn_node *s = &m->nodes[in];
    return add_node(m, NN_SILU, in, s->c, s->h, s->w);
}

int nn_add_upsample(lethe_model *m, int in)
{
    if (in < 0) return -1;
    const nn_node *s = &m->nodes[in];
    return add_node(m, NN_UPSAMPLE, in, s->c, 2 * s->h, 2 * s->w);
}

int nn_add_concat(lethe_model *m, int a, int b)
{
    if (a < 0 || b < 0) return -1;
    const nn_node *s = &m->nodes[a], *t = &m->nodes[b];
    if (s->h != t->h || s->w != t->w) return -1;
    int i = add_node(m, NN_CONCAT, a, s->c + t->c, s->h, s->w);
    if (i >= 0) m->nodes[i].in1 = b;
    return i;
}

int nn_add_temb(lethe_model *m, int d)
{
    return d < 2 ? -1 : add_node(m, NN_TEMB, -1, d, 1, 1);
}

int nn_add_lemb(lethe_model *m, const char *name, int rows, int d)
{
    if (rows < 1 || d < 1) return -1;
    int i = add_node(m, NN_LEMB, -1, d, 1, 1);
    if (i < 0) return -1;
    int ws[2] = {rows, d};
    m->nodes[i].t_w = add_tensor_named(m, name, "weight", 2, ws, 1, 0);
    return m->nodes[i].t_w < 0 ? -1 : i;
}

int nn_add_bcast_add(lethe_model *m, int x, int v)
{
    if (x < 0 || v < 0) return -1;
    const nn_node *s = &m->nodes[x];
    if (m->nodes[v].size != (size_t)s->c) return -1;
    int i = add_node(m, NN_BCAST_ADD, x, s->c, s->h, s->w);
    if (i >= 0) m->nodes[i].in1 = v;
    return i;
}

/* ------------------------------------------------------------- fusion */

/* The only node that reads node i, or −1 (none or several). */
static int sole_consumer(const lethe_model *m, int i)
{
    int who = -1, count = 0;
    for (int j = 0; j < m->nnodes; j++) {
        count += (m->nodes[j].in0 == i) + (m->nodes[j].in1 == i);
        if (m->nodes[j].in0 == i || m->nodes[j].in1 == i) who = j;
    }
    return count == 1 ? who : -1;
}

/* A ReLU that is the only reader of a conv, linear, batch norm or
 * residual sum folds into it: the producer applies it to its output in
 * cache (no pass over memory, no buffer). A max pool that is the only
 * reader of a conv's ReLU folds in too, so the conv's full-size output is
 * never stored. The last node is never folded: its gradient is the
 * caller's dlogits, which backward must not write. */
static int conv_feeds_bn(const lethe_model *m, int i);

void nn_fuse(lethe_model *m)
{
    const int last = m->nnodes - 1;
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        if (nd->op != NN_CONV && nd->op != NN_LINEAR && nd->op != NN_BN && nd->op != NN_ADD)
            continue;
        int r = sole_consumer(m, i);
        if (r < 0 || r == last || m->nodes[r].op != NN_RELU) continue;
        nd->relu = 1;
        m->nodes[r].fold = i;
        nd->head = r;
        if (nd->op != NN_CONV) continue;
        int p = sole_consumer(m, r);
        if (p < 0 || p == last || m->nodes[p].op != NN_MAXPOOL) continue;
        nd->pool = p;
        m->nodes[p].fold = i;
        nd->head = p;
    }
    for (int i = 0; i < m->nnodes; i++)
        if (m->nodes[i].fold >= 0) m->nodes[i].head = m->nodes[m->nodes[i].fold].head;
    /* A batch norm whose input only a conv writes and only it reads: the
     * conv makes the batch norm's input gradient as it builds its own
     * output gradient (nn_bn_grad), which spares a pass writing that
     * gradient and one reading it. */
    for (int i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == NN_BN && m->nodes[i].in0 >= 0 &&
            m->nodes[i].head != m->nnodes - 1 && conv_feeds_bn(m, m->nodes[i].in0))
            m->nodes[i].bn_defer = 1;
    /* A batch norm (with its ReLU) read only by a conv: the conv may apply
     * it as it copies its input (nn_affine), so that the normalised tensor
     * is never written (decided per forward: the conv's lowering must copy
     * its input). */
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        if (nd->op != NN_BN || nd->head == m->nnodes - 1) continue;
        const int j = sole_consumer(m, nd->head);
        if (j >= 0 && m->nodes[j].op == NN_CONV && m->nodes[j].in0 == nd->head)
            nd->bn_to_conv = 1;
    }
}

/* The batch norm whose normalisation conv node i applies to its input in
 * this forward, or NULL. */
static const nn_node *bn_in(const lethe_model *m, int i)
{
    const int src = m->nodes[i].in0;
    if (src < 0) return NULL;
    const int b = m->nodes[src].fold >= 0 ? m->nodes[src].fold : src;
    const nn_node *bn = &m->nodes[b];
    return bn->op == NN_BN && bn->bn_unwritten ? bn : NULL;
}

/* ------------------------------------------------------------- create */

static const struct {
    const char *name;
    lethe_status (*build)(lethe_model *);
} arch_table[] = {
    {"mlp", nn_build_mlp},
    {"cnn", nn_build_cnn},
    {"resnet8", nn_build_resnet8},
    {"resnet20", nn_build_resnet20},
    {"resnet18", nn_build_resnet18},
    {"unet", nn_build_unet},
};

lethe_status lethe_model_create(lethe_model **out, const char *arch,
                                int in_c, int in_h, int in_w, int nclass)
{
    *out = NULL;
    /* The kernel set, chosen once; a LETHE_KERNELS this CPU cannot run is
     * refused here, before any work. */
    lethe_status ks = nn_kernels_init();
    if (ks != LETHE_OK) return ks;
    lethe_status (*build)(lethe_model *) = NULL;
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (strcmp(arch, arch_table[i].name) == 0) build = arch_table[i].build;
    if (!build)
        return lethe_fail(LETHE_ERR_NOTFOUND,
                          "unknown architecture '%s' (known: mlp, cnn, resnet8, resnet20, resnet18, unet)", arch);
    if (in_c < 1 || in_c > 3 || in_h < 8 || in_h > 256 || in_w < 8 || in_w > 256 ||
        nclass < 2 || nclass > 1000)
        return lethe_fail(LETHE_ERR_ARG, "bad input shape %dx%dx%d or class count %d",
                          in_c, in_h, in_w, nclass);
    lethe_model *m = calloc(1, sizeof *m);
    if (!m) return lethe_fail(LETHE_ERR_NOMEM, "out of memory creating model");
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    m->in_c = in_c;
    m->in_h = in_h;
    m->in_w = in_w;
    m->nclass = nclass;
    lethe_status st = build(m);
    if (st != LETHE_OK) {
        free(m);
        return st;
    }
    nn_fuse(m);
    m->theta = calloc(m->n, sizeof(float));
    m->grad = calloc(m->n, sizeof(float));
    m->buffers = calloc(m->nbuf ? m->nbuf : 1, sizeof(float));
    if (!m->theta || !m->grad || !m->buffers) {
        size_t n = m->n;
        lethe_model_free(m);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %zu parameters", n);
    }
    for (int i = 0; i < m->ntensors; i++) {
        lethe_tensor *t = &m->tensors[i];
        t->data = (t->trainable ? m->theta : m->buffers) + t->offset;
    }
    *out = m;
    return LETHE_OK;
}

void lethe_model_free(lethe_model *m)
{
    if (!m) return;
    free(m->theta);
    free(m->grad);
    free(m->buffers);
    free(m->arena);
    free(m->ws);
    free(m);
}

const char *lethe_model_arch(const lethe_model *m) { return m->arch; }
int lethe_model_nclass(const lethe_model *m) { return m->nclass; }
int lethe_model_ntensors(const lethe_model *m) { return m->ntensors; }

void lethe_model_input_shape(const lethe_model *m, int *c, int *h, int *w)
{
    *c = m->in_c;
    *h = m->in_h;
    *w = m->in_w;
}

lethe_status lethe_model_check_data(const lethe_model *m, const lethe_dataset *ds)
{
    if (ds->c != m->in_c || ds->h != m->in_h || ds->w != m->in_w)
        return lethe_fail(LETHE_ERR_MISMATCH, "%s model takes %dx%dx%d inputs, data set %s has %dx%dx%d",
                          m->arch, m->in_c, m->in_h, m->in_w, ds->name, ds->c, ds->h, ds->w);
    if (ds->nclass > m->nclass)
        return lethe_fail(LETHE_ERR_MISMATCH, "%s model has %d classes, data set %s has %d",
                          m->arch, m->nclass, ds->name, ds->nclass);
    return LETHE_OK;
}

const lethe_tensor *lethe_model_tensor(const lethe_model *m, int i)
{
    return (i >= 0 && i < m->ntensors) ? &m->tensors[i] : NULL;
}

const lethe_tensor *lethe_model_find(const lethe_model *m, const char *name)
{
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

float *lethe_model_theta(lethe_model *m, size_t *n)
{
    if (n) *n = m->n;
    return m->theta;
}

float *lethe_model_grad(lethe_model *m, size_t *n)
{
    if (n) *n = m->n;
    return m->grad;
}

float *lethe_model_buffers(lethe_model *m, size_t *n)
{
    if (n) *n = m->nbuf;
    return m->buffers;
}

static nn_conv_shape conv_shape(const lethe_model *m, const nn_node *nd, int n)
{
    nn_conv_shape s;
    const nn_node *src = &m->nodes[nd->in0];
    nn_conv_shape_set(&s, n, src->c, src->h, src->w, nd->c, nd->k, nd->stride, nd->pad);
    return s;
}

/* A group head read only by a residual sum (not the last node) gets its
 * gradient in the sum's own gradient buffer: the sum passes its (masked)
 * gradient on unchanged, so sharing the buffer saves a copy of the tensor.
 * Returns the sum's head, or −1. */
static int dout_alias(const lethe_model *m, int h)
{
    const int last = m->nnodes - 1;
    if (h == last || m->nodes[h].op == NN_INPUT) return -1;
    /* Only producers that read their gradient without writing it (a fused
     * linear ReLU and a sum mask theirs in place: the other input of the
     * sum may share the buffer). */
    const nn_op op = m->nodes[m->nodes[h].fold >= 0 ? m->nodes[h].fold : h].op;
    if (op != NN_BN && op != NN_CONV) return -1;
    int a = sole_consumer(m, h);
    if (a < 0 || m->nodes[a].op != NN_ADD || m->nodes[a].head == last) return -1;
    return m->nodes[a].head;
}

/* A conv whose output only a batch norm reads (no ReLU or pool fused):
 * its epilogue computes the statistics the batch norm needs while each
 * output plane is in cache (nn_plane_stats), which spares the batch norm
 * a pass over the tensor. */
static int conv_feeds_bn(const lethe_model *m, int i)
{
    const nn_node *nd = &m->nodes[i];
    if (nd->op != NN_CONV || nd->fold >= 0 || nd->relu || nd->pool >= 0) return 0;
    const int j = sole_consumer(m, i);
    return j >= 0 && m->nodes[j].op == NN_BN && m->nodes[j].in0 == i;
}

/* Floats of activation storage for node i at batch N (its group's buffers
 * are counted at the producer; folded nodes own nothing). The last node
 * has no dout: backward reads the caller's dlogits; nor has a head whose
 * gradient lives in a residual sum's buffer. */
static size_t node_floats(const lethe_model *m, int i, size_t N)
{
    const nn_node *nd = &m->nodes[i];
    if (nd->op == NN_INPUT || nd->fold >= 0) return 0;
    const nn_node *h = &m->nodes[nd->head];
    const int own_dout = nd->head != m->nnodes - 1 && dout_alias(m, nd->head) < 0;
    size_t f = N * h->size * (own_dout ? 2 : 1);                      /* out, dout */
    if (h->op == NN_MAXPOOL) f += N * h->size;                      /* arg */
    if (nd->op == NN_BN) f += 4 * (size_t)LETHE_MAX_GROUPS * nd->c; /* mean, istd, bsum */
    if (conv_feeds_bn(m, i)) f += 3 * N * (size_t)nd->c;           /* plane stats */
    if (nd->op == NN_GN) f += 2 * N * (size_t)nd->ng;               /* mean, istd */
    if (nd->op == NN_LEMB) f += N;                                  /* labels */
    return f;
}

lethe_status lethe_model_reserve(lethe_model *m, int max_batch)
{
    if (!m) return lethe_fail(LETHE_ERR_ARG, "lethe_model_reserve: NULL model");
    if (max_batch < 1 || max_batch > 65536)
        return lethe_fail(LETHE_ERR_ARG, "batch size %d out of range", max_batch);
    if (max_batch <= m->max_batch) return LETHE_OK;
    size_t total = 0, ws = 0;
    size_t N = (size_t)max_batch;
    for (int i = 0; i < m->nnodes; i++) {
        const nn_node *nd = &m->nodes[i];
        total += node_floats(m, i, N);
        if (nd->op == NN_CONV) {
            nn_conv_shape s = conv_shape(m, nd, max_batch);
            size_t w = nn_conv2d_workspace(&s);
            if (w > ws) ws = w;
        }
    }
    float *arena = malloc((total ? total : 1) * sizeof(float));
    float *wsp = malloc((ws ? ws : 1) * sizeof(float));
    if (!arena || !wsp) {
        free(arena);
        free(wsp);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for activations of batch %d",
                          max_batch);
    }
    free(m->arena);
    free(m->ws);
    m->arena = arena;
    m->ws = wsp;
    m->ws_size = ws;
    float *p = arena;
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        nd->out = nd->dout = NULL;
        nd->arg = NULL;
        nd->mean = nd->istd = NULL;
        nd->stats = NULL;
        nd->bsum = NULL;
    }
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        if (nd->op == NN_INPUT || nd->fold >= 0) continue;
        nn_node *h = &m->nodes[nd->head];
        h->out = p; p += N * h->size;
        if (nd->head != m->nnodes - 1 && dout_alias(m, nd->head) < 0) {
            h->dout = p;
            p += N * h->size;
        }
        if (h->op == NN_MAXPOOL) { h->arg = (int32_t *)p; p += N * h->size; }
        if (nd->op == NN_BN) {
            nd->mean = p; p += LETHE_MAX_GROUPS * nd->c;
            nd->istd = p; p += LETHE_MAX_GROUPS * nd->c;
            nd->bsum = p; p += 2 * LETHE_MAX_GROUPS * nd->c;
        }
        if (nd->op == NN_GN) {
            nd->mean = p; p += N * nd->ng;
            nd->istd = p; p += N * nd->ng;
        }
        if (nd->op == NN_LEMB) { nd->arg = (int32_t *)p; p += N; }
        if (conv_feeds_bn(m, i)) { nd->stats = p; p += 3 * N * (size_t)nd->c; }
    }
    /* Sums come after their inputs: point the aliased gradients now. */
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        if (nd->op == NN_INPUT || nd->fold >= 0) continue;
        nn_node *h = &m->nodes[nd->head];
        int a = dout_alias(m, nd->head);
        if (a >= 0) h->dout = m->nodes[a].dout;
        /* A fused ReLU without pool shares the producer's buffers. */
        if (nd->relu && nd->pool < 0) {
            nd->out = h->out;
            nd->dout = h->dout;
        }
    }
    m->max_batch = max_batch;
    return LETHE_OK;
}

/* PyTorch's defaults: weights kaiming-uniform with a = √5, i.e. U(±1/√fan_in),
 * biases U(±1/√fan_in); batch and group norm γ = 1, β = 0, running var 1;
 * embedding tables N(0, 1). */
void lethe_model_init(lethe_model *m, lethe_rng *rng)
{
    for (int i = 0; i < m->nnodes; i++) {
        const nn_node *nd = &m->nodes[i];
        if (nd->op == NN_CONV || nd->op == NN_LINEAR) {
            lethe_tensor *w = &m->tensors[nd->t_w];
            size_t fan_in = w->numel / (size_t)w->shape[0];
            float bound = 1.0f / sqrtf((float)fan_in);
            for (size_t j = 0; j < w->numel; j++)
                w->data[j] = bound * (2.0f * lethe_rng_uniform(rng) - 1.0f);
            if (nd->t_b >= 0) {
                lethe_tensor *b = &m->tensors[nd->t_b];
                for (size_t j = 0; j < b->numel; j++)
                    b->data[j] = bound * (2.0f * lethe_rng_uniform(rng) - 1.0f);
            }
        } else if (nd->op == NN_BN) {
            for (int j = 0; j < nd->c; j++) {
                m->tensors[nd->t_w].data[j] = 1.0f;
                m->tensors[nd->t_b].data[j] = 0.0f;
                m->tensors[nd->t_rm].data[j] = 0.0f;
                m->tensors[nd->t_rv].data[j] = 1.0f;
            }
            m->tensors[nd->t_nb].data[0] = 0.0f;
        } else if (nd->op == NN_GN) {
            for (int j = 0; j < nd->c; j++) {
                m->tensors[nd->t_w].data[j] = 1.0f;
                m->tensors[nd->t_b].data[j] = 0.0f;
            }
        } else if (nd->op == NN_LEMB) {
            lethe_tensor *w = &m->tensors[nd->t_w];
            for (size_t j = 0; j < w->numel; j++) w->data[j] = lethe_rng_normal(rng);
        }
    }
}

lethe_status lethe_model_copy(lethe_model *dst, const lethe_model *src)
{
    if (strcmp(dst->arch, src->arch) != 0 || dst->n != src->n || dst->nbuf != src->nbuf)
        return lethe_fail(LETHE_ERR_MISMATCH, "cannot copy a %s model into a %s model",
                          src->arch, dst->arch);
    memcpy(dst->theta, src->theta, src->n * sizeof(float));
    memcpy(dst->buffers, src->buffers, src->nbuf * sizeof(float));
    return LETHE_OK;
}

/* Convs and linears, and the element-wise work of the generation layers at
 * rough operation counts per output value (group norm: statistics 4,
 * normalise and affine 4; SiLU 6, its exponential's polynomial counted as
 * one; a broadcast add 1; a timestep embedding 2, its sin and cos as one
 * each). Copies (upsampling, concatenation, lookups) count nothing, nor do
 * the classifiers' element-wise layers (as before). */
double lethe_model_flops(const lethe_model *m)
{
    double f = 0.0;
    for (int i = 0; i < m->nnodes; i++) {
        const nn_node *nd = &m->nodes[i];
        const double size = (double)nd->size;
        if (nd->op == NN_CONV || nd->op == NN_LINEAR)
            f += 2.0 * (double)m->tensors[nd->t_w].numel * nd->h * nd->w;
        else if (nd->op == NN_GN)
            f += (nd->silu ? 14.0 : 8.0) * size;
        else if (nd->op == NN_SILU)
            f += 6.0 * size;
        else if (nd->op == NN_BCAST_ADD || nd->op == NN_TEMB)
            f += (nd->op == NN_TEMB ? 2.0 : 1.0) * size;
    }
    return f;
}

size_t lethe_model_out_size(const lethe_model *m)
{
    return m->nnodes > 0 ? m->nodes[m->nnodes - 1].size : 0;
}

lethe_status lethe_model_set_cond(lethe_model *m, const int32_t *t, const int32_t *y)
{
    m->cond_t = t;
    m->cond_y = y;
    return LETHE_OK;
}

/* ------------------------------------------------------------ forward */

/* Wall clock for the optional per-node profile. */
static double prof_now(const lethe_model *m)
{
    if (!m->prof) return 0.0;
    struct timespec t;
    clock_gettime(m->prof_cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Node i's output; NULL for none (i < 0: an embedding has no input node). */
static const float *node_out(const lethe_model *m, int i)
{
    if (i < 0) return NULL;
    return m->nodes[i].op == NN_INPUT ? m->input : m->nodes[i].out;
}

static float *tdata(lethe_model *m, int t) { return t >= 0 ? m->tensors[t].data : NULL; }

static lethe_status check_groups(const lethe_model *m, const lethe_groups *g, int n)
{
    if (n < 1 || n > m->max_batch)
        return lethe_fail(LETHE_ERR_ARG, "batch of %d samples, model reserved for %d",
                          n, m->max_batch);
    if (g->n < 1 || g->n > LETHE_MAX_GROUPS || g->start[0] != 0 || g->start[g->n] != n)
        return lethe_fail(LETHE_ERR_ARG, "sample groups do not cover the batch of %d", n);
    for (int k = 0; k < g->n; k++)
        if (g->start[k + 1] < g->start[k])
            return lethe_fail(LETHE_ERR_ARG, "sample group %d has negative size", k);
    return LETHE_OK;
}

/* The conditioning a graph with embedding nodes needs: timesteps t (n) for
 * a timestep embedding, labels y (n) within its table for a label one. */
static lethe_status check_cond(const lethe_model *m, const int32_t *t, const int32_t *y,
                               int n)
{
    for (int i = 0; i < m->nnodes; i++) {
        const nn_node *nd = &m->nodes[i];
        if (nd->op == NN_TEMB && !t)
            return lethe_fail(LETHE_ERR_ARG, "%s model: forward without timesteps "
                              "(call lethe_model_set_cond before each forward)", m->arch);
        if (nd->op != NN_LEMB) continue;
        if (!y)
            return lethe_fail(LETHE_ERR_ARG, "%s model: forward without labels "
                              "(call lethe_model_set_cond before each forward)", m->arch);
        const int rows = m->tensors[nd->t_w].shape[0];
        for (int j = 0; j < n; j++)
            if (y[j] < 0 || y[j] >= rows)
                return lethe_fail(LETHE_ERR_ARG, "%s model: label %d of sample %d outside "
                                  "[0, %d]", m->arch, (int)y[j], j, rows - 1);
    }
    return LETHE_OK;
}

lethe_status lethe_model_forward(lethe_model *m, const float *x, int n,
                                 const lethe_groups *g, lethe_bn_mode mode,
                                 const float **logits)
{
    /* The conditioning serves this forward only: a stale pointer must not
     * feed the next one (the labels are copied for backward). */
    const int32_t *cond_t = m->cond_t, *cond_y = m->cond_y;
    m->cond_t = m->cond_y = NULL;
    lethe_groups one;
    if (!g) {
        lethe_groups_one(&one, n);
        g = &one;
    }
    lethe_status st = check_groups(m, g, n);
    if (st != LETHE_OK) return st;
    if ((st = check_cond(m, cond_t, cond_y, n)) != LETHE_OK) return st;
    m->input = x;
    m->last_n = n;
    m->last_groups = *g;
    m->last_mode = mode;
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        if (nd->op == NN_INPUT || nd->fold >= 0) continue;
        nn_node *h = &m->nodes[nd->head];
        const float *in = node_out(m, nd->in0);
        size_t len = (size_t)n * nd->size;
        const double t0 = prof_now(m);
        switch (nd->op) {
        case NN_INPUT:
            break;
        case NN_CONV: {
            nn_conv_shape s = conv_shape(m, nd, n);
            nn_epilogue ep = {.relu = nd->relu, .stats = mode != LETHE_BN_EVAL ? nd->stats : NULL};
            if (nd->pool >= 0) {
                ep.pool_k = m->nodes[nd->pool].k;
                ep.pool_s = m->nodes[nd->pool].stride;
            }
            nn_affine af;
            const nn_node *bn = bn_in(m, i);
            if (bn) {   /* the batch norm before left its output to this conv */
                af = (nn_affine){bn->mean, bn->istd, tdata(m, bn->t_w), tdata(m, bn->t_b), g,
                                 bn->relu};
                ep.in_affine = &af;
                in = node_out(m, bn->in0);
            }
            nn_conv2d_forward_ex(h->out, h->arg, in, tdata(m, nd->t_w), tdata(m, nd->t_b), &s,
                                 &ep, m->ws);
            break;
        }
        case NN_LINEAR:
            nn_linear_forward_ex(h->out, in, tdata(m, nd->t_w), tdata(m, nd->t_b), n,
                                 (int)m->nodes[nd->in0].size, nd->c, nd->relu);
            break;
        case NN_RELU:
            nn_relu_forward(nd->out, in, len);
            break;
        case NN_MAXPOOL: {
            const nn_node *s = &m->nodes[nd->in0];
            nn_maxpool_forward(nd->out, nd->arg, in, n, s->c, s->h, s->w, nd->k, nd->stride);
            break;
        }
        case NN_GAP: {
            const nn_node *s = &m->nodes[nd->in0];
            nn_gap_forward(nd->out, in, n, s->c, s->h * s->w);
            break;
        }
        case NN_BN: {
            /* Read only by a conv that copies its input: it normalises as
             * it copies, and the output is not written here. */
            nd->bn_unwritten = 0;
            if (nd->bn_to_conv) {
                const int j = sole_consumer(m, nd->head);
                const nn_conv_shape cs = conv_shape(m, &m->nodes[j], n);
                nd->bn_unwritten = nn_conv2d_takes_affine(&cs);
            }
            nn_batchnorm_forward_ex(nd->bn_unwritten ? NULL : h->out, nd->mean, nd->istd, in,
                                    tdata(m, nd->t_w),
                                    tdata(m, nd->t_b), tdata(m, nd->t_rm), tdata(m, nd->t_rv),
                                    n, nd->c, nd->h * nd->w, g, mode, BN_MOMENTUM, BN_EPS,
                                    nd->relu,
                                    mode != LETHE_BN_EVAL ? m->nodes[nd->in0].stats : NULL);
            if (mode == LETHE_BN_TRAIN) tdata(m, nd->t_nb)[0] += (float)g->n;
            break;
        }
        case NN_ADD:
            nn_add_forward_ex(h->out, in, node_out(m, nd->in1), len, nd->relu);
            break;
        case NN_GN:
            nn_groupnorm_forward(nd->out, nd->mean, nd->istd, in, tdata(m, nd->t_w),
                                 tdata(m, nd->t_b), n, nd->c, nd->h * nd->w, nd->ng, GN_EPS,
                                 nd->silu);
            break;
        case NN_SILU:
            nn_silu_forward(nd->out, in, len);
            break;
        case NN_UPSAMPLE: {
            const nn_node *s = &m->nodes[nd->in0];
            nn_upsample2_forward(nd->out, in, n, s->c, s->h, s->w);
            break;
        }
        case NN_CONCAT:
            nn_concat_forward(nd->out, in, node_out(m, nd->in1), n, m->nodes[nd->in0].c,
                              m->nodes[nd->in1].c, nd->h * nd->w);
            break;
        case NN_TEMB:
            nn_timestep_embed(nd->out, cond_t, n, nd->c);
            break;
        case NN_LEMB:
            memcpy(nd->arg, cond_y, (size_t)n * sizeof(int32_t));
            nn_label_embed_forward(nd->out, nd->arg, tdata(m, nd->t_w), n, nd->c);
            break;
        case NN_BCAST_ADD:
            nn_bcast_add_forward(nd->out, in, node_out(m, nd->in1), n, nd->c, nd->h * nd->w);
            break;
        }
        if (m->prof) m->prof[i] += prof_now(m) - t0;
    }
    *logits = m->nodes[m->nnodes - 1].out;
    return LETHE_OK;
}

/* ----------------------------------------------------------- backward */

/* The gradient buffer of node i (a group's head) for this backward;
 * *add tells whether it already holds a share (a node read by two others,
 * as in a residual block, gets both): the first writer stores, the next
 * ones add, so no buffer is cleared first. For the input node: m->dx,
 * cleared beforehand, so every reader adds (NULL unless the caller asked
 * for ∂L/∂x); NULL for a timestep embedding (no parameters before it). */
static float *grad_of(lethe_model *m, int i, int *add)
{
    nn_node *nd = &m->nodes[i];
    *add = 1;
    if (nd->op == NN_INPUT) return m->dx;
    if (nd->op == NN_TEMB) return NULL;
    *add = nd->dirty;
    nd->dirty = 1;
    return nd->dout;
}

/* For kernels that only accumulate: clear the buffer on first use. */
static float *grad_acc(lethe_model *m, int i, int n)
{
    int add;
    float *d = grad_of(m, i, &add);
    if (d && !add) memset(d, 0, (size_t)n * m->nodes[i].size * sizeof(float));
    return d;
}

lethe_status lethe_model_backward(lethe_model *m, const float *dlogits,
                                  const lethe_groups *g, float *const grads[])
{
    int n = m->last_n;
    lethe_groups one;
    if (!g) {
        lethe_groups_one(&one, n);
        g = &one;
    }
    lethe_status st = check_groups(m, g, n);
    if (st != LETHE_OK) return st;
    /* Batch norm's backward needs the groups its forward normalised by. */
    if (g->n != m->last_groups.n ||
        memcmp(g->start, m->last_groups.start, sizeof(int) * (size_t)(g->n + 1)) != 0)
        return lethe_fail(LETHE_ERR_ARG, "backward sample groups differ from the forward's");
    const int last = m->nnodes - 1;
    for (int i = 0; i < m->nnodes; i++) m->nodes[i].dirty = 0;
    m->nodes[last].dirty = 1;

    float *dw[LETHE_MAX_GROUPS], *db[LETHE_MAX_GROUPS];
    for (int i = last; i > 0; i--) {
        nn_node *nd = &m->nodes[i];
        if (nd->op == NN_INPUT || nd->fold >= 0) continue;
        nn_node *h = &m->nodes[nd->head];
        if (!h->dirty) continue;            /* no gradient reaches this node */
        /* The group's output gradient: the caller's dlogits for the last
         * node (read only: the last node is never fused), else its buffer. */
        float *gout = nd->head == last ? NULL : h->dout;
        const float *gin = nd->head == last ? dlogits : gout;
        const float *in = node_out(m, nd->in0);
        size_t len = (size_t)n * nd->size;
        for (int k = 0; k < g->n; k++) {
            dw[k] = (grads[k] && nd->t_w >= 0) ? grads[k] + m->tensors[nd->t_w].offset : NULL;
            db[k] = (grads[k] && nd->t_b >= 0) ? grads[k] + m->tensors[nd->t_b].offset : NULL;
        }
        int add = 1;
        const double t0 = prof_now(m);
        switch (nd->op) {
        case NN_INPUT:
            break;
        case NN_CONV: {
            nn_conv_shape s = conv_shape(m, nd, n);
            nn_epilogue ep = {.relu = nd->relu};
            if (nd->pool >= 0) {
                ep.pool_k = m->nodes[nd->pool].k;
                ep.pool_s = m->nodes[nd->pool].stride;
            }
            nn_affine af;
            const nn_node *bni = bn_in(m, i);
            if (bni) {   /* as in forward: its input is normalised as it is copied */
                af = (nn_affine){bni->mean, bni->istd, tdata(m, bni->t_w), tdata(m, bni->t_b), g,
                                 bni->relu};
                ep.in_affine = &af;
                in = node_out(m, bni->in0);
            }
            /* The batch norm after it left its last pass to this conv. */
            const int b = sole_consumer(m, i);
            nn_bn_grad bg;
            if (b >= 0 && m->nodes[b].bn_defer) {
                const nn_node *bn = &m->nodes[b];
                bg = (nn_bn_grad){.dy = m->nodes[bn->head].dout, .x = h->out, .mean = bn->mean,
                                  .istd = bn->istd, .sums = bn->bsum,
                                  .gamma = tdata(m, bn->t_w), .beta = tdata(m, bn->t_b),
                                  .g = g, .relu = bn->relu,
                                  .eval = m->last_mode == LETHE_BN_EVAL};
                ep.bn = &bg;
                gin = NULL;
            }
            float *din = grad_of(m, nd->in0, &add);
            nn_conv2d_backward_ex(din, add, dw, db, gin, h->out, h->arg, in, tdata(m, nd->t_w),
                                  &s, &ep, g, m->ws);
            break;
        }
        case NN_LINEAR: {
            if (nd->relu) nn_relu_mask(gout, h->out, len);
            float *din = grad_of(m, nd->in0, &add);
            nn_linear_backward_ex(din, add, dw, db, gin, in, tdata(m, nd->t_w), g,
                                  (int)m->nodes[nd->in0].size, nd->c);
            break;
        }
        case NN_RELU: {
            float *din = grad_acc(m, nd->in0, n);
            if (din) nn_relu_backward(din, gin, nd->out, len);
            break;
        }
        case NN_MAXPOOL: {
            const nn_node *s = &m->nodes[nd->in0];
            float *din = grad_acc(m, nd->in0, n);
            if (din) nn_maxpool_backward(din, gin, nd->arg, n, s->c, s->h, s->w,
                                         nd->h, nd->w);
            break;
        }
        case NN_GAP: {
            const nn_node *s = &m->nodes[nd->in0];
            float *din = grad_of(m, nd->in0, &add);
            if (din) nn_gap_backward_ex(din, add, gin, n, s->c, s->h * s->w);
            break;
        }
        case NN_BN: {
            float *din = grad_of(m, nd->in0, &add);
            if (nd->bn_defer) {   /* its conv is its input's only writer: add is 0 */
                /* Only the sums: the conv before runs the last pass. */
                nn_batchnorm_backward_sums(dw, db, nd->bsum, gin, nd->relu, in, nd->mean,
                                           nd->istd, tdata(m, nd->t_w), tdata(m, nd->t_b), n,
                                           nd->c, nd->h * nd->w, g, m->last_mode);
                break;
            }
            nn_batchnorm_backward_ex(din, add, dw, db, gin, nd->relu, in, nd->mean, nd->istd,
                                     tdata(m, nd->t_w), tdata(m, nd->t_b), n, nd->c,
                                     nd->h * nd->w, g, m->last_mode);
            break;
        }
        case NN_ADD: {
            int add1;
            float *da = grad_of(m, nd->in0, &add);
            float *db1 = grad_of(m, nd->in1, &add1);
            if (gout) {
                /* An input whose gradient buffer is gout itself (dout_alias)
                 * receives it by the masking in place. */
                nn_add_backward_ex(da == gout ? NULL : da, add, db1 == gout ? NULL : db1, add1,
                                   gout, nd->relu ? h->out : NULL, len);
            } else {
                /* The last node: dlogits is read only (never fused, no mask). */
                if (da && !add) memset(da, 0, len * sizeof(float));
                if (db1 && !add1) memset(db1, 0, len * sizeof(float));
                nn_add_backward(da, db1, gin, len);
            }
            break;
        }
        case NN_GN: {
            float *din = grad_of(m, nd->in0, &add);
            nn_groupnorm_backward(din, add, dw, db, gin, in, nd->mean, nd->istd,
                                  tdata(m, nd->t_w), tdata(m, nd->t_b), nd->c, nd->h * nd->w,
                                  nd->ng, g, nd->silu);
            break;
        }
        case NN_SILU: {
            float *din = grad_of(m, nd->in0, &add);
            if (din) nn_silu_backward(din, add, gin, in, len);
            break;
        }
        case NN_UPSAMPLE: {
            const nn_node *s = &m->nodes[nd->in0];
            float *din = grad_of(m, nd->in0, &add);
            if (din) nn_upsample2_backward(din, add, gin, n, s->c, s->h, s->w);
            break;
        }
        case NN_CONCAT: {
            int add1;
            float *da = grad_of(m, nd->in0, &add);
            float *db1 = grad_of(m, nd->in1, &add1);
            nn_concat_backward(da, add, db1, add1, gin, n, m->nodes[nd->in0].c,
                               m->nodes[nd->in1].c, nd->h * nd->w);
            break;
        }
        case NN_TEMB:
            break;
        case NN_LEMB:
            nn_label_embed_backward(dw, gin, nd->arg, g, nd->c);
            break;
        case NN_BCAST_ADD: {
            int add1;
            float *dx = grad_of(m, nd->in0, &add);
            float *dv = grad_of(m, nd->in1, &add1);
            nn_bcast_add_backward(dx, add, dv, add1, gin, n, nd->c, nd->h * nd->w);
            break;
        }
        }
        if (i == last && m->dfeat) {
            /* A loss that reads the features too: its share joins the
             * final layer's input gradient just written. */
            float *d = grad_of(m, nd->in0, &add);
            const size_t fl = (size_t)n * m->nodes[nd->in0].size;
            if (d && add)
                for (size_t j = 0; j < fl; j++) d[j] += m->dfeat[j];
            else if (d)
                memcpy(d, m->dfeat, fl * sizeof(float));
        }
        if (m->prof) m->prof[m->nnodes + i] += prof_now(m) - t0;
    }
    return LETHE_OK;
}

lethe_status lethe_model_backward_ex(lethe_model *m, const float *dlogits, const float *dfeat,
                                     const lethe_groups *g, float *const grads[], float *dx)
{
    float *none[LETHE_MAX_GROUPS] = {0};
    if (dx && m->last_n > 0)
        memset(dx, 0, (size_t)m->last_n * (size_t)m->in_c * m->in_h * m->in_w * sizeof(float));
    m->dx = dx;
    m->dfeat = dfeat;
    lethe_status st = lethe_model_backward(m, dlogits, g, grads ? grads : none);
    m->dx = NULL;
    m->dfeat = NULL;
    return st;
}

const float *lethe_model_features(const lethe_model *m, int *dim)
{
    if (dim) *dim = 0;
    if (m->nnodes < 2) return NULL;
    const nn_node *last = &m->nodes[m->nnodes - 1];
    if (last->in0 < 0 || m->nodes[last->in0].op == NN_INPUT) return NULL;
    if (dim) *dim = (int)m->nodes[last->in0].size;
    return m->last_n < 1 ? NULL : node_out(m, last->in0);
}
