/*
 * Run states (format in runstate.h): the writer collects views of the
 * loop's arrays and exact-text scalars, then writes one safetensors file
 * through st_write (temporary file, fsync, rename); the reader checks every
 * entry against what the loop expects before a value is copied.
 */
#include "io/runstate.h"
#include "core/fail.h"

#include "core/loop.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lethe_run_control_default(lethe_run_control *r)
{
    memset(r, 0, sizeof *r);
    r->saved_step = -1;
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t rs_hash_ints(const int32_t *v, size_t n)
{
    return fnv(0xcbf29ce484222325ULL, v, n * sizeof *v);
}

uint64_t rs_hash_model(lethe_model *m)
{
    size_t n, nb;
    const float *theta = lethe_model_theta(m, &n), *buf = lethe_model_buffers(m, &nb);
    return fnv(fnv(0xcbf29ce484222325ULL, theta, n * sizeof(float)), buf, nb * sizeof(float));
}

/* ------------------------------------------------------------- writer */

static void fail_once(rs_writer *w, lethe_status st)
{
    if (w->err == LETHE_OK) w->err = st;
}

void rs_set_text(rs_writer *w, const char *key, const char *value)
{
    /* Never truncated or dropped (lethe_meta_set refuses): the reader would
     * see another value. */
    lethe_status st = lethe_meta_set(&w->md, key, value);
    if (st != LETHE_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", lethe_last_error());
        fail_once(w, lethe_fail(st, "%s: run-state entry '%s' does not fit: %s", w->path, key,
                                why));
    }
}

void rs_set_long(rs_writer *w, const char *key, long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", v);
    rs_set_text(w, key, buf);
}

void rs_set_double(rs_writer *w, const char *key, double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%a", v);
    rs_set_text(w, key, buf);
}

void rs_set_words(rs_writer *w, const char *key, const uint64_t *v, int k)
{
    char buf[256];
    size_t len = 0;
    for (int i = 0; i < k && len < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%016llx", i ? " " : "",
                                (unsigned long long)v[i]);
    rs_set_text(w, key, buf);
}

void rs_writer_init(rs_writer *w, const char *path, const char *kind, long step, long total,
                    const char *config)
{
    memset(w, 0, sizeof *w);
    w->path = path;
    rs_set_text(w, "format", RS_FORMAT);
    rs_set_text(w, "version", RS_VERSION);
    rs_set_text(w, "lethe", LETHE_VERSION);
    rs_set_text(w, "kind", kind);
    rs_set_long(w, "step", step);
    rs_set_long(w, "total", total);
    rs_set_text(w, "config", config);
    rs_set_long(w, "threads", core_threads());
}

static st_out *add(rs_writer *w, const char *name)
{
    if (w->n == RS_MAX_TENSORS) {
        fail_once(w, lethe_fail(LETHE_ERR_ARG, "%s: too many run-state tensors", w->path));
        return NULL;
    }
    st_out *o = &w->t[w->n++];
    memset(o, 0, sizeof *o);
    o->name = name;
    o->dtype = ST_F32;
    return o;
}

void rs_put_floats(rs_writer *w, const char *name, const float *data, size_t n, size_t rows)
{
    st_out *o = add(w, name);
    if (!o) return;
    if (rows > 0) {
        o->ndim = 2;
        o->shape[0] = (int64_t)rows;
        o->shape[1] = (int64_t)(n / rows);
    } else {
        o->ndim = 1;
        o->shape[0] = (int64_t)n;
    }
    o->data = data;
}

/* An owned float copy of n values for tensor `name` (NULL on failure). */
static float *owned(rs_writer *w, const char *name, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof(float));       /* (n) */
    if (!f) {
        fail_once(w, lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for '%s'", w->path, name));
        return NULL;
    }
    free(w->owned[w->n]);   /* left by a failed put, if any */
    w->owned[w->n] = f;     /* the slot of the tensor about to be added */
    return f;
}

void rs_put_ints(rs_writer *w, const char *name, const int32_t *data, size_t n)
{
    if (w->n == RS_MAX_TENSORS) {
        add(w, name);
        return;
    }
    float *f = owned(w, name, n);
    if (!f) return;
    for (size_t i = 0; i < n; i++) {
        if (data[i] < 0 || data[i] >= RS_MAX_EXACT_INT) {
            fail_once(w, lethe_fail(LETHE_ERR_ARG, "%s: index %ld of '%s' is outside "
                                    "[0, 2^24): run states hold data sets of at most "
                                    "16777216 samples", w->path, (long)data[i], name));
            return;
        }
        f[i] = (float)data[i];
    }
    rs_put_floats(w, name, f, n, 0);
}

void rs_put_bytes(rs_writer *w, const char *name, const uint8_t *data, size_t n)
{
    if (w->n == RS_MAX_TENSORS) {
        add(w, name);
        return;
    }
    float *f = owned(w, name, n);
    if (!f) return;
    for (size_t i = 0; i < n; i++) f[i] = (float)data[i];
    rs_put_floats(w, name, f, n, 0);
}

void rs_put_model(rs_writer *w, lethe_model *m)
{
    size_t n, nb;
    const float *theta = lethe_model_theta(m, &n);
    const float *buf = lethe_model_buffers(m, &nb);
    rs_set_text(w, "arch", lethe_model_arch(m));
    rs_put_floats(w, "theta", theta, n, 0);
    rs_put_floats(w, "buffers", buf, nb, 0);
}

void rs_put_optim(rs_writer *w, const lethe_optim *o)
{
    rs_set_long(w, "optim.t", o->t);
    if (o->m) rs_put_floats(w, "optim.m", o->m, o->n, 0);
    if (o->v) rs_put_floats(w, "optim.v", o->v, o->n, 0);
}

/* The tensor of a stream's order: names must outlive rs_write. */
static const char *order_name(const char *prefix)
{
    return strcmp(prefix, "forget") == 0   ? "forget.order"
           : strcmp(prefix, "retain") == 0 ? "retain.order"
                                           : "data.order";
}

void rs_put_stream(rs_writer *w, const char *prefix, const lethe_stream *s)
{
    char key[64];
    uint64_t v[7] = {(uint64_t)s->pos, (uint64_t)s->epoch, s->rng.s[0], s->rng.s[1],
                     s->rng.s[2], s->rng.s[3], (uint64_t)s->n};
    snprintf(key, sizeof key, "%s.stream", prefix);
    rs_set_words(w, key, v, 7);
    rs_put_ints(w, order_name(prefix), s->order, s->n);
}

lethe_status rs_write(rs_writer *w)
{
    if (w->err != LETHE_OK) return w->err;
    return st_write(w->path, &w->md, w->t, w->n);
}

void rs_writer_free(rs_writer *w)
{
    for (int i = 0; i < RS_MAX_TENSORS; i++) free(w->owned[i]);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------- reader */

static lethe_status bad(const rs_reader *r, const char *what, const char *name)
{
    return lethe_fail(LETHE_ERR_FORMAT, "%s: run state: %s '%s'", r->label, what, name);
}

/* The first "key=value" token where a and b differ, for the message. */
static lethe_status config_mismatch(const char *label, const char *was, const char *now)
{
    const char *a = was, *b = now;
    /* Under mpirun a config ends in "ranks=N" (core/dist.h): a state is
     * for the rank count that wrote it. */
    const char *ra = strstr(was, " ranks="), *rb = strstr(now, " ranks=");
    long na = ra ? strtol(ra + 7, NULL, 10) : 1, nb = rb ? strtol(rb + 7, NULL, 10) : 1;
    if (na != nb && na > 1)
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: the state was written by %ld processes "
                          "(mpirun), this run has %ld (resume with mpirun -np %ld)", label, na,
                          nb, na);
    if (na != nb)
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: the state was written by one process, this "
                          "run has %ld (resume it without mpirun)", label, nb);
    for (;;) {
        size_t la = strcspn(a, " "), lb = strcspn(b, " ");
        if (la != lb || strncmp(a, b, la) != 0)
            return lethe_fail(LETHE_ERR_MISMATCH, "%s: the state is of another run: it has "
                              "%.*s, this run %.*s (resume with the same options)", label,
                              (int)(la < 120 ? la : 120), a, (int)(lb < 120 ? lb : 120), b);
        if (!a[la] || !b[lb]) break;
        a += la + 1;
        b += lb + 1;
    }
    /* One has a setting more (written only when on, as "augment=1"). */
    size_t la = strcspn(a, " "), lb = strcspn(b, " ");
    if (a[la] && !b[lb]) {
        const char *t = a + la + 1;
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: the state is of another run: it has %.*s, "
                          "this run does not (resume with the same options)", label,
                          (int)strcspn(t, " "), t);
    }
    if (b[lb] && !a[la]) {
        const char *t = b + lb + 1;
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: the state is of another run: this run has "
                          "%.*s, it does not (resume with the same options)", label,
                          (int)strcspn(t, " "), t);
    }
    return lethe_fail(LETHE_ERR_MISMATCH, "%s: the state is of another run", label);
}

