/* Metrics (PROTOCOL.md "Metrics"): MIA-Efficacy against scikit-learn,
 * Avg. Gap, accuracy and the full evaluation on a tiny in-memory data set. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "lethe.h"

/* ------------------------------------------------------------------ MIA */

/* Reference values: scikit-learn 1.2.1, SVC(C=3, gamma='auto').fit(X, y)
 * with X = non-members then members (float32 widened to float64), y = 0/1,
 * then predict(targets).
 *
 * A fixed case with overlapping classes. Its decision values run from
 * −3.05 (0.008) to 2.50 (0.965); the boundary lies between 0.507 (−0.576)
 * and 0.591 (+0.048); 15 + 15 support vectors. */
static const float sk_members[40] = {
    0.850f, 0.959f, 0.910f, 0.690f, 0.720f, 0.949f, 0.602f, 0.928f, 0.919f, 0.787f,
    0.721f, 0.711f, 0.702f, 0.778f, 0.802f, 0.821f, 0.998f, 0.917f, 0.849f, 0.996f,
    0.686f, 0.664f, 0.845f, 0.618f, 0.614f, 0.806f, 0.786f, 0.967f, 0.852f, 0.806f,
    0.799f, 0.699f, 0.605f, 0.677f, 0.877f, 0.680f, 0.748f, 0.601f, 0.932f, 0.662f};
static const float sk_nonmembers[40] = {
    0.187f, 0.616f, 0.357f, 0.593f, 0.448f, 0.519f, 0.064f, 0.379f, 0.355f, 0.610f,
    0.253f, 0.419f, 0.041f, 0.271f, 0.226f, 0.105f, 0.571f, 0.266f, 0.685f, 0.413f,
    0.424f, 0.447f, 0.474f, 0.106f, 0.308f, 0.168f, 0.282f, 0.068f, 0.677f, 0.151f,
    0.470f, 0.210f, 0.612f, 0.464f, 0.092f, 0.592f, 0.661f, 0.633f, 0.399f, 0.102f};
static const float sk_targets[20] = {
    0.008f, 0.088f, 0.123f, 0.159f, 0.237f, 0.278f, 0.326f, 0.369f, 0.421f, 0.464f,
    0.507f, 0.591f, 0.625f, 0.679f, 0.720f, 0.788f, 0.809f, 0.874f, 0.911f, 0.965f};
static const int sk_pred[20] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
#define SK_EFFICACY 55.0

/* A band: members in the middle, non-members on both sides. Its two
 * boundaries move with C and γ (C = 4, γ = 0.8 or γ = 2 each flip at least
 * one of these targets), so it pins the SVM settings; |decision| ≥ 0.10 at
 * every target, so solver round-off cannot flip one. */
static const float band_members[30] = {
    0.339f, 0.407f, 0.661f, 0.562f, 0.342f, 0.495f, 0.516f, 0.372f, 0.631f, 0.351f,
    0.476f, 0.533f, 0.494f, 0.564f, 0.632f, 0.730f, 0.428f, 0.592f, 0.613f, 0.432f,
    0.301f, 0.738f, 0.434f, 0.441f, 0.701f, 0.563f, 0.512f, 0.648f, 0.314f, 0.618f};
static const float band_nonmembers[30] = {
    0.150f, 0.036f, 0.264f, 0.373f, 0.083f, 0.252f, 0.119f, 0.297f, 0.289f, 0.087f,
    0.332f, 0.263f, 0.273f, 0.328f, 0.171f, 0.916f, 0.957f, 0.686f, 0.947f, 0.788f,
    0.818f, 0.701f, 0.894f, 0.752f, 0.955f, 0.746f, 0.847f, 0.790f, 0.865f, 0.719f};
static const float band_targets[20] = {
    0.050f, 0.120f, 0.170f, 0.200f, 0.245f, 0.265f, 0.290f, 0.350f, 0.500f, 0.620f,
    0.700f, 0.745f, 0.765f, 0.785f, 0.795f, 0.830f, 0.860f, 0.900f, 0.950f, 0.990f};
static const int band_pred[20] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
#define BAND_EFFICACY 45.0

/* The efficacy over all targets, then each target alone (100 if predicted
 * non-member, 0 if member), against scikit-learn's predictions. */
