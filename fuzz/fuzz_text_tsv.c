/*
 * Fuzz the TSV reader of the text data sets and what follows it on
 * accepted input (src/data/text.c, tokenizer.c): text_tsv_parse, the
 * classes, a vocabulary built under two configurations, every row encoded,
 * and the vocabulary's serialised form read back. The input is the file's
 * bytes (the reader parses memory; text_tsv_read only reads the file first).
 *
 * Properties of an accepted file: at least one row; every label 1 to
 * TEXT_MAX_LABEL bytes (after the U+FFFD replacement) of valid UTF-8
 * without control characters; every text non-empty valid UTF-8 without '\n'; the
 * rows' line numbers increasing. Of an encoded split: each length in
 * 1..T, every id below the vocabulary's size, TEXT_PAD exactly after the
 * length, labels below the class count. Of the vocabulary: written, read
 * and written again, the same bytes, and the same ids for every row.
 */
#include "data/text.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Valid UTF-8 throughout, and (labels) no control character. */
static int valid(const char *s, size_t n, int label)
{
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] == '\n' || (label && (u[i] < 0x20 || u[i] == 0x7f))) return 0;
        int k = text_utf8_len(u + i, n - i);
        if (k == 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

static void check_split(const text_split *s, const text_vocab *v, const text_classes *c)
{
    for (int i = 0; i < s->n; i++) {
        const int32_t *ids = s->ids + (size_t)i * (size_t)s->T;
        FUZZ_CHECK(s->len[i] >= 1 && s->len[i] <= s->T);
        FUZZ_CHECK(s->labels[i] < c->n);
        for (int k = 0; k < s->T; k++) {
            FUZZ_CHECK(ids[k] >= 0 && ids[k] < v->n);
            FUZZ_CHECK((k < s->len[i]) == (ids[k] != TEXT_PAD));
        }
        if (v->cfg.cls) FUZZ_CHECK(ids[0] == TEXT_CLS);
    }
    FUZZ_CHECK(s->truncated >= 0 && s->truncated <= s->n);
}

static void vocab_round_trip(const text_vocab *v, const text_classes *c, const text_tsv *t)
{
    char *blob = NULL, *again = NULL;
    size_t n = 0, n2 = 0;
    FUZZ_CHECK(text_vocab_write(v, c, &blob, &n) == LETHE_OK);
    text_vocab r;
    text_classes rc;
    FUZZ_CHECK(text_vocab_read(&r, &rc, blob, n) == LETHE_OK);
    FUZZ_CHECK(r.n == v->n && rc.n == c->n);
    FUZZ_CHECK(text_vocab_write(&r, &rc, &again, &n2) == LETHE_OK);
    FUZZ_CHECK(n2 == n && memcmp(blob, again, n) == 0);
    int32_t a[64], b[64];
    for (int i = 0; i < t->n; i++) {
        int ca, cb;
        int la = text_encode(v, text_tsv_text(t, i), t->text_len[i], a, &ca);
        int lb = text_encode(&r, text_tsv_text(t, i), t->text_len[i], b, &cb);
        FUZZ_CHECK(la == lb && ca == cb &&
                   memcmp(a, b, (size_t)v->cfg.max_len * sizeof *a) == 0);
    }
    free(blob);
    free(again);
    text_vocab_free(&r);
    text_classes_free(&rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    text_tsv t;
    if (text_tsv_parse(&t, (const char *)data, size, "fuzz.tsv") != LETHE_OK) {
        FUZZ_CHECK(t.n == 0 && t.buf == NULL);
        return 0;
    }
    FUZZ_CHECK(t.n >= 1);
    for (int i = 0; i < t.n; i++) {
        const char *lab = text_tsv_label(&t, i);
        size_t nl = strlen(lab);
        FUZZ_CHECK(nl >= 1 && nl <= TEXT_MAX_LABEL && valid(lab, nl, 1));
        FUZZ_CHECK(t.text_len[i] >= 1 && valid(text_tsv_text(&t, i), t.text_len[i], 0));
        FUZZ_CHECK(text_tsv_text(&t, i)[t.text_len[i]] == '\0');
        FUZZ_CHECK(i == 0 || t.line[i] > t.line[i - 1]);
    }
    text_classes c;
    if (text_classes_from(&c, &t, "fuzz.tsv") == LETHE_OK) {
        FUZZ_CHECK(c.n >= 2 && c.n <= TEXT_MAX_CLASSES);
        for (int k = 1; k < c.n; k++) FUZZ_CHECK(strcmp(c.name[k - 1], c.name[k]) < 0);
        static const text_vocab_config cfgs[2] = {{1, 64, 8, 1}, {2, 1000, 3, 0}};
        for (int j = 0; j < 2; j++) {
            text_vocab v;
            FUZZ_CHECK(text_vocab_build(&v, &cfgs[j], &t) == LETHE_OK);
            FUZZ_CHECK(v.n >= TEXT_NRESERVED && v.n <= cfgs[j].max_size);
            for (int id = TEXT_NRESERVED; id < v.n; id++)
                FUZZ_CHECK(text_vocab_id(&v, v.tok[id], strlen(v.tok[id])) == id);
            text_split s;
            FUZZ_CHECK(text_split_encode(&s, &v, &c, "the training split", &t, "fuzz.tsv") == LETHE_OK);
            check_split(&s, &v, &c);
            text_split_free(&s);
            vocab_round_trip(&v, &c, &t);
            text_vocab_free(&v);
        }
        text_classes_free(&c);
    }
    text_tsv_free(&t);
    return 0;
}
