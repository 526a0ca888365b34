/*
 * The word tokenizer of the text data sets (issue 17; rules in text.h and
 * docs/PROTOCOL.md, "Text data"): lowercased ASCII words, each non-ASCII
 * code point a token of its own; a vocabulary of the training split's
 * frequent tokens after three reserved ids; encoding to T ids; and the
 * vocabulary's serialised form.
 *
 * The serialised form (text_vocab_write / text_vocab_read), every line
 * ending in '\n', numbers in decimal without sign or leading zero:
 *
 *     lethe-vocab 1
 *     tokenizer words-lower
 *     min_count M                 1..TEXT_MAX_VOCAB
 *     max_size S                  TEXT_NRESERVED..TEXT_MAX_VOCAB
 *     max_len T                   1..TEXT_MAX_LEN (2.. when cls is 1)
 *     cls C                       0 or 1
 *     classes K                   2..TEXT_MAX_CLASSES
 *     NAME                        K lines: the class names, strictly increasing
 *                                 in byte order, 1..TEXT_MAX_LABEL bytes of
 *                                 valid UTF-8 without control characters
 *     tokens N                    0..S − TEXT_NRESERVED
 *     TOKEN                       N lines: ids 3, 4, …; each 1..TEXT_MAX_TOKEN
 *                                 bytes of [a-z0-9], or one non-ASCII code
 *                                 point; no token twice
 *
 * Nothing may follow the last token's line. The reader refuses anything
 * else, so writing what it read gives back the same bytes (the fuzz
 * harness fuzz_text_vocab checks it).
 */
#include "data/text.h"

#include "core/fail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reserved[TEXT_NRESERVED] = {"<pad>", "<unk>", "<cls>"};

void text_vocab_config_default(text_vocab_config *c)
{
    c->min_count = 2;
    c->max_size = 20000;
    c->max_len = 64;
    c->cls = 1;
}

lethe_status text_vocab_config_check(const text_vocab_config *c)
{
    if (c->min_count < 1 || c->min_count > TEXT_MAX_VOCAB)
        return lethe_fail(LETHE_ERR_ARG, "vocabulary minimum count %d: outside 1..%d",
                          c->min_count, TEXT_MAX_VOCAB);
    if (c->max_size < TEXT_NRESERVED || c->max_size > TEXT_MAX_VOCAB)
        return lethe_fail(LETHE_ERR_ARG, "vocabulary size %d: outside %d..%d", c->max_size,
                          TEXT_NRESERVED, TEXT_MAX_VOCAB);
    if (c->cls != 0 && c->cls != 1)
        return lethe_fail(LETHE_ERR_ARG, "class token %d: 0 or 1", c->cls);
    if (c->max_len < 1 + c->cls || c->max_len > TEXT_MAX_LEN)
        return lethe_fail(LETHE_ERR_ARG, "tokens per text %d: outside %d..%d", c->max_len,
                          1 + c->cls, TEXT_MAX_LEN);
    return LETHE_OK;
}

/* ------------------------------------------------------------ tokens */

static int is_alnum(uint8_t b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z');
}

/* The next token of s[*pos..n) into buf (TEXT_MAX_TOKEN bytes at least):
 * returns its full length in bytes (0: none left). A word longer than
 * TEXT_MAX_TOKEN has only its first TEXT_MAX_TOKEN bytes in buf. */
static size_t next_token(const uint8_t *s, size_t n, size_t *pos, char *buf)
{
    size_t i = *pos;
    while (i < n && s[i] < 0x80 && !is_alnum(s[i])) i++;
    if (i == n) {
        *pos = i;
        return 0;
    }
    if (s[i] >= 0x80) {             /* one code point, or U+FFFD for a bad byte */
        int k = text_utf8_len(s + i, n - i);
        if (k == 0) memcpy(buf, "\xef\xbf\xbd", 3), k = 3, i++;
        else memcpy(buf, s + i, (size_t)k), i += (size_t)k;
        *pos = i;
        return (size_t)k;
    }
    size_t len = 0;
    for (; i < n && s[i] < 0x80 && is_alnum(s[i]); i++, len++)
        if (len < TEXT_MAX_TOKEN)
            buf[len] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
    *pos = i;
    return len;
}

/* FNV-1a. */
static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* s[0..n) equals the NUL-terminated t. */
static int same(const char *t, const char *s, size_t n)
{
    return strncmp(t, s, n) == 0 && t[n] == '\0';
}

