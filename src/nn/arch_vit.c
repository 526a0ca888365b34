/* vit: a Vision Transformer (Dosovitskiy et al. 2021) with timm's
 * VisionTransformer names, sized by vit_cfg. vit-tiny, the default, is
 * sized for two cores: patch 4 (28×28 → 49 tokens, 32×32 → 64), width 64,
 * 4 blocks of 4 heads, MLP 128; 0.2M parameters.
 *
 *   x    = patch_embed.proj(img) as tokens (conv k = stride = patch)
 *   x    = [cls_token, x] + pos_embed
 *   x    = x + blocks.i.attn.proj(attention(blocks.i.attn.qkv(blocks.i.norm1(x))))
 *   x    = x + blocks.i.mlp.fc2(GELU(blocks.i.mlp.fc1(blocks.i.norm2(x))))
 *   out  = head(norm(x)[0])
 *
 * Layer norms eps 1e-6 (timm's), exact GELU, qkv with bias. */
#include <stdio.h>

#include "core/fail.h"
#include "nn/model.h"

typedef struct {
    int patch, dim, depth, heads, mlp;
} vit_cfg;

static const vit_cfg vit_tiny = {4, 64, 4, 4, 128};

/* One pre-norm block, blocks.i.* (text-transformer's too: arch_text.c). */
int nn_add_vit_block(lethe_model *m, int i, int x, int dim, int heads, int mlp)
{
    const vit_cfg cc = {0, dim, 0, heads, mlp}, *c = &cc;
    char a[NN_NAME_LEN], b[NN_NAME_LEN];
    snprintf(a, sizeof a, "blocks.%d.norm1", i);
    int h = nn_add_layernorm(m, a, x);
    snprintf(a, sizeof a, "blocks.%d.attn.qkv", i);
    h = nn_add_attention(m, nn_add_token_linear(m, a, h, 3 * c->dim), c->heads, 0);
    snprintf(a, sizeof a, "blocks.%d.attn.proj", i);
    x = nn_add_sum(m, x, nn_add_token_linear(m, a, h, c->dim));
    snprintf(a, sizeof a, "blocks.%d.norm2", i);
    snprintf(b, sizeof b, "blocks.%d.mlp.fc1", i);
    h = nn_add_gelu(m, nn_add_token_linear(m, b, nn_add_layernorm(m, a, x), c->mlp));
    snprintf(b, sizeof b, "blocks.%d.mlp.fc2", i);
    return nn_add_sum(m, x, nn_add_token_linear(m, b, h, c->dim));
}

static lethe_status vit(lethe_model *m, const vit_cfg *c)
{
    if (m->in_h % c->patch || m->in_w % c->patch)
        return lethe_fail(LETHE_ERR_ARG, "%s: input %dx%d is not a whole number of %dx%d "
                          "patches", m->arch, m->in_h, m->in_w, c->patch, c->patch);
    int x = nn_add_input(m);
    x = nn_add_conv(m, "patch_embed.proj", x, c->dim, c->patch, c->patch, 0, 1);
    x = nn_add_pos_embed(m, "pos_embed", nn_add_cls_token(m, "cls_token", nn_add_tokens(m, x)));
    for (int i = 0; i < c->depth; i++) x = nn_add_vit_block(m, i, x, c->dim, c->heads, c->mlp);
    x = nn_add_take_first(m, nn_add_layernorm(m, "norm", x));
    if (nn_add_linear(m, "head", x, m->nclass) < 0)
        return lethe_fail(LETHE_ERR_ARG, "%s: graph not built", m->arch);
    return LETHE_OK;
}

lethe_status nn_build_vit_tiny(lethe_model *m) { return vit(m, &vit_tiny); }
