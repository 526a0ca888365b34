/* Bring your own model and data (issue 19): IDX files of any size, channel
 * count and class count (--data idx, idx:K), CIFAR-format binaries with a
 * stated class count (--data cifar:K), a forget list of indices, and a
 * PyTorch state_dict saved without Lethe's metadata, loaded with --arch.
 * Runs $LETHE_BIN on tiny sets; every test takes a second or two. */
#include "test.h"
#include "cli_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lethe.h"

#define SUB "own"

typedef cli_t_path_buf path_buf;

static const char *tpath(path_buf buf, const char *name) { return cli_t_path(buf, SUB, name); }

static int run(const char *args, char **err)
{
    char *o, *e;
    int rc = cli_t_run(SUB, args, &o, &e);
    free(o);
    if (err) *err = e;
    else free(e);
    return rc;
}

/* `lethe args` exits `want` with one stderr line holding n1 and n2. */
static void expect_at(int line, int want, const char *args, const char *n1, const char *n2)
{
    char *e;
    int rc = run(args, &e);
    const char *err = e ? e : "";
    if (rc != want)
        test_fail(__FILE__, line, "`lethe %s` exited %d, expected %d: %s", args, rc, want, err);
    if (cli_t_count_lines(err) != 1 || strncmp(err, "lethe ", 6) != 0)
        test_fail(__FILE__, line, "`lethe %s`: stderr is not one 'lethe ...' line:\n%s", args, err);
    if (n1 && !strstr(err, n1))
        test_fail(__FILE__, line, "`lethe %s`: message lacks '%s': %s", args, n1, err);
    if (n2 && !strstr(err, n2))
        test_fail(__FILE__, line, "`lethe %s`: message lacks '%s': %s", args, n2, err);
    free(e);
}
#define expect(want, args, n1, n2) expect_at(__LINE__, want, args, n1, n2)

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX file of 1 to 4 dimensions: magic 0x800 + ndim, sizes, bytes. */
static int write_idx(const char *path, const uint32_t *dims, int ndim, const uint8_t *data,
                     size_t len)
{
    uint8_t head[20];
    put_be32(head, 0x800u + (uint32_t)ndim);
    for (int d = 0; d < ndim; d++) put_be32(head + 4 + 4 * d, dims[d]);
    size_t hl = 4 + 4 * (size_t)ndim;
    uint8_t *buf = malloc(hl + len);
    if (!buf) return 0;
    memcpy(buf, head, hl);
    memcpy(buf + hl, data, len);
    int ok = cli_t_spit(path, buf, hl + len);
    free(buf);
    return ok;
}

/* A checkpoint's metadata value (static buffer; "" when absent). */
static const char *meta(const char *path, const char *key)
{
    static lethe_metadata md;
    memset(&md, 0, sizeof md);
    if (lethe_checkpoint_read_meta(path, &md) != LETHE_OK) return "";
    const char *v = lethe_meta_get(&md, key);
    return v ? v : "";
}

/* n images (n, H, W, C) channels last: class i % K, a random prototype per
 * class with 5% of its bytes flipped. */
static void own_images(uint8_t *hwc, uint8_t *y, int n, int hw, int C, int K, lethe_rng *r)
{
    size_t d = (size_t)hw * C;
    uint8_t *proto = malloc((size_t)K * d);
    if (!proto) return;
    for (size_t p = 0; p < (size_t)K * d; p++) proto[p] = lethe_rng_uniform(r) < 0.3f ? 255 : 0;
    for (int i = 0; i < n; i++) {
        y[i] = (uint8_t)(i % K);
        for (size_t p = 0; p < d; p++) {
            uint8_t v = proto[y[i] * d + p];
            hwc[(size_t)i * d + p] = lethe_rng_uniform(r) < 0.05f ? (uint8_t)(255 - v) : v;
        }
    }
    free(proto);
}

/* ------------------------------------------------------------- IDX */

/* Colour images as a 4-dimensional IDX, 4 classes: read channels last and
 * channels first to the same pixels; trained, evaluated and unlearned from
 * the command line with a forget list of indices; labels beyond a stated
 * class count refused naming the file. */
