/* Checkpoints: the safetensors parser on hand-made files (every error the
 * reader promises), the atomic writer, model round trips, load mismatches,
 * and the PyTorch-made fixtures (tools/lethe_torch.py fixture) as the
 * cross-check of Lethe's forward pass against torch's. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "lethe.h"
#include "test.h"

/* ------------------------------------------------------------ helpers */

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* A safetensors file with this exact header text and data_len data bytes
 * (byte i = i & 0xff). hlen_override != 0 replaces the length field. */
static void write_st(const char *path, const char *json, size_t data_len, uint64_t hlen_override)
{
    size_t hl = strlen(json);
    uint8_t *buf = malloc(8 + hl + data_len + 1);
    uint64_t v = hlen_override ? hlen_override : hl;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(v >> (8 * i));
    memcpy(buf + 8, json, hl);
    for (size_t i = 0; i < data_len; i++) buf[8 + hl + i] = (uint8_t)i;
    CHECK(write_bytes(path, buf, 8 + hl + data_len) == 0);
    free(buf);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

/* Expect st_read (with data, and header-only) to fail with `want`, and the
 * message to name the file and contain `what`. */
static void expect_read_error(const char *path, lethe_status want, const char *what, int line)
{
    for (int with_data = 1; with_data >= 0; with_data--) {
        st_file f;
        lethe_status s = st_read(&f, path, with_data);
        const char *msg = lethe_last_error();
        if (s != want || !strstr(msg, path) || !strstr(msg, what))
            test_fail(__FILE__, line, "want %s with '%s', got %s: %s",
                      lethe_status_to_string(want), what, lethe_status_to_string(s), msg);
        CHECK(f.n == 0 && f.buf == NULL && f.t == NULL);
        st_free(&f);
    }
}

/* Entries of a temp directory whose name contains `part`. */
static int count_entries(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, part)) n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------ metadata */

TEST(meta_set_get)
{
    lethe_metadata md = {0};
    CHECK(lethe_meta_get(&md, "arch") == NULL);
    CHECK_OK(lethe_meta_set(&md, "arch", "cnn"));
    CHECK_OK(lethe_meta_set(&md, "seed", "1"));
    CHECK_OK(lethe_meta_set(&md, "arch", "resnet8"));     /* replaces */
    CHECK(md.n == 2);
    CHECK(strcmp(lethe_meta_get(&md, "arch"), "resnet8") == 0);
    CHECK(strcmp(lethe_meta_get(&md, "seed"), "1") == 0);
    CHECK_OK(lethe_meta_set(&md, "arch", NULL));          /* removes */
    CHECK(md.n == 1 && lethe_meta_get(&md, "arch") == NULL);
    CHECK(strcmp(lethe_meta_get(&md, "seed"), "1") == 0);
    CHECK_OK(lethe_meta_set(&md, "absent", NULL));        /* removing nothing is fine */
    CHECK(md.n == 1);
}

/* Nothing is dropped or truncated: what does not fit is refused, with md
 * left as it was. */
TEST(meta_set_refuses_what_does_not_fit)
{
    lethe_metadata md = {0}, before;
    char k[16], key[80], value[600];
    for (int i = 0; i < LETHE_MAX_META; i++) {
        snprintf(k, sizeof k, "k%d", i);
        CHECK_OK(lethe_meta_set(&md, k, "v"));
    }
    CHECK(md.n == LETHE_MAX_META);
    memcpy(&before, &md, sizeof md);
    CHECK(lethe_meta_set(&md, "k32", "v") == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "k32") && strstr(lethe_last_error(), "32 entries"));
    CHECK(memcmp(&before, &md, sizeof md) == 0);
    CHECK_OK(lethe_meta_set(&md, "k31", "w"));           /* a present key: replaced */
    CHECK(strcmp(lethe_meta_get(&md, "k31"), "w") == 0);

    lethe_metadata small = {0};
    memset(value, 'x', 511);
    value[511] = '\0';
    CHECK_OK(lethe_meta_set(&small, "long", value));     /* 511 bytes: the most */
    CHECK(strlen(lethe_meta_get(&small, "long")) == 511);
    value[511] = 'x';
    value[512] = '\0';
    memcpy(&before, &small, sizeof small);
    CHECK(lethe_meta_set(&small, "long", value) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "512 bytes") != NULL);
    CHECK(memcmp(&before, &small, sizeof small) == 0);
    memset(key, 'k', 63);
    key[63] = '\0';
    CHECK_OK(lethe_meta_set(&small, key, "v"));          /* 63 bytes: the most */
    key[63] = 'k';
    key[64] = '\0';
    CHECK(lethe_meta_set(&small, key, "v") == LETHE_ERR_ARG);
    CHECK(lethe_meta_set(&small, key, NULL) == LETHE_ERR_ARG);
    CHECK(lethe_meta_set(NULL, "a", "b") == LETHE_ERR_ARG);
    CHECK(lethe_meta_set(&small, NULL, "b") == LETHE_ERR_ARG);
    small.n = LETHE_MAX_META + 1;                         /* not initialised */
    CHECK(lethe_meta_set(&small, "a", "b") == LETHE_ERR_ARG);
    small.n = -1;
    CHECK(lethe_meta_set(&small, "a", "b") == LETHE_ERR_ARG);
}

