/*
 * The names of the layer kernels, once per kernel set (kernels.h).
 *
 * The files that implement layers.h, conv_direct.h and winograd.h (the
 * Makefile's KERN_SRC) are compiled once per kernel set, each time with
 * that set's instruction-set flags and -DNN_KSET=<set>. Inside such an
 * object every kernel function is renamed here with the set's suffix
 * (nn_relu_forward → nn_relu_forward_avx2), so the sets link side by side
 * and call only their own kind; kernels.c defines the plain names, which
 * call the active set's. A kernel function missing from this list keeps
 * its plain name in every set's object and the link fails with a multiple
 * definition: the list cannot silently fall behind.
 *
 * NN_KERNEL_TABLE(X) lists the kernels called from outside the sets (the
 * model, the tests), X(name) each: kernels.c makes each set's table and
 * the plain-named wrappers from it.
 */
#ifndef LETHE_NN_KERNEL_NAMES_H
#define LETHE_NN_KERNEL_NAMES_H

#define NN_KERNEL_TABLE(X)                                                   \
    X(nn_linear_forward) X(nn_linear_backward)                               \
    X(nn_linear_forward_ex) X(nn_linear_backward_ex)                         \
    X(nn_conv2d_workspace) X(nn_conv2d_takes_affine)                         \
    X(nn_conv2d_forward) X(nn_conv2d_backward)                               \
    X(nn_conv2d_forward_ex) X(nn_conv2d_backward_ex)                         \
    X(nn_maxpool_forward) X(nn_maxpool_backward)                             \
    X(nn_gap_forward) X(nn_gap_backward) X(nn_gap_backward_ex)               \
    X(nn_relu_forward) X(nn_relu_backward) X(nn_relu_mask)                   \
    X(nn_add_forward) X(nn_add_backward)                                     \
    X(nn_add_forward_ex) X(nn_add_backward_ex) X(nn_add_bn_forward)          \
    X(nn_batchnorm_forward) X(nn_batchnorm_backward)                         \
    X(nn_batchnorm_forward_ex) X(nn_batchnorm_backward_ex)                   \
    X(nn_batchnorm_backward_sums)                                            \
    X(nn_mse)                                                                \
    X(nn_groupnorm_forward) X(nn_groupnorm_backward)                         \
    X(nn_silu_forward) X(nn_silu_backward)                                   \
    X(nn_upsample2_forward) X(nn_upsample2_backward)                         \
    X(nn_concat_forward) X(nn_concat_backward)                               \
    X(nn_timestep_embed)                                                     \
    X(nn_label_embed_forward) X(nn_label_embed_backward)                     \
    X(nn_bcast_add_forward) X(nn_bcast_add_backward)                         \
    X(nn_gelu_forward) X(nn_gelu_backward) X(nn_attention_softmax)           \
    X(nn_attention_softmax_backward) X(nn_vexpf) X(nn_verff)

#define NN_KNAME_(f, set) f##_##set
#define NN_KNAME(f, set) NN_KNAME_(f, set)

