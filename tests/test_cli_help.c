/* What a newcomer meets first (issue 19): `lethe help CMD`, help grouped
 * under headings with examples, --quiet accepted everywhere and truly
 * quiet, hints that name the fix (random:10%, resnet8, --task diffusion),
 * a diffusion checkpoint routed to the diffusion form, the settings file
 * found beside the program and a missing named one refused, and the stamp
 * of every JSON report. Runs $LETHE_BIN on a tiny MNIST-format set; every
 * test takes a second or two. */
#include "test.h"
#include "cli_util.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lethe.h"

#define SUB "help"

typedef cli_t_path_buf path_buf;

static const char *tpath(path_buf buf, const char *name) { return cli_t_path(buf, SUB, name); }

static int run(const char *args, char **out, char **err)
{
    char *o, *e;
    int rc = cli_t_run(SUB, args, &o, &e);
    if (out) *out = o;
    else free(o);
    if (err) *err = e;
    else free(e);
    return rc;
}

/* `lethe args` exits `want` with one stderr line "lethe …" holding n1 and
 * n2 (unless NULL), and nothing on stdout. */
static void expect_at(int line, int want, const char *args, const char *n1, const char *n2)
{
    char *o, *e;
    int rc = run(args, &o, &e);
    const char *err = e ? e : "";
    if (rc != want)
        test_fail(__FILE__, line, "`lethe %s` exited %d, expected %d: %s", args, rc, want, err);
    if (cli_t_count_lines(err) != 1 || strncmp(err, "lethe", 5) != 0)
        test_fail(__FILE__, line, "`lethe %s`: stderr is not one 'lethe ...' line:\n%s", args, err);
    if (n1 && !strstr(err, n1))
        test_fail(__FILE__, line, "`lethe %s`: message lacks '%s': %s", args, n1, err);
    if (n2 && !strstr(err, n2))
        test_fail(__FILE__, line, "`lethe %s`: message lacks '%s': %s", args, n2, err);
    if (o && *o) test_fail(__FILE__, line, "`lethe %s` printed to stdout: %s", args, o);
    free(o);
    free(e);
}
#define expect(want, args, n1, n2) expect_at(__LINE__, want, args, n1, n2)

/* The data folder and a trained mlp, made once per run. */
typedef struct { path_buf dir, model; } fixture_paths;

static int fixture(fixture_paths *f)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return 0;
    tpath(f->dir, "mnist");
    tpath(f->model, "mlp.safetensors");
    if (cli_t_exists(f->model)) return 1;
    static const cli_t_mnist spec = {300, 100, 28, 7, 1, 2, 0, 0};
    CHECK(cli_t_write_mnist(f->dir, &spec));
    char args[2048];
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --epochs 1 "
             "--batch 32 --out '%s'", f->dir, f->model);
    char *e;
    int rc = run(args, NULL, &e);
    CHECK_MSG(rc == 0, "lethe train exited %d: %s", rc, e ? e : "");
    free(e);
    return rc == 0 && cli_t_exists(f->model);
}

/* ------------------------------------------------------------- help */

TEST(help_cli_help_command_is_dash_dash_help)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    static const char *const cmds[] = {"train", "eval", "info", "unlearn", "bench", "tune",
                                       "demo", "sweep", "plot", "table", "sample"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char a1[64], a2[64];
        snprintf(a1, sizeof a1, "help %s", cmds[i]);
        snprintf(a2, sizeof a2, "%s --help", cmds[i]);
        char *o1, *o2;
        int r1 = run(a1, &o1, NULL), r2 = run(a2, &o2, NULL);
        CHECK_MSG(r1 == 0 && r2 == 0, "%s: exit %d, %s: exit %d", a1, r1, a2, r2);
        CHECK_MSG(o1 && o2 && strcmp(o1, o2) == 0 && strstr(o1, "usage: lethe "),
                  "`lethe %s` differs from `lethe %s`:\n%s\n---\n%s", a1, a2, o1 ? o1 : "",
                  o2 ? o2 : "");
        free(o1);
        free(o2);
    }
    /* The options of help choose the form, as they do for --help. */
    char *o;
    CHECK(run("help unlearn --task diffusion", &o, NULL) == 0);
    CHECK_MSG(o && strstr(o, "usage: lethe unlearn --task diffusion"), "%s", o ? o : "");
    free(o);
    CHECK(run("help", &o, NULL) == 0);
    CHECK_MSG(o && strstr(o, "lethe help COMMAND"), "lethe help: %s", o ? o : "");
    free(o);
    expect(2, "help trian", "unknown command 'trian'", "did you mean 'train'?");
}

