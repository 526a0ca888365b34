/* Data layer: IDX and CIFAR readers, named data sets, batch normalisation,
 * forget specs and splits, seeded batch streams. Files are generated here. */
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lethe.h"

/* ------------------------------------------------------------- helpers */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Write an IDX file: header (magic, dims) then `len` bytes of data (which
 * may be fewer than the header promises), raw or through gzwrite. */
static int write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndim,
                     const uint8_t *data, size_t len, int gz)
{
    uint8_t head[16];
    put_be32(head, magic);
    for (int d = 0; d < ndim; d++) put_be32(head + 4 + 4 * d, dims[d]);
    size_t hl = 4 + 4 * (size_t)ndim;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f) return 0;
        int ok = gzwrite(f, head, (unsigned)hl) == (int)hl &&
                 (len == 0 || gzwrite(f, data, (unsigned)len) == (int)len);
        return gzclose(f) == Z_OK && ok;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(head, 1, hl, f) == hl && (len == 0 || fwrite(data, 1, len, f) == len);
    return fclose(f) == 0 && ok;
}

static int write_bytes(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

#define CHECK_ERR(expr, status, needle)                                            \
    do {                                                                           \
        lethe_status s__ = (expr);                                                 \
        CHECK_MSG(s__ == (status), "%s -> %s (%s), expected %s", #expr,            \
                  lethe_status_to_string(s__), lethe_last_error(),                 \
                  lethe_status_to_string(status));                                 \
        CHECK_MSG(contains(lethe_last_error(), (needle)), "%s: message '%s' lacks '%s'", \
                  #expr, lethe_last_error(), (needle));                            \
    } while (0)

/* Deterministic, compressible pixel pattern (deflate codes it, unlike noise). */
static void fill_pattern(uint8_t *px, size_t n)
{
    for (size_t i = 0; i < n; i++) px[i] = (uint8_t)((i * 7 + (i / 28) * 3) % 251 / 16 * 16);
}

/* A made-up labelled set with labels[i] = label(i); nclass 10, 1×2×2. */
static void make_set(lethe_dataset *ds, int n, int (*label)(int))
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = 1;
    ds->h = 2;
    ds->w = 2;
    ds->nclass = 10;
    ds->pixels = calloc((size_t)n * 4, 1);
    ds->labels = malloc((size_t)n);
    for (int i = 0; i < n; i++) ds->labels[i] = (uint8_t)label(i);
    for (int c = 0; c < 3; c++) {
        ds->mean[c] = 0.5f;
        ds->std[c] = 0.25f;
    }
    snprintf(ds->name, sizeof ds->name, "toy");
}

static int label_mod10(int i) { return i % 10; }
static int label_no7(int i) { return i % 10 == 7 ? 6 : i % 10; }

/* Both sides sorted ascending, disjoint, and together exactly 0..n-1. */
static int is_partition(const lethe_subset *a, const lethe_subset *b, int n)
{
    if (a->n + b->n != (size_t)n) return 0;
    uint8_t *seen = calloc((size_t)n, 1);
    int ok = 1;
    const lethe_subset *side[2] = {a, b};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < side[s]->n; i++) {
            int32_t v = side[s]->idx[i];
            if (v < 0 || v >= n || seen[v] || (i && side[s]->idx[i - 1] >= v)) ok = 0;
            else seen[v] = 1;
        }
    free(seen);
    return ok;
}

/* ----------------------------------------------------------------- IDX */

TEST(idx_write_read_roundtrip)
{
    enum { N = 5, R = 3, C = 4 };
    uint8_t px[N * R * C];
    fill_pattern(px, sizeof px);
    const char *path = test_path("rt-images-idx3-ubyte");
    CHECK_OK(lethe_idx_write_images(path, px, N, R, C));
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0); /* renamed away */
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size == 16 + N * R * C);

    uint8_t *out = NULL;
    int n = 0, r = 0, c = 0;
    CHECK_OK(lethe_idx_read_images(path, &out, &n, &r, &c));
    CHECK(n == N && r == R && c == C);
    CHECK(out && memcmp(out, px, sizeof px) == 0);
    free(out);

    CHECK_ERR(lethe_idx_write_images(test_path("bad"), px, 1, 0, 4), LETHE_ERR_ARG, "bad");
    CHECK_ERR(lethe_idx_write_images(test_path("bad"), px, 1, 5000, 4), LETHE_ERR_ARG, "bad");
}

TEST(idx_gzip_roundtrip)
{
    enum { N = 40, R = 28, C = 28 };
    static uint8_t px[N * R * C];
    uint8_t lab[N];
    fill_pattern(px, sizeof px);
    for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i * 3 % 10);
    uint32_t idims[3] = {N, R, C}, ldims[1] = {N};
    const char *ip = test_path("gz-images.gz"), *lp = test_path("gz-labels.gz");
    CHECK(write_idx(ip, 0x803, idims, 3, px, sizeof px, 1));
    CHECK(write_idx(lp, 0x801, ldims, 1, lab, sizeof lab, 1));
    FILE *f = fopen(ip, "rb");
    CHECK(f && fgetc(f) == 0x1f && fgetc(f) == 0x8b); /* really gzip */
    if (f) fclose(f);

    uint8_t *out = NULL;
    int n = 0, r = 0, c = 0;
    CHECK_OK(lethe_idx_read_images(ip, &out, &n, &r, &c));
    CHECK(n == N && r == R && c == C);
    CHECK(out && memcmp(out, px, sizeof px) == 0);
    free(out);
    out = NULL;
    CHECK_OK(lethe_idx_read_labels(lp, &out, &n));
    CHECK(n == N && out && memcmp(out, lab, sizeof lab) == 0);
    free(out);

    /* Raw labels too. */
    const char *rl = test_path("raw-labels");
    CHECK(write_idx(rl, 0x801, ldims, 1, lab, sizeof lab, 0));
    out = NULL;
    CHECK_OK(lethe_idx_read_labels(rl, &out, &n));
    CHECK(n == N && out && memcmp(out, lab, sizeof lab) == 0);
    free(out);
}

