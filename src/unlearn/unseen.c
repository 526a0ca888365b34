/*
 * Forget just enough (lethe_unlearn_config.unseen): a model that never saw
 * a random forget set treats it as it treats unseen data, no more and no
 * less. So each forgetting sample gets a target: at θ_0 the forget set's
 * per-sample losses (CE on the true label) are ranked, and the sample of
 * rank r (of N) gets the reference's loss quantile q = (r + ½)/N. During
 * the run a sample at or above its target gets no ℓ_u gradient (its row of
 * ∂ℓ/∂logits is zeroed); one below it is forgotten as the method says.
 * When every sample has reached its target, the forget set's losses are
 * distributed as the reference's (1-D quantile matching): the hard samples
 * (ranked last, as Retrain would misclassify them) become wrong, the easy
 * ones stay right. No extra pass per step: the gate reads the logits of
 * the step's own forward.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unlearn/method.h"
#include "core/fail.h"

/* Per-sample CE on the true label of `idx` (n) of `data`, EVAL mode, in
 * chunks of the model's reserved batch; counted. */
static lethe_status losses_of(ul_ctx *c, const lethe_dataset *data, const int32_t *idx, size_t n,
                              float *out)
{
    int chunk = c->nf + c->nr;
    float *x = malloc((size_t)chunk * c->px * sizeof(float));  /* (chunk, C, H, W) */
    int32_t *y = malloc((size_t)chunk * sizeof(int32_t));      /* (chunk) */
    lethe_status st = LETHE_OK;
    if (!x || !y) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for the unseen reference");
        goto done;
    }
    for (size_t i = 0; i < n; i += (size_t)chunk) {
        int k = n - i < (size_t)chunk ? (int)(n - i) : chunk;
        const float *logits;
        lethe_dataset_batch(data, idx + i, k, x, y);
        if ((st = lethe_model_forward(c->m, x, k, NULL, LETHE_BN_EVAL, &logits)) != LETHE_OK)
            goto done;
        lethe_loss(LETHE_LOSS_CE, out + i, NULL, logits, y, NULL, k, c->nclass);
    }
    c->res->fwd_samples += (long)n;
    c->res->unseen_fwd_samples += (long)n;
done:
    free(x);
    free(y);
    return st;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* A forget sample's loss and position, ranked by (loss, position). */
typedef struct { float loss; int32_t pos; } ranked;
static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->loss != y->loss) return (x->loss > y->loss) - (x->loss < y->loss);
    return (x->pos > y->pos) - (x->pos < y->pos);
}

lethe_status ul_unseen_init(ul_ctx *c)
{
    const lethe_unlearn_config *cfg = c->cfg;
    const lethe_subset *f = c->forget, *ref = cfg->unseen;
    size_t nf = f->n, nr = ref->n;
    lethe_status st = LETHE_OK;
    float *lf = malloc(nf * sizeof(float));         /* (nf) forget losses at θ_0 */
    float *lr = malloc(nr * sizeof(float));         /* (nr) reference losses, sorted */
    ranked *pos = malloc(nf * sizeof(ranked));      /* (nf) by rank */
    c->tau_by_index = malloc((size_t)c->ds->n * sizeof(float));
    c->row_tau = malloc(((size_t)c->nf + 1) * sizeof(float));
    if (!lf || !lr || !pos || !c->tau_by_index || !c->row_tau) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for the unseen reference");
        goto done;
    }
    if ((st = losses_of(c, c->ds, f->idx, nf, lf)) != LETHE_OK ||
        (st = losses_of(c, cfg->unseen_data, ref->idx, nr, lr)) != LETHE_OK)
        goto done;
    qsort(lr, nr, sizeof(float), cmp_float);
    for (size_t i = 0; i < nf; i++) pos[i] = (ranked){lf[i], (int32_t)i};
    qsort(pos, nf, sizeof(ranked), cmp_ranked);
    for (int i = 0; i < c->ds->n; i++) c->tau_by_index[i] = NAN;
    for (size_t r = 0; r < nf; r++) {
        size_t q = (size_t)(((double)r + 0.5) / (double)nf * (double)nr);
        c->tau_by_index[f->idx[pos[r].pos]] = lr[q < nr ? q : nr - 1];
    }
    /* AUC of "forget loss below reference loss" at θ_0 (ties count ½),
     * by merging the two sorted lists: 0.5 is what Retrain shows. */
    double below = 0.0;
    size_t j = 0, k = 0;
    for (size_t r = 0; r < nf; r++) {
        float v = pos[r].loss;
        while (j < nr && lr[j] < v) j++;        /* reference losses < v */
        k = j;
        while (k < nr && lr[k] == v) k++;       /* … and == v */
        below += (double)(nr - k) + 0.5 * (double)(k - j);
    }
    c->res->unseen_auc0 = below / ((double)nf * (double)nr);
    c->res->unseen_n = (int)nr;
done:
    free(lf);
    free(lr);
    free(pos);
    return st;
}

void ul_unseen_gate(ul_ctx *c, int from, int count)
{
    int to = from + count < c->cur_nf ? from + count : c->cur_nf;
    for (int i = from; i < to; i++) {
        const float *z = c->logits + (size_t)i * c->nclass;
        float mx = z[0];
        for (int k = 1; k < c->nclass; k++) mx = z[k] > mx ? z[k] : mx;
        double se = 0.0;
        for (int k = 0; k < c->nclass; k++) se += exp((double)(z[k] - mx));
        double ce = (double)mx + log(se) - (double)z[c->y[i]];
        c->res->unseen_rows++;
        if (ce >= (double)c->row_tau[i]) {
            memset(c->dlogits + (size_t)i * c->dout, 0, c->dout * sizeof(float));
            c->res->unseen_gated++;
        }
    }
}