/* Every command's help: groups under headings (the commands with many
 * options), examples that are lethe command lines, and a usage line that
 * marks as required only what is. */
TEST(help_cli_grouped_with_examples)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    static const struct { const char *cmd, *heading; } cases[] = {
        {"train", "\noutputs:\n"},  {"eval", "\nunlearning metrics (with --forget):\n"},
        {"unlearn", "\nrun control:\n"}, {"bench", "\nmethods:\n"},
        {"tune", "\nsettings file:\n"}, {"demo", "\nmodels and data:\n"},
        {"sweep", "\noutputs:\n"},  {"plot", "\ninputs:\n"},
        {"table", NULL},            {"info", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[64], ex[64];
        snprintf(args, sizeof args, "%s --help", cases[i].cmd);
        snprintf(ex, sizeof ex, "\n  lethe %s", cases[i].cmd);
        char *o;
        int rc = run(args, &o, NULL);
        CHECK_MSG(rc == 0 && o, "%s: exit %d", args, rc);
        if (!o) continue;
        CHECK_MSG(strstr(o, "\nexample") && strstr(o, ex), "%s: no example:\n%s", args, o);
        if (cases[i].heading)
            CHECK_MSG(strstr(o, cases[i].heading) && strstr(o, "\nevery command:\n  --force"),
                      "%s: not grouped:\n%s", args, o);
        else
            CHECK_MSG(strstr(o, "\noptions:\n"), "%s: no options:\n%s", args, o);
        /* Every line fits a terminal (help is wrapped at 79 columns). */
        int col = 0, widest = 0;
        for (size_t k = 0; o[k]; k++) {
            if (o[k] == '\n') col = 0;
            else if (((unsigned char)o[k] & 0xC0) != 0x80 && ++col > widest) widest = col;
        }
        CHECK_MSG(widest <= 80, "%s: a line of %d columns:\n%s", args, widest, o);
        free(o);
    }
    char *o;
    CHECK(run("unlearn --help", &o, NULL) == 0);
    /* --method has a default: optional; --model and --forget are not. */
    CHECK_MSG(o && strstr(o, "usage: lethe unlearn --model FILE --forget SPEC") &&
                  strstr(o, "[--method NAME]"), "unlearn usage: %s", o ? o : "");
    free(o);
    CHECK(run("bench --help", &o, NULL) == 0);
    CHECK_MSG(o && strstr(o, "fmnist-cw:") && strstr(o, "fmnist-rnd:") &&
                  strstr(o, "fmnist-ddpm-cw:"), "bench --help lacks a scenario:\n%s", o ? o : "");
    free(o);
}

/* --------------------------------------------------------- --quiet */

/* train, eval, info, unlearn with --quiet: results on stdout, nothing at
 * all on stderr; plot and table take the option. */
TEST(help_cli_quiet_everywhere)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf mb, rb;
    const char *model = tpath(mb, "quiet.safetensors"), *rep = tpath(rb, "quiet.json");
    char args[4096], *o, *e;
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --epochs 1 "
             "--batch 32 --quiet --force --out '%s'", f.dir, model);
    int rc = run(args, &o, &e);
    CHECK_MSG(rc == 0 && e && !*e, "train --quiet: exit %d, stderr: %s", rc, e ? e : "");
    CHECK_MSG(o && strstr(o, "| arch |") && cli_t_count_lines(o) == 3, "train --quiet: %s",
              o ? o : "");
    free(o);
    free(e);

    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --forget class:1 --quiet",
             model, f.dir);
    rc = run(args, &o, &e);
    CHECK_MSG(rc == 0 && e && !*e, "eval --quiet: exit %d, stderr: %s", rc, e ? e : "");
    CHECK_MSG(o && strstr(o, "| model | UA |"), "eval --quiet: %s", o ? o : "");
    free(o);
    free(e);

    snprintf(args, sizeof args, "info '%s' --quiet", model);
    rc = run(args, &o, &e);
    CHECK_MSG(rc == 0 && e && !*e && o && strstr(o, "metadata:"), "info --quiet: exit %d: %s",
              rc, e ? e : "");
    free(o);
    free(e);

    snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' --forget class:1 "
             "--steps 3 --batch 16 --no-eval --quiet --force --report '%s'", model, f.dir, rep);
    rc = run(args, &o, &e);
    CHECK_MSG(rc == 0 && e && !*e, "unlearn --quiet: exit %d, stderr: %s", rc, e ? e : "");
    free(o);
    free(e);

    path_buf pb;
    snprintf(args, sizeof args, "plot '%s' --quiet --force --out '%s'", rep,
             tpath(pb, "quiet-plot"));
    rc = run(args, &o, &e);
    CHECK_MSG(rc == 0 && o && !*o && e && !*e, "plot --quiet: exit %d: %s%s", rc, o ? o : "",
              e ? e : "");
    free(o);
    free(e);
    /* table takes --quiet (its input must be results of bench or sweep). */
    snprintf(args, sizeof args, "table --quiet '%s'", rep);
    rc = run(args, NULL, &e);
    CHECK_MSG(e && !strstr(e, "unknown option"), "table --quiet: %s", e ? e : "");
    free(e);
}

