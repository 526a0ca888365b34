/*
 * Text data sets (issue 17): the TSV reader (`label<TAB>text`, UTF-8, one
 * example a line), the class names (the training labels in byte order),
 * the encoded splits, and the two named sets: "text" (train.tsv and
 * test.tsv of a folder) and "sms-spam" (the SMS Spam Collection, split
 * 80/20 by a seed, stratified). The rules are stated in text.h; the
 * tokenizer and the vocabulary are in tokenizer.c.
 */
#include "data/text.h"

#include "core/fail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------- UTF-8 */

int text_utf8_len(const uint8_t *s, size_t n)
{
    uint8_t b = s[0];
    if (b < 0x80) return 1;
    int len;
    uint8_t lo = 0x80, hi = 0xbf;       /* the second byte's range */
    if (b >= 0xc2 && b <= 0xdf) len = 2;
    else if (b == 0xe0) len = 3, lo = 0xa0;             /* no overlong */
    else if (b == 0xed) len = 3, hi = 0x9f;             /* no surrogates */
    else if (b >= 0xe1 && b <= 0xef) len = 3;
    else if (b == 0xf0) len = 4, lo = 0x90;             /* no overlong */
    else if (b >= 0xf1 && b <= 0xf3) len = 4;
    else if (b == 0xf4) len = 4, hi = 0x8f;             /* ≤ U+10FFFF */
    else return 0;                      /* 0x80..0xc1, 0xf5..0xff */
    if (n < (size_t)len || s[1] < lo || s[1] > hi) return 0;
    for (int k = 2; k < len; k++)
        if ((s[k] & 0xc0) != 0x80) return 0;
    return len;
}

/* ---------------------------------------------------------- TSV rows */

void text_tsv_free(text_tsv *t)
{
    if (!t) return;
    free(t->buf);
    free(t->label_off);
    free(t->text_off);
    free(t->text_len);
    free(t->line);
    memset(t, 0, sizeof *t);
}

/* A growing byte buffer for the repaired labels and texts. */
typedef struct { char *p; size_t n, cap; } bytes;