static void check_against_sklearn(const float *mem, size_t nm, const float *non, size_t nn,
                                  const float *tgt, const int *pred, size_t nt, double want)
{
    double eff = -1;
    CHECK_OK(lethe_mia_efficacy(mem, nm, non, nn, tgt, nt, &eff));
    CHECK_NEAR(eff, want, 1e-9);
    for (size_t i = 0; i < nt; i++) {
        CHECK_OK(lethe_mia_efficacy(mem, nm, non, nn, &tgt[i], 1, &eff));
        CHECK_MSG(eff == (pred[i] ? 0.0 : 100.0), "target %zu (%.3f): efficacy %g, sklearn says %d",
                  i, tgt[i], eff, pred[i]);
    }
}

TEST(mia_matches_sklearn)
{
    check_against_sklearn(sk_members, 40, sk_nonmembers, 40, sk_targets, sk_pred, 20, SK_EFFICACY);
    check_against_sklearn(band_members, 30, band_nonmembers, 30, band_targets, band_pred, 20,
                          BAND_EFFICACY);
}

TEST(mia_separated_by_hand)
{
    float mem[20], non[20], low[5], high[5];
    for (int i = 0; i < 20; i++) {
        mem[i] = 0.80f + 0.01f * (float)i;  /* [0.80, 0.99] */
        non[i] = 0.01f * (float)i;          /* [0.00, 0.19] */
    }
    for (int i = 0; i < 5; i++) {
        low[i] = 0.05f;
        high[i] = 0.99f;
    }
    double eff = -1;
    CHECK_OK(lethe_mia_efficacy(mem, 20, non, 20, low, 5, &eff));
    CHECK(eff == 100.0);
    CHECK_OK(lethe_mia_efficacy(mem, 20, non, 20, high, 5, &eff));
    CHECK(eff == 0.0);
    float mixed[4] = {0.05f, 0.99f, 0.99f, 0.99f};
    CHECK_OK(lethe_mia_efficacy(mem, 20, non, 20, mixed, 4, &eff));
    CHECK(eff == 25.0);
}

TEST(mia_rejects_bad_input)
{
    float ok[3] = {0.1f, 0.5f, 0.9f}, bad[3] = {0.1f, NAN, 0.9f}, inf[1] = {INFINITY};
    double eff = 42;
    CHECK(lethe_mia_efficacy(ok, 0, ok, 3, ok, 3, &eff) == LETHE_ERR_ARG);
    CHECK(lethe_mia_efficacy(ok, 3, ok, 0, ok, 3, &eff) == LETHE_ERR_ARG);
    CHECK(lethe_mia_efficacy(ok, 3, ok, 3, ok, 0, &eff) == LETHE_ERR_ARG);
    CHECK(lethe_mia_efficacy(NULL, 3, ok, 3, ok, 3, &eff) == LETHE_ERR_ARG);
    CHECK(lethe_mia_efficacy(bad, 3, ok, 3, ok, 3, &eff) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "members feature 1") != NULL);
    CHECK(lethe_mia_efficacy(ok, 3, bad, 3, ok, 3, &eff) == LETHE_ERR_ARG);
    CHECK(lethe_mia_efficacy(ok, 3, ok, 3, inf, 1, &eff) == LETHE_ERR_ARG);
    CHECK(lethe_mia_efficacy(ok, 3, ok, 3, ok, 3, NULL) == LETHE_ERR_ARG);
    CHECK(eff == 42);  /* untouched on failure */
}

/* -------------------------------------------------------------- avg gap */

TEST(avg_gap_by_hand)
{
    lethe_metrics a = {.ua = 10, .ra = 95, .ta = 90, .mia = 20, .ta_forget = 50, .has_ta_forget = 1};
    lethe_metrics ref = {.ua = 12, .ra = 99, .ta = 89, .mia = 28};
    /* (2 + 4 + 1 + 8) / 4; ta_forget takes no part. */
    CHECK_NEAR(lethe_avg_gap(&a, &ref), 3.75, 1e-12);
    CHECK_NEAR(lethe_avg_gap(&ref, &a), 3.75, 1e-12);
    CHECK(lethe_avg_gap(&a, &a) == 0.0);
}

/* ------------------------------------------------- accuracy, evaluation */

enum { NPIX = 28 * 28, NCLASS = 10 };

/* A data set of n random 1×28×28 images; labels set later. Caller frees
 * pixels and labels. */