/* ------------------------------------------------------------ hints */

TEST(help_cli_hints_name_the_fix)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf nb, ob;
    char args[2048];
    const char *nodata = tpath(nb, "no-such-data"), *out = tpath(ob, "never.safetensors");
    /* Refused before the data is read: the data folder does not exist. */
    snprintf(args, sizeof args, "train --data-dir '%s' --forget random:10 --out '%s'", nodata, out);
    expect(2, args, "random:10%", NULL);
    snprintf(args, sizeof args, "eval --model m.safetensors --forget clas:0");
    expect(2, args, "did you mean --forget class:0?", NULL);
    snprintf(args, sizeof args, "train --data-dir '%s' --arch resnet --out '%s'", nodata, out);
    expect(2, args, "did you mean 'resnet8'?", "mlp, cnn, resnet8, resnet20, resnet18, vit-tiny, text-transformer, text-bag)");
    char *e;
    run(args, NULL, &e);
    CHECK_MSG(e && !strstr(e, "unet"), "a classifier's choices list unet: %s", e ? e : "");
    free(e);
    snprintf(args, sizeof args, "train --data-dir '%s' --arch unet --out '%s'", nodata, out);
    expect(2, args, "unet is a diffusion model", "--task diffusion");
    expect(2, "bench --scenario fmnist-cv", "did you mean 'fmnist-cw'?", "fmnist-ddpm-cw");
    /* A misspelt method gets the nearest name in every command that takes
     * one, both tasks, before anything is read. */
    snprintf(args, sizeof args, "unlearn --model m.safetensors --forget class:0 --method eupmuu "
             "--out '%s'", out);
    expect(2, args, "--method: unknown method 'eupmuu'", "did you mean 'eupmu'?");
    expect(2, "tune --scenario fmnist-cw --method eupmuu", "did you mean 'eupmu'?", NULL);
    expect(2, "tune --scenario fmnist-ddpm-cw --method eupmuu", "did you mean 'eupmu'?", NULL);
    expect(2, "bench --scenario fmnist-ddpm-cw --methods ft,eupmuu", "did you mean 'eupmu'?",
           NULL);
    expect(2, "sweep --scenario fmnist-cw --method salun2 --param lr --values 0.1",
           "did you mean 'salun'?", NULL);
    CHECK(!cli_t_exists(out));
}

/* A checkpoint whose metadata says task=diffusion goes to the diffusion
 * form of unlearn and eval without --task: a header-only file is enough
 * to see the routing (the diffusion form's own messages and help). */
TEST(help_cli_diffusion_checkpoint_routed)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    static const char meta[] = "{\"__metadata__\":{\"format\":\"lethe\",\"task\":\"diffusion\","
                               "\"arch\":\"unet\"}}";
    unsigned char buf[8 + sizeof meta];
    uint64_t len = sizeof meta - 1;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, meta, len);
    path_buf mb;
    const char *model = tpath(mb, "ddpm-header.safetensors");
    CHECK(cli_t_spit(model, buf, 8 + len));
    char args[2048], *o, *e;
    snprintf(args, sizeof args, "unlearn --model '%s' --help", model);
    CHECK(run(args, &o, NULL) == 0);
    CHECK_MSG(o && strstr(o, "usage: lethe unlearn --task diffusion"), "%s", o ? o : "");
    free(o);
    snprintf(args, sizeof args, "unlearn --model '%s' --method ga", model);
    int rc = run(args, NULL, &e);
    CHECK_MSG(rc != 0 && e && cli_t_count_lines(e) == 1 && strstr(e, "class:C"),
              "unlearn of a diffusion checkpoint: %d: %s", rc, e ? e : "");
    free(e);
    snprintf(args, sizeof args, "eval --model '%s'", model);
    rc = run(args, NULL, &e);
    CHECK_MSG(rc != 0 && e && strstr(e, "--classifier"), "eval of a diffusion checkpoint: %s",
              e ? e : "");
    free(e);
}

