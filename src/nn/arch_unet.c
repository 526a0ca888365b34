/* unet: the class-conditional DDPM noise predictor ε_θ(x_t, t, y)
 * (PROTOCOL.md "Generation"; Ho et al. 2020 with classifier-free guidance's
 * null class, Ho & Salimans 2022), sized for 28×28 Fashion-MNIST on two
 * cores: widths 16 @28, 32 @14, 64 @7, ~186k parameters, ~55 MFLOP per
 * image forward (the suggested 32/64/64 widths cost ~176 MFLOP).
 *
 *   emb  = time_embed(sinusoid_64(t)) + label_embed[y]          (N, 128)
 *          time_embed = Linear(64,128) → SiLU → Linear(128,128);
 *          label_embed: nclass + 1 rows, row nclass the null class
 *   h0   = conv_in(x)                                  16 @ H
 *   s0   = down.0.res(h0)                              16 @ H    (skip)
 *   s1   = down.1.res(down.0.downsample(s0))           32 @ H/2  (skip)
 *   mid  = mid.res(down.1.downsample(s1))              64 @ H/4
 *   u0   = up.0.res(cat(upsample(mid), s1))            32 @ H/2
 *   u1   = up.1.res(cat(upsample(u0), s0))             16 @ H
 *   out  = conv_out(SiLU(norm_out(u1)))                 C @ H
 *
 * res(in→out): norm1 (GroupNorm 8) + SiLU → conv1 3×3 → + emb_proj(SiLU(emb))
 * broadcast over pixels → norm2 + SiLU → conv2 3×3, plus x (or skip, a 1×1
 * conv, when in ≠ out). Downsampling: 3×3 conv, stride 2. Every conv and
 * linear has a bias (PyTorch's default). */
#include <stdio.h>

#include "nn/model.h"
#include "core/fail.h"

#define UNET_TDIM 64     /* sinusoidal timestep features */
#define UNET_EDIM 128    /* embedding width */
#define UNET_GROUPS 8    /* group norm channel groups */

/* "prefix.name" in buf (NN_NAME_LEN). */
static const char *join(char *buf, const char *prefix, const char *name)
{
    snprintf(buf, NN_NAME_LEN, "%s.%s", prefix, name);
    return buf;
}

static int conv3(lethe_model *m, const char *name, int in, int oc, int stride)
{
    return nn_add_conv(m, name, in, oc, 3, stride, 1, 1);
}

/* The residual block; emb is SiLU(emb) (N, EDIM), shared by all blocks. */
static int res_block(lethe_model *m, const char *prefix, int x, int emb, int out)
{
    if (x < 0) return -1;
    char b[NN_NAME_LEN];
    int h = nn_add_groupnorm(m, join(b, prefix, "norm1"), x, UNET_GROUPS, 1);
    h = conv3(m, join(b, prefix, "conv1"), h, out, 1);
    h = nn_add_bcast_add(m, h, nn_add_linear(m, join(b, prefix, "emb_proj"), emb, out));
    h = nn_add_groupnorm(m, join(b, prefix, "norm2"), h, UNET_GROUPS, 1);
    h = conv3(m, join(b, prefix, "conv2"), h, out, 1);
    const int sc = m->nodes[x].c == out ? x : nn_add_conv(m, join(b, prefix, "skip"), x, out,
                                                          1, 1, 0, 1);
    return (h < 0 || sc < 0) ? -1 : nn_add_sum(m, h, sc);
}

lethe_status nn_build_unet(lethe_model *m)
{
    if (m->in_h % 4 || m->in_w % 4)
        return lethe_fail(LETHE_ERR_ARG, "unet: input %dx%d must be divisible by 4 "
                          "(two downsamplings)", m->in_h, m->in_w);
    static const int width[3] = {16, 32, 64};
    int x = nn_add_input(m);
    /* Conditioning. */
    int e = nn_add_temb(m, UNET_TDIM);
    e = nn_add_linear(m, "time_embed.0", e, UNET_EDIM);
    e = nn_add_linear(m, "time_embed.2", nn_add_silu(m, e), UNET_EDIM);
    e = nn_add_sum(m, e, nn_add_lemb(m, "label_embed", m->nclass + 1, UNET_EDIM));
    const int emb = nn_add_silu(m, e);
    /* Down. */
    int h = conv3(m, "conv_in", x, width[0], 1);
    const int s0 = res_block(m, "down.0.res", h, emb, width[0]);
    h = conv3(m, "down.0.downsample", s0, width[0], 2);
    const int s1 = res_block(m, "down.1.res", h, emb, width[1]);
    h = conv3(m, "down.1.downsample", s1, width[1], 2);
    h = res_block(m, "mid.res", h, emb, width[2]);
    /* Up. */
    h = res_block(m, "up.0.res", nn_add_concat(m, nn_add_upsample(m, h), s1), emb, width[1]);
    h = res_block(m, "up.1.res", nn_add_concat(m, nn_add_upsample(m, h), s0), emb, width[0]);
    h = nn_add_groupnorm(m, "norm_out", h, UNET_GROUPS, 1);
    if (conv3(m, "conv_out", h, m->in_c, 1) < 0)
        return lethe_fail(LETHE_ERR_ARG, "unet: graph not built");
    return LETHE_OK;
}