TEST(own_cli_idx_any_channels_and_classes)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    enum { NTR = 120, NTE = 40, S = 8, C = 3, K = 4 };
    path_buf db, cb;
    const char *dir = tpath(db, "idx-hwc"), *dir_chw = tpath(cb, "idx-chw");
    CHECK(cli_t_mkdir("own/idx-hwc") && cli_t_mkdir("own/idx-chw"));
    lethe_rng r;
    lethe_rng_seed(&r, 19);
    uint8_t *hwc = malloc((size_t)NTR * S * S * C), *chw = malloc((size_t)NTR * S * S * C);
    uint8_t y[NTR];
    if (!hwc || !chw) {
        free(hwc);
        free(chw);
        CHECK(0);
        return;
    }
    for (int split = 0; split < 2; split++) {
        int n = split ? NTE : NTR;
        own_images(hwc, y, n, S * S, C, K, &r);
        for (int i = 0; i < n; i++)         /* the same images, (N, C, H, W) */
            for (int p = 0; p < S * S; p++)
                for (int k = 0; k < C; k++)
                    chw[((size_t)i * C + k) * S * S + p] = hwc[((size_t)i * S * S + p) * C + k];
        const char *stem = split ? "test" : "train";
        char name[128];
        uint32_t d_hwc[4] = {(uint32_t)n, S, S, C}, d_chw[4] = {(uint32_t)n, C, S, S};
        uint32_t d_lab[1] = {(uint32_t)n};
        size_t len = (size_t)n * S * S * C;
        snprintf(name, sizeof name, "%s/%s-images-idx4-ubyte", dir, stem);
        CHECK(write_idx(name, d_hwc, 4, hwc, len));
        snprintf(name, sizeof name, "%s/%s-labels-idx1-ubyte", dir, stem);
        CHECK(write_idx(name, d_lab, 1, y, (size_t)n));
        snprintf(name, sizeof name, "%s/%s-images-idx4-ubyte", dir_chw, stem);
        CHECK(write_idx(name, d_chw, 4, chw, len));
        snprintf(name, sizeof name, "%s/%s-labels-idx1-ubyte", dir_chw, stem);
        CHECK(write_idx(name, d_lab, 1, y, (size_t)n));
    }
    free(hwc);
    free(chw);

    /* Both layouts give the (N, C, H, W) bytes; the classes come from the
     * training labels. */
    lethe_dataset a, b;
    CHECK_OK(lethe_dataset_load(&a, "idx", dir, 1));
    CHECK_OK(lethe_dataset_load(&b, "idx", dir_chw, 1));
    CHECK(a.n == NTR && a.c == C && a.h == S && a.w == S && a.nclass == K);
    CHECK(b.n == NTR && b.c == C && b.h == S && b.w == S && b.nclass == K);
    CHECK(a.pixels && b.pixels && memcmp(a.pixels, b.pixels, (size_t)NTR * C * S * S) == 0);
    CHECK(strcmp(a.name, "idx") == 0);
    lethe_dataset_free(&a);
    lethe_dataset_free(&b);
    CHECK_OK(lethe_dataset_load(&a, "idx:6", dir, 0));
    CHECK(a.n == NTE && a.nclass == 6 && strcmp(a.name, "idx:6") == 0);
    lethe_dataset_free(&a);

    path_buf mb, rb, ib, nb;
    const char *model = tpath(mb, "idx.safetensors"), *rep = tpath(rb, "idx-unlearn.json");
    const char *list = tpath(ib, "forget.txt"), *never = tpath(nb, "never.safetensors");
    char args[4096];
    snprintf(args, sizeof args, "train --arch cnn --data idx --data-dir '%s' --epochs 1 "
             "--batch 16 --quiet --force --out '%s'", dir, model);
    CHECK(run(args, NULL) == 0);
    CHECK_MSG(strcmp(meta(model, "in_shape"), "3,8,8") == 0 &&
                  strcmp(meta(model, "nclass"), "4") == 0 &&
                  strcmp(meta(model, "dataset"), "idx") == 0,
              "metadata: in_shape %s", meta(model, "in_shape"));
    /* A forget list of training indices, '#' comments allowed. */
    static const char ids[] = "# my deletion requests\n3\n17\n42\n99\n";
    CHECK(cli_t_spit(list, ids, strlen(ids)));
    snprintf(args, sizeof args, "unlearn --model '%s' --data-dir '%s' --forget 'indices:%s' "
             "--steps 2 --batch 16 --quiet --force --report '%s'", model, dir, list, rep);
    CHECK(run(args, NULL) == 0);
    cJSON *root = cli_t_load_json(rep);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(cfg, "forget");
    CHECK_MSG(cJSON_IsString(fs) && strstr(fs->valuestring, "indices:"), "forget: %s",
              cJSON_IsString(fs) ? fs->valuestring : "?");
    CHECK(cJSON_GetObjectItemCaseSensitive(root, "metrics") != NULL);
    cJSON_Delete(root);
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --forget class:3 --quiet",
             model, dir);
    CHECK(run(args, NULL) == 0);

    /* Labels beyond a stated class count: one line naming the file. */
    snprintf(args, sizeof args, "train --arch mlp --data idx:3 --data-dir '%s' --epochs 1 "
             "--out '%s'", dir, never);
    expect(1, args, "train-labels-idx1-ubyte: label 3", "out of range 0..2");
    expect(2, "train --data idx:1 --out x.safetensors", "--data idx:1", "from 2 to 256");
    CHECK(!cli_t_exists(never));
}

