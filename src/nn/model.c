/*
 * The model graph: registration of tensors and nodes, one flat θ, and the
 * forward and (grouped) backward passes that walk the node list. What
 * each op kind does is its row of the op table (op.h, op_*.c); which
 * nodes run fused is the planner's (fuse.c).
 */
#include "nn/model.h"
#include "core/fail.h"
#include "nn/kernels.h"
#include "nn/op.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int nn_build_fail(lethe_model *m, const char *fmt, ...)
{
    if (m->build_err[0]) return -1;   /* the first error is the cause */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->build_err, sizeof m->build_err, fmt, ap);
    va_end(ap);
    return -1;
}

int nn_input_ok(lethe_model *m, const char *op, int in)
{
    if (in >= 0 && in < m->nnodes) return 1;
    if (in < 0) nn_build_fail(m, "%s: no input node", op);
    else nn_build_fail(m, "%s: input node %d does not exist (%d nodes)", op, in, m->nnodes);
    return 0;
}

/* Room for one more entry in a table of *cap elements of size es. */
static int grow(void **tab, int *cap, int used, size_t es)
{
    if (used < *cap) return 1;
    const int nc = *cap ? 2 * *cap : 64;
    void *p = realloc(*tab, (size_t)nc * es);
    if (!p) return 0;
    *tab = p;
    *cap = nc;
    return 1;
}

/* Register a tensor; offsets into θ or the buffers are assigned in order,
 * data and name pointers once the model is built (the tables move while
 * they grow). */
int nn_tensor_add(lethe_model *m, const char *prefix, const char *suffix, int ndim,
                  const int *shape, int trainable, int is_int64)
{
    char name[NN_NAME_LEN];
    /* An empty suffix: the prefix alone (timm's pos_embed, cls_token). */
    if (snprintf(name, sizeof name, "%s%s%s", prefix, suffix[0] ? "." : "", suffix) >=
        (int)sizeof name)
        return nn_build_fail(m, "tensor name %s.%s longer than %d characters", prefix, suffix,
                             NN_NAME_LEN - 1);
    for (int j = 0; j < m->ntensors; j++)
        if (strcmp(m->names[j], name) == 0)
            return nn_build_fail(m, "tensor name %s used twice", name);
    if (ndim < 0 || ndim > 4) return nn_build_fail(m, "tensor %s: %d dimensions", name, ndim);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1) return nn_build_fail(m, "tensor %s: dimension %d is %d", name, d,
                                               shape[d]);
        numel *= (size_t)shape[d];
    }
    int cap = m->cap_tensors;
    if (!grow((void **)&m->tensors, &cap, m->ntensors, sizeof *m->tensors) ||
        !grow((void **)&m->names, &m->cap_tensors, m->ntensors, sizeof *m->names))
        return nn_build_fail(m, "out of memory for tensor %s", name);
    int i = m->ntensors++;
    lethe_tensor *t = &m->tensors[i];
    memset(t, 0, sizeof *t);
    snprintf(m->names[i], NN_NAME_LEN, "%s", name);
    t->ndim = ndim;
    t->numel = numel;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
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

