/* The generation commands run as programs ($LETHE_BIN, as in test_cli.c):
 * train --task diffusion, sample, eval --task diffusion, unlearn --task
 * diffusion and bench's help, on a tiny MNIST-format folder of 8×8 images
 * (the U-Net halves H and W twice). The runs are far too short to learn
 * anything: these tests check what each command writes, not its quality. */
#include "test.h"
#include "cli_util.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lethe.h"

#define NTRAIN 60
#define NTEST 30
#define SIDE 8
#define NCLASS 10

/* ------------------------------------------------------------- helpers */

typedef cli_t_path_buf path_buf;
static const char *tpath(path_buf buf, const char *name)
{
    return cli_t_path(buf, "gencli", name);
}

/* `lethe args`; fails the test (at the caller's line) unless it exits 0. */
static int run_ok_at(int line, const char *args)
{
    char *o, *e;
    int rc = cli_t_run("gencli", args, &o, &e);
    if (rc != 0) test_fail(__FILE__, line, "`lethe %s` exited %d: %s", args, rc, e ? e : "");
    free(o);
    free(e);
    return rc == 0;
}
#define run_ok(args) run_ok_at(__LINE__, args)

#define expect_fail(args, needle) \
    cli_t_expect_fail_at(__FILE__, __LINE__, "gencli", args, needle, 1)

/* The data folder, a diffusion model D (T 50) and a cnn classifier C, made
 * once per run by the first test that asks. */
typedef struct { path_buf dir, diff, clf; } fixture_paths;

static int fixture(fixture_paths *f)
{
    static const cli_t_mnist spec = {NTRAIN, NTEST, SIDE, 7, 1, 2, 0, 0};
    if (!cli_t_have_bin() || !cli_t_mkdir("gencli")) return 0;
    /* OpenMP workers that spin wait for a core on a loaded machine. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    tpath(f->dir, "mnist8");
    tpath(f->diff, "ddpm.safetensors");
    tpath(f->clf, "cnn.safetensors");
    if (cli_t_exists(f->diff) && cli_t_exists(f->clf)) return 1;
    CHECK(cli_t_write_mnist(f->dir, &spec));
    char args[4096];
    snprintf(args, sizeof args, "train --task diffusion --data mnist --data-dir '%s' --epochs 1 "
             "--batch 16 --T 50 --out '%s' --quiet", f->dir, f->diff);
    run_ok(args);
    snprintf(args, sizeof args, "train --arch cnn --data mnist --data-dir '%s' --epochs 1 "
             "--batch 16 --quiet --out '%s'", f->dir, f->clf);
    run_ok(args);
    return cli_t_exists(f->diff) && cli_t_exists(f->clf);
}

/* Images (n, SIDE, SIDE) and labels of an IDX pair; *n = −1 if either
 * file is unreadable or the shapes disagree. Caller frees *y. */
static void read_pair(const char *images, const char *labels, int *n, uint8_t **y)
{
    uint8_t *px = NULL;
    int ni = -1, nl = -1, h = 0, w = 0;
    *y = NULL;
    lethe_status si = lethe_idx_read_images(images, &px, &ni, &h, &w);
    lethe_status sl = lethe_idx_read_labels(labels, y, &nl);
    CHECK_MSG(si == LETHE_OK && sl == LETHE_OK, "%s / %s: %s", images, labels, lethe_last_error());
    CHECK_MSG(h == SIDE && w == SIDE, "%s: images of %dx%d", images, h, w);
    *n = si == LETHE_OK && sl == LETHE_OK && ni == nl && h == SIDE && w == SIDE ? ni : -1;
    free(px);
}

static int starts_gzip(const char *path)
{
    size_t len = 0;
    char *b = cli_t_slurp(path, &len);
    int ok = b && len > 2 && (unsigned char)b[0] == 0x1f && (unsigned char)b[1] == 0x8b;
    free(b);
    return ok;
}

/* metrics.acc_per_class has NCLASS numbers in [0, 100] (copied to acc). */
static int check_acc(const cJSON *met, double *acc)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(met, "acc_per_class");
    int ok = cJSON_IsArray(a) && cJSON_GetArraySize(a) == NCLASS;
    for (int k = 0; ok && k < NCLASS; k++) {
        const cJSON *v = cJSON_GetArrayItem(a, k);
        ok = cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 100;
        if (ok && acc) acc[k] = v->valuedouble;
    }
    return ok;
}

/* ---------------------------------------------------------- good runs */