/* ----------------------------------------------------------- CIFAR */

/* CIFAR-format binaries of 5 classes: trained with cifar:5; a label the
 * stated count does not cover is refused naming the file and the record. */
TEST(own_cli_cifar_stated_classes)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB) || !cli_t_mkdir("own/cifar5")) return;
    enum { REC = 3073, K = 5 };
    path_buf db, mb, nb;
    const char *dir = tpath(db, "cifar5"), *model = tpath(mb, "cifar5.safetensors");
    const char *never = tpath(nb, "never-cifar.safetensors");
    lethe_rng r;
    lethe_rng_seed(&r, 5);
    for (int split = 0; split < 2; split++) {
        int n = split ? 50 : 100;
        uint8_t *hwc = malloc((size_t)n * 3072), *recs = malloc((size_t)n * REC), y[100];
        if (!hwc || !recs) {
            free(hwc);
            free(recs);
            CHECK(0);
            return;
        }
        /* Prototype bytes in any order: a record is the label, then 3072. */
        own_images(hwc, y, n, 1024, 3, K, &r);
        for (int i = 0; i < n; i++) {
            recs[(size_t)i * REC] = y[i];
            memcpy(recs + (size_t)i * REC + 1, hwc + (size_t)i * 3072, 3072);
        }
        char name[512];
        snprintf(name, sizeof name, "%s/%s", dir, split ? "test_batch.bin" : "data_batch_1.bin");
        CHECK(cli_t_spit(name, recs, (size_t)n * REC));
        free(hwc);
        free(recs);
    }
    char args[4096];
    snprintf(args, sizeof args, "train --arch mlp --data cifar:5 --data-dir '%s' --epochs 1 "
             "--batch 16 --quiet --force --out '%s'", dir, model);
    CHECK(run(args, NULL) == 0);
    CHECK_MSG(strcmp(meta(model, "in_shape"), "3,32,32") == 0 &&
                  strcmp(meta(model, "nclass"), "5") == 0 &&
                  strcmp(meta(model, "dataset"), "cifar:5") == 0,
              "metadata: %s %s", meta(model, "nclass"), meta(model, "dataset"));
    snprintf(args, sizeof args, "eval --model '%s' --data-dir '%s' --forget class:4 --quiet",
             model, dir);
    CHECK(run(args, NULL) == 0);
    snprintf(args, sizeof args, "train --arch mlp --data cifar:4 --data-dir '%s' --out '%s'",
             dir, never);
    expect(1, args, "data_batch_1.bin: record 4 has label 4", "cifar:K");
    snprintf(args, sizeof args, "train --data cifar --data-dir '%s' --out '%s'", dir, never);
    expect(2, args, "did you mean 'cifar:K'?", NULL);
    CHECK(!cli_t_exists(never));
}

/* ------------------------------------------------- a PyTorch model */

/* tests/data/torch_cnn.safetensors (written by PyTorch) with its metadata
 * blanked: what safetensors.torch.save_file(model.state_dict()) gives. */