static int bytes_reserve(bytes *b, size_t more)
{
    if (b->n + more <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

/* Append s[0..n) repaired (each invalid byte as U+FFFD) and a NUL; returns
 * the bytes written before the NUL, or −1 on allocation failure. */
static long append_repaired(bytes *b, const uint8_t *s, size_t n, long *replaced)
{
    /* At most 3 bytes out per byte in, and the NUL. */
    if (!bytes_reserve(b, 3 * n + 1)) return -1;
    size_t start = b->n;
    for (size_t i = 0; i < n;) {
        int k = text_utf8_len(s + i, n - i);
        if (k == 0) {
            memcpy(b->p + b->n, "\xef\xbf\xbd", 3);
            b->n += 3;
            (*replaced)++;
            i++;
        } else {
            memcpy(b->p + b->n, s + i, (size_t)k);
            b->n += (size_t)k;
            i += (size_t)k;
        }
    }
    b->p[b->n++] = '\0';
    return (long)(b->n - 1 - start);
}

lethe_status text_tsv_parse(text_tsv *t, const char *data, size_t len, const char *name)
{
    memset(t, 0, sizeof *t);
    const uint8_t *d = (const uint8_t *)data;
    if (len > TEXT_MAX_FILE)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %zu bytes, over the limit of %zu", name, len,
                          TEXT_MAX_FILE);
    /* A byte-order mark at the start is not part of the first label. */
    if (len >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf) d += 3, len -= 3;
    if (len == 0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: empty file (expected label<TAB>text lines)",
                          name);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += d[i] == '\n';
    lines += d[len - 1] != '\n';
    if (lines > TEXT_MAX_EXAMPLES)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %zu lines, over the limit of %d", name, lines,
                          TEXT_MAX_EXAMPLES);

    lethe_status st = LETHE_OK;
    bytes b = {0};
    t->label_off = malloc(lines * sizeof *t->label_off);
    t->text_off = malloc(lines * sizeof *t->text_off);
    t->text_len = malloc(lines * sizeof *t->text_len);
    t->line = malloc(lines * sizeof *t->line);
    if (!t->label_off || !t->text_off || !t->text_len || !t->line ||
        !bytes_reserve(&b, len + 2 * lines)) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for %zu lines", name, lines);
        goto fail;
    }
    size_t pos = 0;
    for (size_t ln = 1; pos < len; ln++) {
        const uint8_t *s = d + pos;
        const uint8_t *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl != NULL);
        if (n > TEXT_MAX_LINE) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s line %zu: %zu bytes, over the limit of %d",
                            name, ln, n, TEXT_MAX_LINE);
            goto fail;
        }
        if (n && s[n - 1] == '\r') n--;
        if (n == 0) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s line %zu: empty line (expected "
                            "label<TAB>text)", name, ln);
            goto fail;
        }
        const uint8_t *tab = memchr(s, '\t', n);
        if (!tab) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s line %zu: no tab (expected label<TAB>text)",
                            name, ln);
            goto fail;
        }
        size_t nlab = (size_t)(tab - s), ntext = n - nlab - 1;
        if (nlab == 0) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s line %zu: empty label before the tab", name,
                            ln);
            goto fail;
        }
        if (nlab > TEXT_MAX_LABEL) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s line %zu: label of %zu bytes, over the "
                            "limit of %d", name, ln, nlab, TEXT_MAX_LABEL);
            goto fail;
        }
        for (size_t k = 0; k < nlab; k++)
            if (s[k] < 0x20 || s[k] == 0x7f) {
                st = lethe_fail(LETHE_ERR_FORMAT, "%s line %zu: control character 0x%02x in "
                                "the label", name, ln, s[k]);
                goto fail;
            }
        if (ntext == 0) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s line %zu: empty text after the tab", name,
                            ln);
            goto fail;
        }
        int i = t->n;
        t->line[i] = (uint32_t)ln;
        t->label_off[i] = b.n;
        long k = append_repaired(&b, s, nlab, &t->replaced);
        if (k > TEXT_MAX_LABEL) {   /* each invalid byte grew to 3 */
            st = lethe_fail(LETHE_ERR_FORMAT, "%s line %zu: label of %ld bytes once invalid "
                            "UTF-8 is replaced by U+FFFD, over the limit of %d", name, ln, k,
                            TEXT_MAX_LABEL);
            goto fail;
        }
        if (k >= 0) {
            t->text_off[i] = b.n;
            k = append_repaired(&b, tab + 1, ntext, &t->replaced);
        }
        if (k < 0) {
            st = lethe_fail(LETHE_ERR_NOMEM, "%s line %zu: out of memory", name, ln);
            goto fail;
        }
        t->text_len[i] = (uint32_t)k;
        t->n++;
    }
    t->buf = b.p;
    return LETHE_OK;
fail:
    free(b.p);
    text_tsv_free(t);
    return st;
}

lethe_status text_tsv_read(text_tsv *t, const char *path)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f)
        return lethe_fail(errno == ENOENT ? LETHE_ERR_NOTFOUND : LETHE_ERR_IO, "%s: %s", path,
                          strerror(errno));
    struct stat sb;
    lethe_status st = LETHE_OK;
    char *data = NULL;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = lethe_fail(LETHE_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    if ((uint64_t)sb.st_size > TEXT_MAX_FILE) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: %lld bytes, over the limit of %zu", path,
                        (long long)sb.st_size, TEXT_MAX_FILE);
        goto done;
    }
    size_t n = (size_t)sb.st_size;
    data = malloc(n ? n : 1);
    if (!data) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for %zu bytes", path, n);
        goto done;
    }
    if (fread(data, 1, n, f) != n) {
        st = lethe_fail(LETHE_ERR_IO, "%s: read failed", path);
        goto done;
    }
    st = text_tsv_parse(t, data, n, path);
done:
    free(data);
    fclose(f);
    return st;
}

/* The rows idx[0..n) of src, copied into a fresh dst. */
static lethe_status tsv_subset(text_tsv *dst, const text_tsv *src, const int32_t *idx, int n)
{
    memset(dst, 0, sizeof *dst);
    size_t bytes_n = 0;
    for (int j = 0; j < n; j++)
        bytes_n += strlen(text_tsv_label(src, idx[j])) + 1 + src->text_len[idx[j]] + 1;
    size_t rows = n ? (size_t)n : 1;
    dst->buf = malloc(bytes_n ? bytes_n : 1);
    dst->label_off = malloc(rows * sizeof *dst->label_off);
    dst->text_off = malloc(rows * sizeof *dst->text_off);
    dst->text_len = malloc(rows * sizeof *dst->text_len);
    dst->line = malloc(rows * sizeof *dst->line);
    if (!dst->buf || !dst->label_off || !dst->text_off || !dst->text_len || !dst->line) {
        text_tsv_free(dst);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for a split of %d rows", n);
    }
    size_t off = 0;
    for (int j = 0; j < n; j++) {
        int i = idx[j];
        size_t nl = strlen(text_tsv_label(src, i)) + 1, nt = src->text_len[i] + 1;
        dst->label_off[j] = off;
        memcpy(dst->buf + off, text_tsv_label(src, i), nl);
        off += nl;
        dst->text_off[j] = off;
        memcpy(dst->buf + off, text_tsv_text(src, i), nt);
        off += nt;
        dst->text_len[j] = src->text_len[i];
        dst->line[j] = src->line[i];
    }
    dst->n = n;
    return LETHE_OK;
}

