/*
 * The unlearning metrics of PROTOCOL.md "Metrics":
 *   UA = 100 − acc(D_f), RA = acc(D_r), TA = acc(test, retained classes),
 *   MIA-Efficacy with shadow members drawn from D_r (as many as the test
 *   set), shadow non-members = the test set, targets = D_f;
 *   Avg. Gap = mean of |method − Retrain| over UA, RA, TA and MIA.
 */
#include "lethe.h"
#include "core/fail.h"

#include <math.h>
#include <stdlib.h>

lethe_status lethe_evaluate(lethe_model *m, const lethe_dataset *train,
                            const lethe_dataset *test,
                            const lethe_subset *forget, const lethe_subset *retain,
                            const lethe_subset *test_retain,
                            const lethe_subset *test_forget,
                            uint64_t seed, lethe_metrics *out)
{
    if (!m || !train || !test || !forget || !retain || !test_retain || !out)
        return lethe_fail(LETHE_ERR_ARG, "lethe_evaluate: NULL argument");
    if (forget->n == 0) return lethe_fail(LETHE_ERR_ARG, "lethe_evaluate: empty forget set");
    if (retain->n == 0) return lethe_fail(LETHE_ERR_ARG, "lethe_evaluate: empty retain set");
    if (test_retain->n == 0) return lethe_fail(LETHE_ERR_ARG, "lethe_evaluate: empty test set");

    lethe_metrics r = {0};
    double acc;
    lethe_status st;
    /* True-label probabilities: the MIA's features. */
    float *pf = malloc(forget->n * sizeof *pf);          /* (|D_f|) */
    float *pr = malloc(retain->n * sizeof *pr);          /* (|D_r|) */
    float *pt = malloc(test_retain->n * sizeof *pt);     /* (|test|) */
    int32_t *pick = malloc(retain->n * sizeof *pick);    /* (|D_r|) positions in retain */
    float *shadow = malloc(retain->n * sizeof *shadow);  /* (≤ |D_r|) shadow members */
    if (!pf || !pr || !pt || !pick || !shadow) {
        st = lethe_fail(LETHE_ERR_NOMEM, "lethe_evaluate: no memory for %zu + %zu + %zu probabilities",
                        forget->n, retain->n, test_retain->n);
        goto done;
    }

    if ((st = lethe_eval_accuracy(m, train, forget, LETHE_EVAL_BATCH, &acc, pf)) != LETHE_OK) goto done;
    r.ua = 100.0 - acc;
    if ((st = lethe_eval_accuracy(m, train, retain, LETHE_EVAL_BATCH, &acc, pr)) != LETHE_OK) goto done;
    r.ra = acc;
    if ((st = lethe_eval_accuracy(m, test, test_retain, LETHE_EVAL_BATCH, &acc, pt)) != LETHE_OK) goto done;
    r.ta = acc;
    if (test_forget && test_forget->n > 0) {
        if ((st = lethe_eval_accuracy(m, test, test_forget, LETHE_EVAL_BATCH, &acc, NULL)) != LETHE_OK)
            goto done;
        r.ta_forget = acc;
        r.has_ta_forget = 1;
    }

    /* Shadow members: the first k of a partial Fisher–Yates shuffle of the
     * retain positions (the same draw as shuffling a copy of retain's
     * indices), so the retain pass above already holds their features. */
    size_t k = test_retain->n < retain->n ? test_retain->n : retain->n;
    for (size_t i = 0; i < retain->n; i++) pick[i] = (int32_t)i;
    lethe_rng rng;
    lethe_rng_seed(&rng, seed);
    for (size_t i = 0; i < k; i++) {
        size_t j = i + lethe_rng_below(&rng, (uint32_t)(retain->n - i));
        int32_t t = pick[i];
        pick[i] = pick[j];
        pick[j] = t;
        shadow[i] = pr[pick[i]];
    }
    if ((st = lethe_mia_efficacy(shadow, k, pt, test_retain->n, pf, forget->n, &r.mia)) != LETHE_OK)
        goto done;
    *out = r;

done:
    free(pf);
    free(pr);
    free(pt);
    free(pick);
    free(shadow);
    return st;
}

double lethe_avg_gap(const lethe_metrics *m, const lethe_metrics *ref)
{
    return (fabs(m->ua - ref->ua) + fabs(m->ra - ref->ra) + fabs(m->ta - ref->ta) +
            fabs(m->mia - ref->mia)) / 4.0;
}
