/*
 * Safetensors reader and writer (format in safetensors.h).
 *
 * The reader never trusts the file: the header length is bounded by the
 * file's real size (fstat), every shape and offset is checked as an
 * integral, in-range number, byte sizes must equal numel·dtype size, and
 * no two tensors may share bytes. Only then does anyone index the data.
 * The writer builds the file image in memory and hands it to
 * lethe_write_file_atomic (temp file, fsync, rename), so a crash or a full
 * disk never leaves a half-written checkpoint under the real name.
 */
#include "io/safetensors.h"
#include "core/fail.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Integers above 2^53 cannot be held exactly by cJSON's double. */
#define ST_MAX_EXACT 9007199254740992.0

/* ------------------------------------------------------------ metadata */

lethe_status lethe_meta_set(lethe_metadata *md, const char *key, const char *value)
{
    if (!md || !key)
        return lethe_fail(LETHE_ERR_ARG, "metadata: NULL %s", md ? "key" : "metadata");
    if (md->n < 0 || md->n > LETHE_MAX_META)
        return lethe_fail(LETHE_ERR_ARG, "metadata: %d entries, not 0..%d (not initialised?)",
                          md->n, LETHE_MAX_META);
    /* Never truncated or dropped: a reader would see another value, or none. */
    if (strlen(key) >= sizeof md->kv[0].key)
        return lethe_fail(LETHE_ERR_ARG, "metadata key '%.32s...' is longer than %zu bytes",
                          key, sizeof md->kv[0].key - 1);
    int i = 0;
    while (i < md->n && strcmp(md->kv[i].key, key) != 0) i++;
    if (!value) {                       /* NULL value: remove the key */
        if (i < md->n) {
            memmove(&md->kv[i], &md->kv[i + 1], (size_t)(md->n - i - 1) * sizeof md->kv[0]);
            md->n--;
        }
        return LETHE_OK;
    }
    size_t len = strlen(value);
    if (len >= sizeof md->kv[0].value)
        return lethe_fail(LETHE_ERR_ARG, "metadata '%s': a value of %zu bytes (at most %zu)",
                          key, len, sizeof md->kv[0].value - 1);
    if (i == md->n) {
        if (md->n == LETHE_MAX_META)
            return lethe_fail(LETHE_ERR_ARG, "metadata '%s': already %d entries, the most a "
                              "checkpoint holds", key, LETHE_MAX_META);
        md->n++;
        memcpy(md->kv[i].key, key, strlen(key) + 1);
    }
    memcpy(md->kv[i].value, value, len + 1);
    return LETHE_OK;
}

const char *lethe_meta_get(const lethe_metadata *md, const char *key)
{
    if (!md || !key) return NULL;
    for (int i = 0; i < md->n && i < LETHE_MAX_META; i++)
        if (strcmp(md->kv[i].key, key) == 0) return md->kv[i].value;
    return NULL;
}

/* -------------------------------------------------------------- dtypes */

static const struct { const char *name; size_t size; } dtypes[] = {
    [ST_F32] = {"F32", 4}, [ST_F64] = {"F64", 8}, [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I64] = {"I64", 8}, [ST_U8] = {"U8", 1},
};
#define NDTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *st_dtype_name(st_dtype d) { return dtypes[d].name; }
size_t st_dtype_size(st_dtype d) { return dtypes[d].size; }

static uint64_t load_le(const uint8_t *p, int nbytes)
{
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void store_le(uint8_t *p, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++, v >>= 8) p[i] = (uint8_t)v;
}

static float bits_to_float(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* IEEE half → float, subnormals, infinities and NaNs included. */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0) {
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    if (exp == 31) return bits_to_float(sign | 0x7f800000u | (man << 13));
    return bits_to_float(sign | ((exp + 112u) << 23) | (man << 13));
}

void st_entry_to_float(const st_file *f, const st_entry *e, float *out)
{
    const uint8_t *p = f->data + e->begin;
    size_t sz = st_dtype_size(e->dtype);
    for (size_t i = 0; i < e->numel; i++, p += sz) {
        switch (e->dtype) {
        case ST_F32: out[i] = bits_to_float((uint32_t)load_le(p, 4)); break;
        case ST_F64: {
            uint64_t b = load_le(p, 8);
            double d;
            memcpy(&d, &b, sizeof d);
            out[i] = (float)d;
            break;
        }
        case ST_F16: out[i] = half_to_float((uint16_t)load_le(p, 2)); break;
        case ST_BF16: out[i] = bits_to_float((uint32_t)load_le(p, 2) << 16); break;
        case ST_I64: out[i] = (float)(int64_t)load_le(p, 8); break;
        case ST_U8: out[i] = (float)p[0]; break;
        }
    }
}

