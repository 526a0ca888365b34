/*
 * lethe.h — machine unlearning in C: the one public header.
 *
 * Usage: the λ controller of implicit gradient surgery (EUPMU) from any loop.
 *
 *     lethe_igs igs;
 *     lethe_igs_init(&igs, 0.01f, 1.0f, 1.0f, 100.0f); // eps, beta0, lambda0, D
 *     for (int t = 0; t < T; t++) {
 *         float lam = lethe_igs_weight(&igs);        // use ℓ_u + lam·ℓ_r this step
 *         float before = retain_loss(theta);         // ℓ_r(θ_t; B_r)
 *         step(theta, lr, lam);                      // θ ← θ − lr·(g_u + lam·g_r)
 *         float after = retain_loss(theta);          // ℓ_r(θ_{t+1}; B_r)
 *         lethe_igs_observe(&igs, before, after, lr);
 *     }
 *
 * Usage: train a model and read its flat parameter vector.
 *
 *     lethe_model *m;
 *     if (lethe_init(0) != LETHE_OK ||                // thread pools, once
 *         lethe_model_create(&m, "cnn", 1, 28, 28, 10) != LETHE_OK)
 *         fprintf(stderr, "%s\n", lethe_last_error());
 *     size_t n;
 *     float *theta = lethe_model_theta(m, &n);     // one flat θ, n floats
 *
 * Conventions: every call that can fail returns a lethe_status; on failure
 * lethe_last_error() holds one line naming the file or argument and the
 * problem. Nothing is truncated or dropped silently: a value that does not
 * fit is refused. The library never prints to stdout and never exits.
 * Memory that a function returns is owned by the caller unless the comment
 * says otherwise. Randomness comes from an explicit lethe_rng; there is no
 * global RNG. Call lethe_init once first.
 *
 * Exempt: the calls that return something else cannot fail, and are of
 * these kinds only (tests/python/check_header.py holds the header to this
 * list):
 *   - errors and versions: lethe_status_to_string, lethe_last_error,
 *     lethe_version, lethe_sizeof (0: a type it does not know),
 *     lethe_compute_info;
 *   - releasing: every *_free (NULL or a zeroed struct is fine);
 *   - defaults: every *_default, lethe_groups_one, lethe_groups_two,
 *     lethe_dataset_unit_view (they fill the caller's struct);
 *   - getters of a valid object, and lookups that answer NULL, −1 or 0 for
 *     "none": lethe_model_arch, lethe_model_theta, lethe_model_grad,
 *     lethe_model_buffers, lethe_model_ntensors, lethe_model_tensor,
 *     lethe_model_find, lethe_model_nclass, lethe_model_input_shape,
 *     lethe_model_out_size, lethe_model_features, lethe_model_flops,
 *     lethe_dataset_sample_size,
 *     lethe_meta_get, lethe_igs_weight, lethe_ul_loss_name, lethe_methods,
 *     lethe_method_uses_eps, lethe_method_classifies, lethe_method_summary,
 *     lethe_method_grid, lethe_method_params, lethe_all_params,
 *     lethe_param_find, lethe_method_takes, lethe_unlearn_get;
 *   - arithmetic on the caller's buffers, made for the step loop, whose
 *     preconditions (sizes, indices and labels in range) are stated where
 *     they are declared and not checked, as memcpy's are not:
 *     lethe_rng_*, lethe_vec_*, lethe_dataset_batch, lethe_stream_next,
 *     lethe_model_init, lethe_loss, lethe_correct, lethe_optim_step,
 *     lethe_schedule_lr, lethe_ungrad_lambda, lethe_avg_gap,
 *     lethe_denoise_loss, lethe_pixels_to_bytes, lethe_wilson95.
 *
 * ABI: liblethe.so.0 exports exactly abi/lethe.symbols (make abi-check).
 * Lethe is unreleased (0.x): incompatible changes keep the soname and say
 * so here. Since the first liblethe.so (commit 6c40e2c), incompatibly:
 * lethe_fail is no longer exported; lethe_ddpm lost sqrt_ab_f and
 * sqrt_1m_ab_f (its size changed); lethe_meta_set, lethe_forget_to_string
 * and lethe_unlearn_get_text return lethe_status (were void, void and
 * const char *); lethe_model_create no longer sets OpenBLAS's threads
 * (lethe_init, new, does). LETHE_VERSION stays 0.1.0: checkpoints and run
 * states record it, and the same run must give the same file.
 */
#ifndef LETHE_H
#define LETHE_H

#include <signal.h>   /* sig_atomic_t (lethe_run_control) */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LETHE_VERSION "0.1.0"

/* ---------------------------------------------------------------- status */

typedef enum {
    LETHE_OK = 0,
    LETHE_ERR_NOMEM,       /* allocation failed */
    LETHE_ERR_IO,          /* open/read/write/rename failed */
    LETHE_ERR_FORMAT,      /* a file is malformed, truncated or inconsistent */
    LETHE_ERR_ARG,         /* a bad argument or option value */
    LETHE_ERR_MISMATCH,    /* checkpoint does not match the architecture */
    LETHE_ERR_NUMERIC,     /* NaN or infinity in a loss, gradient or λ */
    LETHE_ERR_NOTFOUND,    /* unknown name (architecture, method, file) */
    LETHE_ERR_INTERRUPTED  /* stopped by a signal after saving */
} lethe_status;

const char *lethe_status_to_string(lethe_status s);
/* The library's version ("0.1.0"; LETHE_VERSION is the header's), and the
 * size of a public struct by its name ("lethe_unlearn_config"; 0 if
 * unknown): for callers from other languages, which hold the structs as
 * opaque buffers (bindings/python). */
const char *lethe_version(void);
size_t lethe_sizeof(const char *type);
/* The last error message of this thread (one line, never NULL). */
const char *lethe_last_error(void);

/* Process-wide set-up; call it once, before any other call that computes
 * (the command line, the tests and the Python binding do). Lethe splits
 * its kernels over OpenMP threads, each calling sgemm, so a pthreads
 * OpenBLAS is set to one thread (two pools on the same cores fight:
 * measured 2-4x slower on 2 cores); an OpenMP or sequential OpenBLAS is
 * left alone. threads > 0 sets OpenMP's thread count (omp_set_num_threads);
 * 0 keeps its default (OMP_NUM_THREADS, else every core). Where OpenBLAS
 * fell back to SSE-only kernels on a CPU it does not know (0.3.21, Debian
 * 12's, picks Prescott on an Emerald Rapids Xeon), the first
 * call switches it to the widest kernels the CPU runs (SkylakeX, Haswell
 * or Sandybridge; about 2x faster products), unless OPENBLAS_CORETYPE is
 * set: `lethe info --system` shows which. These settings belong to the
 * whole process, other libraries in it included. Without
 * this call the library still works, with OpenBLAS's own threads and
 * Lethe's kernels on one thread: slower, and sums may round differently
 * from an initialised run's. LETHE_ERR_ARG for threads < 0, or > 1 in a
 * build without OpenMP. Safe to call again (not while another thread is
 * inside the library). */
lethe_status lethe_init(int threads);

/* What this process computes with, on one line, as `lethe info --system`
 * reports it: Lethe's kernel set and why that one, the OpenMP threads,
 * OpenBLAS's kernels and threads, and, where lethe_init switched
 * OpenBLAS's kernels, from what to what. Call it after lethe_init. The
 * text belongs to the calling thread and stays valid until its next call;
 * never NULL. */
const char *lethe_compute_info(void);

/* ------------------------------------------------------------------- rng */

/* xoshiro256** seeded by splitmix64: explicit state, reproducible. */
typedef struct { uint64_t s[4]; } lethe_rng;

void     lethe_rng_seed(lethe_rng *r, uint64_t seed);
uint64_t lethe_rng_next(lethe_rng *r);
float    lethe_rng_uniform(lethe_rng *r);           /* [0, 1) */
float    lethe_rng_normal(lethe_rng *r);            /* N(0, 1) */
uint32_t lethe_rng_below(lethe_rng *r, uint32_t n); /* uniform in [0, n); n ≥ 1 */
void     lethe_rng_shuffle(lethe_rng *r, int32_t *a, size_t n);

/* -------------------------------------------------------- flat vectors */

double lethe_vec_dot(const float *a, const float *b, size_t n);
double lethe_vec_norm2(const float *a, size_t n);          /* ‖a‖² */
void   lethe_vec_axpy(float *y, float a, const float *x, size_t n); /* y += a·x */
void   lethe_vec_scale(float *y, float a, size_t n);
void   lethe_vec_zero(float *y, size_t n);
int    lethe_vec_finite(const float *a, size_t n);          /* 1 if all finite */

/* ------------------------------------------------------------------ data */

/* A labelled image set, pixels kept as bytes (N, C, H, W), normalised per
 * batch with (p/255 − mean[c]) / std[c]. */