/* ----------------------------------------------------- parser, writer */

TEST(st_write_read_roundtrip)
{
    const char *path = test_path("rt.safetensors");
    float a[6] = {1.5f, -0.0f, 1e-42f /* subnormal */, 3.4e38f, -7.25f, 0.1f};
    uint32_t nan_bits = 0x7fc01234u;
    memcpy(&a[5], &nan_bits, 4);
    float count = 12345.0f, dummy = 0;
    st_out t[3] = {
        {.name = "w", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "n", .dtype = ST_I64, .ndim = 0, .data = &count},
        {.name = "empty", .dtype = ST_F32, .ndim = 1, .shape = {0}, .data = &dummy},
    };
    lethe_metadata md = {0};
    CHECK_OK(lethe_meta_set(&md, "quote", "a \"b\" \\c\n\xc3\xa9"));
    CHECK_OK(lethe_meta_set(&md, "arch", "cnn"));
    CHECK_OK(st_write(path, &md, t, 3));

    size_t n;
    uint8_t *raw = slurp(path, &n);
    CHECK(raw && n >= 8);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | raw[i];
    CHECK(hlen % 8 == 0);
    CHECK(n == 8 + hlen + 24 + 8);              /* 6 floats, one int64 */
    int64_t stored;
    memcpy(&stored, raw + 8 + hlen + 24, 8);    /* host is little-endian */
    CHECK(stored == 12345);
    free(raw);

    st_file f;
    CHECK_OK(st_read(&f, path, 1));
    CHECK(f.n == 3);
    if (f.n == 3) {
        CHECK(strcmp(f.t[0].name, "w") == 0 && strcmp(f.t[1].name, "n") == 0);
        CHECK(f.t[0].ndim == 2 && f.t[0].shape[0] == 2 && f.t[0].shape[1] == 3);
        CHECK(f.t[1].ndim == 0 && f.t[1].numel == 1 && f.t[1].dtype == ST_I64);
        CHECK(f.t[2].numel == 0);
        float back[6], c;
        st_entry_to_float(&f, st_find(&f, "w"), back);
        CHECK(memcmp(back, a, sizeof a) == 0);  /* bitwise, NaN payload too */
        st_entry_to_float(&f, st_find(&f, "n"), &c);
        CHECK(c == 12345.0f);
        CHECK(st_find(&f, "nope") == NULL);
    }
    CHECK(strcmp(lethe_meta_get(&f.md, "quote"), "a \"b\" \\c\n\xc3\xa9") == 0);
    CHECK(strcmp(lethe_meta_get(&f.md, "arch"), "cnn") == 0);
    st_free(&f);

    /* header only: same entries, no data */
    CHECK_OK(st_read(&f, path, 0));
    CHECK(f.n == 3 && f.data == NULL && f.data_size == 32);
    st_free(&f);
}

TEST(st_write_rejects_bad_tensors)
{
    const char *path = test_path("bad-out.safetensors");
    float x[2] = {0, 0};
    st_out t[2] = {
        {.name = "a", .dtype = ST_F32, .ndim = 1, .shape = {2}, .data = x},
        {.name = "a", .dtype = ST_F32, .ndim = 1, .shape = {2}, .data = x},
    };
    CHECK(st_write(path, NULL, t, 2) == LETHE_ERR_ARG);         /* duplicate */
    t[1].name = "__metadata__";
    CHECK(st_write(path, NULL, t, 2) == LETHE_ERR_ARG);
    t[1].name = "b";
    t[1].dtype = ST_F16;
    CHECK(st_write(path, NULL, t, 2) == LETHE_ERR_ARG);
    float inf = INFINITY;
    st_out c = {.name = "count", .dtype = ST_I64, .ndim = 0, .data = &inf};
    CHECK(st_write(path, NULL, &c, 1) == LETHE_ERR_ARG);
    CHECK(access(path, F_OK) != 0);
    CHECK(count_entries(test_tmpdir(), "bad-out.safetensors.tmp") == 0);
}

