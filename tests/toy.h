/* A small labelled image set and pre-trained models for the unlearning
 * tests (test_unlearn.c, test_tradeoff.c). Each test file builds its own
 * images (toy_init); the rest is shared here. */
#ifndef LETHE_TEST_TOY_H
#define LETHE_TEST_TOY_H

#include "lethe.h"

#define TOY_BS 16

typedef struct {
    lethe_dataset ds;
    lethe_subset forget, retain, all;
} toy;

/* n images 1×hw×hw, label i % nclass; each class a random binary
 * prototype (from seed) with a share `flip` of its pixels flipped per
 * image. D_f: the first nf_max images of class 0; D_r: the first nr_max of
 * the others; all: every image. */
void toy_images(toy *t, int n, int nclass, int hw, uint64_t seed, float flip, size_t nf_max,
                size_t nr_max);
void toy_free(toy *t);
/* A model of `arch` trained for `epochs` on the whole toy set (NULL on error). */
lethe_model *toy_model(const toy *t, const char *arch, int epochs);
/* A fresh model with src's θ and buffers (NULL on error). */
lethe_model *toy_clone(const lethe_model *src, const toy *t);

#endif
