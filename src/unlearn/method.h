/*
 * The shared machinery of an unlearning step (DESIGN.md "The path of one
 * unlearning step") and the method vtable. A method file holds only what
 * differs between methods: which losses, which coefficients, how the
 * direction is formed and what λ does.
 */
#ifndef LETHE_UNLEARN_METHOD_H
#define LETHE_UNLEARN_METHOD_H

#include <stddef.h>

#include "core/dist.h"
#include "io/runstate.h"
#include "lethe.h"

/* Group indices within a step's batch: forgetting samples first. */
enum { UL_F = 0, UL_R = 1 };

/* Diffusion rows (diffusion.c): clean images, noise targets (or the
 * stop-gradient targets of rl rows), timesteps and conditioning labels. */
typedef struct {
    const lethe_ddpm *s;
    lethe_dataset unit;         /* the data set mapped to [−1, 1] */
    lethe_rng rng;              /* t, ε and the null-label coins */
    float p_uncond;
    size_t d;                   /* floats per image */
    float *x0;                  /* (rows, d) */
    float *target;              /* (rows, d) */
    int32_t *t, *yc;            /* (rows) */
} ul_diff;

struct ul_ctx;

/* What differs between the tasks (task_classify.c, diffusion.c): what a
 * row of a batch is and how its loss is read from the model's outputs.
 * Chosen once per run, from the model; the step machinery calls it and
 * never asks which task it runs. NULL entries: nothing to do. */
typedef struct ul_task {
    const char *name;
    /* Buffers for `rows` rows (d floats each); the run's data set may be
     * replaced by the task's view of it (c->ds). */
    lethe_status (*init)(struct ul_ctx *c, size_t rows);
    void (*free)(struct ul_ctx *c);
    /* Rows [from, from + count) of c->x hold drawn samples (labels in c->y,
     * targets in c->yt): make them the task's rows; with rl the forgetting
     * rows' targets are those of random other classes. */
    lethe_status (*prepare)(struct ul_ctx *c, int from, int count, int rl);
    /* Move prepared rows: the look-ahead rows, prepared when they were
     * measured, become the step's retain rows unchanged (NULL: the look-ahead
     * rows are drawn from the data again). */
    void (*move_rows)(struct ul_ctx *c, int from, int to, int count);
    /* Per-row conditioning of rows from.. before a forward. */
    lethe_status (*cond)(struct ul_ctx *c, int from);
    /* Per-sample losses of rows [from, from + count) of the last forward
     * (c->logits) into c->losses, their gradient at weight each into
     * c->dlogits when grad; returns the mean. */
    float (*loss)(struct ul_ctx *c, lethe_loss_kind k, int from, int count, float weight,
                  int grad);
    /* The retain-kind loss of rows [from, from + count) from outputs `out`
     * of a forward of those rows alone (ul_eval_loss). */
    float (*eval_loss)(struct ul_ctx *c, const float *out, int from, int count);
    /* The task's own values in run states (its random streams), and the
     * prepared look-ahead rows [at, at + count) that cannot be drawn again
     * ("lookahead.*"; loaded for the samples idx, whose clean data is read
     * again). */
    void (*save)(struct ul_ctx *c, rs_writer *w);
    lethe_status (*load)(struct ul_ctx *c, const rs_reader *r);
    void (*save_rows)(struct ul_ctx *c, rs_writer *w, int at, int count);
    lethe_status (*load_rows)(struct ul_ctx *c, const rs_reader *r, int at, int count,
                              const int32_t *idx);
} ul_task;

extern const ul_task ul_task_classify, ul_task_diffusion;

/* A float array a method keeps in run states, by tensor name. */
typedef struct { const char *name; float *p; size_t n; } ul_saved;