typedef struct {
    int n, c, h, w, nclass;
    uint8_t *pixels;        /* (N, C, H, W) */
    uint8_t *labels;        /* (N) */
    float mean[3], std[3];
    char name[32];          /* "fmnist", "mnist", "cifar10" */
    /* A text set ("text", "sms-spam"; NULL for images): token ids (N, w),
     * w = T ids per example, c = the vocabulary size, h = 1 (a text is a
     * (V, 1, T) one-hot signal kept as its T ids), pixels NULL. A batch
     * holds the ids as floats (exact), x (n, T); a token model's forward
     * reads them (padding: id 0). vocab: the vocabulary and class names
     * (src/data/text.h's blob, vocab_len bytes, NUL-terminated) that a
     * checkpoint of a model trained on it carries. */
    int32_t *tokens;
    char *vocab;
    size_t vocab_len;
} lethe_dataset;

/* Default folder of Debian's dataset-fashion-mnist. */
#define LETHE_FMNIST_DIR "/usr/share/datasets/fashion-mnist"
/* Default folder of CIFAR-10's binary batches, relative to the current
 * folder: where `lethe data fetch cifar10` writes them. */
#define LETHE_CIFAR10_DIR "runs/data/cifar10"

/* Load `name` ("fmnist", "mnist", "cifar10") from `dir` (NULL: the default
 * folder, LETHE_FMNIST_DIR or LETHE_CIFAR10_DIR; mnist has none); train =
 * 1 for the training split, 0 for the test one. Text: "text" (dir/train.tsv
 * and dir/test.tsv) and "sms-spam" (dir/SMSSpamCollection split 80/20 by
 * seed 0; default dir LETHE_SMS_SPAM_DIR), docs/PROTOCOL.md "Text data";
 * either split is encoded with the training split's vocabulary. */
#define LETHE_SMS_SPAM_DIR "../shared/datasets/sms-spam"
lethe_status lethe_dataset_load(lethe_dataset *ds, const char *name,
                                const char *dir, int train);
void lethe_dataset_free(lethe_dataset *ds);
/* IDX files, raw or gzip (detected by magic bytes). Images: (n, rows, cols)
 * with magic 0x00000803; labels with magic 0x00000801. Caller frees *out. */
lethe_status lethe_idx_read_images(const char *path, uint8_t **out, int *n,
                                   int *rows, int *cols);
lethe_status lethe_idx_read_labels(const char *path, uint8_t **out, int *n);
/* Write an IDX image file (uint8, magic 0x00000803), atomically. */
lethe_status lethe_idx_write_images(const char *path, const uint8_t *px,
                                    int n, int rows, int cols);
/* CIFAR-10 binary batches from `dir` (data_batch_1..5.bin or test_batch.bin). */
lethe_status lethe_cifar_load(lethe_dataset *ds, const char *dir, int train);
/* Normalise images idx[0..n) into x (n, C, H, W) and copy labels to y (n);
 * every idx[i] in [0, ds->n). */
void lethe_dataset_batch(const lethe_dataset *ds, const int32_t *idx, int n,
                         float *x, int32_t *y);
/* Floats of x per sample: C·H·W for images, T (= w) for a text set. */
size_t lethe_dataset_sample_size(const lethe_dataset *ds);

/* An index list into a dataset. */
typedef struct { int32_t *idx; size_t n; } lethe_subset;
void lethe_subset_free(lethe_subset *s);
/* s = 0, 1, …, n−1 (a whole data set); LETHE_ERR_NOMEM on failure. */
lethe_status lethe_subset_all(lethe_subset *s, size_t n);

/* What to forget: "class:0", "class:0,3", "random:10%", "random:0.1",
 * "indices:FILE" (one index per line, '#' comments). For a text set a
 * class may be named by its label, "class:spam" (an item that starts with
 * a letter or a non-ASCII byte; digits are an index): path then holds the
 * list as written, resolved against the set's class names by
 * lethe_forget_split and lethe_forget_split_test (an image set has none:
 * an error). */
typedef enum { LETHE_FORGET_CLASS, LETHE_FORGET_RANDOM, LETHE_FORGET_INDICES } lethe_forget_kind;
typedef struct {
    lethe_forget_kind kind;
    uint64_t class_mask;    /* bit c set: forget class c (CLASS) */
    double fraction;        /* in (0, 1) (RANDOM) */
    char path[512];         /* index file (INDICES); the class list naming labels (CLASS) */
} lethe_forget_spec;

lethe_status lethe_forget_parse(lethe_forget_spec *f, const char *text);
/* Split the training set: forget and retain are complements; random
 * fractions are drawn from `seed`. Errors on an empty side, a class not in
 * the data set, an index out of range or repeated. */
lethe_status lethe_forget_split(const lethe_forget_spec *f, const lethe_dataset *train,
                                uint64_t seed, lethe_subset *forget, lethe_subset *retain);
/* Split a test set: for CLASS specs, the retained-class and forgotten-class
 * images; otherwise the whole test set is `retain` and `forget` is empty. */
lethe_status lethe_forget_split_test(const lethe_forget_spec *f, const lethe_dataset *test,
                                     lethe_subset *forget, lethe_subset *retain);
/* Canonical text of a spec (for reports and cache keys) into buf (n bytes,
 * always NUL-terminated). LETHE_ERR_ARG when it does not fit (buf then
 * holds its truncated start); LETHE_FORGET_TEXT_MAX bytes always fit. */
#define LETHE_FORGET_TEXT_MAX 520   /* "indices:" + a path of 511 bytes + NUL */
lethe_status lethe_forget_to_string(const lethe_forget_spec *f, char *buf, size_t n);

/* Seeded shuffled batches over a subset. `next` returns up to bs indices:
 * with wrap = 0 the last batch of an epoch may be short and the following
 * call starts a new (reshuffled) epoch; with wrap = 1 every batch is full,
 * crossing epochs. out holds bs indices; the count written is returned (0
 * for bs ≤ 0). */
typedef struct {
    const int32_t *idx; size_t n;
    int32_t *order; size_t pos;
    long epoch;
    lethe_rng rng;
} lethe_stream;
lethe_status lethe_stream_init(lethe_stream *s, const lethe_subset *sub, uint64_t seed);
int  lethe_stream_next(lethe_stream *s, int bs, int wrap, int32_t *out);
void lethe_stream_free(lethe_stream *s);

/* ----------------------------------------------------------------- model */

#define LETHE_MAX_GROUPS 4

/* Sample groups of one batch: group g covers samples [start[g], start[g+1]).
 * Batch norm normalises each group with its own statistics (as separate
 * forward passes would), and backward can accumulate each group's weight
 * gradient into its own flat vector (ALGORITHM.md §2.1). */
typedef struct { int n; int start[LETHE_MAX_GROUPS + 1]; } lethe_groups;
void lethe_groups_one(lethe_groups *g, int n);            /* one group [0, n) */
void lethe_groups_two(lethe_groups *g, int n0, int n1);   /* [0,n0), [n0,n0+n1) */

typedef enum {
    LETHE_BN_TRAIN,  /* batch statistics, running averages updated */
    LETHE_BN_EVAL,   /* running averages */
    LETHE_BN_BATCH,  /* batch statistics, running averages left alone */
    LETHE_BN_TRAIN_LAST  /* batch statistics; only the last group's move the
                            running averages (unlearning: the retain batch) */
} lethe_bn_mode;

typedef struct lethe_model lethe_model;

/* One named tensor of the model, in PyTorch state_dict order and layout. */
typedef struct {
    const char *name;       /* "conv1.weight" */
    int ndim; int shape[4];
    float *data;            /* view into θ (trainable) or the buffers */
    size_t numel;
    size_t offset;          /* offset in θ (trainable) or in the buffers */
    int trainable;          /* 1: in θ; 0: a buffer (running stats) */
    int is_int64;           /* stored as int64 in checkpoints (num_batches_tracked) */
} lethe_tensor;

/* Architectures: "mlp", "cnn", "resnet8", "resnet20", "resnet18"
 * (classifiers: nclass logits; resnet20 is He et al.'s CIFAR ResNet-20,
 * resnet18 the CIFAR ResNet-18 of the unlearning papers), and
 * "unet", the class-conditional DDPM noise predictor ε_θ(x_t, t, y) (output
 * (C, H, W) per sample, H and W divisible by 4; label table of nclass + 1
 * rows, row nclass the null class; needs lethe_model_set_cond before each
 * forward). No process-wide side effect: the thread pools are
 * lethe_init's. */
lethe_status lethe_model_create(lethe_model **m, const char *arch,
                                int in_c, int in_h, int in_w, int nclass);