/* The fixture's train ran; info shows the task and the schedule. */
TEST(gencli_train_and_info)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    char *o, *e, args[4096], want[64];
    snprintf(args, sizeof args, "info '%s'", f.diff);
    int rc = cli_t_run("gencli", args, &o, &e);
    CHECK_MSG(rc == 0, "info exited %d: %s", rc, e ? e : "");
    snprintf(want, sizeof want, "  %-18s %s\n", "task", "diffusion");
    CHECK_MSG(o && strstr(o, want), "info lacks task diffusion: %s", o ? o : "");
    snprintf(want, sizeof want, "  %-18s %s\n", "ddpm_T", "50");
    CHECK_MSG(o && strstr(o, want), "info lacks ddpm_T 50: %s", o ? o : "");
    free(o);
    free(e);
}

/* A grid and raw IDX of every class (3 each, labels in class order), one
 * class alone, and gzip when the name says so. */
TEST(gencli_sample_grid_and_raw)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf gb, rb, lb;
    const char *grid = tpath(gb, "G.png"), *raw = tpath(rb, "R.idx");
    const char *lab = tpath(lb, "R-labels.idx");
    char args[4096];
    snprintf(args, sizeof args, "sample --model '%s' --n 3 --steps 4 --out '%s' --raw '%s'", f.diff,
             grid, raw);
    if (run_ok(args)) {
        CHECK_MSG(cli_t_is_png(grid), "%s is not a PNG", grid);
        int n;
        uint8_t *y;
        read_pair(raw, lab, &n, &y);
        CHECK_MSG(n == NCLASS * 3, "%d images, expected %d", n, NCLASS * 3);
        for (int i = 0; i < n && n == NCLASS * 3; i++)
            CHECK_MSG(y[i] == i / 3, "label %d is %d, expected %d", i, y[i], i / 3);
        free(y);
    }

    /* --class 3 --n 5: five images, all labelled 3. */
    raw = tpath(rb, "R3.idx");
    lab = tpath(lb, "R3-labels.idx");
    snprintf(args, sizeof args, "sample --model '%s' --class 3 --n 5 --steps 4 --raw '%s'", f.diff,
             raw);
    if (run_ok(args)) {
        int n;
        uint8_t *y;
        read_pair(raw, lab, &n, &y);
        CHECK_MSG(n == 5, "--class 3 --n 5 gave %d images", n);
        for (int i = 0; i < n; i++) CHECK_MSG(y[i] == 3, "label %d is %d", i, y[i]);
        free(y);
    }

    /* .gz: both files compressed, and the reader takes them. */
    raw = tpath(rb, "R.idx.gz");
    lab = tpath(lb, "R-labels.idx.gz");
    snprintf(args, sizeof args, "sample --model '%s' --n 2 --steps 2 --raw '%s'", f.diff, raw);
    if (run_ok(args)) {
        CHECK_MSG(starts_gzip(raw) && starts_gzip(lab), "%s or %s is not gzip", raw, lab);
        int n;
        uint8_t *y;
        read_pair(raw, lab, &n, &y);
        CHECK(n == NCLASS * 2);
        free(y);
    }
}

/* The report's numbers hang together: UA_gen = 100 − acc on class 0, and
 * FD-cls compares against the test images of the retained classes. */
TEST(gencli_eval_report_and_grid)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf rb, gb;
    const char *rep = tpath(rb, "E.json"), *grid = tpath(gb, "E.png");
    char args[4096];
    snprintf(args, sizeof args, "eval --task diffusion --model '%s' --classifier '%s' "
             "--data-dir '%s' --forget class:0 --n 4 --steps 3 --guidance 0.3 --report '%s' "
             "--grid '%s'", f.diff, f.clf, f.dir, rep, grid);
    if (!run_ok(args)) return;
    /* The guidance as typed, not the double nearest the float 0.3. */
    char *text = cli_t_slurp(rep, NULL);
    CHECK_MSG(text && strstr(text, "\"guidance\":\t0.3,"), "%s", text ? text : "");
    free(text);
    CHECK_MSG(cli_t_is_png(grid), "%s is not a PNG", grid);

    /* Test images not of class 0, counted from the file itself. */
    char path[600];
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", f.dir);
    uint8_t *y = NULL;
    int n = 0, kept = 0;
    CHECK_OK(lethe_idx_read_labels(path, &y, &n));
    for (int i = 0; i < n; i++) kept += y[i] != 0;
    free(y);
    CHECK(n == NTEST && kept == NTEST - NTEST / NCLASS);

    cJSON *root = cli_t_load_json(rep);
    CHECK_MSG(root != NULL, "%s is missing or not JSON", rep);
    const cJSON *met = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    double acc[NCLASS];
    if (check_acc(met, acc)) {
        CHECK_NEAR(cli_t_jnum(met, "ua_gen"), 100 - acc[0], 1e-6);
    } else {
        CHECK_MSG(0, "metrics.acc_per_class is not %d numbers in [0, 100]", NCLASS);
    }
    CHECK(cli_t_jnum(met, "fd_cls") >= 0);
    CHECK_MSG(cli_t_jnum(met, "n_real") == kept, "n_real %g, expected %d",
              cli_t_jnum(met, "n_real"), kept);
    cJSON_Delete(root);
}