TEST(st_read_converts_dtypes)
{
    const char *path = test_path("dtypes.safetensors");
    const char *json =
        "{\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[16,26]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[26,30]},"
        "\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[30,46]}}";
    uint8_t data[46 + 10];                     /* 10 unused trailing bytes: fine */
    memset(data, 0xee, sizeof data);
    double dv[2] = {1.5, -2.25};
    memcpy(data, dv, 16);
    uint16_t hv[5] = {0x3c00, 0xc000, 0x0001, 0x7c00, 0x3555};
    memcpy(data + 16, hv, 10);
    uint16_t bv[2] = {0x3f80, 0xc040};
    memcpy(data + 26, bv, 4);
    int64_t iv[2] = {-7, (int64_t)1 << 40};
    memcpy(data + 30, iv, 16);

    size_t hl = strlen(json);
    uint8_t *file = malloc(8 + hl + sizeof data);
    for (int k = 0; k < 8; k++) file[k] = (uint8_t)((uint64_t)hl >> (8 * k));
    memcpy(file + 8, json, hl);
    memcpy(file + 8 + hl, data, sizeof data);
    CHECK(write_bytes(path, file, 8 + hl + sizeof data) == 0);

    st_file f;
    CHECK_OK(st_read(&f, path, 1));
    if (f.n == 4) {
        float out[5];
        st_entry_to_float(&f, st_find(&f, "d"), out);
        CHECK(out[0] == 1.5f && out[1] == -2.25f);
        st_entry_to_float(&f, st_find(&f, "h"), out);
        CHECK(out[0] == 1.0f && out[1] == -2.0f);
        CHECK(out[2] == ldexpf(1.0f, -24));     /* smallest half subnormal */
        CHECK(isinf(out[3]) && out[3] > 0);
        CHECK(out[4] == 0.333251953125f);
        st_entry_to_float(&f, st_find(&f, "b"), out);
        CHECK(out[0] == 1.0f && out[1] == -3.0f);
        st_entry_to_float(&f, st_find(&f, "i"), out);
        CHECK(out[0] == -7.0f && out[1] == 1099511627776.0f);
    }
    st_free(&f);

    /* the same image parsed from memory */
    CHECK_OK(st_parse(&f, file, 8 + hl + sizeof data, "mem"));
    CHECK(f.n == 4 && f.data_size == sizeof data);
    st_free(&f);
    free(file);
}

TEST(st_read_accepts_edge_cases)
{
    const char *path = test_path("edge.safetensors");
    st_file f;
    write_st(path, "{}", 0, 0);                 /* no tensors, no metadata */
    CHECK_OK(st_read(&f, path, 1));
    CHECK(f.n == 0 && f.md.n == 0);
    st_free(&f);
    /* padded header, empty tensors anywhere, a scalar, trailing data */
    write_st(path, "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[2,2]},"
                   "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}   \n ",
             64, 0);
    CHECK_OK(st_read(&f, path, 1));
    CHECK(f.n == 2 && f.data_size == 64);
    st_free(&f);
}

TEST(st_read_rejects_malformed_headers)
{
    static const struct { const char *json; size_t data; const char *what; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, "trailing"},
        {"[1, 2]", 0, "not a JSON object"},
        {"{\"a\":5}", 0, "not an object"},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "no dtype"},
        {"{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "non-string dtype"},
        {"{\"a\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         "unsupported dtype 'I32'"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "no shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8,
         "non-array shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
         "not a number"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
         "not an integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8,
         "too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],"
         "\"data_offsets\":[0,8]}}", 8, "overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         "9 dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "no data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
         "malformed data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"b\":0}}}", 8,
         "malformed data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e20]}}", 8, "too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
         "ends before it begins"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
         "past the 4-byte data block"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12, "need 12"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "need 16"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "appears twice"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "metadata 'k' is not a string"},
        {"{\"__metadata__\":[]}", 0, "__metadata__ is not an object"},
    };
    const char *path = test_path("bad.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_st(path, cases[i].json, cases[i].data, 0);
        expect_read_error(path, LETHE_ERR_FORMAT, cases[i].what, __LINE__);
    }
}