void lethe_model_free(lethe_model *m);
const char *lethe_model_arch(const lethe_model *m);
/* Size activations for batches up to max_batch (once, before the loop). */
lethe_status lethe_model_reserve(lethe_model *m, int max_batch);
/* PyTorch's default initialisation (kaiming-uniform, a = √5). */
void lethe_model_init(lethe_model *m, lethe_rng *rng);
float *lethe_model_theta(lethe_model *m, size_t *n);   /* flat θ, owned by m */
float *lethe_model_grad(lethe_model *m, size_t *n);    /* flat ∇, owned by m */
float *lethe_model_buffers(lethe_model *m, size_t *n); /* running stats */
int lethe_model_ntensors(const lethe_model *m);
const lethe_tensor *lethe_model_tensor(const lethe_model *m, int i);
const lethe_tensor *lethe_model_find(const lethe_model *m, const char *name);
int lethe_model_nclass(const lethe_model *m);
/* The input shape the model was created for. */
void lethe_model_input_shape(const lethe_model *m, int *c, int *h, int *w);
/* LETHE_ERR_MISMATCH (with a message) unless ds fits m's input and classes. */
lethe_status lethe_model_check_data(const lethe_model *m, const lethe_dataset *ds);
/* Floats of output per sample: nclass for the classifiers, C·H·W for unet. */
size_t lethe_model_out_size(const lethe_model *m);
/* Conditioning of the next forward: timesteps t (n) and labels y (n) (in
 * [0, nclass], nclass the null class), neither owned; read during that
 * forward only (the labels are copied for backward), then cleared, so set
 * them again before every forward. A model without embeddings ignores
 * them; a forward of one that has them fails with LETHE_ERR_ARG when they
 * are not set or a label is out of range. */
lethe_status lethe_model_set_cond(lethe_model *m, const int32_t *t, const int32_t *y);
/* Token inputs of the next forward of a sequence model: ids (n, T) for its
 * token embedding (T its tokens per sample; a model without one ignores
 * them), and a padding mask (n, T), 1 for a real token, 0 for padding,
 * or NULL (none). Neither owned; copied by that forward (for backward),
 * then cleared. A forward of a model with a token embedding fails with
 * LETHE_ERR_ARG without ids or with an id outside its table. */
lethe_status lethe_model_set_tokens(lethe_model *m, const int32_t *ids, const uint8_t *mask);
/* Forward x (n, C, H, W) into the logits (n, lethe_model_out_size(m)),
 * owned by m. */
lethe_status lethe_model_forward(lethe_model *m, const float *x, int n,
                                 const lethe_groups *g, lethe_bn_mode mode,
                                 const float **logits);
/* Backward from dlogits (n, lethe_model_out_size(m)) of the last forward
 * (unet: ∂L/∂ε_θ). grads[k] receives
 * (+=) the weight gradient of group k, or nothing if NULL; several groups
 * may share one vector (then it receives their sum). */
lethe_status lethe_model_backward(lethe_model *m, const float *dlogits,
                                  const lethe_groups *g, float *const grads[]);
/* As lethe_model_backward (grads may be NULL: no weight gradient), for a
 * loss that reads more than the logits: dfeat (n, *dim of
 * lethe_model_features), when not NULL, is its gradient in the features,
 * added to what flows back from the logits (Boundary Expanding's shadow
 * class); dx (n, C, H, W), when not NULL, receives (overwritten) ∂L/∂x,
 * the gradient in the input of the last forward (Boundary Shrink's
 * attack). Not for a model with conditioning (unet). */
lethe_status lethe_model_backward_ex(lethe_model *m, const float *dlogits, const float *dfeat,
                                     const lethe_groups *g, float *const grads[], float *dx);
/* Copy θ and buffers (and a text model's vocabulary) from another model of
 * the same architecture. */
lethe_status lethe_model_copy(lethe_model *dst, const lethe_model *src);
/* The penultimate features of the last forward: the input of the final
 * layer, (n, *dim) rows (a classifier's embedding, e.g. cnn's 128 after
 * fc1's ReLU); NULL when there was no forward (*dim is set all the same).
 * Owned by m. */
const float *lethe_model_features(const lethe_model *m, int *dim);
/* FLOPs of one forward over one sample (multiply-add = 2). */
double lethe_model_flops(const lethe_model *m);

/* ------------------------------------------------------------------ loss */

typedef enum {
    LETHE_LOSS_CE,      /* cross-entropy */
    LETHE_LOSS_NEG_CE,  /* −CE (gradient ascent, `ga`) */
    LETHE_LOSS_NC       /* −log(1 − p_y) (`nc`) */
} lethe_loss_kind;

/* Per-sample loss of kind k into losses[i]; if dlogits is non-NULL it
 * receives (+=) w[i]·∂loss_i/∂logits. w NULL means weight 1. logits (n, c),
 * every y[i] in [0, c). */
void lethe_loss(lethe_loss_kind k, float *losses, float *dlogits,
                const float *logits, const int32_t *y, const float *w,
                int n, int c);
/* Number of rows whose argmax equals y. */
int lethe_correct(const float *logits, const int32_t *y, int n, int c);

/* ------------------------------------------------------------ checkpoint */

/* Safetensors: 8-byte little-endian header length, JSON header, raw data.
 * metadata: flat string pairs (key, value) stored in "__metadata__". */
typedef struct { char key[64]; char value[512]; } lethe_meta;
#define LETHE_MAX_META 32
typedef struct { int n; lethe_meta kv[LETHE_MAX_META]; } lethe_metadata;
/* Set key to value (replacing its value if present; NULL value: remove the
 * key). Nothing is truncated or dropped: LETHE_ERR_ARG, md unchanged, for a
 * key of 64 bytes or more, a value of 512 or more, a new key when md holds
 * LETHE_MAX_META already, or md->n outside 0..LETHE_MAX_META (start from
 * a zeroed lethe_metadata). */
lethe_status lethe_meta_set(lethe_metadata *md, const char *key, const char *value);
/* The value of key, owned by md; NULL when absent. */
const char *lethe_meta_get(const lethe_metadata *md, const char *key);

/* Write every tensor of m (θ and buffers) atomically (temp file + rename). */
lethe_status lethe_checkpoint_save(const lethe_model *m, const lethe_metadata *md,
                                   const char *path);
/* Read only the metadata (to learn the architecture before creating m). */
lethe_status lethe_checkpoint_read_meta(const char *path, lethe_metadata *md);
/* Load tensors into m; every tensor of m must be present with its shape. */
lethe_status lethe_checkpoint_load(lethe_model *m, const char *path,
                                   lethe_metadata *md);
/* Create the model named by the checkpoint's metadata and load it. */
lethe_status lethe_checkpoint_open(lethe_model **m, const char *path,
                                   lethe_metadata *md);

/* ------------------------------------------------------------- optimise */

typedef enum { LETHE_SCHED_CONSTANT, LETHE_SCHED_COSINE, LETHE_SCHED_STEP } lethe_sched_kind;
typedef struct {
    lethe_sched_kind kind;
    float lr0;
    long total;         /* steps for cosine */
    long step_every;    /* STEP: multiply by gamma every step_every steps */
    float gamma;
} lethe_schedule;
float lethe_schedule_lr(const lethe_schedule *s, long t);
lethe_status lethe_schedule_parse(lethe_schedule *s, const char *name);

typedef enum { LETHE_OPT_SGD, LETHE_OPT_ADAMW } lethe_opt_kind;
typedef struct {
    lethe_opt_kind kind;
    float momentum, weight_decay;   /* SGD: PyTorch semantics */
    int nesterov;
    float beta1, beta2, eps;        /* AdamW */
    long t;                         /* steps taken */
    float *m, *v;                   /* state, n floats each (owned) */
    size_t n;
} lethe_optim;
lethe_status lethe_optim_init(lethe_optim *o, lethe_opt_kind kind, size_t n);
void lethe_optim_free(lethe_optim *o);
/* θ ← update(θ, g, lr). mask (NULL = all): only entries with mask[i] != 0 move.
 * theta, g and mask hold o->n entries. */
void lethe_optim_step(lethe_optim *o, float *theta, const float *g,
                      const uint8_t *mask, float lr);

/* ------------------------------------------------------------- training */