int32_t text_vocab_id(const text_vocab *v, const char *s, size_t n)
{
    if (!v->cap || n == 0 || n > TEXT_MAX_TOKEN) return TEXT_UNK;
    for (uint32_t h = hash_bytes(s, n) & (v->cap - 1);; h = (h + 1) & (v->cap - 1)) {
        int32_t id = v->slot[h];
        if (id < 0) return TEXT_UNK;
        if (same(v->tok[id], s, n)) return id;
    }
}

int text_encode(const text_vocab *v, const char *s, size_t n, int32_t *ids, int *truncated)
{
    int T = v->cfg.max_len, k = 0, words = 0;
    char buf[TEXT_MAX_TOKEN];
    size_t pos = 0, len;
    *truncated = 0;
    if (v->cfg.cls) ids[k++] = TEXT_CLS;
    while ((len = next_token((const uint8_t *)s, n, &pos, buf)) != 0) {
        if (k == T) {
            *truncated = 1;
            break;
        }
        ids[k++] = len > TEXT_MAX_TOKEN ? TEXT_UNK : text_vocab_id(v, buf, len);
        words++;
    }
    if (!words) ids[k++] = TEXT_UNK;
    int used = k;
    for (; k < T; k++) ids[k] = TEXT_PAD;
    return used;
}

/* -------------------------------------------------------- vocabulary */

void text_vocab_free(text_vocab *v)
{
    if (!v) return;
    free(v->tok);
    free(v->pool);
    free(v->slot);
    memset(v, 0, sizeof *v);
}

/* v->tok[0..v->n) set: the hash table over the non-reserved ids. Returns
 * the first id already present (a duplicate), 0 if none, −1 out of memory. */
static int vocab_index(text_vocab *v)
{
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)v->n) cap *= 2;
    v->slot = malloc((size_t)cap * sizeof *v->slot);
    if (!v->slot) return -1;
    v->cap = cap;
    memset(v->slot, 0xff, (size_t)cap * sizeof *v->slot);
    for (int id = TEXT_NRESERVED; id < v->n; id++) {
        size_t len = strlen(v->tok[id]);
        uint32_t h = hash_bytes(v->tok[id], len) & (cap - 1);
        for (; v->slot[h] >= 0; h = (h + 1) & (cap - 1))
            if (same(v->tok[v->slot[h]], v->tok[id], len)) return id;
        v->slot[h] = id;
    }
    return 0;
}

/* Counting table of the build: distinct tokens in a pool, with counts. */
typedef struct { uint32_t off, len; int64_t count; } entry;
typedef struct {
    entry *e; uint32_t n;       /* entries */
    int32_t *slot; uint32_t cap;
    char *pool; size_t used, pcap;
} counter;

static int counter_grow(counter *c)
{
    uint32_t cap = c->cap ? c->cap * 2 : 1024;
    int32_t *slot = malloc((size_t)cap * sizeof *slot);
    entry *e = realloc(c->e, (size_t)(cap / 2) * sizeof *e);
    if (!slot || !e) {
        free(slot);
        if (e) c->e = e;
        return 0;
    }
    c->e = e;
    memset(slot, 0xff, (size_t)cap * sizeof *slot);
    for (uint32_t j = 0; j < c->n; j++) {
        uint32_t h = hash_bytes(c->pool + c->e[j].off, c->e[j].len) & (cap - 1);
        while (slot[h] >= 0) h = (h + 1) & (cap - 1);
        slot[h] = (int32_t)j;
    }
    free(c->slot);
    c->slot = slot;
    c->cap = cap;
    return 1;
}

static int counter_add(counter *c, const char *s, size_t n)
{
    if (2 * (c->n + 1) > c->cap && !counter_grow(c)) return 0;
    uint32_t h = hash_bytes(s, n) & (c->cap - 1);
    for (; c->slot[h] >= 0; h = (h + 1) & (c->cap - 1)) {
        entry *e = &c->e[c->slot[h]];
        if (e->len == n && memcmp(c->pool + e->off, s, n) == 0) {
            e->count++;
            return 1;
        }
    }
    if (c->used + n + 1 > c->pcap) {
        size_t cap = c->pcap ? c->pcap * 2 : 65536;
        while (cap < c->used + n + 1) cap *= 2;
        char *p = realloc(c->pool, cap);
        if (!p) return 0;
        c->pool = p;
        c->pcap = cap;
    }
    if (c->used > UINT32_MAX - n - 1) return 0;
    memcpy(c->pool + c->used, s, n);
    c->pool[c->used + n] = '\0';
    c->e[c->n] = (entry){(uint32_t)c->used, (uint32_t)n, 1};
    c->slot[h] = (int32_t)c->n++;
    c->used += n + 1;
    return 1;
}

