/* Text data (src/data/text.c, tokenizer.c): the TSV reader and its bad
 * inputs, UTF-8 repair, classes, the tokenizer's ids written out by hand,
 * truncation and padding, the vocabulary's serialised form and its bad
 * forms, the "text" folder and the SMS Spam Collection's split. */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/text.h"
#include "lethe.h"

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* st is `want` and the last error holds `needle`. */
static void expect_err(lethe_status st, lethe_status want, const char *needle, const char *expr,
                       int line)
{
    if (st != want || !contains(lethe_last_error(), needle))
        test_fail(__FILE__, line, "%s -> %s (%s), expected %s with '%s'", expr,
                  lethe_status_to_string(st), lethe_last_error(), lethe_status_to_string(want),
                  needle);
}
#define CHECK_ERR(expr, status, needle) expect_err((expr), (status), (needle), #expr, __LINE__)

static lethe_status parse(text_tsv *t, const char *s)
{
    return text_tsv_parse(t, s, strlen(s), "f.tsv");
}

static void write_file(const char *path, const char *s, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(s, 1, n, f) == n);
    fclose(f);
}

/* A fresh folder under the test's scratch space. */
static const char *make_dir(const char *name)
{
    const char *d = test_path(name);
    mkdir(d, 0755);
    return d;
}

static void write_in(const char *dir, const char *file, const char *s)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    write_file(p, s, strlen(s));
}

/* ------------------------------------------------------------- UTF-8 */

TEST(text_utf8_rule)
{
    static const struct { const char *s; int len; } cases[] = {
        {"a", 1}, {"\xc2\xa3", 2}, {"\xe2\x80\x98", 3}, {"\xf0\x9f\x98\x80", 4},
        {"\xef\xbf\xbd", 3}, {"\xf4\x8f\xbf\xbf", 4},       /* U+10FFFF */
        {"\x80", 0}, {"\xbf", 0},                           /* continuation bytes */
        {"\xc0\xaf", 0}, {"\xc1\xbf", 0},                   /* overlong 2-byte */
        {"\xe0\x80\xaf", 0}, {"\xf0\x80\x80\xaf", 0},       /* overlong 3, 4 */
        {"\xed\xa0\x80", 0},                                /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 0}, {"\xf5\x80\x80\x80", 0},   /* beyond U+10FFFF */
        {"\xe2\x82", 0}, {"\xc2", 0}, {"\xe2\x28\xa1", 0},  /* cut short, bad middle */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK_MSG(text_utf8_len((const uint8_t *)cases[i].s, strlen(cases[i].s)) ==
                      cases[i].len, "case %zu: expected %d", i, cases[i].len);
}

/* -------------------------------------------------------------- TSV */

TEST(text_tsv_reads_lines)
{
    text_tsv t;
    /* A byte-order mark, CRLF, a second tab kept in the text, no final '\n'. */
    const char *s = "\xef\xbb\xbfham\tHello World\r\nspam\tWIN \xc2\xa3" "100\tnow!\nham\tok";
    CHECK_OK(parse(&t, s));
    CHECK(t.n == 3);
    if (t.n == 3) {
        CHECK(strcmp(text_tsv_label(&t, 0), "ham") == 0);
        CHECK(strcmp(text_tsv_text(&t, 0), "Hello World") == 0);
        CHECK(t.text_len[0] == 11);
        CHECK(strcmp(text_tsv_label(&t, 1), "spam") == 0);
        CHECK(strcmp(text_tsv_text(&t, 1), "WIN \xc2\xa3" "100\tnow!") == 0);
        CHECK(strcmp(text_tsv_text(&t, 2), "ok") == 0);
        CHECK(t.line[0] == 1 && t.line[1] == 2 && t.line[2] == 3);
        CHECK(t.replaced == 0);
    }
    text_tsv_free(&t);
}