/* A training recipe (PROTOCOL.md "Original model"). */
typedef struct {
    int epochs, batch;
    float lr;
    lethe_sched_kind schedule;  /* stepped once per batch */
    lethe_opt_kind optimizer;
    float momentum, weight_decay;
    int nesterov;
    uint64_t seed;              /* initial weights and data order */
    int init;                   /* 1: initialise θ from the seed first */
    int augment;                /* LETHE_AUGMENT_CROP_FLIP (1): each training image padded by
                                   4 black pixels, cropped back at random and mirrored with
                                   probability 1/2 (the CIFAR recipe); LETHE_AUGMENT_FLIP
                                   (2): only mirrored; drawn from the seed and the step;
                                   LETHE_AUGMENT_OFF (0, the default): the images as stored */
    int deterministic;          /* 1: every batch summed in 4 fixed chunks (core/dist.h), so
                                   that mpirun -np 1 to 4 give the same bits; 0 (default) */
    float warmup;               /* epochs of linear warm-up: over the first W = round(warmup ×
                                   batches per epoch) steps the schedule's rate is scaled by
                                   (t + 1) / W; 0 (default): none. At most epochs */
} lethe_train_config;
/* lethe_train_config.augment's values. */
#define LETHE_AUGMENT_OFF 0
#define LETHE_AUGMENT_CROP_FLIP 1
#define LETHE_AUGMENT_FLIP 2
/* The PROTOCOL recipe: SGD, momentum 0.9, wd 5e-4, batch 128, lr 0.05
 * cosine to 0 over 8 epochs, seed 0, no augmentation, no warm-up. */
void lethe_train_config_default(lethe_train_config *c);

/* What a long run reports as it goes (the library never prints). */
typedef struct {
    long step, total;           /* batches done / planned */
    int epoch, epochs;
    double loss, acc;           /* running means over the current epoch */
    double lambda;              /* unlearning: current λ (NaN if none) */
    double elapsed_s, images_per_s, eta_s;
} lethe_progress;
typedef void (*lethe_progress_fn)(const lethe_progress *p, void *ctx);

/* Train m on ds[sub] with cross-entropy. cb (may be NULL) is called after
 * every batch. Stops with LETHE_ERR_NUMERIC naming the step ("step 37: the
 * training loss is NaN") on a non-finite loss, gradient or θ. */
lethe_status lethe_train(lethe_model *m, const lethe_dataset *ds, const lethe_subset *sub,
                         const lethe_train_config *cfg, lethe_progress_fn cb, void *ctx);

/* Checkpointed, interruptible runs (docs/RELIABILITY.md "Interruption and
 * resume"). A run state is a safetensors file holding everything a loop
 * needs to go on to the bitwise-same result (with the same thread count):
 * θ and buffers, the optimiser's moments and step count, the data order,
 * stream positions and RNG states, the step counters and running sums,
 * and for unlearning λ and its controller, the method's state (SalUn's
 * mask), the trace and the audit so far. States are written atomically
 * (temporary file, fsync, rename): a crash or a full disk leaves the last
 * good one. A state is never written after a failed step. */
typedef struct {
    volatile sig_atomic_t *stop;  /* read after every step: non-zero → save the state and
                                     return LETHE_ERR_INTERRUPTED (NULL: never stops) */
    const char *state_path;       /* where states are written (NULL: nowhere) */
    long every_steps;             /* save after every N steps (0: not by count) */
    double every_seconds;         /* save when S s passed since the last (0: not by time) */
    int save_final;               /* 1: save after the last step too */
    const char *resume_path;      /* continue from this state (NULL: from the start) */
    long step;                    /* out: steps done when the call returned */
    long saved_step;              /* out: steps done at the last state written (−1: none) */
} lethe_run_control;
/* Nothing saved, never stopped, no resume. */
void lethe_run_control_default(lethe_run_control *r);

/* lethe_train under a run control (NULL: as lethe_train). With
 * resume_path, θ, the optimiser and the data order come from the state; its
 * config must match cfg, sub and the starting model (m after cfg->init):
 * LETHE_ERR_MISMATCH naming the setting otherwise. A failed resume leaves
 * m undefined. */
lethe_status lethe_train_run(lethe_model *m, const lethe_dataset *ds, const lethe_subset *sub,
                             const lethe_train_config *cfg, lethe_run_control *run,
                             lethe_progress_fn cb, void *ctx);

/* The metadata of a run state (kind "train" or "unlearn", step, total,
 * config, threads, arch), header only; LETHE_ERR_FORMAT if it is not one. */
lethe_status lethe_runstate_read_meta(const char *path, lethe_metadata *md);

/* ------------------------------------------------- λ controller (EUPMU) */

/* Implicit gradient surgery (ALGORITHM.md §3): online gradient descent on
 * the multiplier λ of the retain loss, from loss values only:
 *     δ_t = (ℓ_r(θ_t) − ℓ_r(θ_{t+1})) / α_t + ε_t
 *     λ_{t+1} = clip(λ_t − β_t δ_t, 0, D)
 * with β_t = β0·α_t·(t+1)^(−1/3) (beta_decay = 1) or β0 (beta_decay = 0). */
typedef enum {
    LETHE_LAMBDA_PAPER,     /* §3: λ by online gradient descent on δ_t */
    LETHE_LAMBDA_LOG        /* §7, the authors' code: a weight w trained by Adam */
} lethe_lambda_form;
typedef struct {
    float eps;          /* ε_t, the tolerated retain-loss increase rate */
    float beta0;
    int beta_decay;     /* 1: β_t = β0·α_t·(t+1)^(-1/3); 0: constant β0 */
    float lambda, lambda_max;   /* the log form: lambda holds w (any sign) */
    long t;
    float last_delta;   /* δ of the last observe (log form: Adam's gradient of w) */
    /* The log form (lethe_igs_set_log): w's own Adam, L2 weight decay as
     * torch.optim.Adam's (added to the gradient). */
    lethe_lambda_form form;
    float w_lr, w_decay;
    double w_m, w_v;
} lethe_igs;
lethe_status lethe_igs_init(lethe_igs *c, float eps, float beta0, float lambda0,
                            float lambda_max);
/* Switch an initialised controller to the authors' log form (ALGORITHM.md
 * §7): the loss is w⁺·log ℓ_r + log ℓ_u with w⁺ = max(w, 0), and observe
 * takes one Adam step (β 0.9, 0.999, eps 1e-8) of w on the gradient
 *     g_t = log ℓ_r(θ_t) − log ℓ_r(θ_{t+1}) − ε
 * (ε as §7 writes it: with ε > 0 it pushes w up, unlike §3's tolerance).
 * lethe_igs_weight then returns w⁺; the step size lr of observe is unused. */
lethe_status lethe_igs_set_log(lethe_igs *c, float w0, float w_lr, float w_decay);
float lethe_igs_weight(const lethe_igs *c);
/* Update from ℓ_r before and after the step taken with learning rate lr.
 * Returns LETHE_ERR_NUMERIC if a loss or λ is not finite. */
lethe_status lethe_igs_observe(lethe_igs *c, float loss_before, float loss_after,
                               float lr);
/* The explicit multiplier of UNGrad (§2): max(0, −(⟨g_r,g_u⟩+ε)/‖g_r‖²)
 * clipped to [0, D]; 0 when ‖g_r‖² = 0. */
float lethe_ungrad_lambda(double dot_ru, double norm2_r, float eps, float lambda_max);

/* Write len bytes to path atomically: path.tmp.PID, fsync, rename. On
 * failure the temporary file is removed and path is left as it was. */
lethe_status lethe_write_file_atomic(const char *path, const void *data, size_t len);

/* --------------------------------------------------------------- metrics */

/* Accuracy (in percent) of m on ds[sub] in EVAL mode, batch by batch;
 * p_true (optional, sub->n floats) receives softmax(f(x))_y per sample.
 * Needs lethe_model_reserve(m, ≥ min(batch, sub->n)) beforehand (else the
 * forward's error is returned); an empty subset is LETHE_ERR_ARG. */
lethe_status lethe_eval_accuracy(lethe_model *m, const lethe_dataset *ds,
                                 const lethe_subset *sub, int batch,
                                 double *acc, float *p_true);

/* MIA-Efficacy (PROTOCOL.md): an RBF SVM (libsvm, C = 3, γ = 1/#features =
 * 1) trained on the true-label confidence of shadow members (label 1) and
 * non-members (label 0); the result is the percentage of `target`
 * predicted non-member. */
lethe_status lethe_mia_efficacy(const float *members, size_t n_members,
                                const float *nonmembers, size_t n_nonmembers,
                                const float *target, size_t n_target,
                                double *efficacy);

/* The unlearning metrics of PROTOCOL.md, in percent. */
typedef struct {
    double ua;          /* 100 − accuracy on D_f */
    double ra;          /* accuracy on D_r */
    double ta;          /* accuracy on the test split (retained classes) */
    double ta_forget;   /* test accuracy on forgotten classes (class-wise) */
    int has_ta_forget;
    double mia;         /* MIA-Efficacy */
} lethe_metrics;

/* Batch size of lethe_evaluate's forward passes. */
#define LETHE_EVAL_BATCH 256

/* Every metric of m for a forget/retain split of `train` and the matching
 * split of `test`. The MIA's shadow members are a random subset of the
 * retain set as large as the test set, drawn from `seed`. The caller must
 * have called lethe_model_reserve(m, ≥ LETHE_EVAL_BATCH) (or ≥ the largest
 * subset, if smaller). test_forget may be NULL or empty (not class-wise). */
