/* The vectorised e^x and erf of src/nn/vmath.h (GELU and the attention's
 * softmax use them), in every kernel set: a dense sweep against double
 * precision exp and erf, the special values, and the masked softmax
 * (src/nn/softmax.c) against a plain double-precision softmax for every
 * kind of mask (none, padding after, holes, a class token before the
 * masked keys, causal, a sample with every key masked).
 *
 * Bounds (measured, avx2 and generic: e^x 8.1e-8 relative; erf 1.03e-7
 * absolute, 1.6e-7 relative):
 *   e^x, x every 1e-3 of [−88, 88]: relative error ≤ 3e-7 where e^x is a
 *       normal float; absolute ≤ FLT_MIN below (subnormal or flushed);
 *   erf, x every 1e-3 of [−6, 6]: absolute and relative error ≤ 3e-7. */
#include "test.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "nn/seq.h"

enum { NSWEEP_EXP = 176001, NSWEEP_ERF = 12001 };

TEST_KSETS(vmath_exp_against_double)
{
    float *x = malloc(NSWEEP_EXP * sizeof *x), *y = malloc(NSWEEP_EXP * sizeof *y);
    CHECK(x && y);
    if (!x || !y) goto done;
    for (int i = 0; i < NSWEEP_EXP; i++) x[i] = (float)(-88.0 + 1e-3 * i);
    nn_vexpf(y, x, NSWEEP_EXP);
    double max_rel = 0.0, max_abs_sub = 0.0;
    int worst = 0;
    for (int i = 0; i < NSWEEP_EXP; i++) {
        const double ref = exp((double)x[i]);
        if (ref >= FLT_MIN) {
            const double rel = fabs(y[i] - ref) / ref;
            if (rel > max_rel) max_rel = rel, worst = i;
        } else if (fabs(y[i] - ref) > max_abs_sub) {
            max_abs_sub = fabs(y[i] - ref);
        }
    }
    CHECK_MSG(max_rel <= 3e-7, "[%s] e^x: relative error %.3g at x = %.9g (bound 3e-7)",
              test_kset(), max_rel, x[worst]);
    CHECK_MSG(max_abs_sub <= FLT_MIN, "[%s] e^x below FLT_MIN: absolute error %.3g",
              test_kset(), max_abs_sub);

    /* Special values, and the edges of the range. */
    float s[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 88.7f, 88.75f, 89.0f,
                 -103.0f, -104.5f, 1e-30f, -1e-30f};
    enum { NS = sizeof s / sizeof s[0] };
    float r[NS];
    nn_vexpf(r, s, NS);
    CHECK(r[0] == 1.0f && r[1] == 1.0f);
    CHECK(isinf(r[2]) && r[2] > 0.0f);
    CHECK(r[3] == 0.0f);
    CHECK(isnan(r[4]));
    CHECK(isinf(r[5]) && r[5] > 0.0f);
    CHECK(r[6] == 0.0f);
    CHECK_MSG(isfinite(r[7]) && fabs(r[7] - exp((double)s[7])) <= 3e-7 * exp((double)s[7]),
              "e^88.7 = %g", r[7]);
    CHECK(isinf(r[8]) && isinf(r[9]));
    CHECK(r[10] >= 0.0f && r[10] <= FLT_MIN);
    CHECK(r[11] == 0.0f);
    CHECK(r[12] == 1.0f && r[13] == 1.0f);
done:
    free(x);
    free(y);
}

