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

double gc_fd_one(float *x, size_t i, gc_objective f, void *ctx, float h)
{
    const float x0 = x[i], xp = x0 + h, xm = x0 - h;
    x[i] = xp;
    const double fp = f(ctx);
    x[i] = xm;
    const double fm = f(ctx);
    x[i] = x0;
    return (fp - fm) / ((double)xp - xm);
}

double gc_fd_error(float *x, size_t n, const float *grad, gc_objective f, void *ctx, float h)
{
    double err = 0.0, scale = 1e-3;
    for (size_t i = 0; i < n; i++) {
        double num = gc_fd_one(x, i, f, ctx, h);
        double d = fabs(num - grad[i]);
        if (!(d <= err)) err = d;
        if (fabs(num) > scale) scale = fabs(num);
        if (fabs(grad[i]) > scale) scale = fabs(grad[i]);
    }
    return err / scale;
}

void gc_conv_ref(double *out, const float *in, const float *w, const float *b,
                 const nn_conv_shape *s)
{
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->oc; o++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < s->c; c++)
                        for (int ki = 0; ki < s->kh; ki++)
                            for (int kj = 0; kj < s->kw; kj++) {
                                int iy = oy * s->stride - s->pad + ki;
                                int ix = ox * s->stride - s->pad + kj;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                                acc += (double)in[((n * s->c + c) * s->h + iy) * s->w + ix]
                                     * w[((o * s->c + c) * s->kh + ki) * s->kw + kj];
                            }
                    out[((n * s->oc + o) * s->oh + oy) * s->ow + ox] = acc;
                }
}

void gc_conv_ref_backward(double *din, double *dw, double *db, const float *dout,
                          const float *in, const float *w, const nn_conv_shape *s, int n0,
                          int n1)
{
    for (int n = n0; n < n1; n++)
        for (int o = 0; o < s->oc; o++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    double go = dout[((n * s->oc + o) * s->oh + oy) * s->ow + ox];
                    db[o] += go;
                    for (int c = 0; c < s->c; c++)
                        for (int ki = 0; ki < s->kh; ki++)
                            for (int kj = 0; kj < s->kw; kj++) {
                                int iy = oy * s->stride - s->pad + ki;
                                int ix = ox * s->stride - s->pad + kj;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                                size_t ii = ((size_t)(n * s->c + c) * s->h + iy) * s->w + ix;
                                size_t wi = ((size_t)(o * s->c + c) * s->kh + ki) * s->kw + kj;
                                din[ii] += go * w[wi];
                                dw[wi] += go * in[ii];
                            }
                }
}