/* ------------------------------------------------------- settings */

TEST(help_cli_tuned_named_must_exist)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf tb, nb;
    const char *tuned = tpath(tb, "no-such-tuned.json"), *nodata = tpath(nb, "no-such-data");
    char args[2048];
    snprintf(args, sizeof args, "bench --scenario fmnist-cw --tuned '%s' --data-dir '%s'", tuned,
             nodata);
    expect(2, args, "--tuned", "no-such-tuned.json: no such file");
    snprintf(args, sizeof args, "demo --tuned '%s' --data-dir '%s'", tuned, nodata);
    expect(2, args, "no-such-tuned.json: no such file", NULL);
    snprintf(args, sizeof args, "tune --method eupmu --scenario fmnist-cw --tuned '%s' "
             "--data-dir '%s'", tuned, nodata);
    expect(2, args, "no-such-tuned.json: no such file", NULL);
    snprintf(args, sizeof args, "sweep --scenario fmnist-cw --method eupmu --param eps "
             "--values 0.1 --tuned '%s' --data-dir '%s' --no-plot", tuned, nodata);
    expect(2, args, "no-such-tuned.json: no such file", NULL);
}

/* Every entry of the shipped settings file (configs/tuned.json beside the
 * program's tree) reads and validates: a hand-edited entry with a typo in
 * an option or a value out of range fails here, not in a user's bench. */
TEST(help_cli_shipped_settings_all_valid)
{
    if (!cli_t_have_bin()) return;
    char dir[PATH_MAX], cand[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s", getenv("LETHE_BIN"));
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(cand, sizeof cand, "%s/../configs/tuned.json", dir);
    char *text = cli_t_slurp(cand, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(root != NULL, "%s: missing or not JSON", cand);
    int entries = 0;
    const cJSON *scn, *meth;
    lethe_ddpm sched;   /* the diffusion scenario's entries validate with one */
    CHECK_OK(lethe_ddpm_init(&sched, LETHE_DDPM_T, LETHE_DDPM_BETA1, LETHE_DDPM_BETAT));
    cJSON_ArrayForEach(scn, root) {
        if (!cJSON_IsObject(scn)) continue;   /* "_note" */
        cJSON_ArrayForEach(meth, scn) {
            if (!cJSON_IsObject(meth)) continue;
            lethe_unlearn_config c;
            lethe_unlearn_config_default(&c);
            c.method = meth->string;
            if (strstr(scn->string, "ddpm")) c.ddpm = &sched;
            lethe_status st = lethe_settings_read(cand, scn->string, meth->string, &c);
            CHECK_MSG(st == LETHE_OK, "%s: %s/%s: %s", cand, scn->string, meth->string,
                      lethe_last_error());
            entries++;
        }
    }
    CHECK_MSG(entries >= 60, "%d entries read", entries);
    cJSON *cw = cJSON_GetObjectItemCaseSensitive(root, "cifar10-cw");
    CHECK(cw && cJSON_GetObjectItemCaseSensitive(cw, "eupmu-fast"));
    lethe_ddpm_free(&sched);
    cJSON_Delete(root);
    free(text);
}

/* Started in another folder, demo finds the settings of the tree it was
 * built in (build/lethe → configs/tuned.json) and says so. */
TEST(help_cli_settings_beside_the_program)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    const char *bin = getenv("LETHE_BIN");
    char dir[PATH_MAX], cand[PATH_MAX + 64], want[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", bin);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(cand, sizeof cand, "%s/../configs/tuned.json", dir);
    if (!realpath(cand, want)) {
        test_fail(__FILE__, __LINE__, "%s: missing: test skipped", cand);
        return;
    }
    path_buf eb, nb, cb, elsewhere;
    cli_t_path(elsewhere, SUB, "");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' demo --data-dir '%s' --cache '%s' 2>'%s' "
             ">/dev/null", elsewhere, bin, tpath(nb, "no-such-data"), tpath(cb, "cache"),
             tpath(eb, "demo-stderr.txt"));
    int st = system(cmd);
    char *e = cli_t_slurp(eb, NULL);
    char line[PATH_MAX + 64];
    snprintf(line, sizeof line, "lethe demo: settings from %s\n", want);
    CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1, "demo: status %d", st);
    CHECK_MSG(e && strncmp(e, line, strlen(line)) == 0, "demo's stderr: %s (want %s)",
              e ? e : "", line);
    free(e);
}

