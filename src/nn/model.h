/*
 * The model: a small graph of layer nodes over one flat θ.
 *
 * Every trainable tensor is a named view into θ (and its gradient into the
 * flat gradient vector at the same offset); running statistics live in a
 * second flat vector of buffers. Tensors are registered in PyTorch
 * state_dict order, with PyTorch's names and layouts, so checkpoints map
 * one-to-one. Activations for the largest batch are allocated once by
 * lethe_model_reserve; the step loop allocates nothing.
 */
#ifndef LETHE_NN_MODEL_H
#define LETHE_NN_MODEL_H

#include "lethe.h"
#include "nn/layers.h"

#define NN_NAME_LEN 64
#define NN_MAX_NODES_LIMIT 100000   /* a bound, not a table size: the tables grow */
#define NN_MAX_VOCAB (1 << 20)      /* a text model's ids (data/text.h's TEXT_MAX_VOCAB) */
#define NN_MAX_TOKENS 4096          /* a text model's ids per example (TEXT_MAX_LEN) */

/* The op kinds. Each has one row in the op table (nn/op.h): its forward,
 * backward, initialisation, FLOPs, saved state and workspace, beside its
 * builder in its op file (op_*.c). */
typedef enum {
    NN_INPUT, NN_CONV, NN_LINEAR, NN_RELU, NN_MAXPOOL, NN_GAP, NN_BN, NN_ADD,
    /* Generation (the U-Net): group norm (+ SiLU), SiLU, ×2 upsampling,
     * channel concatenation (in0, in1), timestep and label embeddings (no
     * input node: they read the conditioning of lethe_model_set_cond),
     * and x (in0) + a per-channel vector (in1) broadcast over pixels. */
    NN_GN, NN_SILU, NN_UPSAMPLE, NN_CONCAT, NN_TEMB, NN_LEMB, NN_BCAST_ADD,
    /* Sequences (op_seq.c): a per-sample sequence (T, D) is a (1, T, D)
     * tensor. Image to tokens, per-token linear, layer norm, GELU,
     * multi-head attention, per-sample matmul, token embedding (reads
     * lethe_model_set_tokens), learnt positions, class token, mean over
     * tokens, the class token's row. */
    NN_TOKENS, NN_TLINEAR, NN_LN, NN_GELU, NN_ATTN, NN_MATMUL, NN_TOKEMB, NN_POSEMB, NN_CLS,
    NN_TMEAN, NN_TAKE0,
    NN_OP_COUNT
} nn_op;

typedef struct {
    nn_op op;
    int in0, in1;               /* input nodes (−1: none); flatten is implicit */
    int c, h, w;                /* per-sample output shape */
    size_t size;                /* c·h·w */
    int t_w, t_b;               /* weight/bias tensors (γ/β for BN), −1 if none */
    int t_rm, t_rv, t_nb;       /* BN running mean, var, batches tracked */
    int k, stride, pad;         /* conv and pool geometry */
    int ng;                     /* group norm: channel groups */
    int silu;                   /* group norm: SiLU applied to its output */
    int heads, causal;          /* attention */
    /* Fusion (nn_fuse): a ReLU, and after a conv's ReLU a max pool, run
     * inside the producer's kernel. The folded nodes keep their index (the
     * graph's edges point at them) but are skipped; `head` is the last node
     * of the fused group, whose out/dout hold the group's result. */
    int relu;                   /* the next node, a ReLU, is fused into this one */
    int pool;                   /* conv: the fused max-pool node after the ReLU, −1 none */
    int fold;                   /* ≥ 0: computed by node `fold`, skipped here */
    int head;                   /* this node's group result (itself when unfused) */
    float *out;                 /* (N, c, h, w); NULL when folded away */
    float *dout;                /* (N, c, h, w); NULL when folded away or last */
    int32_t *arg;               /* max-pool argmax (N, c, h, w); label
                                   embedding: the labels of the forward (N) */
    float *mean, *istd;         /* BN μ and 1/σ per group (G, c); GN per
                                   sample and channel group (N, ng) */
    float *stats;               /* conv read only by a batch norm: its output
                                   planes' statistics (N, c, 3), or NULL */
    int bn_defer;               /* batch norm (nn_fuse): the last pass of its
                                   backward runs in the conv before it */
    float *bsum;                /* batch norm: mean(dy), mean(dy·xhat) (G, c, 2) */
    int bn_to_conv;             /* batch norm (nn_fuse): its group's only reader is
                                   a conv, which may normalise as it copies */
    int bn_to_add;              /* batch norm (nn_fuse), no ReLU: its only reader is
                                   a residual sum, which normalises as it adds */
    int bn_unwritten;           /* batch norm: the last forward left it to the conv
                                   or the sum after it */
    int dirty;                  /* dout holds gradient of this backward */
} nn_node;

