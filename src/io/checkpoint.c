/*
 * Checkpoints: a model's named tensors (PyTorch state_dict order and names)
 * to and from safetensors files (io/safetensors.c does the bytes).
 *
 * Floats are stored as F32; counters (is_int64: num_batches_tracked, held
 * by the model as a float) as I64, as PyTorch does, so a Lethe checkpoint
 * loads into torch with load_state_dict(strict=True) and back. A load checks
 * every name and shape before it writes a single value, so a mismatched file
 * leaves the model as it was.
 *
 * A text model's checkpoint also holds its vocabulary and class names
 * (data/text.h's blob: what `lethe predict` needs to classify new text) as
 * the U8 tensor "text.vocab" of one dimension, after the model's tensors.
 * It is checked on load: at most TEXT_MAX_BLOB bytes, a blob that
 * text_vocab_read accepts, of as many ids, tokens per example and classes
 * as the model has; only a text model may hold one. PyTorch twins drop it
 * before load_state_dict (tools/lethe_torch.py).
 */
#include "io/safetensors.h"
#include "core/fail.h"
#include "data/text.h"
#include "nn/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "[16, 1, 3, 3]" (or "[]" for a scalar) into buf. */
static const char *shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* A scalar and a one-element vector hold the same count (PyTorch accepts
 * either for num_batches_tracked); otherwise every dimension must agree. */
static int same_shape(const lethe_tensor *t, const st_entry *e)
{
    if (t->ndim == e->ndim) {
        for (int k = 0; k < t->ndim; k++)
            if ((int64_t)t->shape[k] != e->shape[k]) return 0;
        return 1;
    }
    return t->numel == 1 && e->numel == 1 && t->ndim <= 1 && e->ndim <= 1;
}

#define VOCAB_TENSOR "text.vocab"

/* The vocabulary entry of f, checked against m: *blob points into f's
 * data (NULL, 0 when there is none). */
static lethe_status vocab_of(const lethe_model *m, const st_file *f, const char **blob,
                             size_t *len)
{
    *blob = NULL;
    *len = 0;
    const st_entry *e = st_find(f, VOCAB_TENSOR);
    if (!e) return LETHE_OK;
    if (!m->tokens_in_x)
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: holds a vocabulary ('%s') but the %s model "
                          "is not a text model", f->label, VOCAB_TENSOR, m->arch);
    if (e->dtype != ST_U8 || e->ndim != 1 || e->numel < 1 || e->numel > TEXT_MAX_BLOB || !f->data)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: '%s' must be U8 bytes of one dimension, 1 to "
                          "%zu of them", f->label, VOCAB_TENSOR, TEXT_MAX_BLOB);
    const char *b = (const char *)f->data + e->begin;
    text_vocab v;
    text_classes c;
    lethe_status st = text_vocab_read(&v, &c, b, e->numel);
    if (st != LETHE_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", lethe_last_error());
        return lethe_fail(LETHE_ERR_FORMAT, "%s: '%s': %s", f->label, VOCAB_TENSOR, why);
    }
    if (v.n != m->in_c || v.cfg.max_len != m->in_w || c.n != m->nclass)
        st = lethe_fail(LETHE_ERR_MISMATCH, "%s: its vocabulary (%d ids, %d per example, %d "
                        "classes) does not fit the %s model (%d, %d, %d)", f->label, v.n,
                        v.cfg.max_len, c.n, m->arch, m->in_c, m->in_w, m->nclass);
    text_vocab_free(&v);
    text_classes_free(&c);
    if (st != LETHE_OK) return st;
    *blob = b;
    *len = e->numel;
    return LETHE_OK;
}

