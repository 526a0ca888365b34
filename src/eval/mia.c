/*
 * MIA-Efficacy (PROTOCOL.md "Metrics"): a confidence-based membership
 * inference attack. An RBF SVM is trained on one feature, the softmax
 * probability of the true label, of shadow members (label 1) and shadow
 * non-members (label 0); the efficacy is the share of the target set (D_f)
 * that it predicts non-member, in percent.
 *
 * The SVM settings are scikit-learn's SVC(C=3, gamma='auto') — C_SVC, RBF,
 * γ = 1/#features = 1, tol 1e-3, shrinking, no probability estimates — so
 * the numbers are comparable with the published ones that used it.
 * scikit-learn's libsvm orders classes ascending; upstream libsvm orders them
 * by first occurrence, so the non-members (0) go first to match it.
 */
#include "lethe.h"
#include "core/fail.h"

#include <libsvm/svm.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

/* libsvm prints its solver progress to stdout; the library must not. */
static void svm_quiet(const char *s) { (void)s; }

static lethe_status check_features(const char *what, const float *v, size_t n)
{
    if (!v || n == 0)
        return lethe_fail(LETHE_ERR_ARG, "lethe_mia_efficacy: no %s", what);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return lethe_fail(LETHE_ERR_ARG, "lethe_mia_efficacy: %s feature %zu is not finite", what, i);
    return LETHE_OK;
}

lethe_status lethe_mia_efficacy(const float *members, size_t n_members,
                                const float *nonmembers, size_t n_nonmembers,
                                const float *target, size_t n_target,
                                double *efficacy)
{
    lethe_status st;
    if (!efficacy) return lethe_fail(LETHE_ERR_ARG, "lethe_mia_efficacy: NULL efficacy");
    if ((st = check_features("members", members, n_members)) != LETHE_OK) return st;
    if ((st = check_features("non-members", nonmembers, n_nonmembers)) != LETHE_OK) return st;
    if ((st = check_features("targets", target, n_target)) != LETHE_OK) return st;
    if (n_members > (size_t)INT_MAX / 2 || n_nonmembers > (size_t)INT_MAX / 2)
        return lethe_fail(LETHE_ERR_ARG, "lethe_mia_efficacy: %zu + %zu shadow samples are too many for libsvm",
                          n_members, n_nonmembers);

    const int l = (int)(n_members + n_nonmembers);
    struct svm_problem prob = {.l = l};
    struct svm_node *nodes = malloc((size_t)l * 2 * sizeof *nodes);  /* (l, 2): feature, terminator */
    prob.y = malloc((size_t)l * sizeof *prob.y);                      /* (l) */
    prob.x = malloc((size_t)l * sizeof *prob.x);                      /* (l) rows into nodes */
    struct svm_model *model = NULL;
    if (!nodes || !prob.y || !prob.x) {
        st = lethe_fail(LETHE_ERR_NOMEM, "lethe_mia_efficacy: no memory for %d samples", l);
        goto done;
    }
    for (int i = 0; i < l; i++) {
        int member = i >= (int)n_nonmembers;
        float v = member ? members[i - (int)n_nonmembers] : nonmembers[i];
        nodes[2 * i] = (struct svm_node){.index = 1, .value = v};
        nodes[2 * i + 1] = (struct svm_node){.index = -1, .value = 0.0};
        prob.x[i] = &nodes[2 * i];
        prob.y[i] = member ? 1.0 : 0.0;
    }

    /* cache_size (MB) bounds libsvm's kernel-row cache: it changes speed,
     * never the result; 16 MB instead of 100 halves a run's peak RSS and
     * costs no measurable time on these one-feature problems. */
    struct svm_parameter param = {
        .svm_type = C_SVC, .kernel_type = RBF, .degree = 3,
        .gamma = 1.0,          /* 1 / #features, with one feature */
        .coef0 = 0.0, .cache_size = 16, .eps = 1e-3, .C = 3.0,
        .nr_weight = 0, .weight_label = NULL, .weight = NULL,
        .nu = 0.5, .p = 0.1, .shrinking = 1, .probability = 0,
    };
    const char *err = svm_check_parameter(&prob, &param);
    if (err) {
        st = lethe_fail(LETHE_ERR_ARG, "lethe_mia_efficacy: libsvm: %s", err);
        goto done;
    }
    svm_set_print_string_function(svm_quiet);
    model = svm_train(&prob, &param);
    if (!model) {
        st = lethe_fail(LETHE_ERR_NOMEM, "lethe_mia_efficacy: libsvm training failed");
        goto done;
    }

    size_t nonmember = 0;
    for (size_t i = 0; i < n_target; i++) {
        struct svm_node q[2] = {{.index = 1, .value = target[i]}, {.index = -1, .value = 0.0}};
        if (svm_predict(model, q) == 0.0) nonmember++;
    }
    *efficacy = 100.0 * (double)nonmember / (double)n_target;
    st = LETHE_OK;

done:
    /* The model points into nodes (free_sv = 0): destroy it first. */
    if (model) svm_free_and_destroy_model(&model);
    free(prob.x);
    free(prob.y);
    free(nodes);
    return st;
}
