/* Interruption, resume and faults (docs/RELIABILITY.md): a run stopped
 * part-way and resumed from its run state ends bitwise where the
 * uninterrupted run ends, for training and for unlearning methods with λ,
 * a mask and private state; damaged or foreign states are refused; a
 * numeric fault keeps the last good state; a full disk leaves no file
 * behind; and the command line does the same with real signals, checks
 * its output paths first and writes identical files for the same command.
 *
 * The command-line tests run $LETHE_BIN (see test_cli.c) on a tiny MNIST-
 * format set written here. With LETHE_VALGRIND=1 (`make valgrind`) the
 * commands of resume_cli_pending_signal run under valgrind --leak-check=full
 * and its summary lines are printed. */
#include "test.h"
#include "cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "io/safetensors.h"
#include "lethe.h"

/* ------------------------------------------------------- library runs */

/* n images (1, side, side) in nclass classes: class k is a noisy random
 * binary prototype. */
static void make_set(lethe_dataset *ds, int n, int nclass, int side)
{
    memset(ds, 0, sizeof *ds);
    size_t px = (size_t)side * side;
    ds->n = n;
    ds->c = 1;
    ds->h = ds->w = side;
    ds->nclass = nclass;
    ds->mean[0] = 0.5f;
    ds->std[0] = 0.5f;
    snprintf(ds->name, sizeof ds->name, "toy");
    ds->pixels = malloc((size_t)n * px);        /* (N, 1, side, side) */
    ds->labels = malloc((size_t)n);             /* (N) */
    uint8_t proto[8][32 * 32];
    lethe_rng r;
    lethe_rng_seed(&r, 77);
    for (int c = 0; c < nclass; c++)
        for (size_t p = 0; p < px; p++) proto[c][p] = lethe_rng_below(&r, 2) ? 220 : 20;
    for (int i = 0; i < n; i++) {
        int y = i % nclass;
        ds->labels[i] = (uint8_t)y;
        for (size_t p = 0; p < px; p++) {
            uint8_t v = proto[y][p];
            ds->pixels[(size_t)i * px + p] = lethe_rng_uniform(&r) < 0.1f ? (uint8_t)(240 - v) : v;
        }
    }
}

/* Indices of ds with label == c (keep = 1) or != c (keep = 0). */
static lethe_subset by_class(const lethe_dataset *ds, int c, int keep)
{
    lethe_subset s = {malloc((size_t)ds->n * sizeof(int32_t)), 0};
    for (int i = 0; i < ds->n; i++)
        if ((ds->labels[i] == c) == keep) s.idx[s.n++] = i;
    return s;
}

static lethe_subset all_of(const lethe_dataset *ds)
{
    lethe_subset s = {malloc((size_t)ds->n * sizeof(int32_t)), (size_t)ds->n};
    for (int i = 0; i < ds->n; i++) s.idx[i] = i;
    return s;
}

/* θ and buffers bitwise equal. */
static int same_model(lethe_model *a, lethe_model *b)
{
    size_t na, nb, ba, bb;
    const float *ta = lethe_model_theta(a, &na), *tb = lethe_model_theta(b, &nb);
    const float *ua = lethe_model_buffers(a, &ba), *ub = lethe_model_buffers(b, &bb);
    return na == nb && ba == bb && memcmp(ta, tb, na * sizeof(float)) == 0 &&
           (ba == 0 || memcmp(ua, ub, ba * sizeof(float)) == 0);
}

/* The progress callback that asks for a stop after step `at`, as the
 * command line's signal handler does. */
typedef struct { long at; volatile sig_atomic_t flag; } stopper;

static void stop_at(const lethe_progress *p, void *ctx)
{
    stopper *s = ctx;
    if (p->step == s->at) s->flag = SIGINT;
}

static lethe_model *fresh(const char *arch, const lethe_dataset *ds, uint64_t seed)
{
    lethe_model *m = NULL;
    if (lethe_model_create(&m, arch, 1, ds->h, ds->w, ds->nclass) != LETHE_OK) return NULL;
    lethe_rng r;
    lethe_rng_seed(&r, seed);
    lethe_model_init(m, &r);
    return m;
}

static long meta_long(const char *path, const char *key)
{
    lethe_metadata md;
    if (lethe_runstate_read_meta(path, &md) != LETHE_OK) return -1;
    const char *v = lethe_meta_get(&md, key);
    return v ? atol(v) : -1;
}

TEST(resume_train_stop_hook_bitwise)
{
    lethe_dataset ds;
    make_set(&ds, 40, 3, 12);
    lethe_subset all = all_of(&ds);
    /* mlp with Nesterov momentum; resnet8 (batch-norm buffers) with AdamW;
     * mlp on augmented batches (crops drawn from the seed and the step). */
    static const struct { const char *arch; lethe_opt_kind opt; int augment; } cases[] = {
        {"mlp", LETHE_OPT_SGD, 0}, {"resnet8", LETHE_OPT_ADAMW, 0}, {"mlp", LETHE_OPT_SGD, 1}};
    for (int k = 0; k < 3; k++) {
        lethe_train_config cfg;
        lethe_train_config_default(&cfg);
        cfg.epochs = 3;         /* 40 images, batch 16: 3 steps an epoch, the last short */
        cfg.batch = 16;
        cfg.lr = 0.02f;
        cfg.seed = 11;
        cfg.optimizer = cases[k].opt;
        cfg.nesterov = cases[k].opt == LETHE_OPT_SGD;
        cfg.augment = cases[k].augment;
        lethe_model *ref = fresh(cases[k].arch, &ds, 1), *m = fresh(cases[k].arch, &ds, 2);
        lethe_model *ck = fresh(cases[k].arch, &ds, 3);
        CHECK(ref && m && ck);
        if (!ref || !m || !ck) goto next;
        CHECK_OK(lethe_train(ref, &ds, &all, &cfg, NULL, NULL));

        /* Checkpoints every step change nothing; the last state is at 9/9. */
        const char *path = test_path("train.state");
        lethe_run_control run;
        lethe_run_control_default(&run);
        run.state_path = path;
        run.every_steps = 1;
        run.save_final = 1;
        CHECK_OK(lethe_train_run(ck, &ds, &all, &cfg, &run, NULL, NULL));
        CHECK(run.step == 9 && run.saved_step == 9);
        CHECK_MSG(same_model(ref, ck), "%s: checkpointing changed the result", cases[k].arch);
        CHECK(meta_long(path, "step") == 9 && meta_long(path, "total") == 9);

        /* Stopped after step 4 (mid-epoch), resumed, stopped after 7, resumed. */
        stopper s = {4, 0};
        lethe_run_control_default(&run);
        run.state_path = path;
        run.stop = &s.flag;
        lethe_status st = lethe_train_run(m, &ds, &all, &cfg, &run, stop_at, &s);
        CHECK_MSG(st == LETHE_ERR_INTERRUPTED, "%s: %s", cases[k].arch, lethe_status_to_string(st));
        CHECK(run.step == 4 && run.saved_step == 4);
        CHECK(strstr(lethe_last_error(), "interrupted at step 4 of 9") &&
              strstr(lethe_last_error(), path));
        CHECK(meta_long(path, "step") == 4);
        lethe_model_free(m);
        m = fresh(cases[k].arch, &ds, 4);   /* θ from the state, not from init */
        s = (stopper){7, 0};
        run.resume_path = path;
        st = lethe_train_run(m, &ds, &all, &cfg, &run, stop_at, &s);
        CHECK(st == LETHE_ERR_INTERRUPTED && run.step == 7 && run.saved_step == 7);
        s = (stopper){-1, 0};
        CHECK_OK(lethe_train_run(m, &ds, &all, &cfg, &run, stop_at, &s));
        CHECK(run.step == 9 && run.saved_step == -1);
        CHECK_MSG(same_model(ref, m), "%s: the resumed run ends elsewhere", cases[k].arch);
        /* The state (step 7) named with augmentation switched the other way. */
        cfg.augment = !cfg.augment;
        s = (stopper){-1, 0};
        st = lethe_train_run(m, &ds, &all, &cfg, &run, stop_at, &s);
        CHECK_MSG(st == LETHE_ERR_MISMATCH && strstr(lethe_last_error(), "augment=1"),
                  "%s: resumed with augment %d: %s", cases[k].arch, cfg.augment,
                  lethe_last_error());
    next:
        lethe_model_free(ref);
        lethe_model_free(m);
        lethe_model_free(ck);
    }
    lethe_subset_free(&all);
    lethe_dataset_free(&ds);
}

