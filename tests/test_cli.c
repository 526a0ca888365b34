/* The command line, run as a program: the binary named by $LETHE_BIN
 * (`make test` sets it) on a tiny MNIST-format data set written here
 * (300 train / 100 test images, 10 classes of noisy binary patterns).
 * Good runs must exit 0 and write what they promise; bad input must exit
 * non-zero with exactly one line "lethe …" on stderr and leave no output
 * file (nor a temporary one) behind. */
#include "test.h"
#include "cli_util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "lethe.h"

#define NTRAIN 300
#define NTEST 100
#define SIDE 28

/* ------------------------------------------------------------- helpers */

/* Scratch files in test_tmpdir()/cli (a folder of its own, so that the
 * check for left-over temporary files sees only these tests' files). */
typedef cli_t_path_buf path_buf;
static const char *tpath(path_buf buf, const char *name)
{
    return cli_t_path(buf, "cli", name);
}

static int run_lethe(const char *args, char **out, char **err)
{
    return cli_t_run("cli", args, out, err);
}

/* Train files gzipped (via zlib), test files raw (through
 * lethe_idx_write_images): the loader takes both. */
static const cli_t_mnist data_spec = {NTRAIN, NTEST, SIDE, 99, 1, 2, 1, 0};

/* The data folder D and a trained mlp M, made once per run (on disk) by
 * the first test that asks. */
typedef struct { path_buf dir, model; } fixture_paths;

static int fixture(fixture_paths *f)
{
    if (!cli_t_have_bin()) return 0;
    if (!cli_t_mkdir("cli")) return 0;
    tpath(f->dir, "cli-mnist");
    tpath(f->model, "cli-mlp.safetensors");
    if (cli_t_exists(f->model)) return 1;
    char *o, *e, args[4096];
    CHECK(cli_t_write_mnist(f->dir, &data_spec));
    snprintf(args, sizeof args,
             "train --arch mlp --data mnist --data-dir '%s' --epochs 1 --batch 32 --out '%s'",
             f->dir, f->model);
    int rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "lethe train exited %d: %s", rc, e ? e : "");
    /* The table on stdout. */
    CHECK_MSG(o && strstr(o, "| arch |") && strstr(o, "| mlp | mnist | 300 | 1 |"),
              "train table: %s", o ? o : "");
    int ok = rc == 0 && cli_t_exists(f->model);
    free(o);
    free(e);
    return ok;
}

/* Bad input: non-zero exit, one stderr line "lethe …" that contains
 * `needle`, nothing on stdout, and neither `out` nor `report` created. */
static void expect_fail_at(int line, const char *args, const char *needle, const char *out,
                           const char *report)
{
    if (out) remove(out);
    if (report) remove(report);
    cli_t_expect_fail_at(__FILE__, line, "cli", args, needle, 1);
    if (out && cli_t_exists(out)) test_fail(__FILE__, line, "`lethe %s` created %s", args, out);
    if (report && cli_t_exists(report))
        test_fail(__FILE__, line, "`lethe %s` created %s", args, report);
    if (cli_t_temp_files_left("cli") != 0)
        test_fail(__FILE__, line, "`lethe %s` left temporary files in %s/cli", args,
                  test_tmpdir());
}
#define expect_fail(args, needle, out, report) expect_fail_at(__LINE__, args, needle, out, report)

/* Copy the trained model to `name`, with `edit` applied to its bytes. */
static const char *edited_model(const fixture_paths *f, path_buf path, const char *name,
                                void (*edit)(char *buf, size_t *len))
{
    size_t len;
    char *buf = cli_t_slurp(f->model, &len);
    tpath(path, name);
    CHECK(buf != NULL);
    if (buf) {
        edit(buf, &len);
        CHECK(cli_t_spit(path, buf, len));
    }
    free(buf);
    return path;
}

static void edit_arch_cnn(char *buf, size_t *len)
{
    (void)len;
    char *p = strstr(buf + 8, "\"arch\":\"mlp\"");
    CHECK(p != NULL);
    if (p) memcpy(p + 8, "cnn", 3);
}