TEST(idx_truncated)
{
    uint8_t px[50];
    fill_pattern(px, sizeof px);
    uint32_t dims[3] = {5, 4, 4}; /* promises 80 bytes */
    uint8_t *out = NULL;
    int n, r, c;
    const char *raw = test_path("trunc-raw"), *gz = test_path("trunc.gz");
    CHECK(write_idx(raw, 0x803, dims, 3, px, sizeof px, 0));
    CHECK(write_idx(gz, 0x803, dims, 3, px, sizeof px, 1));
    CHECK_ERR(lethe_idx_read_images(raw, &out, &n, &r, &c), LETHE_ERR_FORMAT,
              "truncated: expected 80 bytes of pixels, got 50");
    CHECK(contains(lethe_last_error(), raw));
    CHECK_ERR(lethe_idx_read_images(gz, &out, &n, &r, &c), LETHE_ERR_FORMAT,
              "truncated: expected 80 bytes of pixels, got 50");
    CHECK(contains(lethe_last_error(), gz));

    uint32_t ldims[1] = {60};
    CHECK(write_idx(raw, 0x801, ldims, 1, px, sizeof px, 0));
    CHECK_ERR(lethe_idx_read_labels(raw, &out, &n), LETHE_ERR_FORMAT,
              "truncated: expected 60 bytes of labels, got 50");

    /* Header cut short, and an empty file. */
    CHECK(write_idx(raw, 0x803, dims, 1, NULL, 0, 0));
    CHECK_ERR(lethe_idx_read_images(raw, &out, &n, &r, &c), LETHE_ERR_FORMAT, "truncated");
    CHECK(write_bytes(raw, px, 0));
    CHECK_ERR(lethe_idx_read_images(raw, &out, &n, &r, &c), LETHE_ERR_FORMAT, "truncated");

    /* More data than the header says is just as wrong. */
    CHECK(write_idx(raw, 0x803, dims, 3, (uint8_t[81]){0}, 81, 0));
    CHECK_ERR(lethe_idx_read_images(raw, &out, &n, &r, &c), LETHE_ERR_FORMAT,
              "unexpected data after 80 bytes");
}

TEST(idx_wrong_magic_and_missing)
{
    uint8_t lab[4] = {1, 2, 3, 4};
    uint32_t ldims[1] = {4};
    const char *p = test_path("labels-as-images");
    CHECK(write_idx(p, 0x801, ldims, 1, lab, 4, 0));
    uint8_t *out = NULL;
    int n, r, c;
    CHECK_ERR(lethe_idx_read_images(p, &out, &n, &r, &c), LETHE_ERR_FORMAT,
              "wrong magic 0x00000801 (expected IDX images 0x00000803)");
    CHECK(contains(lethe_last_error(), p));
    uint32_t idims[3] = {1, 2, 2};
    CHECK(write_idx(p, 0x803, idims, 3, lab, 4, 1));
    CHECK_ERR(lethe_idx_read_labels(p, &out, &n), LETHE_ERR_FORMAT,
              "wrong magic 0x00000803 (expected IDX labels 0x00000801)");

    const char *missing = test_path("no-such-file");
    CHECK_ERR(lethe_idx_read_images(missing, &out, &n, &r, &c), LETHE_ERR_NOTFOUND, missing);
}

