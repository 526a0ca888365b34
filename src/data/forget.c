/*
 * Forget specs (PROTOCOL.md, Scenarios): which training images D_f to
 * forget, and the complement D_r to retain.
 *
 *     class:C[,C...]   every image of the listed classes (0..63); for a
 *                      text set C may be a label too (class:spam): an item
 *                      of digits is an index, one that starts with an
 *                      ASCII letter or a non-ASCII byte a label, resolved
 *                      against the set's class names when it is split
 *     random:P%        a seeded random fraction P/100 of the set
 *     random:F         the same with F in (0, 1)
 *     indices:FILE     explicit indices, one per line, '#' comments
 *
 * Both sides of a split list indices in increasing order. The index file is
 * read at split time, when the set size that bounds it is known.
 */
#include "lethe.h"
#include "core/fail.h"
#include "data/text.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Used inside format strings, hence the %%. */
#define FORGET_FORMS "class:C[,C...], random:P%%, random:F with 0 < F < 1, indices:FILE"

/* A label in a class list: starts with an ASCII letter or a non-ASCII byte. */
static int label_start(unsigned char c) { return isalpha(c) || c >= 0x80; }

static lethe_status parse_classes(lethe_forget_spec *f, const char *text, const char *p)
{
    uint64_t mask = 0;
    const char *list = p;
    int names = 0;
    for (;;) {
        if (label_start((unsigned char)*p)) {
            /* Kept as written, resolved when the spec meets its data set. */
            const size_t n = strcspn(p, ",");
            if (n > TEXT_MAX_LABEL)
                return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': label '%.*s…' longer than "
                                  "%d bytes", text, 20, p, TEXT_MAX_LABEL);
            names = 1;
            p += n;
            if (*p == '\0') break;
            p++;
            continue;
        }
        if (!isdigit((unsigned char)*p))
            return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': expected a class number at '%s'",
                              text, p);
        char *end;
        errno = 0;
        long c = strtol(p, &end, 10);
        if (errno || c > 63)
            return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': class %.*s out of range 0..63",
                              text, (int)(end - p), p);
        if (mask >> c & 1)
            return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': class %ld repeated", text, c);
        mask |= (uint64_t)1 << c;
        p = end;
        if (*p == '\0') break;
        if (*p != ',')
            return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': unexpected '%s' after a class",
                              text, p);
        p++;
    }
    if (names) {
        if (strlen(list) >= sizeof f->path)
            return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': class list too long", text);
        memcpy(f->path, list, strlen(list) + 1);
    }
    f->kind = LETHE_FORGET_CLASS;
    f->class_mask = mask;
    return LETHE_OK;
}

/* The classes of a CLASS spec on ds: its numbers, and its labels (f->path,
 * when it names some) found among the class names of a text set. */
static lethe_status class_mask_on(const lethe_forget_spec *f, const lethe_dataset *ds,
                                  uint64_t *out)
{
    uint64_t mask = f->class_mask;
    *out = mask;
    if (!f->path[0]) return LETHE_OK;
    if (!ds->vocab)
        return lethe_fail(LETHE_ERR_ARG, "forget spec 'class:%s': %s has no class names (its "
                          "classes are numbers: class:0 …)", f->path, ds->name);
    text_vocab v;
    text_classes c;
    lethe_status st = text_vocab_read(&v, &c, ds->vocab, ds->vocab_len);
    if (st != LETHE_OK) return st;
    text_vocab_free(&v);
    for (const char *p = f->path; st == LETHE_OK && *p;) {
        const size_t n = strcspn(p, ",");
        if (label_start((unsigned char)*p)) {
            char name[TEXT_MAX_LABEL + 1];
            snprintf(name, sizeof name, "%.*s", (int)n, p);
            const int k = text_class_find(&c, name);
            if (k < 0)
                st = lethe_fail(LETHE_ERR_ARG, "forget spec 'class:%s': %s has no class '%s' "
                                "(classes: %s … %s)", f->path, ds->name, name, c.name[0],
                                c.name[c.n - 1]);
            else if (k > 63)
                st = lethe_fail(LETHE_ERR_ARG, "forget spec 'class:%s': class '%s' is %d, "
                                "out of range 0..63", f->path, name, k);
            else if (mask >> k & 1)
                st = lethe_fail(LETHE_ERR_ARG, "forget spec 'class:%s': class '%s' (%d) "
                                "repeated", f->path, name, k);
            else
                mask |= (uint64_t)1 << k;
        }
        p += n;
        if (*p) p++;
    }
    text_classes_free(&c);
    *out = mask;
    return st;
}

