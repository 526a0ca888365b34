/* The command line, run as a program: the binary named by $LETHE_BIN
 * (`make test` sets it) on a tiny MNIST-format data set written here
 * (300 train / 100 test images, 10 classes of noisy binary patterns).
 * Good runs must exit 0 and write what they promise; bad input must exit
 * non-zero with exactly one line "lethe …" on stderr and leave no output
 * file (nor a temporary one) behind. */
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

#include <cjson/cJSON.h>

#include "lethe.h"

#define NTRAIN 300
#define NTEST 100
#define SIDE 28

/* ------------------------------------------------------------- helpers */

/* A scratch path in test_tmpdir()/cli (a folder of its own, so that the
 * check for left-over temporary files sees only these tests' files), in the
 * caller's buffer: test_path's ring of 8 is too short for the paths these
 * tests hold at once. */
typedef char path_buf[320];
static const char *tpath(path_buf buf, const char *name)
{
    snprintf(buf, sizeof(path_buf), "%s/cli/%s", test_tmpdir(), name);
    return buf;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The whole file into a NUL-terminated buffer (NULL if unreadable). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n < 2) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

static int spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX file: magic, dims, data; through gzip when gz is set. */
static int write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndim,
                     const uint8_t *data, size_t len, int gz)
{
    uint8_t head[16];
    put_be32(head, magic);
    for (int d = 0; d < ndim; d++) put_be32(head + 4 + 4 * d, dims[d]);
    unsigned hl = 4 + 4 * (unsigned)ndim;
    if (!gz) {
        FILE *f = fopen(path, "wb");
        if (!f) return 0;
        int ok = fwrite(head, 1, hl, f) == hl && fwrite(data, 1, len, f) == len;
        return fclose(f) == 0 && ok;
    }
    gzFile f = gzopen(path, "wb");
    if (!f) return 0;
    int ok = gzwrite(f, head, hl) == (int)hl && gzwrite(f, data, (unsigned)len) == (int)len;
    return gzclose(f) == Z_OK && ok;
}

/* n images (n, 28, 28) and labels i % 10: class c is a random binary
 * prototype (seeded), each image flips 5% of its pixels. */
static void make_images(uint8_t *px, uint8_t *y, int n, uint64_t seed)
{
    static uint8_t proto[10][SIDE * SIDE];
    lethe_rng r;
    lethe_rng_seed(&r, 99);     /* the same prototypes for train and test */
    for (int c = 0; c < 10; c++)
        for (int p = 0; p < SIDE * SIDE; p++) proto[c][p] = lethe_rng_uniform(&r) < 0.3f ? 255 : 0;
    lethe_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        y[i] = (uint8_t)(i % 10);
        for (int p = 0; p < SIDE * SIDE; p++) {
            uint8_t v = proto[y[i]][p];
            px[(size_t)i * SIDE * SIDE + p] = lethe_rng_uniform(&r) < 0.05f ? (uint8_t)(255 - v) : v;
        }
    }
}

/* Write an MNIST-format folder: train files gzipped (via zlib), test files
 * raw (through lethe_idx_write_images); the loader takes both. */
static int write_mnist(const char *dir)
{
    static uint8_t px[NTRAIN * SIDE * SIDE], y[NTRAIN];
    char path[600];
    if (mkdir(dir, 0755) != 0 && !exists(dir)) return 0;
    uint32_t dims[3] = {NTRAIN, SIDE, SIDE};
    make_images(px, y, NTRAIN, 1);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    if (!write_idx(path, 0x803, dims, 3, px, sizeof px, 1)) return 0;
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    if (!write_idx(path, 0x801, dims, 1, y, NTRAIN, 1)) return 0;
    make_images(px, y, NTEST, 2);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    if (lethe_idx_write_images(path, px, NTEST, SIDE, SIDE) != LETHE_OK) return 0;
    dims[0] = NTEST;
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    return write_idx(path, 0x801, dims, 1, y, NTEST, 0);
}

/* Run `$LETHE_BIN args` with stdout and stderr to files; the exit status,
 * or -1 if it did not exit normally (or LETHE_BIN is unset). *out and *err
 * receive the outputs (caller frees). */
