/* Forget just enough (src/unlearn/unseen.c): each forgetting sample stops
 * being forgotten at its unseen-data target loss. Known answers from an
 * untrained model, whose per-label CE straddles log C: a sample's CE on the
 * label its logits rank first is < log C, on the label they rank last
 * > log C (strictly, unless all logits tie). So with D_f labelled "last"
 * and the reference "first", every target lies below every forget loss;
 * swapped, above. Plus the counted cost, resuming, and bad references. */
#include "test.h"
#include "toy.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lethe.h"

enum { N = 64, NCLASS = 4, HW = 10, NF = 24 };

static lethe_model *untrained(const toy *t)
{
    lethe_model *m = NULL;
    if (lethe_model_create(&m, "mlp", 1, t->ds.h, t->ds.w, t->ds.nclass) != LETHE_OK) return NULL;
    lethe_rng r;
    lethe_rng_seed(&r, 11);
    lethe_model_init(m, &r);
    if (lethe_model_reserve(m, 64) != LETHE_OK) {
        lethe_model_free(m);
        return NULL;
    }
    return m;
}

/* Relabel image i of ds (and of a copy ref) by m's logits: ds gets the
 * label ranked `f_first` ? first : last, ref the other one. */
static int relabel(lethe_model *m, lethe_dataset *ds, lethe_dataset *ref, int f_first)
{
    size_t px = (size_t)ds->c * ds->h * ds->w;
    float *x = malloc(px * sizeof(float));
    int32_t y;
    int ok = x != NULL;
    for (int i = 0; ok && i < ds->n; i++) {
        const float *z;
        int32_t idx = i;
        lethe_dataset_batch(ds, &idx, 1, x, &y);
        if (lethe_model_forward(m, x, 1, NULL, LETHE_BN_EVAL, &z) != LETHE_OK) {
            ok = 0;
            break;
        }
        int hi = 0, lo = 0;
        for (int k = 1; k < ds->nclass; k++) {
            if (z[k] > z[hi]) hi = k;
            if (z[k] < z[lo]) lo = k;
        }
        ds->labels[i] = (uint8_t)(f_first ? hi : lo);
        ref->labels[i] = (uint8_t)(f_first ? lo : hi);
    }
    free(x);
    return ok;
}

typedef struct {
    toy t;
    lethe_dataset ref;          /* the same images, the other labels */
    lethe_subset unseen;        /* the reference: every image of ref */
    lethe_subset forget;        /* the first NF images (any labels) */
} fixture;

static int fixture_make(fixture *f, lethe_model *m, int forget_first)
{
    memset(f, 0, sizeof *f);
    toy_images(&f->t, N, NCLASS, HW, 4242, 0.1f, NF, 1000);
    f->ref = f->t.ds;
    size_t px = (size_t)N * HW * HW;
    f->ref.pixels = malloc(px);
    f->ref.labels = malloc(N);
    f->unseen.idx = malloc(N * sizeof(int32_t));
    f->forget.idx = malloc(NF * sizeof(int32_t));
    if (!f->ref.pixels || !f->ref.labels || !f->unseen.idx || !f->forget.idx) return 0;
    memcpy(f->ref.pixels, f->t.ds.pixels, px);
    for (int i = 0; i < N; i++) f->unseen.idx[f->unseen.n++] = i;
    for (int i = 0; i < NF; i++) f->forget.idx[f->forget.n++] = i;
    /* D_r: the images after D_f, whatever their class. */
    f->t.retain.n = 0;
    for (int i = NF; i < N; i++) f->t.retain.idx[f->t.retain.n++] = i;
    return relabel(m, &f->t.ds, &f->ref, forget_first);
}

static void fixture_free(fixture *f)
{
    toy_free(&f->t);
    lethe_dataset_free(&f->ref);
    lethe_subset_free(&f->unseen);
    lethe_subset_free(&f->forget);
}

static void cfg_of(lethe_unlearn_config *c, const char *method, long steps, const fixture *f)
{
    lethe_unlearn_config_default(c);
    c->method = method;
    c->steps = steps;
    c->batch = 8;
    c->lr = 0.1f;
    c->seed = 5;
    c->unseen = &f->unseen;
    c->unseen_data = &f->ref;
}

static int same_theta(lethe_model *a, lethe_model *b)
{
    size_t na, nb;
    const float *ta = lethe_model_theta(a, &na), *tb = lethe_model_theta(b, &nb);
    return na == nb && memcmp(ta, tb, na * sizeof(float)) == 0;
}

static lethe_model *clone(lethe_model *m0, const fixture *f)
{
    return toy_clone(m0, &f->t);
}

/* Targets below every forget loss: every row is at its target from the
 * first step, so gradient ascent moves nothing, and the start's AUC is 0. */