TEST(text_tsv_replaces_invalid_utf8)
{
    text_tsv t;
    /* 0xff in the label, a lone continuation byte, an overlong pair (two
     * bytes, two U+FFFD), a sequence cut short by the line's end (two). */
    CHECK_OK(parse(&t, "a\xff\tx\x80y \xc0\xaf z\xe2\x82\n"));
    CHECK(t.n == 1 && t.replaced == 6);
    if (t.n == 1) {
        CHECK(strcmp(text_tsv_label(&t, 0), "a\xef\xbf\xbd") == 0);
        CHECK(strcmp(text_tsv_text(&t, 0),
                     "x\xef\xbf\xbdy \xef\xbf\xbd\xef\xbf\xbd z\xef\xbf\xbd\xef\xbf\xbd") == 0);
        for (uint32_t i = 0; i < t.text_len[0];) {
            int k = text_utf8_len((const uint8_t *)text_tsv_text(&t, 0) + i, t.text_len[0] - i);
            CHECK(k > 0);
            i += k ? (uint32_t)k : 1;
        }
    }
    text_tsv_free(&t);
}

TEST(text_tsv_bad_lines)
{
    text_tsv t;
    CHECK_ERR(parse(&t, "ham\tok\nno tab here\n"), LETHE_ERR_FORMAT, "f.tsv line 2: no tab");
    CHECK_ERR(parse(&t, "ham\tok\n\nham\tok\n"), LETHE_ERR_FORMAT, "f.tsv line 2: empty line");
    CHECK_ERR(parse(&t, "ham\tok\r\n\r\n"), LETHE_ERR_FORMAT, "f.tsv line 2: empty line");
    CHECK_ERR(parse(&t, "ham\tok\nham\tok\nspam\t\n"), LETHE_ERR_FORMAT,
              "f.tsv line 3: empty text");
    CHECK_ERR(parse(&t, "ham\tok\nspam\t\r\n"), LETHE_ERR_FORMAT, "f.tsv line 2: empty text");
    CHECK_ERR(parse(&t, "\tok\n"), LETHE_ERR_FORMAT, "f.tsv line 1: empty label");
    CHECK_ERR(parse(&t, "h\x01m\tok\n"), LETHE_ERR_FORMAT,
              "f.tsv line 1: control character 0x01 in the label");
    CHECK_ERR(parse(&t, ""), LETHE_ERR_FORMAT, "f.tsv: empty file");
    CHECK_ERR(parse(&t, "\xef\xbb\xbf"), LETHE_ERR_FORMAT, "f.tsv: empty file");
    CHECK_ERR(parse(&t, "\n"), LETHE_ERR_FORMAT, "f.tsv line 1: empty line");
    CHECK(t.n == 0 && t.buf == NULL);           /* nothing left behind */

    /* The bounds: a label of TEXT_MAX_LABEL bytes passes, one more fails; a
     * line of TEXT_MAX_LINE bytes passes, one more fails. */
    char *big = malloc(TEXT_MAX_LINE + 16);
    CHECK(big != NULL);
    if (!big) return;
    memset(big, 'l', TEXT_MAX_LABEL);
    strcpy(big + TEXT_MAX_LABEL, "\tok\n");
    CHECK_OK(parse(&t, big));
    text_tsv_free(&t);
    memset(big, 'l', TEXT_MAX_LABEL + 1);
    strcpy(big + TEXT_MAX_LABEL + 1, "\tok\n");
    CHECK_ERR(parse(&t, big), LETHE_ERR_FORMAT, "f.tsv line 1: label of 129 bytes");
    /* 43 invalid bytes (129 once replaced) in a label: over the bound too,
     * as the vocabulary's reader would refuse the class name (fuzz_text_tsv,
     * corpus regress_label_grows_by_repair, found a label that grew so). */
    memset(big, 0xff, 43);
    strcpy(big + 43, "\tok\n");
    CHECK_ERR(parse(&t, big), LETHE_ERR_FORMAT, "f.tsv line 1: label of 129 bytes once "
              "invalid UTF-8 is replaced by U+FFFD");
    memset(big, 0xff, 42);
    strcpy(big + 42, "\tok\nb\tok\n");
    CHECK_OK(parse(&t, big));
    text_classes c;
    text_vocab v;
    text_vocab_config cfg = {1, 10, 4, 1};
    char *blob = NULL;
    size_t n = 0;
    CHECK_OK(text_classes_from(&c, &t, "f.tsv"));
    CHECK_OK(text_vocab_build(&v, &cfg, &t));
    CHECK_OK(text_vocab_write(&v, &c, &blob, &n));
    text_vocab_free(&v);
    text_classes_free(&c);
    CHECK_OK(text_vocab_read(&v, &c, blob, n));
    CHECK(c.n == 2 && strlen(c.name[1]) == 126);
    free(blob);
    text_vocab_free(&v);
    text_classes_free(&c);
    text_tsv_free(&t);
    memcpy(big, "ham\t", 4);
    memset(big + 4, 'w', TEXT_MAX_LINE - 4);
    big[TEXT_MAX_LINE] = '\0';
    CHECK_OK(parse(&t, big));
    text_tsv_free(&t);
    big[TEXT_MAX_LINE] = 'w';
    big[TEXT_MAX_LINE + 1] = '\0';
    CHECK_ERR(parse(&t, big), LETHE_ERR_FORMAT, "f.tsv line 1: 65537 bytes, over the limit");
    free(big);
}

