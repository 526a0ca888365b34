/* The CIFAR-10 protocol (issue 16): lethe bench, tune and sweep on the
 * scenarios cifar10-cw and cifar10-rnd, the gradient-conflict diagnostics
 * of an unlearning run plotted, and a CIFAR model given Fashion-MNIST data
 * or the reverse. All on CIFAR-format binaries the test writes (5 training
 * batches of 40 images, a test batch of 100: ten binary RGB prototypes
 * with 5% of their bytes flipped); nothing is downloaded. One epoch of
 * resnet20 at batch 128 is two steps; the whole file takes a minute or
 * two on a free 2-core machine. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "test.h"

#define SUB "cifarproto"
enum { REC = 3073, PX = 3072, PER_BATCH = 40, NTEST = 100 };

typedef cli_t_path_buf path_buf;

static const char *tpath(path_buf buf, const char *name) { return cli_t_path(buf, SUB, name); }

static int run(const char *args, char **out, char **err) { return cli_t_run(SUB, args, out, err); }

/* `lethe args` exits 0 and its stdout holds every string of want (NULL
 * ended); failures reported at the caller's line. */
static void expect_ok_at(int line, const char *args, const char *const *want)
{
    char *o = NULL, *e = NULL;
    int rc = run(args, &o, &e);
    if (rc != 0) test_fail(__FILE__, line, "`lethe %s` exited %d: %s", args, rc, e ? e : "");
    for (int i = 0; want[i]; i++)
        if (!o || !strstr(o, want[i]))
            test_fail(__FILE__, line, "`lethe %s`: stdout lacks '%s': %s", args, want[i],
                      o ? o : "");
    free(o);
    free(e);
}
#define expect_ok(args, ...) expect_ok_at(__LINE__, args, (const char *const[]){__VA_ARGS__, NULL})

/* A CIFAR-10 folder: data_batch_1..5.bin and test_batch.bin, image i of a
 * file of class (i + salt) mod 10. 1 on success. */
static int write_cifar10(const char *dir)
{
    if (!cli_t_mkdir(SUB)) return 0;
    char path[600];
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    if (cli_t_exists(path)) return 1;          /* made by an earlier test of this run */
    snprintf(path, sizeof path, "%s/cifar10", SUB);
    if (!cli_t_mkdir(path)) return 0;
    lethe_rng r;
    lethe_rng_seed(&r, 16);
    uint8_t *proto = malloc(10 * PX), *recs = malloc((size_t)NTEST * REC);
    int ok = proto && recs;
    for (size_t p = 0; ok && p < 10 * PX; p++) proto[p] = lethe_rng_uniform(&r) < 0.3f ? 255 : 0;
    for (int k = 1; ok && k <= 6; k++) {
        const int n = k == 6 ? NTEST : PER_BATCH;
        for (int i = 0; i < n; i++) {
            uint8_t y = (uint8_t)((i + k) % 10), *rec = recs + (size_t)i * REC;
            rec[0] = y;
            for (int p = 0; p < PX; p++) {
                uint8_t v = proto[(size_t)y * PX + p];
                rec[1 + p] = lethe_rng_uniform(&r) < 0.05f ? (uint8_t)(255 - v) : v;
            }
        }
        if (k == 6) snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        else snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, k);
        ok = cli_t_spit(path, recs, (size_t)n * REC);
    }
    free(proto);
    free(recs);
    return ok;
}

/* The cached model whose file name starts with `stem` in folder dir, into
 * out; 1 if there is one. */
static int find_cached(const char *dir, const char *stem, path_buf out)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));)
        if (strncmp(e->d_name, stem, strlen(stem)) == 0) {
            snprintf(out, sizeof(path_buf), "%s/%s", dir, e->d_name);
            found = 1;
        }
    closedir(d);
    return found;
}

/* The value of metadata key in a checkpoint ("" if none; static). */
static const char *meta(const char *path, const char *key)
{
    static char v[512];
    lethe_metadata md = {0};
    v[0] = 0;
    if (lethe_checkpoint_read_meta(path, &md) == LETHE_OK && lethe_meta_get(&md, key))
        snprintf(v, sizeof v, "%s", lethe_meta_get(&md, key));
    return v;
}

static int setup(path_buf dir, path_buf cache)
{
    if (!cli_t_have_bin()) return 0;
    tpath(dir, "cifar10");
    tpath(cache, "cache");
    return write_cifar10(dir);
}

/* CI's time: under ASan the runs that train resnet20 take minutes each
 * (the bench, tune and sweep code they reach is the Fashion-MNIST tests'
 * too). */
static int heavy_ok(void)
{
    return !test_skip_under_asan("LETHE_CIFAR_SAN", "resnet20 protocol runs");
}

/* bench on both scenarios: resnet20 trained with the scenario's recipe
 * (lr 0.1, augmentation, the epochs given), the forget sets of the
 * scenarios, every method's row; a class-wise scenario takes no forget
 * seed. */
