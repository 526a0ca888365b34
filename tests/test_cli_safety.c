/* The command line never destroys what it did not create, and parses
 * arguments as people expect (issue 19), run as a program on a tiny data
 * set (60 train / 30 test images of 8×8, an mlp):
 *   - a device, a FIFO or "-" named as an output is written through, never
 *     replaced; a symbolic link keeps being a link and its target gets the
 *     bytes; no run state is named after a device;
 *   - an output file that exists is replaced only with --force;
 *   - unlearn that would keep nothing is refused;
 *   - --name=value, short options, stray arguments, "did you mean", and
 *     the exit codes: 0 success, 1 runtime error, 2 usage error. */
#include "test.h"
#include "cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define SUB "safety"

typedef cli_t_path_buf path_buf;

static const char *tpath(path_buf buf, const char *name)
{
    return cli_t_path(buf, SUB, name);
}

/* The data folder and a trained mlp, made once by the first test. */
typedef struct { path_buf dir, model; } fixture_paths;

static int fixture(fixture_paths *f)
{
    static const cli_t_mnist spec = {60, 30, 8, 19, 0, 0, 0, 0};
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return 0;
    tpath(f->dir, "mnist8");
    tpath(f->model, "base.safetensors");
    if (cli_t_exists(f->model)) return 1;
    CHECK(cli_t_write_mnist(f->dir, &spec));
    char *o, *e, args[2048];
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --epochs 1 "
             "--batch 16 --quiet --out '%s'", f->dir, f->model);
    int rc = cli_t_run(SUB, args, &o, &e);
    CHECK_MSG(rc == 0, "lethe train exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    return rc == 0 && cli_t_exists(f->model);
}

/* Run lethe; the exit status, stdout and stderr kept in *out and *err
 * (caller frees) when they are not NULL. */
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

/* `lethe args` exits `want` with one stderr line "lethe …" holding every
 * needle (NULL-terminated list) and nothing on stdout. */
static void expect_usage_at(int line, int want, const char *args, const char *n1,
                            const char *n2)
{
    char *o, *e;
    int rc = run(args, &o, &e);
    const char *err = e ? e : "";
    if (rc != want) test_fail(__FILE__, line, "`lethe %s` exited %d, expected %d: %s", args, rc,
                              want, err);
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
#define expect_status(want, args, n1, n2) expect_usage_at(__LINE__, want, args, n1, n2)

static int is_kind(const char *path, mode_t kind)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && (sb.st_mode & S_IFMT) == kind;
}

/* ------------------------------------------- never replace a device */

/* /dev/null named as an output is written to, not renamed over: it stays
 * a character device (as root the old rename would have replaced it; as
 * another user it failed), and no /dev/null.state is derived from it. */
TEST(safety_device_output_written_through)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    if (!is_kind("/dev/null", S_IFCHR)) {
        test_fail(__FILE__, __LINE__, "/dev/null is not a character device here: test skipped");
        return;
    }
    char args[2048];
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --json /dev/null", f.model,
             f.dir);
    char *o, *e;
    int rc = run(args, &o, &e);
    CHECK_MSG(rc == 0, "eval --json /dev/null exited %d: %s", rc, e ? e : "");
    CHECK_MSG(o && strstr(o, "| split |"), "eval table: %s", o ? o : "");
    free(o);
    free(e);
    CHECK(is_kind("/dev/null", S_IFCHR));

    /* A run whose only output is a device has no default run state. */
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --epochs 1 "
             "--batch 16 --quiet --checkpoint-every 1 --out /dev/null --report /dev/null", f.dir);
    rc = run(args, NULL, &e);
    CHECK_MSG(rc == 0, "train --out /dev/null exited %d: %s", rc, e ? e : "");
    free(e);
    CHECK(is_kind("/dev/null", S_IFCHR));
    CHECK(!cli_t_exists("/dev/null.state"));
    CHECK(cli_t_temp_files_left(SUB) == 0);
}

/* A FIFO named as an output: a reader (a child) gets the whole report,
 * and the FIFO is still a FIFO afterwards. */