static const char *sort_pool;   /* qsort has no context argument */

/* Most frequent first, ties in byte order. */
static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(sort_pool + x->off, sort_pool + y->off);
}

lethe_status text_vocab_build(text_vocab *v, const text_vocab_config *cfg, const text_tsv *train)
{
    memset(v, 0, sizeof *v);
    lethe_status st = text_vocab_config_check(cfg);
    if (st != LETHE_OK) return st;
    counter c = {0};
    char buf[TEXT_MAX_TOKEN];
    for (int i = 0; i < train->n; i++) {
        const uint8_t *s = (const uint8_t *)text_tsv_text(train, i);
        size_t pos = 0, len;
        while ((len = next_token(s, train->text_len[i], &pos, buf)) != 0)
            if (len <= TEXT_MAX_TOKEN && !counter_add(&c, buf, len)) {
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory counting %u distinct tokens",
                                c.n);
                goto done;
            }
    }
    sort_pool = c.pool;
    if (c.n) qsort(c.e, c.n, sizeof *c.e, cmp_entry);
    uint32_t keep = 0;
    while (keep < c.n && keep < (uint32_t)(cfg->max_size - TEXT_NRESERVED) &&
           c.e[keep].count >= cfg->min_count)
        keep++;
    size_t bytes_n = 0;
    for (int r = 0; r < TEXT_NRESERVED; r++) bytes_n += strlen(reserved[r]) + 1;
    for (uint32_t j = 0; j < keep; j++) bytes_n += c.e[j].len + 1;
    v->n = TEXT_NRESERVED + (int)keep;
    v->tok = malloc((size_t)v->n * sizeof *v->tok);
    v->pool = malloc(bytes_n);
    if (!v->tok || !v->pool) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for a vocabulary of %d", v->n);
        goto done;
    }
    char *p = v->pool;
    for (int id = 0; id < v->n; id++) {
        const char *t = id < TEXT_NRESERVED ? reserved[id] : c.pool + c.e[id - TEXT_NRESERVED].off;
        size_t l = strlen(t) + 1;
        memcpy(p, t, l);
        v->tok[id] = p;
        p += l;
    }
    v->cfg = *cfg;
    if (vocab_index(v) < 0)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for a vocabulary of %d", v->n);
done:
    free(c.e);
    free(c.slot);
    free(c.pool);
    if (st != LETHE_OK) text_vocab_free(v);
    return st;
}

/* ----------------------------------------------------- serialised form */

typedef struct { char *p; size_t n, cap; int failed; } out_buf;

static void put(out_buf *o, const char *s, size_t n)
{
    if (o->failed) return;
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->n + n + 1) cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->failed = 1;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = '\0';
}

static void put_line(out_buf *o, const char *key, long v)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%s %ld\n", key, v);
    put(o, line, (size_t)n);
}

lethe_status text_vocab_write(const text_vocab *v, const text_classes *c, char **out,
                              size_t *len)
{
    *out = NULL;
    *len = 0;
    out_buf o = {0};
    put(&o, "lethe-vocab 1\ntokenizer words-lower\n", 36);
    put_line(&o, "min_count", v->cfg.min_count);
    put_line(&o, "max_size", v->cfg.max_size);
    put_line(&o, "max_len", v->cfg.max_len);
    put_line(&o, "cls", v->cfg.cls);
    put_line(&o, "classes", c->n);
    for (int k = 0; k < c->n; k++) {
        put(&o, c->name[k], strlen(c->name[k]));
        put(&o, "\n", 1);
    }
    put_line(&o, "tokens", v->n - TEXT_NRESERVED);
    for (int id = TEXT_NRESERVED; id < v->n; id++) {
        put(&o, v->tok[id], strlen(v->tok[id]));
        put(&o, "\n", 1);
    }
    if (o.failed || o.n > TEXT_MAX_BLOB) {
        free(o.p);
        return o.failed ? lethe_fail(LETHE_ERR_NOMEM, "out of memory writing a vocabulary")
                        : lethe_fail(LETHE_ERR_ARG, "vocabulary of %zu bytes, over the limit "
                                     "of %zu", o.n, TEXT_MAX_BLOB);
    }
    *out = o.p;
    *len = o.n;
    return LETHE_OK;
}

