/* Loading a forget/retain split of a data set and evaluating a model on it;
 * the training set of `lethe train`; saving an unlearned model. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

lethe_status cli_split_load(cli_split *s, const char *data, const char *dir,
                            const char *spec, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    lethe_status st = lethe_forget_parse(&s->spec, spec);
    if (st != LETHE_OK) return st;
    if ((st = cli_load_data(data, dir, &s->train, &s->test)) != LETHE_OK) return st;
    if ((st = lethe_forget_split(&s->spec, &s->train, seed, &s->forget, &s->retain)) != LETHE_OK ||
        (st = lethe_forget_split_test(&s->spec, &s->test, &s->test_forget,
                                      &s->test_retain)) != LETHE_OK) {
        cli_split_free(s);
        return st;
    }
    lethe_forget_to_string(&s->spec, s->spec_text, sizeof s->spec_text);
    return LETHE_OK;
}

void cli_split_free(cli_split *s)
{
    lethe_subset_free(&s->forget);
    lethe_subset_free(&s->retain);
    lethe_subset_free(&s->test_forget);
    lethe_subset_free(&s->test_retain);
    lethe_dataset_free(&s->train);
    lethe_dataset_free(&s->test);
}

lethe_status cli_split_metrics(cli_split *s, lethe_model *m, uint64_t seed, lethe_metrics *out)
{
    lethe_status st = lethe_model_reserve(m, 256);
    if (st != LETHE_OK) return st;
    return lethe_evaluate(m, &s->train, &s->test, &s->forget, &s->retain, &s->test_retain,
                          s->test_forget.n ? &s->test_forget : NULL, seed, out);
}

lethe_status cli_open_model(const char *path, lethe_model **m, lethe_metadata *md)
{
    return lethe_checkpoint_open(m, path, md);
}

lethe_status cli_training_set(const lethe_forget_spec *spec, const lethe_dataset *train,
                              uint64_t seed, lethe_subset *all, lethe_subset *forget,
                              lethe_subset *retain, const lethe_subset **sub)
{
    lethe_status st;
    if (spec) {
        st = lethe_forget_split(spec, train, seed, forget, retain);
        *sub = retain;
    } else {
        st = lethe_subset_all(all, (size_t)train->n);
        *sub = all;
    }
    return st;
}

lethe_status cli_save_unlearned(const lethe_model *m, lethe_metadata *md,
                                const lethe_unlearn_config *cfg, const char *forgot,
                                const char *from, const char *out)
{
    char buf[64];
    lethe_meta_set(md, "unlearned_by", cfg->method);
    lethe_meta_set(md, "forgot", forgot);
    snprintf(buf, sizeof buf, "%lu", (unsigned long)cfg->seed);
    lethe_meta_set(md, "unlearn_seed", buf);
    lethe_meta_set(md, "unlearned_from", from);
    return lethe_checkpoint_save(m, md, out);
}