static void make_dataset(lethe_dataset *ds, int n, uint64_t seed)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = 1;
    ds->h = 28;
    ds->w = 28;
    ds->nclass = NCLASS;
    ds->mean[0] = 0.2860f;
    ds->std[0] = 0.3530f;
    strcpy(ds->name, "tiny");
    ds->pixels = malloc((size_t)n * NPIX);
    ds->labels = calloc((size_t)n, 1);
    lethe_rng r;
    lethe_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)n * NPIX; i++) ds->pixels[i] = (uint8_t)lethe_rng_below(&r, 256);
}

static int argmax(const float *row, int c)
{
    int best = 0;
    for (int j = 1; j < c; j++)
        if (row[j] > row[best]) best = j;
    return best;
}

/* Logits of all n samples of ds in one forward, copied to out (n, NCLASS). */
static void forward_all(lethe_model *m, const lethe_dataset *ds, float *out)
{
    int n = ds->n;
    float *x = malloc((size_t)n * NPIX * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y), *idx = malloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = i;
    lethe_dataset_batch(ds, idx, n, x, y);
    lethe_groups g;
    lethe_groups_one(&g, n);
    const float *logits;
    CHECK_OK(lethe_model_forward(m, x, n, &g, LETHE_BN_EVAL, &logits));
    memcpy(out, logits, (size_t)n * NCLASS * sizeof *out);
    free(x);
    free(y);
    free(idx);
}

/* Label sample i with the model's prediction if right[i], else with
 * another class, so the accuracy on any subset is known by construction. */
static void label_by_model(lethe_dataset *ds, const float *logits, const int *right)
{
    for (int i = 0; i < ds->n; i++) {
        int p = argmax(logits + (size_t)i * NCLASS, NCLASS);
        ds->labels[i] = (uint8_t)(right[i] ? p : (p + 3) % NCLASS);
    }
}

static lethe_model *tiny_model(int reserve)
{
    lethe_model *m = NULL;
    CHECK_OK(lethe_model_create(&m, "mlp", 1, 28, 28, NCLASS));
    if (!m) return NULL;
    lethe_rng r;
    lethe_rng_seed(&r, 11);
    lethe_model_init(m, &r);
    CHECK_OK(lethe_model_reserve(m, reserve));
    return m;
}

TEST(eval_accuracy_counts_and_probabilities)
{
    lethe_model *m = tiny_model(32);
    if (!m) return;
    lethe_dataset ds;
    make_dataset(&ds, 32, 5);
    float logits[32 * NCLASS];
    forward_all(m, &ds, logits);
    int right[32];
    for (int i = 0; i < 32; i++) right[i] = (i % 8) < 5;  /* 20 of 32 */
    label_by_model(&ds, logits, right);

    int32_t all[32], odd[16];
    for (int i = 0; i < 32; i++) all[i] = i;
    for (int i = 0; i < 16; i++) odd[i] = 2 * i + 1;
    lethe_subset sub = {all, 32};
    float p[32], p1[32];
    double acc = -1, acc1 = -1;
    /* Batch 5: six full batches and a short one. */
    CHECK_OK(lethe_eval_accuracy(m, &ds, &sub, 5, &acc, p));
    CHECK(acc == 62.5);
    for (int i = 0; i < 32; i++) {
        const float *row = logits + (size_t)i * NCLASS;
        double mx = row[argmax(row, NCLASS)], s = 0;
        for (int j = 0; j < NCLASS; j++) s += exp(row[j] - mx);
        double want = exp(row[ds.labels[i]] - mx) / s;
        CHECK_MSG(p[i] > 0.0f && p[i] < 1.0f, "p_true[%d] = %g", i, p[i]);
        CHECK_NEAR(p[i], want, 1e-6);
    }
    /* The batch size changes nothing (EVAL mode); NULL p_true is allowed. */
    CHECK_OK(lethe_eval_accuracy(m, &ds, &sub, 32, &acc1, p1));
    CHECK(acc1 == acc);
    for (int i = 0; i < 32; i++) CHECK_NEAR(p1[i], p[i], 1e-6);
    CHECK_OK(lethe_eval_accuracy(m, &ds, &sub, 1000, &acc1, NULL));
    CHECK(acc1 == acc);

    /* Odd samples: i % 8 in {1, 3} right, {5, 7} wrong → 50%. */
    lethe_subset so = {odd, 16};
    CHECK_OK(lethe_eval_accuracy(m, &ds, &so, 3, &acc, p));
    CHECK(acc == 50.0);
    CHECK_NEAR(p[0], p1[1], 1e-6);
    CHECK_NEAR(p[15], p1[31], 1e-6);

    /* Errors: empty subset, index out of range, label beyond the model. */
    lethe_subset empty = {all, 0};
    CHECK(lethe_eval_accuracy(m, &ds, &empty, 5, &acc, NULL) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "empty subset") != NULL);
    int32_t badidx[2] = {0, 32};
    lethe_subset bad = {badidx, 2};
    CHECK(lethe_eval_accuracy(m, &ds, &bad, 5, &acc, NULL) == LETHE_ERR_ARG);
    CHECK(lethe_eval_accuracy(m, &ds, &sub, 0, &acc, NULL) == LETHE_ERR_ARG);
    ds.labels[3] = NCLASS;
    CHECK(lethe_eval_accuracy(m, &ds, &sub, 5, &acc, NULL) == LETHE_ERR_ARG);
    lethe_model_free(m);

    /* A model reserved for 8 cannot run batches of 16: forward's status. */
    ds.labels[3] = 0;
    m = tiny_model(8);
    if (m) {
        CHECK(lethe_eval_accuracy(m, &ds, &sub, 16, &acc, NULL) != LETHE_OK);
        CHECK_OK(lethe_eval_accuracy(m, &ds, &sub, 8, &acc, NULL));
        lethe_model_free(m);
    }
    free(ds.pixels);
    free(ds.labels);
}