lethe_status lethe_evaluate(lethe_model *m, const lethe_dataset *train,
                            const lethe_dataset *test,
                            const lethe_subset *forget, const lethe_subset *retain,
                            const lethe_subset *test_retain,
                            const lethe_subset *test_forget,
                            uint64_t seed, lethe_metrics *out);
/* Mean over UA, RA, TA and MIA of |m − ref|. */
double lethe_avg_gap(const lethe_metrics *m, const lethe_metrics *ref);

/* ------------------------------------------------------------ unlearning */

/* The unlearning loss ℓ_u on forgetting samples (ALGORITHM.md §5). */
typedef enum {
    LETHE_UL_RL,   /* CE to a random label ≠ y, redrawn each time (seeded) */
    LETHE_UL_GA,   /* −CE(f(x), y) */
    LETHE_UL_NC    /* −log(1 − p_y) */
} lethe_ul_loss;
lethe_status lethe_ul_loss_parse(lethe_ul_loss *l, const char *name);
const char *lethe_ul_loss_name(lethe_ul_loss l);
/* "sgd" | "adam" (also "adamw": Adam with decoupled weight decay). */
lethe_status lethe_unlearn_optim_parse(lethe_opt_kind *k, const char *name);
/* "paper" | "log". */
lethe_status lethe_lambda_form_parse(lethe_lambda_form *f, const char *name);

/* UNGrad's two forms (ALGORITHM.md §2.1, §3). */
typedef enum {
    LETHE_UNGRAD_GROUPED,  /* one backward, g_u and g_r accumulated apart */
    LETHE_UNGRAD_MIXED     /* autograd's way: each loss backpropagated over
                              the whole mixed batch, two backward passes */
} lethe_ungrad_form;

#define LETHE_METHOD_OPTS 8

typedef struct {
    const char *method;     /* a name from lethe_methods() */
    lethe_ul_loss loss;     /* ℓ_u of eupmu*, ungrad (default rl) */
    long steps;             /* T */
    int batch;              /* per set per step (128) */
    float lr;               /* α_0 */
    lethe_sched_kind schedule;
    float momentum;         /* 0: plain SGD, the theory's optimiser */
    float eps;              /* ε (constant) */
    float eps_budget;       /* > 0: ε_t chosen so that Σ α_t ε_t = eps_budget */
    float beta;             /* β_0 */
    int beta_decay;         /* 1: β_t = β0·α_t·(t+1)^(−1/3); 0: constant */
    float lambda0, lambda_max;   /* λ_0 = 1, D = 100 */
    float neggrad_a;        /* NegGrad+: a·ℓ_r − (1 − a)·CE(D_f) */
    float salun_gamma;      /* SalUn: fraction of weights that move (0.5) */
    float l1;               /* ℓ1-sparse: initial γ of γ_t‖θ‖₁ */
    lethe_ungrad_form ungrad_form;
    uint64_t seed;
    /* Gradient-conflict diagnostics (eupmu*, ungrad*): cos(g_u, g_r),
     * conflict ⟨g_u, g_r⟩ < 0 and, for eupmu*, the explicit λ*_t of §2 with
     * the step's ε. They only observe: the method's step keeps its bits
     * (θ as without diagnostics, bit for bit), and g_u and g_r come from a
     * second, grouped backward of the step's forward (one more backward
     * a step and two more n-float buffers), counted neither in the
     * result's passes nor in its seconds. UNGrad computes them anyway. */
    int diagnostics;
    /* Utility audit: ℓ_r on a fixed probe of `audit_probe` retain samples
     * (drawn by seed, then left out of the retain batches), in EVAL mode,
     * before the run and after every step. Costs one probe forward per
     * step plus one, counted in fwd_samples (and audit_fwd_samples). */
    int audit;
    int audit_probe;        /* probe size (512; at most half of D_r) */
    /* Diffusion unlearning (ALGORITHM.md §5): with a schedule, m is a
     * "unet" noise predictor; each row gets t, ε and x_t; ℓ_r is the
     * denoising loss on retained images (the label dropped to the null
     * class with probability p_uncond, as in training), ℓ_u `rl` (the
     * prediction for the forgotten class pulled to a stop-gradient
     * prediction for a random other class) or `ga` (−denoising loss). */
    const struct lethe_ddpm *ddpm;  /* NULL: classification */
    float p_uncond;                 /* 0.1 */
    /* The optimiser of the unlearning steps: SGD (with `momentum`, the
     * theory's) or Adam (decoupled weight decay, AdamW's, when
     * weight_decay > 0). λ's rule does not change: δ_t comes from the loss
     * values before and after the step, whatever the step was. */
    lethe_opt_kind optim;           /* LETHE_OPT_SGD */
    float adam_beta1, adam_beta2;   /* 0.9, 0.999 */
    float weight_decay;             /* 0 */
    /* > 0: the step direction (after SalUn's mask) is scaled to this
     * Euclidean norm when longer, as torch.nn.utils.clip_grad_norm_. 0: off. */
    float clip_grad;
    /* λ of the EUPMU family: the paper's rule (§3) or the authors' log
     * form (§7) with w0, and w's Adam learning rate and weight decay. */
    lethe_lambda_form lambda_form;  /* LETHE_LAMBDA_PAPER */
    float w0, w_lr, w_decay;        /* 0, 0.025, 0.01 */
    /* Diffusion: ℓ_r is a·(mean squared denoising error per value), in
     * every method and in λ's rule (1). */
    float retain_weight;
    /* ESD (diffusion): the target of ε_θ(x_t, c_f) is sg[ε_∅ − η(ε_c − ε_∅)] (1). */
    float esd_eta;
    /* The options of methods that keep theirs here rather than in a field
     * above (scrub, bs, be, pcgrad, cagrad, mgda, …): slot k is the method's
     * k-th own option (lethe_method_params). NaN, as set by
     * lethe_unlearn_config_default: the option's default. Set them by name
     * with lethe_unlearn_set. */
    float method_opt[LETHE_METHOD_OPTS];
    /* Forget just enough (classification; docs/RESULTS.md "fmnist-rnd"):
     * with a reference of samples the model never saw (`unseen` of
     * `unseen_data`, never the data TA is measured on), each forgetting
     * sample gets a target loss at θ_0: the reference's loss quantile of
     * the sample's rank in D_f (1-D quantile matching). While its CE on
     * its true label is at or above its target, the sample's ℓ_u gradient
     * is off, so the forget set ends as unfamiliar as unseen data and no
     * more. Costs one forward of D_f and of the reference at the start.
     * NULL: off (every class-wise run: there Retrain recognises none of
     * the class, which unseen data of the class would not show). */
    const lethe_dataset *unseen_data;
    const lethe_subset *unseen;
    /* 1: the forget and the retain batch each summed in 2 fixed chunks
     * (as lethe_train_config.deterministic), so that one process and
     * mpirun -np 2 write the same bits; 0 (default). */
    int deterministic;
    /* Which batches move batch norm's running averages (models with batch
     * norm): LETHE_BN_RUNNING_ALL (0, the default) every batch as drawn,
     * the forget batch's statistics too, as the authors' code and most
     * implementations have it (each batch forwarded in training mode);
     * for class-wise forgetting each step then pulls the averages towards
     * one class's statistics. LETHE_BN_RUNNING_RETAIN (1) only the retain
     * batches, as a model trained on D_r alone would have them (a step
     * with no retain batch, GA's, leaves them). LETHE_BN_RUNNING_FROZEN (2)
     * the averages stay as they are and normalise every batch (evaluation
     * mode): the steps see the model as it is evaluated. docs/RESULTS.md
     * "cifar10-cw" measures the three. */
    int bn_running;
} lethe_unlearn_config;
#define LETHE_BN_RUNNING_ALL 0
#define LETHE_BN_RUNNING_RETAIN 1
#define LETHE_BN_RUNNING_FROZEN 2
void lethe_unlearn_config_default(lethe_unlearn_config *c);

/* One step of the trace (NaN where a method has no such value). */
typedef struct {
    float loss_u;           /* ℓ_u(θ_t; B_f) */
    float loss_r_before;    /* ℓ_r(θ_t; B_r) */
    float loss_r_after;     /* ℓ_r(θ_{t+1}; ·) as the method measured it */
    float delta;            /* δ_t of the λ update */
    float lambda;           /* λ used in this step */
    float lambda_star;      /* UNGrad: explicit λ*; eupmu* with diagnostics: λ*_t */
    float lr;               /* α_t */
    float cos_ur;           /* diagnostics: cos(g_u, g_r) (0 if a norm is 0) */
    int conflict;           /* diagnostics: 1 if ⟨g_u, g_r⟩ < 0, 0 if not, −1 unmeasured */
    float probe_loss;       /* audit: ℓ_r(θ_{t+1}; probe) */
    float audit_delta;      /* audit: Δ_t = ℓ_r(θ_{t+1}; probe) − ℓ_r(θ_t; probe) */
    float audit_allowed;    /* audit: α_t ε_t (NaN for methods without ε) */
    float audit_sum_delta, audit_sum_allowed;  /* audit: Σ_{s≤t} of the two */
    float unseen_share;     /* forget just enough: share of this step's forgetting rows
                               at or above their unseen-data target (NaN: off) */
} lethe_trace_step;