typedef struct ul_ctx {
    lethe_model *m;
    const lethe_dataset *ds;
    const lethe_unlearn_config *cfg;
    const lethe_subset *forget, *retain;
    lethe_unlearn_result *res;
    float *theta, *grad;        /* (n) model-owned θ and ∇ */
    size_t n;
    float *g_u, *g_r;           /* (n) per-group gradients (if requested) */
    uint8_t *mask;              /* (n) SalUn: 1 = may move; NULL = all */
    float *dclip;               /* (n) the clipped direction (clip_grad > 0), else NULL */
    float last_norm;            /* ‖d‖ of the last clipped step */
    int log_plain;              /* log λ form with plain losses, w⁺/(1+w⁺) (EUPMU-fast, §7) */
    lethe_optim opt;
    lethe_schedule sched;
    lethe_igs igs;
    lethe_rng rng;              /* random labels */
    lethe_stream fs, rs;        /* forgetting / retaining batches */
    int nclass, bs, nf, nr;     /* batch sizes of this run */
    size_t px;                  /* floats per image */
    float *x;                   /* (nf + 2·nr, C, H, W): B_f, B_r, look-ahead */
    int32_t *y;                 /* (nf + 2·nr) true labels */
    int32_t *yt;                /* (nf + 2·nr) targets used by the loss */
    int32_t *idx;               /* (max(nf, nr)) */
    int32_t *next_r;            /* (nr) the next retain batch (look-ahead) */
    int have_next_r;
    float *w;                   /* (nf + nr) per-sample loss weights */
    float *losses;              /* (nf + 2·nr) */
    float *dlogits;             /* (nf + nr, C) */
    const float *logits;        /* of the last forward, model-owned */
    lethe_groups g;             /* [0, nf), [nf, nf + nr) */
    int cur_nf;                 /* forgetting rows of the current draw (0 when only B_r) */
    int draw_nf, draw_nr;       /* the current draw's forget and retain rows, whole batch */
    float lr;                   /* α_t of the current step */
    float eps;                  /* ε_t */
    void *state;                /* method's own (owned by the method) */
    /* Float arrays of the method's own saved in run states by name, as
     * tensors (set in init, owned by the method): trainable values beyond
     * θ and their optimiser state (BE's shadow class). */
    ul_saved saved[4];
    int nsaved;
    size_t dout;                /* model outputs per row: nclass, or d for a unet */
    const ul_task *task;        /* what a row is: classification or diffusion */
    /* Forget just enough (unseen.c): target losses by data-set index (NaN
     * outside D_f) and of the drawn forgetting rows; NULL: off. */
    float *tau_by_index;        /* (ds->n) */
    float *row_tau;             /* (nf) */
    lethe_status task_err;      /* of the last ul_draw's prepare, reported by the forward */
    ul_diff *diff;              /* the diffusion task's rows (read by diffusion.c and the
                                   diffusion-only methods); NULL: classification */
    /* Under mpirun (core/dist.h): this rank's rows of the current draw,
     * its share of B_f in rows [0, dist_nf), of B_r in [dist_nf, dist_nf +
     * dist_nr); dist_all the global rows drawn. Row ranges of the global
     * draw ([0, nf), [nf, nf + nr)) given to ul_loss and ul_eval_loss are
     * read as these (ul_local_rows). */
    int dist_nf, dist_nr, dist_all, dist_drew_f;
    /* --deterministic: the draw's chunks (a sample group each) and their
     * gradients (2·UL_CHUNKS, n); chunks NULL when off. */
    core_dist_plan plan;
    float *chunks;
    double diag_s;              /* wall seconds of the diagnostics' observing backwards,
                                   left out of the run's seconds (its RTE) */
} ul_ctx;

/* --deterministic: each batch of a draw in this many fixed chunks (two
 * batches a draw: LETHE_MAX_GROUPS in all). */
#define UL_CHUNKS (LETHE_MAX_GROUPS / 2)