/* Check f against m, then copy every tensor in. */
static lethe_status load_into(lethe_model *m, const st_file *f)
{
    const char *arch = lethe_model_arch(m);
    int nt = lethe_model_ntensors(m);
    const char *vocab;
    size_t vlen;
    lethe_status vs = vocab_of(m, f, &vocab, &vlen);
    if (vs != LETHE_OK) return vs;
    for (int i = 0; i < nt; i++) {
        const lethe_tensor *t = lethe_model_tensor(m, i);
        const st_entry *e = st_find(f, t->name);
        if (!e)
            return lethe_fail(LETHE_ERR_MISMATCH, "%s: tensor '%s' of the %s model is "
                              "missing from the file", f->label, t->name, arch);
        if (!same_shape(t, e)) {
            char a[96], b[96];
            int64_t ts[4] = {0};
            for (int k = 0; k < t->ndim && k < 4; k++) ts[k] = t->shape[k];
            return lethe_fail(LETHE_ERR_MISMATCH, "%s: tensor '%s' has shape %s in the "
                              "file but %s in the %s model", f->label, t->name,
                              shape_str(a, sizeof a, e->ndim, e->shape),
                              shape_str(b, sizeof b, t->ndim, ts), arch);
        }
        if (e->dtype == ST_I64 && !t->is_int64)
            return lethe_fail(LETHE_ERR_MISMATCH, "%s: tensor '%s' is I64 in the file but "
                              "holds floats in the %s model", f->label, t->name, arch);
    }
    for (int i = 0; i < f->n; i++)
        if (!lethe_model_find(m, f->t[i].name) && strcmp(f->t[i].name, VOCAB_TENSOR) != 0)
            return lethe_fail(LETHE_ERR_MISMATCH, "%s: the file holds tensor '%.64s' that "
                              "the %s model lacks", f->label, f->t[i].name, arch);
    if ((vs = nn_model_set_vocab(m, vocab, vlen)) != LETHE_OK) return vs;
    for (int i = 0; i < nt; i++) {
        const lethe_tensor *t = lethe_model_tensor(m, i);
        st_entry_to_float(f, st_find(f, t->name), t->data);
    }
    return LETHE_OK;
}

lethe_status lethe_checkpoint_save(const lethe_model *m, const lethe_metadata *md,
                                   const char *path)
{
    if (!m || !path) return lethe_fail(LETHE_ERR_ARG, "checkpoint save: NULL model or path");
    int n = lethe_model_ntensors(m);
    st_out *out = calloc((size_t)n + 2, sizeof *out);
    lethe_metadata *meta = malloc(sizeof *meta);
    if (!out || !meta) {
        free(out);
        free(meta);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++) {
        const lethe_tensor *t = lethe_model_tensor(m, i);
        out[i].name = t->name;
        out[i].dtype = t->is_int64 ? ST_I64 : ST_F32;
        out[i].ndim = t->ndim;
        for (int k = 0; k < t->ndim && k < ST_MAX_DIMS; k++) out[i].shape[k] = t->shape[k];
        out[i].data = t->data;
    }
    size_t vlen;
    const char *vocab = nn_model_vocab(m, &vlen);
    if (vocab) {
        out[n] = (st_out){.name = VOCAB_TENSOR, .dtype = ST_U8, .ndim = 1,
                          .shape = {(int64_t)vlen}, .u8 = (const uint8_t *)vocab};
    }
    /* A file must say what it holds to be opened again: fill the keys that
     * the model knows when the caller left them out. */
    if (md) memcpy(meta, md, sizeof *meta);
    else meta->n = 0;
    char nclass[16];
    snprintf(nclass, sizeof nclass, "%d", lethe_model_nclass(m));
    lethe_status s = LETHE_OK;
    if (!lethe_meta_get(meta, "format")) s = lethe_meta_set(meta, "format", "lethe");
    if (s == LETHE_OK && !lethe_meta_get(meta, "arch"))
        s = lethe_meta_set(meta, "arch", lethe_model_arch(m));
    if (s == LETHE_OK && !lethe_meta_get(meta, "nclass"))
        s = lethe_meta_set(meta, "nclass", nclass);
    /* A text model cannot be opened with the Fashion-MNIST default shape. */
    char shape[48];
    snprintf(shape, sizeof shape, "%d,%d,%d", m->in_c, m->in_h, m->in_w);
    if (s == LETHE_OK && m->tokens_in_x && !lethe_meta_get(meta, "in_shape"))
        s = lethe_meta_set(meta, "in_shape", shape);
    if (s == LETHE_OK) s = st_write(path, meta, out, n + (vocab != NULL));
    free(meta);
    free(out);
    return s;
}