TEST(idx_corrupt_gzip)
{
    enum { N = 100, R = 28, C = 28 };
    static uint8_t px[N * R * C];
    fill_pattern(px, sizeof px);
    uint32_t dims[3] = {N, R, C};
    const char *p = test_path("corrupt.gz");
    CHECK(write_idx(p, 0x803, dims, 3, px, sizeof px, 1));
    FILE *f = fopen(p, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    CHECK(size > 64);
    for (long k = 0; k < 8; k++) { /* flip bytes in the middle of the stream */
        fseek(f, size / 2 + k, SEEK_SET);
        int b = fgetc(f);
        fseek(f, size / 2 + k, SEEK_SET);
        fputc(b ^ 0x5a, f);
    }
    fclose(f);
    uint8_t *out = NULL;
    int n, r, c;
    lethe_status st = lethe_idx_read_images(p, &out, &n, &r, &c);
    CHECK(st == LETHE_ERR_FORMAT);
    CHECK_MSG(contains(lethe_last_error(), p), "message '%s'", lethe_last_error());
    CHECK(out == NULL);

    /* Damage only the CRC in the trailer: caught by reading to the end. */
    CHECK(write_idx(p, 0x803, dims, 3, px, sizeof px, 1));
    f = fopen(p, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, -8, SEEK_END);
    int b = fgetc(f);
    fseek(f, -8, SEEK_END);
    fputc(b ^ 0xff, f);
    fclose(f);
    CHECK_ERR(lethe_idx_read_images(p, &out, &n, &r, &c), LETHE_ERR_FORMAT, "corrupt gzip");
}

TEST(idx_oversized_header)
{
    uint8_t *out = NULL;
    int n, r, c;
    const char *p = test_path("huge");
    uint32_t too_many[3] = {20000000, 28, 28};
    CHECK(write_idx(p, 0x803, too_many, 3, NULL, 0, 0));
    CHECK_ERR(lethe_idx_read_images(p, &out, &n, &r, &c), LETHE_ERR_FORMAT, "count 20000000");
    uint32_t too_wide[3] = {10, 28, 5000};
    CHECK(write_idx(p, 0x803, too_wide, 3, NULL, 0, 0));
    CHECK_ERR(lethe_idx_read_images(p, &out, &n, &r, &c), LETHE_ERR_FORMAT, "cols 5000");
    uint32_t zero_rows[3] = {10, 0, 28};
    CHECK(write_idx(p, 0x803, zero_rows, 3, NULL, 0, 0));
    CHECK_ERR(lethe_idx_read_images(p, &out, &n, &r, &c), LETHE_ERR_FORMAT, "rows 0");
    /* Each size within bounds, the product not: refused before malloc. */
    uint32_t product[3] = {10000000, 4096, 4096};
    CHECK(write_idx(p, 0x803, product, 3, NULL, 0, 0));
    CHECK_ERR(lethe_idx_read_images(p, &out, &n, &r, &c), LETHE_ERR_FORMAT, "limit");
    uint32_t labels[1] = {0xffffffffu};
    CHECK(write_idx(p, 0x801, labels, 1, NULL, 0, 0));
    CHECK_ERR(lethe_idx_read_labels(p, &out, &n), LETHE_ERR_FORMAT, "out of range");
    CHECK(out == NULL);
}

/* --------------------------------------------------------------- CIFAR */

/* Record r of a fake CIFAR file: label (r·3 + salt) % 10, pixels a pattern. */
static void cifar_record(uint8_t *rec, int r, int salt)
{
    rec[0] = (uint8_t)((r * 3 + salt) % 10);
    for (int k = 0; k < 3072; k++) rec[1 + k] = (uint8_t)(k * 5 + r + salt);
}

static int write_cifar(const char *path, int nrec, int salt, size_t extra)
{
    size_t len = (size_t)nrec * 3073 + extra;
    uint8_t *buf = calloc(len ? len : 1, 1);
    for (int r = 0; r < nrec; r++) cifar_record(buf + (size_t)r * 3073, r, salt);
    int ok = write_bytes(path, buf, len);
    free(buf);
    return ok;
}

TEST(cifar_load)
{
    char dir[600], p[700];
    snprintf(dir, sizeof dir, "%s", test_path("cifar"));
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    CHECK(write_cifar(p, 3, 0, 0));

    lethe_dataset ds;
    CHECK_OK(lethe_cifar_load(&ds, dir, 0));
    CHECK(ds.n == 3 && ds.c == 3 && ds.h == 32 && ds.w == 32 && ds.nclass == 10);
    CHECK(strcmp(ds.name, "cifar10") == 0);
    CHECK_NEAR(ds.mean[2], 0.4465, 1e-6);
    CHECK_NEAR(ds.std[1], 0.2435, 1e-6);
    uint8_t rec[3073];
    for (int r = 0; r < 3 && ds.pixels; r++) {
        cifar_record(rec, r, 0);
        CHECK(ds.labels[r] == rec[0]);
        CHECK(memcmp(ds.pixels + (size_t)r * 3072, rec + 1, 3072) == 0);
    }
    lethe_dataset_free(&ds);
    CHECK(ds.pixels == NULL && ds.n == 0);

    /* Train split: all five batches, in order. */
    for (int k = 1; k <= 5; k++) {
        snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, k);
        if (k != 4) CHECK(write_cifar(p, 2, k, 0));
    }
    CHECK_ERR(lethe_cifar_load(&ds, dir, 1), LETHE_ERR_NOTFOUND, "data_batch_4.bin");
    snprintf(p, sizeof p, "%s/data_batch_4.bin", dir);
    CHECK(write_cifar(p, 2, 4, 0));
    CHECK_OK(lethe_dataset_load(&ds, "cifar10", dir, 1));
    CHECK(ds.n == 10);
    for (int k = 1; k <= 5 && ds.pixels; k++) {
        cifar_record(rec, 1, k);
        int i = (k - 1) * 2 + 1;
        CHECK(ds.labels[i] == rec[0]);
        CHECK(memcmp(ds.pixels + (size_t)i * 3072, rec + 1, 3072) == 0);
    }
    lethe_dataset_free(&ds);
}

TEST(cifar_bad_files)
{
    char dir[600], p[700];
    snprintf(dir, sizeof dir, "%s", test_path("cifar-bad"));
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    lethe_dataset ds;
    CHECK(write_cifar(p, 2, 0, 1)); /* one stray byte */
    CHECK_ERR(lethe_cifar_load(&ds, dir, 0), LETHE_ERR_FORMAT, "multiple of 3073");
    CHECK(contains(lethe_last_error(), p));
    CHECK(contains(lethe_last_error(), "record 2 has 1 of its 3073 bytes"));
    CHECK(write_cifar(p, 0, 0, 0)); /* empty */
    CHECK_ERR(lethe_cifar_load(&ds, dir, 0), LETHE_ERR_FORMAT, "multiple of 3073");
    CHECK(write_cifar(p, 2, 0, 0));
    FILE *f = fopen(p, "r+b"); /* label byte of record 1 := 10 */
    CHECK(f != NULL);
    if (f) {
        fseek(f, 3073, SEEK_SET);
        fputc(10, f);
        fclose(f);
    }
    CHECK_ERR(lethe_cifar_load(&ds, dir, 0), LETHE_ERR_FORMAT, "label 10");
    CHECK_ERR(lethe_cifar_load(&ds, test_path("no-cifar"), 0), LETHE_ERR_NOTFOUND, "no-cifar");
    CHECK(ds.pixels == NULL);
}

/* ------------------------------------------------------------ datasets */

