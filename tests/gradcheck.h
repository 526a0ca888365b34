/* Helpers of the layer and model gradient tests (test_layers.c,
 * test_layers_gen.c, test_unet.c): random fills, comparisons, sample
 * groups and the finite-difference check. */
#ifndef LETHE_TEST_GRADCHECK_H
#define LETHE_TEST_GRADCHECK_H

#include "lethe.h"
#include "nn/layers.h"
#include "test.h"

/* x (n) uniform in [lo, hi). */
void gc_fill(lethe_rng *r, float *x, size_t n, float lo, float hi);
/* Σ a·b in double. */
double gc_dot(const float *a, const float *b, size_t n);
/* max |a − b| (NaN wins). */
double gc_max_abs_diff(const float *a, const float *b, size_t n);
/* One group [0, n0) when n1 = 0, else two: [0, n0), [n0, n0 + n1). */
void gc_groups(lethe_groups *g, int n0, int n1);

typedef double (*gc_objective)(void *ctx);
/* The central difference of f in x[i] with step h (x[i] restored). */
double gc_fd_one(float *x, size_t i, gc_objective f, void *ctx, float h);
/* Largest |analytic − numeric| over x, relative to the largest gradient
 * entry; each numeric entry is a central difference of f in x[i]. */
double gc_fd_error(float *x, size_t n, const float *grad, gc_objective f, void *ctx, float h);

/* A convolution by its definition, in double: out (N, OC, OH, OW) from
 * in, w and b (or NULL). */
void gc_conv_ref(double *out, const float *in, const float *w, const float *b,
                 const nn_conv_shape *s);
/* Its backward by definition, for samples [n0, n1): din (N, C, H, W) of
 * those samples, dw (OC, C, KH, KW), db (OC), all +=, from dout. */
void gc_conv_ref_backward(double *din, double *dw, double *db, const float *dout,
                          const float *in, const float *w, const nn_conv_shape *s, int n0,
                          int n1);

#define CHECK_FD(x, n, grad, f, ctx, h, tol)                                     \
    do {                                                                         \
        double e_ = gc_fd_error((x), (n), (grad), (f), (ctx), (h));              \
        CHECK_MSG(e_ < (tol), "finite differences of %s: relative error %.3g", \
                  #grad, e_);                                                    \
    } while (0)

#endif
