/*
 * Winograd F(2×2, 3×3) transforms for 3×3, stride-1, pad-1 convolutions
 * (Lavin & Gray 2016). Output tile (2×2) i, j of a plane comes from the
 * 4×4 input tile at padded rows 2i..2i+3, columns 2j..2j+3:
 *     Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
 * so a layer is 16 independent products, one per position of the 4×4
 * transformed tile: M_p (OC, T) = U_p (OC, C) · V_p (C, T) over the T
 * tiles of a chunk — 16 multiply-adds per tile and channel pair instead
 * of 36. Every map is linear, so backward is the adjoints of the same maps
 * (exact, no approximation beyond float rounding):
 *     dM = A dY Aᵀ,  dU_p += dM_p · V_pᵀ,  dV_p = U_pᵀ · dM_p,
 *     dd = B dV Bᵀ (added where the input tiles overlap),  dg = Gᵀ dU G.
 * Layouts: U, dU (16, OC, C); V, dV (16, C, T); M, dM (16, OC, T) with
 * row stride T and positions `pos` floats apart (at least C·T or OC·T;
 * conv2d.c pads it so that the 16 positions, which the transforms read
 * and write as 16 streams, do not fall in one cache set); planes as
 * conv2d.c pads them (rows of wp floats).
 */
#ifndef LETHE_NN_WINOGRAD_H
#define LETHE_NN_WINOGRAD_H

#include <stddef.h>

#include "nn/kernel_names.h"   /* in a kernel set's objects: the set's names */

/* U (16, OC, C) ← G g Gᵀ of every w (OC, C, 3, 3) kernel. */
void wino_weights(float *U, const float *w, int oc, int c);

/* dw (OC, C, 3, 3) += Gᵀ dU G, dU (16, OC, C) given as nblk partials
 * `stride` floats apart (summed in order); output channels [o0, o1). */
void wino_weights_adjoint(float *dw, const float *dU, size_t stride, int nblk, int oc, int c,
                          int o0, int o1);

/* Tiles: a plane of OH × OW outputs has th = ⌈OH/2⌉ rows of tx = ⌈OW/2⌉ + 1
 * tiles, the last of each row junk; tile u = i·tx + j. Planes (input
 * padded by one, 2·th + 2 rows of wp = 2·tx floats; output 2·th rows of
 * the same length) are stored with their even rows first and their odd
 * rows `odd` floats later, so that tile u reads and writes at 2u in both
 * halves (conv_winograd.c). Each input half has 2 floats of slack (the
 * last junk tile reads past its row). Tile u of sample i of a chunk is
 * column t0 + u of V and M, t0 = i·tiles. */

/* V (16, C, T) at columns t0 … ← Bᵀ d B of one sample's C padded planes
 * P (pplane floats apart). */
void wino_input(float *V, size_t pos, int c, int T, int t0, const float *P, size_t pplane, int wp,
                size_t odd, int tiles);

/* dP (C planes pplane apart, zeroed by the caller) += B dV Bᵀ of one
 * sample's tiles, added where tiles overlap; dV is overwritten. */
void wino_input_adjoint(float *dP, size_t pplane, int wp, size_t odd, float *dV, size_t pos, int c,
                        int T, int t0, int tiles);

/* t (OC planes tplane apart) ← Aᵀ M A. */
void wino_output(float *t, size_t tplane, size_t odd, const float *M, size_t pos, int oc, int T,
                 int t0, int tiles);

/* dM (16, OC, T) at columns t0 … ← A dY Aᵀ of one sample's output
 * gradient t (laid out as wino_output writes it; zero outside the output). */
void wino_output_adjoint(float *dM, size_t pos, const float *t, size_t tplane, size_t odd, int oc,
                         int T, int t0, int tiles);

#endif
