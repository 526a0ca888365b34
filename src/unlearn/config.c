/*
 * An unlearning configuration: its defaults and the names of its choices.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unlearn/method.h"
#include "core/fail.h"

void lethe_unlearn_config_default(lethe_unlearn_config *c)
{
    memset(c, 0, sizeof *c);
    c->method = "eupmu";
    c->loss = LETHE_UL_RL;
    c->steps = 0;               /* 0: the protocol's 5·⌈|D_f|/batch⌉ */
    c->batch = 128;
    c->lr = 0.01f;
    c->schedule = LETHE_SCHED_CONSTANT;
    c->momentum = 0.0f;
    c->eps = 0.01f;
    c->eps_budget = 0.0f;
    c->beta = 1.0f;
    c->beta_decay = 1;
    c->lambda0 = 1.0f;
    c->lambda_max = 100.0f;
    c->neggrad_a = 0.9f;
    c->salun_gamma = 0.5f;
    c->l1 = 5e-4f;
    c->ungrad_form = LETHE_UNGRAD_GROUPED;
    c->seed = 0;
    c->diagnostics = 0;
    c->audit = 0;
    c->audit_probe = 512;
    c->ddpm = NULL;
    c->p_uncond = 0.1f;
    c->optim = LETHE_OPT_SGD;
    c->adam_beta1 = 0.9f;
    c->adam_beta2 = 0.999f;
    c->weight_decay = 0.0f;
    c->clip_grad = 0.0f;
    c->lambda_form = LETHE_LAMBDA_PAPER;
    c->w0 = 0.0f;
    c->w_lr = 0.025f;
    c->w_decay = 0.01f;
    c->retain_weight = 1.0f;
    c->esd_eta = 1.0f;
    c->bn_running = LETHE_BN_RUNNING_ALL;
    for (int k = 0; k < LETHE_METHOD_OPTS; k++) c->method_opt[k] = NAN;
}

lethe_status lethe_unlearn_optim_parse(lethe_opt_kind *k, const char *name)
{
    if (strcmp(name, "sgd") == 0) *k = LETHE_OPT_SGD;
    else if (strcmp(name, "adam") == 0 || strcmp(name, "adamw") == 0) *k = LETHE_OPT_ADAMW;
    else return lethe_fail(LETHE_ERR_ARG, "unknown optimiser '%s' (sgd, adam)", name);
    return LETHE_OK;
}

lethe_status lethe_lambda_form_parse(lethe_lambda_form *f, const char *name)
{
    if (strcmp(name, "paper") == 0) *f = LETHE_LAMBDA_PAPER;
    else if (strcmp(name, "log") == 0) *f = LETHE_LAMBDA_LOG;
    else return lethe_fail(LETHE_ERR_ARG, "unknown lambda form '%s' (paper, log)", name);
    return LETHE_OK;
}

void lethe_unlearn_result_free(lethe_unlearn_result *r)
{
    free(r->trace);
    r->trace = NULL;
}

lethe_status lethe_ul_loss_parse(lethe_ul_loss *l, const char *name)
{
    if (strcmp(name, "rl") == 0) *l = LETHE_UL_RL;
    else if (strcmp(name, "ga") == 0) *l = LETHE_UL_GA;
    else if (strcmp(name, "nc") == 0) *l = LETHE_UL_NC;
    else return lethe_fail(LETHE_ERR_ARG, "unknown unlearning loss '%s' (rl, ga, nc)", name);
    return LETHE_OK;
}

const char *lethe_ul_loss_name(lethe_ul_loss l)
{
    return l == LETHE_UL_GA ? "ga" : l == LETHE_UL_NC ? "nc" : "rl";
}