static int write_bare_state_dict(const char *path)
{
    size_t len;
    char *b = cli_t_slurp(test_data("torch_cnn.safetensors"), &len);
    if (!b || len < 8) {
        free(b);
        return 0;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)(unsigned char)b[i] << (8 * i);
    char *h = b + 8, *m = hl < len ? strstr(h, "\"__metadata__\"") : NULL;
    char *end = m ? strstr(m, "},") : NULL;
    int ok = end && end < h + hl;
    if (ok) memset(m, ' ', (size_t)(end + 2 - m));     /* JSON white space */
    ok = ok && cli_t_spit(path, b, len);
    free(b);
    return ok;
}

TEST(own_cli_state_dict_without_arch)
{
    if (!cli_t_have_bin() || !cli_t_mkdir(SUB)) return;
    path_buf db, sb, ub, r1, r2;
    const char *dir = tpath(db, "mnist28"), *bare = tpath(sb, "bare.safetensors");
    const char *out = tpath(ub, "bare-unlearned.safetensors");
    static const cli_t_mnist spec = {100, 50, 28, 3, 1, 2, 0, 0};
    CHECK(cli_t_write_mnist(dir, &spec));
    CHECK(write_bare_state_dict(bare));
    lethe_metadata md = {0};
    CHECK_OK(lethe_checkpoint_read_meta(bare, &md));
    CHECK(lethe_meta_get(&md, "arch") == NULL);

    char args[4096];
    snprintf(args, sizeof args, "eval --model '%s' --data mnist --data-dir '%s'", bare, dir);
    expect(1, args, "no 'arch' in the metadata", "--arch mlp|cnn|resnet8|resnet20|resnet18|vit-tiny");
    snprintf(args, sizeof args, "eval --model '%s' --arch mlp --data mnist --data-dir '%s'", bare,
             dir);
    expect(1, args, "fc1.weight", "(loaded as --arch mlp)");
    snprintf(args, sizeof args, "eval --model '%s' --arch mlp --data mnist --data-dir '%s'",
             test_data("torch_cnn.safetensors"), dir);
    expect(1, args, "metadata says arch cnn", "--arch says mlp");

    /* With --arch it is the same model as the file with metadata. */
    snprintf(args, sizeof args, "eval --model '%s' --arch cnn --data mnist --data-dir '%s' "
             "--quiet --force --report '%s'", bare, dir, tpath(r1, "bare.json"));
    CHECK(run(args, NULL) == 0);
    snprintf(args, sizeof args, "eval --model '%s' --data mnist --data-dir '%s' --quiet --force "
             "--report '%s'", test_data("torch_cnn.safetensors"), dir, tpath(r2, "meta.json"));
    CHECK(run(args, NULL) == 0);
    cJSON *j1 = cli_t_load_json(r1), *j2 = cli_t_load_json(r2);
    double a1 = cli_t_jnum(j1, "accuracy"), a2 = cli_t_jnum(j2, "accuracy");
    CHECK_MSG(a1 == a1 && a1 == a2, "accuracy %g with --arch, %g with metadata", a1, a2);
    cJSON_Delete(j1);
    cJSON_Delete(j2);

    /* An unlearned model made from it says what it is. */
    snprintf(args, sizeof args, "unlearn --model '%s' --arch cnn --data mnist --data-dir '%s' "
             "--forget class:1 --steps 2 --batch 16 --no-eval --quiet --force --out '%s'", bare,
             dir, out);
    CHECK(run(args, NULL) == 0);
    CHECK_MSG(strcmp(meta(out, "arch"), "cnn") == 0 && strcmp(meta(out, "nclass"), "10") == 0,
              "unlearned metadata: arch '%s'", meta(out, "arch"));
    snprintf(args, sizeof args, "info '%s' --arch cnn", bare);
    CHECK(run(args, NULL) == 0);
    path_buf wb;
    snprintf(args, sizeof args, "sweep --model '%s' --arch cnn --data mnist --data-dir '%s' "
             "--forget class:1 --method ft --param lr --values 0.01 --steps 1 --batch 16 "
             "--no-plot --quiet --force --report '%s'", bare, dir, tpath(wb, "bare-sweep.json"));
    CHECK(run(args, NULL) == 0);
}