/* ----------------------------------------------------------- classes */

void text_classes_free(text_classes *c)
{
    if (!c) return;
    free(c->name);
    memset(c, 0, sizeof *c);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int text_class_find(const text_classes *c, const char *label)
{
    int lo = 0, hi = c->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, r = strcmp(label, c->name[mid]);
        if (r == 0) return mid;
        if (r < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return -1;
}

lethe_status text_classes_from(text_classes *c, const text_tsv *train, const char *name)
{
    memset(c, 0, sizeof *c);
    const char **lab = malloc((train->n ? (size_t)train->n : 1) * sizeof *lab);
    if (!lab) return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for the labels", name);
    for (int i = 0; i < train->n; i++) lab[i] = text_tsv_label(train, i);
    qsort(lab, (size_t)train->n, sizeof *lab, cmp_str);
    int n = 0;
    size_t bytes_n = 0;
    for (int i = 0; i < train->n; i++)
        if (i == 0 || strcmp(lab[i], lab[n - 1]) != 0) {
            lab[n++] = lab[i];
            bytes_n += strlen(lab[i]) + 1;
        }
    lethe_status st = LETHE_OK;
    if (n < 2 || n > TEXT_MAX_CLASSES) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: %d distinct label%s; a classifier needs 2 to %d",
                        name, n, n == 1 ? "" : "s", TEXT_MAX_CLASSES);
        goto done;
    }
    /* One allocation: the pointers, then the names. */
    c->name = malloc((size_t)n * sizeof *c->name + bytes_n);
    if (!c->name) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for %d labels", name, n);
        goto done;
    }
    char *p = (char *)(c->name + n);
    for (int k = 0; k < n; k++) {
        size_t l = strlen(lab[k]) + 1;
        memcpy(p, lab[k], l);
        c->name[k] = p;
        p += l;
    }
    c->n = n;
done:
    free(lab);
    return st;
}

/* ------------------------------------------------------------ splits */

void text_split_free(text_split *s)
{
    if (!s) return;
    free(s->ids);
    free(s->len);
    free(s->labels);
    free(s->line);
    memset(s, 0, sizeof *s);
}

lethe_status text_split_encode(text_split *s, const text_vocab *v, const text_classes *c,
                               const char *whose, const text_tsv *t, const char *name)
{
    memset(s, 0, sizeof *s);
    int T = v->cfg.max_len;
    if (T < 1 || T > TEXT_MAX_LEN)
        return lethe_fail(LETHE_ERR_ARG, "%s: %d ids per example, outside 1..%d", name, T,
                          TEXT_MAX_LEN);
    if ((size_t)t->n * (size_t)T > TEXT_MAX_IDS)
        return lethe_fail(LETHE_ERR_ARG, "%s: %d examples of %d ids is over the limit of %zu "
                          "ids", name, t->n, T, TEXT_MAX_IDS);
    size_t rows = t->n ? (size_t)t->n : 1;
    s->ids = malloc(rows * (size_t)T * sizeof *s->ids);
    s->len = malloc(rows * sizeof *s->len);
    s->labels = malloc(rows);
    s->line = malloc(rows * sizeof *s->line);
    if (!s->ids || !s->len || !s->labels || !s->line) {
        text_split_free(s);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for %d examples", name, t->n);
    }
    for (int i = 0; i < t->n; i++) {
        int k = text_class_find(c, text_tsv_label(t, i));
        if (k < 0) {
            lethe_status st = lethe_fail(LETHE_ERR_FORMAT, "%s line %u: label '%s' is not a "
                                         "class of %s (%d classes: '%s' … '%s')", name,
                                         t->line[i], text_tsv_label(t, i), whose, c->n,
                                         c->name[0], c->name[c->n - 1]);
            text_split_free(s);
            return st;
        }
        s->labels[i] = (uint8_t)k;
        s->line[i] = t->line[i];
        int cut = 0;
        s->len[i] = text_encode(v, text_tsv_text(t, i), t->text_len[i],
                                s->ids + (size_t)i * (size_t)T, &cut);
        s->truncated += cut;
    }
    s->n = t->n;
    s->T = T;
    s->replaced = t->replaced;
    return LETHE_OK;
}

