/*
 * The λ controller of implicit gradient surgery (EUPMU, ALGORITHM.md §3) and
 * the explicit UNGrad multiplier it approximates (§2).
 *
 * λ* minimises the dual φ(λ) = ½‖g_u + λ g_r‖² + λ ε over [0, D], with
 * φ'(λ) = ⟨g_r, d(λ)⟩ + ε. After a step θ_{t+1} = θ_t − α_t d_t, the loss
 * values alone estimate that derivative:
 *     δ_t     = (ℓ_r(θ_t) − ℓ_r(θ_{t+1})) / α_t + ε_t
 *     λ_{t+1} = clip(λ_t − β_t δ_t, 0, D)
 *     β_t     = β0·α_t·(t+1)^(−1/3)   (beta_decay = 1; theory: β_t/α_t = O(t^(−1/3)))
 *             = β0                    (beta_decay = 0)
 * Arithmetic is in double: δ divides a small loss difference by α_t.
 * The authors' log form (§7, lethe_igs_set_log) trains a weight w by Adam
 * on log-loss differences instead; the method uses w⁺ = max(w, 0).
 */
#include "lethe.h"
#include "core/fail.h"

#include <float.h>
#include <math.h>

lethe_status lethe_igs_init(lethe_igs *c, float eps, float beta0, float lambda0,
                            float lambda_max)
{
    if (!c) return lethe_fail(LETHE_ERR_ARG, "igs: NULL controller");
    if (!isfinite(eps) || eps < 0.0f)
        return lethe_fail(LETHE_ERR_ARG, "igs: eps must be >= 0, got %g", (double)eps);
    if (!isfinite(beta0) || beta0 < 0.0f)
        return lethe_fail(LETHE_ERR_ARG, "igs: beta0 must be >= 0, got %g", (double)beta0);
    if (!isfinite(lambda_max) || lambda_max <= 0.0f)
        return lethe_fail(LETHE_ERR_ARG, "igs: lambda_max must be > 0, got %g", (double)lambda_max);
    if (!isfinite(lambda0) || lambda0 < 0.0f || lambda0 > lambda_max)
        return lethe_fail(LETHE_ERR_ARG, "igs: lambda0 must be in [0, %g], got %g",
                          (double)lambda_max, (double)lambda0);
    c->eps = eps;
    c->beta0 = beta0;
    c->beta_decay = 1;
    c->lambda = lambda0;
    c->lambda_max = lambda_max;
    c->t = 0;
    c->last_delta = 0.0f;
    c->form = LETHE_LAMBDA_PAPER;
    c->w_lr = c->w_decay = 0.0f;
    c->w_m = c->w_v = 0.0;
    return LETHE_OK;
}

lethe_status lethe_igs_set_log(lethe_igs *c, float w0, float w_lr, float w_decay)
{
    if (!c) return lethe_fail(LETHE_ERR_ARG, "igs: NULL controller");
    if (!isfinite(w0))
        return lethe_fail(LETHE_ERR_ARG, "igs: w0 must be finite, got %g", (double)w0);
    if (!isfinite(w_lr) || w_lr <= 0.0f)
        return lethe_fail(LETHE_ERR_ARG, "igs: the learning rate of w must be > 0, got %g",
                          (double)w_lr);
    if (!isfinite(w_decay) || w_decay < 0.0f)
        return lethe_fail(LETHE_ERR_ARG, "igs: the weight decay of w must be >= 0, got %g",
                          (double)w_decay);
    c->form = LETHE_LAMBDA_LOG;
    c->lambda = w0;
    c->w_lr = w_lr;
    c->w_decay = w_decay;
    c->w_m = c->w_v = 0.0;
    c->t = 0;
    c->last_delta = 0.0f;
    return LETHE_OK;
}

/* One Adam step of w (torch.optim.Adam: L2 decay added to the gradient,
 * bias-corrected moments, eps outside the square root). */
