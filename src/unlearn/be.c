/*
 * Boundary Expanding (Chen et al., 2023, "Boundary Unlearning"; ALGORITHM.md
 * §6, later rounds): the final layer is widened by a shadow class k (one
 * more row, initialised as PyTorch initialises a linear layer), the model is
 * fine-tuned on D_f toward it, and the row is dropped:
 *     z_k   = w_s·h(x) + b_s        h: the final layer's input (features)
 *     d_t   = ∇_{θ, w_s, b_s} mean CE([f_θ(x_f), z_k], k)
 * The engine's final layer keeps its k rows: the shadow row lives here,
 * its logit is formed from the features of the forward, and its gradient
 * in the features joins the backward (lethe_model_backward_ex), so the
 * steps are those of the widened model. The row steps with the run's
 * optimiser kind and settings, in lockstep with θ; gradient clipping
 * (clip_grad) measures θ's direction only. The row and its optimiser state
 * are saved in run states. Cost per step on B_f: F + B.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unlearn/method.h"
#include "core/fail.h"

typedef struct {
    int dim;
    float *row;         /* (dim + 1) w_s, then b_s */
    float *grow;        /* (dim + 1) its gradient */
    float *dfeat;       /* (nf, dim) the shadow logit's gradient in the features */
    lethe_optim opt;
} be_state;

double ul_be_shadow(const float *z, int k, const float *h, int dim, const float *row, float w,
                    float *dz, float *drow, float *dh)
{
    double zk = row[dim];
    for (int j = 0; j < dim; j++) zk += (double)row[j] * h[j];
    double mx = zk;
    for (int j = 0; j < k; j++)
        if (z[j] > mx) mx = z[j];
    double s = exp(zk - mx);
    for (int j = 0; j < k; j++) s += exp(z[j] - mx);
    double lse = mx + log(s);
    if (dz)
        for (int j = 0; j < k; j++) dz[j] += (float)(w * exp(z[j] - lse));
    double gk = w * (exp(zk - lse) - 1.0);   /* w·∂/∂z_k */
    for (int j = 0; j < dim; j++) {
        if (drow) drow[j] += (float)(gk * h[j]);
        if (dh) dh[j] += (float)(gk * row[j]);
    }
    if (drow) drow[dim] += (float)gk;
    return lse - zk;
}

static lethe_status be_init(ul_ctx *c)
{
    be_state *s = calloc(1, sizeof *s);
    c->state = s;
    if (!s) return lethe_fail(LETHE_ERR_NOMEM, "out of memory for Boundary Expanding");
    lethe_model_features(c->m, &s->dim);
    if (s->dim < 1)
        return lethe_fail(LETHE_ERR_ARG, "be: model %s has no features before its final layer",
                          lethe_model_arch(c->m));
    size_t nr = (size_t)s->dim + 1;
    s->row = malloc(nr * sizeof(float));
    s->grow = malloc(nr * sizeof(float));
    s->dfeat = malloc((size_t)c->nf * s->dim * sizeof(float));
    lethe_status st = lethe_optim_init(&s->opt, c->cfg->optim, nr);
    if (st != LETHE_OK) return st;
    if (!s->row || !s->grow || !s->dfeat)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for Boundary Expanding");
    s->opt.momentum = c->opt.momentum;
    s->opt.weight_decay = c->opt.weight_decay;
    s->opt.beta1 = c->opt.beta1;
    s->opt.beta2 = c->opt.beta2;
    /* PyTorch's nn.Linear: weights and bias U(−1/√dim, 1/√dim). */
    lethe_rng rng;
    lethe_rng_seed(&rng, c->cfg->seed ^ 0x736861646f77ULL);
    float bound = 1.0f / sqrtf((float)s->dim);
    for (size_t j = 0; j < nr; j++) s->row[j] = (2.0f * lethe_rng_uniform(&rng) - 1.0f) * bound;
    c->saved[c->nsaved++] = (ul_saved){"be.row", s->row, nr};
    if (s->opt.m) c->saved[c->nsaved++] = (ul_saved){"be.optim.m", s->opt.m, nr};
    if (s->opt.v) c->saved[c->nsaved++] = (ul_saved){"be.optim.v", s->opt.v, nr};
    return LETHE_OK;
}

static void be_finish(ul_ctx *c)
{
    be_state *s = c->state;
    if (s) {
        free(s->row);
        free(s->grow);
        free(s->dfeat);
        lethe_optim_free(&s->opt);
    }
    free(s);
    c->state = NULL;
    c->nsaved = 0;
}

static lethe_status be_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    (void)t;
    be_state *s = c->state;
    lethe_status st;
    ul_draw(c, 1, 0, 0);
    if ((st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK) return st;
    int dim, nf = c->nf, k = c->nclass;
    const float *h = lethe_model_features(c->m, &dim);
    ul_clear_dlogits(c);
    memset(s->grow, 0, ((size_t)dim + 1) * sizeof(float));
    memset(s->dfeat, 0, (size_t)nf * dim * sizeof(float));
    float w = 1.0f / (float)nf;
    double sum = 0.0;
    for (int i = 0; i < nf; i++)
        sum += ul_be_shadow(c->logits + (size_t)i * k, k, h + (size_t)i * dim, dim, s->row, w,
                            c->dlogits + (size_t)i * k, s->grow, s->dfeat + (size_t)i * dim);
    tr->loss_u = (float)(sum / nf);
    lethe_vec_zero(c->grad, c->n);
    float *gs[1] = {c->grad};
    c->res->bwd_samples += nf;
    if ((st = lethe_model_backward_ex(c->m, c->dlogits, s->dfeat, &c->g, gs, NULL)) != LETHE_OK)
        return st;
    /* The row's step count is θ's: its Adam bias correction matches. */
    s->opt.t = c->opt.t;
    lethe_optim_step(&s->opt, s->row, s->grow, NULL, c->lr);
    ul_apply(c, c->grad);
    return LETHE_OK;
}

const ul_method ul_be = {
    .name = "be",
    .summary = "Boundary Expanding: D_f fine-tuned toward a shadow class, then the class dropped",
    .uses_forget = 1,
    .classification_only = 1,
    .init = be_init,
    .step = be_step,
    .finish = be_finish,
    .grid = "lr=0.005,0.01,0.02,0.05",
};
