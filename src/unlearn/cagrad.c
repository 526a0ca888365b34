/*
 * CAGrad (Liu et al., 2021) on ℓ_u and ℓ_r: the direction that maximises
 * the worse of the two objectives' decrease within a ball of radius
 * c·‖g_0‖ around the average gradient g_0 = (g_u + g_r)/2. Its dual over
 * the simplex, here one weight w for g_w = w·g_u + (1 − w)·g_r:
 *     w* = argmin_{w ∈ [0, 1]}  ⟨g_w, g_0⟩ + c·‖g_0‖·‖g_w‖    (convex in w)
 *     d  = 2·(g_0 + c·‖g_0‖/‖g_w*‖·g_w*) / (1 + c²)
 * (the authors' rescaled form, times the number of objectives so that c = 0
 * gives g_u + g_r, the scale of the other methods). w* by golden-section
 * search on the Gram entries: no pass over the weights beyond the dot
 * products. ℓ_u is rl, both gradients from one grouped backward.
 */
#include <math.h>

#include "unlearn/method.h"

/* The dual objective at w, from uu = ‖g_u‖², rr = ‖g_r‖², ur = ⟨g_u, g_r⟩. */
static double dual(double w, double uu, double rr, double ur, double cn0)
{
    double v = 1.0 - w;
    double gw_g0 = 0.5 * (w * (uu + ur) + v * (ur + rr));
    double gw2 = w * w * uu + 2.0 * w * v * ur + v * v * rr;
    return gw_g0 + cn0 * sqrt(gw2 > 0 ? gw2 : 0);
}

void ul_cagrad_weights(double uu, double rr, double ur, double cc, double *au, double *ar)
{
    double g02 = 0.25 * (uu + rr + 2.0 * ur);
    double cn0 = cc * sqrt(g02 > 0 ? g02 : 0);
    /* Golden-section search on [0, 1]; 60 rounds shrink it below 1e-12. */
    const double r = 0.5 * (sqrt(5.0) - 1.0);
    double lo = 0.0, hi = 1.0;
    double x1 = hi - r * (hi - lo), x2 = lo + r * (hi - lo);
    double f1 = dual(x1, uu, rr, ur, cn0), f2 = dual(x2, uu, rr, ur, cn0);
    for (int i = 0; i < 60; i++) {
        if (f1 <= f2) {
            hi = x2, x2 = x1, f2 = f1;
            x1 = hi - r * (hi - lo);
            f1 = dual(x1, uu, rr, ur, cn0);
        } else {
            lo = x1, x1 = x2, f1 = f2;
            x2 = lo + r * (hi - lo);
            f2 = dual(x2, uu, rr, ur, cn0);
        }
    }
    double w = 0.5 * (lo + hi);
    /* The ends, where the minimum of a convex function on [0, 1] may sit. */
    if (dual(0.0, uu, rr, ur, cn0) < dual(w, uu, rr, ur, cn0)) w = 0.0;
    if (dual(1.0, uu, rr, ur, cn0) < dual(w, uu, rr, ur, cn0)) w = 1.0;
    double v = 1.0 - w;
    double gw2 = w * w * uu + 2.0 * w * v * ur + v * v * rr;
    double s = gw2 > 0 ? cn0 / sqrt(gw2) : 0.0;     /* c‖g_0‖ / ‖g_w‖ */
    /* d = 2(g_0 + s·g_w)/(1 + c²), g_0 = (g_u + g_r)/2 */
    double k = 2.0 / (1.0 + cc * cc);
    *au = k * (0.5 + s * w);
    *ar = k * (0.5 + s * v);
}

static const lethe_param c_params[] = {
    UL_OPT_REAL("c", 0, 0.5, 0, 0, 10, 0, "0.2,0.5,0.8",
                "radius c of the ball around the mean gradient, 0: plain g_u + g_r (default 0.5)"),
};

static void weights(const ul_ctx *c, double uu, double rr, double ur, double *au, double *ar)
{
    ul_cagrad_weights(uu, rr, ur, UL_OPT(c, ul_cagrad, 0), au, ar);
}

static lethe_status cagrad_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    return ul_combine_step(c, t, tr, weights);
}

const ul_method ul_cagrad = {
    .name = "cagrad",
    .summary = "CAGrad: the mean gradient moved within c·‖g_0‖ to help the worse objective",
    .uses_forget = 1,
    .uses_retain = 1,
    .needs_group_grads = 1,
    .params = c_params,
    .nparams = 1,
    .step = cagrad_step,
    .grid = "lr=0.005,0.01,0.02,0.05;c=0.2,0.5,0.8",
    .gen_grid = "lr=0.0001,0.0003,0.001",
};
