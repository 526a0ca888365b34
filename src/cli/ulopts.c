/* The unlearning options shared by unlearn, bench, tune and demo. */
#include <limits.h>
#include <string.h>

#include "cli/ulopts.h"

int cli_unlearn_config(const cli_args *a, lethe_unlearn_config *c)
{
    const char *cmd = a->cmd;
    long steps, batch, seed;
    double lr, mom, eps, budget, beta, lam0, lmax, na, gam, l1, b1, b2, wd, clip, w0, wlr, wdec,
        rw, eta;
    lethe_unlearn_config d;
    lethe_unlearn_config_default(&d);
    if (cli_int(a, "steps", d.steps, 0, 100000000, &steps) ||
        cli_int(a, "batch", d.batch, 1, 4096, &batch) ||
        cli_int(a, "seed", 0, 0, LONG_MAX, &seed) ||
        cli_float(a, "lr", c->lr > 0 ? c->lr : d.lr, 1e-12, 1e3, &lr) ||
        cli_float(a, "momentum", c->momentum, 0, 0.9999, &mom) ||
        cli_float(a, "eps", c->eps, 0, 1e6, &eps) ||
        cli_float(a, "eps-budget", c->eps_budget, 0, 1e6, &budget) ||
        cli_float(a, "beta", c->beta, 0, 1e6, &beta) ||
        cli_float(a, "lambda0", c->lambda0, 0, 1e6, &lam0) ||
        cli_float(a, "lambda-max", c->lambda_max, 1e-12, 1e6, &lmax) ||
        cli_float(a, "a", c->neggrad_a, 1e-9, 1 - 1e-9, &na) ||
        cli_float(a, "gamma", c->salun_gamma, 1e-9, 1, &gam) ||
        cli_float(a, "l1", c->l1, 0, 10, &l1) ||
        cli_float(a, "adam-beta1", c->adam_beta1, 0, 0.999999, &b1) ||
        cli_float(a, "adam-beta2", c->adam_beta2, 0, 0.999999999, &b2) ||
        cli_float(a, "wd", c->weight_decay, 0, 10, &wd) ||
        cli_float(a, "clip-grad", c->clip_grad, 0, 1e9, &clip) ||
        cli_float(a, "w0", c->w0, -1e6, 1e6, &w0) ||
        cli_float(a, "w-lr", c->w_lr, 1e-12, 1e3, &wlr) ||
        cli_float(a, "w-decay", c->w_decay, 0, 1e3, &wdec) ||
        cli_float(a, "retain-weight", c->retain_weight, 1e-12, 1e9, &rw) ||
        cli_float(a, "esd-eta", c->esd_eta, 0, 1e3, &eta))
        return 2;
    c->adam_beta1 = (float)b1;
    c->adam_beta2 = (float)b2;
    c->weight_decay = (float)wd;
    c->clip_grad = (float)clip;
    c->w0 = (float)w0;
    c->w_lr = (float)wlr;
    c->w_decay = (float)wdec;
    c->retain_weight = (float)rw;
    c->esd_eta = (float)eta;
    c->method = cli_str(a, "method", c->method);
    c->steps = steps;
    c->batch = (int)batch;
    c->seed = (uint64_t)seed;
    c->lr = (float)lr;
    c->momentum = (float)mom;
    c->eps = (float)eps;
    c->eps_budget = (float)budget;
    c->beta = (float)beta;
    c->lambda0 = (float)lam0;
    c->lambda_max = (float)lmax;
    c->neggrad_a = (float)na;
    c->salun_gamma = (float)gam;
    c->l1 = (float)l1;
    const char *v;
    if ((v = cli_str(a, "loss", NULL)) && lethe_ul_loss_parse(&c->loss, v) != LETHE_OK)
        return cli_lib_error(cmd, LETHE_ERR_ARG) + 1;
    if ((v = cli_str(a, "schedule", NULL))) {
        lethe_schedule s;
        if (lethe_schedule_parse(&s, v) != LETHE_OK) return cli_lib_error(cmd, LETHE_ERR_ARG) + 1;
        c->schedule = s.kind;
    }
    if ((v = cli_str(a, "beta-schedule", NULL))) {
        if (strcmp(v, "decay") == 0) c->beta_decay = 1;
        else if (strcmp(v, "constant") == 0) c->beta_decay = 0;
        else return cli_error(cmd, "--beta-schedule: expected decay or constant, got '%s'", v) + 1;
    }
    if ((v = cli_str(a, "optim", NULL)) && lethe_unlearn_optim_parse(&c->optim, v) != LETHE_OK)
        return cli_error(cmd, "--optim: %s", lethe_last_error()) + 1;
    if ((v = cli_str(a, "lambda-form", NULL)) &&
        lethe_lambda_form_parse(&c->lambda_form, v) != LETHE_OK)
        return cli_error(cmd, "--lambda-form: %s", lethe_last_error()) + 1;
    if ((v = cli_str(a, "ungrad-form", NULL))) {
        if (strcmp(v, "grouped") == 0) c->ungrad_form = LETHE_UNGRAD_GROUPED;
        else if (strcmp(v, "mixed") == 0) c->ungrad_form = LETHE_UNGRAD_MIXED;
        else return cli_error(cmd, "--ungrad-form: expected grouped or mixed, got '%s'", v) + 1;
    }
    lethe_status st = lethe_unlearn_validate(c);
    if (st != LETHE_OK) return cli_lib_error(cmd, st) + 1;
    return 0;
}

int cli_check_model_data(const char *cmd, const char *path, const lethe_metadata *md,
                         const lethe_model *m, const lethe_dataset *ds)
{
    const char *shape = lethe_meta_get(md, "in_shape");
    char want[64];
    snprintf(want, sizeof want, "%d,%d,%d", ds->c, ds->h, ds->w);
    if (shape && strcmp(shape, want) != 0)
        return cli_error(cmd, "%s: model expects inputs %s, data set %s has %s", path, shape,
                         ds->name, want);
    if (lethe_model_nclass(m) != ds->nclass)
        return cli_error(cmd, "%s: model has %d classes, data set %s has %d", path,
                         lethe_model_nclass(m), ds->name, ds->nclass);
    return 0;
}
