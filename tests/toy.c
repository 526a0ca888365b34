/* Shared toy-set helpers of the unlearning tests (see toy.h). */
#include "toy.h"

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