TEST(text_classes_in_byte_order)
{
    text_tsv t;
    text_classes c;
    CHECK_OK(parse(&t, "b\tx\nB\tx\na\tx\nb\tx\n\xc3\xa9\tx\n"));
    CHECK_OK(text_classes_from(&c, &t, "f.tsv"));
    CHECK(c.n == 4);
    if (c.n == 4) {
        CHECK(strcmp(c.name[0], "B") == 0 && strcmp(c.name[1], "a") == 0);
        CHECK(strcmp(c.name[2], "b") == 0 && strcmp(c.name[3], "\xc3\xa9") == 0);
        CHECK(text_class_find(&c, "b") == 2 && text_class_find(&c, "A") == -1);
    }
    text_classes_free(&c);
    text_tsv_free(&t);
    CHECK_OK(parse(&t, "ham\tx\nham\ty\n"));
    CHECK_ERR(text_classes_from(&c, &t, "f.tsv"), LETHE_ERR_FORMAT,
              "f.tsv: 1 distinct label; a classifier needs 2");
    text_tsv_free(&t);
}

/* -------------------------------------------------------- tokenizer */

/* The vocabulary of the hand-counted set: the 3, cat 2, dog 1, sat 1,
 * plus "£" 1 and "100" 1 ("100" < "dog" < "sat" < "£" in byte order). */
static const char *const small_set = "x\tThe cat sat.\ny\tthe dog, the CAT!\nx\t\xc2\xa3" "100\n";

static void build_small(text_vocab *v, int min_count, int max_size, int max_len, int cls)
{
    text_tsv t;
    CHECK_OK(parse(&t, small_set));
    text_vocab_config cfg = {min_count, max_size, max_len, cls};
    CHECK_OK(text_vocab_build(v, &cfg, &t));
    text_tsv_free(&t);
}

static void check_ids(const text_vocab *v, const char *s, const int32_t *want, int T,
                      int want_len, int want_cut, int line)
{
    int32_t ids[64];
    int cut = -1;
    int len = text_encode(v, s, strlen(s), ids, &cut);
    CHECK_MSG(len == want_len && cut == want_cut, "line %d: len %d cut %d, expected %d %d",
              line, len, cut, want_len, want_cut);
    for (int k = 0; k < T; k++)
        CHECK_MSG(ids[k] == want[k], "line %d: ids[%d] = %d, expected %d", line, k, ids[k],
                  want[k]);
}

