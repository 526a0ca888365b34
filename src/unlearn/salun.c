/*
 * SalUn (ALGORITHM.md §6): RL restricted by a weight-saliency mask.
 *     s = |∇_θ CE(D_f)| at θ_0 (over the whole forgetting set, once)
 *     m_i = 1 if s_i is among the largest γ·n entries of s, else 0
 *     θ_{t+1} = θ_t − α_t (m ⊙ d_t),  d_t the RL direction
 * The mask keeps the LARGEST gradients (a known pitfall is to keep the
 * smallest). The mask pass is counted as forward and backward work.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unlearn/method.h"
#include "core/fail.h"

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static lethe_status salun_init(ul_ctx *c)
{
    lethe_status st = LETHE_OK;
    size_t n = c->n, nf = c->forget->n;
    float *sal = calloc(n, sizeof(float));      /* (n) accumulated ∇CE(D_f) */
    float *sorted = malloc(n * sizeof(float));  /* (n) |s| in descending order */
    c->mask = malloc(n);
    if (!sal || !sorted || !c->mask) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for the SalUn mask");
        goto done;
    }
    /* ∇ of the mean CE over D_f, in batches, at θ0 (running averages kept). */
    for (size_t b = 0; b < nf; b += (size_t)c->nf) {
        int cnt = (int)(nf - b < (size_t)c->nf ? nf - b : (size_t)c->nf);
        lethe_dataset_batch(c->ds, c->forget->idx + b, cnt, c->x, c->y);
        memcpy(c->yt, c->y, (size_t)cnt * sizeof(int32_t));
        lethe_groups_one(&c->g, cnt);
        c->cur_nf = cnt;
        /* Diffusion: the saliency of the denoising loss on D_f (SalUn's). */
        if ((st = ul_prepare(c, 0, cnt, 0)) != LETHE_OK) goto done;
        if ((st = ul_forward(c, LETHE_BN_EVAL)) != LETHE_OK) goto done;
        ul_clear_dlogits(c);
        ul_loss(c, LETHE_LOSS_CE, 0, cnt, 1.0f / (float)nf);
        float *gs[1] = {sal};
        c->res->bwd_samples += cnt;
        if ((st = lethe_model_backward(c->m, c->dlogits, &c->g, gs)) != LETHE_OK) goto done;
    }
    for (size_t i = 0; i < n; i++) sorted[i] = sal[i] = fabsf(sal[i]);
    qsort(sorted, n, sizeof(float), cmp_desc);
    size_t k = (size_t)llround((double)c->cfg->salun_gamma * (double)n);
    if (k < 1) k = 1;
    float thr = sorted[k - 1];
    /* Exactly k weights move: strictly above the threshold, then ties in order. */
    size_t above = 0;
    for (size_t i = 0; i < n; i++) above += sal[i] > thr;
    size_t ties = k - above;
    for (size_t i = 0; i < n; i++) {
        if (sal[i] > thr) c->mask[i] = 1;
        else if (sal[i] == thr && ties) { c->mask[i] = 1; ties--; }
        else c->mask[i] = 0;
    }
done:
    free(sal);
    free(sorted);
    return st;
}

/* The mask is computed at θ_0: a resumed run takes it from the state. */
static void salun_save(ul_ctx *c, rs_writer *w)
{
    rs_put_bytes(w, "mask", c->mask, c->n);
}

static lethe_status salun_load(ul_ctx *c, const rs_reader *r)
{
    return rs_get_bytes(r, "mask", c->mask, c->n, 1);
}

static const lethe_param gamma_params[] = {
    UL_REAL("gamma", "salun_gamma", salun_gamma, 0, 1, 1, 0, "0.3,0.5,0.7",
            "fraction of the weights that move, the most salient (default 0.5)"),
};

const ul_method ul_salun = {
    .name = "salun",
    .summary = "RL on the weights most salient for D_f (top gamma)",
    .uses_forget = 1,
    .uses_retain = 1,
    .init = salun_init,
    .step = ul_rl_step,
    .save = salun_save,
    .load = salun_load,
    .params = gamma_params,
    .nparams = 1,
    .grid = "lr=0.002,0.005,0.01,0.02,0.05",
    .gen_grid = "lr=0.0001,0.0003,0.001;retain_weight=1,3",
};