static int copy_file(const char *from, const char *to, long cut);
static int flip_mask(const char *path, size_t count);

/* Every field of two unlearning results, timing aside. */
static int same_result(const lethe_unlearn_result *a, const lethe_unlearn_result *b)
{
    if (a->steps != b->steps || a->fwd_samples != b->fwd_samples ||
        a->bwd_samples != b->bwd_samples || a->batch != b->batch || a->eps_used != b->eps_used ||
        a->diag_steps != b->diag_steps || a->audit_probe_n != b->audit_probe_n ||
        a->audit_fwd_samples != b->audit_fwd_samples ||
        a->audit_first_violation != b->audit_first_violation || !a->trace || !b->trace)
        return 0;
    /* NaN where unset: compare the bits. */
    const double da[6] = {a->conflict_share, a->mean_cos, a->mean_lambda_gap,
                          a->audit_sum_delta, a->audit_sum_allowed, a->audit_probe_loss0};
    const double db[6] = {b->conflict_share, b->mean_cos, b->mean_lambda_gap,
                          b->audit_sum_delta, b->audit_sum_allowed, b->audit_probe_loss0};
    return memcmp(da, db, sizeof da) == 0 &&
           memcmp(a->trace, b->trace, (size_t)a->steps * sizeof *a->trace) == 0;
}

TEST(resume_unlearn_bitwise)
{
    lethe_dataset ds;
    make_set(&ds, 48, 3, 12);
    lethe_subset forget = by_class(&ds, 0, 1), retain = by_class(&ds, 0, 0);
    /* eupmu: λ and its controller, momentum, diagnostics and the audit;
     * salun: the mask (on resnet8, batch-norm buffers moving); eupmu-fast
     * and eupmu-lookahead: state kept between steps; scrub (its teacher
     * rebuilt from θ_0, stopped as the max steps end) and bs (the attacked
     * copy of θ_0); be (its shadow row and the row's momentum: extras 2,
     * momentum only). */
    static const struct { const char *method, *arch; int extras; } cases[] = {
        {"eupmu", "mlp", 1}, {"salun", "resnet8", 0}, {"eupmu-fast", "mlp", 0},
        {"eupmu-lookahead", "mlp", 1}, {"scrub", "resnet8", 0}, {"bs", "mlp", 0},
        {"be", "mlp", 2}};
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        /* An untrained model forgets as deterministically as a trained one. */
        lethe_model *m0 = fresh(cases[k].arch, &ds, 5);
        CHECK(m0 != NULL);
        if (!m0) continue;
        lethe_unlearn_config cfg;
        lethe_unlearn_config_default(&cfg);
        cfg.method = cases[k].method;
        cfg.steps = 6;
        cfg.batch = 8;
        cfg.lr = 0.05f;
        cfg.eps = 0.05f;
        cfg.seed = 3;
        if (cases[k].extras) cfg.momentum = 0.9f;
        if (cases[k].extras == 1) {
            cfg.diagnostics = 1;
            cfg.audit = 1;
            cfg.audit_probe = 8;
        }
        lethe_model *ref = fresh(cases[k].arch, &ds, 9), *m = fresh(cases[k].arch, &ds, 9);
        CHECK_OK(lethe_model_copy(ref, m0));
        CHECK_OK(lethe_model_copy(m, m0));
        lethe_unlearn_result rr, r1, r2;
        CHECK_OK(lethe_unlearn(ref, &ds, &forget, &retain, &cfg, &rr, NULL, NULL));

        const char *path = test_path("unlearn.state");
        stopper s = {3, 0};
        lethe_run_control run;
        lethe_run_control_default(&run);
        run.state_path = path;
        run.stop = &s.flag;
        lethe_status st = lethe_unlearn_run(m, &ds, &forget, &retain, &cfg, &run, &r1, stop_at, &s);
        CHECK_MSG(st == LETHE_ERR_INTERRUPTED && run.step == 3 && run.saved_step == 3,
                  "%s: %s at %ld", cases[k].method, lethe_status_to_string(st), run.step);
        CHECK(r1.trace == NULL);
        /* Resumed from the original model, as the command line does (the
         * state holds a hash of it: another model is refused). θ, λ, the
         * mask and the rest come from the state: a state whose mask is
         * changed must end elsewhere. */
        run.stop = NULL;
        run.state_path = NULL;
        if (strcmp(cases[k].method, "salun") == 0) {
            const char *flip = test_path("flipped.state");
            CHECK(copy_file(path, flip, -1) && flip_mask(flip, 5000));
            CHECK_OK(lethe_model_copy(m, m0));
            run.resume_path = flip;
            CHECK_OK(lethe_unlearn_run(m, &ds, &forget, &retain, &cfg, &run, &r2, NULL, NULL));
            CHECK_MSG(!same_model(ref, m), "salun: a changed mask in the state changed nothing");
            lethe_unlearn_result_free(&r2);
        }
        CHECK_OK(lethe_model_copy(m, m0));
        run.resume_path = path;
        CHECK_OK(lethe_unlearn_run(m, &ds, &forget, &retain, &cfg, &run, &r2, NULL, NULL));
        CHECK(run.step == 6);
        CHECK_MSG(same_model(ref, m), "%s: θ differs after resuming", cases[k].method);
        CHECK_MSG(same_result(&rr, &r2), "%s: the result differs after resuming",
                  cases[k].method);
        if (cases[k].extras == 1) CHECK(r2.diag_steps == 6 && r2.audit_probe_n == 8);
        lethe_unlearn_result_free(&rr);
        lethe_unlearn_result_free(&r2);
        lethe_model_free(ref);
        lethe_model_free(m);
        lethe_model_free(m0);
    }
    lethe_subset_free(&forget);
    lethe_subset_free(&retain);
    lethe_dataset_free(&ds);
}