/* Unlearning writes a report (trace of every step, metrics before and
 * after), a before|after grid, and a model that is still a diffusion model. */
TEST(gencli_unlearn_eupmu)
{
    if (test_skip_under_asan("LETHE_SLOW_SAN", "diffusion unlearning runs")) return;
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf ub, rb, gb, sb;
    const char *u = tpath(ub, "U.safetensors"), *rep = tpath(rb, "U.json");
    const char *grid = tpath(gb, "UG.png");
    char args[4096];
    snprintf(args, sizeof args, "unlearn --task diffusion --model '%s' --data-dir '%s' "
             "--forget class:0 --method eupmu --steps 2 --batch 8 --classifier '%s' --n 3 "
             "--steps-sample 3 --before --quiet --out '%s' --report '%s' --grid '%s'",
             f.diff, f.dir, f.clf, u, rep, grid);
    if (!run_ok(args)) return;
    CHECK_MSG(cli_t_is_png(grid), "%s is not a PNG", grid);

    cJSON *root = cli_t_load_json(rep);
    CHECK_MSG(root != NULL, "%s is missing or not JSON", rep);
    const cJSON *trace =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "run"), "trace");
    int arrays = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, trace) {
        if (!cJSON_IsArray(it)) continue;
        arrays++;
        CHECK_MSG(cJSON_GetArraySize(it) == 2, "run.trace.%s has %d entries", it->string,
                  cJSON_GetArraySize(it));
    }
    CHECK_MSG(arrays > 0, "run.trace has no per-step arrays");
    CHECK(check_acc(cJSON_GetObjectItemCaseSensitive(root, "metrics"), NULL));
    CHECK(check_acc(cJSON_GetObjectItemCaseSensitive(root, "metrics_before"), NULL));
    cJSON_Delete(root);

    lethe_metadata md;
    lethe_model *m = NULL;
    CHECK_OK(lethe_checkpoint_open(&m, u, &md));
    if (m) {
        const char *task = lethe_meta_get(&md, "task"), *by = lethe_meta_get(&md, "unlearned_by");
        CHECK(task && strcmp(task, "diffusion") == 0 && lethe_meta_get(&md, "ddpm_T"));
        CHECK(by && strcmp(by, "eupmu") == 0);
    }
    lethe_model_free(m);
    snprintf(args, sizeof args, "sample --model '%s' --n 2 --steps 2 --out '%s'", u,
             tpath(sb, "US.png"));
    if (run_ok(args)) CHECK(cli_t_is_png(sb));
}

/* --diagnostics on the diffusion task: the grouped backward gives g_u and
 * g_r, so each step records UNGrad's λ*_t in [0, D] and cos(g_u, g_r) in
 * [−1, 1], and stdout gets the diagnostics line. */
/* The diagnostics of a diffusion run: a trace of λ*_t and cos, and the
 * model the run without them writes, byte for byte (they only observe). */