static lethe_status parse_fraction(lethe_forget_spec *f, const char *text, const char *p)
{
    /* strtod alone would also take spaces, "inf", "nan" and hex. */
    if (!*p || !strchr("0123456789.+-", *p))
        return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': expected a fraction or percentage",
                          text);
    char *end;
    double v = strtod(p, &end);
    int percent = *end == '%';
    /* "0x20%" starts with a digit, yet is hex: only decimal characters. */
    if (end == p || end[percent] != '\0' ||
        strspn(p, "0123456789.+-eE") != (size_t)(end - p))
        return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': expected a fraction or percentage",
                          text);
    if (percent) v /= 100.0;
    if (!(v > 0.0 && v < 1.0))
        return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': fraction %g is not in (0, 1)",
                          text, v);
    f->kind = LETHE_FORGET_RANDOM;
    f->fraction = v;
    return LETHE_OK;
}

lethe_status lethe_forget_parse(lethe_forget_spec *f, const char *text)
{
    memset(f, 0, sizeof *f);
    if (!text) return lethe_fail(LETHE_ERR_ARG, "forget spec missing (expected " FORGET_FORMS ")");
    if (strncmp(text, "class:", 6) == 0) return parse_classes(f, text, text + 6);
    if (strncmp(text, "random:", 7) == 0) return parse_fraction(f, text, text + 7);
    if (strncmp(text, "indices:", 8) == 0) {
        const char *path = text + 8;
        if (!*path) return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': file name missing", text);
        if (strlen(path) >= sizeof f->path)
            return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': file name too long", text);
        f->kind = LETHE_FORGET_INDICES;
        memcpy(f->path, path, strlen(path) + 1);
        return LETHE_OK;
    }
    return lethe_fail(LETHE_ERR_ARG, "forget spec '%s': unknown kind (expected " FORGET_FORMS ")",
                      text);
}

lethe_status lethe_forget_to_string(const lethe_forget_spec *f, char *buf, size_t n)
{
    if (!f || !buf || !n)
        return lethe_fail(LETHE_ERR_ARG, "forget spec to text: NULL spec or empty buffer");
    buf[0] = '\0';
    size_t len = 0;   /* the whole text's length, as snprintf counts it */
    switch (f->kind) {
    case LETHE_FORGET_CLASS: {
        if (f->path[0]) {   /* labels: the list as written */
            len = (size_t)snprintf(buf, n, "class:%s", f->path);
            break;
        }
        char text[256];   /* "class:" and at most 64 numbers with commas: 187 bytes */
        size_t k = (size_t)snprintf(text, sizeof text, "class:");
        const char *sep = "";
        for (int c = 0; c < 64; c++)
            if (f->class_mask >> c & 1) {
                k += (size_t)snprintf(text + k, sizeof text - k, "%s%d", sep, c);
                sep = ",";
            }
        len = (size_t)snprintf(buf, n, "%s", text);
        break;
    }
    case LETHE_FORGET_RANDOM: {
        /* The shortest decimal that reads back as the same double: 0.1, not
         * 0.10000000000000001, yet distinct fractions stay distinct. */
        char num[32];
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(num, sizeof num, "%.*g", prec, f->fraction);
            if (strtod(num, NULL) == f->fraction) break;
        }
        len = (size_t)snprintf(buf, n, "random:%s", num);
        break;
    }
    case LETHE_FORGET_INDICES:
        len = (size_t)snprintf(buf, n, "indices:%s", f->path);
        break;
    default:
        return lethe_fail(LETHE_ERR_ARG, "forget spec of unknown kind %d", (int)f->kind);
    }
    if (len >= n)
        return lethe_fail(LETHE_ERR_ARG, "forget spec: its text of %zu bytes does not fit a "
                          "buffer of %zu (LETHE_FORGET_TEXT_MAX always does)", len, n);
    return LETHE_OK;
}