/* ------------------------------------------------------- the cache */

/* Count the files of folder dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "ls '%s' 2>/dev/null | grep -c '^%s' >'%s/count.txt'", dir, prefix,
             dir);
    if (system(cmd) == -1) return -1;
    char path[1100];
    snprintf(path, sizeof path, "%s/count.txt", dir);
    char *t = cli_t_slurp(path, NULL);
    int n = t ? atoi(t) : -1;
    free(t);
    return n;
}

/* Two data sets under one scenario's name: each gets its own cached
 * models (the key holds a fingerprint of the data), and each is reused
 * for its own data only. */
TEST(help_cli_cache_keyed_by_data)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf ab, bb, cb, jb;
    const char *da = tpath(ab, "fmnist-a"), *db = tpath(bb, "fmnist-b");
    const char *cache = tpath(cb, "keyed-cache"), *json = tpath(jb, "keyed.json");
    static const cli_t_mnist sa = {200, 100, 12, 1, 0, 0, 0, 0}, sb = {200, 100, 12, 2, 0, 0, 0, 0};
    CHECK(cli_t_write_mnist(da, &sa) && cli_t_write_mnist(db, &sb));
    char args[4096], *e;
    const char *dirs[3] = {da, db, da};
    for (int k = 0; k < 3; k++) {
        snprintf(args, sizeof args, "bench --scenario fmnist-cw --data-dir '%s' --cache '%s' "
                 "--epochs 1 --methods ft --steps 1 --force --report '%s'", dirs[k], cache, json);
        int rc = run(args, NULL, &e);
        CHECK_MSG(rc == 0, "bench on %s: %d: %s", dirs[k], rc, e ? e : "");
        if (k < 2)
            CHECK_MSG(count_prefixed(cache, "orig-cnn-fmnist-data-") == k + 1 &&
                          count_prefixed(cache, "retrain-cnn-fmnist-class0-data-") == k + 1,
                      "after bench %d: %d cached originals", k + 1,
                      count_prefixed(cache, "orig-cnn-fmnist-data-"));
        else
            CHECK_MSG(e && strstr(e, "reusing ") && strstr(e, "orig-cnn-fmnist-data-") &&
                          !strstr(e, "training the original"),
                      "the first data set's models were not reused: %s", e ? e : "");
        free(e);
    }
}

/* fmnist-vit-cw (issue 17): a vit-tiny original and Retrain trained with
 * the scenario's AdamW recipe and cached under the vit's name, then the
 * methods beside them in one table. */
TEST(help_cli_bench_vit_scenario)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf db, cb, jb;
    const char *data = tpath(db, "fmnist-vit"), *cache = tpath(cb, "vit-cache");
    const char *json = tpath(jb, "vit.json");
    static const cli_t_mnist spec = {80, 40, 8, 3, 0, 0, 0, 0};
    CHECK(cli_t_write_mnist(data, &spec));
    char args[4096], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "bench --scenario fmnist-vit-cw --data-dir '%s' --cache '%s' "
             "--epochs 1 --methods eupmu,rl --steps 2 --force --report '%s'", data, cache, json);
    int rc = run(args, &o, &e);
    CHECK_MSG(rc == 0, "bench fmnist-vit-cw: %d: %s", rc, e ? e : "");
    CHECK_MSG(count_prefixed(cache, "orig-vit-tiny-fmnist-data-") == 1 &&
                  count_prefixed(cache, "retrain-vit-tiny-fmnist-class0-data-") == 1,
              "cached: %d originals", count_prefixed(cache, "orig-vit-tiny-fmnist-data-"));
    CHECK_MSG(o && strstr(o, "| eupmu ") && strstr(o, "| rl ") && strstr(o, "| Retrain "),
              "table: %s", o ? o : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "info \"$(ls '%s'/orig-vit-tiny-fmnist-data-*)\"", cache);
    rc = run(args, &o, NULL);
    CHECK_MSG(rc == 0 && o && strstr(o, "adamw lr=0.002") && strstr(o, "wd=0.05") &&
                  !strstr(o, "augment=") &&
                  strstr(o, "vit-tiny"),
              "info of the cached original: %s", o ? o : "");
    free(o);
}