typedef struct {
    const char *name;
    const char *summary;
    int uses_forget, uses_retain;  /* which batches a step draws */
    int needs_group_grads;         /* allocate g_u and g_r */
    int uses_eps;                  /* has an ε: the audit bound and budget search apply */
    int has_lambda_form;           /* λ learnt by lethe_igs: --lambda-form applies */
    int diffusion_only;            /* needs an unconditional prediction (ESD) */
    int classification_only;       /* needs class logits (SCRUB, BS) */
    const lethe_param *params;     /* its own options (in method_opt slots or fields) */
    int nparams;
    const char *defaults;          /* its own defaults of shared options ("lr=0.001"),
                                      applied when it is chosen by name */
    const char *grid;              /* tune's default grid on a classification scenario */
    const char *gen_grid;          /* … and on the diffusion one (NULL: not run there) */
    size_t state_size;             /* bytes of c->state (plain data, no pointers): saved
                                      as is in run states; 0: none */
    lethe_status (*init)(ul_ctx *c);            /* may be NULL */
    lethe_status (*step)(ul_ctx *c, long t, lethe_trace_step *tr);
    void (*finish)(ul_ctx *c);                  /* may be NULL */
    /* Its values in run states beyond c->state and c->saved (SalUn's mask,
     * the look-ahead batch); may be NULL. load runs after init. */
    void (*save)(ul_ctx *c, rs_writer *w);
    lethe_status (*load)(ul_ctx *c, const rs_reader *r);
} ul_method;

/* Draw the step's batches: B_f into rows [0, nf), B_r into [nf, nf + nr)
 * (either may be skipped); sets c->g. Targets yt are the true labels, or
 * fresh random other labels for B_f when rl_forget is set. */
void ul_draw(ul_ctx *c, int forget, int retain, int rl_forget);
/* The task's rows from samples just put in rows [from, from + count) of
 * c->x (see ul_task.prepare); nothing for classification. */
lethe_status ul_prepare(ul_ctx *c, int from, int count, int rl);
/* Under mpirun: rows [from, from + count) of the global draw ([0, nf) for
 * B_f, [nf, nf + nr) or [0, nr) for B_r) as this rank's rows of them; one
 * process: unchanged. */
void ul_local_rows(const ul_ctx *c, int *from, int *count);
/* Forward rows [0, nf + nr) (or only the drawn ones) as two groups. */
lethe_status ul_forward(ul_ctx *c, lethe_bn_mode mode);
/* Per-sample losses on rows [from, from + count) of the last forward into
 * c->losses and their weighted gradient into c->dlogits (weight each,
 * 0: loss only). Returns the mean loss. */
float ul_loss(ul_ctx *c, lethe_loss_kind k, int from, int count, float weight);
/* ℓ_u of the configured kind on the forgetting rows with weight wf. */
float ul_forget_loss(ul_ctx *c, float wf);
/* Zero dlogits of the drawn rows. */
void ul_clear_dlogits(ul_ctx *c);
/* Backward over the drawn rows: group k's gradient into grads[k]; the
 * destinations are zeroed first. Counts the backpropagated samples. */
lethe_status ul_backward(ul_ctx *c, float *g_forget, float *g_retain);
/* θ ← optimiser(θ, d, α_t) with the mask. */
void ul_apply(ul_ctx *c, const float *d);
/* Mean CE of the model on rows [from, from + count) of c->x with batch
 * statistics, running averages untouched; counted as forward work. */
lethe_status ul_eval_loss(ul_ctx *c, int from, int count, float *loss);
/* Forget just enough (unseen.c): the targets, at θ_0 (counted); and the
 * gate, which zeroes the ℓ_u gradient of forgetting rows [from, from +
 * count) of the last forward that are at or above their target. */
lethe_status ul_unseen_init(ul_ctx *c);
void ul_unseen_gate(ul_ctx *c, int from, int count);
/* Fail with LETHE_ERR_NUMERIC naming the step and quantity if v is not finite. */
lethe_status ul_check(long t, const char *what, double v);

/* EUPMU's composite backward over the drawn batch: records ℓ_u, ℓ_r(θ_t; B_r)
 * and λ in tr and leaves d = ∇(ℓ_u + λ ℓ_r) in c->grad. With diagnostics the
 * same single backward is grouped into g_u and g_r (ℓ_r at weight 1) and
 * d = g_u + λ g_r is formed from them; cos, conflict and λ*_t go into tr. */