/* The shadow-member draw of lethe_evaluate, repeated here: the first k of
 * a partial Fisher–Yates shuffle of retain positions. */
static void shadow_features(const float *p_retain, size_t n_retain, size_t k,
                            uint64_t seed, float *out)
{
    int32_t *pick = malloc(n_retain * sizeof *pick);
    for (size_t i = 0; i < n_retain; i++) pick[i] = (int32_t)i;
    lethe_rng r;
    lethe_rng_seed(&r, seed);
    for (size_t i = 0; i < k; i++) {
        size_t j = i + lethe_rng_below(&r, (uint32_t)(n_retain - i));
        int32_t t = pick[i];
        pick[i] = pick[j];
        pick[j] = t;
        out[i] = p_retain[pick[i]];
    }
    free(pick);
}

TEST(evaluate_combines_metrics)
{
    lethe_model *m = tiny_model(LETHE_EVAL_BATCH);
    if (!m) return;
    lethe_dataset train, test;
    make_dataset(&train, 32, 21);
    make_dataset(&test, 16, 22);
    float lt[32 * NCLASS], ls[16 * NCLASS];
    forward_all(m, &train, lt);
    forward_all(m, &test, ls);
    /* forget = 0..7 (3 right), retain = 8..31 (18 of 24 right),
     * test_retain = 0..11 (9 right), test_forget = 12..15 (1 right). */
    int rt[32], rs[16];
    for (int i = 0; i < 32; i++) rt[i] = i < 8 ? i < 3 : (i % 4) != 0;
    for (int i = 0; i < 16; i++) rs[i] = i < 12 ? (i % 4) != 0 : i == 12;
    label_by_model(&train, lt, rt);
    label_by_model(&test, ls, rs);

    int32_t idx[32];
    for (int i = 0; i < 32; i++) idx[i] = i;
    lethe_subset forget = {idx, 8}, retain = {idx + 8, 24};
    lethe_subset test_retain = {idx, 12}, test_forget = {idx + 12, 4};
    lethe_metrics r;
    memset(&r, 0xff, sizeof r);
    CHECK_OK(lethe_evaluate(m, &train, &test, &forget, &retain, &test_retain, &test_forget, 99, &r));
    CHECK_NEAR(r.ua, 100.0 - 37.5, 1e-12);
    CHECK_NEAR(r.ra, 75.0, 1e-12);
    CHECK_NEAR(r.ta, 75.0, 1e-12);
    CHECK(r.has_ta_forget == 1);
    CHECK_NEAR(r.ta_forget, 25.0, 1e-12);

    /* MIA by hand: 12 shadow members drawn from retain, the test set as
     * non-members, the forget set as targets. */
    float pf[8], pr[24], pt[12], shadow[12];
    double acc, mia;
    CHECK_OK(lethe_eval_accuracy(m, &train, &forget, 8, &acc, pf));
    CHECK_OK(lethe_eval_accuracy(m, &train, &retain, 8, &acc, pr));
    CHECK_OK(lethe_eval_accuracy(m, &test, &test_retain, 8, &acc, pt));
    shadow_features(pr, 24, 12, 99, shadow);
    CHECK_OK(lethe_mia_efficacy(shadow, 12, pt, 12, pf, 8, &mia));
    CHECK(r.mia == mia);
    CHECK(r.mia >= 0.0 && r.mia <= 100.0);

    /* Same seed, same result; no test_forget → no ta_forget. */
    lethe_metrics r2;
    CHECK_OK(lethe_evaluate(m, &train, &test, &forget, &retain, &test_retain, NULL, 99, &r2));
    CHECK(r2.has_ta_forget == 0);
    CHECK(r2.ua == r.ua && r2.ra == r.ra && r2.ta == r.ta && r2.mia == r.mia);
    CHECK(lethe_avg_gap(&r2, &r) == 0.0);

    /* Retain smaller than the test set: every retain sample is a shadow
     * member (k = |D_r|). */
    lethe_subset small_retain = {idx + 8, 6};
    float all6[6];
    CHECK_OK(lethe_evaluate(m, &train, &test, &forget, &small_retain, &test_retain, NULL, 5, &r2));
    CHECK_OK(lethe_eval_accuracy(m, &train, &small_retain, 8, &acc, pr));
    shadow_features(pr, 6, 6, 5, all6);
    CHECK_OK(lethe_mia_efficacy(all6, 6, pt, 12, pf, 8, &mia));
    CHECK(r2.mia == mia);

    /* Empty sets are refused. */
    lethe_subset none = {idx, 0};
    CHECK(lethe_evaluate(m, &train, &test, &none, &retain, &test_retain, NULL, 1, &r2) == LETHE_ERR_ARG);
    CHECK(lethe_evaluate(m, &train, &test, &forget, &none, &test_retain, NULL, 1, &r2) == LETHE_ERR_ARG);
    CHECK(lethe_evaluate(m, &train, &test, &forget, &retain, &none, NULL, 1, &r2) == LETHE_ERR_ARG);

    lethe_model_free(m);
    free(train.pixels);
    free(train.labels);
    free(test.pixels);
    free(test.labels);
}