/* -------------------------------------------------------------- reader */

void st_free(st_file *f)
{
    if (!f) return;
    cJSON_Delete(f->json);
    free(f->t);
    free(f->by_name);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

static int cmp_entry_name(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_entry_begin(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

const st_entry *st_find(const st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->by_name[mid]->name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return NULL;
}

/* A JSON number that is a whole number in [0, max]. what names it in the
 * message ("dimension 2 of tensor 'x'"). */
static lethe_status json_count(const st_file *f, const cJSON *x, double max,
                               uint64_t *v, const char *what, const char *name)
{
    if (!cJSON_IsNumber(x))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %s of tensor '%.64s' is not a number",
                          f->label, what, name);
    double d = x->valuedouble;
    if (d < 0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %s of tensor '%.64s' is negative (%g)",
                          f->label, what, name, d);
    if (!(d <= max))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %s of tensor '%.64s' is too large (%g)",
                          f->label, what, name, d);
    if (d != floor(d))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %s of tensor '%.64s' is not an integer (%g)",
                          f->label, what, name, d);
    *v = (uint64_t)d;
    return LETHE_OK;
}

static lethe_status parse_metadata(st_file *f, const cJSON *obj)
{
    if (!cJSON_IsObject(obj))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: __metadata__ is not an object", f->label);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, obj) {
        if (!cJSON_IsString(kv))
            return lethe_fail(LETHE_ERR_FORMAT, "%s: metadata '%.64s' is not a string",
                              f->label, kv->string);
        if (strlen(kv->string) >= sizeof f->md.kv[0].key)
            return lethe_fail(LETHE_ERR_FORMAT,
                              "%s: metadata key '%.32s...' is longer than %zu bytes",
                              f->label, kv->string, sizeof f->md.kv[0].key - 1);
        if (strlen(kv->valuestring) >= sizeof f->md.kv[0].value)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: metadata '%.64s' is longer than %zu bytes",
                              f->label, kv->string, sizeof f->md.kv[0].value - 1);
        if (!lethe_meta_get(&f->md, kv->string) && f->md.n == LETHE_MAX_META)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: more than %d metadata entries",
                              f->label, LETHE_MAX_META);
        /* Checked above, with the file named. */
        lethe_status st = lethe_meta_set(&f->md, kv->string, kv->valuestring);
        if (st != LETHE_OK) return st;
    }
    return LETHE_OK;
}

/* Fill e from one header entry; data_size bounds the offsets. */
static lethe_status parse_entry(const st_file *f, const cJSON *x, st_entry *e)
{
    const char *name = x->string;
    e->name = name;
    if (!cJSON_IsObject(x))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: entry of tensor '%.64s' is not an object",
                          f->label, name);

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(x, "dtype");
    if (!cJSON_IsString(dt))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%.64s' has %s dtype", f->label,
                          name, dt ? "a non-string" : "no");
    int d = 0;
    while (d < NDTYPES && strcmp(dt->valuestring, dtypes[d].name) != 0) d++;
    if (d == NDTYPES)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: tensor '%.64s' has unsupported dtype '%.16s' "
                          "(supported: F32, F64, F16, BF16, I64)",
                          f->label, name, dt->valuestring);
    e->dtype = (st_dtype)d;

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(x, "shape");
    if (!cJSON_IsArray(sh))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%.64s' has %s shape", f->label,
                          name, sh ? "a non-array" : "no");
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%.64s' has %d dimensions (at most %d)",
                          f->label, name, nd, ST_MAX_DIMS);
    e->ndim = nd;
    size_t numel = 1;
    int overflow = 0;
    const cJSON *dim;
    int k = 0;
    cJSON_ArrayForEach(dim, sh) {
        char what[32];
        snprintf(what, sizeof what, "dimension %d", k);
        uint64_t v;
        lethe_status s = json_count(f, dim, 2147483647.0, &v, what, name);
        if (s != LETHE_OK) return s;
        e->shape[k++] = (int64_t)v;
        overflow |= __builtin_mul_overflow(numel, (size_t)v, &numel);
    }
    size_t bytes;
    if (overflow || __builtin_mul_overflow(numel, st_dtype_size(e->dtype), &bytes))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: shape of tensor '%.64s' overflows a size",
                          f->label, name);
    e->numel = numel;

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(x, "data_offsets");
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%.64s' has %s data_offsets "
                          "(want [begin, end])", f->label, name, off ? "malformed" : "no");
    uint64_t b, en;
    lethe_status s = json_count(f, cJSON_GetArrayItem(off, 0), ST_MAX_EXACT, &b,
                                "data_offsets begin", name);
    if (s == LETHE_OK)
        s = json_count(f, cJSON_GetArrayItem(off, 1), ST_MAX_EXACT, &en,
                       "data_offsets end", name);
    if (s != LETHE_OK) return s;
    if (en < b)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%.64s' ends before it begins "
                          "(data_offsets [%llu, %llu])", f->label, name,
                          (unsigned long long)b, (unsigned long long)en);
    if (en > f->data_size)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%.64s' ends at byte %llu, past the "
                          "%zu-byte data block (truncated file?)", f->label, name,
                          (unsigned long long)en, f->data_size);
    if (en - b != bytes)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%.64s' holds %llu bytes, but its "
                          "shape and dtype %s need %zu", f->label, name,
                          (unsigned long long)(en - b), st_dtype_name(e->dtype), bytes);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    return LETHE_OK;
}