TEST(unseen_targets_below_every_loss_stop_all_forgetting)
{
    lethe_model *m0 = NULL, *m = NULL;
    fixture f;
    toy probe;
    toy_images(&probe, N, NCLASS, HW, 4242, 0.1f, NF, 1000);
    m0 = untrained(&probe);
    toy_free(&probe);
    CHECK(m0 != NULL);
    if (!m0 || !fixture_make(&f, m0, 0)) {
        CHECK(!"fixture");
        lethe_model_free(m0);
        return;
    }
    lethe_unlearn_config cfg;
    cfg_of(&cfg, "ga", 5, &f);
    lethe_unlearn_result r;
    m = clone(m0, &f);
    CHECK_OK(lethe_unlearn(m, &f.t.ds, &f.forget, &f.t.retain, &cfg, &r, NULL, NULL));
    CHECK_MSG(same_theta(m, m0), "ga moved θ although every sample was at its target");
    CHECK(r.unseen_n == N);
    CHECK(r.unseen_rows == 5 * 8 && r.unseen_gated == r.unseen_rows);
    CHECK_NEAR(r.unseen_auc0, 0.0, 0.0);
    for (long t = 0; t < r.steps; t++) CHECK_NEAR(r.trace[t].unseen_share, 1.0, 0.0);
    /* Counted: one forward of D_f and of the reference, once. */
    CHECK(r.unseen_fwd_samples == NF + N);
    lethe_unlearn_result r0;
    lethe_unlearn_config off = cfg;
    off.unseen = NULL;
    off.unseen_data = NULL;
    lethe_model *m2 = clone(m0, &f);
    CHECK_OK(lethe_unlearn(m2, &f.t.ds, &f.forget, &f.t.retain, &off, &r0, NULL, NULL));
    CHECK_MSG(!same_theta(m2, m0), "ga without the gate moved nothing: the test shows nothing");
    CHECK(r.fwd_samples == r0.fwd_samples + NF + N);
    CHECK(r0.unseen_n == 0 && r0.unseen_rows == 0 && isnan(r0.trace[0].unseen_share));
    lethe_unlearn_result_free(&r0);
    lethe_unlearn_result_free(&r);
    lethe_model_free(m2);
    lethe_model_free(m);
    lethe_model_free(m0);
    fixture_free(&f);
}

/* Targets above every forget loss: no row is at its target at θ_0, so the
 * first step is the ungated one to the bit; the start's AUC is 1. Run on
 * until GA has pushed some rows past their targets: those are gated. */
TEST(unseen_targets_above_every_loss_change_nothing_at_first)
{
    toy probe;
    toy_images(&probe, N, NCLASS, HW, 4242, 0.1f, NF, 1000);
    lethe_model *m0 = untrained(&probe);
    toy_free(&probe);
    fixture f;
    CHECK(m0 != NULL);
    if (!m0 || !fixture_make(&f, m0, 1)) {
        CHECK(!"fixture");
        lethe_model_free(m0);
        return;
    }
    static const char *methods[] = {"ga", "rl", "eupmu", "eupmu-fast"};
    for (int k = 0; k < 4; k++) {
        lethe_unlearn_config on, off;
        cfg_of(&on, methods[k], 1, &f);
        off = on;
        off.unseen = NULL;
        off.unseen_data = NULL;
        lethe_unlearn_result r1, r0;
        lethe_model *a = clone(m0, &f), *b = clone(m0, &f);
        CHECK_OK(lethe_unlearn(a, &f.t.ds, &f.forget, &f.t.retain, &on, &r1, NULL, NULL));
        CHECK_OK(lethe_unlearn(b, &f.t.ds, &f.forget, &f.t.retain, &off, &r0, NULL, NULL));
        CHECK_MSG(same_theta(a, b), "%s: the gate changed a step with no row at its target",
                  methods[k]);
        CHECK(r1.unseen_gated == 0 && r1.unseen_rows > 0);
        CHECK_NEAR(r1.unseen_auc0, 1.0, 0.0);
        CHECK_NEAR(r1.trace[0].unseen_share, 0.0, 0.0);
        lethe_unlearn_result_free(&r1);
        lethe_unlearn_result_free(&r0);
        lethe_model_free(a);
        lethe_model_free(b);
    }
    /* Long enough, random labels pass the targets: rows get gated, and the
     * run ends elsewhere than the ungated one. */
    lethe_unlearn_config on, off;
    cfg_of(&on, "rl", 20, &f);
    off = on;
    off.unseen = NULL;
    lethe_unlearn_result r1, r0;
    lethe_model *a = clone(m0, &f), *b = clone(m0, &f);
    CHECK_OK(lethe_unlearn(a, &f.t.ds, &f.forget, &f.t.retain, &on, &r1, NULL, NULL));
    CHECK_OK(lethe_unlearn(b, &f.t.ds, &f.forget, &f.t.retain, &off, &r0, NULL, NULL));
    CHECK_MSG(r1.unseen_gated > 0, "no row reached its target in 20 steps of rl");
    CHECK(!same_theta(a, b));
    CHECK(r1.trace[r1.steps - 1].unseen_share > 0.0f);
    lethe_unlearn_result_free(&r1);
    lethe_unlearn_result_free(&r0);
    lethe_model_free(a);
    lethe_model_free(b);
    lethe_model_free(m0);
    fixture_free(&f);
}

