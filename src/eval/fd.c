/*
 * Fréchet distance between Gaussians fitted to two feature sets
 * (PROTOCOL.md "Generation": FD-cls on a classifier's penultimate features;
 * not the Inception FID):
 *     FD = ‖μa − μb‖² + tr(Σa) + tr(Σb) − 2·tr((Σa Σb)^{1/2}).
 * ΣaΣb is not symmetric, but with S = Σa^{1/2} it is similar to the
 * symmetric PSD matrix S Σb S, so tr((ΣaΣb)^{1/2}) = Σ √λ_i(S Σb S). Both
 * square roots come from LAPACK's symmetric eigensolver (dsyev), in double;
 * eigenvalues that rounding pushed below zero count as zero.
 */
#include "lethe.h"
#include "core/fail.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (exported by OpenBLAS). The two trailing size_t are gfortran's
 * hidden lengths of the character arguments: passing them is what the
 * Fortran ABI expects (LAPACKE does the same), omitting them is undefined. */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a,
                   const int *lda, double *w, double *work, const int *lwork, int *info,
                   size_t jobz_len, size_t uplo_len);

#define FD_MAX_D 16384

lethe_status lethe_feature_stats(const float *x, int n, int d, double *mu, double *cov)
{
    if (n < 2 || d < 1 || d > FD_MAX_D)
        return lethe_fail(LETHE_ERR_ARG, "feature stats: need n >= 2 and 1 <= d <= %d, got n = %d, d = %d",
                          FD_MAX_D, n, d);
    if (!x || !mu || !cov) return lethe_fail(LETHE_ERR_ARG, "feature stats: NULL argument");
    const size_t nn = (size_t)n, dd = (size_t)d;
    /* Centred copy in double (n, d): two passes, so large means do not
     * cancel the variance (E[x²] − E[x]² would). */
    double *xc = malloc(nn * dd * sizeof(double));
    if (!xc) return lethe_fail(LETHE_ERR_NOMEM, "feature stats: cannot allocate %d x %d doubles", n, d);
    for (size_t j = 0; j < dd; j++) mu[j] = 0.0;
    for (size_t i = 0; i < nn; i++)
        for (size_t j = 0; j < dd; j++) mu[j] += x[i * dd + j];
    for (size_t j = 0; j < dd; j++) mu[j] /= (double)n;
    int finite = 1;
    for (size_t i = 0; i < nn; i++)
        for (size_t j = 0; j < dd; j++) {
            double v = (double)x[i * dd + j] - mu[j];
            finite &= isfinite(v) != 0;
            xc[i * dd + j] = v;
        }
    if (!finite) {
        free(xc);
        return lethe_fail(LETHE_ERR_NUMERIC, "feature stats: the features are not finite");
    }
    /* cov (d, d) = xcᵀ·xc / (n − 1), upper triangle, then mirrored. */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0 / (double)(n - 1), xc, d,
                0.0, cov, d);
    for (size_t i = 0; i < dd; i++)
        for (size_t j = 0; j < i; j++) cov[i * dd + j] = cov[j * dd + i];
    free(xc);
    return LETHE_OK;
}

/* Eigen-decompose the symmetric a (d, d) in place: w (d) ascending
 * eigenvalues and, with vectors, row k of a = eigenvector k (LAPACK's
 * column-major columns read row-major). */
static lethe_status sym_eig(double *a, double *w, int d, int vectors)
{
    const char jobz = vectors ? 'V' : 'N', uplo = 'U';
    int lwork = -1, info = 0;
    double q;
    dsyev_(&jobz, &uplo, &d, a, &d, w, &q, &lwork, &info, 1, 1);
    if (info != 0) return lethe_fail(LETHE_ERR_NUMERIC, "frechet: dsyev workspace query failed (info %d)", info);
    lwork = (int)q;
    if (lwork < 3 * d) lwork = 3 * d;
    double *work = malloc((size_t)lwork * sizeof(double));
    if (!work) return lethe_fail(LETHE_ERR_NOMEM, "frechet: cannot allocate %d doubles", lwork);
    dsyev_(&jobz, &uplo, &d, a, &d, w, work, &lwork, &info, 1, 1);
    free(work);
    if (info != 0)
        return lethe_fail(LETHE_ERR_NUMERIC, "frechet: dsyev did not converge (info %d)", info);
    return LETHE_OK;
}

