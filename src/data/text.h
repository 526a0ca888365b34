/*
 * Text data inside the library (issue 17): a TSV reader (text.c), a word
 * tokenizer with a vocabulary built from the training split, and the
 * vocabulary's serialised form that a checkpoint carries (tokenizer.c).
 * docs/PROTOCOL.md, "Text data", states the same rules for users.
 *
 * Typical use (what `--data text|sms-spam` loads):
 *
 *     text_vocab_config cfg;
 *     text_vocab_config_default(&cfg);
 *     text_data d;
 *     if (text_data_load(&d, "sms-spam", dir, &cfg, 0) != LETHE_OK) …
 *     // d.train.ids (N, T) int32, d.train.len (N), d.train.labels (N),
 *     // d.classes.name[k] the label of class k; the same for d.test.
 *     char *blob; size_t n;
 *     text_vocab_write(&d.vocab, &d.classes, &blob, &n);   // for the checkpoint
 *     text_data_free(&d);
 *
 * Rules, in brief:
 *   - A file is UTF-8, one example a line, `label<TAB>text` (split at the
 *     first tab; later tabs belong to the text). A line ends at '\n'; one
 *     '\r' before it is dropped; the last line needs no '\n'. An empty
 *     line, a line without a tab, an empty label or an empty text is an
 *     error naming the file and the line (1-based).
 *   - Invalid UTF-8: each byte that does not start a valid sequence
 *     (shortest form, no surrogates, at most U+10FFFF) is replaced by
 *     U+FFFD, in labels and texts alike; the count is kept (replaced).
 *   - Bounds: a file of at most TEXT_MAX_FILE bytes, TEXT_MAX_EXAMPLES
 *     lines, each at most TEXT_MAX_LINE bytes (label, tab and text, before
 *     the '\n'); a label at most TEXT_MAX_LABEL bytes, in the file and
 *     after the U+FFFD replacement, with no control character; 2 to TEXT_MAX_CLASSES classes. Beyond a bound: an error.
 *   - Classes: the training split's distinct labels in byte order (strcmp),
 *     class k the k-th. A test label that is not a class is an error.
 *   - Tokens: ASCII letters are lowercased; a run of ASCII letters and
 *     digits is a word; every other ASCII byte separates words; every
 *     non-ASCII code point (U+FFFD of an invalid byte included) is a token
 *     on its own, kept as it is (not lowercased). A word longer than
 *     TEXT_MAX_TOKEN bytes is unknown.
 *   - Ids: 0 TEXT_PAD, 1 TEXT_UNK, 2 TEXT_CLS, then the training split's
 *     tokens seen at least min_count times, most frequent first (ties in
 *     byte order), cut so that there are at most max_size ids in all.
 *   - Encoding into T = max_len ids: TEXT_CLS first when cls is set, then
 *     the text's first tokens (later ones dropped: truncation keeps the
 *     first T, or T − 1 with cls), unknown tokens as TEXT_UNK, the rest
 *     TEXT_PAD. A text with no token at all encodes as one TEXT_UNK, so
 *     every example has at least one non-pad id. len = the non-pad ids.
 */
#ifndef LETHE_DATA_TEXT_H
#define LETHE_DATA_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lethe.h"

#define TEXT_PAD 0
#define TEXT_UNK 1
#define TEXT_CLS 2
#define TEXT_NRESERVED 3

#define TEXT_MAX_FILE     ((size_t)256 << 20)  /* bytes of one TSV file */
#define TEXT_MAX_EXAMPLES 1000000              /* lines of one TSV file */
#define TEXT_MAX_LINE     65536                /* bytes of a line, before '\n' */
#define TEXT_MAX_LABEL    128                  /* bytes of a label */
#define TEXT_MAX_CLASSES  256                  /* labels are bytes (lethe_dataset) */
#define TEXT_MAX_TOKEN    64                   /* bytes of a word in the vocabulary */
#define TEXT_MAX_VOCAB    (1 << 20)            /* ids, the reserved ones included */
#define TEXT_MAX_LEN      4096                 /* ids per example (T) */
#define TEXT_MAX_IDS      ((size_t)1 << 27)    /* N·T of one split (512 MiB of int32) */
#define TEXT_MAX_BLOB     ((size_t)64 << 20)   /* bytes of a serialised vocabulary */

