/*
 * The op table: one row per op kind (nn_op), with everything the graph
 * needs to know of it, so that adding an op is its kernel file, its op
 * file (builder and row) and its gradient check (tests/test_ops.c, which
 * fails for a kind it does not check).
 *
 * The graph (model.c) walks the nodes and calls the row's functions with
 * an nn_pass that holds the node, its group's head (nn_fuse), its input
 * and, in backward, its output gradient and the per-group parameter
 * gradients. The rows live in the op files (op_conv.c, op_norm.c,
 * op_basic.c, op_embed.c); op_table.c collects them.
 */
#ifndef LETHE_NN_OP_H
#define LETHE_NN_OP_H

#include "nn/model.h"

typedef struct {
    lethe_model *m;
    int i;                      /* the node */
    int n;                      /* samples in the batch */
    nn_node *nd, *h;            /* the node and its fused group's head */
    const float *in;            /* in0's output (N, in0 size), NULL if none */
    size_t len;                 /* n · nd->size */
    const lethe_groups *g;      /* the batch's sample groups */
    lethe_bn_mode mode;         /* the forward's batch-norm mode */
    /* Forward: the conditioning of lethe_model_set_cond (N), or NULL. */
    const int32_t *cond_t, *cond_y;
    /* The forward's token ids and padding mask (N, tm) (lethe_model_set_tokens,
     * copied), either NULL when not given. */
    const int32_t *tok;
    const uint8_t *mask;
    int tm;
    /* Backward: gin the group's output gradient (the caller's dlogits for
     * the last node, read only), gout its buffer (NULL for the last
     * node); dw[k], db[k] group k's gradient of t_w, t_b, or NULL. */
    const float *gin;
    float *gout;
    float *const *dw, *const *db;
} nn_pass;

typedef struct {
    const char *name;
    void (*forward)(nn_pass *p);
    /* NULL: no gradient passes through it (nor to its inputs). */
    void (*backward)(nn_pass *p);
    /* Parameters and buffers at PyTorch's defaults; NULL: none. Nodes are
     * initialised in order from one random stream. */
    void (*init)(lethe_model *m, const nn_node *nd, lethe_rng *rng);
    /* Forward FLOPs per sample (NULL: counted as 0). */
    double (*flops)(const lethe_model *m, const nn_node *nd);
    /* Scratch floats of the shared workspace for a batch of n (NULL: 0). */
    size_t (*workspace)(const lethe_model *m, const nn_node *nd, int n);
    /* Floats the node keeps between forward and backward beside its
     * output (statistics, indices) for a batch of N; with p non-NULL it
     * also points its fields into p. NULL: none. */
    size_t (*state)(lethe_model *m, int i, float *p, size_t N);
    /* Checks a forward's inputs (the conditioning), or NULL. */
    lethe_status (*check)(const lethe_model *m, const nn_node *nd, const nn_pass *p);
    int out_arg;                /* as a group's head: an int32 index per output
                                   value (max pool's argmax) */
    int no_grad;                /* its output takes no gradient (timestep
                                   embedding: nothing trainable before it) */
} nn_op_desc;

/* The row of op kind `op`; every kind below NN_OP_COUNT has one. */
const nn_op_desc *nn_op_get(nn_op op);
const char *nn_op_name(nn_op op);

/* --------------------------------------------- for the op files (model.c) */

/* A model of the graph `build` makes (tests, and lethe_model_create after
 * it has found the architecture and checked the shape). */
lethe_status nn_model_create_graph(lethe_model **out, const char *arch,
                                   lethe_status (*build)(lethe_model *), int in_c, int in_h,
                                   int in_w, int nclass);

/* A node of kind op reading in0 with per-sample output shape (c, h, w);
 * −1 (recorded) when the table cannot grow. */
int nn_node_add(lethe_model *m, nn_op op, int in0, int c, int h, int w);
/* A tensor "prefix.suffix" of shape (ndim) in θ (trainable) or in the
 * buffers; −1 (recorded) for a name too long or already taken. */
int nn_tensor_add(lethe_model *m, const char *prefix, const char *suffix, int ndim,
                  const int *shape, int trainable, int is_int64);
/* Records the first builder error (printf-style) and returns −1. */
int nn_build_fail(lethe_model *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* −1 (recorded, naming the op) unless node index `in` is a node. */
int nn_input_ok(lethe_model *m, const char *op, int in);

const float *nn_node_out(const lethe_model *m, int i);
float *nn_tdata(lethe_model *m, int t);
/* The gradient buffer of node i for this backward; *add: whether it
 * already holds a share (then add to it, else store). NULL: not wanted. */
float *nn_grad_of(lethe_model *m, int i, int *add);
/* The same, cleared on first use (for kernels that only accumulate). */
float *nn_grad_acc(lethe_model *m, int i, int n);
/* U(±1/√fan_in) for t_w and t_b (PyTorch's conv and linear defaults). */
void nn_init_fan_in(lethe_model *m, const nn_node *nd, lethe_rng *rng);
nn_conv_shape nn_conv_shape_of(const lethe_model *m, const nn_node *nd, int n);

/* ------------------------------------------ the fusion planner (fuse.c) */

/* The only node that reads node i, or −1 (none or several). */
int nn_sole_consumer(const lethe_model *m, int i);
/* Conv node i's output is read by a batch norm only (it computes the
 * plane statistics for it). */
int nn_conv_feeds_bn(const lethe_model *m, int i);
/* The batch norm whose normalisation conv node i applies to its input in
 * this forward, or NULL. */
const nn_node *nn_bn_in(const lethe_model *m, int i);
/* The batch norm that left node src's output unwritten in this forward
 * (src the batch norm or its folded ReLU), or NULL: its reader normalises. */
const nn_node *nn_bn_at(const lethe_model *m, int src);
/* The residual sum whose gradient buffer group head h shares, or −1. */
int nn_dout_alias(const lethe_model *m, int h);

#endif