lethe_status lethe_frechet_from_stats(const double *mu_a, const double *cov_a,
                                      const double *mu_b, const double *cov_b, int d,
                                      double *out)
{
    if (d < 1 || d > FD_MAX_D)
        return lethe_fail(LETHE_ERR_ARG, "frechet: d = %d is out of range 1..%d", d, FD_MAX_D);
    if (!mu_a || !cov_a || !mu_b || !cov_b || !out)
        return lethe_fail(LETHE_ERR_ARG, "frechet: NULL argument");
    const size_t dd = (size_t)d, d2 = dd * dd;
    /* One scratch block: V (d, d), M (d, d), T (d, d), w (d). */
    double *mem = malloc((3 * d2 + dd) * sizeof(double));
    if (!mem) return lethe_fail(LETHE_ERR_NOMEM, "frechet: cannot allocate for d = %d", d);
    double *V = mem, *M = mem + d2, *Tm = mem + 2 * d2, *w = mem + 3 * d2;
    lethe_status st;

    double mean_term = 0.0, tr = 0.0;
    for (size_t j = 0; j < dd; j++) {
        double diff = mu_a[j] - mu_b[j];
        mean_term += diff * diff;
        tr += cov_a[j * dd + j] + cov_b[j * dd + j];
    }

    /* S = Σa^{1/2} = Σ_k √λ_k v_k v_kᵀ = Bᵀ B with row k of B = λ_k^{1/4} v_k. */
    memcpy(V, cov_a, d2 * sizeof(double));
    st = sym_eig(V, w, d, 1);
    if (st != LETHE_OK) goto done;
    for (size_t k = 0; k < dd; k++) {
        double s = w[k] > 0.0 ? sqrt(sqrt(w[k])) : 0.0;
        for (size_t j = 0; j < dd; j++) V[k * dd + j] *= s;
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, d, 1.0, V, d, V, d, 0.0, M, d);
    /* S Σb S: T = Σb S, then V = S T (V is free again). */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, cov_b, d, M, d, 0.0, Tm, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, M, d, Tm, d, 0.0, V, d);
    /* Symmetric up to rounding: use the average of both triangles. */
    for (size_t i = 0; i < dd; i++)
        for (size_t j = 0; j < i; j++) {
            double v = 0.5 * (V[i * dd + j] + V[j * dd + i]);
            V[i * dd + j] = V[j * dd + i] = v;
        }
    st = sym_eig(V, w, d, 0);
    if (st != LETHE_OK) goto done;
    double tr_sqrt = 0.0;
    for (size_t k = 0; k < dd; k++) tr_sqrt += w[k] > 0.0 ? sqrt(w[k]) : 0.0;

    double fd = mean_term + tr - 2.0 * tr_sqrt;
    if (!isfinite(fd)) {
        st = lethe_fail(LETHE_ERR_NUMERIC, "frechet: the distance is not finite");
        goto done;
    }
    *out = fd > 0.0 ? fd : 0.0;
done:
    free(mem);
    return st;
}

lethe_status lethe_frechet_distance(const float *a, int na, const float *b, int nb,
                                    int d, double *out)
{
    if (na < 2 || nb < 2 || d < 1 || d > FD_MAX_D)
        return lethe_fail(LETHE_ERR_ARG,
                          "frechet: need >= 2 samples per set and 1 <= d <= %d, got %d and %d, d = %d",
                          FD_MAX_D, na, nb, d);
    if (!a || !b || !out) return lethe_fail(LETHE_ERR_ARG, "frechet: NULL argument");
    const size_t dd = (size_t)d;
    double *mem = malloc((2 * dd + 2 * dd * dd) * sizeof(double));
    if (!mem) return lethe_fail(LETHE_ERR_NOMEM, "frechet: cannot allocate for d = %d", d);
    double *mu_a = mem, *mu_b = mem + dd, *cov_a = mem + 2 * dd, *cov_b = cov_a + dd * dd;
    lethe_status st = lethe_feature_stats(a, na, d, mu_a, cov_a);
    if (st == LETHE_OK) st = lethe_feature_stats(b, nb, d, mu_b, cov_b);
    if (st == LETHE_OK) st = lethe_frechet_from_stats(mu_a, cov_a, mu_b, cov_b, d, out);
    free(mem);
    return st;
}