lethe_status rs_open(rs_reader *r, const char *path, const char *kind, const char *config)
{
    memset(r, 0, sizeof *r);
    lethe_status st = st_read(&r->f, path, 1);
    if (st != LETHE_OK) return st;
    r->label = r->f.label;
    const char *fmt = lethe_meta_get(&r->f.md, "format");
    const char *ver = lethe_meta_get(&r->f.md, "version");
    const char *k = lethe_meta_get(&r->f.md, "kind");
    const char *cfg = lethe_meta_get(&r->f.md, "config");
    if (!fmt || strcmp(fmt, RS_FORMAT) != 0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: not a Lethe run state (format '%s')", r->label,
                          fmt ? fmt : "none");
    if (!ver || strcmp(ver, RS_VERSION) != 0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: run-state version '%s', this Lethe reads %s",
                          r->label, ver ? ver : "none", RS_VERSION);
    if (!k || strcmp(k, kind) != 0)
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: a '%s' run state, not a '%s' one", r->label,
                          k ? k : "none", kind);
    if (!cfg) return bad(r, "no entry", "config");
    if (strcmp(cfg, config) != 0) return config_mismatch(r->label, cfg, config);
    return LETHE_OK;
}

void rs_close(rs_reader *r)
{
    st_free(&r->f);
    memset(r, 0, sizeof *r);
}