struct lethe_model {
    char arch[32];
    int in_c, in_h, in_w, nclass;

    int ntensors, cap_tensors;  /* the tables grow as the builders add */
    lethe_tensor *tensors;      /* (cap_tensors) */
    char (*names)[NN_NAME_LEN]; /* (cap_tensors) */

    int nnodes, cap_nodes;
    nn_node *nodes;             /* (cap_nodes) */
    char build_err[160];        /* the first builder error, "" if none */

    float *theta, *grad;        /* (n) */
    size_t n;
    float *buffers;             /* (nbuf) running statistics */
    size_t nbuf;

    int max_batch;              /* activations sized for this many samples */
    float *arena;               /* every activation buffer, one allocation */
    float *ws;                  /* conv scratch, sized for the largest conv */
    size_t ws_size;
    const float *input;         /* x of the last forward (not owned) */
    float *dx;                  /* (last_n, C, H, W) receiving ∂L/∂x during
                                   lethe_model_backward_ex, else NULL (not owned) */
    const float *dfeat;         /* (last_n, features) added to the final layer's input
                                   gradient during lethe_model_backward_ex, else NULL */
    int last_n;                 /* batch size of the last forward */
    lethe_groups last_groups;
    lethe_bn_mode last_mode;
    const int32_t *cond_t, *cond_y; /* lethe_model_set_cond's arrays (N), for the
                                   next forward only (not owned) */
    /* Sequences: seq_t tokens per sample (the token embedding's, else
     * in_h); lethe_model_set_tokens's ids and mask (N, seq_t) for the
     * next forward (not owned), copied into tok and mask (max_batch,
     * seq_t; owned) for backward; mask_on: the last forward had a mask. */
    int seq_t;
    const int32_t *tok_in;
    const uint8_t *mask_in;
    int32_t *tok;
    uint8_t *mask;
    int mask_on;
    /* Text models (arch_text.c): x (N, T) holds the ids as floats when no
     * lethe_model_set_tokens came first (a lethe_dataset text batch); the
     * padding mask is then id ≠ 0. vocab: the vocabulary blob (data/text.h)
     * its checkpoint carries as the U8 tensor "text.vocab" (owned; NULL:
     * none). */
    int tokens_in_x;
    char *vocab;
    size_t vocab_len;
    double *prof;               /* NULL, or (2·nnodes) seconds spent per node, forward
                                   then backward, added up (bench_engine's profile) */
    int prof_cpu;               /* profile in this thread's CPU time, not wall time */
};

/* Builders used by the architecture files (arch_*.c), one in each op file
 * (op_*.c). Each returns the new node's index, or −1: an input that is −1
 * (an earlier builder failed), or a bad argument, recorded in
 * m->build_err (the first only), which lethe_model_create reports. */
int nn_add_input(lethe_model *m);
int nn_add_conv(lethe_model *m, const char *name, int in, int oc, int k,
                int stride, int pad, int bias);