/* ------------------------------------------------------------ UTF-8 */

/* Length (1 to 4) of the valid UTF-8 sequence at s[0..n), n ≥ 1, or 0 when
 * s[0] does not start one (the byte is then replaced by U+FFFD). */
int text_utf8_len(const uint8_t *s, size_t n);

/* ---------------------------------------------------------- TSV rows */

/* The rows of one file, labels and texts repaired to valid UTF-8, each
 * NUL-terminated inside buf (a text may hold NUL bytes of its own: use
 * text_len). */
typedef struct {
    int n;                  /* rows */
    char *buf;              /* every label and text */
    size_t *label_off;      /* (N) offsets into buf */
    size_t *text_off;       /* (N) */
    uint32_t *text_len;     /* (N) bytes, without the terminating NUL */
    uint32_t *line;         /* (N) line number in the file (1-based) */
    long replaced;          /* invalid bytes replaced by U+FFFD */
} text_tsv;

/* Parse len bytes of a TSV file; `name` (the path) is what errors say. An
 * empty file (no line) is an error. */
lethe_status text_tsv_parse(text_tsv *t, const char *data, size_t len, const char *name);
/* Read and parse the file at path. */
lethe_status text_tsv_read(text_tsv *t, const char *path);
void text_tsv_free(text_tsv *t);
static inline const char *text_tsv_label(const text_tsv *t, int i) { return t->buf + t->label_off[i]; }
static inline const char *text_tsv_text(const text_tsv *t, int i) { return t->buf + t->text_off[i]; }

/* ----------------------------------------------------------- classes */

typedef struct {
    int n;                  /* 2..TEXT_MAX_CLASSES */
    char **name;            /* (n) labels in byte order, one allocation with name */
} text_classes;

/* The distinct labels of train in byte order; fewer than 2 or more than
 * TEXT_MAX_CLASSES is an error naming `name`. */
lethe_status text_classes_from(text_classes *c, const text_tsv *train, const char *name);
/* The class of label, or −1 (binary search). */
int text_class_find(const text_classes *c, const char *label);
void text_classes_free(text_classes *c);

/* -------------------------------------------------------- vocabulary */

typedef struct {
    int min_count;          /* ≥ 1; default 2 */
    int max_size;           /* ids in all, TEXT_NRESERVED..TEXT_MAX_VOCAB; default 20000 */
    int max_len;            /* T, ids per example, 1..TEXT_MAX_LEN (2.. with cls); default 64 */
    int cls;                /* 1: TEXT_CLS first in every example; default 1 */
} text_vocab_config;

void text_vocab_config_default(text_vocab_config *c);
lethe_status text_vocab_config_check(const text_vocab_config *c);

typedef struct {
    text_vocab_config cfg;
    int n;                  /* ids, TEXT_NRESERVED included */
    char **tok;             /* (n) NUL-terminated; "<pad>", "<unk>", "<cls>" first */
    char *pool;             /* the tokens' bytes */
    int32_t *slot;          /* open-addressing table of ids (−1: empty), cap slots */
    uint32_t cap;
} text_vocab;

/* Count the tokens of every text of train and keep the vocabulary the
 * config asks for. */
lethe_status text_vocab_build(text_vocab *v, const text_vocab_config *cfg, const text_tsv *train);
/* The id of token s (n bytes), TEXT_UNK when it is not in v. */
int32_t text_vocab_id(const text_vocab *v, const char *s, size_t n);
void text_vocab_free(text_vocab *v);

/* Encode the n bytes of s (raw: invalid UTF-8 is read by the same rule as
 * the TSV reader) into ids[0..T), T = v->cfg.max_len. Returns the non-pad
 * count (≥ 1); *truncated = 1 when tokens were dropped. No allocation. */
int text_encode(const text_vocab *v, const char *s, size_t n, int32_t *ids, int *truncated);

/* The vocabulary and the class names as one blob (text, '\n' lines; see
 * tokenizer.c for its grammar) that a checkpoint carries. *out is
 * malloc'd, NUL-terminated (the NUL not counted in *len); the caller frees
 * it. */
lethe_status text_vocab_write(const text_vocab *v, const text_classes *c, char **out,
                              size_t *len);
/* Read a blob back; every count, size and token is checked (a blob that
 * text_vocab_write would not write is refused, so writing what was read
 * gives the same bytes). v and c are zeroed on failure. */