/* --augment flip: the mirror alone, named in the checkpoint's recipe and
 * the report; an unknown mode lists the four. */
TEST(help_cli_train_augment_flip)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf db, mb, jb;
    const char *data = tpath(db, "fmnist-flip"), *model = tpath(mb, "flip.safetensors");
    const char *json = tpath(jb, "flip.json");
    static const cli_t_mnist spec = {60, 20, 8, 3, 0, 0, 0, 0};
    CHECK(cli_t_write_mnist(data, &spec));
    char args[4096], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "train --arch mlp --data-dir '%s' --epochs 1 --augment flip "
             "--quiet --force --out '%s' --report '%s'", data, model, json);
    int rc = run(args, &o, &e);
    CHECK_MSG(rc == 0, "train --augment flip: %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "info '%s'", model);
    rc = run(args, &o, NULL);
    CHECK_MSG(rc == 0 && o && strstr(o, "augment=flip") && !strstr(o, "crop4"),
              "info: %s", o ? o : "");
    free(o);
    char *j = cli_t_slurp(json, NULL);
    CHECK_MSG(j && strstr(j, "\"augment_mode\":\t\"flip\"") && strstr(j, "\"augment\":\ttrue"),
              "report: %s", j ? j : "(none)");
    free(j);
    snprintf(args, sizeof args, "train --arch mlp --data-dir '%s' --augment shift --out '%s'",
             data, model);
    rc = run(args, NULL, &e);
    CHECK_MSG(rc == 2 && e && strstr(e, "unknown 'shift' (auto, on, flip, off)"),
              "bad mode: %d: %s", rc, e ? e : "");
    free(e);
}

/* --warmup: named in the checkpoint's recipe and the report; longer than
 * the run, or negative, is a usage error naming the option. */
TEST(help_cli_train_warmup)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf db, mb, jb;
    const char *data = tpath(db, "fmnist-warm"), *model = tpath(mb, "warm.safetensors");
    const char *json = tpath(jb, "warm.json");
    static const cli_t_mnist spec = {60, 20, 8, 3, 0, 0, 0, 0};
    CHECK(cli_t_write_mnist(data, &spec));
    char args[4096], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "train --arch mlp --data-dir '%s' --epochs 2 --warmup 0.5 "
             "--quiet --force --out '%s' --report '%s'", data, model, json);
    int rc = run(args, &o, &e);
    CHECK_MSG(rc == 0, "train --warmup 0.5: %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "info '%s'", model);
    rc = run(args, &o, NULL);
    CHECK_MSG(rc == 0 && o && strstr(o, "epochs=2 batch=128 warmup=0.5"), "info: %s",
              o ? o : "");
    free(o);
    char *j = cli_t_slurp(json, NULL);
    CHECK_MSG(j && strstr(j, "\"warmup_epochs\":\t0.5"), "report: %s", j ? j : "(none)");
    free(j);
    snprintf(args, sizeof args, "train --arch mlp --data-dir '%s' --epochs 2 --warmup 3 "
             "--force --out '%s'", data, model);
    rc = run(args, NULL, &e);
    CHECK_MSG(rc == 2 && e && strstr(e, "--warmup 3: longer than the run's 2 epochs"),
              "too long: %d: %s", rc, e ? e : "");
    free(e);
    snprintf(args, sizeof args, "train --arch mlp --data-dir '%s' --warmup -1 --force "
             "--out '%s'", data, model);
    rc = run(args, NULL, &e);
    CHECK_MSG(rc == 2 && e && strstr(e, "--warmup"), "negative: %d: %s", rc, e ? e : "");
    free(e);
}

/* A program outside a source tree (installed) keeps its cache and default
 * reports in $XDG_CACHE_HOME/lethe, never in the current folder, reads
 * PREFIX/share/lethe/tuned.json, and names both. */