TEST(cifar_protocol_bench_both_scenarios)
{
    if (!heavy_ok()) return;
    path_buf dir, cache, rep, orig, retrain;
    if (!setup(dir, cache)) return;
    char args[4096];
    snprintf(args, sizeof args, "bench --scenario cifar10-cw --data-dir '%s' --cache '%s' "
             "--epochs 1 --methods eupmu,rl --steps 2 --report '%s' --quiet --force", dir, cache,
             tpath(rep, "bench-cw.json"));
    expect_ok(args, "cifar10-cw: forget class:0 (20 images), resnet20", "| eupmu |", "| rl |",
              "| Retrain");
    cJSON *root = cli_t_load_json(rep);
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(root, "scenario");
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(root, "arch");
    CHECK(cJSON_IsString(js) && strcmp(js->valuestring, "cifar10-cw") == 0);
    CHECK(cJSON_IsString(ja) && strcmp(ja->valuestring, "resnet20") == 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "methods")) == 2);
    cJSON_Delete(root);
    /* The cached models: the scenario's recipe, the data set, Retrain's forget set. */
    CHECK(find_cached(cache, "orig-resnet20-cifar10-data-", orig));
    CHECK(find_cached(cache, "retrain-resnet20-cifar10-class0-data-", retrain));
    CHECK_MSG(strcmp(meta(orig, "recipe"), "sgd lr=0.1 schedule=cosine momentum=0.9 wd=0.0005 "
                     "epochs=1 batch=128 augment=crop4+flip") == 0,
              "recipe: %s", meta(orig, "recipe"));
    CHECK(strcmp(meta(orig, "dataset"), "cifar10") == 0 &&
          strcmp(meta(orig, "in_shape"), "3,32,32") == 0);
    CHECK(strcmp(meta(retrain, "trained_without"), "class:0") == 0);

    snprintf(args, sizeof args, "bench --scenario cifar10-rnd --data-dir '%s' --cache '%s' "
             "--epochs 1 --methods eupmu --steps 2 --report '%s' --quiet --force", dir, cache,
             tpath(rep, "bench-rnd.json"));
    expect_ok(args, "cifar10-rnd: forget random:", "| eupmu |");
    CHECK(find_cached(cache, "retrain-resnet20-cifar10-random0.1-data-", retrain));

    snprintf(args, sizeof args, "bench --scenario cifar10-cw --forget-seed 3 --data-dir '%s' "
             "--cache '%s' --epochs 1 --quiet", dir, cache);
    cli_t_expect_fail_at(__FILE__, __LINE__, SUB, args, "cifar10-cw forgets a class", 1);
}

/* tune and sweep take the scenarios too, with the cached models. */
TEST(cifar_protocol_tune_and_sweep)
{
    if (!heavy_ok()) return;
    path_buf dir, cache, json;
    if (!setup(dir, cache)) return;
    char args[4096];
    snprintf(args, sizeof args, "tune --method eupmu --scenario cifar10-cw --grid 'lr=0.01,0.02' "
             "--data-dir '%s' --cache '%s' --epochs 1 --quiet", dir, cache);
    expect_ok(args, "| 0.01 |", "| 0.02 |", "best: lr=");
    snprintf(args, sizeof args, "sweep --scenario cifar10-rnd --method eupmu --param eps "
             "--values 0.01,0.1 --steps 2 --data-dir '%s' --cache '%s' --epochs 1 --json '%s' "
             "--no-plot --quiet --force", dir, cache, tpath(json, "sweep.json"));
    expect_ok(args, "| eupmu eps=0.01 |", "| eupmu eps=0.1 |");
    cJSON *root = cli_t_load_json(json);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "methods")) >= 2);
    cJSON_Delete(root);
}

/* The seed's third check on this scenario: an EUPMU run with
 * --diagnostics records cos(g_u, g_r) at every step, and lethe plot draws
 * it (a PNG and an SVG). */
TEST(cifar_protocol_diagnostics_plot)
{
    if (!heavy_ok()) return;
    path_buf dir, cache, orig, rep, out, prefix;
    char png[sizeof(path_buf) + 8];
    if (!setup(dir, cache)) return;
    char args[4096], *e = NULL;
    snprintf(args, sizeof args, "bench --scenario cifar10-cw --data-dir '%s' --cache '%s' "
             "--epochs 1 --methods ft --steps 1 --report - --quiet", dir, cache);
    CHECK(run(args, NULL, NULL) == 0);   /* the cached original, made once */
    CHECK(find_cached(cache, "orig-resnet20-cifar10-data-", orig));
    const int steps = 4;
    snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' --forget class:0 "
             "--method eupmu --steps %d --diagnostics --report '%s' --out '%s' --quiet --force",
             orig, dir, steps, tpath(rep, "diag.json"), tpath(out, "diag.safetensors"));
    int rc = run(args, NULL, &e);
    CHECK_MSG(rc == 0, "unlearn exited %d: %s", rc, e ? e : "");
    free(e);
    cJSON *root = cli_t_load_json(rep);
    const cJSON *run_ = cJSON_GetObjectItemCaseSensitive(root, "run");
    const cJSON *trace = cJSON_GetObjectItemCaseSensitive(run_, "trace");
    const cJSON *cosv = cJSON_GetObjectItemCaseSensitive(trace, "cos");
    CHECK_MSG(cJSON_GetArraySize(cosv) == steps, "trace.cos has %d entries, want %d",
              cJSON_GetArraySize(cosv), steps);
    int finite = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cosv) finite += cJSON_IsNumber(it) && it->valuedouble >= -1.0 &&
                                           it->valuedouble <= 1.0;
    CHECK_MSG(finite == steps, "%d of %d cos values in [-1, 1]", finite, steps);
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(run_, "diagnostics")));
    cJSON_Delete(root);
    snprintf(args, sizeof args, "plot '%s' --out '%s' --quiet", rep, tpath(prefix, "diag"));
    rc = run(args, NULL, &e);
    CHECK_MSG(rc == 0, "plot exited %d: %s", rc, e ? e : "");
    free(e);
    snprintf(png, sizeof png, "%s.png", prefix);
    CHECK_MSG(cli_t_is_png(png), "%s is not a PNG", png);
}