TEST(st_read_rejects_oversized_metadata)
{
    const char *path = test_path("meta.safetensors");
    static char json[4096], big[700];
    memset(big, 'k', 70);
    big[70] = 0;
    snprintf(json, sizeof json, "{\"__metadata__\":{\"%s\":\"v\"}}", big);
    write_st(path, json, 0, 0);
    expect_read_error(path, LETHE_ERR_FORMAT, "is longer than 63 bytes", __LINE__);
    memset(big, 'v', 600);
    big[600] = 0;
    snprintf(json, sizeof json, "{\"__metadata__\":{\"k\":\"%s\"}}", big);
    write_st(path, json, 0, 0);
    expect_read_error(path, LETHE_ERR_FORMAT, "'k' is longer than 511 bytes", __LINE__);
    size_t k = (size_t)snprintf(json, sizeof json, "{\"__metadata__\":{");
    for (int i = 0; i <= LETHE_MAX_META; i++)
        k += (size_t)snprintf(json + k, sizeof json - k, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(json + k, sizeof json - k, "}}");
    write_st(path, json, 0, 0);
    expect_read_error(path, LETHE_ERR_FORMAT, "more than 32 metadata entries", __LINE__);
}

TEST(st_read_rejects_bad_lengths)
{
    const char *path = test_path("len.safetensors");
    CHECK(write_bytes(path, "", 0) == 0);
    expect_read_error(path, LETHE_ERR_FORMAT, "too short", __LINE__);
    CHECK(write_bytes(path, "\x02\0\0\0\0", 5) == 0);
    expect_read_error(path, LETHE_ERR_FORMAT, "too short", __LINE__);
    write_st(path, "{}", 0, 0);                 /* a real length of 2 is fine */
    st_file f;
    CHECK_OK(st_read(&f, path, 1));
    st_free(&f);
    uint8_t zero[10] = {0, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK(write_bytes(path, zero, sizeof zero) == 0);
    expect_read_error(path, LETHE_ERR_FORMAT, "header length is 0", __LINE__);
    write_st(path, "{}", 0, (uint64_t)200 << 20);
    expect_read_error(path, LETHE_ERR_FORMAT, "exceeds the 100 MB limit", __LINE__);
    write_st(path, "{}", 0, ~(uint64_t)0);
    expect_read_error(path, LETHE_ERR_FORMAT, "exceeds", __LINE__);
    write_st(path, "{}", 0, 100);
    expect_read_error(path, LETHE_ERR_FORMAT, "past the end of the 10-byte file", __LINE__);
    expect_read_error(test_path("does-not-exist"), LETHE_ERR_NOTFOUND, "cannot open", __LINE__);
    expect_read_error(test_tmpdir(), LETHE_ERR_IO, "", __LINE__);
}

TEST(st_read_rejects_truncated_data)
{
    const char *path = test_path("trunc.safetensors");
    float x[100];
    for (int i = 0; i < 100; i++) x[i] = (float)i;
    st_out t = {.name = "x", .dtype = ST_F32, .ndim = 2, .shape = {10, 10}, .data = x};
    CHECK_OK(st_write(path, NULL, &t, 1));
    size_t n;
    uint8_t *raw = slurp(path, &n);
    CHECK(raw && n > 400);
    CHECK(write_bytes(path, raw, n - 10) == 0);
    expect_read_error(path, LETHE_ERR_FORMAT, "'x' ends at byte 400, past the 390-byte",
                      __LINE__);
    lethe_metadata md;
    CHECK(lethe_checkpoint_read_meta(path, &md) == LETHE_ERR_FORMAT);
    free(raw);
}

/* ------------------------------------------------------------ atomicity */

TEST(st_write_is_atomic)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", test_path("atomic"));
    CHECK(mkdir(dir, 0755) == 0);
    char path[600], tmp[700];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    float x[4] = {1, 2, 3, 4};
    st_out t = {.name = "x", .dtype = ST_F32, .ndim = 1, .shape = {4}, .data = x};
    CHECK_OK(st_write(path, NULL, &t, 1));
    CHECK(count_entries(dir, ".tmp") == 0);
    size_t n0;
    uint8_t *before = slurp(path, &n0);

    /* the temp name is taken by a directory: the save fails, path stays */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(mkdir(tmp, 0755) == 0);
    x[0] = 99;
    CHECK(st_write(path, NULL, &t, 1) == LETHE_ERR_IO);
    CHECK(strstr(lethe_last_error(), path) != NULL);
    rmdir(tmp);
    size_t n1;
    uint8_t *after = slurp(path, &n1);
    CHECK(after && n1 == n0 && memcmp(before, after, n0) == 0);
    free(after);

    /* the disk "fills up" half way (file size limit): no partial file */
    static float big[20000];
    st_out b = {.name = "big", .dtype = ST_F32, .ndim = 1, .shape = {20000}, .data = big};
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    lethe_status s = st_write(path, NULL, &b, 1);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, prev);
    CHECK(s == LETHE_ERR_IO);
    after = slurp(path, &n1);
    CHECK(after && n1 == n0 && memcmp(before, after, n0) == 0);
    free(after);
    CHECK(count_entries(dir, ".tmp") == 0);
    free(before);

    /* a directory that does not exist */
    snprintf(path, sizeof path, "%s/no/such/dir/m.safetensors", dir);
    CHECK(st_write(path, NULL, &t, 1) == LETHE_ERR_IO);
}

/* -------------------------------------------------------------- models */

/* A model with seeded θ, random running stats and a count of 7. */
static lethe_model *make_model(const char *arch, int c, int h, int w, int nclass, uint64_t seed)
{
    lethe_model *m = NULL;
    if (lethe_model_create(&m, arch, c, h, w, nclass) != LETHE_OK) {
        test_fail(__FILE__, __LINE__, "create %s: %s", arch, lethe_last_error());
        return NULL;
    }
    lethe_rng rng;
    lethe_rng_seed(&rng, seed);
    lethe_model_init(m, &rng);
    size_t nb;
    float *buf = lethe_model_buffers(m, &nb);
    for (size_t i = 0; i < nb; i++) buf[i] = 0.5f + lethe_rng_uniform(&rng);
    for (int i = 0; i < lethe_model_ntensors(m); i++) {
        const lethe_tensor *t = lethe_model_tensor(m, i);
        if (t->is_int64) t->data[0] = 7.0f;
    }
    return m;
}

/* θ and buffers bitwise equal. */
static int same_state(lethe_model *a, lethe_model *b)
{
    size_t na, nb, ba, bb;
    float *ta = lethe_model_theta(a, &na), *tb = lethe_model_theta(b, &nb);
    float *fa = lethe_model_buffers(a, &ba), *fb = lethe_model_buffers(b, &bb);
    return na == nb && ba == bb && memcmp(ta, tb, na * sizeof *ta) == 0 &&
           (ba == 0 || memcmp(fa, fb, ba * sizeof *fa) == 0);
}

