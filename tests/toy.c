/* Shared toy-set helpers of the unlearning tests (see toy.h). */
#include "toy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void toy_free(toy *t)
{
    lethe_dataset_free(&t->ds);
    lethe_subset_free(&t->forget);
    lethe_subset_free(&t->retain);
    lethe_subset_free(&t->all);
}

lethe_model *toy_model(const toy *t, const char *arch, int epochs)
{
    lethe_model *m = NULL;
    if (lethe_model_create(&m, arch, 1, t->ds.h, t->ds.w, t->ds.nclass) != LETHE_OK) return NULL;
    lethe_train_config tc;
    lethe_train_config_default(&tc);
    tc.epochs = epochs;
    tc.batch = TOY_BS;
    tc.lr = 0.02f;
    tc.seed = 7;
    if (lethe_train(m, &t->ds, &t->all, &tc, NULL, NULL) != LETHE_OK ||
        lethe_model_reserve(m, 64) != LETHE_OK) {
        lethe_model_free(m);
        return NULL;
    }
    return m;
}

lethe_model *toy_clone(const lethe_model *src, const toy *t)
{
    lethe_model *m = NULL;
    if (lethe_model_create(&m, lethe_model_arch(src), 1, t->ds.h, t->ds.w, t->ds.nclass) !=
            LETHE_OK ||
        lethe_model_copy(m, src) != LETHE_OK || lethe_model_reserve(m, 64) != LETHE_OK) {
        lethe_model_free(m);
        return NULL;
    }
    return m;
}

void toy_images(toy *t, int n, int nclass, int hw, uint64_t seed, float flip, size_t nf_max,
                size_t nr_max)
{
    memset(t, 0, sizeof *t);
    lethe_dataset *ds = &t->ds;
    size_t px = (size_t)hw * hw;
    ds->n = n;
    ds->c = 1;
    ds->h = ds->w = hw;
    ds->nclass = nclass;
    ds->pixels = malloc((size_t)n * px);            /* (N, 1, hw, hw) */
    ds->labels = malloc((size_t)n);                 /* (N) */
    uint8_t *proto = malloc((size_t)nclass * px);   /* (nclass, hw·hw) */
    for (int c = 0; c < 3; c++) {
        ds->mean[c] = 0.5f;
        ds->std[c] = 0.5f;
    }
    snprintf(ds->name, sizeof ds->name, "toy");
    lethe_rng r;
    lethe_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)nclass * px; i++) proto[i] = lethe_rng_below(&r, 2) ? 255 : 0;
    for (int i = 0; i < n; i++) {
        int y = i % nclass;
        ds->labels[i] = (uint8_t)y;
        for (size_t p = 0; p < px; p++) {
            uint8_t v = proto[(size_t)y * px + p];
            if (lethe_rng_uniform(&r) < flip) v = (uint8_t)(255 - v);
            ds->pixels[(size_t)i * px + p] = v;
        }
    }
    free(proto);
    t->forget.idx = malloc((size_t)n * sizeof(int32_t));
    t->retain.idx = malloc((size_t)n * sizeof(int32_t));
    t->all.idx = malloc((size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        t->all.idx[t->all.n++] = i;
        if (ds->labels[i] == 0) {
            if (t->forget.n < nf_max) t->forget.idx[t->forget.n++] = i;
        } else if (t->retain.n < nr_max) {
            t->retain.idx[t->retain.n++] = i;
        }
    }
}