TEST(text_tokenizer_ids_by_hand)
{
    text_vocab v;
    build_small(&v, 1, 100, 8, 1);
    static const char *const order[] = {"<pad>", "<unk>", "<cls>", "the", "cat",
                                        "100", "dog", "sat", "\xc2\xa3"};
    CHECK(v.n == 9);
    for (int id = 0; id < v.n && id < 9; id++)
        CHECK_MSG(strcmp(v.tok[id], order[id]) == 0, "id %d: '%s', expected '%s'", id,
                  v.tok[id], order[id]);
    /* ASCII lowercased; "ate" unknown; punctuation separates. */
    check_ids(&v, "The CAT ate--the dog", (const int32_t[]){2, 3, 4, 1, 3, 6, 0, 0}, 8, 6, 0,
              __LINE__);
    /* "£100" is two tokens; "Ü" is not lowercased (unknown), nor is "é" split off
     * from a word made of ASCII only: "café" is "caf" and "é". */
    check_ids(&v, "\xc2\xa3" "100 \xc3\x9c caf\xc3\xa9", (const int32_t[]){2, 8, 5, 1, 1, 1, 0, 0},
              8, 6, 0, __LINE__);
    /* Truncation keeps the first T − 1 tokens after the class token. */
    check_ids(&v, "the cat sat dog the cat sat dog the", (const int32_t[]){2, 3, 4, 7, 6, 3, 4, 7},
              8, 8, 1, __LINE__);
    /* Exactly T − 1 tokens: nothing dropped. */
    check_ids(&v, "the cat sat dog the cat sat", (const int32_t[]){2, 3, 4, 7, 6, 3, 4, 7}, 8,
              8, 0, __LINE__);
    /* No token at all: one unknown. */
    check_ids(&v, "?! ...", (const int32_t[]){2, 1, 0, 0, 0, 0, 0, 0}, 8, 2, 0, __LINE__);
    /* An invalid byte reads as U+FFFD (unknown here), as the TSV reader reads it. */
    check_ids(&v, "cat\xff" "dog", (const int32_t[]){2, 4, 1, 6, 0, 0, 0, 0}, 8, 4, 0, __LINE__);
    text_vocab_free(&v);

    /* Without the class token, T = 3. */
    build_small(&v, 1, 100, 3, 0);
    check_ids(&v, "the cat sat dog", (const int32_t[]){3, 4, 7}, 3, 3, 1, __LINE__);
    check_ids(&v, "-", (const int32_t[]){1, 0, 0}, 3, 1, 0, __LINE__);
    text_vocab_free(&v);

    /* min_count 2 keeps the and cat; max_size 4 keeps only the. */
    build_small(&v, 2, 100, 8, 1);
    CHECK(v.n == 5 && strcmp(v.tok[4], "cat") == 0);
    check_ids(&v, "dog cat", (const int32_t[]){2, 1, 4, 0, 0, 0, 0, 0}, 8, 3, 0, __LINE__);
    text_vocab_free(&v);
    build_small(&v, 1, 4, 8, 1);
    CHECK(v.n == 4 && strcmp(v.tok[3], "the") == 0);
    text_vocab_free(&v);
}

TEST(text_tokenizer_long_words_unknown)
{
    /* A word of TEXT_MAX_TOKEN + 1 letters, twice: never in the vocabulary,
     * unknown when encoded; one of TEXT_MAX_TOKEN letters is kept. */
    char s[512], w65[TEXT_MAX_TOKEN + 2], w64[TEXT_MAX_TOKEN + 1];
    memset(w65, 'q', TEXT_MAX_TOKEN + 1);
    w65[TEXT_MAX_TOKEN + 1] = '\0';
    memset(w64, 'r', TEXT_MAX_TOKEN);
    w64[TEXT_MAX_TOKEN] = '\0';
    snprintf(s, sizeof s, "a\t%s %s\nb\t%s %s\n", w65, w64, w65, w64);
    text_tsv t;
    CHECK_OK(parse(&t, s));
    text_vocab_config cfg = {2, 100, 4, 1};
    text_vocab v;
    CHECK_OK(text_vocab_build(&v, &cfg, &t));
    CHECK(v.n == 4 && strcmp(v.tok[3], w64) == 0);
    snprintf(s, sizeof s, "%s %s", w65, w64);
    check_ids(&v, s, (const int32_t[]){2, 1, 3, 0}, 4, 3, 0, __LINE__);
    text_vocab_free(&v);
    text_tsv_free(&t);
}