static void edit_header_huge(char *buf, size_t *len)
{
    (void)len;
    memset(buf, 0, 8);
    buf[5] = 1;     /* 2^40 bytes of header */
}

static void edit_garbage_json(char *buf, size_t *len)
{
    (void)len;
    memcpy(buf + 8, "{garbage", 8);
}

static void edit_truncate(char *buf, size_t *len)
{
    (void)buf;
    *len /= 2;
}

/* ---------------------------------------------------------- good runs */

TEST(cli_train_info_eval)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    char *o, *e, args[4096];
    /* train printed its table when the fixture was made; check it again on a
     * second model, seeded differently. */
    path_buf m2b;
    const char *m2 = tpath(m2b, "cli-mlp2.safetensors");
    snprintf(args, sizeof args,
             "train --arch mlp --data mnist --data-dir '%s' --epochs 1 --batch 32 --seed 1 "
             "--out '%s' --quiet", f.dir, m2);
    int rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "train exited %d: %s", rc, e ? e : "");
    CHECK(cli_t_exists(m2));
    CHECK_MSG(o && strstr(o, "| arch |") && strstr(o, "| mlp | mnist | 300 | 1 |"),
              "train table: %s", o ? o : "");
    free(o);
    free(e);

    snprintf(args, sizeof args, "info '%s'", f.model);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "info exited %d: %s", rc, e ? e : "");
    CHECK_MSG(o && strstr(o, "mlp") && strstr(o, "mnist") && strstr(o, "fc1.weight") &&
                  strstr(o, "[256, 784]"), "info: %s", o ? o : "");
    free(o);
    free(e);

    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --per-class", f.model,
             f.dir);
    rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "eval exited %d: %s", rc, e ? e : "");
    CHECK_MSG(o && strstr(o, "| test | 100 |"), "eval: %s", o ? o : "");
    for (int c = 0; c < 10; c++) {
        char row[32];
        snprintf(row, sizeof row, "\n| %d | 10 |", c);
        CHECK_MSG(o && strstr(o, row), "eval --per-class lacks class %d", c);
    }
    free(o);
    free(e);
}

/* An array of `n` numbers (or nulls) named `name` in obj. */
static int trace_len(const cJSON *trace, const char *name)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(trace, name);
    return cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
}

TEST(cli_unlearn_writes_model_and_report)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    char *o, *e, args[4096];
    path_buf ub, rb;
    const char *u = tpath(ub, "cli-u.safetensors"), *rep = tpath(rb, "cli-r.json");
    snprintf(args, sizeof args,
             "unlearn --model '%s' --data-dir '%s' --forget class:0 --method eupmu --steps 5 "
             "--batch 16 --out '%s' --report '%s'", f.model, f.dir, u, rep);
    int rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "unlearn exited %d: %s", rc, e ? e : "");
    CHECK_MSG(o && strstr(o, "| eupmu |") && strstr(o, "| 15/10 |"), "unlearn table: %s",
              o ? o : "");
    free(o);
    free(e);
    CHECK(cli_t_exists(u));
    CHECK(cli_t_temp_files_left("cli") == 0);

    /* The unlearned checkpoint loads and says what it forgot. */
    lethe_metadata md;
    lethe_model *m = NULL;
    CHECK_OK(lethe_checkpoint_open(&m, u, &md));
    if (m) {
        const char *by = lethe_meta_get(&md, "unlearned_by");
        const char *what = lethe_meta_get(&md, "forgot");
        CHECK(by && strcmp(by, "eupmu") == 0);
        CHECK(what && strcmp(what, "class:0") == 0);
        CHECK(strcmp(lethe_model_arch(m), "mlp") == 0);
    }
    lethe_model_free(m);

    cJSON *root = cli_t_load_json(rep);
    CHECK_MSG(root != NULL, "report %s is missing or not JSON", rep);
    if (root) {
        const cJSON *run = cJSON_GetObjectItemCaseSensitive(root, "run");
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
        const cJSON *met = cJSON_GetObjectItemCaseSensitive(root, "metrics");
        const cJSON *trace = cJSON_GetObjectItemCaseSensitive(run, "trace");
        /* EUPMU: 3 forward and 2 backward batches per step (ALGORITHM.md §3). */
        CHECK(cli_t_jnum(run, "forward_passes") == 15.0);
        CHECK(cli_t_jnum(run, "backward_passes") == 10.0);
        CHECK(cli_t_jnum(run, "steps") == 5.0);
        const char *names[] = {"loss_u", "loss_r_before", "loss_r_after", "delta", "lambda",
                               "lambda_star", "lr"};
        for (int k = 0; k < 7; k++)
            CHECK_MSG(trace_len(trace, names[k]) == 5, "trace.%s has %d entries", names[k],
                      trace_len(trace, names[k]));
        const cJSON *lam = cJSON_GetObjectItemCaseSensitive(trace, "lambda");
        CHECK(cJSON_IsNumber(cJSON_GetArrayItem(lam, 0)) &&
              cJSON_GetArrayItem(lam, 0)->valuedouble == 1.0);   /* λ0 = 1 */
        const cJSON *meth = cJSON_GetObjectItemCaseSensitive(cfg, "method");
        CHECK(cJSON_IsString(meth) && strcmp(meth->valuestring, "eupmu") == 0);
        double ua = cli_t_jnum(met, "UA"), ra = cli_t_jnum(met, "RA");
        CHECK_MSG(ua >= 0 && ua <= 100 && ra >= 0 && ra <= 100, "UA %g RA %g", ua, ra);
    }
    cJSON_Delete(root);
}

