/* Optimisers against PyTorch 1.13 (torch.optim.SGD / AdamW), and the
 * learning-rate schedules. Expected values were computed offline with
 * python3-torch on θ0 = (1, 2, −3) and the gradient g = θ − c,
 * c = (0.5, −1.25, 2), three steps; they are literals here. */
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lethe.h"
#include "optim/optim.h"

static const float theta0[3] = {1.0f, 2.0f, -3.0f};
static const float target[3] = {0.5f, -1.25f, 2.0f};

typedef struct {
    lethe_opt_kind kind;
    float lr, momentum, wd;
    int nesterov;
    float beta1, beta2, eps;    /* AdamW; 0 = keep the default */
    int keep_wd;                /* 1: leave init's default weight decay */
} opt_case;

/* Run 3 steps of g = θ − c over n floats (the 3-vector repeated), the
 * pattern positions where mask == 0 frozen; out (3, n) receives θ after
 * each step. */
static void run_case(const opt_case *oc, size_t n, const uint8_t *mask,
                     float *out, lethe_optim *keep)
{
    lethe_optim o;
    float *th = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    CHECK_OK(lethe_optim_init(&o, oc->kind, n));
    if (!th || !g || (n && !o.m)) {
        CHECK(0);
        free(th);
        free(g);
        lethe_optim_free(&o);
        return;
    }
    o.momentum = oc->momentum;
    o.nesterov = oc->nesterov;
    if (!oc->keep_wd) o.weight_decay = oc->wd;
    if (oc->beta1 > 0) o.beta1 = oc->beta1;
    if (oc->beta2 > 0) o.beta2 = oc->beta2;
    if (oc->eps > 0) o.eps = oc->eps;
    for (size_t i = 0; i < n; i++) th[i] = theta0[i % 3];
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < n; i++) g[i] = th[i] - target[i % 3];
        lethe_optim_step(&o, th, g, mask, oc->lr);
        memcpy(out + (size_t)s * n, th, n * sizeof(float));
    }
    CHECK(o.t == 3);
    if (keep) *keep = o;
    else lethe_optim_free(&o);
    free(th);
    free(g);
}

static void check_torch(const opt_case *oc, const float want[3][3])
{
    float out[9];
    run_case(oc, 3, NULL, out, NULL);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 3; i++)
            CHECK_NEAR(out[s * 3 + i], want[s][i], 2e-6);
}

TEST(optim_init_defaults)
{
    lethe_optim o;
    CHECK_OK(lethe_optim_init(&o, LETHE_OPT_SGD, 5));
    CHECK(o.momentum == 0.0f && o.weight_decay == 0.0f && o.nesterov == 0 && o.t == 0);
    CHECK(o.m != NULL && o.v == NULL && o.n == 5);
    for (int i = 0; i < 5; i++) CHECK(o.m[i] == 0.0f);
    lethe_optim_free(&o);
    CHECK(o.m == NULL);
    lethe_optim_free(&o);       /* twice is harmless */

    CHECK_OK(lethe_optim_init(&o, LETHE_OPT_ADAMW, 4));
    CHECK(o.beta1 == 0.9f && o.beta2 == 0.999f && o.eps == 1e-8f);
    CHECK(o.weight_decay == 0.01f);     /* torch.optim.AdamW's default */
    CHECK(o.m && o.v);
    for (int i = 0; i < 4; i++) CHECK(o.m[i] == 0.0f && o.v[i] == 0.0f);
    lethe_optim_free(&o);

    CHECK(lethe_optim_init(&o, LETHE_OPT_SGD, SIZE_MAX / 2) == LETHE_ERR_NOMEM);
    CHECK(o.m == NULL && o.v == NULL);
    CHECK(lethe_optim_init(&o, (lethe_opt_kind)7, 3) == LETHE_ERR_ARG);
    CHECK_OK(lethe_optim_init(&o, LETHE_OPT_ADAMW, 0));
    lethe_optim_step(&o, NULL, NULL, NULL, 0.1f);  /* n = 0: nothing to touch */
    lethe_optim_free(&o);
}

TEST(optim_sgd_matches_torch)
{
    static const float plain[3][3] = {
        {0.949999988f, 1.67499995f, -2.5f},
        {0.904999971f, 1.38249993f, -2.04999995f},
        {0.864499986f, 1.11924994f, -1.64499998f}};
    static const float wd[3][3] = {
        {0.944999993f, 1.66499996f, -2.4849999f},
        {0.89577502f, 1.36517501f, -2.02407503f},
        {0.851718664f, 1.09683168f, -1.61154711f}};
    opt_case a = {.kind = LETHE_OPT_SGD, .lr = 0.1f};
    check_torch(&a, plain);
    opt_case b = {.kind = LETHE_OPT_SGD, .lr = 0.1f, .wd = 0.05f};
    check_torch(&b, wd);
}