TEST(dataset_load_mnist_files)
{
    enum { N = 30, M = 12 };
    char dir[600], p[700];
    snprintf(dir, sizeof dir, "%s", test_path("mnist"));
    CHECK(mkdir(dir, 0700) == 0);
    static uint8_t px[N * 28 * 28];
    uint8_t lab[N];
    fill_pattern(px, sizeof px);
    for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i % 10);
    uint32_t idims[3] = {N, 28, 28}, ldims[1] = {N};
    /* Train: gzip images, raw labels; test: both raw. */
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    CHECK(write_idx(p, 0x803, idims, 3, px, sizeof px, 1));
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    CHECK(write_idx(p, 0x801, ldims, 1, lab, sizeof lab, 0));
    uint32_t tdims[3] = {M, 28, 28}, tl[1] = {M};
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", dir);
    CHECK(write_idx(p, 0x803, tdims, 3, px, (size_t)M * 784, 0));
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", dir);
    CHECK(write_idx(p, 0x801, tl, 1, lab, M, 0));

    lethe_dataset ds;
    CHECK_OK(lethe_dataset_load(&ds, "mnist", dir, 1));
    CHECK(ds.n == N && ds.c == 1 && ds.h == 28 && ds.w == 28 && ds.nclass == 10);
    CHECK(strcmp(ds.name, "mnist") == 0);
    CHECK_NEAR(ds.mean[0], 0.1307, 1e-6);
    CHECK_NEAR(ds.std[0], 0.3081, 1e-6);
    CHECK(ds.pixels && memcmp(ds.pixels, px, sizeof px) == 0);
    CHECK(ds.labels && memcmp(ds.labels, lab, sizeof lab) == 0);
    lethe_dataset_free(&ds);
    CHECK_OK(lethe_dataset_load(&ds, "mnist", dir, 0));
    CHECK(ds.n == M);
    lethe_dataset_free(&ds);

    /* Images and labels disagree on the count. */
    uint32_t short_l[1] = {M - 1};
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", dir);
    CHECK(write_idx(p, 0x801, short_l, 1, lab, M - 1, 0));
    CHECK_ERR(lethe_dataset_load(&ds, "mnist", dir, 0), LETHE_ERR_FORMAT, "11 labels");
    /* A label out of range. */
    lab[5] = 10;
    CHECK(write_idx(p, 0x801, tl, 1, lab, M, 0));
    CHECK_ERR(lethe_dataset_load(&ds, "mnist", dir, 0), LETHE_ERR_FORMAT, "label 10");
    /* A missing file is named. */
    CHECK(unlink(p) == 0);
    CHECK_ERR(lethe_dataset_load(&ds, "mnist", dir, 0), LETHE_ERR_NOTFOUND,
              "t10k-labels-idx1-ubyte");
    CHECK(!contains(lethe_last_error(), "dataset-fashion-mnist"));

    CHECK_ERR(lethe_dataset_load(&ds, "mnist", NULL, 1), LETHE_ERR_ARG, "mnist");
    CHECK_ERR(lethe_dataset_load(&ds, "imagenet", dir, 1), LETHE_ERR_NOTFOUND, "imagenet");
    CHECK(ds.pixels == NULL && ds.labels == NULL);
}

TEST(dataset_missing_folder_hint)
{
    lethe_dataset ds;
    const char *dir = test_path("no-fashion-here");
    CHECK_ERR(lethe_dataset_load(&ds, "fmnist", dir, 1), LETHE_ERR_NOTFOUND,
              "dataset-fashion-mnist");
    CHECK(contains(lethe_last_error(), dir));
    CHECK(!contains(lethe_last_error(), "\n"));
    /* An existing but empty folder: the missing file is named, with the hint. */
    char empty[600];
    snprintf(empty, sizeof empty, "%s", test_path("empty-fashion"));
    CHECK(mkdir(empty, 0700) == 0);
    CHECK_ERR(lethe_dataset_load(&ds, "fmnist", empty, 0), LETHE_ERR_NOTFOUND,
              "t10k-images-idx3-ubyte.gz");
    CHECK(contains(lethe_last_error(), "dataset-fashion-mnist"));
}

TEST(dataset_fmnist_real)
{
    struct stat sb;
    if (stat(LETHE_FMNIST_DIR, &sb) != 0) {
        test_skip("%s missing", LETHE_FMNIST_DIR);
        return;
    }
    lethe_dataset tr, te;
    CHECK_OK(lethe_dataset_load(&tr, "fmnist", NULL, 1));
    CHECK_OK(lethe_dataset_load(&te, "fmnist", NULL, 0));
    CHECK(tr.n == 60000 && te.n == 10000);
    CHECK(tr.c == 1 && tr.h == 28 && tr.w == 28 && tr.nclass == 10);
    CHECK(te.h == 28 && te.w == 28);
    CHECK_NEAR(tr.mean[0], 0.2860, 1e-6);
    CHECK_NEAR(tr.std[0], 0.3530, 1e-6);
    int count[10] = {0}, tcount[10] = {0};
    for (int i = 0; i < tr.n && tr.labels; i++) count[tr.labels[i]]++;
    for (int i = 0; i < te.n && te.labels; i++) tcount[te.labels[i]]++;
    for (int k = 0; k < 10; k++) CHECK_MSG(count[k] == 6000, "class %d: %d", k, count[k]);
    for (int k = 0; k < 10; k++) CHECK(tcount[k] == 1000);
    /* The mean pixel matches the published normalisation constant. */
    double sum = 0;
    for (size_t i = 0; i < (size_t)tr.n * 784 && tr.pixels; i++) sum += tr.pixels[i];
    CHECK_NEAR(sum / (tr.n * 784.0) / 255.0, 0.2860, 5e-4);

    /* The class-wise scenario of PROTOCOL.md: 6000 forgotten, 54000 kept. */
    lethe_forget_spec f;
    lethe_subset fs, rs;
    CHECK_OK(lethe_forget_parse(&f, "class:0"));
    CHECK_OK(lethe_forget_split(&f, &tr, 0, &fs, &rs));
    CHECK(fs.n == 6000 && rs.n == 54000);
    lethe_subset_free(&fs);
    lethe_subset_free(&rs);
    lethe_dataset_free(&tr);
    lethe_dataset_free(&te);
}