lethe_status rs_get_long(const rs_reader *r, const char *key, long lo, long hi, long *out)
{
    const char *s = lethe_meta_get(&r->f.md, key);
    if (!s) return bad(r, "no entry", key);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: run state: '%s' is '%s', not a whole number "
                          "in [%ld, %ld]", r->label, key, s, lo, hi);
    *out = v;
    return LETHE_OK;
}

lethe_status rs_get_double(const rs_reader *r, const char *key, double *out)
{
    const char *s = lethe_meta_get(&r->f.md, key);
    if (!s) return bad(r, "no entry", key);
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end) return bad(r, "not a number:", key);
    *out = v;
    return LETHE_OK;
}

lethe_status rs_get_words(const rs_reader *r, const char *key, uint64_t *v, int k)
{
    const char *s = lethe_meta_get(&r->f.md, key);
    if (!s) return bad(r, "no entry", key);
    for (int i = 0; i < k; i++) {
        char *end;
        errno = 0;
        if (*s == ' ' || *s == '-' || *s == '+') return bad(r, "malformed words in", key);
        unsigned long long x = strtoull(s, &end, 16);
        if (end == s || errno || end - s > 16 || (i + 1 < k ? *end != ' ' : *end != '\0'))
            return bad(r, "malformed words in", key);
        v[i] = (uint64_t)x;
        s = end + (i + 1 < k);
    }
    return LETHE_OK;
}

int rs_has(const rs_reader *r, const char *name)
{
    return st_find(&r->f, name) != NULL;
}

/* The entry `name`: F32 with exactly n values (and rows rows if rows > 0). */
static lethe_status entry(const rs_reader *r, const char *name, size_t n, size_t rows,
                          const st_entry **out)
{
    const st_entry *e = st_find(&r->f, name);
    if (!e) return bad(r, "no tensor", name);
    int shape_ok = rows > 0 ? e->ndim == 2 && (size_t)e->shape[0] == rows &&
                                  (size_t)e->shape[0] * (size_t)e->shape[1] == n
                            : e->ndim == 1 && (size_t)e->shape[0] == n;
    if (e->dtype != ST_F32 || !shape_ok || e->numel != n)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: run state: tensor '%s' is %s with %zu values, "
                          "expected F32 with %zu", r->label, name, st_dtype_name(e->dtype),
                          e->numel, n);
    *out = e;
    return LETHE_OK;
}

lethe_status rs_get_floats(const rs_reader *r, const char *name, float *out, size_t n,
                           size_t rows)
{
    const st_entry *e;
    lethe_status st = entry(r, name, n, rows, &e);
    if (st == LETHE_OK) st_entry_to_float(&r->f, e, out);
    return st;
}

/* Check every value of entry e is a whole number in [lo, hi] before
 * anything is copied (tmp: n floats). */
static lethe_status whole_numbers(const rs_reader *r, const char *name, const st_entry *e,
                                  float *tmp, double lo, double hi)
{
    st_entry_to_float(&r->f, e, tmp);
    for (size_t i = 0; i < e->numel; i++)
        if (!(tmp[i] >= lo && tmp[i] <= hi) || tmp[i] != floorf(tmp[i]))
            return lethe_fail(LETHE_ERR_FORMAT, "%s: run state: value %zu of '%s' is %g, not "
                              "a whole number in [%g, %g]", r->label, i, name, (double)tmp[i],
                              lo, hi);
    return LETHE_OK;
}