int nn_add_linear(lethe_model *m, const char *name, int in, int out_f);
int nn_add_relu(lethe_model *m, int in);
int nn_add_maxpool(lethe_model *m, int in, int k, int stride);
int nn_add_gap(lethe_model *m, int in);
int nn_add_bn(lethe_model *m, const char *name, int in);
int nn_add_sum(lethe_model *m, int a, int b);
/* Generation layers: group norm with ng channel groups (γ = weight,
 * β = bias, PyTorch's GroupNorm names) and a fused SiLU when silu; SiLU;
 * ×2 nearest upsampling; channel concatenation [a, b]; the sinusoidal
 * embedding of the timesteps (N, d); a label table `name.weight` (rows, d)
 * looked up by the labels; x + v with v (N, C) broadcast over x's pixels. */
int nn_add_groupnorm(lethe_model *m, const char *name, int in, int ng, int silu);
int nn_add_silu(lethe_model *m, int in);
int nn_add_upsample(lethe_model *m, int in);
int nn_add_concat(lethe_model *m, int a, int b);
int nn_add_temb(lethe_model *m, int d);
int nn_add_lemb(lethe_model *m, const char *name, int rows, int d);
int nn_add_bcast_add(lethe_model *m, int x, int v);
/* Sequences (1, T, D) (op_seq.c): an image (C, H, W) as H·W tokens of C;
 * PyTorch's Linear on each token (name.weight (out, D), name.bias); layer
 * norm over D (name.weight, name.bias); GELU (exact); attention of `heads`
 * heads on qkv (1, T, 3D) → (1, T, D), padding mask always, causal mask
 * when causal; per sample a (1, T, K) · b (1, K, M); a token table
 * name.weight (vocab, D) looked up by the ids of lethe_model_set_tokens
 * (t per sample); x + name (1, T, D) learnt positions (timm's pos_embed);
 * name (1, 1, D) put before the tokens (timm's cls_token); the mean over
 * the tokens the mask keeps (1, 1, D); the first token's row (1, 1, D). */
int nn_add_tokens(lethe_model *m, int in);
int nn_add_token_linear(lethe_model *m, const char *name, int in, int out_f);
int nn_add_layernorm(lethe_model *m, const char *name, int in);
int nn_add_gelu(lethe_model *m, int in);
int nn_add_attention(lethe_model *m, int qkv, int heads, int causal);
int nn_add_matmul(lethe_model *m, int a, int b);
int nn_add_token_embed(lethe_model *m, const char *name, int vocab, int d, int t);
int nn_add_pos_embed(lethe_model *m, const char *name, int in);
int nn_add_cls_token(lethe_model *m, const char *name, int in);
int nn_add_token_mean(lethe_model *m, int in);
int nn_add_take_first(lethe_model *m, int in);

/* Fuse ReLUs and pools into their producers (once, after building;
 * fuse.c, the planner). */
void nn_fuse(lethe_model *m);

/* Architecture constructors (one file each). */
lethe_status nn_build_mlp(lethe_model *m);
lethe_status nn_build_cnn(lethe_model *m);
lethe_status nn_build_resnet8(lethe_model *m);
lethe_status nn_build_resnet20(lethe_model *m);     /* arch_resnet8.c */
lethe_status nn_build_resnet18(lethe_model *m);     /* arch_resnet8.c */
lethe_status nn_build_unet(lethe_model *m);
lethe_status nn_build_vit_tiny(lethe_model *m);     /* arch_vit.c */
lethe_status nn_build_text_transformer(lethe_model *m); /* arch_text.c */
lethe_status nn_build_text_bag(lethe_model *m);     /* arch_text.c */
/* blocks.i of timm's ViT on x (1, T, dim): pre-norm attention of `heads`
 * heads and a GELU MLP of `mlp` (arch_vit.c); the new node, or −1. */
int nn_add_vit_block(lethe_model *m, int i, int x, int dim, int heads, int mlp);

/* A text model's vocabulary blob (a copy; NULL, 0 removes it), and the one
 * it holds (NULL when none; owned by m). */
lethe_status nn_model_set_vocab(lethe_model *m, const char *blob, size_t len);
const char *nn_model_vocab(const lethe_model *m, size_t *len);
/* 1 for a text model (token ids in), 0 for an image one. */
int nn_model_is_text(const lethe_model *m);
/* 1 when arch names a text model (text-transformer). */
int nn_arch_is_text(const char *arch);

#endif
