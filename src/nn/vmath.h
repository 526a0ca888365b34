/*
 * e^x and erf(x) for float loops that GCC vectorises (the transformer
 * ops: GELU, the attention's softmax). glibc's expf and erff stay a call
 * per element; these are branch-free inline functions, so a `#pragma omp
 * simd` loop over them runs 8 lanes at a time in the avx2 kernel set (4
 * in generic's SSE2). Include them only from a kernel-set file (the
 * Makefile's KERN_SRC), which is compiled with each set's flags; with
 * FMA (avx2, avx512) the polynomials use fused multiply-adds, so the sets
 * agree to an ulp or two, not bitwise.
 *
 * nn_expf_v: e^x = 2^k·e^r, k = round(x/ln 2) (by adding and subtracting
 * 1.5·2²³, which also gives k's bits without a float-to-int conversion),
 * r = x − k·ln 2 in two parts (Cody–Waite), |r| ≤ ln2/2, e^r by Cephes'
 * degree-7 form 1 + r + r²·P5(r). 2^k is applied as 2^(k/2)·2^(k−k/2), two
 * normal floats, so results down to the subnormals (x ≥ −103.9) are
 * rounded once. x < −104 (−inf: the softmax's masked scores) gives 0,
 * x > 88.72 (+inf) gives +inf; NaN stays NaN. Measured
 * (tests/test_vmath.c, every 1e-3 of [−88, 88] against double exp, avx2
 * and generic): relative error ≤ 8.1e-8 (1 ulp) where the result is
 * normal (glibc's expf: 0.5 ulp).
 *
 * nn_erff_v: erf(−x) = −erf(x); on |x| < 0.875, x·P5(x²) (a minimax fit
 * of erf(x)/x, relative error 9e-9); above, 1 − e^(−x²)·R8(|x| − 2.4),
 * R8 a fit of erfc(x)·e^(x²) on [0.875, 3.92] weighted by e^(−x²) (error
 * in erf 6e-9), |x| clamped to 3.92, where erf rounds to 1. Both halves
 * are computed and one chosen, so no branch. ±inf gives ±1, NaN NaN.
 * Measured against double erf every 1e-3 of [−6, 6], avx2 and generic:
 * absolute error ≤ 1.03e-7, relative ≤ 1.6e-7 (2.2 ulp; glibc's erff
 * 6e-8). nn_erff_ve takes e^(−x²) from the caller (GELU's backward
 * shares it with φ). The tests bound both at 3e-7.
 */
#ifndef LETHE_NN_VMATH_H
#define LETHE_NN_VMATH_H

#include <stdint.h>

#ifdef __FMA__
#define NN_FMA(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define NN_FMA(a, b, c) ((a) * (b) + (c))
#endif

static inline __attribute__((always_inline)) float nn_bits_float(uint32_t u)
{
    float f;
    __builtin_memcpy(&f, &u, sizeof f);
    return f;
}

static inline __attribute__((always_inline)) uint32_t nn_float_bits(float f)
{
    uint32_t u;
    __builtin_memcpy(&u, &f, sizeof u);
    return u;
}

/* m (all ones or 0) ? a : b, by bits. A select (?:) on floats after
 * arithmetic, or on x before it, GCC turns into branches (the arithmetic
 * sunk into one arm, or constants threaded into copies), which the
 * vectoriser refuses; a mask it keeps. */
static inline __attribute__((always_inline)) float nn_select_v(uint32_t m, float a, float b)
{
    return nn_bits_float((nn_float_bits(a) & m) | (nn_float_bits(b) & ~m));
}

static inline __attribute__((always_inline)) float nn_expf_v(float x)
{
    const float shift = 12582912.0f;   /* 1.5·2²³: adding it rounds to an integer */
    const float t = x * 1.44269504f + shift;
    const float k = t - shift;
    float r = NN_FMA(k, -0.693359375f, x);
    r = NN_FMA(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = NN_FMA(p, r, 1.3981999507e-3f);
    p = NN_FMA(p, r, 8.3334519073e-3f);
    p = NN_FMA(p, r, 4.1665795894e-2f);
    p = NN_FMA(p, r, 1.6666665459e-1f);
    p = NN_FMA(p, r, 5.0000001201e-1f);
    p = NN_FMA(p * r, r, r) + 1.0f;
    /* k's bits: t's low mantissa bits, less the shift's (|k| ≤ 151 where
     * the result is kept; wider x gives garbage here, replaced below). */
    const int32_t ki = (int32_t)(nn_float_bits(t) - nn_float_bits(shift));
    const int32_t k1 = ki >> 1, k2 = ki - k1;
    const float s1 = nn_bits_float((uint32_t)(k1 + 127) << 23);
    const float s2 = nn_bits_float((uint32_t)(k2 + 127) << 23);
    const float y = p * s1 * s2;
    /* Out of range: 0 and +inf (NaN compares false both times, stays NaN). */
    const uint32_t lo = -(uint32_t)(x < -104.0f), hi = -(uint32_t)(x > 88.8f);
    return nn_select_v(hi, __builtin_inff(), nn_select_v(lo, 0.0f, y));
}

/* erf(x), given e = e^(−x²) (any e ≤ e^(−min(|x|, 3.92)²) where |x| > 3.92). */
static inline __attribute__((always_inline)) float nn_erff_ve(float x, float e)
{
    const float ax = __builtin_fabsf(x);
    const float s = ax * ax;
    float a = -6.203385419e-4f;           /* erf(x)/x in x², |x| < 0.875 */
    a = NN_FMA(a, s, 5.032208748e-3f);
    a = NN_FMA(a, s, -2.679148503e-2f);
    a = NN_FMA(a, s, 1.128245592e-1f);
    a = NN_FMA(a, s, -3.761255145e-1f);
    a = NN_FMA(a, s, 1.128379107e+00f);
    a *= ax;
    const float u = nn_select_v(-(uint32_t)(ax > 3.92f), 3.92f, ax) - 2.4f;
    float b = 1.427789393e-4f;            /* erfc(x)·e^(x²), |x| ≥ 0.875 */
    b = NN_FMA(b, u, 3.078565933e-4f);
    b = NN_FMA(b, u, 6.880908622e-4f);
    b = NN_FMA(b, u, -8.153101080e-4f);
    b = NN_FMA(b, u, 2.611034084e-3f);
    b = NN_FMA(b, u, -9.249395691e-3f);
    b = NN_FMA(b, u, 2.746865340e-02f);
    b = NN_FMA(b, u, -7.957547158e-02f);
    b = NN_FMA(b, u, 2.185006291e-01f);
    b = NN_FMA(-e, b, 1.0f);
    const float v = nn_select_v(-(uint32_t)(ax < 0.875f), a, b);
    return __builtin_copysignf(v, x);
}

static inline __attribute__((always_inline)) float nn_erff_v(float x) { return nn_erff_ve(x, nn_expf_v(-(x * x))); }

#endif
