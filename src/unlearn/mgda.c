/*
 * MGDA (Désidéri, 2012; Sener and Koltun, 2018) on ℓ_u and ℓ_r: the
 * min-norm point of the convex hull of the two gradients, a direction that
 * decreases both whenever one exists:
 *     α = clip(⟨g_r − g_u, g_r⟩ / ‖g_u − g_r‖², 0, 1) = clip((rr − ur)/(uu + rr − 2ur), 0, 1)
 *     d = 2·(α·g_u + (1 − α)·g_r)
 * scaled by the number of objectives, so that equal weights give g_u + g_r,
 * the scale of the other methods' steps (and of their learning rates).
 * ℓ_u is rl (random labels), both gradients from one grouped backward.
 */
#include "unlearn/method.h"

void ul_mgda_weights(double uu, double rr, double ur, double *au, double *ar)
{
    double den = uu + rr - 2.0 * ur;       /* ‖g_u − g_r‖² */
    double a = den > 0 ? (rr - ur) / den : 0.5;
    if (a < 0) a = 0;
    if (a > 1) a = 1;
    *au = 2.0 * a;
    *ar = 2.0 * (1.0 - a);
}

static void weights(const ul_ctx *c, double uu, double rr, double ur, double *au, double *ar)
{
    (void)c;
    ul_mgda_weights(uu, rr, ur, au, ar);
}

static lethe_status mgda_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    return ul_combine_step(c, t, tr, weights);
}

const ul_method ul_mgda = {
    .name = "mgda",
    .summary = "MGDA: the min-norm combination of g_u and g_r (both decrease when they can)",
    .uses_forget = 1,
    .uses_retain = 1,
    .needs_group_grads = 1,
    .step = mgda_step,
    .grid = "lr=0.005,0.01,0.02,0.05",
    .gen_grid = "lr=0.0001,0.0003,0.001",
};