/* ------------------------------------------------------- named sets */

void text_data_free(text_data *d)
{
    if (!d) return;
    text_classes_free(&d->classes);
    text_vocab_free(&d->vocab);
    text_split_free(&d->train);
    text_split_free(&d->test);
    memset(d, 0, sizeof *d);
}

/* The classes and vocabulary from the training split, or from `vocab`
 * (a model's, text_vocab_write's form) when it is not NULL; then both
 * splits encoded with them. */
static lethe_status build(text_data *d, const text_vocab_config *cfg, const char *vocab,
                          size_t vocab_len, const text_tsv *train, const char *train_name,
                          const text_tsv *test, const char *test_name)
{
    lethe_status st;
    const char *whose = "the training split";
    if (vocab) {
        whose = "the model";
        if ((st = text_vocab_read(&d->vocab, &d->classes, vocab, vocab_len)) != LETHE_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", lethe_last_error());
            return lethe_fail(st, "the model's vocabulary (text.vocab): %s", why);
        }
    } else if ((st = text_classes_from(&d->classes, train, train_name)) != LETHE_OK ||
               (st = text_vocab_build(&d->vocab, cfg, train)) != LETHE_OK) {
        return st;
    }
    if ((st = text_split_encode(&d->train, &d->vocab, &d->classes, whose, train, train_name)) !=
            LETHE_OK ||
        (st = text_split_encode(&d->test, &d->vocab, &d->classes, whose, test, test_name)) !=
            LETHE_OK)
        return st;
    return LETHE_OK;
}

static lethe_status path_in(char *out, size_t cap, const char *dir, const char *file)
{
    int n = snprintf(out, cap, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= cap) return lethe_fail(LETHE_ERR_ARG, "%s: path too long", dir);
    return LETHE_OK;
}

/* The SMS Spam Collection's rows split 80/20, stratified (text.h). */
static lethe_status sms_split(const text_tsv *all, const text_classes *c, uint64_t seed,
                              text_tsv *train, text_tsv *test)
{
    lethe_status st = LETHE_OK;
    int n = all->n;
    int32_t *cls = malloc((size_t)n * sizeof *cls), *pick = malloc((size_t)n * sizeof *pick);
    uint8_t *in_test = calloc((size_t)n, 1);
    int32_t *tr = malloc((size_t)n * sizeof *tr), *te = malloc((size_t)n * sizeof *te);
    if (!cls || !pick || !in_test || !tr || !te) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory splitting %d messages", n);
        goto done;
    }
    for (int i = 0; i < n; i++) cls[i] = text_class_find(c, text_tsv_label(all, i));
    lethe_rng rng;
    lethe_rng_seed(&rng, seed);
    for (int k = 0; k < c->n; k++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (cls[i] == k) pick[m++] = i;
        lethe_rng_shuffle(&rng, pick, (size_t)m);
        for (int j = 0; j < m / 5; j++) in_test[pick[j]] = 1;
    }
    int ntr = 0, nte = 0;
    for (int i = 0; i < n; i++) {
        if (in_test[i]) te[nte++] = i;
        else tr[ntr++] = i;
    }
    if ((st = tsv_subset(train, all, tr, ntr)) != LETHE_OK ||
        (st = tsv_subset(test, all, te, nte)) != LETHE_OK) {
        text_tsv_free(train);
        goto done;
    }
    train->replaced = test->replaced = all->replaced;
done:
    free(cls);
    free(pick);
    free(in_test);
    free(tr);
    free(te);
    return st;
}

lethe_status text_data_load(text_data *d, const char *name, const char *dir,
                            const text_vocab_config *cfg, uint64_t seed)
{
    return text_data_load_vocab(d, name, dir, cfg, seed, NULL, 0);
}