TEST(text_vocab_config_bounds)
{
    text_vocab_config c;
    text_vocab_config_default(&c);
    CHECK_OK(text_vocab_config_check(&c));
    c.max_len = 1;
    CHECK_ERR(text_vocab_config_check(&c), LETHE_ERR_ARG, "tokens per text 1: outside 2..");
    c.cls = 0;
    CHECK_OK(text_vocab_config_check(&c));
    c.max_size = 2;
    CHECK_ERR(text_vocab_config_check(&c), LETHE_ERR_ARG, "vocabulary size 2");
    c.max_size = 10;
    c.min_count = 0;
    CHECK_ERR(text_vocab_config_check(&c), LETHE_ERR_ARG, "minimum count 0");
}

/* ------------------------------------------------------ serialised form */

TEST(text_vocab_round_trip)
{
    text_vocab v, r;
    text_classes c = {0}, rc;
    build_small(&v, 1, 100, 8, 1);
    text_tsv t;
    CHECK_OK(parse(&t, small_set));
    CHECK_OK(text_classes_from(&c, &t, "f.tsv"));
    text_tsv_free(&t);
    char *blob = NULL, *again = NULL;
    size_t n = 0, n2 = 0;
    CHECK_OK(text_vocab_write(&v, &c, &blob, &n));
    const char *want = "lethe-vocab 1\ntokenizer words-lower\nmin_count 1\nmax_size 100\n"
                       "max_len 8\ncls 1\nclasses 2\nx\ny\ntokens 6\nthe\ncat\n100\ndog\nsat\n"
                       "\xc2\xa3\n";
    CHECK(blob && n == strlen(want) && strcmp(blob, want) == 0);
    CHECK_OK(text_vocab_read(&r, &rc, blob, n));
    CHECK(r.n == v.n && rc.n == 2 && memcmp(&r.cfg, &v.cfg, sizeof r.cfg) == 0);
    if (rc.n == 2) CHECK(strcmp(rc.name[0], "x") == 0 && strcmp(rc.name[1], "y") == 0);
    CHECK_OK(text_vocab_write(&r, &rc, &again, &n2));
    CHECK(again && n2 == n && memcmp(again, blob, n) == 0);
    /* The same ids from the vocabulary read back. */
    const char *s = "the \xc2\xa3" "100 dog sat on the cat";
    int32_t a[8], b[8];
    int ca, cb;
    int la = text_encode(&v, s, strlen(s), a, &ca), lb = text_encode(&r, s, strlen(s), b, &cb);
    CHECK(la == lb && ca == cb && memcmp(a, b, sizeof a) == 0);
    free(blob);
    free(again);
    text_vocab_free(&v);
    text_vocab_free(&r);
    text_classes_free(&c);
    text_classes_free(&rc);
}