lethe_status ul_composite_backward(ul_ctx *c, float lam, lethe_trace_step *tr);
/* Diagnostics from c->g_u, c->g_r: cos and conflict, and λ*_t (with
 * c->eps) when with_lambda_star. dot = ⟨g_u, g_r⟩, nr2 = ‖g_r‖². */
void ul_diag_record(ul_ctx *c, lethe_trace_step *tr, double dot, double nr2,
                    int with_lambda_star);
/* The summary of a finished run's diagnostics into res. */
void ul_diag_summarise(lethe_unlearn_result *res);

/* Split `from` into `held` (n samples drawn by seed) and `rest` (the
 * others, in their order). Both owned by the caller. */
lethe_status ul_holdout_split(const lethe_subset *from, size_t n, uint64_t seed,
                              lethe_subset *held, lethe_subset *rest);

/* The utility audit (lethe_unlearn_config.audit): the probe, normalised once. */
typedef struct {
    int n, chunk;
    float *x;               /* (n, C, H, W) */
    int32_t *y;             /* (n) */
    float *losses;          /* (chunk) */
    float last;             /* ℓ_r(θ_t; probe) of the current θ */
    double sum_delta, sum_allowed;
} ul_audit;
lethe_status ul_audit_init(ul_audit *a, ul_ctx *c, const lethe_subset *probe);
/* Measure ℓ_r(θ_{t+1}; probe) after step t and fill the trace's audit fields. */
lethe_status ul_audit_step(ul_audit *a, ul_ctx *c, long t, lethe_trace_step *tr, int has_eps);
void ul_audit_free(ul_audit *a);

/* Called after every step; returns 1 to stop the run there (res->steps
 * becomes the steps run), 0 to go on, or sets *st and returns 1 to fail. */
typedef struct {
    int (*fn)(lethe_model *m, long t, void *ctx, lethe_status *st);
    void *ctx;
} ul_hook;
/* lethe_unlearn with a hook (NULL: none). */
lethe_status ul_run(lethe_model *m, const lethe_dataset *ds, const lethe_subset *forget,
                    const lethe_subset *retain, const lethe_unlearn_config *cfg,
                    lethe_unlearn_result *res, lethe_progress_fn cb, void *cbctx,
                    const ul_hook *hook);
/* Run states (state.c): the settings a resumed run must share with the
 * one that wrote the state (theta0: the hash of the starting model), and
 * the state after `done` of T steps written and read back. */
void ul_config_text(char *buf, size_t len, const ul_ctx *c, long T, uint64_t theta0);
lethe_status ul_save(const char *path, ul_ctx *c, const ul_method *meth, const ul_audit *audit,
                     const char *config, long done, long T, double seconds);
lethe_status ul_load(const char *path, ul_ctx *c, const ul_method *meth, ul_audit *audit,
                     const char *config, long T, long *done, double *seconds);

/* The step count T of a configuration on a forget set of nf samples. */
long ul_steps(const lethe_unlearn_config *cfg, size_t nf);

/* The diffusion task's ±denoising loss (NEG_CE: −) of rows [from, from +
 * count) of the last forward against their targets (diffusion.c; ESD's
 * own target uses it). */
float ul_diff_loss(ul_ctx *c, lethe_loss_kind k, int from, int count, float weight, int grad);

/* The two gradients of one grouped backward (§2.1): draws B_f (random
 * labels for rl) and B_r, records ℓ_u and ℓ_r(θ_t) in tr, leaves
 * ∇ℓ_u in c->g_u and ∇ℓ_r in c->g_r. Cost 2F + 2B. */
lethe_status ul_two_grads(ul_ctx *c, lethe_trace_step *tr);
/* A step whose direction is a combination of the two gradients,
 * d = a_u·g_u + a_r·g_r, with the weights from their Gram entries
 * (‖g_u‖², ‖g_r‖², ⟨g_u, g_r⟩): the multi-objective methods. */
lethe_status ul_combine_step(ul_ctx *c, long t, lethe_trace_step *tr,
                             void (*weights)(const ul_ctx *c, double uu, double rr, double ur,
                                             double *au, double *ar));