/* A cursor over the blob, line by line. */
typedef struct { const char *p; size_t n, pos; int line; } cursor;

/* The next line (without its '\n') in *s, *n; 0 at the end or when the
 * last line has no '\n'. */
static int next_line(cursor *c, const char **s, size_t *n)
{
    if (c->pos >= c->n) return 0;
    const char *nl = memchr(c->p + c->pos, '\n', c->n - c->pos);
    if (!nl) return 0;
    *s = c->p + c->pos;
    *n = (size_t)(nl - *s);
    c->pos += *n + 1;
    c->line++;
    return 1;
}

/* "key V" with V in lo..hi, as text_vocab_write writes it. */
static lethe_status read_number(cursor *c, const char *key, long lo, long hi, long *v)
{
    const char *s;
    size_t n, kl = strlen(key);
    if (!next_line(c, &s, &n))
        return lethe_fail(LETHE_ERR_FORMAT, "vocabulary: ends before '%s' (line %d)", key,
                          c->line + 1);
    if (n <= kl + 1 || memcmp(s, key, kl) != 0 || s[kl] != ' ')
        return lethe_fail(LETHE_ERR_FORMAT, "vocabulary line %d: expected '%s N'", c->line, key);
    s += kl + 1, n -= kl + 1;
    if (n > 9 || (n > 1 && s[0] == '0'))
        return lethe_fail(LETHE_ERR_FORMAT, "vocabulary line %d: '%s' is not a number in "
                          "%ld..%ld", c->line, key, lo, hi);
    long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return lethe_fail(LETHE_ERR_FORMAT, "vocabulary line %d: '%s' is not a number",
                              c->line, key);
        x = 10 * x + (s[i] - '0');
    }
    if (x < lo || x > hi)
        return lethe_fail(LETHE_ERR_FORMAT, "vocabulary line %d: %s %ld, outside %ld..%ld",
                          c->line, key, x, lo, hi);
    *v = x;
    return LETHE_OK;
}

static lethe_status expect_line(cursor *c, const char *want)
{
    const char *s;
    size_t n;
    int line = c->line + 1;
    if (!next_line(c, &s, &n) || n != strlen(want) || memcmp(s, want, n) != 0)
        return lethe_fail(LETHE_ERR_FORMAT, "vocabulary line %d: expected '%s'", line, want);
    return LETHE_OK;
}