/* A data set of n black images c × h × w, labels i % 10. */
static void black_set(lethe_dataset *ds, int n, int c, int h, int w, const char *name)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->nclass = 10;
    ds->pixels = calloc((size_t)n * c * h * w, 1);
    ds->labels = malloc((size_t)n);
    for (int i = 0; i < n; i++) ds->labels[i] = (uint8_t)(i % 10);
    for (int k = 0; k < 3; k++) ds->std[k] = 1.0f;
    snprintf(ds->name, sizeof ds->name, "%s", name);
}

/* A CIFAR model given Fashion-MNIST-shaped data, and the reverse: one
 * clear refusal, never a forward that reads past the batch. */
TEST(eval_refuses_data_of_another_shape)
{
    static const struct { const char *arch; int mc, mh; int dc, dh; const char *want; } cases[] = {
        {"resnet20", 3, 32, 1, 28, "resnet20 model takes 3x32x32 inputs, data set fmnist has 1x28x28"},
        {"cnn", 1, 28, 3, 32, "cnn model takes 1x28x28 inputs, data set cifar10 has 3x32x32"},
    };
    for (int k = 0; k < 2; k++) {
        lethe_model *m = NULL;
        CHECK_OK(lethe_model_create(&m, cases[k].arch, cases[k].mc, cases[k].mh, cases[k].mh, 10));
        lethe_dataset ds;
        black_set(&ds, 4, cases[k].dc, cases[k].dh, cases[k].dh, k == 0 ? "fmnist" : "cifar10");
        lethe_subset all;
        CHECK_OK(lethe_subset_all(&all, 4));
        double acc = -1;
        lethe_status st = m ? lethe_model_reserve(m, 4) : LETHE_ERR_ARG;
        if (st == LETHE_OK) st = lethe_eval_accuracy(m, &ds, &all, 4, &acc, NULL);
        CHECK_MSG(st == LETHE_ERR_MISMATCH && strstr(lethe_last_error(), cases[k].want),
                  "%s: %s: %s", cases[k].arch, lethe_status_to_string(st), lethe_last_error());
        CHECK(acc == -1);
        lethe_subset_free(&all);
        lethe_dataset_free(&ds);
        lethe_model_free(m);
    }
}