/* Their weights, for the known-answer tests (pcgrad.c, mgda.c, cagrad.c). */
void ul_pcgrad_weights(double uu, double rr, double ur, double *au, double *ar);
void ul_mgda_weights(double uu, double rr, double ur, double *au, double *ar);
void ul_cagrad_weights(double uu, double rr, double ur, double cc, double *au, double *ar);

/* A frozen copy of c->m (θ, buffers) sized for the run's batches: the
 * original model, for methods that compare with it (SCRUB's teacher, BS's
 * attacked model). Owned by the caller. */
lethe_status ul_frozen_copy(ul_ctx *c, lethe_model **out);
/* SCRUB's distillation term of one row of k logits: returns
 * τ²·KL(softmax(zt/τ) ‖ softmax(zs/τ)) and, when dz is not NULL, adds
 * w·τ·(softmax(zs/τ) − softmax(zt/τ)), w times its gradient in zs (scrub.c). */
double ul_kd(const float *zs, const float *zt, int k, float tau, float w, float *dz);

/* Boundary Shrink's label from the logits z (k) of an attacked sample of
 * label y: the argmax, or the best other class when that is y (bs.c). */
int ul_bs_label(const float *z, int y, int k);

/* Boundary Expanding's loss on one row: CE toward the shadow class k of
 * the logits z (k) extended by z_k = row[0..dim)·h + row[dim]; adds w times
 * its gradients to dz (k), drow (dim + 1) and dh (dim) (each may be NULL)
 * and returns the loss (be.c). */
double ul_be_shadow(const float *z, int k, const float *h, int dim, const float *row, float w,
                    float *dz, float *drow, float *dh);

/* RL's step, shared with SalUn (which adds the mask). */
lethe_status ul_rl_step(ul_ctx *c, long t, lethe_trace_step *tr);

/* Declaring options (see lethe_param): a REAL kept in a config field, a
 * CHOICE kept in an enum field, a REAL kept in method_opt slot k. */
#define UL_FIELD(f) offsetof(lethe_unlearn_config, f)
#define UL_REAL(nm, al, f, lo, lo_open, hi, hi_open, grid, help) \
    {nm, al, LETHE_PARAM_REAL, "X", help, NULL, lo, hi, lo_open, hi_open, grid, \
     LETHE_STORE_F32, UL_FIELD(f), 0}
#define UL_CHOICE(nm, al, f, choices, help) \
    {nm, al, LETHE_PARAM_CHOICE, "NAME", help, choices, 0, 0, 0, 0, NULL, LETHE_STORE_I32, \
     UL_FIELD(f), 0}
#define UL_OPT_REAL(nm, k, def, lo, lo_open, hi, hi_open, grid, help) \
    {nm, NULL, LETHE_PARAM_REAL, "X", help, NULL, lo, hi, lo_open, hi_open, grid, \
     LETHE_STORE_OPT, k, def}

/* The registry (registry.c) and a method by name (NULL: none). */
const ul_method *const *ul_registry(int *n);
const ul_method *ul_find_method(const char *name);
/* Fail with "unknown method 'x' (known: …)". */
lethe_status ul_unknown_method(const char *name);
/* Every option of c->method within its range (params.c). */
lethe_status ul_check_params(const lethe_unlearn_config *c);
/* Edit distance of two option names ('-' as '_', a swap of neighbours as one). */
int ul_edit_distance(const char *a, const char *b);
/* The value of a method's own option k (its default while unset). */
#define UL_OPT(c, meth, k) ((float)lethe_unlearn_get((c)->cfg, &(meth).params[k]))

extern const ul_method ul_eupmu, ul_eupmu_fast, ul_eupmu_lookahead, ul_ungrad, ul_ungrad_mixed,
    ul_ft, ul_ga, ul_rl, ul_neggrad, ul_salun, ul_l1sparse, ul_esd, ul_pcgrad, ul_cagrad,
    ul_mgda, ul_scrub, ul_bs, ul_be;

#endif