typedef struct {
    long steps;
    double seconds;             /* wall clock of the run (less diagnostics' observing) */
    long fwd_samples, bwd_samples;  /* samples forwarded / backpropagated */
    int batch;                  /* passes = samples / batch */
    float eps_used;             /* ε_t actually used (budget mode: derived) */
    lethe_trace_step *trace;    /* (steps), owned */
    /* Diagnostics summary (diag_steps = 0 when off; the rest NaN). */
    long diag_steps;            /* steps measured */
    double conflict_share;      /* share of them with ⟨g_u, g_r⟩ < 0 */
    double mean_cos;            /* mean cos(g_u, g_r) */
    double mean_lambda_gap;     /* mean |λ_t − λ*_t| (0 for UNGrad: λ = λ*) */
    /* Audit summary (audit_probe_n = 0 when off). */
    int audit_probe_n;          /* probe samples */
    long audit_fwd_samples;     /* the audit's share of fwd_samples */
    float audit_probe_loss0;    /* ℓ_r(θ_0; probe) */
    double audit_sum_delta;     /* Σ Δ_t = ℓ_r(θ_T) − ℓ_r(θ_0) on the probe */
    double audit_sum_allowed;   /* Σ α_t ε_t (NaN without ε) */
    long audit_first_violation; /* first step index t with Σ Δ > Σ α ε; −1: the bound held */
    /* Forget just enough (unseen_n = 0 when off). */
    int unseen_n;               /* reference samples */
    long unseen_fwd_samples;    /* its share of fwd_samples: D_f and the reference, once */
    long unseen_rows, unseen_gated;  /* forgetting rows drawn, and those at their target */
    double unseen_auc0;         /* P(ℓ(D_f) < ℓ(reference)) at θ_0: 0.5 = unseen-like */
} lethe_unlearn_result;
void lethe_unlearn_result_free(lethe_unlearn_result *r);

/* Names of the registered methods (static table). */
const char *const *lethe_methods(int *n);
/* Check a configuration without running it (names, ranges). */
lethe_status lethe_unlearn_validate(const lethe_unlearn_config *c);
/* Unlearn `forget` from m in place, keeping `retain`. res receives the
 * timing, pass counts and the per-step trace. On LETHE_ERR_NUMERIC the
 * model is left in an undefined state: do not save it. */
lethe_status lethe_unlearn(lethe_model *m, const lethe_dataset *ds,
                           const lethe_subset *forget, const lethe_subset *retain,
                           const lethe_unlearn_config *cfg, lethe_unlearn_result *res,
                           lethe_progress_fn cb, void *ctx);
/* lethe_unlearn under a run control (NULL: as lethe_unlearn; see
 * lethe_train_run). A resumed run starts from the same model as the
 * interrupted one (m holds the original θ: its hash is in the state's
 * config), then takes θ, λ, the mask and the rest from the state. On
 * LETHE_ERR_INTERRUPTED res holds nothing (freed); the resumed run fills it
 * as the uninterrupted one would, trace and counters included (seconds
 * count this call's time plus the state's). */
lethe_status lethe_unlearn_run(lethe_model *m, const lethe_dataset *ds,
                               const lethe_subset *forget, const lethe_subset *retain,
                               const lethe_unlearn_config *cfg, lethe_run_control *run,
                               lethe_unlearn_result *res, lethe_progress_fn cb, void *ctx);
/* 1 if the method has an ε (eupmu*, ungrad*): the audit's bound and the
 * utility-budget search apply to it. 0 for other or unknown names. */
int lethe_method_uses_eps(const char *method);
/* 1 if the method runs on classifiers; 0 for generation-only ones (esd,
 * whose target needs an unconditional prediction) and unknown names. */
int lethe_method_classifies(const char *method);
/* The one-line summary of a method (its equation), or NULL if unknown. */
const char *lethe_method_summary(const char *method);
/* `lethe tune`'s default grid of a method ("lr=0.01,0.02;eps=0.01,0.1"),
 * on a classification scenario (diffusion 0) or the diffusion one; NULL:
 * none (give one). */
const char *lethe_method_grid(const char *method, int diffusion);

/* Settings by name. Every option of the unlearning step is declared once,
 * in a table: the options every method takes (src/unlearn/params.c), those
 * of a family (ε and λ of the surgery methods, igs.c) and each method's own
 * (its file). The command line, the settings file, sweeps, tuning grids,
 * reports and the help are made from these tables. */
typedef enum { LETHE_PARAM_REAL, LETHE_PARAM_INT, LETHE_PARAM_CHOICE } lethe_param_type;
/* Where a value lives: a field of lethe_unlearn_config (by type) or a
 * slot of method_opt. */
typedef enum {
    LETHE_STORE_F32, LETHE_STORE_I32, LETHE_STORE_LONG, LETHE_STORE_U64, LETHE_STORE_OPT
} lethe_param_store;
typedef struct {
    const char *name;       /* "eps_budget": settings files and reports; the command
                               line writes '-' for '_' (--eps-budget) */
    const char *alias;      /* an older name still read (NULL: none) */
    lethe_param_type type;
    const char *arg;        /* the placeholder in --help: "X", "N", "NAME" */
    const char *help;
    /* CHOICE: the names of values 0, 1, …, '|'-separated; ',' gives a
     * value a second spelling ("sgd|adam,adamw"). */
    const char *choices;
    double lo, hi;          /* REAL, INT: accepted range */
    int lo_open, hi_open;   /* 1: the bound itself is refused */
    const char *grid;       /* tune's default values ("0.01,0.02,0.05"); NULL: not searched */
    lethe_param_store store;
    size_t offset;          /* offsetof the field; LETHE_STORE_OPT: the slot */
    double def;             /* LETHE_STORE_OPT: the default (fields: from
                               lethe_unlearn_config_default) */
} lethe_param;
/* The options `method` takes, in help order: every method's, then its
 * family's, then its own. Writes up to max pointers and returns how many
 * there are, which may be more than max (as snprintf: call again with
 * room); −1: unknown method. */
int lethe_method_params(const char *method, const lethe_param **out, int max);
/* Every option of every method, each once (help order), and the option
 * named `name` ('-' or '_', or its alias) among them (NULL: none). */
int lethe_all_params(const lethe_param **out, int max);
const lethe_param *lethe_param_find(const char *name);
/* Whether `method` takes the option (1), not (0). */
int lethe_method_takes(const char *method, const lethe_param *p);
/* Set an option of c->method from text ("0.01", "adam") or from a number
 * (a CHOICE by its index). Refuses, with one line naming the method and
 * the option: an unknown name (with the nearest), an option the method
 * does not take (naming the methods that do), a value out of range or not
 * a number. Set c->method first ("method" itself may be set by name too:
 * c->method then points to the registry's own copy of the name, and the
 * method's own defaults of shared options, if it has any, are applied:
 * scrub's lr 0.001). */
lethe_status lethe_unlearn_set(lethe_unlearn_config *c, const char *name, const char *value);
lethe_status lethe_unlearn_set_number(lethe_unlearn_config *c, const char *name, double v);
/* The value of p in c (CHOICE: its index; a method_opt slot at NaN: the
 * default), and as text into buf (n bytes): the shortest number that reads
 * back as the stored float, or the choice's name. LETHE_ERR_ARG when the
 * text does not fit (buf then holds its truncated start) or a CHOICE holds
 * an index outside its choices; LETHE_PARAM_TEXT_MAX bytes always fit. */
#define LETHE_PARAM_TEXT_MAX 64
double lethe_unlearn_get(const lethe_unlearn_config *c, const lethe_param *p);
lethe_status lethe_unlearn_get_text(const lethe_unlearn_config *c, const lethe_param *p,
                                    char *buf, size_t n);

/* A settings file (configs/tuned.json: {"scenario": {"method": {"lr": 0.02,
 * "optim": "adam", …}}}): the options of entry `method` of `scenario`,
 * set into cfg by name (lethe_unlearn_set; "_"-prefixed keys are
 * comments). An entry may be a named variant of a method ("eupmu-log":
 * {"method": "eupmu", …}): cfg->method becomes the registry's name. A
 * missing file or entry leaves cfg as it was; a malformed one fails with
 * the file, the entry and the option named. Then cfg is validated. */
lethe_status lethe_settings_read(const char *path, const char *scenario, const char *method,
                                 lethe_unlearn_config *cfg);

