/* text-transformer: a small transformer encoder over token ids (issue 17),
 * sized for two cores: width 64, 2 pre-norm blocks of 4 heads, MLP 128;
 * about 0.1M parameters beside the V × 64 token table. Its input shape is
 * (V, 1, T): a vocabulary of V ids, T ids per example (lethe_dataset's
 * text sets); x holds the ids (lethe_model_set_tokens, or x as floats).
 * PyTorch names (tools/lethe_torch.py's TextTransformer), timm's block:
 *
 *   x    = embed(ids) + pos_embed                  (T, D); id 0 is padding
 *   x    = x + blocks.i.attn.proj(attention(blocks.i.attn.qkv(blocks.i.norm1(x))))
 *   x    = x + blocks.i.mlp.fc2(GELU(blocks.i.mlp.fc1(blocks.i.norm2(x))))
 *   out  = head(mean over the non-pad tokens of norm(x))
 *
 * The attention's keys are masked at padding; the mean pool reads the
 * non-pad tokens only, so padding changes nothing. Layer norms eps 1e-6,
 * exact GELU, qkv with bias (as vit-tiny's).
 *
 * text-bag, the baseline beside it: PyTorch's EmbeddingBag(mode="mean")
 * and a linear layer, out = head(mean over the non-pad tokens of
 * embed(ids)) (embed.weight (V, 64), head); no positions, no attention. */

#include "core/fail.h"
#include "nn/model.h"

typedef struct {
    int dim, depth, heads, mlp;
} text_cfg;

static const text_cfg text_small = {64, 2, 4, 128};

lethe_status nn_build_text_transformer(lethe_model *m)
{
    const text_cfg *c = &text_small;
    m->tokens_in_x = 1;
    /* Node 0, the input (ids, read by the embedding): backward stops there. */
    nn_add_input(m);
    int x = nn_add_token_embed(m, "embed", m->in_c, c->dim, m->in_w);
    x = nn_add_pos_embed(m, "pos_embed", x);
    for (int i = 0; i < c->depth; i++) x = nn_add_vit_block(m, i, x, c->dim, c->heads, c->mlp);
    x = nn_add_token_mean(m, nn_add_layernorm(m, "norm", x));
    if (nn_add_linear(m, "head", x, m->nclass) < 0)
        return lethe_fail(LETHE_ERR_ARG, "%s: graph not built", m->arch);
    return LETHE_OK;
}

lethe_status nn_build_text_bag(lethe_model *m)
{
    m->tokens_in_x = 1;
    nn_add_input(m);
    int x = nn_add_token_mean(m, nn_add_token_embed(m, "embed", m->in_c, text_small.dim, m->in_w));
    if (nn_add_linear(m, "head", x, m->nclass) < 0)
        return lethe_fail(LETHE_ERR_ARG, "%s: graph not built", m->arch);
    return LETHE_OK;
}