TEST(optim_momentum_matches_torch)
{
    static const float mom[3][3] = {
        {0.949999988f, 1.67499995f, -2.5f},
        {0.860000014f, 1.08999991f, -1.60000002f},
        {0.743000031f, 0.32949996f, -0.430000126f}};
    static const float mom_wd[3][3] = {
        {0.944999993f, 1.66499996f, -2.4849999f},
        {0.846274972f, 1.06367493f, -1.56057489f},
        {0.718563616f, 0.285796523f, -0.364732116f}};
    static const float nest_wd[3][3] = {
        {0.895500004f, 1.3635f, -2.02150011f},
        {0.767297745f, 0.582631707f, -0.821060836f},
        {0.633464575f, -0.232533917f, 0.432104319f}};
    opt_case a = {.kind = LETHE_OPT_SGD, .lr = 0.1f, .momentum = 0.9f};
    check_torch(&a, mom);
    opt_case b = {.kind = LETHE_OPT_SGD, .lr = 0.1f, .momentum = 0.9f, .wd = 0.05f};
    check_torch(&b, mom_wd);
    opt_case c = {.kind = LETHE_OPT_SGD, .lr = 0.1f, .momentum = 0.9f, .wd = 0.05f, .nesterov = 1};
    check_torch(&c, nest_wd);
}

TEST(optim_adamw_matches_torch)
{
    static const float deflt[3][3] = {      /* AdamW(lr=0.1), wd 0.01 */
        {0.899000049f, 1.898f, -2.89700007f},
        {0.7993083f, 1.79619789f, -2.79416275f},
        {0.702258289f, 1.69466138f, -2.69152927f}};
    static const float wd0[3][3] = {
        {0.900000036f, 1.89999998f, -2.9000001f},
        {0.801187456f, 1.80009365f, -2.80005789f},
        {0.704871297f, 1.70034742f, -2.70021343f}};
    static const float custom[3][3] = {     /* lr .05, betas (.8, .99), eps 1e-3, wd .1 */
        {0.945099831f, 1.94001544f, -2.93501019f},
        {0.89087081f, 1.88038242f, -2.87038088f},
        {0.837633312f, 1.82113397f, -2.80613446f}};
    opt_case a = {.kind = LETHE_OPT_ADAMW, .lr = 0.1f, .keep_wd = 1};
    check_torch(&a, deflt);
    opt_case b = {.kind = LETHE_OPT_ADAMW, .lr = 0.1f, .wd = 0.0f};
    check_torch(&b, wd0);
    opt_case c = {.kind = LETHE_OPT_ADAMW, .lr = 0.05f, .beta1 = 0.8f, .beta2 = 0.99f,
                  .eps = 1e-3f, .wd = 0.1f};
    check_torch(&c, custom);
}

/* Masked entries keep θ and their state; unmasked ones move exactly as
 * without a mask. */
TEST(optim_mask_freezes_entries)
{
    static const uint8_t mask[3] = {1, 0, 1};
    const opt_case cases[2] = {
        {.kind = LETHE_OPT_SGD, .lr = 0.1f, .momentum = 0.9f, .wd = 0.05f, .nesterov = 1},
        {.kind = LETHE_OPT_ADAMW, .lr = 0.1f, .keep_wd = 1},
    };
    for (int k = 0; k < 2; k++) {
        float free_run[9], masked[9];
        lethe_optim o;
        run_case(&cases[k], 3, NULL, free_run, NULL);
        run_case(&cases[k], 3, mask, masked, &o);
        for (int s = 0; s < 3; s++) {
            CHECK(masked[s * 3 + 1] == theta0[1]);
            CHECK(masked[s * 3 + 0] == free_run[s * 3 + 0]);
            CHECK(masked[s * 3 + 2] == free_run[s * 3 + 2]);
        }
        CHECK(o.m[1] == 0.0f && o.m[0] != 0.0f);
        if (o.v) CHECK(o.v[1] == 0.0f && o.v[0] != 0.0f);
        lethe_optim_free(&o);
    }
}

/* Above the OpenMP threshold every element must still follow the 3-element
 * run exactly (element-wise work, no reductions). */
