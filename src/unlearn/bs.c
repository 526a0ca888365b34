/*
 * Boundary Shrink (Chen et al., 2023, "Boundary Unlearning"; ALGORITHM.md
 * §6, later rounds): each forgetting sample is relabelled with its nearest
 * wrong class, found by attacking the frozen original model f_0, and the
 * model is fine-tuned on D_f with those labels:
 *     x_adv = x + bound·sign(∇_x CE(f_0(x), y))       (one FGSM step)
 *     y_nbi = argmax_j f_0(x_adv)_j, or argmax_{j ≠ y} when that is still y
 *     d_t   = ∇_θ mean CE(f_θ(x_f), y_nbi)
 * bound = 0.1 (the paper's), in the normalised input space. The authors'
 * code attacks with 5 steps of L∞ PGD and keeps y_nbi even when it equals
 * y; here one FGSM step and always another class. f_0 runs with its
 * running averages (eval mode), as theirs. Cost per step on B_f: 3F + 2B
 * (f_0 forward, its backward to the input only, f_0 on x_adv; the
 * model's forward and backward).
 */
#include <stdlib.h>
#include <string.h>

#include "unlearn/method.h"
#include "core/fail.h"

enum { BOUND };

static const lethe_param bs_params[] = {
    UL_OPT_REAL("bound", BOUND, 0.1, 0, 1, 100, 0, NULL,
                "BS: step of the FGSM attack in the normalised input (default 0.1)"),
};

typedef struct {
    lethe_model *orig;  /* f_0, frozen */
    float *xadv;        /* (nf, C, H, W) ∂CE/∂x, then x_adv */
} bs_state;

int ul_bs_label(const float *z, int y, int k)
{
    int best = -1;
    for (int j = 0; j < k; j++)
        if (best < 0 || z[j] > z[best]) best = j;
    if (best != y) return best;
    best = -1;
    for (int j = 0; j < k; j++)
        if (j != y && (best < 0 || z[j] > z[best])) best = j;
    return best;
}

static lethe_status bs_init(ul_ctx *c)
{
    bs_state *s = calloc(1, sizeof *s);
    c->state = s;
    if (!s || !(s->xadv = malloc((size_t)c->nf * c->px * sizeof(float))))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for Boundary Shrink");
    /* The driver calls init with θ_0 (a resumed run too). */
    return ul_frozen_copy(c, &s->orig);
}

static void bs_finish(ul_ctx *c)
{
    bs_state *s = c->state;
    if (s) {
        lethe_model_free(s->orig);
        free(s->xadv);
    }
    free(s);
    c->state = NULL;
}

/* The nearest wrong labels of the drawn forgetting rows into c->yt. */
static lethe_status bs_targets(ul_ctx *c)
{
    bs_state *s = c->state;
    int nf = c->nf, k = c->nclass;
    const float *z;
    lethe_status st;
    c->res->fwd_samples += nf;
    if ((st = lethe_model_forward(s->orig, c->x, nf, &c->g, LETHE_BN_EVAL, &z)) != LETHE_OK)
        return st;
    ul_clear_dlogits(c);
    lethe_loss(LETHE_LOSS_CE, c->losses, c->dlogits, z, c->y, NULL, nf, k);
    c->res->bwd_samples += nf;
    if ((st = lethe_model_backward_ex(s->orig, c->dlogits, NULL, &c->g, NULL, s->xadv)) !=
        LETHE_OK)
        return st;
    float bound = UL_OPT(c, ul_bs, BOUND);
    size_t len = (size_t)nf * c->px;
    for (size_t i = 0; i < len; i++) {
        float gi = s->xadv[i];
        s->xadv[i] = c->x[i] + (gi > 0.0f ? bound : gi < 0.0f ? -bound : 0.0f);
    }
    c->res->fwd_samples += nf;
    if ((st = lethe_model_forward(s->orig, s->xadv, nf, &c->g, LETHE_BN_EVAL, &z)) != LETHE_OK)
        return st;
    for (int i = 0; i < nf; i++) c->yt[i] = ul_bs_label(z + (size_t)i * k, c->y[i], k);
    return LETHE_OK;
}

static lethe_status bs_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    (void)t;
    lethe_status st;
    ul_draw(c, 1, 0, 0);
    if ((st = bs_targets(c)) != LETHE_OK || (st = ul_forward(c, LETHE_BN_TRAIN)) != LETHE_OK)
        return st;
    ul_clear_dlogits(c);
    tr->loss_u = ul_loss(c, LETHE_LOSS_CE, 0, c->nf, 1.0f / (float)c->nf);
    if ((st = ul_backward(c, c->grad, NULL)) != LETHE_OK) return st;
    ul_apply(c, c->grad);
    return LETHE_OK;
}

const ul_method ul_bs = {
    .name = "bs",
    .summary = "Boundary Shrink: D_f fine-tuned to the nearest wrong class by FGSM on θ_0",
    .uses_forget = 1,
    .classification_only = 1,
    .params = bs_params,
    .nparams = 1,
    .init = bs_init,
    .step = bs_step,
    .finish = bs_finish,
    .grid = "lr=0.005,0.01,0.02,0.05",
};