TEST(text_vocab_bad_blobs)
{
    static const char *const head = "lethe-vocab 1\ntokenizer words-lower\nmin_count 1\n"
                                    "max_size 100\nmax_len 8\ncls 1\nclasses 2\nx\ny\n";
    static const struct { const char *tail, *needle; int raw; } cases[] = {
        {"tokens 1\nthe\n", NULL, 0},                                   /* the good one */
        {"tokens 2\nthe\n", "ends after 1 of 2 tokens", 0},
        {"tokens 1\nthe\nextra\n", "6 bytes after the last token", 0},
        {"tokens 1\nthe", "ends after 0 of 1 tokens", 0},               /* no final '\n' */
        {"tokens 2\nthe\nthe\n", "token 'the' (id 4) twice", 0},
        {"tokens 1\nThe\n", "line 11: not a token", 0},
        {"tokens 1\nab cd\n", "line 11: not a token", 0},
        {"tokens 1\n\xc2\xa3\xc2\xa3\n", "line 11: not a token", 0},    /* two code points */
        {"tokens 1\n\xff\n", "line 11: not a token", 0},
        {"tokens 2\nthe\n\n", "line 12: not a token", 0},
        {"tokens 01\nthe\n", "not a number", 0},
        {"tokens 98\n", "tokens 98, outside 0..97", 0},
        {"tokens 40\nthe\n", "40 tokens announced, 4 bytes left", 0},
        {"lethe-vocab 2\n", "line 1: expected 'lethe-vocab 1'", 1},
        {"lethe-vocab 1\ntokenizer bytes\n", "line 2: expected 'tokenizer words-lower'", 1},
        {"lethe-vocab 1\ntokenizer words-lower\nmin_count 1\nmax_size 100\nmax_len 1\ncls 1\n",
         "max_len 1 with cls 1", 1},
        {"lethe-vocab 1\ntokenizer words-lower\nmin_count 1\nmax_size 2\n",
         "max_size 2, outside 3..", 1},
        {"lethe-vocab 1\ntokenizer words-lower\nmin_count 1\nmax_size 100\nmax_len 8\ncls 2\n",
         "cls 2, outside 0..1", 1},
        {"lethe-vocab 1\ntokenizer words-lower\nmin_count 1\nmax_size 100\nmax_len 8\ncls 1\n"
         "classes 2\ny\nx\ntokens 0\n", "line 9: class names not in increasing byte order", 1},
        {"lethe-vocab 1\ntokenizer words-lower\nmin_count 1\nmax_size 100\nmax_len 8\ncls 1\n"
         "classes 2\nx\nx\ntokens 0\n", "not in increasing byte order", 1},
        {"lethe-vocab 1\ntokenizer words-lower\nmin_count 1\nmax_size 100\nmax_len 8\ncls 1\n"
         "classes 1\nx\ntokens 0\n", "classes 1, outside 2..256", 1},
        {"lethe-vocab 1\ntokenizer words-lower\nmin_count 1\nmax_size 100\nmax_len 8\ncls 1\n"
         "classes 2\nx\ta\ny\ntokens 0\n", "line 8: not a class name", 1},
        {"lethe-vocab 1\ntokenizer words-lower\nmin_count 1\nmax_size 100\nmax_len 8\ncls 1\n"
         "classes 3\nx\n", "ends after 1 of 3 class names", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char blob[1024];
        snprintf(blob, sizeof blob, "%s%s", cases[i].raw ? "" : head, cases[i].tail);
        text_vocab v;
        text_classes c;
        lethe_status st = text_vocab_read(&v, &c, blob, strlen(blob));
        if (!cases[i].needle) {
            CHECK_MSG(st == LETHE_OK, "case %zu: %s", i, lethe_last_error());
            CHECK(v.n == 4 && c.n == 2);
        } else {
            CHECK_MSG(st == LETHE_ERR_FORMAT && contains(lethe_last_error(), cases[i].needle),
                      "case %zu: %s (%s), expected '%s'", i, lethe_status_to_string(st),
                      lethe_last_error(), cases[i].needle);
            CHECK(v.n == 0 && v.tok == NULL && c.n == 0 && c.name == NULL);
        }
        text_vocab_free(&v);
        text_classes_free(&c);
    }
    /* An empty blob fails at its first line. */
    text_vocab v;
    text_classes c;
    CHECK_ERR(text_vocab_read(&v, &c, "", 0), LETHE_ERR_FORMAT, "line 1: expected 'lethe-vocab 1'");
}

/* ------------------------------------------------------------ splits */

TEST(text_folder_splits)
{
    const char *dir = make_dir("text-ok");
    write_in(dir, "train.tsv", "spam\tWin cash now\nham\tsee you at noon\nham\tnoon is fine\n"
                               "spam\twin a prize\n");
    write_in(dir, "test.tsv", "ham\tsee you\nspam\tcash prize now now\n");
    text_vocab_config cfg = {1, 100, 4, 1};
    text_data d;
    CHECK_OK(text_data_load(&d, "text", dir, &cfg, 0));
    CHECK(d.train.n == 4 && d.test.n == 2 && d.train.T == 4 && d.classes.n == 2);
    if (d.test.n == 2 && d.classes.n == 2) {
        CHECK(strcmp(d.classes.name[0], "ham") == 0 && strcmp(d.name, "text") == 0);
        CHECK(d.train.labels[0] == 1 && d.train.labels[1] == 0 && d.test.labels[1] == 1);
        /* "noon" and "win" twice, then a, at, cash, fine, is, … in byte order. */
        CHECK(strcmp(d.vocab.tok[3], "noon") == 0 && strcmp(d.vocab.tok[4], "win") == 0 &&
              strcmp(d.vocab.tok[5], "a") == 0 && strcmp(d.vocab.tok[7], "cash") == 0);
        int32_t want[4] = {2, 7, 0, 0}; /* "cash prize now now": cut to 3 tokens */
        want[2] = text_vocab_id(&d.vocab, "prize", 5);
        want[3] = text_vocab_id(&d.vocab, "now", 3);
        CHECK(memcmp(d.test.ids + 4, want, sizeof want) == 0 && d.test.len[1] == 4);
        CHECK(d.test.truncated == 1 && d.train.truncated == 1);  /* "see you at noon" */
        CHECK(d.test.len[0] == 3 && d.test.ids[3] == TEXT_PAD);
    }
    text_data_free(&d);

    /* A test label the training split has no class for. */
    write_in(dir, "test.tsv", "ham\tsee you\neggs\tbacon\n");
    CHECK_ERR(text_data_load(&d, "text", dir, &cfg, 0), LETHE_ERR_FORMAT,
              "test.tsv line 2: label 'eggs' is not a class of the training split");
    CHECK(d.vocab.n == 0 && d.train.ids == NULL);
    /* An empty test file, an empty training file, a missing one. */
    write_in(dir, "test.tsv", "");
    CHECK_ERR(text_data_load(&d, "text", dir, &cfg, 0), LETHE_ERR_FORMAT, "test.tsv: empty file");
    write_in(dir, "train.tsv", "");
    CHECK_ERR(text_data_load(&d, "text", dir, &cfg, 0), LETHE_ERR_FORMAT, "train.tsv: empty file");
    const char *none = make_dir("text-none");
    CHECK_ERR(text_data_load(&d, "text", none, &cfg, 0), LETHE_ERR_NOTFOUND,
              "text-none/train.tsv: No such file");
    CHECK_ERR(text_data_load(&d, "text", test_path("no-such-folder"), &cfg, 0),
              LETHE_ERR_NOTFOUND, "no-such-folder/train.tsv: No such file");
    CHECK_ERR(text_data_load(&d, "text", NULL, &cfg, 0), LETHE_ERR_ARG, "--data-dir");
    CHECK_ERR(text_data_load(&d, "novel", dir, &cfg, 0), LETHE_ERR_NOTFOUND,
              "novel: not a text data set");
    cfg.max_len = 0;
    CHECK_ERR(text_data_load(&d, "text", dir, &cfg, 0), LETHE_ERR_ARG, "tokens per text 0");
}

/* The SMS file's format with 23 "a" and 11 "b" lines: ⌊23/5⌋ + ⌊11/5⌋ = 6
 * test lines, 28 training lines, a different draw for another seed. */
TEST(text_sms_split_small)
{
    const char *dir = make_dir("sms-small");
    char s[2048] = "";
    for (int i = 0; i < 34; i++) {
        char line[64];
        snprintf(line, sizeof line, "%s\tmessage number %d\n", i % 3 == 2 ? "b" : "a", i);
        strcat(s, line);
    }
    write_in(dir, "SMSSpamCollection", s);
    text_vocab_config cfg;
    text_vocab_config_default(&cfg);
    text_data d, e;
    CHECK_OK(text_data_load(&d, "sms-spam", dir, &cfg, 0));
    CHECK(d.train.n == 28 && d.test.n == 6);
    int per[2] = {0, 0};
    for (int i = 0; i < d.test.n; i++) per[d.test.labels[i] & 1]++;
    CHECK(per[0] == 4 && per[1] == 2);
    CHECK_OK(text_data_load(&e, "sms-spam", dir, &cfg, 0));
    CHECK(e.test.n == 6 && memcmp(d.test.line, e.test.line, 6 * sizeof(uint32_t)) == 0);
    text_data_free(&e);
    /* Every line once, in one split or the other, each split in file order. */
    int seen[35] = {0}, ordered = 1;
    for (int i = 0; i < d.train.n; i++) {
        seen[d.train.line[i] <= 34 ? d.train.line[i] : 0]++;
        ordered &= i == 0 || d.train.line[i] > d.train.line[i - 1];
    }
    for (int i = 0; i < d.test.n; i++) {
        seen[d.test.line[i] <= 34 ? d.test.line[i] : 0]++;
        ordered &= i == 0 || d.test.line[i] > d.test.line[i - 1];
    }
    CHECK(ordered && seen[0] == 0);
    for (int l = 1; l <= 34; l++) CHECK_MSG(seen[l] == 1, "line %d in %d splits", l, seen[l]);
    /* Another seed draws other test lines. */
    int differ = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        CHECK_OK(text_data_load(&e, "sms-spam", dir, &cfg, seed));
        CHECK(e.test.n == 6);
        differ |= e.test.n == 6 && memcmp(d.test.line, e.test.line, 6 * sizeof(uint32_t)) != 0;
        text_data_free(&e);
    }
    CHECK(differ);
    text_data_free(&d);
    char empty[1024];
    snprintf(empty, sizeof empty, "%s", make_dir("sms-none"));
    CHECK_ERR(text_data_load(&d, "sms-spam", empty, &cfg, 0), LETHE_ERR_NOTFOUND,
              "SMSSpamCollection");
}