/* A CIFAR model on Fashion-MNIST data, and a Fashion-MNIST model on
 * CIFAR-10: one line each, naming both shapes. */
TEST(cifar_protocol_model_and_data_disagree)
{
    path_buf dir, cache, orig, fm, fmodel, out;
    if (!setup(dir, cache)) return;
    char args[4096];
    /* An mlp stands for any CIFAR model (a resnet20 epoch takes minutes
     * under ASan): the checks are on the input shape and normalisation. */
    snprintf(args, sizeof args, "train --arch mlp --data cifar10 --data-dir '%s' --epochs 1 "
             "--batch 32 --out '%s' --quiet --force", dir, tpath(orig, "cifar-mlp.safetensors"));
    CHECK(run(args, NULL, NULL) == 0);
    static const cli_t_mnist spec = {60, 20, 28, 3, 4, 5, 1, 1};
    CHECK(cli_t_write_mnist(tpath(fm, "fmnist"), &spec));
    snprintf(args, sizeof args, "unlearn --model '%s' --data fmnist --data-dir '%s' "
             "--forget class:0 --method ft --steps 1 --out '%s' --quiet", orig, fm,
             tpath(out, "never.safetensors"));
    cli_t_expect_fail_at(__FILE__, __LINE__, SUB, args,
                         "model expects inputs 3,32,32, data set fmnist has 1,28,28", 1);
    snprintf(args, sizeof args, "train --arch mlp --data fmnist --data-dir '%s' --epochs 1 "
             "--batch 32 --out '%s' --quiet --force", fm, tpath(fmodel, "fm.safetensors"));
    CHECK(run(args, NULL, NULL) == 0);
    snprintf(args, sizeof args, "unlearn --model '%s' --data cifar10 --data-dir '%s' "
             "--forget class:0 --method ft --steps 1 --out '%s' --quiet", fmodel, dir, out);
    cli_t_expect_fail_at(__FILE__, __LINE__, SUB, args,
                         "model expects inputs 1,28,28, data set cifar10 has 3,32,32", 1);
    snprintf(args, sizeof args, "eval --model '%s' --data cifar10 --data-dir '%s' --quiet",
             fmodel, dir);
    cli_t_expect_fail_at(__FILE__, __LINE__, SUB, args,
                         "mlp model takes 1x28x28 inputs, data set cifar10 has 3x32x32", 1);
    CHECK(!cli_t_exists(out));

    /* The channel statistics travel with the model (Fashion-MNIST's too),
     * and the same images normalised otherwise (one's own set in CIFAR's
     * format, cifar:10, takes (p/255 − 0.5)/0.5) are refused. */
    CHECK_MSG(strcmp(meta(orig, "input_mean"),
                                                 "0.4914,0.4822,0.4465") == 0,
              "input_mean: %s", meta(orig, "input_mean"));
    CHECK_MSG(strcmp(meta(orig, "input_std"),
                                                "0.247,0.2435,0.2616") == 0,
              "input_std: %s", meta(orig, "input_std"));
    CHECK(strcmp(meta(fmodel, "input_mean"), "0.286") == 0);
    snprintf(args, sizeof args, "eval --model '%s' --data cifar:10 --data-dir '%s' --quiet",
             orig, dir);
    cli_t_expect_fail_at(__FILE__, __LINE__, SUB, args,
                         "was trained on inputs with input_mean 0.4914,0.4822,0.4465; the data "
                         "set's channel 0 has 0.5", 1);
    snprintf(args, sizeof args, "unlearn --model '%s' --data cifar:10 --data-dir '%s' "
             "--forget class:0 --method ft --steps 1 --out '%s' --quiet", orig, dir, out);
    cli_t_expect_fail_at(__FILE__, __LINE__, SUB, args, "input_mean 0.4914,0.4822,0.4465", 1);
    CHECK(!cli_t_exists(out));
}
