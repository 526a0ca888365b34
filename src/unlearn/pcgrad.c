/*
 * PCGrad (Yu et al., 2020) on the two objectives ℓ_u and ℓ_r: when their
 * gradients conflict (⟨g_u, g_r⟩ < 0), each is projected onto the normal
 * plane of the other, and the two projections are summed:
 *     g_u' = g_u − ⟨g_u, g_r⟩/‖g_r‖²·g_r,   g_r' = g_r − ⟨g_u, g_r⟩/‖g_u‖²·g_u
 *     d = g_u' + g_r' = (1 − ur/uu)·g_u + (1 − ur/rr)·g_r   (ur < 0)
 *     d = g_u + g_r                                       (otherwise)
 * Unlike EUPMU's unilateral surgery, the forgetting gradient is allowed to
 * bend the retaining one: the "fair" treatment the paper argues against.
 * ℓ_u is rl (random labels), both gradients from one grouped backward.
 */
#include "unlearn/method.h"

void ul_pcgrad_weights(double uu, double rr, double ur, double *au, double *ar)
{
    *au = 1.0;
    *ar = 1.0;
    if (ur < 0) {
        if (uu > 0) *au -= ur / uu;
        if (rr > 0) *ar -= ur / rr;
    }
}

static void weights(const ul_ctx *c, double uu, double rr, double ur, double *au, double *ar)
{
    (void)c;
    ul_pcgrad_weights(uu, rr, ur, au, ar);
}

static lethe_status pcgrad_step(ul_ctx *c, long t, lethe_trace_step *tr)
{
    return ul_combine_step(c, t, tr, weights);
}

const ul_method ul_pcgrad = {
    .name = "pcgrad",
    .summary = "PCGrad: g_u and g_r each projected off the other when they conflict, summed",
    .uses_forget = 1,
    .uses_retain = 1,
    .needs_group_grads = 1,
    .step = pcgrad_step,
    .grid = "lr=0.005,0.01,0.02,0.05",
    .gen_grid = "lr=0.0001,0.0003,0.001",
};
