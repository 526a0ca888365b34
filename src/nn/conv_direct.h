/*
 * Direct convolution on a padded grid, one register-tiled kernel
 * (conv_direct.c): for o < nout, j < n
 *     out[o·ocs + j] = Σ_{c < nin} Σ_{k < kk} W(c, o, k) · in[c·ics + toff[k] + j]
 * (overwrites out), the weights W packed by conv_direct_pack. conv2d.c
 * runs a stride-1 conv's forward on its padded planes this way (toff: the
 * kernel positions' shifts), a stride-2 conv's on its phase planes, and
 * the input gradient as the same sum over the output gradient with the
 * shifts reversed. in must be readable at every index the sum names.
 */
#ifndef LETHE_NN_CONV_DIRECT_H
#define LETHE_NN_CONV_DIRECT_H

#include <stddef.h>

#include "nn/kernel_names.h"   /* in a kernel set's objects: the set's names */

/* Floats in one vector of this kernel set's direct kernel (0: plain
 * loops): conv_direct_rows runs whole rows of a plane as its tiles, junk
 * columns left out, when the plane's width is a multiple of it. */
#if defined(__AVX512F__)
#define CONV_DIRECT_VW 16
#elif defined(__AVX2__) && defined(__FMA__)
#define CONV_DIRECT_VW 8
#else
#define CONV_DIRECT_VW 0
#endif

/* The weights of a call, packed in the order its tiles read them:
 * W(c, o, k) = src[c·sc + o·so + tap[k]] (c < nin, o < nout, k < kk) into
 * wp, nin·nout·kk floats. Output channel o's weights start at o·nin·kk:
 * those of a tile of r channels o0 … o0 + r − 1 (r the set's tile height,
 * or 1 for the last channels) run (c, k, channel), r floats a position,
 * one stream instead of kk arrays read a few floats at a time (20% faster
 * kernel at 64 channels, measured), and the same products in the same
 * order: the bits do not change. */
void conv_direct_pack(float *wp, int nin, int nout, int kk, const float *src, size_t sc, size_t so,
                      const size_t *tap);

void conv_direct(float *out, size_t ocs, int nout, int n, const float *in, size_t ics, int nin,
                 const size_t *toff, const float *wp, int kk);

/* The same sums at the columns j = y·rs + x (y < rows, x < w) of a grid
 * with rows of stride rs only: a plane without the junk columns between
 * its rows, which conv_direct over the span ((rows − 1)·rs + w columns)
 * computes too. Each value has conv_direct's bits (the same chain of
 * fused multiply-adds); the columns between rows are left as they were. */
void conv_direct_rows(float *out, size_t ocs, int nout, int rows, int w, size_t rs,
                      const float *in, size_t ics, int nin, const size_t *toff, const float *wp,
                      int kk);

/* The weight gradient the same way, for convs with few input channels
 * (a network's first layer, where it is a long, thin product):
 *     dwt[(c·kk + k)·nout + o] += Σ_{j < n} in[c·ics + toff[k] + j] · t[o·ocs + j]
 * for c < nin, k < kk, o < nout: each sum accumulated in registers over j,
 * then added in a fixed order. */
void conv_direct_dw(float *dwt, int nout, int n, const float *in, size_t ics, int nin,
                    const size_t *toff, int kk, const float *t, size_t ocs);

#endif
