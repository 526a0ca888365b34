/*
 * Safetensors, the low level: a bounds-checked reader that turns a file into
 * a validated list of tensor entries, and an atomic writer. Knows nothing of
 * models (src/io/checkpoint.c maps entries onto a lethe_model).
 *
 * Layout: u64 little-endian N, N bytes of JSON header, then the data block.
 *     {"__metadata__": {"k": "v", ...},
 *      "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}, ...}
 * Offsets are bytes relative to the data block; data is little-endian.
 */
#ifndef LETHE_IO_SAFETENSORS_H
#define LETHE_IO_SAFETENSORS_H

#include <stdint.h>

#include "lethe.h"

/* Dtypes Lethe reads (all converted to float) and writes (F32, I64; U8 for
 * bytes: a text model's vocabulary, "text.vocab"). */
typedef enum { ST_F32, ST_F64, ST_F16, ST_BF16, ST_I64, ST_U8 } st_dtype;

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20)   /* bytes of JSON we agree to parse */
#define ST_MAX_TENSORS 100000

typedef struct {
    const char *name;           /* owned by the st_file (its JSON tree) */
    st_dtype dtype;
    int ndim;                   /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t begin, end;          /* byte range in the data block, validated */
} st_entry;

typedef struct {
    char label[256];            /* file name, for messages */
    lethe_metadata md;
    int n;
    st_entry *t;                /* (n) in header order */
    st_entry **by_name;         /* (n) pointers into t, sorted by name */
    const uint8_t *data;        /* data block (data_size bytes); NULL if header only */
    size_t data_size;
    uint8_t *buf;               /* the bytes read (owned) */
    void *json;                 /* the parsed header (cJSON, owned) */
} st_file;

/* Read and validate `path`. with_data = 0 reads only the header (entries are
 * still checked against the file's size); 1 reads the data block too.
 * On failure *f is left empty (st_free is safe either way). */
lethe_status st_read(st_file *f, const char *path, int with_data);
/* Parse a whole file image held in memory (copied); label names it in messages. */
lethe_status st_parse(st_file *f, const uint8_t *bytes, size_t size, const char *label);
void st_free(st_file *f);
/* The entry called `name`, or NULL. */
const st_entry *st_find(const st_file *f, const char *name);
/* Convert an entry's numel values to float into out (numel floats). */
void st_entry_to_float(const st_file *f, const st_entry *e, float *out);
const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);

/* One tensor to write: F32 stores data as is, I64 stores llround(data[i]),
 * U8 stores the bytes u8. */
typedef struct {
    const char *name;
    st_dtype dtype;             /* ST_F32, ST_I64 or ST_U8 */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data;          /* (numel) F32 and I64 */
    const uint8_t *u8;          /* (numel) U8 */
} st_out;

/* Write tensors in the given order, the header padded with spaces to a
 * multiple of 8, through lethe_write_file_atomic (path.tmp.PID, fsync,
 * rename): on failure path is left as it was. md may be NULL. */
lethe_status st_write(const char *path, const lethe_metadata *md,
                      const st_out *t, int n);

#endif