TEST(gencli_unlearn_diagnostics)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf rb, ob, pb;
    const char *rep = tpath(rb, "UD.json"), *with = tpath(ob, "UD.st"),
               *without = tpath(pb, "UN.st");
    char args[4096], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "unlearn --task diffusion --model '%s' --data-dir '%s' "
             "--forget class:0 --method eupmu --steps 3 --batch 8 --lambda-max 50 --diagnostics "
             "--quiet --force --report '%s' --out '%s'", f.diff, f.dir, rep, with);
    int rc = cli_t_run("gencli", args, &o, &e);
    CHECK_MSG(rc == 0, "`lethe %s` exited %d: %s", args, rc, e ? e : "");
    CHECK_MSG(o && strstr(o, "diagnostics: <g_u, g_r> < 0 in"), "no diagnostics line: %s",
              o ? o : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "unlearn --task diffusion --model '%s' --data-dir '%s' "
             "--forget class:0 --method eupmu --steps 3 --batch 8 --lambda-max 50 "
             "--quiet --force --out '%s'", f.diff, f.dir, without);
    rc = cli_t_run("gencli", args, &o, &e);
    CHECK_MSG(rc == 0, "`lethe %s` exited %d: %s", args, rc, e ? e : "");
    free(o);
    free(e);
    size_t na = 0, nb = 0;
    char *a = cli_t_slurp(with, &na), *b = cli_t_slurp(without, &nb);
    CHECK_MSG(a && b && na == nb && memcmp(a, b, na) == 0,
              "the diffusion model after --diagnostics differs from the one without (%zu, %zu "
              "bytes)", na, nb);
    free(a);
    free(b);
    cJSON *root = cli_t_load_json(rep);
    CHECK_MSG(root != NULL, "%s is missing or not JSON", rep);
    const cJSON *trace =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "run"), "trace");
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(trace, "lambda_star");
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(trace, "cos");
    CHECK_MSG(cJSON_GetArraySize(ls) == 3 && cJSON_GetArraySize(cs) == 3,
              "lambda_star has %d entries, cos %d", cJSON_GetArraySize(ls), cJSON_GetArraySize(cs));
    for (int t = 0; t < cJSON_GetArraySize(ls) && t < cJSON_GetArraySize(cs); t++) {
        const cJSON *l = cJSON_GetArrayItem(ls, t), *c = cJSON_GetArrayItem(cs, t);
        CHECK_MSG(cJSON_IsNumber(l) && l->valuedouble >= 0 && l->valuedouble <= 50,
                  "lambda_star[%d] not in [0, 50]", t);
        CHECK_MSG(cJSON_IsNumber(c) && c->valuedouble >= -1.0001 && c->valuedouble <= 1.0001,
                  "cos[%d] not in [-1, 1]", t);
    }
    cJSON_Delete(root);
}

TEST(gencli_bench_help)
{
    if (!cli_t_have_bin()) return;
    cli_t_mkdir("gencli");
    char *o, *e;
    int rc = cli_t_run("gencli", "bench --scenario fmnist-ddpm-cw --help", &o, &e);
    CHECK_MSG(rc == 0, "bench --help exited %d: %s", rc, e ? e : "");
    CHECK_MSG((o && strstr(o, "--methods")) || (e && strstr(e, "--methods")),
              "bench --help lacks --methods: %s", o ? o : "");
    free(o);
    free(e);
}

/* ---------------------------------------------------------- bad input */

TEST(gencli_rejects_bad_input)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf xb;
    const char *x = tpath(xb, "x.png");
    char args[4096];
    snprintf(args, sizeof args, "sample --model '%s' --out '%s'", f.clf, x);
    expect_fail(args, "not a diffusion model");
    snprintf(args, sizeof args, "sample --model '%s' --class 11 --out '%s'", f.diff, x);
    expect_fail(args, "classes 0..9");
    CHECK_MSG(!cli_t_exists(x), "a failed sample wrote %s", x);
    snprintf(args, sizeof args, "unlearn --task diffusion --model '%s' --data-dir '%s' "
             "--forget random:0.1 --method eupmu", f.diff, f.dir);
    expect_fail(args, "forgets classes");
    snprintf(args, sizeof args, "unlearn --task diffusion --model '%s' --data-dir '%s' "
             "--forget class:0 --method eupmu --loss nc --report -", f.diff, f.dir);
    expect_fail(args, "no diffusion form");
    snprintf(args, sizeof args, "unlearn --task diffusion --model '%s' --data-dir '%s' "
             "--forget class:0 --method eupmu --match-unseen on --report -", f.diff, f.dir);
    expect_fail(args, "per-sample class loss");
}

/* Without --task the checkpoint says what it is (issue 19): a noise
 * predictor goes to the diffusion form, whose refusal of the loss nc
 * (the classification form takes it) shows the routing; with --task
 * classification it is refused. Either refusal is the only line on stderr. */
TEST(gencli_unlearn_without_task_routed)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    char args[4096];
    snprintf(args, sizeof args, "unlearn --model '%s' --forget class:0 --method eupmu --loss nc "
             "--data-dir '%s' --report -", f.diff, f.dir);
    expect_fail(args, "no diffusion form");
    snprintf(args, sizeof args, "unlearn --task classification --model '%s' --forget class:0 "
             "--method eupmu --data mnist --data-dir '%s' --report -", f.diff, f.dir);
    expect_fail(args, "--task diffusion");
}