lethe_status rs_get_ints(const rs_reader *r, const char *name, int32_t *out, size_t n,
                         int32_t lo, int32_t hi)
{
    const st_entry *e;
    lethe_status st = entry(r, name, n, 0, &e);
    if (st != LETHE_OK) return st;
    float *tmp = malloc((n ? n : 1) * sizeof(float));      /* (n) */
    if (!tmp) return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", r->label);
    st = whole_numbers(r, name, e, tmp, lo, hi);
    if (st == LETHE_OK)
        for (size_t i = 0; i < n; i++) out[i] = (int32_t)tmp[i];
    free(tmp);
    return st;
}

lethe_status rs_get_bytes(const rs_reader *r, const char *name, uint8_t *out, size_t n,
                          uint8_t hi)
{
    const st_entry *e;
    lethe_status st = entry(r, name, n, 0, &e);
    if (st != LETHE_OK) return st;
    float *tmp = malloc((n ? n : 1) * sizeof(float));      /* (n) */
    if (!tmp) return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", r->label);
    st = whole_numbers(r, name, e, tmp, 0, hi);
    if (st == LETHE_OK)
        for (size_t i = 0; i < n; i++) out[i] = (uint8_t)tmp[i];
    free(tmp);
    return st;
}

lethe_status rs_get_model(const rs_reader *r, lethe_model *m)
{
    const char *arch = lethe_meta_get(&r->f.md, "arch");
    if (!arch || strcmp(arch, lethe_model_arch(m)) != 0)
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: run state of a %s model, this run has a %s",
                          r->label, arch ? arch : "(no arch)", lethe_model_arch(m));
    size_t n, nb;
    float *theta = lethe_model_theta(m, &n);
    float *buf = lethe_model_buffers(m, &nb);
    /* Both checked before either is written: a bad file leaves m as it was. */
    const st_entry *et, *eb;
    lethe_status st;
    if ((st = entry(r, "theta", n, 0, &et)) != LETHE_OK ||
        (st = entry(r, "buffers", nb, 0, &eb)) != LETHE_OK)
        return st;
    st_entry_to_float(&r->f, et, theta);
    st_entry_to_float(&r->f, eb, buf);
    return LETHE_OK;
}

lethe_status rs_get_optim(const rs_reader *r, lethe_optim *o)
{
    long t;
    lethe_status st = rs_get_long(r, "optim.t", 0, 1L << 62, &t);
    if (st != LETHE_OK) return st;
    if (o->m && (st = rs_get_floats(r, "optim.m", o->m, o->n, 0)) != LETHE_OK) return st;
    if (o->v && (st = rs_get_floats(r, "optim.v", o->v, o->n, 0)) != LETHE_OK) return st;
    o->t = t;
    return LETHE_OK;
}

lethe_status rs_get_stream(const rs_reader *r, const char *prefix, lethe_stream *s)
{
    char key[64];
    snprintf(key, sizeof key, "%s.stream", prefix);
    uint64_t v[7];
    lethe_status st = rs_get_words(r, key, v, 7);
    if (st != LETHE_OK) return st;
    if (v[6] != (uint64_t)s->n || v[0] > (uint64_t)s->n || v[1] > (uint64_t)1 << 62)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: run state: stream '%s' has %llu samples at "
                          "position %llu, this run %zu", r->label, prefix,
                          (unsigned long long)v[6], (unsigned long long)v[0], s->n);
    const char *name = order_name(prefix);
    int32_t *order = malloc((s->n ? s->n : 1) * sizeof(int32_t));  /* (n) */
    uint8_t *seen = calloc(s->n ? s->n : 1, 1);                     /* (n) */
    if (!order || !seen) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", r->label);
        goto done;
    }
    if ((st = rs_get_ints(r, name, order, s->n, 0, (int32_t)(s->n - 1))) != LETHE_OK) goto done;
    for (size_t i = 0; i < s->n; i++) {
        if (seen[order[i]]) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: run state: '%s' is not a permutation "
                            "(%d twice)", r->label, name, (int)order[i]);
            goto done;
        }
        seen[order[i]] = 1;
    }
    memcpy(s->order, order, s->n * sizeof(int32_t));
    s->pos = (size_t)v[0];
    s->epoch = (long)v[1];
    for (int k = 0; k < 4; k++) s->rng.s[k] = v[2 + k];
done:
    free(order);
    free(seen);
    return st;
}

lethe_status lethe_runstate_read_meta(const char *path, lethe_metadata *md)
{
    if (!path || !md) return lethe_fail(LETHE_ERR_ARG, "run state: NULL path or metadata");
    st_file f;
    lethe_status st = st_read(&f, path, 0);
    if (st == LETHE_OK) {
        const char *fmt = lethe_meta_get(&f.md, "format");
        if (!fmt || strcmp(fmt, RS_FORMAT) != 0)
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: not a Lethe run state (format '%s')", f.label,
                            fmt ? fmt : "none");
        else memcpy(md, &f.md, sizeof *md);
    }
    st_free(&f);
    return st;
}
