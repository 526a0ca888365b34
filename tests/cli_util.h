/* Helpers shared by the tests that run the command line as a program
 * (test_cli.c, test_tradeoff.c, test_resume.c, test_gen_cli.c): scratch
 * paths, whole files, a tiny MNIST-format data set, and running
 * $LETHE_BIN. Each test file keeps its scratch files in a folder of its own
 * under test_tmpdir(), named by `sub` ("cli", "tradeoff", ...), so that its
 * checks for left-over files see only its own. */
#ifndef LETHE_TEST_CLI_UTIL_H
#define LETHE_TEST_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lethe.h"

/* A path in the caller's buffer: test_path's ring of 8 is too short for the
 * paths these tests hold at once. */
typedef char cli_t_path_buf[400];

/* test_tmpdir()/sub/name into buf (returns buf). */
const char *cli_t_path(cli_t_path_buf buf, const char *sub, const char *name);
/* Make test_tmpdir()/sub; 1 if it exists afterwards. */
int cli_t_mkdir(const char *sub);
int cli_t_exists(const char *path);
/* The whole file, NUL-terminated (caller frees; NULL if unreadable); its
 * length in *len when len is not NULL. */
char *cli_t_slurp(const char *path, size_t *len);
/* Write len bytes to path; 1 on success. */
int cli_t_spit(const char *path, const void *data, size_t len);
/* The parsed JSON file (cJSON_Delete it; NULL if unreadable or not JSON). */
cJSON *cli_t_load_json(const char *path);
/* obj.name as a number, NAN if absent or not a number. */
double cli_t_jnum(const cJSON *obj, const char *name);
/* Newlines in s (0 for NULL). */
int cli_t_count_lines(const char *s);
/* Files in test_tmpdir()/sub whose name contains ".tmp" (−1: no folder). */
int cli_t_temp_files_left(const char *sub);
/* A whole PNG: the signature, an IHDR first and an IEND last. */
int cli_t_is_png(const char *path);

/* An IDX file: big-endian magic and dims (ndim ≤ 3), then len bytes of
 * data; through gzip when gz is set. 1 on success. */
int cli_t_write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndim,
                    const uint8_t *data, size_t len, int gz);
/* 10 random binary class prototypes proto (10, side·side), 30% of the
 * pixels 255, drawn from r. */
void cli_t_make_protos(uint8_t *proto, int side, lethe_rng *r);
/* n images px (n, side, side) with labels y (n) = i % 10: prototype y[i]
 * with 5% of its pixels flipped, the flips drawn from r. */
void cli_t_make_images(uint8_t *px, uint8_t *y, int n, int side, const uint8_t *proto,
                       lethe_rng *r);

/* The MNIST-format folder written by cli_t_write_mnist. */
typedef struct {
    int ntrain, ntest;      /* images per split */
    int side;               /* H = W */
    uint64_t proto_seed;    /* seed of the prototypes */
    /* Seeds of the pixel flips of each split; 0: the stream of the step
     * before goes on (prototypes, then train, then test). */
    uint64_t train_seed, test_seed;
    int gz_train, gz_test;  /* gzip that split's files (names end in ".gz") */
} cli_t_mnist;

/* Write the four files of an MNIST folder dir (made if missing); a raw
 * image file goes through lethe_idx_write_images. 1 on success. */
int cli_t_write_mnist(const char *dir, const cli_t_mnist *spec);

/* 1 if $LETHE_BIN names a file; otherwise a test failure that says how to
 * set it, and 0 (the caller skips the test). */
int cli_t_have_bin(void);
/* Run `$LETHE_BIN args` through the shell, stdout and stderr to files in
 * test_tmpdir()/sub; their text in *out and *err (caller frees; either may
 * be NULL: not kept). The exit status, or −1 if it did not exit normally
 * (or LETHE_BIN is unset). */
int cli_t_run(const char *sub, const char *args, char **out, char **err);
/* Bad input: `lethe args` must exit non-zero with exactly one stderr line
 * "lethe …" that contains needle (unless NULL), and, when quiet_stdout,
 * print nothing on stdout. Failures are reported at file:line. */
void cli_t_expect_fail_at(const char *file, int line, const char *sub, const char *args,
                          const char *needle, int quiet_stdout);

#endif