TEST(safety_fifo_output_written_through)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf pb, gb;
    const char *fifo = tpath(pb, "report.fifo"), *got = tpath(gb, "from-fifo.json");
    remove(fifo);
    remove(got);
    if (mkfifo(fifo, 0600) != 0) {
        test_fail(__FILE__, __LINE__, "mkfifo %s: %s: test skipped", fifo, strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {     /* the reader: FIFO → file */
        int in = open(fifo, O_RDONLY), out = open(got, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char buf[4096];
        ssize_t k;
        while (in >= 0 && out >= 0 && (k = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)k) != k) break;
        _exit(0);
    }
    CHECK(pid > 0);
    char args[2048];
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --json '%s'", f.model, f.dir,
             fifo);
    char *e;
    int rc = run(args, NULL, &e);
    CHECK_MSG(rc == 0, "eval --json FIFO exited %d: %s", rc, e ? e : "");
    free(e);
    /* Should lethe have failed before opening it, free the reader. */
    int w = open(fifo, O_WRONLY | O_NONBLOCK);
    if (w >= 0) close(w);
    if (pid > 0) waitpid(pid, NULL, 0);
    CHECK(is_kind(fifo, S_IFIFO));
    cJSON *j = cli_t_load_json(got);
    CHECK_MSG(j && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "accuracy")),
              "the reader of the FIFO got no report");
    cJSON_Delete(j);
    CHECK(cli_t_temp_files_left(SUB) == 0);
    remove(fifo);
}

/* "-" is standard output: the JSON alone there, the table on stderr. */
TEST(safety_json_dash_is_stdout)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    char args[2048];
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --forget class:1 --json -",
             f.model, f.dir);
    char *o, *e;
    int rc = run(args, &o, &e);
    CHECK_MSG(rc == 0, "eval --json - exited %d: %s", rc, e ? e : "");
    cJSON *j = o ? cJSON_Parse(o) : NULL;
    CHECK_MSG(j && cJSON_GetObjectItemCaseSensitive(j, "metrics"), "stdout is not the JSON: %s",
              o ? o : "");
    CHECK_MSG(e && strstr(e, "| model |"), "the table is not on stderr: %s", e ? e : "");
    cJSON_Delete(j);
    free(o);
    free(e);
    CHECK(!cli_t_exists("-"));

    /* One output may have standard output, not two. */
    snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' --forget class:1 "
             "--method ft --steps 1 --batch 16 --out - --report -", f.model, f.dir);
    expect_status(2, args, "--report -", "already taken");
}

/* A symbolic link to a file stays a link; the file it names gets the new
 * report. A link to nothing makes the file it names. */
TEST(safety_symlink_followed_not_replaced)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf rb, lb, db, nb;
    const char *real = tpath(rb, "real.json"), *link = tpath(lb, "link.json");
    const char *dangling = tpath(db, "dangling.json"), *made = tpath(nb, "made.json");
    remove(real);
    remove(link);
    remove(dangling);
    remove(made);
    CHECK(cli_t_spit(real, "old", 3));
    CHECK(symlink("real.json", link) == 0);     /* relative: to the link's folder */
    char args[2048];
    /* The file exists (through the link): --force is needed. */
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --json '%s'", f.model, f.dir,
             link);
    expect_status(2, args, "--force", NULL);
    char *text = cli_t_slurp(real, NULL);
    CHECK(text && strcmp(text, "old") == 0);
    free(text);
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --json '%s' --force", f.model,
             f.dir, link);
    char *e;
    int rc = run(args, NULL, &e);
    CHECK_MSG(rc == 0, "eval --json LINK --force exited %d: %s", rc, e ? e : "");
    free(e);
    CHECK(is_kind(link, S_IFLNK) && is_kind(real, S_IFREG));
    cJSON *j = cli_t_load_json(real);
    CHECK_MSG(j && cJSON_GetObjectItemCaseSensitive(j, "accuracy"), "the link's target has no "
              "report");
    cJSON_Delete(j);

    CHECK(symlink("made.json", dangling) == 0);
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --json '%s'", f.model, f.dir,
             dangling);
    rc = run(args, NULL, &e);
    CHECK_MSG(rc == 0, "eval --json DANGLING exited %d: %s", rc, e ? e : "");
    free(e);
    CHECK(is_kind(dangling, S_IFLNK) && is_kind(made, S_IFREG));
    CHECK(cli_t_temp_files_left(SUB) == 0);
}

/* ------------------------------------------------------- --force */

TEST(safety_existing_output_needs_force)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf ob;
    const char *out = tpath(ob, "exists.safetensors");
    CHECK(cli_t_spit(out, "an earlier model", 16));
    char args[2048];
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --epochs 1 "
             "--batch 16 --quiet --out '%s'", f.dir, out);
    expect_status(2, args, out, "--force");
    char *text = cli_t_slurp(out, NULL);
    CHECK_MSG(text && strcmp(text, "an earlier model") == 0, "--out was overwritten");
    free(text);
    /* --name=value, and --force before the rest. */
    snprintf(args, sizeof args, "train --force --arch=mlp --data mnist --data-dir='%s' "
             "--epochs=1 --batch 16 --lr=0.1 --quiet --out='%s'", f.dir, out);
    char *e;
    int rc = run(args, NULL, &e);
    CHECK_MSG(rc == 0, "train --force exited %d: %s", rc, e ? e : "");
    free(e);
    lethe_metadata md = {0};
    CHECK_OK(lethe_checkpoint_read_meta(out, &md));
    const char *recipe = lethe_meta_get(&md, "recipe");
    CHECK_MSG(recipe && strstr(recipe, "lr=0.1 "), "--lr=0.1 did not reach the run: %s",
              recipe ? recipe : "(none)");
    /* A flag takes no value. */
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --quiet=yes "
             "--out '%s'", f.dir, out);
    expect_status(2, args, "--quiet", "takes no value");
}