static void roundtrip(const char *arch, int c, int h, int w, int nclass)
{
    lethe_model *m = make_model(arch, c, h, w, nclass, 42);
    if (!m) return;
    char in_shape[32], nc[16];
    snprintf(in_shape, sizeof in_shape, "%d,%d,%d", c, h, w);
    snprintf(nc, sizeof nc, "%d", nclass);
    lethe_metadata md = {0};
    CHECK_OK(lethe_meta_set(&md, "format", "lethe"));
    CHECK_OK(lethe_meta_set(&md, "arch", arch));
    CHECK_OK(lethe_meta_set(&md, "in_shape", in_shape));
    CHECK_OK(lethe_meta_set(&md, "nclass", nc));
    CHECK_OK(lethe_meta_set(&md, "recipe", "sgd lr=0.1 \"quoted\""));
    const char *path = test_path("roundtrip.safetensors");
    CHECK_OK(lethe_checkpoint_save(m, &md, path));
    CHECK(count_entries(test_tmpdir(), "roundtrip.safetensors.tmp") == 0);

    lethe_model *r = NULL;
    lethe_metadata back;
    CHECK_OK(lethe_checkpoint_open(&r, path, &back));
    if (r) {
        CHECK(strcmp(lethe_model_arch(r), arch) == 0);
        CHECK(lethe_model_nclass(r) == nclass);
        CHECK(same_state(m, r));
        CHECK(back.n == md.n);
        for (int i = 0; i < md.n; i++) {
            const char *v = lethe_meta_get(&back, md.kv[i].key);
            CHECK(v && strcmp(v, md.kv[i].value) == 0);
        }
    }
    /* load into a fresh model of the same shape */
    lethe_model *q = make_model(arch, c, h, w, nclass, 43);
    if (q) {
        CHECK(!same_state(m, q));
        CHECK_OK(lethe_checkpoint_load(q, path, NULL));
        CHECK(same_state(m, q));
    }
    lethe_model_free(q);
    lethe_model_free(r);
    lethe_model_free(m);
}

TEST(checkpoint_roundtrip_mlp) { roundtrip("mlp", 1, 28, 28, 10); }
TEST(checkpoint_roundtrip_cnn) { roundtrip("cnn", 1, 28, 28, 10); }
TEST(checkpoint_roundtrip_resnet8) { roundtrip("resnet8", 1, 28, 28, 10); }
TEST(checkpoint_roundtrip_resnet20) { roundtrip("resnet20", 3, 32, 32, 10); }
TEST(checkpoint_roundtrip_resnet8_rgb) { roundtrip("resnet8", 3, 32, 32, 7); }

TEST(checkpoint_save_fills_arch)
{
    lethe_model *m = make_model("mlp", 1, 28, 28, 10, 1);
    if (!m) return;
    const char *path = test_path("noarch.safetensors");
    CHECK_OK(lethe_checkpoint_save(m, NULL, path));
    lethe_metadata md;
    CHECK_OK(lethe_checkpoint_read_meta(path, &md));
    CHECK(lethe_meta_get(&md, "arch") && strcmp(lethe_meta_get(&md, "arch"), "mlp") == 0);
    CHECK(lethe_meta_get(&md, "format") && strcmp(lethe_meta_get(&md, "format"), "lethe") == 0);
    lethe_model *r = NULL;
    CHECK_OK(lethe_checkpoint_open(&r, path, NULL));
    CHECK(r && same_state(m, r));
    lethe_model_free(r);
    lethe_model_free(m);
}

/* Write the model's tensors with edits: drop `drop`, add `extra`, give
 * `reshape` the shape (a, b). */
static void write_edited(const lethe_model *m, const char *path, const char *drop,
                         const char *extra, const char *reshape, int a, int b,
                         const char *as_vector)
{
    int n = lethe_model_ntensors(m);
    st_out *t = calloc((size_t)n + 1, sizeof *t);
    int k = 0;
    static float extra_data[4];
    for (int i = 0; i < n; i++) {
        const lethe_tensor *x = lethe_model_tensor(m, i);
        if (drop && strcmp(x->name, drop) == 0) continue;
        st_out *o = &t[k++];
        o->name = x->name;
        o->dtype = x->is_int64 ? ST_I64 : ST_F32;
        o->ndim = x->ndim;
        for (int d = 0; d < x->ndim; d++) o->shape[d] = x->shape[d];
        o->data = x->data;
        if (reshape && strcmp(x->name, reshape) == 0) {
            o->ndim = 2;
            o->shape[0] = a;
            o->shape[1] = b;
        }
        if (as_vector && strcmp(x->name, as_vector) == 0) {
            o->ndim = 1;
            o->shape[0] = 1;
        }
    }
    if (extra) t[k++] = (st_out){.name = extra, .dtype = ST_F32, .ndim = 1, .shape = {4},
                                 .data = extra_data};
    lethe_metadata md = {0};
    CHECK_OK(lethe_meta_set(&md, "arch", lethe_model_arch(m)));
    CHECK_OK(st_write(path, &md, t, k));
    free(t);
}