/* A class name: 1..TEXT_MAX_LABEL bytes, valid UTF-8, no control character. */
static int valid_label(const uint8_t *s, size_t n)
{
    if (n == 0 || n > TEXT_MAX_LABEL) return 0;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 || s[i] == 0x7f) return 0;
        int k = text_utf8_len(s + i, n - i);
        if (k == 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* A token the tokenizer makes: [a-z0-9]{1,TEXT_MAX_TOKEN}, or one non-ASCII
 * code point. */
static int valid_token(const uint8_t *s, size_t n)
{
    if (n == 0) return 0;
    if (s[0] >= 0x80) return text_utf8_len(s, n) == (int)n;
    if (n > TEXT_MAX_TOKEN) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z'))) return 0;
    return 1;
}

lethe_status text_vocab_read(text_vocab *v, text_classes *cl, const char *blob, size_t len)
{
    memset(v, 0, sizeof *v);
    memset(cl, 0, sizeof *cl);
    if (len > TEXT_MAX_BLOB)
        return lethe_fail(LETHE_ERR_FORMAT, "vocabulary of %zu bytes, over the limit of %zu",
                          len, TEXT_MAX_BLOB);
    cursor c = {blob, len, 0, 0};
    long min_count, max_size, max_len, cls, nclass, ntok;
    lethe_status st;
    if ((st = expect_line(&c, "lethe-vocab 1")) != LETHE_OK ||
        (st = expect_line(&c, "tokenizer words-lower")) != LETHE_OK ||
        (st = read_number(&c, "min_count", 1, TEXT_MAX_VOCAB, &min_count)) != LETHE_OK ||
        (st = read_number(&c, "max_size", TEXT_NRESERVED, TEXT_MAX_VOCAB, &max_size)) != LETHE_OK ||
        (st = read_number(&c, "max_len", 1, TEXT_MAX_LEN, &max_len)) != LETHE_OK ||
        (st = read_number(&c, "cls", 0, 1, &cls)) != LETHE_OK)
        return st;
    v->cfg = (text_vocab_config){(int)min_count, (int)max_size, (int)max_len, (int)cls};
    if (v->cfg.max_len < 1 + v->cfg.cls) {    /* the ranges above hold the rest */
        memset(v, 0, sizeof *v);
        return lethe_fail(LETHE_ERR_FORMAT, "vocabulary: max_len %ld with cls 1 (2 at least)",
                          max_len);
    }
    if ((st = read_number(&c, "classes", 2, TEXT_MAX_CLASSES, &nclass)) != LETHE_OK) goto fail;

    /* The class names: one allocation, pointers then names (each name's
     * line is at most TEXT_MAX_LABEL bytes, checked before it is copied). */
    cl->name = malloc((size_t)nclass * (sizeof *cl->name + TEXT_MAX_LABEL + 1));
    if (!cl->name) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld class names", nclass);
        goto fail;
    }
    char *p = (char *)(cl->name + nclass);
    for (long k = 0; k < nclass; k++) {
        const char *s;
        size_t n;
        if (!next_line(&c, &s, &n)) {
            st = lethe_fail(LETHE_ERR_FORMAT, "vocabulary: ends after %ld of %ld class names",
                            k, nclass);
            goto fail;
        }
        if (!valid_label((const uint8_t *)s, n)) {
            st = lethe_fail(LETHE_ERR_FORMAT, "vocabulary line %d: not a class name (1..%d "
                            "bytes of UTF-8, no control character)", c.line, TEXT_MAX_LABEL);
            goto fail;
        }
        memcpy(p, s, n);
        p[n] = '\0';
        if (k > 0 && strcmp(cl->name[k - 1], p) >= 0) {
            st = lethe_fail(LETHE_ERR_FORMAT, "vocabulary line %d: class names not in "
                            "increasing byte order", c.line);
            goto fail;
        }
        cl->name[k] = p;
        p += n + 1;
        cl->n = (int)k + 1;
    }
    if ((st = read_number(&c, "tokens", 0, max_size - TEXT_NRESERVED, &ntok)) != LETHE_OK)
        goto fail;
    /* Each token's line takes 2 bytes at least: a count beyond what is left
     * is refused before anything is allocated for it. */
    if ((size_t)ntok > (c.n - c.pos) / 2) {
        st = lethe_fail(LETHE_ERR_FORMAT, "vocabulary: %ld tokens announced, %zu bytes left",
                        ntok, c.n - c.pos);
        goto fail;
    }
    v->n = TEXT_NRESERVED + (int)ntok;
    v->tok = malloc((size_t)v->n * sizeof *v->tok);
    size_t rest = c.n - c.pos, rbytes = 0;
    for (int r = 0; r < TEXT_NRESERVED; r++) rbytes += strlen(reserved[r]) + 1;
    v->pool = malloc(rbytes + rest + 1);
    if (!v->tok || !v->pool) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for a vocabulary of %d", v->n);
        goto fail;
    }
    p = v->pool;
    for (int r = 0; r < TEXT_NRESERVED; r++) {
        size_t l = strlen(reserved[r]) + 1;
        memcpy(p, reserved[r], l);
        v->tok[r] = p;
        p += l;
    }
    for (int id = TEXT_NRESERVED; id < v->n; id++) {
        const char *s;
        size_t n;
        if (!next_line(&c, &s, &n)) {
            st = lethe_fail(LETHE_ERR_FORMAT, "vocabulary: ends after %d of %ld tokens",
                            id - TEXT_NRESERVED, ntok);
            goto fail;
        }
        if (!valid_token((const uint8_t *)s, n)) {
            st = lethe_fail(LETHE_ERR_FORMAT, "vocabulary line %d: not a token (1..%d bytes of "
                            "a-z and 0-9, or one non-ASCII character)", c.line, TEXT_MAX_TOKEN);
            goto fail;
        }
        memcpy(p, s, n);
        p[n] = '\0';
        v->tok[id] = p;
        p += n + 1;
    }
    if (c.pos != c.n) {
        st = lethe_fail(LETHE_ERR_FORMAT, "vocabulary: %zu bytes after the last token",
                        c.n - c.pos);
        goto fail;
    }
    int dup = vocab_index(v);
    if (dup != 0) {
        st = dup < 0 ? lethe_fail(LETHE_ERR_NOMEM, "out of memory for a vocabulary of %d", v->n)
                     : lethe_fail(LETHE_ERR_FORMAT, "vocabulary: token '%s' (id %d) twice",
                                  v->tok[dup], dup);
        goto fail;
    }
    return LETHE_OK;
fail:
    text_vocab_free(v);
    text_classes_free(cl);
    return st;
}