/* Overwrite float `at` of tensor `name` in a safetensors file with v. */
static int poke_float(const char *path, const char *name, size_t at, float v)
{
    st_file f;
    if (st_read(&f, path, 0) != LETHE_OK) return 0;
    const st_entry *e = st_find(&f, name);
    long off = -1;
    if (e && at < e->numel) {
        FILE *h = fopen(path, "rb");
        uint8_t len8[8];
        if (h && fread(len8, 1, 8, h) == 8) {
            uint64_t hl = 0;
            for (int i = 7; i >= 0; i--) hl = hl << 8 | len8[i];
            off = (long)(8 + hl + e->begin + 4 * at);
        }
        if (h) fclose(h);
    }
    st_free(&f);
    if (off < 0) return 0;
    FILE *h = fopen(path, "r+b");
    int ok = h && fseek(h, off, SEEK_SET) == 0 && fwrite(&v, 4, 1, h) == 1;
    if (h) ok &= fclose(h) == 0;
    return ok;
}

/* The first `count` entries of the F32 tensor "mask" flipped (0 ↔ 1). */
static int flip_mask(const char *path, size_t count)
{
    st_file f;
    if (st_read(&f, path, 0) != LETHE_OK) return 0;
    const st_entry *e = st_find(&f, "mask");
    long off = -1;
    if (e && count <= e->numel) {
        FILE *h = fopen(path, "rb");
        uint8_t len8[8];
        if (h && fread(len8, 1, 8, h) == 8) {
            uint64_t hl = 0;
            for (int i = 7; i >= 0; i--) hl = hl << 8 | len8[i];
            off = (long)(8 + hl + e->begin);
        }
        if (h) fclose(h);
    }
    st_free(&f);
    float *v = malloc(count * sizeof(float));
    FILE *h = off >= 0 && v ? fopen(path, "r+b") : NULL;
    int ok = h && fseek(h, off, SEEK_SET) == 0 && fread(v, sizeof(float), count, h) == count;
    for (size_t i = 0; ok && i < count; i++) v[i] = 1.0f - v[i];
    ok = ok && fseek(h, off, SEEK_SET) == 0 && fwrite(v, sizeof(float), count, h) == count;
    if (h) ok &= fclose(h) == 0;
    free(v);
    return ok;
}

static int copy_file(const char *from, const char *to, long cut)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int ok = a && b;
    long n = 0;
    int ch;
    while (ok && (ch = fgetc(a)) != EOF && (cut < 0 || n < cut)) {
        ok = fputc(ch, b) != EOF;
        n++;
    }
    if (a) fclose(a);
    if (b) ok &= fclose(b) == 0;
    return ok;
}

TEST(resume_rejects_bad_states)
{
    lethe_dataset ds;
    make_set(&ds, 40, 3, 12);
    lethe_subset all = all_of(&ds), part = {all.idx, 30};
    lethe_subset forget = by_class(&ds, 0, 1), retain = by_class(&ds, 0, 0);
    lethe_train_config cfg;
    lethe_train_config_default(&cfg);
    cfg.epochs = 2;
    cfg.batch = 16;
    lethe_model *m = fresh("mlp", &ds, 1);
    const char *path = test_path("bad.state"), *bad = test_path("bad-copy.state");
    stopper s = {4, 0};
    lethe_run_control run;
    lethe_run_control_default(&run);
    run.state_path = path;
    run.stop = &s.flag;
    CHECK(lethe_train_run(m, &ds, &all, &cfg, &run, stop_at, &s) == LETHE_ERR_INTERRUPTED);
    lethe_metadata md;
    CHECK_OK(lethe_runstate_read_meta(path, &md));
    const char *kind = lethe_meta_get(&md, "kind");
    CHECK(kind && strcmp(kind, "train") == 0);

    lethe_run_control_default(&run);
    run.resume_path = path;
    /* Another recipe, another subset, another kind of run. */
    lethe_train_config other = cfg;
    other.lr = 0.01f;
    lethe_status st = lethe_train_run(m, &ds, &all, &other, &run, NULL, NULL);
    CHECK_MSG(st == LETHE_ERR_MISMATCH && strstr(lethe_last_error(), "lr=0.0500000007") &&
                  strstr(lethe_last_error(), "lr=0.00999999978"),
              "%s: %s", lethe_status_to_string(st), lethe_last_error());
    st = lethe_train_run(m, &ds, &part, &cfg, &run, NULL, NULL);
    CHECK_MSG(st == LETHE_ERR_MISMATCH && strstr(lethe_last_error(), "subset="), "%s",
              lethe_last_error());
    lethe_unlearn_config uc;
    lethe_unlearn_config_default(&uc);
    uc.steps = 2;
    uc.batch = 8;
    lethe_unlearn_result res;
    st = lethe_unlearn_run(m, &ds, &forget, &retain, &uc, &run, &res, NULL, NULL);
    CHECK_MSG(st == LETHE_ERR_MISMATCH && strstr(lethe_last_error(), "'train' run state"), "%s",
              lethe_last_error());

    /* An unlearning state resumed from another starting model. */
    const char *upath = test_path("bad-u.state");
    lethe_model *u = fresh("mlp", &ds, 5);
    s = (stopper){1, 0};
    lethe_run_control_default(&run);
    run.state_path = upath;
    run.stop = &s.flag;
    CHECK(lethe_unlearn_run(u, &ds, &forget, &retain, &uc, &run, &res, stop_at, &s) ==
          LETHE_ERR_INTERRUPTED);
    lethe_model_free(u);
    u = fresh("mlp", &ds, 6);
    lethe_run_control_default(&run);
    run.resume_path = upath;
    st = lethe_unlearn_run(u, &ds, &forget, &retain, &uc, &run, &res, NULL, NULL);
    CHECK_MSG(st == LETHE_ERR_MISMATCH && strstr(lethe_last_error(), "theta0="), "%s",
              lethe_last_error());
    lethe_model_free(u);

    /* Damaged: cut short; a data order that is not a permutation; a
     * position past the end; a model checkpoint instead of a state. */
    run.resume_path = bad;
    CHECK(copy_file(path, bad, 4000));
    st = lethe_train_run(m, &ds, &all, &cfg, &run, NULL, NULL);
    CHECK_MSG(st == LETHE_ERR_FORMAT && strstr(lethe_last_error(), "bad-copy.state"), "%s: %s",
              lethe_status_to_string(st), lethe_last_error());
    CHECK(copy_file(path, bad, -1) && poke_float(bad, "data.order", 1, 0.0f) &&
          poke_float(bad, "data.order", 0, 0.0f));
    st = lethe_train_run(m, &ds, &all, &cfg, &run, NULL, NULL);
    CHECK_MSG(st == LETHE_ERR_FORMAT && strstr(lethe_last_error(), "not a permutation"), "%s",
              lethe_last_error());
    CHECK(copy_file(path, bad, -1) && poke_float(bad, "data.order", 2, 40.0f));
    st = lethe_train_run(m, &ds, &all, &cfg, &run, NULL, NULL);
    CHECK_MSG(st == LETHE_ERR_FORMAT && strstr(lethe_last_error(), "data.order"), "%s",
              lethe_last_error());
    CHECK_OK(lethe_checkpoint_save(m, NULL, bad));
    st = lethe_train_run(m, &ds, &all, &cfg, &run, NULL, NULL);
    CHECK_MSG(st == LETHE_ERR_FORMAT && strstr(lethe_last_error(), "not a Lethe run state"), "%s",
              lethe_last_error());
    CHECK(lethe_runstate_read_meta(bad, &md) == LETHE_ERR_FORMAT);
    lethe_model_free(m);
    lethe_subset_free(&all);
    lethe_subset_free(&forget);
    lethe_subset_free(&retain);
    lethe_dataset_free(&ds);
}