lethe_status text_vocab_read(text_vocab *v, text_classes *c, const char *blob, size_t len);

/* ------------------------------------------------------------ splits */

/* One split, encoded: what a model's token input takes. */
typedef struct {
    int n, T;
    int32_t *ids;           /* (N, T) token ids, TEXT_PAD after len[i] */
    int32_t *len;           /* (N) non-pad ids: the padding mask is t < len[i] */
    uint8_t *labels;        /* (N) classes */
    uint32_t *line;         /* (N) the example's line in its file (1-based) */
    long truncated;         /* examples whose tokens did not all fit */
    long replaced;          /* invalid UTF-8 bytes replaced by U+FFFD */
} text_split;

/* Encode every row of t; a label that is not one of c's is an error naming
 * `name`, the line and `whose` classes c are ("the training split"). */
lethe_status text_split_encode(text_split *s, const text_vocab *v, const text_classes *c,
                               const char *whose, const text_tsv *t, const char *name);
void text_split_free(text_split *s);

typedef struct {
    text_classes classes;   /* from the training split */
    text_vocab vocab;       /* from the training split */
    text_split train, test;
    char name[32];          /* "text", "sms-spam" */
} text_data;

/* "text": dir/train.tsv and dir/test.tsv. "sms-spam": dir/SMSSpamCollection
 * (the SMS Spam Collection v.1, itself label<TAB>text), split 80/20 by
 * `seed`, stratified: of each class's n_c messages, ⌊n_c/5⌋ drawn for the
 * test split (the class's indices in file order shuffled by one lethe_rng
 * seeded with `seed`, classes in order; the first ⌊n_c/5⌋ taken), both
 * splits kept in file order. The seed is unused for "text". */
lethe_status text_data_load(text_data *d, const char *name, const char *dir,
                            const text_vocab_config *cfg, uint64_t seed);
/* The same, with the classes and vocabulary of a trained model (`vocab`,
 * the blob of text_vocab_write; cfg unused) in place of the training
 * split's, so that a model reads data as it was trained to: a label the
 * model has no class for is an error naming the file and line. The split
 * of sms-spam is drawn as text_data_load draws it. vocab NULL: as
 * text_data_load. */
lethe_status text_data_load_vocab(text_data *d, const char *name, const char *dir,
                                  const text_vocab_config *cfg, uint64_t seed, const char *vocab,
                                  size_t vocab_len);
void text_data_free(text_data *d);

/* One split of "text" or "sms-spam" (seed 0) as a lethe_dataset (include/
 * lethe.h): tokens (N, T), labels, c = the vocabulary's size, h = 1, w =
 * T, vocab = the blob of text_vocab_write; the default config. dir NULL:
 * LETHE_SMS_SPAM_DIR for sms-spam. An empty split is an error. */
lethe_status text_dataset_load(lethe_dataset *ds, const char *name, const char *dir, int train);
/* Both splits from one read and one encoding (either may be NULL), with a
 * model's vocabulary and classes when vocab is not NULL
 * (text_data_load_vocab). On an error neither is left loaded. */
lethe_status text_datasets_load(lethe_dataset *train, lethe_dataset *test, const char *name,
                                const char *dir, const char *vocab, size_t vocab_len);
/* 1 when `name` is one of the text data sets (text, sms-spam). */
static inline int text_dataset_name(const char *name)
{
    return strcmp(name, "text") == 0 || strcmp(name, "sms-spam") == 0;
}

/*
 * How this meets lethe_dataset: text_dataset_load (lethe_dataset_load of
 * "text" and "sms-spam") calls text_data_load and hands one split's ids
 * and labels to the lethe_dataset without copying (tokens (N, T), c = the
 * vocabulary's size, h = 1, w = T), with the blob of text_vocab_write as
 * its vocab; lethe_dataset_batch writes the ids as floats, which a text
 * model's forward reads back (padding mask: id ≠ TEXT_PAD). A model
 * trained on it keeps the blob, and its checkpoint carries it as the U8
 * tensor "text.vocab" (io/checkpoint.c): too long for a lethe_meta value
 * (SMS Spam: 24,301 bytes; values stop at 511). --forget class:spam is
 * resolved through text_class_find (data/forget.c).
 */

#endif
