/*
 * The conditioning embeddings of the U-Net: the sinusoidal timestep
 * embedding (no parameters, no gradient) and the label table, both read
 * from lethe_model_set_cond, not from an input node. Kernels: embed.c.
 */
#include <string.h>

#include "core/fail.h"
#include "nn/op.h"

/* ------------------------------------------------ timestep embedding */

int nn_add_temb(lethe_model *m, int d)
{
    if (d < 2) return nn_build_fail(m, "timestep embedding of width %d (at least 2)", d);
    return nn_node_add(m, NN_TEMB, -1, d, 1, 1);
}

static void temb_forward(nn_pass *p) { nn_timestep_embed(p->nd->out, p->cond_t, p->n, p->nd->c); }

/* Two operations per value, its sine and cosine as one each. */
static double temb_flops(const lethe_model *m, const nn_node *nd)
{
    (void)m;
    return 2.0 * (double)nd->size;
}

static lethe_status temb_check(const lethe_model *m, const nn_node *nd, const nn_pass *p)
{
    (void)nd;
    if (!p->cond_t)
        return lethe_fail(LETHE_ERR_ARG, "%s model: forward without timesteps "
                          "(call lethe_model_set_cond before each forward)", m->arch);
    return LETHE_OK;
}

const nn_op_desc nn_op_temb = {
    .name = "timestep_embed",
    .forward = temb_forward,
    .flops = temb_flops,
    .check = temb_check,
    .no_grad = 1,
};

/* --------------------------------------------------- label embedding */

int nn_add_lemb(lethe_model *m, const char *name, int rows, int d)
{
    if (rows < 1 || d < 1)
        return nn_build_fail(m, "label embedding %s: %d rows of width %d", name, rows, d);
    int i = nn_node_add(m, NN_LEMB, -1, d, 1, 1);
    if (i < 0) return -1;
    int ws[2] = {rows, d};
    int tw = nn_tensor_add(m, name, "weight", 2, ws, 1, 0);
    m->nodes[i].t_w = tw;
    return tw < 0 ? -1 : i;
}

static void lemb_forward(nn_pass *p)
{
    nn_node *nd = p->nd;
    memcpy(nd->arg, p->cond_y, (size_t)p->n * sizeof(int32_t));
    nn_label_embed_forward(nd->out, nd->arg, nn_tdata(p->m, nd->t_w), p->n, nd->c);
}

static void lemb_backward(nn_pass *p)
{
    nn_label_embed_backward(p->dw, p->gin, p->nd->arg, p->g, p->nd->c);
}

/* Embedding tables: N(0, 1), PyTorch's nn.Embedding. */
static void lemb_init(lethe_model *m, const nn_node *nd, lethe_rng *rng)
{
    lethe_tensor *w = &m->tensors[nd->t_w];
    for (size_t j = 0; j < w->numel; j++) w->data[j] = lethe_rng_normal(rng);
}

/* The labels of the forward (N), for backward. */
static size_t lemb_state(lethe_model *m, int i, float *p, size_t N)
{
    if (p) m->nodes[i].arg = (int32_t *)p;
    return N;
}

static lethe_status lemb_check(const lethe_model *m, const nn_node *nd, const nn_pass *p)
{
    if (!p->cond_y)
        return lethe_fail(LETHE_ERR_ARG, "%s model: forward without labels "
                          "(call lethe_model_set_cond before each forward)", m->arch);
    const int rows = m->tensors[nd->t_w].shape[0];
    for (int j = 0; j < p->n; j++)
        if (p->cond_y[j] < 0 || p->cond_y[j] >= rows)
            return lethe_fail(LETHE_ERR_ARG, "%s model: label %d of sample %d outside "
                              "[0, %d]", m->arch, (int)p->cond_y[j], j, rows - 1);
    return LETHE_OK;
}

const nn_op_desc nn_op_lemb = {
    .name = "label_embed",
    .forward = lemb_forward,
    .backward = lemb_backward,
    .init = lemb_init,
    .state = lemb_state,
    .check = lemb_check,
};