TEST(help_cli_runs_folder_beside_the_program)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf pb, xb, wb, db, eb;
    const char *prefix = tpath(pb, "prefix"), *xdg = tpath(xb, "xdg"), *cwd = tpath(wb, "cwd");
    const char *data = tpath(db, "fmnist-a");
    static const cli_t_mnist sa = {200, 100, 12, 1, 0, 0, 0, 0};
    CHECK(cli_t_write_mnist(data, &sa));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s' && mkdir -p '%s/bin' '%s/share/lethe' '%s' && "
             "cp '%s' '%s/bin/lethe' && cp \"$(dirname '%s')/../configs/tuned.json\" "
             "'%s/share/lethe/tuned.json'", prefix, xdg, cwd, prefix, prefix, cwd,
             getenv("LETHE_BIN"), prefix, getenv("LETHE_BIN"), prefix);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "cd '%s' && XDG_CACHE_HOME='%s' '%s/bin/lethe' bench --scenario "
             "fmnist-cw --data-dir '%s' --epochs 1 --methods ft --steps 1 >/dev/null 2>'%s'",
             cwd, xdg, prefix, data, tpath(eb, "installed-stderr.txt"));
    int st = system(cmd);
    char *e = cli_t_slurp(eb, NULL);
    CHECK_MSG(st == 0, "installed bench: status %d: %s", st, e ? e : "");
    char want[1200], path[1200];
    snprintf(want, sizeof want, "settings from %s/share/lethe/tuned.json", prefix);
    CHECK_MSG(e && strstr(e, want), "stderr lacks '%s': %s", want, e ? e : "");
    snprintf(want, sizeof want, "cached as %s/lethe/cache/orig-cnn-fmnist-data-", xdg);
    CHECK_MSG(e && strstr(e, want), "stderr lacks '%s': %s", want, e ? e : "");
    free(e);
    snprintf(path, sizeof path, "%s/lethe/bench-fmnist-cw.json", xdg);
    CHECK_MSG(cli_t_exists(path), "%s: no default report", path);
    snprintf(path, sizeof path, "%s/runs", cwd);
    CHECK_MSG(!cli_t_exists(path), "%s: made in the current folder", path);
}

/* ------------------------------------------------------------ reports */

/* Every report carries its stamp, and parameters are written as typed. */
TEST(help_cli_report_stamp)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf rb;
    const char *rep = tpath(rb, "stamp.json");
    char args[4096];
    snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' --forget class:2 "
             "--steps 3 --batch 16 --lr 0.01 --eps 0.1 --no-eval --quiet --force --report '%s'",
             f.model, f.dir, rep);
    CHECK(run(args, NULL, NULL) == 0);
    char *text = cli_t_slurp(rep, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(root != NULL, "%s: not JSON", rep);
    if (root) {
        CHECK(cli_t_jnum(root, "schema_version") == 2);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "lethe_version");
        CHECK(cJSON_IsString(v) && strcmp(v->valuestring, LETHE_VERSION) == 0);
        v = cJSON_GetObjectItemCaseSensitive(root, "command_line");
        CHECK_MSG(cJSON_IsString(v) && strstr(v->valuestring, " unlearn --model ") &&
                      strstr(v->valuestring, "--forget class:2"), "command_line: %s",
                  cJSON_IsString(v) ? v->valuestring : "?");
        v = cJSON_GetObjectItemCaseSensitive(root, "created");
        int y, mo, d, h, mi, s;
        char z = 0;
        CHECK_MSG(cJSON_IsString(v) && strlen(v->valuestring) == 20 &&
                      sscanf(v->valuestring, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi,
                             &s, &z) == 7 && z == 'Z' && y >= 2024,
                  "created: %s", cJSON_IsString(v) ? v->valuestring : "?");
        /* The stamp comes first; the report's own keys follow. */
        CHECK(root->child && strcmp(root->child->string, "schema_version") == 0);
        CHECK(cJSON_GetObjectItemCaseSensitive(root, "config") != NULL);
    }
    /* 0.01 as typed, not the double nearest the float 0.01, in the
     * settings and in the per-step trace. */
    CHECK_MSG(text && strstr(text, "\"lr\":\t0.01,") && strstr(text, "\"eps\":\t0.1,") &&
                  strstr(text, "\"lr\":\t[0.01, 0.01, 0.01]") && !strstr(text, "0.0099999"),
              "floats not as typed: %s", text ? text : "");
    /* Keys named as the options (--a, --gamma) and the columns (MIA-Eff.). */
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    CHECK(cJSON_GetObjectItemCaseSensitive(cfg, "a") && cJSON_GetObjectItemCaseSensitive(cfg, "gamma"));
    CHECK(!cJSON_GetObjectItemCaseSensitive(cfg, "neggrad_a") &&
          !cJSON_GetObjectItemCaseSensitive(cfg, "salun_gamma"));
    cJSON_Delete(root);
    free(text);
}

