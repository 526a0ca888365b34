/*
 * Training-time augmentation of image batches: the standard CIFAR recipe
 * (He et al. 2016, §4.2): each image padded with AUG_PAD zero pixels on
 * every side, a random H × W crop of that taken, and the crop mirrored
 * left-right with probability 1/2. Internal to the library: the training
 * loop calls it when lethe_train_config.augment is set.
 */
#ifndef LETHE_DATA_AUGMENT_H
#define LETHE_DATA_AUGMENT_H

#include <stdint.h>

#include "lethe.h"

#define AUG_PAD 4

/* One image's draw: the crop's top-left corner (dy, dx) in the padded
 * image, each uniform in 0..2·AUG_PAD (AUG_PAD: no shift), and whether
 * the crop is mirrored. */
typedef struct { int dy, dx, flip; } aug_draw;

/* The next draw from rng, in this order: dy = below(9), dx = below(9),
 * flip = below(2). */
aug_draw aug_draw_next(lethe_rng *rng);

/* As lethe_dataset_batch (normalised images of idx[0..n) into x (n, C, H,
 * W), labels into y), each image cropped and mirrored by its draw, the
 * draws taken from rng in image order (so the batch depends on rng's
 * state alone, not on the thread count). Output pixel (c, r, q) is the
 * stored byte at row r + dy − AUG_PAD, column q' + dx − AUG_PAD with q' =
 * W − 1 − q when mirrored (else q), or 0 outside the image: the padding is
 * a black pixel, normalised like any other ((0/255 − mean) / std), as
 * torchvision's RandomCrop(padding=4) before ToTensor and Normalize. */
void aug_dataset_batch(const lethe_dataset *ds, const int32_t *idx, int n, float *x,
                       int32_t *y, lethe_rng *rng);

/* The same with crop = 0: the draws as above (the same rng use), the
 * crop's corner ignored (dy = dx = AUG_PAD), only the mirror applied
 * (LETHE_AUGMENT_FLIP: for images where a shift loses what matters, such
 * as Fashion-MNIST's centred 28×28 items). */
void aug_dataset_batch_ex(const lethe_dataset *ds, const int32_t *idx, int n, float *x,
                          int32_t *y, lethe_rng *rng, int crop);

#endif