/* Options reach the method: the mixed UNGrad form costs 2 + 4 passes a step,
 * the look-ahead variant 3 + 2 less the last look-ahead. */
TEST(cli_unlearn_options_reach_the_method)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    static const struct { const char *opts; double fwd, bwd; } cases[] = {
        {"--method ungrad --ungrad-form mixed", 6, 12},
        {"--method ungrad", 6, 6},
        {"--method eupmu-lookahead", 8, 6},
        {"--method ga --lr 0.001", 3, 3},
    };
    path_buf rb;
    const char *rep = tpath(rb, "cli-opts.json");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o, *e, args[4096];
        snprintf(args, sizeof args,
                 "unlearn --model '%s' --data-dir '%s' --forget random:10%% %s --steps 3 "
                 "--batch 16 --no-eval --quiet --match-unseen off --report '%s'",
                 f.model, f.dir, cases[i].opts, rep);
        int rc = run_lethe(args, &o, &e);
        CHECK_MSG(rc == 0, "%s: exited %d: %s", cases[i].opts, rc, e ? e : "");
        free(o);
        free(e);
        cJSON *root = cli_t_load_json(rep);
        const cJSON *run = cJSON_GetObjectItemCaseSensitive(root, "run");
        CHECK_MSG(cli_t_jnum(run, "forward_passes") == cases[i].fwd &&
                      cli_t_jnum(run, "backward_passes") == cases[i].bwd,
                  "%s: %g/%g passes, expected %g/%g", cases[i].opts,
                  cli_t_jnum(run, "forward_passes"), cli_t_jnum(run, "backward_passes"),
                  cases[i].fwd, cases[i].bwd);
        cJSON_Delete(root);
        remove(rep);
    }
    /* Forgetting just enough, on by default for a random set: its one
     * forward of D_f and of the reference is counted, and the reference is
     * named in the report. */
    char *o, *e, args[4096];
    snprintf(args, sizeof args,
             "unlearn --model '%s' --data-dir '%s' --forget random:10%% --method ga --lr 0.001 "
             "--steps 3 --batch 16 --no-eval --quiet --report '%s'", f.model, f.dir, rep);
    int rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "ga with the gate: exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    cJSON *root = cli_t_load_json(rep);
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(root, "run");
    const cJSON *fje = cJSON_GetObjectItemCaseSensitive(run, "forget_just_enough");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "config"), "unseen_reference");
    double nref = cli_t_jnum(fje, "reference"), fwd = cli_t_jnum(fje, "forward_samples");
    CHECK_MSG(nref > 0 && cli_t_jnum(ref, "samples") == nref, "reference %g", nref);
    CHECK_MSG(fwd > nref && cli_t_jnum(run, "forward_passes") == 3 + fwd / 16 &&
                  cli_t_jnum(run, "backward_passes") == 3,
              "%g/%g passes with a gate of %g samples", cli_t_jnum(run, "forward_passes"),
              cli_t_jnum(run, "backward_passes"), fwd);
    cJSON_Delete(root);
    remove(rep);
}