/* Names unique, byte ranges disjoint (empty tensors take no bytes). */
static lethe_status check_layout(st_file *f)
{
    if (f->n == 0) return LETHE_OK;
    const st_entry **order = malloc((size_t)f->n * sizeof *order);
    if (!order) return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", f->label);
    for (int i = 0; i < f->n; i++) order[i] = &f->t[i];
    qsort(order, (size_t)f->n, sizeof *order, cmp_entry_begin);
    const st_entry *prev = NULL;
    lethe_status s = LETHE_OK;
    for (int i = 0; i < f->n && s == LETHE_OK; i++) {
        if (order[i]->begin == order[i]->end) continue;
        if (prev && order[i]->begin < prev->end)
            s = lethe_fail(LETHE_ERR_FORMAT, "%s: tensors '%.64s' [%zu, %zu) and '%.64s' "
                           "[%zu, %zu) overlap", f->label, prev->name, prev->begin,
                           prev->end, order[i]->name, order[i]->begin, order[i]->end);
        prev = order[i];
    }
    free(order);
    return s;
}

/* Parse the header of an image: buf holds `have` bytes, the first 8 + N of
 * the file (plus the data block when have == file_size). Takes buf. */
static lethe_status parse_image(st_file *f, uint8_t *buf, size_t have, uint64_t file_size)
{
    f->buf = buf;
    uint64_t hlen = load_le(buf, 8);
    size_t hdr_end = 8 + (size_t)hlen;      /* checked by the callers */
    f->data_size = (size_t)(file_size - hdr_end);
    f->data = have == file_size ? buf + hdr_end : NULL;

    const char *json = (const char *)buf + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, 0);
    f->json = root;
    if (!root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        return lethe_fail(LETHE_ERR_FORMAT, "%s: header is not valid JSON (near byte %zu "
                          "of %llu)", f->label, at, (unsigned long long)hlen);
    }
    for (const char *p = end; p < json + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return lethe_fail(LETHE_ERR_FORMAT, "%s: header has trailing bytes after the "
                              "JSON (at byte %zu)", f->label, (size_t)(p - json));
    if (!cJSON_IsObject(root))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: header is not a JSON object", f->label);

    int count = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, root) {
        if (strcmp(x->string, "__metadata__") == 0) continue;
        if (++count > ST_MAX_TENSORS)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: more than %d tensors", f->label,
                              ST_MAX_TENSORS);
    }
    f->t = calloc((size_t)count + 1, sizeof *f->t);
    f->by_name = calloc((size_t)count + 1, sizeof *f->by_name);
    if (!f->t || !f->by_name) return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", f->label);

    int seen_meta = 0;
    cJSON_ArrayForEach(x, root) {
        lethe_status s;
        if (strcmp(x->string, "__metadata__") == 0) {
            if (seen_meta++)
                return lethe_fail(LETHE_ERR_FORMAT, "%s: two __metadata__ entries", f->label);
            s = parse_metadata(f, x);
        } else {
            s = parse_entry(f, x, &f->t[f->n]);
            f->by_name[f->n] = &f->t[f->n];
            f->n++;
        }
        if (s != LETHE_OK) return s;
    }
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_entry_name);
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%.64s' appears twice", f->label,
                              f->by_name[i]->name);
    return check_layout(f);
}