static void expect_load_error(lethe_model *m, const char *path, lethe_status want,
                              const char *what1, const char *what2, int line)
{
    size_t n;
    float *theta = lethe_model_theta(m, &n);
    float *copy = malloc(n * sizeof *copy);
    memcpy(copy, theta, n * sizeof *copy);
    lethe_status s = lethe_checkpoint_load(m, path, NULL);
    const char *msg = lethe_last_error();
    if (s != want || !strstr(msg, path) || !strstr(msg, what1) || !strstr(msg, what2))
        test_fail(__FILE__, line, "want %s with '%s' and '%s', got %s: %s",
                  lethe_status_to_string(want), what1, what2, lethe_status_to_string(s), msg);
    if (memcmp(copy, theta, n * sizeof *copy) != 0)
        test_fail(__FILE__, line, "a failed load changed θ");
    free(copy);
}

TEST(checkpoint_load_mismatch)
{
    lethe_model *m = make_model("resnet8", 1, 28, 28, 10, 5);
    lethe_model *other = make_model("mlp", 1, 28, 28, 10, 6);
    if (!m || !other) goto done;
    const char *path = test_path("edited.safetensors");

    write_edited(m, path, "layer2.0.downsample.1.running_var", NULL, NULL, 0, 0, NULL);
    expect_load_error(m, path, LETHE_ERR_MISMATCH, "'layer2.0.downsample.1.running_var'",
                      "missing", __LINE__);
    write_edited(m, path, NULL, "extra.weight", NULL, 0, 0, NULL);
    expect_load_error(m, path, LETHE_ERR_MISMATCH, "'extra.weight'", "lacks", __LINE__);
    write_edited(m, path, NULL, NULL, "fc.weight", 5, 128, NULL);
    expect_load_error(m, path, LETHE_ERR_MISMATCH, "[5, 128] in the file",
                      "[10, 64] in the resnet8 model", __LINE__);

    /* an mlp's file into a resnet8, and the reverse */
    CHECK_OK(lethe_checkpoint_save(other, NULL, path));
    expect_load_error(m, path, LETHE_ERR_MISMATCH, "conv1.weight", "missing", __LINE__);
    CHECK_OK(lethe_checkpoint_save(m, NULL, path));
    expect_load_error(other, path, LETHE_ERR_MISMATCH, "'fc1.weight'", "missing", __LINE__);

    /* a counter stored as a one-element vector still loads */
    write_edited(m, path, NULL, NULL, NULL, 0, 0, "bn1.num_batches_tracked");
    lethe_model *q = make_model("resnet8", 1, 28, 28, 10, 9);
    if (q) {
        CHECK_OK(lethe_checkpoint_load(q, path, NULL));
        CHECK(same_state(m, q));
    }
    lethe_model_free(q);

    /* a malformed file is a format error, not a mismatch */
    write_st(path, "{\"a\":1}", 0, 0);
    expect_load_error(m, path, LETHE_ERR_FORMAT, "'a'", "not an object", __LINE__);
done:
    lethe_model_free(other);
    lethe_model_free(m);
}

TEST(checkpoint_open_metadata)
{
    lethe_model *m = make_model("mlp", 1, 28, 28, 10, 5);
    if (!m) return;
    const char *path = test_path("open.safetensors");
    lethe_model *r = NULL;
    /* only "arch": defaults 1,28,28 and 10 classes */
    write_edited(m, path, NULL, NULL, NULL, 0, 0, NULL);
    CHECK_OK(lethe_checkpoint_open(&r, path, NULL));
    CHECK(r && lethe_model_nclass(r) == 10 && same_state(m, r));
    lethe_model_free(r);

    int n = lethe_model_ntensors(m);
    st_out *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++) {
        const lethe_tensor *x = lethe_model_tensor(m, i);
        t[i] = (st_out){.name = x->name, .dtype = ST_F32, .ndim = x->ndim, .data = x->data};
        for (int d = 0; d < x->ndim; d++) t[i].shape[d] = x->shape[d];
    }
    static const struct { const char *key, *value; lethe_status want; const char *what; } bad[] = {
        {"in_shape", "1,28", LETHE_ERR_FORMAT, "in_shape '1,28'"},
        {"in_shape", "1,28,28x", LETHE_ERR_FORMAT, "in_shape"},
        {"nclass", "ten", LETHE_ERR_FORMAT, "nclass 'ten'"},
        {"nclass", "0", LETHE_ERR_FORMAT, "nclass"},
        {"in_shape", "3,28,28", LETHE_ERR_MISMATCH, "fc1.weight"},
        {"arch", "vgg16", LETHE_ERR_NOTFOUND, "unknown architecture 'vgg16'"},
        {"made_by", "nobody", LETHE_ERR_FORMAT, "no 'arch'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lethe_metadata md = {0};
        if (strcmp(bad[i].key, "made_by") != 0) CHECK_OK(lethe_meta_set(&md, "arch", "mlp"));
        CHECK_OK(lethe_meta_set(&md, bad[i].key, bad[i].value));
        CHECK_OK(st_write(path, &md, t, n));
        r = (lethe_model *)1;
        lethe_status s = lethe_checkpoint_open(&r, path, NULL);
        CHECK_MSG(s == bad[i].want && strstr(lethe_last_error(), bad[i].what) && r == NULL,
                  "%s=%s: got %s: %s", bad[i].key, bad[i].value, lethe_status_to_string(s),
                  lethe_last_error());
    }
    free(t);
    lethe_model_free(m);
}

/* ------------------------------------------------------- PyTorch fixtures */