/* ---------------------------------------------------------- bad input */

TEST(cli_unlearn_rejects_bad_options)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf ub, rb;
    const char *u = tpath(ub, "cli-bad.safetensors"), *rep = tpath(rb, "cli-bad.json");
    char base[2048], args[4096];
    snprintf(base, sizeof base, "unlearn --model '%s' --data-dir '%s' --steps 2 --batch 16 "
             "--out '%s' --report '%s'", f.model, f.dir, u, rep);
    static const struct { const char *opts, *needle; } cases[] = {
        {"--forget class:0 --method nope", "nope"},
        {"--forget class:0 --loss nope", "nope"},
        {"--forget klass:0", "klass"},
        {"--forget class:12", "12"},
        {"--forget class:0,1,2,3,4,5,6,7,8,9", "retain"},
        {"--forget random:0", "random:0"},
        {"--forget random:1", "random:1"},
        {"--forget random:1.5", "random:1.5"},
        {"--forget class:0 --eps -1", "--eps"},
        {"--forget class:0 --lambda-max 0", "--lambda-max"},
        {"--forget class:0 --lambda0 200", "lambda0"},
        {"--forget class:0 --a 1", "--a"},
        {"--forget class:0 --gamma 1.5", "--gamma"},
        {"--forget class:0 --method ungrad --ungrad-form twice", "twice"},
        {"--forget class:0 --bogus 1", "--bogus"},
        {"--forget class:0 --steps", "--steps"},
        {"--method eupmu", "--forget"},
        {"--forget class:0 --match-unseen on", "Retrain recognises none"},
        {"--forget random:0.1 --match-unseen sometimes", "sometimes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "%s %s", base, cases[i].opts);
        expect_fail(args, cases[i].needle, u, rep);
    }
}

TEST(cli_rejects_bad_files)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf ub, rb;
    const char *u = tpath(ub, "cli-bad.safetensors"), *rep = tpath(rb, "cli-bad.json");
    char args[4096];
    const char *tail = "--forget class:0 --steps 2 --batch 16";
    path_buf pb;

    /* Checkpoints: architecture that does not match the tensors, a header
     * length past the file, garbage JSON, a truncated data block. */
    struct { const char *name; void (*edit)(char *, size_t *); const char *needle; } ck[] = {
        {"cli-cnn.safetensors", edit_arch_cnn, "cnn"},
        {"cli-huge.safetensors", edit_header_huge, "header"},
        {"cli-json.safetensors", edit_garbage_json, "JSON"},
        {"cli-trunc.safetensors", edit_truncate, "cli-trunc.safetensors"},
    };
    for (size_t i = 0; i < sizeof ck / sizeof ck[0]; i++) {
        const char *p = edited_model(&f, pb, ck[i].name, ck[i].edit);
        snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' %s --out '%s' --report '%s'",
                 p, f.dir, tail, u, rep);
        expect_fail(args, ck[i].needle, u, rep);
        snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s'", p, f.dir);
        expect_fail(args, ck[i].name, NULL, NULL);
        snprintf(args, sizeof args, "info '%s'", p);
        expect_fail(args, ck[i].name, NULL, NULL);
    }
    snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' %s --out '%s'",
             tpath(pb, "no-such.safetensors"), f.dir, tail, u);
    expect_fail(args, "no-such.safetensors", u, NULL);

    /* Data folders: missing, a truncated .gz image file, wrong IDX magic. */
    snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' %s --out '%s'",
             f.model, tpath(pb, "no-such-dir"), tail, u);
    expect_fail(args, "no-such-dir", u, NULL);

    path_buf tb, mb;
    const char *trunc = tpath(tb, "cli-mnist-trunc"), *magic = tpath(mb, "cli-mnist-magic");
    CHECK(cli_t_write_mnist(trunc, &data_spec) && cli_t_write_mnist(magic, &data_spec));
    char path[600];
    size_t len;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", trunc);
    char *gz = cli_t_slurp(path, &len);
    CHECK(gz && cli_t_spit(path, gz, len / 2));
    free(gz);
    static uint8_t px[NTRAIN * SIDE * SIDE], y[NTRAIN], proto[10 * SIDE * SIDE];
    lethe_rng r;
    lethe_rng_seed(&r, data_spec.proto_seed);
    cli_t_make_protos(proto, SIDE, &r);
    lethe_rng_seed(&r, data_spec.train_seed);
    cli_t_make_images(px, y, NTRAIN, SIDE, proto, &r);
    uint32_t dims[3] = {NTRAIN, SIDE, SIDE};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", magic);
    CHECK(cli_t_write_idx(path, 0x804, dims, 3, px, sizeof px, 1));
    const char *dirs[2] = {trunc, magic};
    const char *needles[2] = {"truncated", "magic"};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' %s --out '%s'",
                 f.model, dirs[k], tail, u);
        expect_fail(args, needles[k], u, NULL);
        snprintf(args, sizeof args,
                 "train --arch mlp --data mnist --data-dir '%s' --epochs 1 --out '%s'", dirs[k], u);
        expect_fail(args, needles[k], u, NULL);
    }
}