/* ε from a utility budget: the largest ε whose run keeps the accuracy on a
 * held-out part of D_r within `budget` points of the original model's.
 * When no ε does at the given learning rate, the search goes on over the
 * step count and the learning rate: every trial keeps its model at the
 * last check within budget (a shorter run), and trials with ε = 0 at the
 * learning rate halved, up to lr_halvings times, follow; of the runs
 * within budget the one that forgets most (lowest accuracy on D_f) is
 * returned. If none is within budget, the run with the smallest drop is
 * returned with `feasible` 0: the caller must not present it as kept.
 * Held-out samples are drawn from D_r by seed and left out of every run.
 * Search: ε_hi; if it breaks the budget, ε_lo; then bisection on a log
 * scale between the largest ε kept and the smallest broken. A trial runs
 * from a copy of the original and is judged by its final model's held-out
 * accuracy; it checks every check_every steps and stops early at a check
 * over budget made at or after step early_from·T (the first steps dip and
 * recover: on fmnist-cw the drop at step 24–72 is 2–2.4 points and at the
 * end 1.4, so earlier checks would reject runs that end within budget;
 * early_from = 0 makes every check binding). If even ε_lo breaks, ε = 0 is
 * tried, then the shorter runs and smaller learning rates above. The
 * search assumes the drop grows with ε (the bound it trades); it reports
 * every trial. Budget 0 asks that the held-out accuracy not drop at all. */
typedef struct {
    double budget;          /* points of accuracy the held-out part may lose (≥ 0) */
    float eps_lo, eps_hi;   /* log-scale range (1e-4, 0.5) */
    int iters;              /* bisection trials after the ends (5, at most 24) */
    int holdout;            /* held-out retain samples (1000; at most half of D_r) */
    long check_every;       /* steps between checks (0: ⌈T/10⌉) */
    double early_from;      /* checks from step early_from·T on may stop a trial (0.5) */
    long trial_steps;       /* steps of a trial (0: T; then the best trial is the result) */
    int lr_halvings;        /* trials with ε = 0 at lr/2, lr/4, … when no ε keeps (3) */
} lethe_budget_config;
void lethe_budget_config_default(lethe_budget_config *c);

typedef struct {
    float eps;
    double ra, ra_drop;     /* held-out accuracy at the last check, and its drop */
    int kept;               /* 1: the final model within budget (and no binding check broke it) */
    int diverged;           /* 1: a loss or λ went NaN/infinite: broken (ra NaN) */
    long steps_run;         /* < steps when stopped early (0 if diverged) */
    float lr;               /* its learning rate */
    long kept_steps;        /* the last check within budget (0: none) */
    double kept_ra;         /* held-out accuracy there */
} lethe_budget_trial;

#define LETHE_BUDGET_MAX_TRIALS 32
typedef struct {
    float eps;              /* chosen */
    float lr;               /* chosen learning rate */
    long steps;             /* chosen step count (≤ T: a run shortened at a check) */
    int feasible;           /* 0: no run within the search kept the budget; the returned
                               model is the one with the smallest drop */
    double forget_acc;      /* accuracy of the returned model on D_f (%): how much
                               forgetting the budget left (UA = 100 − this) */
    double ra_orig;         /* held-out accuracy of the original (NaN for budget 0) */
    double ra_final, ra_drop_final;  /* of the returned model on the held-out part */
    int reused;             /* 1: the result is the chosen trial itself; 0: a final run */
    int ntrials;
    lethe_budget_trial trial[LETHE_BUDGET_MAX_TRIALS];
    long fwd_samples, bwd_samples;   /* the search's cost: trials and checks */
    double seconds;
    lethe_subset holdout;   /* the held-out indices into ds (owned) */
} lethe_budget_result;
void lethe_budget_result_free(lethe_budget_result *r);

/* Search ε as above, then leave m unlearned with it (cfg->eps is replaced;
 * cfg->eps_budget must be 0). res receives the final run. */
lethe_status lethe_unlearn_budget(lethe_model *m, const lethe_dataset *ds,
                                  const lethe_subset *forget, const lethe_subset *retain,
                                  const lethe_unlearn_config *cfg,
                                  const lethe_budget_config *bc, lethe_budget_result *br,
                                  lethe_unlearn_result *res, lethe_progress_fn cb, void *ctx);

/* ------------------------------------------------------------- diffusion */

/* Class-conditional DDPM machinery (PROTOCOL.md "Generation"), independent
 * of the noise-predictor network.
 *
 * Timestep index convention, used everywhere (arrays, the network's t, the
 * samplers): t ∈ {0, …, T−1}, and index t is the paper's step t+1. So
 * beta[0] = β_1, beta[T−1] = β_T, alpha_bar[t] = Π_{s≤t} (1 − beta[s]),
 * and x_t = √alpha_bar[t]·x0 + √(1 − alpha_bar[t])·ε is the noisy input at
 * index t. Labels: classes 0..nclass−1; nclass is the null ("no class")
 * label of classifier-free guidance. */
#define LETHE_DDPM_T      1000
#define LETHE_DDPM_BETA1  1e-4
#define LETHE_DDPM_BETAT  0.02

/* The noise schedule, in double (one allocation; views below). */
typedef struct lethe_ddpm {
    int T;
    double *beta;        /* (T) linear from beta1 to betaT */
    double *alpha;       /* (T) 1 − beta */
    double *alpha_bar;   /* (T) cumulative product of alpha */
    double *sqrt_ab;     /* (T) √alpha_bar */
    double *sqrt_1m_ab;  /* (T) √(1 − alpha_bar) */
    double *post_var;    /* (T) β̃_t = (1−ᾱ_{t−1})/(1−ᾱ_t)·β_t; post_var[0] = 0 (ᾱ_{−1} = 1) */
    double *post_c0;     /* (T) posterior mean μ̃ = post_c0·x0 + post_ct·x_t: */
    double *post_ct;     /* (T)   √ᾱ_{t−1}β_t/(1−ᾱ_t) and √α_t(1−ᾱ_{t−1})/(1−ᾱ_t) */
} lethe_ddpm;

/* Linear β schedule of T steps from beta1 to betaT (0 < beta1 ≤ betaT < 1,
 * 1 ≤ T ≤ 100000); Ho et al.: T = 1000, 1e-4, 0.02 (the LETHE_DDPM_*). */
lethe_status lethe_ddpm_init(lethe_ddpm *s, int T, double beta1, double betaT);
void lethe_ddpm_free(lethe_ddpm *s);

/* xt (n, d) = √ᾱ[t_i]·x0 + √(1−ᾱ[t_i])·eps for each sample i; x0, eps
 * (n, d), t (n) indices in [0, T). xt may alias x0 or eps. */
lethe_status lethe_ddpm_q_sample(const lethe_ddpm *s, float *xt, const float *x0,
                                 const float *eps, const int32_t *t, int n, int d);

/* One training batch of the denoising loss: for each sample i, in this
 * order of draws from rng: t[i] uniform in [0, T), a coin that replaces the
 * label by the null class nclass with probability p_uncond, then eps[i]
 * (d values) ~ N(0, 1); xt[i] = q_sample(x0[i], t[i], eps[i]) and yc[i] the
 * conditioning label. x0 (n, d), y (n) in [0, nclass); outputs xt, eps
 * (n, d), t, yc (n), caller-owned. The loss is ‖ε_θ(xt, t, yc) − eps‖². */
lethe_status lethe_ddpm_train_batch(const lethe_ddpm *s, lethe_rng *rng,
                                    const float *x0, const int32_t *y, int n, int d,
                                    int nclass, float p_uncond, float *xt, float *eps,
                                    int32_t *t, int32_t *yc);

/* The noise predictor: eps_out (n, d) = ε_θ(x (n, d), t (n), y (n)), with
 * y = nclass meaning unconditional. A non-OK status stops the sampler. */
typedef lethe_status (*lethe_eps_fn)(void *ctx, const float *x, const int32_t *t,
                                     const int32_t *y, int n, float *eps_out);

typedef enum {
    LETHE_SAMPLER_DDIM,       /* Song et al.; eta = 0 is deterministic */
    LETHE_SAMPLER_ANCESTRAL   /* Ho et al., posterior variance β̃ (respaced when S < T) */
} lethe_sampler_kind;

typedef struct {
    lethe_sampler_kind kind;
    int steps;          /* S in [1, T]: timesteps τ_i = ⌊(i+1)·T/S⌋ − 1, i < S,
                           visited from τ_{S−1} = T−1 down to τ_0 */
    float eta;          /* DDIM noise: σ = eta·√((1−ᾱ_prev)/(1−ᾱ_t)·(1−ᾱ_t/ᾱ_prev)) */
    float guidance;     /* w: ε = ε_uncond + w·(ε_cond − ε_uncond); 1 = conditional only */
    int clip_x0;        /* 1: clamp the predicted x0 to [−1, 1] (ε re-derived from it) */
} lethe_sample_config;
/* DDIM, 50 steps, eta 0, guidance 1, clip on. */
void lethe_sample_config_default(lethe_sample_config *c);