TEST(resume_numeric_fault_keeps_last_state)
{
    lethe_dataset ds;
    make_set(&ds, 40, 3, 12);
    lethe_subset all = all_of(&ds), forget = by_class(&ds, 0, 1), retain = by_class(&ds, 0, 0);
    const char *path = test_path("fault.state");
    /* Training at lr 1e30: step 1 is finite, a later one is not. */
    lethe_train_config cfg;
    lethe_train_config_default(&cfg);
    cfg.epochs = 3;
    cfg.batch = 8;
    cfg.lr = 1e30f;
    lethe_model *m = fresh("mlp", &ds, 1);
    lethe_run_control run;
    lethe_run_control_default(&run);
    run.state_path = path;
    run.every_steps = 1;
    lethe_status st = lethe_train_run(m, &ds, &all, &cfg, &run, NULL, NULL);
    long bad_step = -1;
    const char *msg = lethe_last_error();
    CHECK_MSG(st == LETHE_ERR_NUMERIC && sscanf(msg, "step %ld:", &bad_step) == 1 && bad_step > 1,
              "%s: %s", lethe_status_to_string(st), msg);
    CHECK_MSG(strstr(msg, " is NaN") || strstr(msg, " is infinite"), "%s", msg);
    /* The state on disk is the last good step's, and it replays the fault. */
    CHECK(run.saved_step == bad_step - 1 && meta_long(path, "step") == bad_step - 1);
    run.resume_path = path;
    char first[512];
    snprintf(first, sizeof first, "%s", msg);
    st = lethe_train_run(m, &ds, &all, &cfg, &run, NULL, NULL);
    CHECK_MSG(st == LETHE_ERR_NUMERIC && strcmp(lethe_last_error(), first) == 0,
              "resumed: %s", lethe_last_error());

    /* Unlearning: gradient ascent at lr 1e30 (finite at step 1). */
    CHECK(remove(path) == 0);
    lethe_unlearn_config uc;
    lethe_unlearn_config_default(&uc);
    uc.method = "ga";
    uc.lr = 1e30f;
    uc.steps = 6;
    uc.batch = 8;
    lethe_run_control_default(&run);
    run.state_path = path;
    run.every_steps = 1;
    lethe_unlearn_result res;
    lethe_model *u = fresh("mlp", &ds, 1);
    st = lethe_unlearn_run(u, &ds, &forget, &retain, &uc, &run, &res, NULL, NULL);
    msg = lethe_last_error();
    bad_step = -1;
    CHECK_MSG(st == LETHE_ERR_NUMERIC && sscanf(msg, "step %ld:", &bad_step) == 1 && bad_step > 1,
              "%s", msg);
    CHECK_MSG(run.saved_step == bad_step - 1 && meta_long(path, "step") == bad_step - 1,
              "saved %ld, fault at %ld: %s", run.saved_step, bad_step, msg);
    CHECK(res.trace == NULL);
    lethe_model_free(m);
    lethe_model_free(u);
    lethe_subset_free(&all);
    lethe_subset_free(&forget);
    lethe_subset_free(&retain);
    lethe_dataset_free(&ds);
}

/* path.tmp.PID → /dev/full, where the atomic writer of process pid makes
 * its temporary file: every write there fails with ENOSPC. */
static int full_disk_at(const char *path, long pid)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, pid);
    return symlink("/dev/full", tmp) == 0;
}

static int tmp_link_left(const char *path, long pid)
{
    char tmp[600];
    struct stat sb;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, pid);
    return lstat(tmp, &sb) == 0;
}

TEST(resume_full_disk_leaves_old_file)
{
    if (!cli_t_exists("/dev/full")) {
        test_fail(__FILE__, __LINE__, "no /dev/full on this system: full-disk test skipped");
        return;
    }
    const char *path = test_path("full.bin");
    FILE *f = fopen(path, "wb");
    CHECK(f && fputs("old contents", f) >= 0 && fclose(f) == 0);
    static char big[1 << 20];
    size_t sizes[2] = {10, sizeof big};     /* buffered (fflush fails) and direct (fwrite) */
    for (int i = 0; i < 2; i++) {
        CHECK(full_disk_at(path, getpid()));
        lethe_status st = lethe_write_file_atomic(path, big, sizes[i]);
        CHECK_MSG(st == LETHE_ERR_IO && strstr(lethe_last_error(), path) &&
                      strstr(lethe_last_error(), "write failed"),
                  "%zu bytes: %s: %s", sizes[i], lethe_status_to_string(st), lethe_last_error());
        CHECK(!tmp_link_left(path, getpid()));
        char buf[64] = "";
        f = fopen(path, "rb");
        CHECK(f && fgets(buf, sizeof buf, f) && strcmp(buf, "old contents") == 0);
        if (f) fclose(f);
    }

    /* A run whose state cannot be written stops there, naming the file. */
    lethe_dataset ds;
    make_set(&ds, 24, 3, 12);
    lethe_subset all = all_of(&ds);
    lethe_train_config cfg;
    lethe_train_config_default(&cfg);
    cfg.epochs = 1;
    cfg.batch = 8;
    lethe_model *m = fresh("mlp", &ds, 1);
    const char *state = test_path("full.state");
    lethe_run_control run;
    lethe_run_control_default(&run);
    run.state_path = state;
    run.every_steps = 2;
    CHECK(full_disk_at(state, getpid()));
    lethe_status st = lethe_train_run(m, &ds, &all, &cfg, &run, NULL, NULL);
    CHECK_MSG(st == LETHE_ERR_IO && strstr(lethe_last_error(), "full.state"), "%s: %s",
              lethe_status_to_string(st), lethe_last_error());
    CHECK(run.step == 2 && run.saved_step == -1);
    CHECK(!cli_t_exists(state) && !tmp_link_left(state, getpid()));
    lethe_model_free(m);
    lethe_subset_free(&all);
    lethe_dataset_free(&ds);
}