TEST(cli_train_rejects_bad_options)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf ub;
    const char *u = tpath(ub, "cli-bad.safetensors");
    char args[4096];
    snprintf(args, sizeof args, "train --arch vgg --data mnist --data-dir '%s' --epochs 1 --out '%s'",
             f.dir, u);
    expect_fail(args, "vgg", u, NULL);
    snprintf(args, sizeof args, "train --arch mlp --data svhn --data-dir '%s' --epochs 1 --out '%s'",
             f.dir, u);
    expect_fail(args, "svhn", u, NULL);
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --epochs 0 --out '%s'",
             f.dir, u);
    expect_fail(args, "--epochs", u, NULL);
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --frobnicate --out '%s'",
             f.dir, u);
    expect_fail(args, "--frobnicate", u, NULL);
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --epochs 1", f.dir);
    expect_fail(args, "--out", NULL, NULL);
}

/* Fuzzing found that `"steps": 8.9e58` in a tuned-settings file was cast to
 * long unchecked (undefined behaviour). bench must refuse it while it checks
 * every method's settings, before any work: the data folder named does not
 * exist, so a message about steps (not the data) shows the order, and
 * neither the cache folder nor the JSON report may appear. */
TEST(cli_tuned_file_rejects_huge_steps)
{
    if (!cli_t_have_bin() || !cli_t_mkdir("cli")) return;
    path_buf tb, cb, jb, db;
    const char *tuned = tpath(tb, "cli-tuned-huge-steps.json");
    const char *cache = tpath(cb, "cli-bench-cache");
    const char *json = tpath(jb, "cli-bench.json");
    const char *data = tpath(db, "cli-no-such-data");
    static const char text[] =
        "{\"fmnist-cw\": {\"eupmu\": {\"beta\": 1, \"lr\": 0.02, \"eps\": 0.01, "
        "\"steps\": 8.9e58}}}\n";
    CHECK(cli_t_spit(tuned, text, sizeof text - 1));
    remove(cache);
    CHECK(!cli_t_exists(cache) && !cli_t_exists(data));
    char args[4096];
    snprintf(args, sizeof args,
             "bench --scenario fmnist-cw --tuned '%s' --methods eupmu --cache '%s' "
             "--data-dir '%s' --epochs 1 --json '%s'",
             tuned, cache, data, json);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_fail(args, "steps", json, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    /* A refusal is a parse of a 90-byte file: seconds would mean work. */
    CHECK_MSG(secs < 10.0, "bench took %.1f s to refuse the tuned file", secs);
    CHECK_MSG(!cli_t_exists(cache), "bench created the cache folder %s", cache);
}