/* Fill both sides from in_forget (N flags), each in increasing order. The
 * index arrays always get at least one slot, so idx is never NULL. */
static lethe_status split_flags(const uint8_t *in_forget, int n, lethe_subset *forget,
                                lethe_subset *retain)
{
    size_t k = 0;
    for (int i = 0; i < n; i++) k += in_forget[i] != 0;
    forget->idx = malloc((k ? k : 1) * sizeof(int32_t));
    retain->idx = malloc(((size_t)n - k ? (size_t)n - k : 1) * sizeof(int32_t));
    if (!forget->idx || !retain->idx) {
        lethe_subset_free(forget);
        lethe_subset_free(retain);
        return lethe_fail(LETHE_ERR_NOMEM, "cannot allocate a split of %d indices", n);
    }
    for (int i = 0; i < n; i++) {
        if (in_forget[i]) forget->idx[forget->n++] = i;
        else retain->idx[retain->n++] = i;
    }
    return LETHE_OK;
}

/* Flags of the images whose class is in f->class_mask; every listed class
 * must exist in ds (below nclass) and, if need_images, have images. */
static lethe_status class_flags(const lethe_forget_spec *f, const lethe_dataset *ds,
                                int need_images, uint8_t *in_forget)
{
    uint64_t mask;
    lethe_status st = class_mask_on(f, ds, &mask);
    if (st != LETHE_OK) return st;
    lethe_forget_spec r = *f;
    r.class_mask = mask;
    f = &r;
    size_t count[64] = {0};
    for (int i = 0; i < ds->n; i++) {
        int y = ds->labels[i];
        in_forget[i] = y < 64 && (f->class_mask >> y & 1);
        if (y < 64) count[y]++;
    }
    for (int c = 0; c < 64; c++) {
        if (!(f->class_mask >> c & 1)) continue;
        if (c >= ds->nclass || (need_images && count[c] == 0))
            return lethe_fail(LETHE_ERR_ARG, "class %d does not exist in %s (classes 0..%d)",
                              c, ds->name, ds->nclass - 1);
    }
    return LETHE_OK;
}

/* A random fraction: exactly round(fraction·N) images, the first ones of a
 * permutation shuffled from `seed`. */
static lethe_status random_flags(const lethe_forget_spec *f, const lethe_dataset *ds,
                                 uint64_t seed, uint8_t *in_forget)
{
    int n = ds->n;
    long long k = llround(f->fraction * n);
    if (k <= 0 || k >= n)
        return lethe_fail(LETHE_ERR_ARG,
                          "forget spec random:%g: round(%g x %d) = %lld leaves the %s side empty",
                          f->fraction, f->fraction, n, k, k <= 0 ? "forget" : "retain");
    int32_t *perm = malloc((size_t)n * sizeof *perm); /* (N) */
    if (!perm) return lethe_fail(LETHE_ERR_NOMEM, "cannot allocate %d indices", n);
    for (int i = 0; i < n; i++) perm[i] = i;
    lethe_rng rng;
    lethe_rng_seed(&rng, seed);
    lethe_rng_shuffle(&rng, perm, (size_t)n);
    memset(in_forget, 0, (size_t)n);
    for (long long i = 0; i < k; i++) in_forget[perm[i]] = 1;
    free(perm);
    return LETHE_OK;
}

/* Index file: one non-negative integer per line; '#' starts a comment;
 * blank lines are skipped. Each index must be in [0, N) and appear once. */