TEST_KSETS(vmath_erf_against_double)
{
    float x[NSWEEP_ERF], y[NSWEEP_ERF];
    for (int i = 0; i < NSWEEP_ERF; i++) x[i] = (float)(-6.0 + 1e-3 * i);
    nn_verff(y, x, NSWEEP_ERF);
    double max_abs = 0.0, max_rel = 0.0;
    int wa = 0, wr = 0;
    for (int i = 0; i < NSWEEP_ERF; i++) {
        const double ref = erf((double)x[i]), e = fabs(y[i] - ref);
        if (e > max_abs) max_abs = e, wa = i;
        if (ref != 0.0 && e / fabs(ref) > max_rel) max_rel = e / fabs(ref), wr = i;
        if (ref == 0.0) CHECK(y[i] == 0.0f);
    }
    CHECK_MSG(max_abs <= 3e-7, "[%s] erf: absolute error %.3g at x = %.9g (bound 3e-7)",
              test_kset(), max_abs, x[wa]);
    CHECK_MSG(max_rel <= 3e-7, "[%s] erf: relative error %.3g at x = %.9g (bound 3e-7)",
              test_kset(), max_rel, x[wr]);

    /* Tiny arguments keep their relative accuracy; the odd symmetry is exact. */
    float s[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 1e-30f, -3e-20f, 3.9f,
                 -3.95f, 0.874f, 0.876f};
    enum { NS = sizeof s / sizeof s[0] };
    float r[NS], rn[NS], sn[NS];
    nn_verff(r, s, NS);
    for (int i = 0; i < NS; i++) sn[i] = -s[i];
    nn_verff(rn, sn, NS);
    CHECK(r[0] == 0.0f && !signbit(r[0]) && r[1] == 0.0f && signbit(r[1]));
    CHECK(r[2] == 1.0f && r[3] == -1.0f);
    CHECK(isnan(r[4]));
    CHECK(r[5] == 1.0f && r[6] == -1.0f);
    for (int i = 7; i < NS; i++) {
        const double ref = erf((double)s[i]);
        CHECK_MSG(fabs(r[i] - ref) <= 3e-7 * fabs(ref), "[%s] erf(%g) = %.9g, not %.9g",
                  test_kset(), s[i], r[i], ref);
    }
    for (int i = 0; i < NS; i++)
        if (!isnan(r[i])) CHECK_MSG(rn[i] == -r[i], "erf(-x) != -erf(x) at %g", s[i]);
}

/* Row r of p (T, T) against a double-precision softmax over the keys j
 * that keep (NULL: all; key j ≥ shift reads keep[j − shift]) and causal
 * allow; 0 elsewhere, a row with no key all 0. Returns the largest error. */
static double softmax_error(const float *p, const float *s, const uint8_t *keep, int tm,
                            int causal, int t)
{
    const int shift = t - tm;
    double worst = 0.0;
    for (int r = 0; r < t; r++) {
        const float *sr = s + r * t;
        double mx = -INFINITY, sum = 0.0;
        int any = 0;
        for (int j = 0; j < t; j++) {
            const int ok = (!causal || j <= r) && (!keep || j < shift || keep[j - shift]);
            if (ok && sr[j] > mx) mx = sr[j];
            any |= ok;
        }
        for (int j = 0; j < t; j++) {
            const int ok = (!causal || j <= r) && (!keep || j < shift || keep[j - shift]);
            if (ok) sum += exp(sr[j] - mx);
        }
        for (int j = 0; j < t; j++) {
            const int ok = (!causal || j <= r) && (!keep || j < shift || keep[j - shift]);
            const double want = any && ok ? exp(sr[j] - mx) / sum : 0.0;
            const double e = fabs(p[r * t + j] - want);
            if (e > worst || isnan(e)) worst = isnan(e) ? INFINITY : e;
        }
    }
    return worst;
}

TEST_KSETS(attention_softmax_masks)
{
    enum { T = 21 };
    float s[T * T], p[T * T];
    uint8_t keep[T];
    lethe_rng rng;
    lethe_rng_seed(&rng, 3);
    for (int i = 0; i < T * T; i++) s[i] = 4.0f * lethe_rng_normal(&rng);
    /* mask kinds: 0 none, 1 padding after 9 keys, 2 holes, 3 all masked;
     * shift 0 or 1 (a class token before the masked keys). */
    for (int kind = 0; kind < 4; kind++)
        for (int shift = 0; shift <= 1; shift++)
            for (int causal = 0; causal <= 1; causal++) {
                const int tm = T - shift;
                for (int j = 0; j < tm; j++)
                    keep[j] = kind == 1 ? j < 9 : kind == 2 ? (j % 3 != 1 && j < 17) : 0;
                const uint8_t *k = kind == 0 ? NULL : keep;
                memcpy(p, s, sizeof s);
                nn_attention_softmax(p, k, tm, causal, T);
                const double e = softmax_error(p, s, k, tm, causal, T);
                CHECK_MSG(e <= 1e-6, "[%s] softmax, mask kind %d, shift %d, causal %d: error %g",
                          test_kset(), kind, shift, causal, e);
            }
}