/* ------------------------------------------- unlearn keeps something */

TEST(safety_unlearn_without_outputs_refused)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    char args[2048];
    snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' --forget class:0 "
             "--method salun --steps 2 --batch 16", f.model, f.dir);
    expect_status(2, args, "nothing would be kept", "--out");
    /* With a report (to standard output) it runs. */
    char *o, *e;
    char args2[2100];
    snprintf(args2, sizeof args2, "%s --no-eval --quiet --report -", args);
    int rc = run(args2, &o, &e);
    CHECK_MSG(rc == 0, "unlearn --report - exited %d: %s", rc, e ? e : "");
    cJSON *j = o ? cJSON_Parse(o) : NULL;
    CHECK_MSG(j && cJSON_GetObjectItemCaseSensitive(j, "run"), "stdout is not the report: %s",
              o ? o : "");
    cJSON_Delete(j);
    free(o);
    free(e);
}

/* ------------------------------------------------ argument parsing */

TEST(safety_short_options_and_strays_refused)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    path_buf ob;
    const char *out = tpath(ob, "never.safetensors");
    remove(out);
    char args[2048];
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' -q --out '%s'",
             f.dir, out);
    expect_status(2, args, "-q", "did you mean --quiet?");
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' -o '%s'", f.dir,
             out);
    expect_status(2, args, "-o", "did you mean --out?");
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' stray --out '%s'",
             f.dir, out);
    expect_status(2, args, "unexpected argument 'stray'", NULL);
    CHECK(!cli_t_exists(out));
    snprintf(args, sizeof args, "info '%s' '%s'", f.model, f.model);
    expect_status(2, args, "unexpected argument", NULL);
    /* -h is still help. */
    char *o;
    int rc = run("train -h", &o, NULL);
    CHECK_MSG(rc == 0 && o && strstr(o, "--force") && strstr(o, "usage: lethe train"),
              "train -h: %d: %s", rc, o ? o : "");
    free(o);
}

TEST(safety_did_you_mean)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    expect_status(2, "trian", "unknown command 'trian'", "did you mean 'train'?");
    expect_status(2, "frobnicate", "unknown command 'frobnicate' (see lethe --help)", NULL);
    expect_status(2, "train --lrr 0.1 --out x.safetensors", "--lrr", "did you mean --lr?");
    expect_status(2, "eval --modle m.safetensors", "did you mean --model?", NULL);
    expect_status(2, "eval --frobnicate-widely 1", "unknown option --frobnicate-widely (see", NULL);
}

/* 0 success, 1 runtime error, 2 usage error (the command line must change). */
TEST(safety_exit_codes)
{
    fixture_paths f;
    if (!fixture(&f)) return;
    char args[2048];
    expect_status(2, "eval", "--model FILE is required", NULL);
    expect_status(2, "unlearn --forget class:0", "--model FILE is required", NULL);
    expect_status(2, "train --arch mlp", "--out FILE is required", NULL);
    expect_status(2, "bench --scenario fmnist-cw --methods eupmu,foo", "foo", NULL);
    expect_status(2, "bench --scenario fmnist-cw --match-unseen on", "forgets a class", NULL);
    expect_status(2, "bench --scenario fmnist-rnd --match-unseen maybe", "maybe", NULL);
    expect_status(2, "bench --scenario fmnist-cw --forget-seed 3", "no seed draws", NULL);
    expect_status(2, "sweep --scenario fmnist-cw --method eupmu --param eps --values 0.1,x",
                  "'x' is not a number", NULL);
    expect_status(2, "table", "expected one JSON file", NULL);
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --split validation", f.model,
             f.dir);
    expect_status(2, args, "--split", NULL);
    /* Runtime: the command line is right, the world is not. */
    path_buf mb;
    snprintf(args, sizeof args, "eval --model '%s'", tpath(mb, "no-such-model.safetensors"));
    expect_status(1, args, "no-such-model", NULL);
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s'", f.model, f.dir);
    CHECK(run(args, NULL, NULL) == 0);
    /* --help documents them. */
    char *o;
    int rc = run("--help", &o, NULL);
    CHECK_MSG(rc == 0 && o && strstr(o, "exit status") && strstr(o, "2 usage error") &&
                  strstr(o, "130"), "lethe --help: %s", o ? o : "");
    free(o);
}