/* Load tests/data/torch_ARCH.safetensors, forward the sin probe (4, c,
 * h, w) in EVAL mode and compare with torch's logits. */
static void torch_fixture(const char *arch, int c, int h, int w)
{
    enum { MAXIN = 4 * 3 * 32 * 32 };
    const int nin = 4 * c * h * w;
    CHECK(nin <= MAXIN);
    if (nin > MAXIN) return;
    char name[64], lname[64];
    snprintf(name, sizeof name, "torch_%s.safetensors", arch);
    snprintf(lname, sizeof lname, "torch_%s_logits.safetensors", arch);
    lethe_model *m = NULL;
    lethe_metadata md;
    CHECK_OK(lethe_checkpoint_open(&m, test_data(name), &md));
    if (!m) return;
    CHECK(strcmp(lethe_model_arch(m), arch) == 0);
    CHECK(lethe_meta_get(&md, "made_by") && strcmp(lethe_meta_get(&md, "made_by"), "pytorch") == 0);

    st_file f;
    CHECK_OK(st_read(&f, test_data(lname), 1));
    const st_entry *ein = f.n ? st_find(&f, "input") : NULL;
    const st_entry *eout = f.n ? st_find(&f, "expected_logits") : NULL;
    CHECK(ein && ein->numel == (size_t)nin && eout && eout->numel == 40);
    if (ein && eout && ein->numel == (size_t)nin && eout->numel == 40) {
        static float x[MAXIN], stored[MAXIN], want[40];   /* (4, c, h, w), (4, 10) */
        for (int k = 0; k < nin; k++) x[k] = (float)sin(0.1 * k);
        st_entry_to_float(&f, ein, stored);
        double dx = 0;
        for (int k = 0; k < nin; k++) dx = fmax(dx, fabs(x[k] - stored[k]));
        CHECK_NEAR(dx, 0, 1e-6);
        st_entry_to_float(&f, eout, want);
        lethe_groups g;
        lethe_groups_one(&g, 4);
        const float *logits = NULL;
        CHECK_OK(lethe_model_reserve(m, 4));
        CHECK_OK(lethe_model_forward(m, x, 4, &g, LETHE_BN_EVAL, &logits));
        double err = 0;
        for (int k = 0; logits && k < 40; k++) err = fmax(err, fabs(logits[k] - want[k]));
        CHECK(logits != NULL);
        CHECK_NEAR(err, 0, 1e-4);
    }
    st_free(&f);
    lethe_model_free(m);
}

TEST(torch_fixture_resnet8_logits) { torch_fixture("resnet8", 1, 28, 28); }
TEST(torch_fixture_cnn_f16_logits) { torch_fixture("cnn", 1, 28, 28); }
/* timm's ViT names, state_dict order (cls_token, pos_embed before the
 * patch embedding), norms and positions away from their defaults. */
TEST(torch_fixture_vit_tiny_logits) { torch_fixture("vit-tiny", 1, 28, 28); }
/* CIFAR's shape; 272,474 parameters, He et al.'s 0.27M. */
TEST(torch_fixture_resnet20_logits)
{
    torch_fixture("resnet20", 3, 32, 32);
    lethe_model *m = NULL;
    size_t n = 0;
    CHECK_OK(lethe_model_create(&m, "resnet20", 3, 32, 32, 10));
    if (m) lethe_model_theta(m, &n);
    CHECK_MSG(n == 272474, "resnet20 has %zu parameters", n);
    lethe_model_free(m);
}

/* Lethe writes the torch file's tensors back in the same order, dtypes,
 * shapes and bytes: its layout is PyTorch's state_dict. */
static void torch_resave(const char *arch)
{
    char name[64];
    snprintf(name, sizeof name, "torch_%s.safetensors", arch);
    const char *src = test_data(name);
    const char *dst = test_path("resaved.safetensors");
    lethe_model *m = NULL;
    lethe_metadata md;
    CHECK_OK(lethe_checkpoint_open(&m, src, &md));
    if (!m) return;
    const lethe_tensor *nb = lethe_model_find(m, "bn1.num_batches_tracked");
    CHECK(nb && nb->data[0] == 3.0f);
    CHECK_OK(lethe_checkpoint_save(m, &md, dst));
    st_file a, b;
    CHECK_OK(st_read(&a, src, 1));
    CHECK_OK(st_read(&b, dst, 1));
    CHECK(a.n == b.n && a.n == lethe_model_ntensors(m));
    for (int i = 0; i < a.n && i < b.n; i++) {
        const st_entry *x = &a.t[i], *y = &b.t[i];
        CHECK_MSG(strcmp(x->name, y->name) == 0 && x->dtype == y->dtype &&
                  x->ndim == y->ndim && x->end - x->begin == y->end - y->begin &&
                  memcmp(a.data + x->begin, b.data + y->begin, x->end - x->begin) == 0 &&
                  memcmp(x->shape, y->shape, sizeof x->shape) == 0,
                  "tensor %d: torch '%s' vs lethe '%s'", i, x->name, y->name);
    }
    st_free(&a);
    st_free(&b);
    lethe_model_free(m);
}

