/*
 * Run states, the low level: what the training and unlearning loops write
 * to be resumed (lethe_run_control in lethe.h), as safetensors files
 * (io/safetensors.c does the bytes and the atomic write).
 *
 * A run state holds flat F32 tensors and exact-text metadata:
 *     format  "lethe-run-state"      version  "1"
 *     kind    "train" | "unlearn"    step, total (steps done / planned)
 *     config  the settings that must match to resume ("key=value …")
 *     threads OpenMP threads of the run that wrote it (results depend on it)
 * Integers are decimal, 64-bit words hex, floats and doubles C99 hex floats
 * (%a), so every value reads back bit for bit. Index arrays (data orders)
 * are stored as F32, exact below 2^24.
 *
 * The reader bounds everything it reads: a missing key or tensor, another
 * dtype or length, an integer out of range or a data order that is not a
 * permutation is LETHE_ERR_FORMAT naming the file and the entry.
 */
#ifndef LETHE_IO_RUNSTATE_H
#define LETHE_IO_RUNSTATE_H

#include "io/safetensors.h"

#define RS_FORMAT "lethe-run-state"
#define RS_VERSION "1"
#define RS_MAX_TENSORS 16
#define RS_MAX_EXACT_INT 16777216L    /* 2^24: the largest index F32 holds exactly */

typedef struct {
    const char *path;
    lethe_metadata md;
    int n;
    st_out t[RS_MAX_TENSORS];       /* views into the caller's arrays, or into owned[] */
    float *owned[RS_MAX_TENSORS];   /* conversions made here (freed by rs_writer_free) */
    lethe_status err;               /* the first failure of a put/set, reported by rs_write */
} rs_writer;

/* Start a state of `kind` after `step` of `total` steps, for `config`. */
void rs_writer_init(rs_writer *w, const char *path, const char *kind, long step, long total,
                    const char *config);
void rs_set_text(rs_writer *w, const char *key, const char *value);
void rs_set_long(rs_writer *w, const char *key, long v);
void rs_set_double(rs_writer *w, const char *key, double v);
/* k 64-bit words as hex, space-separated. */
void rs_set_words(rs_writer *w, const char *key, const uint64_t *v, int k);
/* A view of n floats (not copied: keep data alive until rs_write). rows > 0
 * stores shape (rows, n / rows). */
void rs_put_floats(rs_writer *w, const char *name, const float *data, size_t n, size_t rows);
/* Copies converted to F32: indices (each in [0, 2^24)) and bytes. */
void rs_put_ints(rs_writer *w, const char *name, const int32_t *data, size_t n);
void rs_put_bytes(rs_writer *w, const char *name, const uint8_t *data, size_t n);
/* θ ("theta"), the buffers ("buffers") and the metadata arch. */
void rs_put_model(rs_writer *w, lethe_model *m);
/* Momentum / AdamW moments ("optim.m", "optim.v") and the step count. */
void rs_put_optim(rs_writer *w, const lethe_optim *o);
/* A batch stream ("data", "forget" or "retain"): its order
 * ("PREFIX.order") and its position, epoch and rng ("PREFIX.stream"). */
void rs_put_stream(rs_writer *w, const char *prefix, const lethe_stream *s);
/* Write atomically (the previous file at path stays until the rename). */
lethe_status rs_write(rs_writer *w);
void rs_writer_free(rs_writer *w);

typedef struct {
    st_file f;
    const char *label;
} rs_reader;

/* Read and check a state of `kind` whose config equals `config` (a
 * difference is LETHE_ERR_MISMATCH naming the first setting that differs). */
lethe_status rs_open(rs_reader *r, const char *path, const char *kind, const char *config);
void rs_close(rs_reader *r);
lethe_status rs_get_long(const rs_reader *r, const char *key, long lo, long hi, long *out);
lethe_status rs_get_double(const rs_reader *r, const char *key, double *out);
lethe_status rs_get_words(const rs_reader *r, const char *key, uint64_t *v, int k);
int rs_has(const rs_reader *r, const char *name);
/* Exactly n floats (rows > 0: shape (rows, n / rows)). */
lethe_status rs_get_floats(const rs_reader *r, const char *name, float *out, size_t n,
                           size_t rows);
/* n whole numbers in [lo, hi]. */
lethe_status rs_get_ints(const rs_reader *r, const char *name, int32_t *out, size_t n,
                         int32_t lo, int32_t hi);
lethe_status rs_get_bytes(const rs_reader *r, const char *name, uint8_t *out, size_t n,
                          uint8_t hi);
lethe_status rs_get_model(const rs_reader *r, lethe_model *m);
/* Into an optimiser initialised for the same kind and size. */
lethe_status rs_get_optim(const rs_reader *r, lethe_optim *o);
/* Into a stream initialised over the same subset: its order must be a
 * permutation of 0..n−1, its position at most n. */
lethe_status rs_get_stream(const rs_reader *r, const char *prefix, lethe_stream *s);

/* FNV-1a over n indices, for configs: the same subset in the same order. */
uint64_t rs_hash_ints(const int32_t *v, size_t n);
/* FNV-1a over θ and the buffers: the same starting model. */
uint64_t rs_hash_model(lethe_model *m);
#endif