TEST(dataset_batch_normalises)
{
    /* 3 images of 2 channels × 1 × 2 pixels. */
    uint8_t pixels[3 * 4] = {0, 255, 10, 20, 51, 102, 153, 204, 1, 2, 3, 4};
    uint8_t labels[3] = {7, 2, 9};
    lethe_dataset ds = {.n = 3, .c = 2, .h = 1, .w = 2, .nclass = 10,
                        .pixels = pixels, .labels = labels,
                        .mean = {0.5f, 0.25f, 0}, .std = {0.5f, 0.125f, 1}};
    int32_t idx[2] = {1, 0};
    float x[2 * 4];
    int32_t y[2];
    lethe_dataset_batch(&ds, idx, 2, x, y);
    CHECK(y[0] == 2 && y[1] == 7);
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 2; k++) {
                int p = pixels[idx[i] * 4 + c * 2 + k];
                double want = (p / 255.0 - ds.mean[c]) / ds.std[c];
                CHECK_NEAR(x[i * 4 + c * 2 + k], want, 1e-5);
            }
    CHECK_NEAR(x[4], -1.0, 1e-6);                 /* image 0, channel 0: p = 0 */
    CHECK_NEAR(x[5], 1.0, 1e-6);                  /* p = 255 */
    CHECK_NEAR(x[2], (153 / 255.0 - 0.25) / 0.125, 1e-5); /* image 1, channel 1 */

    /* Fashion-MNIST's constants: 0 → −0.2860/0.3530, 255 → (1−0.2860)/0.3530. */
    uint8_t g[2] = {0, 255}, gl[1] = {3};
    lethe_dataset f = {.n = 1, .c = 1, .h = 1, .w = 2, .nclass = 10, .pixels = g,
                       .labels = gl, .mean = {0.2860f}, .std = {0.3530f}};
    int32_t i0 = 0;
    lethe_dataset_batch(&f, &i0, 1, x, y);
    CHECK_NEAR(x[0], -0.2860 / 0.3530, 1e-5);
    CHECK_NEAR(x[1], (1 - 0.2860) / 0.3530, 1e-5);
    CHECK(y[0] == 3);
}

/* ------------------------------------------------------------- forget */

TEST(forget_parse_forms)
{
    lethe_forget_spec f;
    char buf[600];
    CHECK_OK(lethe_forget_parse(&f, "class:0"));
    CHECK(f.kind == LETHE_FORGET_CLASS && f.class_mask == 1);
    CHECK_OK(lethe_forget_to_string(&f, buf, sizeof buf));
    CHECK(strcmp(buf, "class:0") == 0);
    CHECK_OK(lethe_forget_parse(&f, "class:3,0"));
    CHECK(f.class_mask == 9);
    CHECK_OK(lethe_forget_to_string(&f, buf, sizeof buf));
    CHECK(strcmp(buf, "class:0,3") == 0);
    CHECK_OK(lethe_forget_parse(&f, "class:63"));
    CHECK(f.class_mask == (uint64_t)1 << 63);

    CHECK_OK(lethe_forget_parse(&f, "random:10%"));
    CHECK(f.kind == LETHE_FORGET_RANDOM);
    CHECK(f.fraction == 0.1);
    CHECK_OK(lethe_forget_to_string(&f, buf, sizeof buf));
    CHECK(strcmp(buf, "random:0.1") == 0);
    CHECK_OK(lethe_forget_parse(&f, "random:0.1"));
    CHECK(f.fraction == 0.1);
    CHECK_OK(lethe_forget_parse(&f, "random:12.5%"));
    CHECK(f.fraction == 0.125);
    CHECK_OK(lethe_forget_parse(&f, "random:0.333333333333"));
    CHECK_OK(lethe_forget_to_string(&f, buf, sizeof buf));
    CHECK(strcmp(buf, "random:0.333333333333") == 0);

    CHECK_OK(lethe_forget_parse(&f, "indices:/tmp/some file.txt"));
    CHECK(f.kind == LETHE_FORGET_INDICES && strcmp(f.path, "/tmp/some file.txt") == 0);
    CHECK_OK(lethe_forget_to_string(&f, buf, sizeof buf));
    CHECK(strcmp(buf, "indices:/tmp/some file.txt") == 0);

    /* A short buffer is refused, holding the truncated start, not overrun. */
    char tiny[6] = "xxxxx";
    CHECK_OK(lethe_forget_parse(&f, "class:1,2,3"));
    CHECK(lethe_forget_to_string(&f, tiny, 4) == LETHE_ERR_ARG);
    CHECK(strcmp(tiny, "cla") == 0 && tiny[4] == 'x');
    CHECK(strstr(lethe_last_error(), "does not fit") != NULL);
    CHECK(lethe_forget_to_string(&f, tiny, 0) == LETHE_ERR_ARG);
    char exact[12];                                   /* "class:1,2,3" and its NUL */
    CHECK_OK(lethe_forget_to_string(&f, exact, sizeof exact));
    CHECK(lethe_forget_to_string(&f, exact, sizeof exact - 1) == LETHE_ERR_ARG);

    /* The longest texts fit LETHE_FORGET_TEXT_MAX: every class, the longest path. */
    char most[LETHE_FORGET_TEXT_MAX];
    f.kind = LETHE_FORGET_CLASS;
    f.class_mask = ~(uint64_t)0;
    CHECK_OK(lethe_forget_to_string(&f, most, sizeof most));
    CHECK(strncmp(most, "class:0,1,2,", 12) == 0 && strstr(most, ",62,63") != NULL);
    f.kind = LETHE_FORGET_INDICES;
    memset(f.path, 'p', sizeof f.path - 1);
    f.path[sizeof f.path - 1] = '\0';
    CHECK_OK(lethe_forget_to_string(&f, most, sizeof most));
    CHECK(strlen(most) == LETHE_FORGET_TEXT_MAX - 1);
}