lethe_status text_data_load_vocab(text_data *d, const char *name, const char *dir,
                                  const text_vocab_config *cfg, uint64_t seed, const char *vocab,
                                  size_t vocab_len)
{
    memset(d, 0, sizeof *d);
    lethe_status st = text_vocab_config_check(cfg);
    if (st != LETHE_OK) return st;
    /* A missing folder is said by the first file's error ("DIR/train.tsv: No
     * such file or directory"). */
    if (!dir) return lethe_fail(LETHE_ERR_ARG, "data set %s needs a folder (--data-dir)", name);

    char p1[4096], p2[4096];
    text_tsv a = {0}, b = {0}, all = {0};
    if (strcmp(name, "text") == 0) {
        if ((st = path_in(p1, sizeof p1, dir, "train.tsv")) != LETHE_OK ||
            (st = path_in(p2, sizeof p2, dir, "test.tsv")) != LETHE_OK ||
            (st = text_tsv_read(&a, p1)) != LETHE_OK || (st = text_tsv_read(&b, p2)) != LETHE_OK)
            goto done;
        st = build(d, cfg, vocab, vocab_len, &a, p1, &b, p2);
    } else if (strcmp(name, "sms-spam") == 0) {
        if ((st = path_in(p1, sizeof p1, dir, "SMSSpamCollection")) != LETHE_OK ||
            (st = text_tsv_read(&all, p1)) != LETHE_OK)
            goto done;
        /* The classes of the whole file are the training split's: ⌊n_c/5⌋ < n_c
         * leaves every class in it. */
        text_classes c;
        if ((st = text_classes_from(&c, &all, p1)) != LETHE_OK) goto done;
        st = sms_split(&all, &c, seed, &a, &b);
        text_classes_free(&c);
        if (st == LETHE_OK) st = build(d, cfg, vocab, vocab_len, &a, p1, &b, p1);
    } else {
        st = lethe_fail(LETHE_ERR_NOTFOUND, "%s: not a text data set (text, sms-spam)", name);
    }
done:
    text_tsv_free(&a);
    text_tsv_free(&b);
    text_tsv_free(&all);
    if (st != LETHE_OK) text_data_free(d);
    else snprintf(d->name, sizeof d->name, "%s", name);
    return st;
}

lethe_status text_dataset_load(lethe_dataset *ds, const char *name, const char *dir, int train)
{
    return text_datasets_load(train ? ds : NULL, train ? NULL : ds, name, dir, NULL, 0);
}

/* Hand split s of d to ds (its ids and labels move; the blob is copied). */
static lethe_status split_to_dataset(lethe_dataset *ds, text_data *d, text_split *s,
                                     const char *blob, size_t len, const char *dir, int train)
{
    memset(ds, 0, sizeof *ds);
    if (s->n < 1)
        return lethe_fail(LETHE_ERR_FORMAT, "%s in %s: the %s split is empty", d->name, dir,
                          train ? "training" : "test");
    if (!(ds->vocab = malloc(len + 1)))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for a vocabulary of %zu bytes", len);
    memcpy(ds->vocab, blob, len + 1);
    ds->vocab_len = len;
    ds->n = s->n;
    ds->c = d->vocab.n;
    ds->h = 1;
    ds->w = s->T;
    ds->nclass = d->classes.n;
    ds->tokens = s->ids;
    ds->labels = s->labels;
    s->ids = NULL;
    s->labels = NULL;
    for (int k = 0; k < 3; k++) ds->mean[k] = 0.0f, ds->std[k] = 1.0f;
    snprintf(ds->name, sizeof ds->name, "%s", d->name);
    return LETHE_OK;
}

lethe_status text_datasets_load(lethe_dataset *train, lethe_dataset *test, const char *name,
                                const char *dir, const char *vocab, size_t vocab_len)
{
    if (train) memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    if (!dir && strcmp(name, "sms-spam") == 0) dir = LETHE_SMS_SPAM_DIR;
    text_vocab_config cfg;
    text_vocab_config_default(&cfg);
    text_data d;
    lethe_status st = text_data_load_vocab(&d, name, dir, &cfg, 0, vocab, vocab_len);
    if (st != LETHE_OK) return st;
    char *blob = NULL;
    size_t len = 0;
    st = text_vocab_write(&d.vocab, &d.classes, &blob, &len);
    if (st == LETHE_OK && train) st = split_to_dataset(train, &d, &d.train, blob, len, dir, 1);
    if (st == LETHE_OK && test) {
        st = split_to_dataset(test, &d, &d.test, blob, len, dir, 0);
        if (st != LETHE_OK && train) lethe_dataset_free(train);
    }
    free(blob);
    text_data_free(&d);
    return st;
}