static int run_lethe(const char *args, char **out, char **err)
{
    *out = *err = NULL;
    const char *bin = getenv("LETHE_BIN");
    if (!bin || !*bin) return -1;
    char cmd[8192];
    path_buf ob, eb;
    const char *o = tpath(ob, "stdout.txt"), *e = tpath(eb, "stderr.txt");
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", bin, args, o, e);
    int st = system(cmd);
    *out = slurp(o, NULL);
    *err = slurp(e, NULL);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

static int have_bin(void)
{
    const char *bin = getenv("LETHE_BIN");
    if (bin && *bin && exists(bin)) return 1;
    test_fail(__FILE__, __LINE__, "LETHE_BIN is not set to the lethe binary (run `make test`); "
              "command-line test skipped");
    return 0;
}

/* The data folder D and a trained mlp M, made once per run (on disk) by
 * the first test that asks. */
typedef struct { path_buf dir, model; } fixture_paths;

static int fixture(fixture_paths *f)
{
    if (!have_bin()) return 0;
    path_buf top;
    if (mkdir(tpath(top, ""), 0755) != 0 && !exists(top)) return 0;
    tpath(f->dir, "cli-mnist");
    tpath(f->model, "cli-mlp.safetensors");
    if (exists(f->model)) return 1;
    char *o, *e, args[4096];
    CHECK(write_mnist(f->dir));
    snprintf(args, sizeof args,
             "train --arch mlp --data mnist --data-dir '%s' --epochs 1 --batch 32 --out '%s'",
             f->dir, f->model);
    int rc = run_lethe(args, &o, &e);
    CHECK_MSG(rc == 0, "lethe train exited %d: %s", rc, e ? e : "");
    /* The table on stdout. */
    CHECK_MSG(o && strstr(o, "| arch |") && strstr(o, "| mlp | mnist | 300 | 1 |"),
              "train table: %s", o ? o : "");
    int ok = rc == 0 && exists(f->model);
    free(o);
    free(e);
    return ok;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

/* Files in test_tmpdir()/cli whose name contains ".tmp". */
static int temp_files_left(void)
{
    path_buf top;
    DIR *d = opendir(tpath(top, ""));
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) n += strstr(de->d_name, ".tmp") != NULL;
    closedir(d);
    return n;
}

/* Bad input: non-zero exit, one stderr line "lethe …" that contains
 * `needle`, nothing on stdout, and neither `out` nor `report` created. */
static void expect_fail_at(int line, const char *args, const char *needle, const char *out,
                           const char *report)
{
    if (out) remove(out);
    if (report) remove(report);
    char *o, *e;
    int rc = run_lethe(args, &o, &e);
    const char *err = e ? e : "";
    if (rc <= 0) test_fail(__FILE__, line, "`lethe %s` exited %d, expected an error", args, rc);
    if (count_lines(err) != 1 || strncmp(err, "lethe ", 6) != 0)
        test_fail(__FILE__, line, "`lethe %s`: stderr is not one 'lethe ...' line:\n%s", args, err);
    if (needle && !strstr(err, needle))
        test_fail(__FILE__, line, "`lethe %s`: message lacks '%s': %s", args, needle, err);
    if (o && *o) test_fail(__FILE__, line, "`lethe %s` printed to stdout: %s", args, o);
    if (out && exists(out)) test_fail(__FILE__, line, "`lethe %s` created %s", args, out);
    if (report && exists(report)) test_fail(__FILE__, line, "`lethe %s` created %s", args, report);
    if (temp_files_left() != 0)
        test_fail(__FILE__, line, "`lethe %s` left temporary files in %s/cli", args,
                  test_tmpdir());
    free(o);
    free(e);
}
#define expect_fail(args, needle, out, report) expect_fail_at(__LINE__, args, needle, out, report)

/* Copy the trained model to `name`, with `edit` applied to its bytes. */
static const char *edited_model(const fixture_paths *f, path_buf path, const char *name,
                                void (*edit)(char *buf, size_t *len))
{
    size_t len;
    char *buf = slurp(f->model, &len);
    tpath(path, name);
    CHECK(buf != NULL);
    if (buf) {
        edit(buf, &len);
        CHECK(spit(path, buf, len));
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
    CHECK(exists(m2));
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

static double json_num(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
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
    CHECK(exists(u));
    CHECK(temp_files_left() == 0);

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

    char *text = slurp(rep, NULL);
    CHECK(text != NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(root != NULL, "report is not JSON");
    if (root) {
        const cJSON *run = cJSON_GetObjectItemCaseSensitive(root, "run");
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
        const cJSON *met = cJSON_GetObjectItemCaseSensitive(root, "metrics");
        const cJSON *trace = cJSON_GetObjectItemCaseSensitive(run, "trace");
        /* EUPMU: 3 forward and 2 backward batches per step (ALGORITHM.md §3). */
        CHECK(json_num(run, "forward_passes") == 15.0);
        CHECK(json_num(run, "backward_passes") == 10.0);
        CHECK(json_num(run, "steps") == 5.0);
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
        double ua = json_num(met, "UA"), ra = json_num(met, "RA");
        CHECK_MSG(ua >= 0 && ua <= 100 && ra >= 0 && ra <= 100, "UA %g RA %g", ua, ra);
    }
    cJSON_Delete(root);
    free(text);
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
                 "--batch 16 --no-eval --quiet --report '%s'",
                 f.model, f.dir, cases[i].opts, rep);
        int rc = run_lethe(args, &o, &e);
        CHECK_MSG(rc == 0, "%s: exited %d: %s", cases[i].opts, rc, e ? e : "");
        free(o);
        free(e);
        char *text = slurp(rep, NULL);
        cJSON *root = text ? cJSON_Parse(text) : NULL;
        const cJSON *run = cJSON_GetObjectItemCaseSensitive(root, "run");
        CHECK_MSG(json_num(run, "forward_passes") == cases[i].fwd &&
                      json_num(run, "backward_passes") == cases[i].bwd,
                  "%s: %g/%g passes, expected %g/%g", cases[i].opts,
                  json_num(run, "forward_passes"), json_num(run, "backward_passes"),
                  cases[i].fwd, cases[i].bwd);
        cJSON_Delete(root);
        free(text);
        remove(rep);
    }
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
        {"--forget class:0 --ungrad-form twice", "twice"},
        {"--forget class:0 --bogus 1", "--bogus"},
        {"--forget class:0 --steps", "--steps"},
        {"--method eupmu", "--forget"},
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
    CHECK(write_mnist(trunc) && write_mnist(magic));
    char path[600];
    size_t len;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", trunc);
    char *gz = slurp(path, &len);
    CHECK(gz && spit(path, gz, len / 2));
    free(gz);
    static uint8_t px[NTRAIN * SIDE * SIDE], y[NTRAIN];
    make_images(px, y, NTRAIN, 1);
    uint32_t dims[3] = {NTRAIN, SIDE, SIDE};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", magic);
    CHECK(write_idx(path, 0x804, dims, 3, px, sizeof px, 1));
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