static lethe_status index_flags(const lethe_forget_spec *f, const lethe_dataset *ds,
                                uint8_t *in_forget)
{
    FILE *fp = fopen(f->path, "r");
    if (!fp)
        return lethe_fail(errno == ENOENT ? LETHE_ERR_NOTFOUND : LETHE_ERR_IO,
                          "%s: cannot open: %s", f->path, strerror(errno));
    memset(in_forget, 0, (size_t)ds->n);
    lethe_status st = LETHE_OK;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, found = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, fp)) != -1) {
        lineno++;
        /* A NUL would end the string early and hide the rest of the line. */
        if (memchr(line, '\0', (size_t)got)) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s:%ld: NUL byte in the line", f->path, lineno);
            goto done;
        }
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        size_t len = strlen(p);
        while (len && isspace((unsigned char)p[len - 1])) p[--len] = '\0';
        if (!len) continue;
        size_t digits = strspn(p, "0123456789");
        if (digits != len) {
            st = lethe_fail(LETHE_ERR_FORMAT,
                            "%s:%ld: expected one non-negative integer, got '%.40s'",
                            f->path, lineno, p);
            goto done;
        }
        errno = 0;
        unsigned long long v = strtoull(p, NULL, 10);
        if (errno || v >= (unsigned long long)ds->n) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s:%ld: index %.40s out of range 0..%d",
                            f->path, lineno, p, ds->n - 1);
            goto done;
        }
        if (in_forget[v]) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s:%ld: index %llu repeated", f->path, lineno, v);
            goto done;
        }
        in_forget[v] = 1;
        found++;
    }
    if (ferror(fp)) {
        st = lethe_fail(LETHE_ERR_IO, "%s: read error", f->path);
        goto done;
    }
    if (found == 0)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: no indices: the forget set would be empty",
                        f->path);
    else if (found == ds->n)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: lists all %d images: nothing left to retain",
                        f->path, ds->n);

done:
    free(line);
    fclose(fp);
    return st;
}

lethe_status lethe_forget_split(const lethe_forget_spec *f, const lethe_dataset *train,
                                uint64_t seed, lethe_subset *forget, lethe_subset *retain)
{
    forget->idx = retain->idx = NULL;
    forget->n = retain->n = 0;
    if (train->n <= 0) return lethe_fail(LETHE_ERR_ARG, "%s: empty training set", train->name);
    uint8_t *in_forget = malloc((size_t)train->n); /* (N) */
    if (!in_forget) return lethe_fail(LETHE_ERR_NOMEM, "cannot allocate %d flags", train->n);

    lethe_status st;
    switch (f->kind) {
    case LETHE_FORGET_CLASS: st = class_flags(f, train, 1, in_forget); break;
    case LETHE_FORGET_RANDOM: st = random_flags(f, train, seed, in_forget); break;
    case LETHE_FORGET_INDICES: st = index_flags(f, train, in_forget); break;
    default: st = lethe_fail(LETHE_ERR_ARG, "forget spec of unknown kind %d", (int)f->kind);
    }
    if (st == LETHE_OK && f->kind == LETHE_FORGET_CLASS) {
        size_t k = 0;
        for (int i = 0; i < train->n; i++) k += in_forget[i];
        if (k == (size_t)train->n) {
            char spec[LETHE_FORGET_TEXT_MAX];
            (void)lethe_forget_to_string(f, spec, sizeof spec);   /* always fits */
            st = lethe_fail(LETHE_ERR_ARG, "forget spec %s: every image of %s is forgotten, "
                            "nothing left to retain", spec, train->name);
        }
    }
    if (st == LETHE_OK) st = split_flags(in_forget, train->n, forget, retain);
    free(in_forget);
    return st;
}

lethe_status lethe_forget_split_test(const lethe_forget_spec *f, const lethe_dataset *test,
                                     lethe_subset *forget, lethe_subset *retain)
{
    forget->idx = retain->idx = NULL;
    forget->n = retain->n = 0;
    uint8_t *in_forget = malloc(test->n > 0 ? (size_t)test->n : 1); /* (N) */
    if (!in_forget) return lethe_fail(LETHE_ERR_NOMEM, "cannot allocate %d flags", test->n);
    lethe_status st = LETHE_OK;
    if (f->kind == LETHE_FORGET_CLASS)
        st = class_flags(f, test, 0, in_forget); /* a tiny test set may lack a class */
    else
        memset(in_forget, 0, test->n > 0 ? (size_t)test->n : 1);
    if (st == LETHE_OK) st = split_flags(in_forget, test->n > 0 ? test->n : 0, forget, retain);
    free(in_forget);
    return st;
}