/* Check the 8-byte length against the file size; sets *hlen. */
static lethe_status check_hlen(const st_file *f, const uint8_t *first8, uint64_t file_size,
                               uint64_t *hlen)
{
    *hlen = load_le(first8, 8);
    if (*hlen == 0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: header length is 0", f->label);
    if (*hlen > ST_MAX_HEADER)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: header length %llu exceeds the %u MB limit",
                          f->label, (unsigned long long)*hlen, ST_MAX_HEADER >> 20);
    if (*hlen > file_size - 8)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: header length %llu runs past the end of the "
                          "%llu-byte file", f->label, (unsigned long long)*hlen,
                          (unsigned long long)file_size);
    return LETHE_OK;
}

static lethe_status too_short(const st_file *f, uint64_t size)
{
    return lethe_fail(LETHE_ERR_FORMAT, "%s: file is %llu bytes, too short for the 8-byte "
                      "header length", f->label, (unsigned long long)size);
}

lethe_status st_parse(st_file *f, const uint8_t *bytes, size_t size, const char *label)
{
    memset(f, 0, sizeof *f);
    snprintf(f->label, sizeof f->label, "%s", label ? label : "(memory)");
    if (size < 8) return too_short(f, size);
    uint64_t hlen;
    lethe_status s = check_hlen(f, bytes, size, &hlen);
    if (s != LETHE_OK) return s;
    uint8_t *buf = malloc(size);
    if (!buf) return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory (%zu bytes)", f->label, size);
    memcpy(buf, bytes, size);
    s = parse_image(f, buf, size, size);
    if (s != LETHE_OK) st_free(f);
    return s;
}

