/* The unlearning options shared by unlearn, bench, tune and demo. */
#include <string.h>

#include "cli/ulopts.h"
#include "nn/model.h"

int cli_unlearn_config(const cli_args *a, lethe_unlearn_config *c)
{
    /* By name: a method's own defaults come with it (then the options given). */
    const char *m = cli_str(a, "method", NULL);
    int r;
    /* A misspelt name gets the nearest one, as --methods does. */
    if (m && (r = cli_check_method(a->cmd, "--method", m))) return r;
    if (m && lethe_unlearn_set(c, "method", m) != LETHE_OK) c->method = m;  /* validate says */
    return cli_unlearn_options(a, c);
}

int cli_unlearn_options(const cli_args *a, lethe_unlearn_config *c)
{
    for (int i = 0; i < a->n; i++) {
        if (!lethe_param_find(a->key[i])) continue;    /* the command's own option */
        if (lethe_unlearn_set(c, a->key[i], a->val[i]) != LETHE_OK)
            return cli_usage_error(a->cmd, "--%s: %s", a->key[i], lethe_last_error());
    }
    if (lethe_unlearn_validate(c) != LETHE_OK)
        return cli_usage_error(a->cmd, "%s", lethe_last_error());
    return 0;
}

int cli_check_model_data(const char *cmd, const char *path, const lethe_metadata *md,
                         const lethe_model *m, const lethe_dataset *ds)
{
    if (nn_model_is_text(m) != (ds->tokens != NULL))
        return cli_error(cmd, "%s: a %s model reads %s, data set %s holds %s", path,
                         lethe_model_arch(m), nn_model_is_text(m) ? "texts" : "images",
                         ds->name, ds->tokens ? "texts" : "images");
    const char *shape = lethe_meta_get(md, "in_shape");
    char want[64];
    snprintf(want, sizeof want, "%d,%d,%d", ds->c, ds->h, ds->w);
    if (shape && strcmp(shape, want) != 0)
        return cli_error(cmd, "%s: model expects inputs %s, data set %s has %s", path, shape,
                         ds->name, want);
    if (lethe_model_nclass(m) != ds->nclass)
        return cli_error(cmd, "%s: model has %d classes, data set %s has %d", path,
                         lethe_model_nclass(m), ds->name, ds->nclass);
    char why[256];
    if (cli_norm_differs(md, ds, why, sizeof why))
        return cli_error(cmd, "%s: %s (data set %s)", path, why, ds->name);
    return 0;
}
