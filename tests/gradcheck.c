/* Helpers of the gradient tests (gradcheck.h). */
#include "gradcheck.h"

#include <string.h>

void gc_fill(lethe_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * lethe_rng_uniform(r);
}

double gc_dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

double gc_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;   /* NaN wins */
    }
    return m;
}

void gc_groups(lethe_groups *g, int n0, int n1)
{
    memset(g, 0, sizeof *g);
    g->n = n1 > 0 ? 2 : 1;
    g->start[0] = 0;
    g->start[1] = n0;
    g->start[2] = n0 + n1;
}

double gc_fd_error(float *x, size_t n, const float *grad, gc_objective f, void *ctx, float h)
{
    double err = 0.0, scale = 1e-3;
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        float xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double fp = f(ctx);
        x[i] = xm;
        double fm = f(ctx);
        x[i] = x0;
        double num = (fp - fm) / ((double)xp - xm);
        double d = fabs(num - grad[i]);
        if (!(d <= err)) err = d;
        if (fabs(num) > scale) scale = fabs(num);
        if (fabs(grad[i]) > scale) scale = fabs(grad[i]);
    }
    return err / scale;
}