TEST(forget_parse_errors)
{
    lethe_forget_spec f;
    CHECK_ERR(lethe_forget_parse(&f, "everything:1"), LETHE_ERR_ARG, "unknown kind");
    CHECK(contains(lethe_last_error(), "class:") && contains(lethe_last_error(), "random:") &&
          contains(lethe_last_error(), "indices:"));
    CHECK_ERR(lethe_forget_parse(&f, ""), LETHE_ERR_ARG, "unknown kind");
    CHECK_ERR(lethe_forget_parse(&f, "class:64"), LETHE_ERR_ARG, "out of range");
    CHECK_ERR(lethe_forget_parse(&f, "class:99999999999999999999"), LETHE_ERR_ARG,
              "out of range");
    CHECK_ERR(lethe_forget_parse(&f, "class:0,0"), LETHE_ERR_ARG, "repeated");
    const char *junk[] = {"class:", "class:1x", "class:0,", "class:-1",
                          "class: 1", "class:1,,2"};
    for (size_t k = 0; k < sizeof junk / sizeof junk[0]; k++)
        CHECK_MSG(lethe_forget_parse(&f, junk[k]) == LETHE_ERR_ARG, "'%s' accepted", junk[k]);
    const char *bad_fraction[] = {"random:0", "random:1", "random:1.5", "random:-0.1",
                                  "random:0%", "random:100%", "random:150%"};
    for (size_t k = 0; k < sizeof bad_fraction / sizeof bad_fraction[0]; k++) {
        CHECK_ERR(lethe_forget_parse(&f, bad_fraction[k]), LETHE_ERR_ARG, "not in (0, 1)");
        CHECK(contains(lethe_last_error(), bad_fraction[k]));
    }
    const char *bad_number[] = {"random:", "random:abc", "random:nan", "random:inf",
                                "random: 0.1", "random:0.1x", "random:10%%"};
    for (size_t k = 0; k < sizeof bad_number / sizeof bad_number[0]; k++)
        CHECK_MSG(lethe_forget_parse(&f, bad_number[k]) == LETHE_ERR_ARG, "'%s' accepted",
                  bad_number[k]);
    CHECK_ERR(lethe_forget_parse(&f, "indices:"), LETHE_ERR_ARG, "file name missing");
}

TEST(forget_split_class)
{
    lethe_dataset ds;
    make_set(&ds, 50, label_mod10);
    lethe_forget_spec f;
    lethe_subset fs, rs;
    CHECK_OK(lethe_forget_parse(&f, "class:0,3"));
    CHECK_OK(lethe_forget_split(&f, &ds, 1, &fs, &rs));
    CHECK(fs.n == 10 && rs.n == 40);
    CHECK(is_partition(&fs, &rs, 50));
    for (size_t i = 0; i < fs.n; i++) CHECK(ds.labels[fs.idx[i]] == 0 || ds.labels[fs.idx[i]] == 3);
    for (size_t i = 0; i < rs.n; i++) CHECK(ds.labels[rs.idx[i]] != 0 && ds.labels[rs.idx[i]] != 3);
    lethe_subset_free(&fs);
    lethe_subset_free(&rs);
    CHECK(fs.idx == NULL && fs.n == 0);

    CHECK_OK(lethe_forget_parse(&f, "class:12"));
    CHECK_ERR(lethe_forget_split(&f, &ds, 1, &fs, &rs), LETHE_ERR_ARG,
              "class 12 does not exist in toy (classes 0..9)");
    CHECK(fs.idx == NULL && rs.idx == NULL);
    CHECK_OK(lethe_forget_parse(&f, "class:0,1,2,3,4,5,6,7,8,9"));
    CHECK_ERR(lethe_forget_split(&f, &ds, 1, &fs, &rs), LETHE_ERR_ARG, "nothing left to retain");
    lethe_dataset_free(&ds);

    make_set(&ds, 50, label_no7); /* class 7 is in range but has no images */
    CHECK_OK(lethe_forget_parse(&f, "class:7"));
    CHECK_ERR(lethe_forget_split(&f, &ds, 1, &fs, &rs), LETHE_ERR_ARG, "class 7");
    lethe_dataset_free(&ds);
}