#ifdef NN_KSET
/* The table's kernels. */
#define nn_linear_forward NN_KNAME(nn_linear_forward, NN_KSET)
#define nn_linear_backward NN_KNAME(nn_linear_backward, NN_KSET)
#define nn_linear_forward_ex NN_KNAME(nn_linear_forward_ex, NN_KSET)
#define nn_linear_backward_ex NN_KNAME(nn_linear_backward_ex, NN_KSET)
#define nn_conv2d_workspace NN_KNAME(nn_conv2d_workspace, NN_KSET)
#define nn_conv2d_takes_affine NN_KNAME(nn_conv2d_takes_affine, NN_KSET)
#define nn_conv2d_forward NN_KNAME(nn_conv2d_forward, NN_KSET)
#define nn_conv2d_backward NN_KNAME(nn_conv2d_backward, NN_KSET)
#define nn_conv2d_forward_ex NN_KNAME(nn_conv2d_forward_ex, NN_KSET)
#define nn_conv2d_backward_ex NN_KNAME(nn_conv2d_backward_ex, NN_KSET)
#define nn_maxpool_forward NN_KNAME(nn_maxpool_forward, NN_KSET)
#define nn_maxpool_backward NN_KNAME(nn_maxpool_backward, NN_KSET)
#define nn_gap_forward NN_KNAME(nn_gap_forward, NN_KSET)
#define nn_gap_backward NN_KNAME(nn_gap_backward, NN_KSET)
#define nn_gap_backward_ex NN_KNAME(nn_gap_backward_ex, NN_KSET)
#define nn_relu_forward NN_KNAME(nn_relu_forward, NN_KSET)
#define nn_relu_backward NN_KNAME(nn_relu_backward, NN_KSET)
#define nn_relu_mask NN_KNAME(nn_relu_mask, NN_KSET)
#define nn_add_forward NN_KNAME(nn_add_forward, NN_KSET)
#define nn_add_backward NN_KNAME(nn_add_backward, NN_KSET)
#define nn_add_forward_ex NN_KNAME(nn_add_forward_ex, NN_KSET)
#define nn_add_bn_forward NN_KNAME(nn_add_bn_forward, NN_KSET)
#define nn_add_backward_ex NN_KNAME(nn_add_backward_ex, NN_KSET)
#define nn_batchnorm_forward NN_KNAME(nn_batchnorm_forward, NN_KSET)
#define nn_batchnorm_backward NN_KNAME(nn_batchnorm_backward, NN_KSET)
#define nn_batchnorm_forward_ex NN_KNAME(nn_batchnorm_forward_ex, NN_KSET)
#define nn_batchnorm_backward_ex NN_KNAME(nn_batchnorm_backward_ex, NN_KSET)
#define nn_batchnorm_backward_sums NN_KNAME(nn_batchnorm_backward_sums, NN_KSET)
#define nn_mse NN_KNAME(nn_mse, NN_KSET)
#define nn_groupnorm_forward NN_KNAME(nn_groupnorm_forward, NN_KSET)
#define nn_groupnorm_backward NN_KNAME(nn_groupnorm_backward, NN_KSET)
#define nn_silu_forward NN_KNAME(nn_silu_forward, NN_KSET)
#define nn_silu_backward NN_KNAME(nn_silu_backward, NN_KSET)
#define nn_upsample2_forward NN_KNAME(nn_upsample2_forward, NN_KSET)
#define nn_upsample2_backward NN_KNAME(nn_upsample2_backward, NN_KSET)
#define nn_concat_forward NN_KNAME(nn_concat_forward, NN_KSET)
#define nn_concat_backward NN_KNAME(nn_concat_backward, NN_KSET)
#define nn_timestep_embed NN_KNAME(nn_timestep_embed, NN_KSET)
#define nn_label_embed_forward NN_KNAME(nn_label_embed_forward, NN_KSET)
#define nn_label_embed_backward NN_KNAME(nn_label_embed_backward, NN_KSET)
#define nn_bcast_add_forward NN_KNAME(nn_bcast_add_forward, NN_KSET)
#define nn_bcast_add_backward NN_KNAME(nn_bcast_add_backward, NN_KSET)
#define nn_gelu_forward NN_KNAME(nn_gelu_forward, NN_KSET)
#define nn_gelu_backward NN_KNAME(nn_gelu_backward, NN_KSET)
#define nn_attention_softmax NN_KNAME(nn_attention_softmax, NN_KSET)
#define nn_attention_softmax_backward NN_KNAME(nn_attention_softmax_backward, NN_KSET)
#define nn_vexpf NN_KNAME(nn_vexpf, NN_KSET)
#define nn_verff NN_KNAME(nn_verff, NN_KSET)
/* Called only from inside a set (conv2d.c). */
#define conv_direct NN_KNAME(conv_direct, NN_KSET)
#define conv_direct_rows NN_KNAME(conv_direct_rows, NN_KSET)
#define conv_direct_dw NN_KNAME(conv_direct_dw, NN_KSET)
#define conv_direct_pack NN_KNAME(conv_direct_pack, NN_KSET)
#define wino_weights NN_KNAME(wino_weights, NN_KSET)
#define wino_weights_adjoint NN_KNAME(wino_weights_adjoint, NN_KSET)
#define wino_input NN_KNAME(wino_input, NN_KSET)
#define wino_input_adjoint NN_KNAME(wino_input_adjoint, NN_KSET)
#define wino_output NN_KNAME(wino_output, NN_KSET)
#define wino_output_adjoint NN_KNAME(wino_output_adjoint, NN_KSET)
#endif

#endif