static lethe_status observe_log(lethe_igs *c, float loss_before, float loss_after)
{
    if (!(loss_before > 0.0f) || !(loss_after > 0.0f))
        return lethe_fail(LETHE_ERR_NUMERIC, "igs: the log form needs positive retain losses "
                          "(before %g, after %g) at step %ld", (double)loss_before,
                          (double)loss_after, c->t);
    const double b1 = 0.9, b2 = 0.999, aeps = 1e-8;
    double w = c->lambda;
    double g = log((double)loss_before) - log((double)loss_after) - c->eps + c->w_decay * w;
    long t = c->t + 1;
    c->w_m = b1 * c->w_m + (1.0 - b1) * g;
    c->w_v = b2 * c->w_v + (1.0 - b2) * g * g;
    double mhat = c->w_m / (1.0 - pow(b1, (double)t));
    double vhat = c->w_v / (1.0 - pow(b2, (double)t));
    w -= c->w_lr * mhat / (sqrt(vhat) + aeps);
    if (!isfinite(w) || !(fabs(w) <= FLT_MAX))
        return lethe_fail(LETHE_ERR_NUMERIC, "igs: w is not finite after step %ld", c->t);
    c->lambda = (float)w;
    c->last_delta = (float)g;
    c->t = t;
    return LETHE_OK;
}

float lethe_igs_weight(const lethe_igs *c)
{
    if (c->form == LETHE_LAMBDA_LOG) return c->lambda > 0.0f ? c->lambda : 0.0f;
    return c->lambda;
}

lethe_status lethe_igs_observe(lethe_igs *c, float loss_before, float loss_after,
                               float lr)
{
    if (!isfinite(loss_before) || !isfinite(loss_after))
        return lethe_fail(LETHE_ERR_NUMERIC, "igs: retain loss is not finite (before %g, after %g) at step %ld",
                          (double)loss_before, (double)loss_after, c->t);
    if (!isfinite(lr) || lr <= 0.0f)
        return lethe_fail(LETHE_ERR_NUMERIC, "igs: learning rate must be finite and > 0, got %g at step %ld",
                          (double)lr, c->t);
    if (!isfinite(c->lambda))
        return lethe_fail(LETHE_ERR_NUMERIC, "igs: lambda is not finite (%g) at step %ld",
                          (double)c->lambda, c->t);
    if (c->form == LETHE_LAMBDA_LOG) return observe_log(c, loss_before, loss_after);

    double delta = ((double)loss_before - (double)loss_after) / lr + c->eps;
    double beta = c->beta_decay ? c->beta0 * (double)lr * pow((double)(c->t + 1), -1.0 / 3.0)
                                : (double)c->beta0;
    double lam = c->lambda - beta * delta;
    /* δ must also fit the float it is reported in. */
    if (!isfinite(lam) || !(fabs(delta) <= FLT_MAX))
        return lethe_fail(LETHE_ERR_NUMERIC, "igs: lambda update is not finite (delta %g, beta %g) at step %ld",
                          delta, beta, c->t);
    if (lam < 0.0) lam = 0.0;
    if (lam > c->lambda_max) lam = c->lambda_max;
    c->lambda = (float)lam;
    c->last_delta = (float)delta;
    c->t++;
    return LETHE_OK;
}

/* A non-finite input gives NaN, a fault the caller must see rather than a
 * silent λ = 0; ‖g_r‖² = 0 gives 0 (no retain direction to trade against). */
float lethe_ungrad_lambda(double dot_ru, double norm2_r, float eps, float lambda_max)
{
    if (!isfinite(dot_ru) || !isfinite(norm2_r) || !isfinite(eps)) return NAN;
    if (!(norm2_r > 0.0)) return 0.0f;
    double lam = -(dot_ru + eps) / norm2_r;
    if (!(lam > 0.0)) return 0.0f;
    if (lam > lambda_max) return lambda_max;
    return (float)lam;
}