/* Scratch for sampling batches of up to max_batch samples of d values,
 * sized once so that the step loop allocates nothing. */
typedef struct {
    int max_batch, d;
    float *x2;          /* (2·max_batch, d) the doubled batch of guidance */
    float *eps;         /* (2·max_batch, d) predictions */
    int32_t *t, *y;     /* (2·max_batch) */
} lethe_ddpm_sampler;
lethe_status lethe_ddpm_sampler_init(lethe_ddpm_sampler *w, int max_batch, int d);
void lethe_ddpm_sampler_free(lethe_ddpm_sampler *w);

/* Generate x (n, d) for labels y (n) in [0, nclass] (nclass: unconditional),
 * n ≤ w->max_batch, d = w->d: x_T ~ N(0, I) from rng, then S steps of the
 * sampler. With guidance ≠ 1, fn is called once per step on a batch of 2n:
 * rows [0, n) with y, rows [n, 2n) with the null class. Larger n: the
 * caller chunks. LETHE_ERR_NUMERIC if the result is not finite. */
lethe_status lethe_ddpm_sample(const lethe_ddpm *s, const lethe_sample_config *c,
                               lethe_ddpm_sampler *w, lethe_eps_fn fn, void *ctx,
                               int nclass, const int32_t *y, int n, lethe_rng *rng,
                               float *x);

/* Fréchet distance between Gaussians fitted to two feature sets (call it
 * FD-cls on classifier features, never FID): ‖μa − μb‖² + tr(Σa + Σb −
 * 2(ΣaΣb)^{1/2}), in double, covariances unbiased (n − 1), the trace term
 * from symmetric eigendecompositions (LAPACK dsyev). a (na, d), b (nb, d);
 * na, nb ≥ 2, d ≥ 1. Rounding below 0 is returned as 0. */
lethe_status lethe_frechet_distance(const float *a, int na, const float *b, int nb,
                                    int d, double *out);
/* Mean mu (d) and unbiased covariance cov (d, d) of x (n, d), n ≥ 2. */
lethe_status lethe_feature_stats(const float *x, int n, int d, double *mu, double *cov);
/* The distance from statistics (e.g. the real set's, computed once). */
lethe_status lethe_frechet_from_stats(const double *mu_a, const double *cov_a,
                                      const double *mu_b, const double *cov_b, int d,
                                      double *out);

/* ---------------------------------------------------------- image output */

/* out[i] = round(255·(x[i] − lo)/(hi − lo)) clamped to 0..255 (NaN → 0). */
void lethe_pixels_to_bytes(uint8_t *out, const float *x, size_t n, float lo, float hi);
/* A grayscale 8-bit PNG of n images (n, h, w) in a grid of `cols` columns
 * (⌈n/cols⌉ rows), values mapped from [lo, hi] to 0..255 and clamped, 2
 * white pixels between tiles (empty tiles white), written atomically. */
lethe_status lethe_png_write_grid(const char *path, const float *img, int n, int h,
                                  int w, int cols, float lo, float hi);
/* IDX ubyte images (magic 0x00000803; n, h, w) from floats mapped as
 * lethe_pixels_to_bytes, and labels (magic 0x00000801) from y in 0..255;
 * gzip-compressed when path ends in ".gz"; written atomically. Read back
 * with lethe_idx_read_images / lethe_idx_read_labels. */
lethe_status lethe_idx_write_images_float(const char *path, const float *img, int n,
                                          int h, int w, float lo, float hi);
lethe_status lethe_idx_write_labels(const char *path, const int32_t *y, int n);

/* ---------------------------------------------------- generation (DDPM) */

/* Training a noise predictor ("unet") on images mapped to [−1, 1]. */
typedef struct {
    lethe_train_config train;   /* AdamW, lr 1e-3 cosine, batch 128, 12 epochs, no wd */
    float p_uncond;             /* label dropped to the null class (0.1) */
    float ema;                  /* θ returned = EMA of the iterates with this decay
                                   (0.999; 0: the last iterate) */
} lethe_diffusion_config;
void lethe_diffusion_config_default(lethe_diffusion_config *c);
/* view = ds with pixels normalised to [−1, 1] (mean 0.5, std 0.5); shares
 * ds's pixels. */
void lethe_dataset_unit_view(lethe_dataset *view, const lethe_dataset *ds);
/* The denoising loss: losses[i] = mean_j (pred − target)², returned as the
 * mean over i; dpred (n, d) (+=, may be NULL) gets weight·∂losses[i]/∂pred
 * for every row. */
float lethe_denoise_loss(float *losses, float *dpred, const float *pred, const float *target,
                         float weight, int n, int d);
lethe_status lethe_train_diffusion(lethe_model *m, const lethe_dataset *ds,
                                   const lethe_subset *sub, const lethe_ddpm *sched,
                                   const lethe_diffusion_config *cfg, lethe_progress_fn cb,
                                   void *ctx);
/* The same under a run control (periodic states, stop, resume; as
 * lethe_train_run), the noise RNG and the EMA included in the state. */
lethe_status lethe_train_diffusion_run(lethe_model *m, const lethe_dataset *ds,
                                       const lethe_subset *sub, const lethe_ddpm *sched,
                                       const lethe_diffusion_config *cfg, lethe_run_control *run,
                                       lethe_progress_fn cb, void *ctx);

/* A lethe_eps_fn over a "unet" model (ctx): EVAL-mode forward with t, y. */
lethe_status lethe_unet_eps(void *ctx, const float *x, const int32_t *t, const int32_t *y,
                            int n, float *eps_out);
#define LETHE_GEN_MAX_BATCH 512
#define LETHE_GEN_MAX_CLASSES 64
/* n images x (n, d) in [−1, 1] of class cls (nclass: unconditional), in
 * chunks of w->max_batch, from a noise stream of (seed, cls): the same
 * seed gives the same starting noise for a class whatever the model. */
lethe_status lethe_gen_sample_class(lethe_model *unet, const lethe_ddpm *s,
                                    const lethe_sample_config *sc, lethe_ddpm_sampler *w,
                                    int cls, int n, uint64_t seed, float *x);

typedef struct {
    int per_class;              /* generated images per class (100) */
    int batch;                  /* sampling batch (100; ≤ LETHE_GEN_MAX_BATCH) */
    lethe_sample_config sample; /* DDIM 50 steps, guidance 2 */
    uint64_t seed;
    /* NULL, or real images of the same classes (e.g. the training split):
     * per_class of each retained class stand in for the generated ones,
     * giving FD-cls's floor at this sample size (fd_cls_real). */
    const lethe_dataset *floor_set;
    /* Generated images of each forgotten class for UA_gen (0: per_class);
     * per_class is then the count of every retained class. */
    int per_forget;
} lethe_gen_eval_config;
void lethe_gen_eval_config_default(lethe_gen_eval_config *c);

/* Generation metrics (PROTOCOL.md), in percent except fd_cls. */
typedef struct {
    int nclass, per_class, n_real;
    uint64_t forget_mask;
    double acc[LETHE_GEN_MAX_CLASSES]; /* classifier accuracy on each class's generated images */
    double ua_gen;              /* 100 − mean acc over the forgotten classes */
    double ua_gen_lo, ua_gen_hi;/* its 95% Wilson interval (binomial, n_forget images) */
    int n_forget;               /* generated images per forgotten class */
    double acc_retained;        /* mean acc over the retained classes */
    double fd_cls;              /* Fréchet distance of the classifier's penultimate
                                   features: real (n_real) vs generated retained images */
    long fwd_samples;           /* noise-predictor forwards (one image each) */
    double fd_cls_real;         /* FD-cls of floor_set's real images in place of the
                                   generated ones (NaN without a floor set) */
    int n_floor;                /* real images in that floor */
} lethe_gen_metrics;
/* Wilson's 95% score interval of a binomial share k/n, as fractions in
 * [0, 1]; NaN for n ≤ 0 or k outside [0, n]. */
void lethe_wilson95(long k, long n, double *lo, double *hi);
/* Generate per_class images of every retained class and per_forget of
 * every forgotten one with unet, classify them with clf (a classifier of
 * the same classes) after quantising to bytes, and compare features with
 * the retained-class images of `real` (e.g. the test split). images: NULL,
 * or (nclass·per_class, d) receiving the generated images class by class
 * (then per_forget must be 0 or per_class). */
lethe_status lethe_gen_evaluate(lethe_model *unet, const lethe_ddpm *s, lethe_model *clf,
                                const lethe_dataset *real, uint64_t forget_mask,
                                const lethe_gen_eval_config *c, lethe_gen_metrics *out,
                                float *images);

#ifdef __cplusplus
}
#endif
#endif