lethe_status st_read(st_file *f, const char *path, int with_data)
{
    memset(f, 0, sizeof *f);
    if (!path) return lethe_fail(LETHE_ERR_ARG, "checkpoint path is NULL");
    snprintf(f->label, sizeof f->label, "%s", path);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return lethe_fail(errno == ENOENT ? LETHE_ERR_NOTFOUND : LETHE_ERR_IO,
                          "%s: cannot open: %s", path, strerror(errno));
    lethe_status s = LETHE_OK;
    uint8_t *buf = NULL;
    struct stat st;
    uint8_t first8[8];
    uint64_t size, hlen;
    if (fstat(fileno(fp), &st) != 0) {
        s = lethe_fail(LETHE_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        s = lethe_fail(LETHE_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    size = (uint64_t)st.st_size;
    if (size < 8) {
        s = too_short(f, size);
        goto done;
    }
    if (fread(first8, 1, 8, fp) != 8) {
        s = lethe_fail(LETHE_ERR_IO, "%s: cannot read the header length", path);
        goto done;
    }
    if ((s = check_hlen(f, first8, size, &hlen)) != LETHE_OK) goto done;
    if (with_data && size > (uint64_t)SIZE_MAX / 2) {
        s = lethe_fail(LETHE_ERR_NOMEM, "%s: file too large (%llu bytes)", path,
                       (unsigned long long)size);
        goto done;
    }
    size_t want = with_data ? (size_t)size : 8 + (size_t)hlen;
    buf = malloc(want);
    if (!buf) {
        s = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, want);
        goto done;
    }
    memcpy(buf, first8, 8);
    if (fread(buf + 8, 1, want - 8, fp) != want - 8) {
        s = lethe_fail(LETHE_ERR_IO, "%s: short read (file changed while reading?)", path);
        goto done;
    }
    s = parse_image(f, buf, want, size);
    buf = NULL;                     /* owned by f now */
done:
    free(buf);
    fclose(fp);
    if (s != LETHE_OK) st_free(f);
    return s;
}

/* -------------------------------------------------------------- writer */

static lethe_status check_out(const char *path, const st_out *t, int n, size_t *bytes)
{
    for (int i = 0; i < n; i++) {
        const st_out *o = &t[i];
        if (!o->name || !o->name[0] || strcmp(o->name, "__metadata__") == 0)
            return lethe_fail(LETHE_ERR_ARG, "%s: tensor %d has an empty or reserved name",
                              path, i);
        if (o->dtype != ST_F32 && o->dtype != ST_I64 && o->dtype != ST_U8)
            return lethe_fail(LETHE_ERR_ARG, "%s: tensor '%s': can only write F32, I64 or U8",
                              path, o->name);
        if (o->ndim < 0 || o->ndim > ST_MAX_DIMS)
            return lethe_fail(LETHE_ERR_ARG, "%s: tensor '%s' has %d dimensions", path,
                              o->name, o->ndim);
        size_t numel = 1;
        for (int k = 0; k < o->ndim; k++)
            if (o->shape[k] < 0 || o->shape[k] > 2147483647 ||
                __builtin_mul_overflow(numel, (size_t)o->shape[k], &numel))
                return lethe_fail(LETHE_ERR_ARG, "%s: tensor '%s' has a bad shape", path,
                                  o->name);
        if (numel && !(o->dtype == ST_U8 ? (const void *)o->u8 : (const void *)o->data))
            return lethe_fail(LETHE_ERR_ARG, "%s: tensor '%s' has no data", path, o->name);
        for (int j = 0; j < i; j++)
            if (strcmp(t[j].name, o->name) == 0)
                return lethe_fail(LETHE_ERR_ARG, "%s: tensor '%s' given twice", path, o->name);
        bytes[i] = numel * st_dtype_size(o->dtype);
    }
    return LETHE_OK;
}

/* The JSON header, unpadded (free with cJSON_free). */
static char *make_header(const lethe_metadata *md, const st_out *t, int n, const size_t *bytes)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    int ok = 1;
    if (md && md->n > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int i = 0; ok && i < md->n && i < LETHE_MAX_META; i++) {
            /* the fixed arrays may lack a NUL if filled by hand */
            char key[sizeof md->kv[0].key + 1], val[sizeof md->kv[0].value + 1];
            snprintf(key, sizeof key, "%.*s", (int)sizeof md->kv[i].key, md->kv[i].key);
            snprintf(val, sizeof val, "%.*s", (int)sizeof md->kv[i].value, md->kv[i].value);
            ok = cJSON_AddStringToObject(m, key, val) != NULL;
        }
    }
    size_t off = 0;
    for (int i = 0; ok && i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        cJSON *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        ok = e && shape && offs;
        if (ok) {
            cJSON_AddItemToObject(e, "dtype", cJSON_CreateString(st_dtype_name(t[i].dtype)));
            cJSON_AddItemToObject(e, "shape", shape);
            cJSON_AddItemToObject(e, "data_offsets", offs);
        } else {
            cJSON_Delete(shape);
            cJSON_Delete(offs);
            break;
        }
        for (int k = 0; k < t[i].ndim; k++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[k]));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += bytes[i];
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

/* Encode one tensor's numel values little-endian into out (numel·size bytes).
 * Returns -1 for a count that is not a finite integer. */
static int encode_values(uint8_t *out, const st_out *o, size_t numel)
{
    if (o->dtype == ST_U8) {
        if (numel) memcpy(out, o->u8, numel);
        return 0;
    }
    for (size_t j = 0; j < numel; j++) {
        float v = o->data[j];
        if (o->dtype == ST_F32) {
            uint32_t b;
            memcpy(&b, &v, sizeof b);
            store_le(out + j * 4, b, 4);
        } else {
            if (!(fabsf(v) < 9.2e18f)) return -1;
            store_le(out + j * 8, (uint64_t)(int64_t)llroundf(v), 8);
        }
    }
    return 0;
}

lethe_status st_write(const char *path, const lethe_metadata *md, const st_out *t, int n)
{
    if (!path || n < 0 || (n > 0 && !t))
        return lethe_fail(LETHE_ERR_ARG, "st_write: bad arguments");
    size_t *bytes = calloc((size_t)n + 1, sizeof *bytes);
    char *json = NULL;
    uint8_t *img = NULL;            /* the whole file: (8 + padded + data) bytes */
    lethe_status s = LETHE_OK;
    if (!bytes) {
        s = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((s = check_out(path, t, n, bytes)) != LETHE_OK) goto done;
    json = make_header(md, t, n, bytes);
    if (!json) {
        s = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory building the header", path);
        goto done;
    }
    size_t len = strlen(json), padded = (len + 7) & ~(size_t)7, total = 8 + padded;
    for (int i = 0; i < n; i++) total += bytes[i];
    img = malloc(total);
    if (!img) {
        s = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, total);
        goto done;
    }
    store_le(img, padded, 8);
    memcpy(img + 8, json, len);
    memset(img + 8 + len, ' ', padded - len);
    size_t off = 8 + padded;
    for (int i = 0; i < n; i++) {
        if (encode_values(img + off, &t[i], bytes[i] / st_dtype_size(t[i].dtype)) != 0) {
            s = lethe_fail(LETHE_ERR_ARG, "%s: tensor '%s': value is not a finite integer "
                           "count", path, t[i].name);
            goto done;
        }
        off += bytes[i];
    }
    /* temp file, fsync, rename: path is never seen half written */
    s = lethe_write_file_atomic(path, img, total);
done:
    free(img);
    cJSON_free(json);
    free(bytes);
    return s;
}
