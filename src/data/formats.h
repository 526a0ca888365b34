/* Readers of the data formats inside the library, beyond the public
 * lethe_idx_* and lethe_cifar_load calls: what one's own data sets
 * ("idx", "idx:K", "cifar:K" in lethe_dataset_load) are read with. */
#ifndef LETHE_DATA_FORMATS_H
#define LETHE_DATA_FORMATS_H

#include "lethe.h"

/* Images of 3 dimensions (N, H, W; magic 0x803: C = 1) or 4 (magic 0x804:
 * (N, H, W, C) when the last size is 1 to 3, else (N, C, H, W) when the
 * first after N is), raw or gzip, into a fresh (N, C, H, W) buffer *out
 * (the caller frees it). */
lethe_status idx_read_images_any(const char *path, uint8_t **out, int *n, int *c, int *h,
                                 int *w);

/* CIFAR binary batches (1 label byte, 3 × 32 × 32 pixel bytes per record)
 * from dir: CIFAR-10 itself (own 0: nclass 10, data_batch_1..5.bin all
 * required, its published statistics) or one's own set (own 1: nclass
 * classes, data_batch_1.bin and any of 2..5 that follow, named
 * "cifar:K", normalised as (p/255 − 0.5)/0.5). A label ≥ nclass is an
 * error naming the file and the record. */
lethe_status cifar_load_classes(lethe_dataset *ds, const char *dir, int train, int nclass,
                                int own);

#endif
