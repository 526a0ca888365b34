/*
 * The fusion planner: which nodes run inside their producer's kernel
 * (a ReLU after a conv, linear, batch norm or residual sum; a max pool
 * after a conv's ReLU), which batch norms leave work to the conv beside
 * them, and which gradient buffers are shared. It only marks the nodes
 * (relu, pool, fold, head, bn_defer, bn_to_conv, bn_to_add); the op rows read the
 * marks (op_conv.c, op_norm.c) and lethe_model_reserve sizes the buffers.
 */
#include "nn/op.h"

int nn_sole_consumer(const lethe_model *m, int i)
{
    int who = -1, count = 0;
    for (int j = 0; j < m->nnodes; j++) {
        count += (m->nodes[j].in0 == i) + (m->nodes[j].in1 == i);
        if (m->nodes[j].in0 == i || m->nodes[j].in1 == i) who = j;
    }
    return count == 1 ? who : -1;
}

/* A conv whose output only a batch norm reads (no ReLU or pool fused):
 * its epilogue computes the statistics the batch norm needs while each
 * output plane is in cache (nn_plane_stats), which spares the batch norm
 * a pass over the tensor. */
int nn_conv_feeds_bn(const lethe_model *m, int i)
{
    const nn_node *nd = &m->nodes[i];
    if (nd->op != NN_CONV || nd->fold >= 0 || nd->relu || nd->pool >= 0) return 0;
    const int j = nn_sole_consumer(m, i);
    return j >= 0 && m->nodes[j].op == NN_BN && m->nodes[j].in0 == i;
}

/* A ReLU that is the only reader of a conv, linear, batch norm or
 * residual sum folds into it: the producer applies it to its output in
 * cache (no pass over memory, no buffer). A max pool that is the only
 * reader of a conv's ReLU folds in too, so the conv's full-size output is
 * never stored. The last node is never folded: its gradient is the
 * caller's dlogits, which backward must not write. */
void nn_fuse(lethe_model *m)
{
    const int last = m->nnodes - 1;
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        if (nd->op != NN_CONV && nd->op != NN_LINEAR && nd->op != NN_BN && nd->op != NN_ADD)
            continue;
        int r = nn_sole_consumer(m, i);
        if (r < 0 || r == last || m->nodes[r].op != NN_RELU) continue;
        nd->relu = 1;
        m->nodes[r].fold = i;
        nd->head = r;
        if (nd->op != NN_CONV) continue;
        int p = nn_sole_consumer(m, r);
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
            m->nodes[i].head != m->nnodes - 1 && nn_conv_feeds_bn(m, m->nodes[i].in0))
            m->nodes[i].bn_defer = 1;
    /* A batch norm (with its ReLU) read only by a conv: the conv may apply
     * it as it copies its input (nn_affine), so that the normalised tensor
     * is never written (decided per forward: the conv's lowering must copy
     * its input). */
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        if (nd->op != NN_BN || nd->head == m->nnodes - 1) continue;
        const int j = nn_sole_consumer(m, nd->head);
        if (j >= 0 && m->nodes[j].op == NN_CONV && m->nodes[j].in0 == nd->head)
            nd->bn_to_conv = 1;
    }
    /* A batch norm without a ReLU read only by a residual sum (a basic
     * block's bn2, its shortcut's batch norm): the sum applies it as it
     * adds (nn_add_bn_forward), with the same operations, so that the
     * normalised tensor is never written and read back. Its backward reads
     * its input, not its output. */
    for (int i = 0; i < m->nnodes; i++) {
        nn_node *nd = &m->nodes[i];
        if (nd->op != NN_BN || nd->relu || nd->head != i || i == m->nnodes - 1) continue;
        const int j = nn_sole_consumer(m, i);
        if (j < 0 || m->nodes[j].op != NN_ADD || m->nodes[j].in0 == m->nodes[j].in1) continue;
        const nn_node *a = &m->nodes[j];
        if (a->c == nd->c && a->h == nd->h && a->w == nd->w) nd->bn_to_add = 1;
    }
}

const nn_node *nn_bn_at(const lethe_model *m, int src)
{
    if (src < 0) return NULL;
    const int b = m->nodes[src].fold >= 0 ? m->nodes[src].fold : src;
    const nn_node *bn = &m->nodes[b];
    return bn->op == NN_BN && bn->bn_unwritten ? bn : NULL;
}

const nn_node *nn_bn_in(const lethe_model *m, int i) { return nn_bn_at(m, m->nodes[i].in0); }

/* A group head read only by a residual sum (not the last node) gets its
 * gradient in the sum's own gradient buffer: the sum passes its (masked)
 * gradient on unchanged, so sharing the buffer saves a copy of the tensor.
 * Returns the sum's head, or −1. */
int nn_dout_alias(const lethe_model *m, int h)
{
    const int last = m->nnodes - 1;
    if (h == last || m->nodes[h].op == NN_INPUT) return -1;
    /* Only producers that read their gradient without writing it (a fused
     * linear ReLU and a sum mask theirs in place: the other input of the
     * sum may share the buffer). */
    const nn_op op = m->nodes[m->nodes[h].fold >= 0 ? m->nodes[h].fold : h].op;
    if (op != NN_BN && op != NN_CONV) return -1;
    int a = nn_sole_consumer(m, h);
    if (a < 0 || m->nodes[a].op != NN_ADD || m->nodes[a].head == last) return -1;
    return m->nodes[a].head;
}
