/* Reductions and updates over flat vectors (θ, gradients, masks).
 * Dot products accumulate in double: ⟨g_u, g_r⟩ over 400k terms decides
 * the sign of a surgery, so it must not drown in float rounding. */
#include "lethe.h"

#include <math.h>

/* Fixed chunks summed in chunk order: the same bits whatever the number
 * of threads (an OpenMP reduction adds thread sums in finishing order). */
#define DOT_CHUNKS 64

double lethe_vec_dot(const float *a, const float *b, size_t n)
{
    double part[DOT_CHUNKS];
    size_t per = (n + DOT_CHUNKS - 1) / DOT_CHUNKS;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int k = 0; k < DOT_CHUNKS; k++) {
        size_t lo = (size_t)k * per, hi = lo + per < n ? lo + per : n;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) s += (double)a[i] * b[i];
        part[k] = s;
    }
    double s = 0.0;
    for (int k = 0; k < DOT_CHUNKS; k++) s += part[k];
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