/* The SMS Spam Collection itself, where shared/ is beside the repository. */
TEST(text_sms_spam_collection)
{
    const char *env = getenv("LETHE_SMS_DIR");
    const char *dirs[] = {env ? env : "", "../shared/datasets/sms-spam",
                          "/work/shared/datasets/sms-spam"};
    const char *dir = NULL;
    char p[1100];
    for (int i = 0; i < 3 && !dir; i++) {
        snprintf(p, sizeof p, "%s/SMSSpamCollection", dirs[i]);
        if (*dirs[i] && access(p, R_OK) == 0) dir = dirs[i];
    }
    if (!dir) {
        test_skip("no SMSSpamCollection (LETHE_SMS_DIR, ../shared/datasets/sms-spam)");
        return;
    }
    text_vocab_config cfg;
    text_vocab_config_default(&cfg);
    text_data d;
    CHECK_OK(text_data_load(&d, "sms-spam", dir, &cfg, 0));
    /* 4,827 ham and 747 spam: 965 + 149 in the test split. */
    CHECK(d.train.n == 4460 && d.test.n == 1114);
    int tr[2] = {0, 0}, te[2] = {0, 0};
    for (int i = 0; i < d.train.n; i++) tr[d.train.labels[i] & 1]++;
    for (int i = 0; i < d.test.n; i++) te[d.test.labels[i] & 1]++;
    CHECK(tr[0] == 3862 && tr[1] == 598 && te[0] == 965 && te[1] == 149);
    CHECK(d.classes.n == 2 && strcmp(d.classes.name[0], "ham") == 0 &&
          strcmp(d.classes.name[1], "spam") == 0);
    CHECK(d.train.replaced == 0);
    /* Each of the 5,574 lines in one split only. */
    static uint8_t seen[5575];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < d.train.n; i++) seen[d.train.line[i] <= 5574 ? d.train.line[i] : 0]++;
    for (int i = 0; i < d.test.n; i++) seen[d.test.line[i] <= 5574 ? d.test.line[i] : 0]++;
    int once = seen[0] == 0;
    for (int l = 1; l <= 5574; l++) once &= seen[l] == 1;
    CHECK(once);
    /* Measured with this rule and seed 0: 3,756 ids, 32 training texts
     * over 63 tokens. */
    CHECK_MSG(d.vocab.n == 3756 && d.train.truncated == 32, "vocab %d, truncated %ld",
              d.vocab.n, d.train.truncated);
    text_data_free(&d);
}