/* ------------------------------------------------------- command line */

#define NTRAIN 300
#define NTEST 100
#define SIDE 28

typedef cli_t_path_buf path_buf;
static const char *tpath(path_buf buf, const char *name)
{
    return cli_t_path(buf, "resume", name);
}

/* The MNIST-format folder of these tests (made once): raw files, the
 * prototypes and both splits from one noise stream. */
static const char *cli_data(path_buf dir)
{
    static const cli_t_mnist spec = {NTRAIN, NTEST, SIDE, 5, 0, 0, 0, 0};
    cli_t_mkdir("resume");
    tpath(dir, "mnist");
    path_buf done;
    if (cli_t_exists(tpath(done, "mnist/t10k-labels-idx1-ubyte"))) return dir;
    CHECK(cli_t_write_mnist(dir, &spec));
    return dir;
}

static int valgrind_on(void)
{
    const char *v = getenv("LETHE_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

/* A child running `lethe ARGS…` (argv NULL-terminated, without "lethe"),
 * stdout and stderr to files. SP_BLOCK: start it with SIGINT and SIGTERM
 * blocked (lethe unblocks them once its handler is in place, so a signal
 * sent at once arrives then). SP_VALGRIND: under valgrind, its log to
 * vglog, one thread. SP_ONE_THREAD: OMP_NUM_THREADS=1. hold: the child
 * waits for a byte on this pipe before it runs lethe (−1: no wait). */
typedef struct { pid_t pid; path_buf out, err, vglog; } child;
enum { SP_BLOCK = 1, SP_VALGRIND = 2, SP_ONE_THREAD = 4 };

static int spawn(child *c, const char *tag, char **args, int flags, int hold)
{
    int block = flags & SP_BLOCK, vg = flags & SP_VALGRIND;
    tpath(c->out, "stdout.txt");
    snprintf(c->err, sizeof c->err, "%s/resume/stderr-%s.txt", test_tmpdir(), tag);
    snprintf(c->vglog, sizeof c->vglog, "%s/resume/valgrind-%s.txt", test_tmpdir(), tag);
    char *argv[96];
    int n = 0;
    char logopt[460];
    if (vg) {
        snprintf(logopt, sizeof logopt, "--log-file=%s", c->vglog);
        argv[n++] = "valgrind";
        argv[n++] = "--leak-check=full";
        argv[n++] = "--error-exitcode=1";
        argv[n++] = logopt;
    }
    argv[n++] = getenv("LETHE_BIN");
    while (*args && n < 94) argv[n++] = *args++;
    argv[n] = NULL;
    fflush(NULL);
    /* Blocked in the parent across fork, so that a signal sent right after
     * fork waits in the child instead of killing it before its exec. */
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigprocmask(SIG_BLOCK, &sigs, &old);
    c->pid = fork();
    if (c->pid != 0) sigprocmask(SIG_SETMASK, &old, NULL);
    if (c->pid < 0) return 0;
    if (c->pid == 0) {
        if (hold >= 0) {
            char b;
            if (read(hold, &b, 1) != 1) _exit(126);
        }
        int o = open(c->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(c->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
        if (vg || (flags & SP_ONE_THREAD)) setenv("OMP_NUM_THREADS", "1", 1);
        sigset_t set;
        sigemptyset(&set);
        if (block) {
            sigaddset(&set, SIGINT);
            sigaddset(&set, SIGTERM);
        }
        sigprocmask(SIG_SETMASK, &set, NULL);
        /* A suite started in the background (`make test &`) ignores SIGINT,
         * and lethe rightly keeps an inherited SIG_IGN (nohup): the child
         * must start from the default action to be interruptible. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execvp(argv[0], argv);
        _exit(127);
    }
    return 1;
}

/* The exit status, or 1000 + the signal that ended it. */
static int reap(child *c)
{
    int st;
    while (waitpid(c->pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : -1;
}

/* Run to the end; stderr text in *err (caller frees) if err. */
static int run_args_with(const char *tag, char **args, char **err, int flags)
{
    if (err) *err = NULL;
    child c;
    if (!spawn(&c, tag, args, flags, -1)) return -1;
    int rc = reap(&c);
    if (err) *err = cli_t_slurp(c.err, NULL);
    return rc;
}

static int run_args(const char *tag, char **args, char **err)
{
    return run_args_with(tag, args, err, 0);
}

/* Split "a b c" on spaces into argv (words without spaces; paths here have none). */
typedef struct { char buf[4096]; char *v[96]; } args_t;
static char **words(args_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->buf, sizeof a->buf, fmt, ap);
    va_end(ap);
    int n = 0;
    for (char *tok = strtok(a->buf, " "); tok && n < 95; tok = strtok(NULL, " ")) a->v[n++] = tok;
    a->v[n] = NULL;
    return a->v;
}

static int same_bytes(const char *a, const char *b)
{
    size_t la, lb;
    char *x = cli_t_slurp(a, &la), *y = cli_t_slurp(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* A report without its wall-clock fields: train's "timing", unlearn's
 * "run.seconds", and the stamp of every report that names the run (its
 * command line, with its own output paths, and "created") (caller frees;
 * NULL if not JSON). */
static char *report_sans_timing(const char *path)
{
    char *text = cli_t_slurp(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!root) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(root, "timing");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "command_line");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "created");
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "run"),
                                            "seconds");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static int same_report(const char *a, const char *b)
{
    char *x = report_sans_timing(a), *y = report_sans_timing(b);
    int same = x && y && strcmp(x, y) == 0;
    free(x);
    free(y);
    return same;
}

/* The last line of s (static copy). */
static const char *last_line(const char *s)
{
    static char line[1024];
    line[0] = '\0';
    if (!s) return line;
    size_t n = strlen(s);
    while (n && s[n - 1] == '\n') n--;
    size_t b = n;
    while (b && s[b - 1] != '\n') b--;
    snprintf(line, sizeof line, "%.*s", (int)(n - b), s + b);
    return line;
}

/* A trained mlp for the unlearning runs (made once). */
static const char *cli_model(path_buf model, const char *data)
{
    tpath(model, "base.safetensors");
    if (cli_t_exists(model)) return model;
    args_t a;
    char *err = NULL;
    int rc = run_args("base", words(&a, "train --arch mlp --data mnist --data-dir %s --epochs 1 "
                                        "--batch 32 --quiet --out %s", data, model), &err);
    CHECK_MSG(rc == 0, "train exited %d: %s", rc, err ? err : "");
    free(err);
    return model;
}

/* Start `args` with --state S, signal it once S appears (its first
 * periodic checkpoint), and expect the interruption protocol: exit 128 +
 * sig, the one line naming the state, no output written. Then resume and
 * expect the files of the uninterrupted run (ref_out, ref_rep). These runs
 * use one thread: OpenMP threads on a busy machine can slow such small
 * steps a hundredfold, and the run must outlast the signal. */
static void interrupt_and_resume(const char *cmd, const char *common, const char *out,
                                 const char *rep, const char *ref_out, const char *ref_rep,
                                 int sig)
{
    path_buf sb;
    char state[460];
    snprintf(state, sizeof state, "%s", tpath(sb, "run.state"));
    remove(state);
    remove(out);
    remove(rep);
    args_t a;
    child c;
    CHECK(spawn(&c, cmd, words(&a, "%s %s --out %s --report %s --state %s --checkpoint-every 40",
                               cmd, common, out, rep, state), SP_ONE_THREAD, -1));
    struct timespec nap = {0, 500000};
    for (int i = 0; i < 60000 && !cli_t_exists(state); i++) {
        if (waitpid(c.pid, NULL, WNOHANG) == c.pid) {   /* ended (and reaped) early */
            c.pid = -1;
            break;
        }
        nanosleep(&nap, NULL);
    }
    CHECK_MSG(c.pid > 0, "lethe %s ended before its first checkpoint", cmd);
    if (c.pid <= 0) return;
    kill(c.pid, sig);
    int rc = reap(&c);
    char *err = cli_t_slurp(c.err, NULL);
    CHECK_MSG(rc == 128 + sig, "lethe %s got signal %d: exit %d (the run may have ended before "
              "the signal: make it longer): %s", cmd, sig, rc, err ? err : "");
    long step = -1;
    char want[1400];
    const char *line = last_line(err);
    CHECK_MSG(sscanf(line, "lethe %*s interrupted at step %ld;", &step) == 1 && step >= 40,
              "interruption line: '%s'", line);
    snprintf(want, sizeof want, "lethe %s: interrupted at step %ld; state saved to %s; resume "
             "with --resume %s", cmd, step, state, state);
    CHECK_MSG(strcmp(line, want) == 0, "'%s'\nexpected '%s'", line, want);
    CHECK_MSG(cli_t_count_lines(strstr(err ? err : "", "lethe ")) == 1, "stderr: %s", err ? err : "");
    free(err);
    CHECK(!cli_t_exists(out) && !cli_t_exists(rep) && cli_t_exists(state) && cli_t_temp_files_left("resume") == 0);
    CHECK(meta_long(state, "step") == step);

    /* Resumed (without periodic checkpoints: they do not change results). */
    rc = run_args_with(cmd, words(&a, "%s %s --out %s --report %s --state %s --resume %s "
                                  "--checkpoint-every 0", cmd, common, out, rep, state, state),
                       &err, SP_ONE_THREAD);
    CHECK_MSG(rc == 0, "resumed lethe %s exited %d: %s", cmd, rc, err ? err : "");
    CHECK_MSG(err && strstr(err, "resuming from"), "no resume note: %s", err ? err : "");
    free(err);
    CHECK_MSG(same_bytes(out, ref_out), "lethe %s: resumed checkpoint differs from the "
              "uninterrupted one", cmd);
    CHECK_MSG(same_report(rep, ref_rep), "lethe %s: resumed report differs", cmd);
    CHECK_MSG(!cli_t_exists(state), "the state was not removed after the run");
}

TEST(resume_cli_signal_then_resume)
{
    if (!cli_t_have_bin()) return;
    path_buf db, mb, ob, rb, xb, yb;
    const char *data = cli_data(db), *model = cli_model(mb, data);
    const char *out = tpath(ob, "t.safetensors"), *rep = tpath(rb, "t.json");
    const char *ref = tpath(xb, "t-ref.safetensors"), *refr = tpath(yb, "t-ref.json");
    args_t a;
    char *err;
    char common[1200];
    /* 38 steps an epoch, 760 in all: long enough to be caught after step 40. */
    snprintf(common, sizeof common, "--arch mlp --data mnist --data-dir %s --epochs 20 --batch 8 "
             "--seed 5 --momentum 0.5 --quiet", data);
    int rc = run_args_with("tref", words(&a, "train %s --out %s --report %s", common, ref, refr),
                           &err, SP_ONE_THREAD);
    CHECK_MSG(rc == 0, "train exited %d: %s", rc, err ? err : "");
    free(err);
    interrupt_and_resume("train", common, out, rep, ref, refr, SIGINT);

    snprintf(common, sizeof common, "--model %s --data-dir %s --forget class:3 --method salun "
             "--steps 400 --batch 8 --seed 2 --quiet --no-eval", model, data);
    rc = run_args_with("uref", words(&a, "unlearn %s --force --out %s --report %s", common, ref,
                                     refr), &err, SP_ONE_THREAD);
    CHECK_MSG(rc == 0, "unlearn exited %d: %s", rc, err ? err : "");
    free(err);
    interrupt_and_resume("unlearn", common, out, rep, ref, refr, SIGTERM);
}

TEST(resume_cli_same_command_same_files)
{
    if (!cli_t_have_bin()) return;
    path_buf db, mb, o1, o2, r1, r2;
    const char *data = cli_data(db), *model = cli_model(mb, data);
    const char *out[2] = {tpath(o1, "same1.safetensors"), tpath(o2, "same2.safetensors")};
    const char *rep[2] = {tpath(r1, "same1.json"), tpath(r2, "same2.json")};
    const char *cmds[2] = {"train --arch mlp --data mnist --epochs 1 --batch 16 --seed 9",
                           "unlearn --forget class:1 --method eupmu --steps 12 --batch 16 "
                           "--diagnostics --audit-probe 20 --before"};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 2; i++) {
            args_t a;
            char *err = NULL;
            int rc = run_args("same", words(&a, "%s --data-dir %s %s %s --quiet --force --out %s "
                                           "--report %s", cmds[k], data, k ? "--model" : "",
                                           k ? model : "", out[i], rep[i]), &err);
            CHECK_MSG(rc == 0, "%s: exit %d: %s", cmds[k], rc, err ? err : "");
            free(err);
        }
        CHECK_MSG(same_bytes(out[0], out[1]), "%s: checkpoints differ", cmds[k]);
        CHECK_MSG(same_report(rep[0], rep[1]), "%s: reports differ beyond timing", cmds[k]);
        /* Only the timing may differ: the reports hold the metrics. */
        char *text = cli_t_slurp(rep[0], NULL);
        CHECK(text && strstr(text, k ? "\"MIA_Eff\"" : "\"test_accuracy\""));
        free(text);
    }
}

/* Bad output paths fail at once: one line naming the option and the path,
 * before the (missing) data set is even looked at; nothing is created. */
TEST(resume_cli_output_paths_checked_first)
{
    if (!cli_t_have_bin()) return;
    path_buf db, mb, fb;
    const char *data = cli_data(db), *model = cli_model(mb, data);
    const char *folder = tpath(fb, "");
    static const struct { const char *cmd, *opts, *needle; } cases[] = {
        {"train", "--out %s/no-such-dir/m.safetensors", "--out"},
        {"train", "--out %s", "is a folder"},
        {"train", "--out %s/x.safetensors --report %s/nope/r.json", "--report"},
        {"train", "--out %s/x.safetensors --state %s/nope/s.state", "--state"},
        {"train", "--out %s/x.safetensors --state %s", "is a folder"},
        {"train", "--out %s/x.safetensors --resume %s/none.state", "--resume"},
        {"unlearn", "--out %s/nope/u.safetensors", "--out"},
        {"unlearn", "--report %s", "is a folder"},
        {"unlearn", "--out %s/u.safetensors --state %s/nope/s", "--state"},
        {"unlearn", "--out %s/u.safetensors --utility-budget 1 --resume %s/x", "not checkpointed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char opts[1200];
        snprintf(opts, sizeof opts, cases[i].opts, folder, folder);
        char base[600];
        if (strcmp(cases[i].cmd, "train") == 0) snprintf(base, sizeof base, "--arch mlp --data mnist");
        else snprintf(base, sizeof base, "--forget class:0 --model %s", model);
        args_t a;
        char *err = NULL;
        int rc = run_args("paths", words(&a, "%s %s %s --data-dir %s/no-such-data", cases[i].cmd,
                                         base, opts, folder), &err);
        CHECK_MSG(rc != 0 && cli_t_count_lines(err) == 1 && err && strncmp(err, "lethe ", 6) == 0 &&
                      strstr(err, cases[i].needle) && !strstr(err, "no-such-data"),
                  "%s %s: exit %d: %s", cases[i].cmd, opts, rc, err ? err : "");
        free(err);
    }
    path_buf xb, ub;
    CHECK(!cli_t_exists(tpath(xb, "x.safetensors")) && !cli_t_exists(tpath(ub, "u.safetensors")));
    CHECK(cli_t_temp_files_left("resume") == 0);
    if (geteuid() != 0) {   /* root writes anywhere: no permission case to test */
        path_buf rob;
        const char *ro = tpath(rob, "read-only");
        mkdir(ro, 0555);
        chmod(ro, 0555);
        args_t a;
        char *err = NULL;
        int rc = run_args("paths", words(&a, "train --arch mlp --data mnist --data-dir %s --out "
                                         "%s/m.safetensors", data, ro), &err);
        CHECK_MSG(rc != 0 && err && strstr(err, "cannot write into folder"), "%s", err ? err : "");
        free(err);
    }
}

/* A diverging run: one line naming the step, a non-zero exit; the output
 * file already there and the last good state are left as they were. */
TEST(resume_cli_numeric_fault_keeps_files)
{
    if (!cli_t_have_bin()) return;
    path_buf db, mb, ob, sb;
    const char *data = cli_data(db), *model = cli_model(mb, data);
    const char *out = tpath(ob, "fault.safetensors"), *state = tpath(sb, "fault.state");
    static const char *cmds[2] = {
        "train --arch mlp --data mnist --epochs 2 --batch 16 --lr 100 --wd 1",
        "unlearn --forget class:0 --method eupmu --loss ga --lambda0 0 --lr 1000 --steps 30 "
        "--batch 16 --no-eval"};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(out, "wb");
        CHECK(f && fputs("an earlier model", f) >= 0 && fclose(f) == 0);
        remove(state);
        args_t a;
        char *err = NULL;
        int rc = run_args("fault", words(&a, "%s --data-dir %s %s %s --quiet --force --out %s "
                                         "--state %s --checkpoint-every 1", cmds[k], data,
                                         k ? "--model" : "", k ? model : "", out, state), &err);
        const char *line = last_line(err);
        long step = -1;
        char what[200] = "";
        CHECK_MSG(rc == 1 && sscanf(line, "lethe %*s step %ld: %199[^;]", &step, what) == 2 &&
                      (strstr(what, " is NaN") || strstr(what, " is infinite")),
                  "%s: exit %d: %s", cmds[k], rc, err ? err : "");
        free(err);
        char *text = cli_t_slurp(out, NULL);
        CHECK_MSG(text && strcmp(text, "an earlier model") == 0, "%s: --out was overwritten",
                  cmds[k]);
        free(text);
        if (step > 1) CHECK_MSG(meta_long(state, "step") == step - 1, "%s: state at %ld, fault "
                                "at %ld", cmds[k], meta_long(state, "step"), step);
        CHECK(cli_t_temp_files_left("resume") == 0);
    }
}

/* Disk full: the temporary file of the state (or of --out) is /dev/full.
 * The child waits on a pipe until the link for its pid is in place. */
TEST(resume_cli_full_disk)
{
    if (!cli_t_have_bin()) return;
    if (!cli_t_exists("/dev/full")) {
        test_fail(__FILE__, __LINE__, "no /dev/full: test skipped");
        return;
    }
    path_buf db, ob, sb;
    const char *data = cli_data(db);
    const char *out = tpath(ob, "full.safetensors"), *state = tpath(sb, "full.state");
    for (int k = 0; k < 2; k++) {
        remove(out);
        remove(state);
        int fd[2];
        CHECK(pipe(fd) == 0);
        args_t a;
        child c;
        CHECK(spawn(&c, "full", words(&a, "train --arch mlp --data mnist --data-dir %s --epochs 1 "
                                      "--batch 32 --quiet --out %s --state %s --checkpoint-every "
                                      "%d", data, out, state, k ? 0 : 3), 0, fd[0]));
        close(fd[0]);
        CHECK(full_disk_at(k ? out : state, c.pid));
        CHECK(write(fd[1], "x", 1) == 1);
        close(fd[1]);
        int rc = reap(&c);
        char *err = cli_t_slurp(c.err, NULL);
        const char *line = last_line(err);
        CHECK_MSG(rc == 1 && strstr(line, k ? out : state) && strstr(line, "write failed"),
                  "exit %d: %s", rc, err ? err : "");
        free(err);
        CHECK(!cli_t_exists(out) && !tmp_link_left(k ? out : state, c.pid) && cli_t_temp_files_left("resume") == 0);
        CHECK(!cli_t_exists(state));
    }
}

/* Print a valgrind log's summary lines; fail on any error or leak. */
static void valgrind_clean(const char *path, const char *what, const char *tag)
{
    char *log = cli_t_slurp(path, NULL);
    const char *keys[3] = {"ERROR SUMMARY:", "definitely lost:", "indirectly lost:"};
    fprintf(stdout, "valgrind lethe %s (%s):\n", what, tag);
    for (int j = 0; j < 3; j++) {
        const char *p = log ? strstr(log, keys[j]) : NULL;
        if (p) fprintf(stdout, "    %.*s\n", (int)strcspn(p, "\n"), p);
    }
    CHECK_MSG(log && strstr(log, "ERROR SUMMARY: 0 errors"), "valgrind: errors in %s", path);
    CHECK_MSG(log && (strstr(log, "All heap blocks were freed") ||
                      (strstr(log, "definitely lost: 0 bytes") &&
                       strstr(log, "indirectly lost: 0 bytes"))),
              "valgrind: leaks in %s", path);
    free(log);
}

/* SIGINT (then SIGTERM) sent before lethe starts, while blocked: it
 * arrives as lethe installs its handler, and the run stops after its first
 * step, every time. Under LETHE_VALGRIND the commands run in valgrind. */
TEST(resume_cli_pending_signal)
{
    if (!cli_t_have_bin()) return;
    int vg = valgrind_on();
    path_buf db, mb, ob, rb, xb, sb;
    const char *data = cli_data(db), *model = cli_model(mb, data);
    const char *out = tpath(ob, "p.safetensors"), *ref = tpath(rb, "p-ref.safetensors");
    const char *rep = tpath(xb, "p.json"), *state = tpath(sb, "p.state");
    static const char *cmds[2] = {
        "train --arch mlp --data mnist --epochs 1 --batch 64",
        "unlearn --forget class:2 --method salun --steps 3 --batch 16"};
    for (int k = 0; k < 2; k++) {
        char common[1500];
        snprintf(common, sizeof common, "%s --data-dir %s %s %s --quiet", cmds[k], data,
                 k ? "--model" : "", k ? model : "");
        args_t a;
        child c;
        remove(state);
        remove(out);
        char ref_rep[460];
        snprintf(ref_rep, sizeof ref_rep, "%s.ref.json", ref);
        /* The reference runs as the others do: under valgrind, OpenBLAS
         * sees another CPU (no AVX-512) and picks other kernels. */
        CHECK(spawn(&c, "pref", words(&a, "%s --force --out %s --report %s", common, ref, ref_rep),
                    vg ? SP_VALGRIND : 0, -1));
        int rc = reap(&c);
        CHECK(rc == 0);
        if (vg) valgrind_clean(c.vglog, cmds[k], "uninterrupted");
        const int sigs[2] = {SIGINT, SIGTERM};
        const char *tags[3] = {"p1", "p2", "p3"};
        /* Stopped at step 1, then (resumed) at step 2, then run to the end. */
        for (int i = 0; i < 3; i++) {
            CHECK(spawn(&c, tags[i], words(&a, "%s --force --out %s --report %s --state %s %s%s",
                                           common, out, rep, state, i ? "--resume " : "",
                                           i ? state : ""),
                        (i < 2 ? SP_BLOCK : 0) | (vg ? SP_VALGRIND : 0), -1));
            if (i < 2) kill(c.pid, sigs[i]);
            rc = reap(&c);
            char *err = cli_t_slurp(c.err, NULL);
            if (i < 2) {
                char want[200];
                snprintf(want, sizeof want, "interrupted at step %d; state saved to", i + 1);
                CHECK_MSG(rc == 128 + sigs[i] && strstr(last_line(err), want),
                          "%s (%s): exit %d: %s", cmds[k], tags[i], rc, err ? err : "");
                CHECK(meta_long(state, "step") == i + 1 && !cli_t_exists(out));
            } else {
                CHECK_MSG(rc == 0, "%s: exit %d: %s", cmds[k], rc, err ? err : "");
                CHECK(same_bytes(out, ref) && same_report(rep, ref_rep) && !cli_t_exists(state));
            }
            free(err);
            if (vg) valgrind_clean(c.vglog, cmds[k], tags[i]);
        }
    }
}

/* The one file in dir whose name starts with prefix and ends with suffix
 * (into out; 0 when there are none or several). */
static int one_file(const char *dir, const char *prefix, const char *suffix, path_buf out)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls %s | grep '^%s.*%s$'", dir, prefix, suffix);
    FILE *f = popen(cmd, "r");
    if (!f) return 0;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (n++ == 0) snprintf(out, sizeof(path_buf), "%s/%.120s", dir, line);
    }
    pclose(f);
    return n == 1;
}

/* bench trains the scenario's original and Retrain for its cache with a
 * run state beside each (PATH.state): SIGTERM stops it with the state
 * saved (exit 143, one line naming it), and the same command again goes
 * on from there, to the very bytes of an uninterrupted bench, and removes
 * the state. */
TEST(resume_cli_bench_cached_model)
{
    if (!cli_t_have_bin() || !cli_t_mkdir("resume")) return;
    path_buf db, c1, c2, r1, r2, st, m1, m2;
    const char *data = tpath(db, "bench-fmnist"), *ref = tpath(c1, "bench-cache-ref");
    const char *cache = tpath(c2, "bench-cache");
    const char *rep1 = tpath(r1, "bench-ref.json"), *rep2 = tpath(r2, "bench.json");
    static const cli_t_mnist spec = {300, 60, 12, 4, 0, 0, 0, 0};
    CHECK(cli_t_write_mnist(data, &spec));
    const char *common = "bench --scenario fmnist-cw --epochs 3 --methods rl --steps 2 --force";
    args_t a;
    char *err = NULL;
    int rc = run_args_with("bref", words(&a, "%s --data-dir %s --cache %s --report %s --quiet",
                                         common, data, ref, rep1), &err, SP_ONE_THREAD);
    CHECK_MSG(rc == 0, "bench exited %d: %s", rc, err ? err : "");
    free(err);

    /* SIGTERM sent at once: held until the training's handler is in place. */
    child c;
    CHECK(spawn(&c, "bint", words(&a, "%s --data-dir %s --cache %s --report %s", common, data,
                                  cache, rep2), SP_BLOCK | SP_ONE_THREAD, -1));
    kill(c.pid, SIGTERM);
    rc = reap(&c);
    err = cli_t_slurp(c.err, NULL);
    const char *line = last_line(err);
    CHECK_MSG(rc == 143, "bench got SIGTERM: exit %d: %s", rc, err ? err : "");
    CHECK_MSG(one_file(cache, "orig-cnn-fmnist-data-", "\\.safetensors\\.state", st),
              "no state of the original in %s", cache);
    char want[1400];
    snprintf(want, sizeof want, "of training the original; state saved to %s; the same command "
             "goes on from there", st);
    CHECK_MSG(strncmp(line, "lethe bench: interrupted at step ", 33) == 0 && strstr(line, want),
              "'%s'\nexpected '…%s'", line, want);
    free(err);
    CHECK(!one_file(cache, "orig-cnn-fmnist-data-", "\\.safetensors", m2) && !cli_t_exists(rep2));

    rc = run_args_with("bres", words(&a, "%s --data-dir %s --cache %s --report %s", common, data,
                                     cache, rep2), &err, SP_ONE_THREAD);
    CHECK_MSG(rc == 0, "bench again exited %d: %s", rc, err ? err : "");
    CHECK_MSG(err && strstr(err, "resuming the original from ") && strstr(err, st),
              "no resume note: %s", err ? err : "");
    free(err);
    CHECK_MSG(!cli_t_exists(st), "the state %s was not removed", st);
    static const char *const kinds[2] = {"orig-cnn-fmnist-data-", "retrain-cnn-fmnist-class0-data-"};
    for (int k = 0; k < 2; k++) {
        CHECK(one_file(ref, kinds[k], "\\.safetensors", m1) &&
              one_file(cache, kinds[k], "\\.safetensors", m2));
        CHECK_MSG(same_bytes(m1, m2), "%s: the resumed bench's model differs from the "
                  "uninterrupted one's", kinds[k]);
    }
}
