/* Helpers of the command-line tests; see cli_util.h. */
#include "cli_util.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

#include "test.h"

/* ------------------------------------------------------------- files */

const char *cli_t_path(cli_t_path_buf buf, const char *sub, const char *name)
{
    snprintf(buf, sizeof(cli_t_path_buf), "%s/%s/%s", test_tmpdir(), sub, name);
    return buf;
}

int cli_t_mkdir(const char *sub)
{
    cli_t_path_buf top;
    cli_t_path(top, sub, "");
    return mkdir(top, 0755) == 0 || cli_t_exists(top);
}

int cli_t_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

char *cli_t_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0, k;
    char *buf = malloc(cap);
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

int cli_t_spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

cJSON *cli_t_load_json(const char *path)
{
    char *text = cli_t_slurp(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

double cli_t_jnum(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int cli_t_count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

int cli_t_temp_files_left(const char *sub)
{
    cli_t_path_buf top;
    DIR *d = opendir(cli_t_path(top, sub, ""));
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) n += strstr(de->d_name, ".tmp") != NULL;
    closedir(d);
    return n;
}

int cli_t_is_png(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t len = 0;
    char *b = cli_t_slurp(path, &len);
    /* signature, IHDR (length, "IHDR", 13 bytes, CRC), …, IEND (0, "IEND", CRC) */
    int ok = b && len >= 8 + 25 + 12 && memcmp(b, sig, 8) == 0 && memcmp(b + 12, "IHDR", 4) == 0 &&
             memcmp(b + len - 8, "IEND", 4) == 0;
    free(b);
    return ok;
}

/* ------------------------------------------------------- MNIST folder */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int cli_t_write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndim,
                    const uint8_t *data, size_t len, int gz)
{
    uint8_t head[16];
    if (ndim < 1 || ndim > 3) return 0;
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

void cli_t_make_protos(uint8_t *proto, int side, lethe_rng *r)
{
    for (size_t p = 0; p < (size_t)10 * side * side; p++)
        proto[p] = lethe_rng_uniform(r) < 0.3f ? 255 : 0;
}

void cli_t_make_images(uint8_t *px, uint8_t *y, int n, int side, const uint8_t *proto,
                       lethe_rng *r)
{
    size_t d = (size_t)side * side;
    for (int i = 0; i < n; i++) {
        y[i] = (uint8_t)(i % 10);
        for (size_t p = 0; p < d; p++) {
            uint8_t v = proto[y[i] * d + p];
            px[(size_t)i * d + p] = lethe_rng_uniform(r) < 0.05f ? (uint8_t)(255 - v) : v;
        }
    }
}

int cli_t_write_mnist(const char *dir, const cli_t_mnist *spec)
{
    if (mkdir(dir, 0755) != 0 && !cli_t_exists(dir)) return 0;
    int side = spec->side, nmax = spec->ntrain > spec->ntest ? spec->ntrain : spec->ntest;
    size_t d = (size_t)side * side;
    uint8_t *proto = malloc(10 * d);        /* (10, side·side) */
    uint8_t *px = malloc((size_t)nmax * d); /* (n, side, side) */
    uint8_t *y = malloc((size_t)nmax);      /* (n) */
    int ok = proto && px && y;
    lethe_rng r;
    lethe_rng_seed(&r, spec->proto_seed);
    if (ok) cli_t_make_protos(proto, side, &r);
    for (int split = 0; split < 2 && ok; split++) {
        int n = split ? spec->ntest : spec->ntrain, gz = split ? spec->gz_test : spec->gz_train;
        uint64_t seed = split ? spec->test_seed : spec->train_seed;
        const char *stem = split ? "t10k" : "train", *ext = gz ? ".gz" : "";
        if (seed) lethe_rng_seed(&r, seed);
        cli_t_make_images(px, y, n, side, proto, &r);
        uint32_t dims[3] = {(uint32_t)n, (uint32_t)side, (uint32_t)side};
        char path[600];
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, stem, ext);
        ok = gz ? cli_t_write_idx(path, 0x803, dims, 3, px, (size_t)n * d, 1)
                : lethe_idx_write_images(path, px, n, side, side) == LETHE_OK;
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, stem, ext);
        ok = ok && cli_t_write_idx(path, 0x801, dims, 1, y, (size_t)n, gz);
    }
    free(proto);
    free(px);
    free(y);
    return ok;
}

/* ------------------------------------------------------ running lethe */

int cli_t_have_bin(void)
{
    const char *bin = getenv("LETHE_BIN");
    if (bin && *bin && cli_t_exists(bin)) return 1;
    test_fail(__FILE__, __LINE__, "LETHE_BIN is not set to the lethe binary (run `make test`); "
              "command-line test skipped");
    return 0;
}

int cli_t_run(const char *sub, const char *args, char **out, char **err)
{
    char *o_, *e_;
    if (!out) out = &o_;
    if (!err) err = &e_;
    *out = *err = NULL;
    const char *bin = getenv("LETHE_BIN");
    if (!bin || !*bin) return -1;
    char cmd[8192];
    cli_t_path_buf ob, eb;
    const char *o = cli_t_path(ob, sub, "stdout.txt"), *e = cli_t_path(eb, sub, "stderr.txt");
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", bin, args, o, e);
    int st = system(cmd);
    *out = cli_t_slurp(o, NULL);
    *err = cli_t_slurp(e, NULL);
    if (out == &o_) free(o_);
    if (err == &e_) free(e_);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

void cli_t_expect_fail_at(const char *file, int line, const char *sub, const char *args,
                          const char *needle, int quiet_stdout)
{
    char *o, *e;
    int rc = cli_t_run(sub, args, &o, &e);
    const char *err = e ? e : "";
    if (rc <= 0) test_fail(file, line, "`lethe %s` exited %d, expected an error", args, rc);
    if (cli_t_count_lines(err) != 1 || strncmp(err, "lethe ", 6) != 0)
        test_fail(file, line, "`lethe %s`: stderr is not one 'lethe ...' line:\n%s", args, err);
    if (needle && !strstr(err, needle))
        test_fail(file, line, "`lethe %s`: message lacks '%s': %s", args, needle, err);
    if (quiet_stdout && o && *o) test_fail(file, line, "`lethe %s` printed to stdout: %s", args, o);
    free(o);
    free(e);
}