/* Keys named as the options and the table columns: train's --wd and
 * --forget, MIA-Eff. as MIA_Eff; lethe table reads reports of schema 1
 * ("MIA") as well, and its CSV header is the key. */
TEST(help_cli_report_keys_as_named)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf mb, rb, eb, ob, nb;
    const char *model = tpath(mb, "keys.safetensors"), *rep = tpath(rb, "keys-train.json");
    const char *erep = tpath(eb, "keys-eval.json");
    char args[4096], *o;
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --epochs 1 "
             "--batch 32 --wd 0.001 --forget class:1 --quiet --force --out '%s' --report '%s'",
             f.dir, model, rep);
    CHECK(run(args, NULL, NULL) == 0);
    cJSON *root = cli_t_load_json(rep);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    CHECK_MSG(cli_t_jnum(cfg, "wd") == 0.001 && !cJSON_GetObjectItemCaseSensitive(cfg, "weight_decay"),
              "train config: wd %g", cli_t_jnum(cfg, "wd"));
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(cfg, "forget");
    CHECK(cJSON_IsString(fs) && strcmp(fs->valuestring, "class:1") == 0);
    cJSON_Delete(root);
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --forget class:1 --quiet "
             "--force --report '%s'", model, f.dir, erep);
    CHECK(run(args, NULL, NULL) == 0);
    root = cli_t_load_json(erep);
    const cJSON *met = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(met, "MIA_Eff")) &&
          !cJSON_GetObjectItemCaseSensitive(met, "MIA"));
    cJSON_Delete(root);

    static const char old[] = "{\"config\": {\"method\": \"ga\"}, \"metrics\": {\"UA\": 1, "
                              "\"RA\": 2, \"TA\": 3, \"MIA\": 44.5}}";
    static const char now[] = "{\"schema_version\": 2, \"config\": {\"method\": \"ga\"}, "
                              "\"metrics\": {\"UA\": 1, \"RA\": 2, \"TA\": 3, \"MIA_Eff\": 12.25}}";
    const char *fo = tpath(ob, "schema1.json"), *fn = tpath(nb, "schema2.json");
    CHECK(cli_t_spit(fo, old, sizeof old - 1) && cli_t_spit(fn, now, sizeof now - 1));
    snprintf(args, sizeof args, "table '%s'", fo);
    CHECK(run(args, &o, NULL) == 0);
    CHECK_MSG(o && strstr(o, "| 44.50 |"), "table of a schema 1 report: %s", o ? o : "");
    free(o);
    snprintf(args, sizeof args, "table '%s' --format csv", fn);
    CHECK(run(args, &o, NULL) == 0);
    CHECK_MSG(o && strstr(o, ",MIA_Eff,") && strstr(o, ",12.25,"), "csv: %s", o ? o : "");
    free(o);
}

/* Usage errors exit 2 in every command and both tasks, before any file is
 * read: missing required options, unknown choices, malformed specs. */
TEST(help_cli_usage_errors_exit_2_everywhere)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf ob;
    const char *out = tpath(ob, "never-written.png");
    char args[2048];
    expect(2, "sample", "--model FILE is required", NULL);
    expect(2, "sample --model no-such.safetensors", "--out GRID.png", NULL);
    snprintf(args, sizeof args, "sample --model no-such.safetensors --out '%s' --sampler dim", out);
    expect(2, args, "--sampler: unknown 'dim'", NULL);
    expect(2, "train --task diffusion", "--out FILE is required", NULL);
    snprintf(args, sizeof args, "train --task diffusion --out '%s' --schedule cosin", out);
    expect(2, args, "--schedule", NULL);
    snprintf(args, sizeof args, "train --task diffusion --out '%s' --forget clas:0", out);
    expect(2, args, "did you mean --forget class:0?", NULL);
    snprintf(args, sizeof args, "train --out '%s' --schedule cosin", out);
    expect(2, args, "--schedule", NULL);
    snprintf(args, sizeof args, "train --out '%s' --data fmnst", out);
    expect(2, args, "did you mean 'fmnist'?", NULL);
    expect(2, "eval --task diffusion --model no-such.safetensors", "--classifier FILE", NULL);
    expect(2, "eval --task diffusion --model a.safetensors --classifier b.safetensors "
              "--forget random:10%", "generation forgets classes", NULL);
    expect(2, "eval --model a.safetensors --arch resnet", "did you mean 'resnet8'?", NULL);
    CHECK(!cli_t_exists(out));
}