TEST(forget_split_random)
{
    enum { N = 1000 };
    lethe_dataset ds;
    make_set(&ds, N, label_mod10);
    lethe_forget_spec f;
    lethe_subset a, ar, b, br, c, cr;
    CHECK_OK(lethe_forget_parse(&f, "random:10%"));
    CHECK_OK(lethe_forget_split(&f, &ds, 7, &a, &ar));
    CHECK_OK(lethe_forget_split(&f, &ds, 7, &b, &br));
    CHECK_OK(lethe_forget_split(&f, &ds, 8, &c, &cr));
    CHECK(a.n == 100 && ar.n == 900);
    CHECK(is_partition(&a, &ar, N));
    CHECK(is_partition(&c, &cr, N));
    CHECK(a.n == b.n && memcmp(a.idx, b.idx, a.n * sizeof *a.idx) == 0);
    CHECK(ar.n == br.n && memcmp(ar.idx, br.idx, ar.n * sizeof *ar.idx) == 0);
    CHECK(c.n == 100 && memcmp(a.idx, c.idx, a.n * sizeof *a.idx) != 0);
    /* Not simply the first indices. */
    CHECK(a.idx[a.n - 1] > 200);
    lethe_subset_free(&a); lethe_subset_free(&ar);
    lethe_subset_free(&b); lethe_subset_free(&br);
    lethe_subset_free(&c); lethe_subset_free(&cr);

    /* round(0.3333 · 1000) = 333; round(0.0016 · 1000) = 2. */
    CHECK_OK(lethe_forget_parse(&f, "random:0.3333"));
    CHECK_OK(lethe_forget_split(&f, &ds, 1, &a, &ar));
    CHECK(a.n == 333 && ar.n == 667);
    lethe_subset_free(&a); lethe_subset_free(&ar);
    CHECK_OK(lethe_forget_parse(&f, "random:0.0016"));
    CHECK_OK(lethe_forget_split(&f, &ds, 1, &a, &ar));
    CHECK(a.n == 2);
    lethe_subset_free(&a); lethe_subset_free(&ar);

    /* Too small or too large a fraction for this set: one side empty. */
    CHECK_OK(lethe_forget_parse(&f, "random:0.0001"));
    CHECK_ERR(lethe_forget_split(&f, &ds, 1, &a, &ar), LETHE_ERR_ARG, "forget side empty");
    CHECK_OK(lethe_forget_parse(&f, "random:0.9999"));
    CHECK_ERR(lethe_forget_split(&f, &ds, 1, &a, &ar), LETHE_ERR_ARG, "retain side empty");
    CHECK(a.idx == NULL && ar.idx == NULL);
    lethe_dataset_free(&ds);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

TEST(forget_split_indices)
{
    lethe_dataset ds;
    make_set(&ds, 20, label_mod10);
    char spec[700];
    const char *path = test_path("forget.txt");
    snprintf(spec, sizeof spec, "indices:%s", path);
    lethe_forget_spec f;
    lethe_subset fs, rs;
    CHECK_OK(lethe_forget_parse(&f, spec));

    write_text(path, "# indices to forget\n17\n\n  3  # a comment\n\t0\n19");
    CHECK_OK(lethe_forget_split(&f, &ds, 0, &fs, &rs));
    CHECK(fs.n == 4 && rs.n == 16);
    CHECK(fs.n == 4 && fs.idx[0] == 0 && fs.idx[1] == 3 && fs.idx[2] == 17 && fs.idx[3] == 19);
    CHECK(is_partition(&fs, &rs, 20));
    lethe_subset_free(&fs);
    lethe_subset_free(&rs);

    write_text(path, "1\n2\n20\n");
    CHECK_ERR(lethe_forget_split(&f, &ds, 0, &fs, &rs), LETHE_ERR_FORMAT, ":3: index 20 out of range 0..19");
    CHECK(contains(lethe_last_error(), path));
    write_text(path, "1\n# again:\n1\n");
    CHECK_ERR(lethe_forget_split(&f, &ds, 0, &fs, &rs), LETHE_ERR_FORMAT, ":3: index 1 repeated");
    CHECK(contains(lethe_last_error(), path));
    write_text(path, "1\n-2\n");
    CHECK_ERR(lethe_forget_split(&f, &ds, 0, &fs, &rs), LETHE_ERR_FORMAT, ":2:");
    write_text(path, "1 2\n");
    CHECK_ERR(lethe_forget_split(&f, &ds, 0, &fs, &rs), LETHE_ERR_FORMAT, ":1:");
    write_text(path, "99999999999999999999999\n");
    CHECK_ERR(lethe_forget_split(&f, &ds, 0, &fs, &rs), LETHE_ERR_FORMAT, "out of range");
    write_text(path, "# nothing\n\n");
    CHECK_ERR(lethe_forget_split(&f, &ds, 0, &fs, &rs), LETHE_ERR_FORMAT, "empty");
    char all[200] = "";
    for (int i = 0; i < 20; i++) snprintf(all + strlen(all), sizeof all - strlen(all), "%d\n", i);
    write_text(path, all);
    CHECK_ERR(lethe_forget_split(&f, &ds, 0, &fs, &rs), LETHE_ERR_FORMAT, "nothing left to retain");
    CHECK(unlink(path) == 0);
    CHECK_ERR(lethe_forget_split(&f, &ds, 0, &fs, &rs), LETHE_ERR_NOTFOUND, path);
    CHECK(fs.idx == NULL && rs.idx == NULL);
    lethe_dataset_free(&ds);
}

TEST(forget_split_test_set)
{
    lethe_dataset te;
    make_set(&te, 30, label_mod10);
    lethe_forget_spec f;
    lethe_subset fs, rs;
    CHECK_OK(lethe_forget_parse(&f, "class:2,5"));
    CHECK_OK(lethe_forget_split_test(&f, &te, &fs, &rs));
    CHECK(fs.n == 6 && rs.n == 24 && is_partition(&fs, &rs, 30));
    for (size_t i = 0; i < fs.n; i++) CHECK(te.labels[fs.idx[i]] == 2 || te.labels[fs.idx[i]] == 5);
    lethe_subset_free(&fs);
    lethe_subset_free(&rs);

    CHECK_OK(lethe_forget_parse(&f, "random:0.5"));
    CHECK_OK(lethe_forget_split_test(&f, &te, &fs, &rs));
    CHECK(fs.n == 0 && fs.idx != NULL && rs.n == 30);
    for (size_t i = 0; i < rs.n; i++) CHECK(rs.idx[i] == (int32_t)i);
    lethe_subset_free(&fs);
    lethe_subset_free(&rs);

    CHECK_OK(lethe_forget_parse(&f, "indices:/nonexistent"));
    CHECK_OK(lethe_forget_split_test(&f, &te, &fs, &rs)); /* the file is for training only */
    CHECK(fs.n == 0 && rs.n == 30);
    lethe_subset_free(&fs);
    lethe_subset_free(&rs);

    CHECK_OK(lethe_forget_parse(&f, "class:11"));
    CHECK_ERR(lethe_forget_split_test(&f, &te, &fs, &rs), LETHE_ERR_ARG, "class 11 does not exist");
    lethe_dataset_free(&te);
}

/* ------------------------------------------------------------- streams */

enum { SN = 37 };

static void make_subset(lethe_subset *s, int32_t *buf)
{
    for (int i = 0; i < SN; i++) buf[i] = 100 + 3 * i;
    s->idx = buf;
    s->n = SN;
}

/* out[0..SN) holds each of 100 + 3i exactly once. */
static int is_epoch(const int32_t *out)
{
    int seen[SN] = {0};
    for (int k = 0; k < SN; k++) {
        int v = out[k] - 100;
        if (v < 0 || v % 3 || v / 3 >= SN || seen[v / 3]++) return 0;
    }
    return 1;
}

TEST(stream_epochs)
{
    int32_t buf[SN];
    lethe_subset sub;
    make_subset(&sub, buf);
    lethe_stream s, t;
    CHECK_OK(lethe_stream_init(&s, &sub, 42));
    CHECK_OK(lethe_stream_init(&t, &sub, 42));
    CHECK(s.idx == buf); /* kept, not copied */
    int32_t e1[SN], e2[SN], out[10];
    int got = 0, sizes[4];
    for (int b = 0; b < 4; b++) {
        sizes[b] = lethe_stream_next(&s, 10, 0, out);
        for (int k = 0; k < sizes[b]; k++) e1[got + k] = out[k];
        got += sizes[b];
    }
    CHECK(sizes[0] == 10 && sizes[1] == 10 && sizes[2] == 10 && sizes[3] == 7);
    CHECK(got == SN && is_epoch(e1));
    CHECK(s.epoch == 0);
    got = 0;
    for (int b = 0; b < 4; b++) {
        int m = lethe_stream_next(&s, 10, 0, out);
        CHECK(m == (b < 3 ? 10 : 7));
        for (int k = 0; k < m && got + k < SN; k++) e2[got + k] = out[k];
        got += m;
    }
    CHECK(got == SN && is_epoch(e2) && s.epoch == 1);
    CHECK(memcmp(e1, e2, sizeof e1) != 0); /* reshuffled */
    int sorted = 1;
    for (int k = 1; k < SN; k++) sorted &= e1[k] > e1[k - 1];
    CHECK(!sorted);

    /* Same seed, same stream. */
    int32_t o2[10];
    for (int b = 0; b < 8; b++) {
        int m = lethe_stream_next(&t, 10, 0, o2);
        CHECK(m == (b % 4 < 3 ? 10 : 7));
        if (b < 4) CHECK(memcmp(o2, e1 + 10 * b, (size_t)m * sizeof *o2) == 0);
        else CHECK(memcmp(o2, e2 + 10 * (b - 4), (size_t)m * sizeof *o2) == 0);
    }
    lethe_stream_free(&t);
    /* Another seed, another order. */
    CHECK_OK(lethe_stream_init(&t, &sub, 43));
    int32_t f1[SN];
    got = 0;
    while (got < SN) got += lethe_stream_next(&t, 10, 0, f1 + got);
    CHECK(is_epoch(f1) && memcmp(f1, e1, sizeof e1) != 0);
    lethe_stream_free(&t);
    lethe_stream_free(&s);
    CHECK(s.order == NULL);

    lethe_subset empty = {buf, 0};
    CHECK_ERR(lethe_stream_init(&s, &empty, 1), LETHE_ERR_ARG, "empty");
}

TEST(stream_wrap_full_batches)
{
    int32_t buf[SN];
    lethe_subset sub;
    make_subset(&sub, buf);
    lethe_stream s;
    CHECK_OK(lethe_stream_init(&s, &sub, 5));
    enum { BS = 10, NB = 37 }; /* 370 draws = exactly 10 epochs */
    static int32_t all[BS * NB];
    for (int b = 0; b < NB; b++) CHECK(lethe_stream_next(&s, BS, 1, all + b * BS) == BS);
    for (int e = 0; e < 10; e++) CHECK_MSG(is_epoch(all + e * SN), "epoch %d", e);
    CHECK(memcmp(all, all + SN, SN * sizeof *all) != 0);
    CHECK(s.epoch == 9 && s.pos == SN);

    /* Same seed, same draws, whatever the batch size. */
    lethe_stream t;
    CHECK_OK(lethe_stream_init(&t, &sub, 5));
    int32_t big[100];
    for (int k = 0; k < 3; k++) {
        CHECK(lethe_stream_next(&t, 100, 1, big) == 100); /* bs > n: crosses epochs */
        CHECK(memcmp(big, all + 100 * k, sizeof big) == 0);
    }
    CHECK(lethe_stream_next(&t, 0, 1, big) == 0);
    lethe_stream_free(&t);
    lethe_stream_free(&s);
}