TEST(optim_large_vector_matches_small)
{
    const size_t n = 3 * 40000;
    uint8_t *mask = malloc(n);
    float *big = malloc(3 * n * sizeof(float));
    if (!mask || !big) {
        CHECK(0);
        free(mask);
        free(big);
        return;
    }
    for (size_t i = 0; i < n; i++) mask[i] = (uint8_t)(i % 3 != 1);
    const uint8_t small_mask[3] = {1, 0, 1};
    const opt_case cases[2] = {
        {.kind = LETHE_OPT_SGD, .lr = 0.1f, .momentum = 0.9f, .wd = 0.05f, .nesterov = 1},
        {.kind = LETHE_OPT_ADAMW, .lr = 0.1f, .keep_wd = 1},
    };
    for (int k = 0; k < 2; k++) {
        float small[9];
        run_case(&cases[k], 3, small_mask, small, NULL);
        run_case(&cases[k], n, mask, big, NULL);
        size_t bad = 0;
        for (int s = 0; s < 3; s++)
            for (size_t i = 0; i < n; i++)
                bad += big[(size_t)s * n + i] != small[s * 3 + i % 3];
        CHECK_MSG(bad == 0, "case %d: %zu of %zu entries differ", k, bad, 3 * n);
    }
    free(mask);
    free(big);
}

TEST(schedule_cosine_step_constant)
{
    lethe_schedule s = {.kind = LETHE_SCHED_COSINE, .lr0 = 0.1f, .total = 100};
    CHECK(lethe_schedule_lr(&s, 0) == 0.1f);
    /* PyTorch CosineAnnealingLR(T_max=100): 0.0853553391 at 25, 0.05 at 50. */
    CHECK_NEAR(lethe_schedule_lr(&s, 25), 0.0853553390593274, 1e-8);
    CHECK_NEAR(lethe_schedule_lr(&s, 50), 0.05, 1e-8);
    CHECK_NEAR(lethe_schedule_lr(&s, 75), 0.014644660940672643, 1e-8);
    CHECK(lethe_schedule_lr(&s, 100) == 0.0f);
    CHECK(lethe_schedule_lr(&s, 250) == 0.0f);  /* clamped at total */
    for (long t = 1; t <= 100; t++)
        CHECK(lethe_schedule_lr(&s, t) <= lethe_schedule_lr(&s, t - 1));

    lethe_schedule st = {.kind = LETHE_SCHED_STEP, .lr0 = 0.1f, .step_every = 30, .gamma = 0.1f};
    CHECK(lethe_schedule_lr(&st, 0) == 0.1f);
    CHECK(lethe_schedule_lr(&st, 29) == 0.1f);
    CHECK_NEAR(lethe_schedule_lr(&st, 30), 0.01, 1e-9);
    CHECK_NEAR(lethe_schedule_lr(&st, 65), 0.001, 1e-10);

    lethe_schedule c = {.kind = LETHE_SCHED_CONSTANT, .lr0 = 0.03f, .total = 10};
    CHECK(lethe_schedule_lr(&c, 0) == 0.03f && lethe_schedule_lr(&c, 1000) == 0.03f);
}

TEST(schedule_parse)
{
    lethe_schedule s = {.kind = LETHE_SCHED_CONSTANT, .lr0 = 0.5f, .total = 7};
    CHECK_OK(lethe_schedule_parse(&s, "cosine"));
    CHECK(s.kind == LETHE_SCHED_COSINE && s.lr0 == 0.5f && s.total == 7);
    CHECK_OK(lethe_schedule_parse(&s, "step"));
    CHECK(s.kind == LETHE_SCHED_STEP);
    CHECK_OK(lethe_schedule_parse(&s, "constant"));
    CHECK(s.kind == LETHE_SCHED_CONSTANT);
    CHECK(lethe_schedule_parse(&s, "linear") == LETHE_ERR_ARG);
    CHECK(s.kind == LETHE_SCHED_CONSTANT);
    const char *msg = lethe_last_error();
    CHECK(strstr(msg, "linear") && strstr(msg, "constant") && strstr(msg, "cosine") &&
          strstr(msg, "step"));
    CHECK(lethe_schedule_parse(&s, NULL) == LETHE_ERR_ARG);
    CHECK(lethe_schedule_parse(&s, "Cosine") == LETHE_ERR_ARG);
}

/* Training's linear warm-up: lr·(t + 1)/W over the first W steps, by hand
 * for W = 4 (0.025, 0.05, 0.075, then 0.1), and nothing without one. */
TEST(schedule_linear_warmup)
{
    static const float want[6] = {0.025f, 0.05f, 0.075f, 0.1f, 0.1f, 0.1f};
    for (long t = 0; t < 6; t++) CHECK_NEAR(optim_warmup_lr(0.1f, t, 4), want[t], 1e-9);
    CHECK(optim_warmup_lr(0.1f, 0, 0) == 0.1f && optim_warmup_lr(0.1f, 3, -2) == 0.1f);
    CHECK(optim_warmup_lr(0.1f, 0, 1) == 0.1f);
    /* On a schedule: the factor times the cosine's rate at that step. */
    lethe_schedule s = {.kind = LETHE_SCHED_COSINE, .lr0 = 0.1f, .total = 100};
    CHECK_NEAR(optim_warmup_lr(lethe_schedule_lr(&s, 25), 25, 50),
               0.0853553390593274 * 26.0 / 50.0, 1e-8);
}