int nn_node_add(lethe_model *m, nn_op op, int in0, int c, int h, int w)
{
    if (c < 1 || h < 1 || w < 1)
        return nn_build_fail(m, "%s: output shape %dx%dx%d", nn_op_name(op), c, h, w);
    if (m->nnodes >= NN_MAX_NODES_LIMIT)
        return nn_build_fail(m, "more than %d nodes", NN_MAX_NODES_LIMIT);
    if (!grow((void **)&m->nodes, &m->cap_nodes, m->nnodes, sizeof *m->nodes))
        return nn_build_fail(m, "out of memory for node %d", m->nnodes);
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

/* ------------------------------------------------------------- create */

static const struct {
    const char *name;
    lethe_status (*build)(lethe_model *);
    int text;   /* 1: input (V, 1, T), token ids of a V-word vocabulary (lethe_dataset) */
} arch_table[] = {
    {"mlp", nn_build_mlp, 0},
    {"cnn", nn_build_cnn, 0},
    {"resnet8", nn_build_resnet8, 0},
    {"resnet20", nn_build_resnet20, 0},
    {"resnet18", nn_build_resnet18, 0},
    {"unet", nn_build_unet, 0},
    {"vit-tiny", nn_build_vit_tiny, 0},
    {"text-transformer", nn_build_text_transformer, 1},
    {"text-bag", nn_build_text_bag, 1},
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
    int text = 0;
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (strcmp(arch, arch_table[i].name) == 0)
            build = arch_table[i].build, text = arch_table[i].text;
    if (!build)
        return lethe_fail(LETHE_ERR_NOTFOUND,
                          "unknown architecture '%s' (known: mlp, cnn, resnet8, resnet20, resnet18, "
                          "unet, vit-tiny, text-transformer, text-bag)", arch);
    if (text) {
        /* (V, 1, T): a vocabulary of V ids (the 3 reserved ones and one
         * word at least), T ids per example. */
        if (in_c < 3 || in_c > NN_MAX_VOCAB || in_h != 1 || in_w < 1 || in_w > NN_MAX_TOKENS ||
            nclass < 2 || nclass > 1000)
            return lethe_fail(LETHE_ERR_ARG, "%s: input %dx%dx%d is not (vocabulary 3..%d, 1, "
                              "tokens 1..%d), or class count %d is not 2..1000 (a text model "
                              "takes token ids: --data text or sms-spam)", arch, in_c, in_h,
                              in_w, NN_MAX_VOCAB, NN_MAX_TOKENS, nclass);
        return nn_model_create_graph(out, arch, build, in_c, in_h, in_w, nclass);
    }
    if (in_c < 1 || in_c > 3 || in_h < 8 || in_h > 256 || in_w < 8 || in_w > 256 ||
        nclass < 2 || nclass > 1000)
        return lethe_fail(LETHE_ERR_ARG, "bad input shape %dx%dx%d or class count %d",
                          in_c, in_h, in_w, nclass);
    return nn_model_create_graph(out, arch, build, in_c, in_h, in_w, nclass);
}

lethe_status nn_model_create_graph(lethe_model **out, const char *arch,
                                   lethe_status (*build)(lethe_model *), int in_c, int in_h,
                                   int in_w, int nclass)
{
    *out = NULL;
    lethe_status ks = nn_kernels_init();
    if (ks != LETHE_OK) return ks;
    if (in_c < 1 || in_h < 1 || in_w < 1 || nclass < 1)
        return lethe_fail(LETHE_ERR_ARG, "%s: bad input shape %dx%dx%d or class count %d",
                          arch, in_c, in_h, in_w, nclass);
    lethe_model *m = calloc(1, sizeof *m);
    if (!m) return lethe_fail(LETHE_ERR_NOMEM, "out of memory creating model");
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    m->in_c = in_c;
    m->in_h = in_h;
    m->in_w = in_w;
    m->nclass = nclass;
    lethe_status st = build(m);
    if (st == LETHE_OK && m->nnodes < 2)
        nn_build_fail(m, "the graph has no node after its input");
    if (st != LETHE_OK || m->build_err[0]) {
        /* The builder's own words: what was wrong, not where it noticed. */
        if (m->build_err[0]) st = lethe_fail(LETHE_ERR_ARG, "%s: %s", arch, m->build_err);
        lethe_model_free(m);
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
        t->name = m->names[i];
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
    free(m->vocab);
    free(m->arena);
    free(m->ws);
    free(m->tok);
    free(m->mask);
    free(m->tensors);
    free(m->names);
    free(m->nodes);
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
    if (m->tokens_in_x != (ds->tokens != NULL))
        return lethe_fail(LETHE_ERR_MISMATCH, "%s is %s model, data set %s holds %s", m->arch,
                          m->tokens_in_x ? "a text" : "an image", ds->name,
                          ds->tokens ? "texts (token ids)" : "images");
    if (m->vocab && ds->vocab &&
        (m->vocab_len != ds->vocab_len || memcmp(m->vocab, ds->vocab, m->vocab_len) != 0))
        return lethe_fail(LETHE_ERR_MISMATCH, "%s model: data set %s has another vocabulary "
                          "or other classes than the model's (another training split?)",
                          m->arch, ds->name);
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

nn_conv_shape nn_conv_shape_of(const lethe_model *m, const nn_node *nd, int n)
{
    nn_conv_shape s;
    const nn_node *src = &m->nodes[nd->in0];
    nn_conv_shape_set(&s, n, src->c, src->h, src->w, nd->c, nd->k, nd->stride, nd->pad);
    return s;
}

/* Floats of activation storage for node i at batch N (its group's buffers
 * are counted at the producer; folded nodes own nothing): the group's
 * output and output gradient, an index per output value for a head that
 * keeps one, and the op's own state. The last node has no dout: backward
 * reads the caller's dlogits; nor has a head whose gradient lives in a
 * residual sum's buffer. With p, the node's pointers are set into it. */
static size_t node_floats(lethe_model *m, int i, size_t N, float *p)
{
    nn_node *nd = &m->nodes[i];
    if (nd->op == NN_INPUT || nd->fold >= 0) return 0;
    nn_node *h = &m->nodes[nd->head];
    const nn_op_desc *d = nn_op_get(nd->op);
    const int own_dout = nd->head != m->nnodes - 1 && nn_dout_alias(m, nd->head) < 0;
    /* A batch norm left to its residual sum (bn_to_add) never writes its
     * output: no room, and a NULL that fails loudly if anything reads it. */
    const int no_out = h->op == NN_BN && h->bn_to_add;
    size_t f = 0;
    if (p) h->out = no_out ? NULL : p + f;
    if (!no_out) f += N * h->size;
    if (own_dout) {
        if (p) h->dout = p + f;
        f += N * h->size;
    }
    if (nn_op_get(h->op)->out_arg) {
        if (p) h->arg = (int32_t *)(p + f);
        f += N * h->size;
    }
    if (d->state) f += d->state(m, i, p ? p + f : NULL, N);
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
        const nn_op_desc *d = nn_op_get(nd->op);
        total += node_floats(m, i, N, NULL);
        if (d->workspace) {
            size_t w = d->workspace(m, nd, max_batch);
            if (w > ws) ws = w;
        }
    }
    if (m->seq_t < 1 && m->in_c == 1) m->seq_t = m->in_h;   /* a (1, T, D) input */
    float *arena = malloc((total ? total : 1) * sizeof(float));
    float *wsp = malloc((ws ? ws : 1) * sizeof(float));
    const size_t nt = N * (size_t)(m->seq_t > 0 ? m->seq_t : 1);
    int32_t *tok = malloc(nt * sizeof(int32_t));
    uint8_t *mask = malloc(nt);
    if (!arena || !wsp || !tok || !mask) {
        free(tok);
        free(mask);
        free(arena);
        free(wsp);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for activations of batch %d",
                          max_batch);
    }
    free(m->arena);
    free(m->ws);
    free(m->tok);
    free(m->mask);
    m->tok = tok;
    m->mask = mask;
    m->mask_on = 0;
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
    for (int i = 0; i < m->nnodes; i++) p += node_floats(m, i, N, p);
    /* Sums come after their inputs: point the aliased gradients now. */
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        if (nd->op == NN_INPUT || nd->fold >= 0) continue;
        nn_node *h = &m->nodes[nd->head];
        int a = nn_dout_alias(m, nd->head);
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

/* PyTorch's defaults for conv and linear: weights kaiming-uniform with
 * a = √5, i.e. U(±1/√fan_in), biases U(±1/√fan_in). */
void nn_init_fan_in(lethe_model *m, const nn_node *nd, lethe_rng *rng)
{
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
}

/* Every node's parameters by its op's init, in node order from one
 * random stream (PyTorch's defaults: op_*.c). */
void lethe_model_init(lethe_model *m, lethe_rng *rng)
{
    for (int i = 0; i < m->nnodes; i++) {
        const nn_op_desc *d = nn_op_get(m->nodes[i].op);
        if (d->init) d->init(m, &m->nodes[i], rng);
    }
}

lethe_status lethe_model_copy(lethe_model *dst, const lethe_model *src)
{
    if (strcmp(dst->arch, src->arch) != 0 || dst->n != src->n || dst->nbuf != src->nbuf)
        return lethe_fail(LETHE_ERR_MISMATCH, "cannot copy a %s model into a %s model",
                          src->arch, dst->arch);
    memcpy(dst->theta, src->theta, src->n * sizeof(float));
    memcpy(dst->buffers, src->buffers, src->nbuf * sizeof(float));
    /* A text model's copy keeps its vocabulary, for its checkpoint. */
    if (src->vocab != dst->vocab) return nn_model_set_vocab(dst, src->vocab, src->vocab_len);
    return LETHE_OK;
}

/* The ops' forward operation counts per sample (op_*.c): convs and
 * linears, and the element-wise work of the generation layers. Copies
 * (upsampling, concatenation, lookups) count nothing, nor do the
 * classifiers' element-wise layers. */
double lethe_model_flops(const lethe_model *m)
{
    double f = 0.0;
    for (int i = 0; i < m->nnodes; i++) {
        const nn_op_desc *d = nn_op_get(m->nodes[i].op);
        if (d->flops) f += d->flops(m, &m->nodes[i]);
    }
    return f;
}

size_t lethe_model_out_size(const lethe_model *m)
{
    return m->nnodes > 0 ? m->nodes[m->nnodes - 1].size : 0;
}

lethe_status nn_model_set_vocab(lethe_model *m, const char *blob, size_t len)
{
    char *v = NULL;
    if (blob && len) {
        if (!(v = malloc(len + 1)))
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory for a vocabulary of %zu bytes", len);
        memcpy(v, blob, len);
        v[len] = 0;
    }
    free(m->vocab);
    m->vocab = v;
    m->vocab_len = v ? len : 0;
    return LETHE_OK;
}

int nn_model_is_text(const lethe_model *m) { return m->tokens_in_x; }

int nn_arch_is_text(const char *arch)
{
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (strcmp(arch, arch_table[i].name) == 0) return arch_table[i].text;
    return 0;
}

const char *nn_model_vocab(const lethe_model *m, size_t *len)
{
    if (len) *len = m->vocab_len;
    return m->vocab;
}

lethe_status lethe_model_set_tokens(lethe_model *m, const int32_t *ids, const uint8_t *mask)
{
    m->tok_in = ids;
    m->mask_in = mask;
    return LETHE_OK;
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
const float *nn_node_out(const lethe_model *m, int i)
{
    if (i < 0) return NULL;
    return m->nodes[i].op == NN_INPUT ? m->input : m->nodes[i].out;
}

float *nn_tdata(lethe_model *m, int t) { return t >= 0 ? m->tensors[t].data : NULL; }

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

/* A text model's x (n, T) holds token ids as floats (lethe_dataset_batch
 * of a text set): into m->tok, with the padding mask id ≠ 0 (TEXT_PAD). A
 * value that is not a whole id is refused (the op's check bounds it). */
static lethe_status ids_from_x(lethe_model *m, const float *x, int n)
{
    const size_t nt = (size_t)n * (size_t)m->seq_t;
    for (size_t j = 0; j < nt; j++) {
        const float v = x[j];
        if (!(v >= 0.0f && v < (float)NN_MAX_VOCAB) || v != (float)(int32_t)v)
            return lethe_fail(LETHE_ERR_ARG, "%s model: input %g of sample %zu is not a token "
                              "id (a text model takes token ids)", m->arch, (double)v,
                              j / (size_t)m->seq_t);
        m->tok[j] = (int32_t)v;
        m->mask[j] = m->tok[j] != 0;
    }
    return LETHE_OK;
}

/* The conditioning a graph with embedding nodes needs: timesteps t (n) for
 * a timestep embedding, labels y (n) within its table for a label one. */
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
    const int32_t *tok = m->tok_in;
    const uint8_t *mask = m->mask_in;
    m->tok_in = NULL;
    m->mask_in = NULL;
    if (!tok && m->tokens_in_x && x) {
        if ((st = ids_from_x(m, x, n)) != LETHE_OK) return st;
        tok = m->tok;
        mask = m->mask;
    }
    nn_pass p = {.m = m, .n = n, .g = g, .mode = mode, .cond_t = cond_t, .cond_y = cond_y,
                 .tok = tok, .mask = mask, .tm = m->seq_t};
    for (int i = 0; i < m->nnodes; i++) {
        const nn_op_desc *d = nn_op_get(m->nodes[i].op);
        if (d->check && (st = d->check(m, &m->nodes[i], &p)) != LETHE_OK) return st;
    }
    /* Ids and mask serve backward too: kept in the model's own copies. */
    const size_t nt = (size_t)n * (size_t)m->seq_t;
    if (tok && m->tok && tok != m->tok) memcpy(m->tok, tok, nt * sizeof(int32_t));
    m->mask_on = mask && m->mask;
    if (m->mask_on && mask != m->mask) memcpy(m->mask, mask, nt);
    p.tok = tok && m->tok ? m->tok : NULL;
    p.mask = m->mask_on ? m->mask : NULL;
    m->input = x;
    m->last_n = n;
    m->last_groups = *g;
    m->last_mode = mode;
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        if (nd->op == NN_INPUT || nd->fold >= 0) continue;
        p.i = i;
        p.nd = nd;
        p.h = &m->nodes[nd->head];
        p.in = nn_node_out(m, nd->in0);
        p.len = (size_t)n * nd->size;
        const double t0 = prof_now(m);
        nn_op_get(nd->op)->forward(&p);
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
 * for ∂L/∂x); NULL for an op whose output takes no gradient (a timestep
 * embedding: no parameters before it). */
float *nn_grad_of(lethe_model *m, int i, int *add)
{
    nn_node *nd = &m->nodes[i];
    *add = 1;
    if (nd->op == NN_INPUT) return m->dx;
    if (nn_op_get(nd->op)->no_grad) return NULL;
    *add = nd->dirty;
    nd->dirty = 1;
    return nd->dout;
}

float *nn_grad_acc(lethe_model *m, int i, int n)
{
    int add;
    float *d = nn_grad_of(m, i, &add);
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
    nn_pass p = {.m = m, .n = n, .g = g, .mode = m->last_mode, .dw = dw, .db = db,
                 .tok = m->tok, .mask = m->mask_on ? m->mask : NULL, .tm = m->seq_t};
    for (int i = last; i > 0; i--) {
        nn_node *nd = &m->nodes[i];
        if (nd->op == NN_INPUT || nd->fold >= 0) continue;
        nn_node *h = &m->nodes[nd->head];
        if (!h->dirty) continue;            /* no gradient reaches this node */
        const nn_op_desc *d = nn_op_get(nd->op);
        /* The group's output gradient: the caller's dlogits for the last
         * node (read only: the last node is never fused), else its buffer. */
        p.gout = nd->head == last ? NULL : h->dout;
        p.gin = nd->head == last ? dlogits : p.gout;
        p.i = i;
        p.nd = nd;
        p.h = h;
        p.in = nn_node_out(m, nd->in0);
        p.len = (size_t)n * nd->size;
        for (int k = 0; k < g->n; k++) {
            dw[k] = (grads[k] && nd->t_w >= 0) ? grads[k] + m->tensors[nd->t_w].offset : NULL;
            db[k] = (grads[k] && nd->t_b >= 0) ? grads[k] + m->tensors[nd->t_b].offset : NULL;
        }
        const double t0 = prof_now(m);
        if (d->backward) d->backward(&p);
        if (i == last && m->dfeat) {
            /* A loss that reads the features too: its share joins the
             * final layer's input gradient just written. */
            int add;
            float *dd = nn_grad_of(m, nd->in0, &add);
            const size_t fl = (size_t)n * m->nodes[nd->in0].size;
            if (dd && add)
                for (size_t j = 0; j < fl; j++) dd[j] += m->dfeat[j];
            else if (dd)
                memcpy(dd, m->dfeat, fl * sizeof(float));
        }
        if (m->prof) m->prof[m->nnodes + i] += prof_now(m) - t0;
    }
    return LETHE_OK;
}

lethe_status lethe_model_backward_ex(lethe_model *m, const float *dlogits, const float *dfeat,
                                     const lethe_groups *g, float *const grads[], float *dx)
{
    float *none[LETHE_MAX_GROUPS] = {0};
    if (dx && m->tokens_in_x)
        return lethe_fail(LETHE_ERR_ARG, "%s model: no gradient in its input, token ids",
                          m->arch);
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
    return m->last_n < 1 ? NULL : nn_node_out(m, last->in0);
}

