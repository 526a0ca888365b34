/* Reductions and updates over flat vectors (θ, gradients, masks).
 * Dot products accumulate in double: ⟨g_u, g_r⟩ over 400k terms decides
 * the sign of a surgery, so it must not drown in float rounding. */
#include "lethe.h"

#include <math.h>

double lethe_vec_dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

double lethe_vec_norm2(const float *a, size_t n) { return lethe_vec_dot(a, a, n); }

void lethe_vec_axpy(float *y, float a, const float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void lethe_vec_scale(float *y, float a, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] *= a;
}

void lethe_vec_zero(float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = 0.0f;
}

int lethe_vec_finite(const float *a, size_t n)
{
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= isfinite(a[i]) ? 1 : 0;
    return ok;
}
