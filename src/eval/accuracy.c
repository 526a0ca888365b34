/*
 * Accuracy of a model over a subset of a data set, and the softmax
 * probability of the true label per sample (the MIA's feature,
 * PROTOCOL.md "Metrics").
 *
 * The model runs in EVAL mode (running batch-norm statistics), one group per
 * batch, so the result does not depend on how the subset is cut into batches.
 */
#include "lethe.h"
#include "core/dist.h"
#include "core/fail.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

/* softmax(row)_y with the max subtracted first, so large logits cannot
 * overflow exp(); the sum is kept in double. row (c). */
static float softmax_at(const float *row, int c, int y)
{
    float mx = row[0];
    for (int j = 1; j < c; j++)
        if (row[j] > mx) mx = row[j];
    double sum = 0.0;
    for (int j = 0; j < c; j++) sum += exp((double)row[j] - mx);
    return (float)(exp((double)row[y] - mx) / sum);
}

lethe_status lethe_eval_accuracy(lethe_model *m, const lethe_dataset *ds,
                                 const lethe_subset *sub, int batch,
                                 double *acc, float *p_true)
{
    if (!m || !ds || !sub || !acc)
        return lethe_fail(LETHE_ERR_ARG, "lethe_eval_accuracy: NULL argument");
    if (batch <= 0)
        return lethe_fail(LETHE_ERR_ARG, "lethe_eval_accuracy: batch %d must be positive", batch);
    if (sub->n == 0 || !sub->idx)
        return lethe_fail(LETHE_ERR_ARG, "lethe_eval_accuracy: empty subset");
    if (sub->n > (size_t)INT_MAX)
        return lethe_fail(LETHE_ERR_ARG, "lethe_eval_accuracy: subset of %zu samples is too large", sub->n);
    if (!(ds->pixels || ds->tokens) || !ds->labels || ds->n <= 0 || ds->c <= 0 || ds->h <= 0 || ds->w <= 0)
        return lethe_fail(LETHE_ERR_ARG, "lethe_eval_accuracy: data set '%s' is empty or has no pixels", ds->name);
    /* The forward reads the model's image size from each row of x: images
     * of another shape (a CIFAR model given Fashion-MNIST) would be read
     * past the end of the batch. */
    lethe_status fit = lethe_model_check_data(m, ds);
    if (fit != LETHE_OK) return fit;

    /* Check every index and label once, before any work: a bad label would
     * otherwise be read past the end of a logits row. */
    const int nclass = lethe_model_nclass(m);
    for (size_t i = 0; i < sub->n; i++) {
        int32_t k = sub->idx[i];
        if (k < 0 || k >= ds->n)
            return lethe_fail(LETHE_ERR_ARG, "lethe_eval_accuracy: subset index %d out of range [0, %d) of '%s'",
                              (int)k, ds->n, ds->name);
        if (ds->labels[k] >= nclass)
            return lethe_fail(LETHE_ERR_ARG, "lethe_eval_accuracy: label %d of sample %d is not below the model's %d classes",
                              ds->labels[k], (int)k, nclass);
    }

    const int n = (int)sub->n;
    const int bs = batch < n ? batch : n;
    const size_t per = lethe_dataset_sample_size(ds);
    float *x = malloc((size_t)bs * per * sizeof *x);   /* (bs, C, H, W) */
    int32_t *y = malloc((size_t)bs * sizeof *y);       /* (bs) */
    lethe_status st = LETHE_OK;
    if (!x || !y) {
        st = lethe_fail(LETHE_ERR_NOMEM, "lethe_eval_accuracy: no memory for a batch of %d", bs);
        goto done;
    }

    /* Under mpirun each rank runs its part [lo, hi) of the subset; the
     * counts are summed and the probabilities gathered. One process: all. */
    long correct = 0, lo = 0, hi = n;
    core_dist_shard(n, &lo, &hi);
    for (int start = (int)lo; start < (int)hi; start += bs) {
        int b = (int)hi - start < bs ? (int)hi - start : bs;
        lethe_dataset_batch(ds, sub->idx + start, b, x, y);
        lethe_groups g;
        lethe_groups_one(&g, b);
        const float *logits;  /* (b, nclass), owned by m */
        st = lethe_model_forward(m, x, b, &g, LETHE_BN_EVAL, &logits);
        if (st != LETHE_OK) goto done;  /* e.g. batch above the reserved size */
        correct += lethe_correct(logits, y, b, nclass);
        if (!p_true) continue;
        for (int i = 0; i < b; i++) {
            float p = softmax_at(logits + (size_t)i * nclass, nclass, y[i]);
            if (!isfinite(p)) {
                st = lethe_fail(LETHE_ERR_NUMERIC, "lethe_eval_accuracy: non-finite logits for sample %d",
                                (int)sub->idx[start + i]);
                goto done;
            }
            p_true[start + i] = p;
        }
    }
    if (core_dist_size() > 1) {
        core_dist_sum_l(&correct, 1);
        if (p_true) core_dist_gather_f(p_true, n);
    }
    *acc = 100.0 * (double)correct / (double)n;

done:
    free(x);
    free(y);
    return st;
}