lethe_status lethe_checkpoint_read_meta(const char *path, lethe_metadata *md)
{
    if (!md) return lethe_fail(LETHE_ERR_ARG, "checkpoint read_meta: NULL metadata");
    st_file f;
    lethe_status s = st_read(&f, path, 0);
    if (s == LETHE_OK) memcpy(md, &f.md, sizeof *md);
    st_free(&f);
    return s;
}

lethe_status lethe_checkpoint_load(lethe_model *m, const char *path, lethe_metadata *md)
{
    if (!m) return lethe_fail(LETHE_ERR_ARG, "checkpoint load: NULL model");
    st_file f;
    lethe_status s = st_read(&f, path, 1);
    if (s == LETHE_OK) s = load_into(m, &f);
    if (s == LETHE_OK && md) memcpy(md, &f.md, sizeof *md);
    st_free(&f);
    return s;
}

/* A whole decimal number in [lo, hi]; s ends at the number's end. */
static int parse_int(const char **s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(*s, &end, 10);
    if (end == *s || v < lo || v > hi) return -1;
    *out = (int)v;
    *s = end;
    return 0;
}

/* The input shape and class count of the metadata, with the Fashion-MNIST
 * defaults for files (e.g. made by PyTorch) that only name the arch. */
static lethe_status model_geometry(const st_file *f, int *c, int *h, int *w, int *nclass)
{
    *c = 1, *h = 28, *w = 28, *nclass = 10;
    const char *in = lethe_meta_get(&f->md, "in_shape");
    if (in) {
        const char *p = in;
        if (parse_int(&p, 1, 4096, c) || *p++ != ',' || parse_int(&p, 1, 4096, h) ||
            *p++ != ',' || parse_int(&p, 1, 4096, w) || *p)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: metadata in_shape '%s' is not C,H,W",
                              f->label, in);
    }
    const char *nc = lethe_meta_get(&f->md, "nclass");
    if (nc) {
        const char *p = nc;
        if (parse_int(&p, 1, 100000, nclass) || *p)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: metadata nclass '%s' is not a positive "
                              "integer", f->label, nc);
    }
    return LETHE_OK;
}

lethe_status lethe_checkpoint_open(lethe_model **m, const char *path, lethe_metadata *md)
{
    if (!m) return lethe_fail(LETHE_ERR_ARG, "checkpoint open: NULL model pointer");
    *m = NULL;
    st_file f;
    lethe_status s = st_read(&f, path, 1);
    if (s != LETHE_OK) return s;
    lethe_model *model = NULL;
    int c, h, w, nclass;
    const char *arch = lethe_meta_get(&f.md, "arch");
    if (!arch) {
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: no 'arch' in the metadata", f.label);
        goto done;
    }
    if ((s = model_geometry(&f, &c, &h, &w, &nclass)) != LETHE_OK) goto done;
    s = lethe_model_create(&model, arch, c, h, w, nclass);
    if (s != LETHE_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", lethe_last_error());
        s = lethe_fail(s, "%s: %s", f.label, why);
        goto done;
    }
    if ((s = load_into(model, &f)) != LETHE_OK) goto done;
    if (md) memcpy(md, &f.md, sizeof *md);
    *m = model;
    model = NULL;
done:
    if (model) lethe_model_free(model);
    st_free(&f);
    return s;
}
