/*
 * The method registry: every method's vtable, looked up by name, and the
 * checks of a configuration before a run (the options' ranges from their
 * tables, then what depends on more than one option).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "unlearn/method.h"
#include "core/fail.h"

static const ul_method *const registry[] = {
    &ul_eupmu, &ul_eupmu_fast, &ul_eupmu_lookahead, &ul_ungrad, &ul_ungrad_mixed,
    &ul_ft, &ul_ga, &ul_rl, &ul_neggrad, &ul_salun, &ul_l1sparse, &ul_esd,
    &ul_pcgrad, &ul_cagrad, &ul_mgda, &ul_scrub, &ul_bs, &ul_be,
};
#define NMETHODS ((int)(sizeof registry / sizeof registry[0]))

const char *const *lethe_methods(int *n)
{
    static const char *names[NMETHODS + 1];
    for (int i = 0; i < NMETHODS; i++) names[i] = registry[i]->name;
    *n = NMETHODS;
    return names;
}

const ul_method *const *ul_registry(int *n)
{
    *n = NMETHODS;
    return registry;
}

const ul_method *ul_find_method(const char *name)
{
    for (int i = 0; i < NMETHODS; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

lethe_status ul_unknown_method(const char *name)
{
    char list[512] = "";
    size_t k = 0;
    for (int i = 0; i < NMETHODS && k < sizeof list; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", registry[i]->name);
    return lethe_fail(LETHE_ERR_NOTFOUND, "unknown method '%s' (known: %s)",
                      name ? name : "(none)", list);
}

lethe_status lethe_unlearn_validate(const lethe_unlearn_config *c)
{
    if (!c->method || !ul_find_method(c->method)) return ul_unknown_method(c->method);
    if (c->steps < 0) return lethe_fail(LETHE_ERR_ARG, "steps must be >= 0, got %ld", c->steps);
    if (c->batch < 1) return lethe_fail(LETHE_ERR_ARG, "batch must be >= 1, got %d", c->batch);
    if (!(c->lr > 0.0f) || !isfinite(c->lr))
        return lethe_fail(LETHE_ERR_ARG, "lr must be > 0, got %g", (double)c->lr);
    if (!(c->eps >= 0.0f) || !isfinite(c->eps))
        return lethe_fail(LETHE_ERR_ARG, "eps must be >= 0, got %g", (double)c->eps);
    if (!(c->eps_budget >= 0.0f) || !isfinite(c->eps_budget))
        return lethe_fail(LETHE_ERR_ARG, "eps budget must be >= 0, got %g", (double)c->eps_budget);
    if (!(c->lambda_max > 0.0f) || !isfinite(c->lambda_max))
        return lethe_fail(LETHE_ERR_ARG, "D (lambda max) must be > 0, got %g", (double)c->lambda_max);
    if (!(c->lambda0 >= 0.0f) || c->lambda0 > c->lambda_max)
        return lethe_fail(LETHE_ERR_ARG, "lambda0 must be in [0, D], got %g", (double)c->lambda0);
    if (!(c->beta >= 0.0f) || !isfinite(c->beta))
        return lethe_fail(LETHE_ERR_ARG, "beta must be >= 0, got %g", (double)c->beta);
    if (!(c->neggrad_a > 0.0f && c->neggrad_a < 1.0f))
        return lethe_fail(LETHE_ERR_ARG, "NegGrad+ a must be in (0, 1), got %g", (double)c->neggrad_a);
    if (!(c->salun_gamma > 0.0f && c->salun_gamma <= 1.0f))
        return lethe_fail(LETHE_ERR_ARG, "SalUn gamma must be in (0, 1], got %g",
                          (double)c->salun_gamma);
    if (!(c->l1 >= 0.0f)) return lethe_fail(LETHE_ERR_ARG, "l1 must be >= 0");
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
        return lethe_fail(LETHE_ERR_ARG, "momentum must be in [0, 1)");
    if (c->optim != LETHE_OPT_SGD && c->optim != LETHE_OPT_ADAMW)
        return lethe_fail(LETHE_ERR_ARG, "unknown optimiser %d (sgd, adam)", (int)c->optim);
    if (c->optim == LETHE_OPT_ADAMW && c->momentum != 0.0f)
        return lethe_fail(LETHE_ERR_ARG, "momentum is SGD's; Adam has beta1 (got momentum %g)",
                          (double)c->momentum);
    if (!(c->adam_beta1 >= 0.0f && c->adam_beta1 < 1.0f) ||
        !(c->adam_beta2 >= 0.0f && c->adam_beta2 < 1.0f))
        return lethe_fail(LETHE_ERR_ARG, "Adam betas must be in [0, 1), got %g and %g",
                          (double)c->adam_beta1, (double)c->adam_beta2);
    if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
        return lethe_fail(LETHE_ERR_ARG, "weight decay must be >= 0, got %g",
                          (double)c->weight_decay);
    if (!(c->clip_grad >= 0.0f) || !isfinite(c->clip_grad))
        return lethe_fail(LETHE_ERR_ARG, "the gradient clip must be >= 0 (0: off), got %g",
                          (double)c->clip_grad);
    if (!(c->retain_weight > 0.0f) || !isfinite(c->retain_weight))
        return lethe_fail(LETHE_ERR_ARG, "the retain weight must be > 0, got %g",
                          (double)c->retain_weight);
    if (c->bn_running < LETHE_BN_RUNNING_ALL || c->bn_running > LETHE_BN_RUNNING_FROZEN)
        return lethe_fail(LETHE_ERR_ARG, "bn_running %d: not a choice (0 all, 1 retain, "
                          "2 frozen)", c->bn_running);
    if (!(c->esd_eta >= 0.0f) || !isfinite(c->esd_eta))
        return lethe_fail(LETHE_ERR_ARG, "ESD's eta must be >= 0, got %g", (double)c->esd_eta);
    const ul_method *meth = ul_find_method(c->method);
    if (c->lambda_form != LETHE_LAMBDA_PAPER && c->lambda_form != LETHE_LAMBDA_LOG)
        return lethe_fail(LETHE_ERR_ARG, "unknown lambda form %d (paper, log)",
                          (int)c->lambda_form);
    if (c->lambda_form == LETHE_LAMBDA_LOG) {
        if (!meth->has_lambda_form)
            return lethe_fail(LETHE_ERR_ARG, "the log lambda form applies to the EUPMU "
                              "family (a learnt λ), not to %s", c->method);
        if (c->loss == LETHE_UL_GA)
            return lethe_fail(LETHE_ERR_ARG, "the log lambda form takes log ℓ_u, which needs "
                              "a positive unlearning loss (rl or nc), not ga");
        if (!isfinite(c->w0) || !(c->w_lr > 0.0f) || !isfinite(c->w_lr) ||
            !(c->w_decay >= 0.0f) || !isfinite(c->w_decay))
            return lethe_fail(LETHE_ERR_ARG, "log form: w0 must be finite, w's learning rate "
                              "> 0 and its weight decay >= 0 (got %g, %g, %g)", (double)c->w0,
                              (double)c->w_lr, (double)c->w_decay);
    }
    if (!c->ddpm && c->retain_weight != 1.0f)
        return lethe_fail(LETHE_ERR_ARG, "the retain weight applies to the diffusion task");
    if (!c->ddpm && meth->diffusion_only)
        return lethe_fail(LETHE_ERR_ARG, "%s is a diffusion method (negative guidance); "
                          "classification has no unconditional prediction", c->method);
    if (c->ddpm && meth->classification_only)
        return lethe_fail(LETHE_ERR_ARG, "%s is a classification method (it reads class "
                          "logits); not available for diffusion", c->method);
    if (c->diagnostics && !meth->needs_group_grads && !meth->uses_eps)
        return lethe_fail(LETHE_ERR_ARG, "diagnostics apply to eupmu, eupmu-fast, "
                          "eupmu-lookahead, ungrad and ungrad-mixed, not to %s", c->method);
    if (c->ddpm) {
        if (c->loss == LETHE_UL_NC)
            return lethe_fail(LETHE_ERR_ARG, "the unlearning loss nc has no diffusion form (rl, ga)");
        if (c->audit)
            return lethe_fail(LETHE_ERR_ARG, "the utility audit measures classification loss; "
                              "not available for diffusion");
        if (!(c->p_uncond >= 0.0f && c->p_uncond <= 1.0f))
            return lethe_fail(LETHE_ERR_ARG, "p_uncond must be in [0, 1], got %g",
                              (double)c->p_uncond);
    }
    if (c->audit && c->audit_probe < 1)
        return lethe_fail(LETHE_ERR_ARG, "audit probe size must be >= 1, got %d", c->audit_probe);
    /* Last, so that the messages above (which say more) come first: every
     * option of the method within its table's range. */
    return ul_check_params(c);
}

int lethe_method_uses_eps(const char *method)
{
    const ul_method *m = method ? ul_find_method(method) : NULL;
    return m ? m->uses_eps : 0;
}

int lethe_method_classifies(const char *method)
{
    const ul_method *m = method ? ul_find_method(method) : NULL;
    return m ? !m->diffusion_only : 0;
}

long ul_steps(const lethe_unlearn_config *cfg, size_t nf)
{
    /* T = 5·⌈|D_f| / B⌉ unless given (PROTOCOL.md "Unlearning"). */
    size_t bs = (size_t)(cfg->batch > 0 ? cfg->batch : 1);
    return cfg->steps ? cfg->steps : 5 * (long)((nf + bs - 1) / bs);
}

const char *lethe_method_grid(const char *method, int diffusion)
{
    const ul_method *m = method ? ul_find_method(method) : NULL;
    return m ? (diffusion ? m->gen_grid : m->grid) : NULL;
}
