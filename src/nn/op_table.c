/*
 * The op table: each kind's row, defined in its op file. A kind without a
 * row is a build error here (the static assertion) and a test failure
 * (tests/test_ops.c checks every row's gradient).
 */
#include "nn/op.h"

extern const nn_op_desc nn_op_input, nn_op_conv, nn_op_linear, nn_op_relu, nn_op_maxpool,
    nn_op_gap, nn_op_bn, nn_op_add, nn_op_gn, nn_op_silu, nn_op_upsample, nn_op_concat,
    nn_op_temb, nn_op_lemb, nn_op_bcast_add, nn_op_tokens, nn_op_tlinear, nn_op_ln, nn_op_gelu,
    nn_op_attn, nn_op_matmul, nn_op_tokemb, nn_op_posemb, nn_op_cls, nn_op_tmean, nn_op_take0;

static const nn_op_desc *const table[] = {
    [NN_INPUT] = &nn_op_input,
    [NN_CONV] = &nn_op_conv,
    [NN_LINEAR] = &nn_op_linear,
    [NN_RELU] = &nn_op_relu,
    [NN_MAXPOOL] = &nn_op_maxpool,
    [NN_GAP] = &nn_op_gap,
    [NN_BN] = &nn_op_bn,
    [NN_ADD] = &nn_op_add,
    [NN_GN] = &nn_op_gn,
    [NN_SILU] = &nn_op_silu,
    [NN_UPSAMPLE] = &nn_op_upsample,
    [NN_CONCAT] = &nn_op_concat,
    [NN_TEMB] = &nn_op_temb,
    [NN_LEMB] = &nn_op_lemb,
    [NN_BCAST_ADD] = &nn_op_bcast_add,
    [NN_TOKENS] = &nn_op_tokens,
    [NN_TLINEAR] = &nn_op_tlinear,
    [NN_LN] = &nn_op_ln,
    [NN_GELU] = &nn_op_gelu,
    [NN_ATTN] = &nn_op_attn,
    [NN_MATMUL] = &nn_op_matmul,
    [NN_TOKEMB] = &nn_op_tokemb,
    [NN_POSEMB] = &nn_op_posemb,
    [NN_CLS] = &nn_op_cls,
    [NN_TMEAN] = &nn_op_tmean,
    [NN_TAKE0] = &nn_op_take0,
};

_Static_assert(sizeof table / sizeof table[0] == NN_OP_COUNT, "an op kind without a row");

const nn_op_desc *nn_op_get(nn_op op)
{
    return (unsigned)op < NN_OP_COUNT ? table[op] : NULL;
}

const char *nn_op_name(nn_op op)
{
    const nn_op_desc *d = nn_op_get(op);
    return d ? d->name : "?";
}