TEST(torch_fixture_resave_matches_torch) { torch_resave("resnet8"); }
TEST(torch_fixture_resave_matches_torch_resnet20) { torch_resave("resnet20"); }

/* tools/lethe_torch.py's synth_weights, bit for bit: entry k of the j-th
 * state_dict tensor is u·s, u = (splitmix64(j << 32 | k) >> 40) / 2^23 − 1,
 * s = (float)sqrt(6 / fan_in). */
static void synth_fill(float *w, size_t numel, int64_t rows, uint64_t j)
{
    const float s = (float)sqrt(6.0 / (double)(numel / (size_t)rows));
    for (size_t k = 0; k < numel; k++) {
        uint64_t z = (j << 32) + k + 0x9E3779B97F4A7C15ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        w[k] = ((float)(z >> 40) / (float)(1 << 23) - 1.0f) * s;
    }
}

/* resnet18: 11,173,962 parameters, too many for a fixture of weights. The
 * file holds, in state_dict order, the batch norms and fc.bias as torch
 * left them, "synth:NAME" (its shape) for each conv and fc weight, which
 * both sides make with synth_fill, then two probes (2, 3, 16, 16) and
 * torch's eval logits. Names, order and shapes are checked against
 * Lethe's tensors; the logits to 1e-4. */
TEST(torch_fixture_resnet18_logits)
{
    const char *path = test_data("torch_resnet18.safetensors");
    if (access(path, R_OK) != 0) {
        test_skip("%s missing (tools/lethe_torch.py fixture --arch resnet18)", path);
        return;
    }
    enum { NS = 2, C = 3, HW = 16, NIN = NS * C * HW * HW, NL = NS * 10 };
    lethe_model *m = NULL;
    st_file f;
    CHECK_OK(st_read(&f, path, 1));
    CHECK_OK(lethe_model_create(&m, "resnet18", C, HW, HW, 10));
    if (!m || !f.n) goto out;
    size_t n = 0;
    lethe_model_theta(m, &n);
    CHECK_MSG(n == 11173962, "resnet18 has %zu parameters", n);
    const int nt = lethe_model_ntensors(m);
    CHECK_MSG(f.n == nt + 2, "fixture holds %d entries, resnet18 %d tensors + 2", f.n, nt);
    if (f.n != nt + 2) goto out;
    for (int i = 0; i < nt; i++) {
        const lethe_tensor *t = lethe_model_tensor(m, i);
        const st_entry *e = &f.t[i];
        char synth[80];
        snprintf(synth, sizeof synth, "synth:%s", t->name);
        int same = e->ndim == t->ndim;
        if (strcmp(e->name, t->name) == 0) {          /* stored as torch left it */
            for (int d = 0; same && d < t->ndim; d++) same = e->shape[d] == t->shape[d];
            CHECK_MSG(same && e->numel == t->numel, "%s: shape differs from torch's", t->name);
            if (same && e->numel == t->numel) st_entry_to_float(&f, e, t->data);
        } else if (strcmp(e->name, synth) == 0) {     /* made here as in torch */
            float dims[ST_MAX_DIMS] = {0};
            same = e->ndim == 1 && e->numel == (size_t)t->ndim && t->ndim >= 2;
            if (same) st_entry_to_float(&f, e, dims);
            for (int d = 0; same && d < t->ndim; d++) same = dims[d] == (float)t->shape[d];
            CHECK_MSG(same, "%s: shape differs from torch's", t->name);
            if (same) synth_fill(t->data, t->numel, t->shape[0], (uint64_t)i);
        } else {
            CHECK_MSG(0, "tensor %d: torch has '%s', lethe '%s'", i, e->name, t->name);
        }
    }
    const st_entry *ein = st_find(&f, "input"), *eout = st_find(&f, "expected_logits");
    CHECK(ein && ein->numel == NIN && eout && eout->numel == NL);
    if (!ein || ein->numel != NIN || !eout || eout->numel != NL) goto out;
    static float x[NIN], stored[NIN], want[NL];   /* (2, 3, 16, 16), (2, 10) */
    for (int k = 0; k < NIN; k++) x[k] = (float)sin(0.1 * k);
    st_entry_to_float(&f, ein, stored);
    double dx = 0, err = 0, big = 0;
    for (int k = 0; k < NIN; k++) dx = fmax(dx, fabs(x[k] - stored[k]));
    CHECK_NEAR(dx, 0, 1e-6);
    st_entry_to_float(&f, eout, want);
    lethe_groups g;
    lethe_groups_one(&g, NS);
    const float *logits = NULL;
    CHECK_OK(lethe_model_reserve(m, NS));
    CHECK_OK(lethe_model_forward(m, x, NS, &g, LETHE_BN_EVAL, &logits));
    CHECK(logits != NULL);
    for (int k = 0; logits && k < NL; k++) {
        err = fmax(err, fabs(logits[k] - want[k]));
        big = fmax(big, fabs(want[k]));
    }
    CHECK_MSG(big > 0.1, "torch's logits are all near 0 (largest %g): a weak probe", big);
    CHECK_MSG(err < 1e-4, "resnet18 logits differ from torch's by %g (largest %g)", err, big);
out:
    st_free(&f);
    lethe_model_free(m);
}