typedef struct { long at; volatile sig_atomic_t flag; } stopper;
static void stop_at(const lethe_progress *p, void *ctx)
{
    stopper *s = ctx;
    if (p->step == s->at) s->flag = SIGINT;
}

/* Stopped and resumed, a gated run ends as the uninterrupted one: θ, the
 * counters and the share of every step. */
TEST(unseen_resume_bitwise)
{
    toy probe;
    toy_images(&probe, N, NCLASS, HW, 4242, 0.1f, NF, 1000);
    lethe_model *m0 = untrained(&probe);
    toy_free(&probe);
    fixture f;
    CHECK(m0 != NULL);
    if (!m0 || !fixture_make(&f, m0, 1)) {
        CHECK(!"fixture");
        lethe_model_free(m0);
        return;
    }
    lethe_unlearn_config cfg;
    cfg_of(&cfg, "rl", 30, &f);
    cfg.lr = 0.5f;
    lethe_unlearn_result rr, r1, r2;
    lethe_model *ref = clone(m0, &f), *m = clone(m0, &f);
    CHECK_OK(lethe_unlearn(ref, &f.t.ds, &f.forget, &f.t.retain, &cfg, &rr, NULL, NULL));
    CHECK_MSG(rr.unseen_gated > 0 && rr.unseen_gated < rr.unseen_rows,
              "the run should gate some rows and not all: %ld of %ld", rr.unseen_gated,
              rr.unseen_rows);
    const char *path = test_path("unseen.state");
    stopper s = {17, 0};
    lethe_run_control run;
    lethe_run_control_default(&run);
    run.state_path = path;
    run.stop = &s.flag;
    lethe_status st = lethe_unlearn_run(m, &f.t.ds, &f.forget, &f.t.retain, &cfg, &run, &r1,
                                        stop_at, &s);
    CHECK(st == LETHE_ERR_INTERRUPTED && run.saved_step == 17);
    CHECK_OK(lethe_model_copy(m, m0));
    run.stop = NULL;
    run.state_path = NULL;
    run.resume_path = path;
    CHECK_OK(lethe_unlearn_run(m, &f.t.ds, &f.forget, &f.t.retain, &cfg, &run, &r2, NULL, NULL));
    CHECK_MSG(same_theta(ref, m), "θ differs after resuming a gated run");
    CHECK(r2.unseen_rows == rr.unseen_rows && r2.unseen_gated == rr.unseen_gated &&
          r2.unseen_fwd_samples == rr.unseen_fwd_samples && r2.fwd_samples == rr.fwd_samples);
    int same_share = r2.steps == rr.steps;
    for (long t = 0; same_share && t < rr.steps; t++)
        same_share = memcmp(&r2.trace[t].unseen_share, &rr.trace[t].unseen_share,
                            sizeof(float)) == 0;
    CHECK_MSG(same_share, "the per-step share differs after resuming");
    /* The same state resumed with the gate off is another run: refused. */
    lethe_unlearn_config off = cfg;
    off.unseen = NULL;
    off.unseen_data = NULL;
    lethe_unlearn_result r3;
    CHECK_OK(lethe_model_copy(m, m0));
    CHECK(lethe_unlearn_run(m, &f.t.ds, &f.forget, &f.t.retain, &off, &run, &r3, NULL, NULL) !=
          LETHE_OK);
    lethe_unlearn_result_free(&rr);
    lethe_unlearn_result_free(&r2);
    lethe_model_free(ref);
    lethe_model_free(m);
    lethe_model_free(m0);
    fixture_free(&f);
}

/* A reference that cannot be used: one clear error, θ untouched. */
TEST(unseen_rejects_bad_references)
{
    toy probe;
    toy_images(&probe, N, NCLASS, HW, 4242, 0.1f, NF, 1000);
    lethe_model *m0 = untrained(&probe);
    toy_free(&probe);
    fixture f;
    CHECK(m0 != NULL);
    if (!m0 || !fixture_make(&f, m0, 1)) {
        CHECK(!"fixture");
        lethe_model_free(m0);
        return;
    }
    lethe_unlearn_config cfg;
    lethe_unlearn_result r;
    lethe_model *m = clone(m0, &f);
    lethe_subset empty = {0}, outside = {0};
    int32_t far = N;
    outside.idx = &far;
    outside.n = 1;
    lethe_dataset wide = f.ref;
    wide.nclass = NCLASS + 1;
    static const char *needles[] = {"empty", "outside", "does not fit"};
    for (int k = 0; k < 3; k++) {
        cfg_of(&cfg, "rl", 3, &f);
        if (k == 0) cfg.unseen = &empty;
        if (k == 1) cfg.unseen = &outside;
        if (k == 2) cfg.unseen_data = &wide;
        lethe_status st = lethe_unlearn(m, &f.t.ds, &f.forget, &f.t.retain, &cfg, &r, NULL, NULL);
        CHECK(st != LETHE_OK);
        CHECK_MSG(strstr(lethe_last_error(), needles[k]) != NULL, "%s", lethe_last_error());
        CHECK(same_theta(m, m0));
    }
    lethe_model_free(m);
    lethe_model_free(m0);
    fixture_free(&f);
}
