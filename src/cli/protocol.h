/* The unlearning protocol of PROTOCOL.md: scenarios, cached original and
 * Retrain models, tuned settings, and one method run with its metrics. */
#ifndef LETHE_CLI_PROTOCOL_H
#define LETHE_CLI_PROTOCOL_H

#include "cli/cli.h"
#include "cli/table.h"

/* A scenario and its original/Retrain recipe: SGD, momentum 0.9, wd 5e-4,
 * batch 128, lr cosine to 0 over the epochs (PROTOCOL.md); the text ones
 * AdamW (β 0.9, 0.999), their own weight decay and batch. */
typedef struct {
    const char *name;       /* fmnist-cw */
    const char *forget;     /* class:0; "every:K:N": the N training indices 0, K, 2K, …
                               (an index file the cache holds, PROTO_EVERY_FILE) */
    const char *arch;       /* cnn */
    const char *data;       /* fmnist */
    int epochs;             /* the recipe's default epochs (--epochs overrides) */
    float lr;               /* its peak learning rate */
    int augment;            /* LETHE_AUGMENT_*: crop 4 + flip, or flip, on every training batch */
    int adamw;              /* 1: AdamW with weight decay wd and batch `batch` */
    float wd;
    int batch;
} proto_scenario;

/* The index file of an "every:K:N" scenario in the cache folder. */
#define PROTO_EVERY_FILE "forget-%s.txt"
/* fmnist-vit-cw: vit-tiny on Fashion-MNIST, AdamW lr 0.002 cosine, wd
 * 0.05, batch 128, for this many epochs. */
#define PROTO_VIT_EPOCHS 12
/* sms-rnd and sms-idx: text-transformer on SMS Spam for this many epochs. */
#define PROTO_SMS_EPOCHS 10

/* cifar10-cw and cifar10-rnd: resnet20 with augmentation, lr 0.1, this
 * many epochs (PROTOCOL.md: chosen from the measured epoch time so that a
 * model trains within about 45 minutes on 2 cores). */
#define PROTO_CIFAR_EPOCHS 20
#define PROTO_CIFAR_EPOCHS_TEXT "20"

const proto_scenario *proto_find(const char *name);
/* The scenario names, the table's order, into out (at most cap); with_gen
 * adds "fmnist-ddpm-cw" (cmd_gen_bench.c's) last. The count. */
int proto_scenario_names(const char **out, int cap, int with_gen);

typedef struct {
    const proto_scenario *sc;
    const char *cache;          /* folder of cached models */
    const char *data_dir;
    int epochs;                 /* original/Retrain recipe */
    uint64_t seed;
    int quiet;
    cli_split sp;
    lethe_model *orig, *retrain;
    lethe_metrics m_orig, m_retrain;   /* m_retrain only if retrain != NULL */
    double retrain_seconds;
    proto_scenario own;         /* a custom setup's "scenario" (proto_open_custom) */
    char own_data[32];          /* its data set name */
    char data_fp[17];           /* fingerprint of the data (proto_cache_path), "" until made */
    char every_spec[1100];      /* "indices:CACHE/forget-NAME.txt" of an every:K:N scenario */
} proto_ctx;

/* Load the split; train or reuse the original and Retrain models. */
lethe_status proto_open(proto_ctx *p, const proto_scenario *sc, const char *cache,
                        const char *data_dir, int epochs, uint64_t seed, int quiet);
/* The same with a random forget set drawn by forget_seed (proto_open:
 * the training seed; its Retrain cached under a name with -fN) and
 * --match-unseen's mode (proto_open: auto; cli_split_match). */
lethe_status proto_open_draw(proto_ctx *p, const proto_scenario *sc, const char *cache,
                             const char *data_dir, int epochs, uint64_t seed,
                             uint64_t forget_seed, const char *match_unseen, int quiet);
void proto_close(proto_ctx *p);
/* Train or reuse only the original model (p->sc, cache, epochs, seed and
 * the split p->sp set). */
lethe_status proto_ensure_original(proto_ctx *p);
/* The cache file of a model trained on p->sp's data: CACHE/STEM-data-FP-TAIL
 * .safetensors, FP the first 12 hex digits of a fingerprint (FNV-1a) of
 * both splits' sizes, pixels and labels, so that a model trained on other
 * data is never reused for these (made into p->data_fp on first use). A
 * cache made before fingerprints, CACHE/STEM-TAIL.safetensors, is used
 * in its place when the fingerprinted file does not exist and the data
 * are the scenario's own from the default folder (where it was made). */
void proto_cache_path(proto_ctx *p, const char *stem, const char *tail, char *out, size_t n);
/* A setup of one's own instead of a scenario: the trained model at
 * model_path is the original (loaded as `arch` when its metadata names
 * none: cli_open_model_as), reference_path (may be NULL) the Retrain
 * model; data NULL takes the checkpoint's data set. Gaps are NaN without a
 * reference. The strings must outlive p. */
lethe_status proto_open_custom(proto_ctx *p, const char *model_path, const char *arch,
                               const char *reference_path,
                               const char *forget, uint64_t forget_seed, const char *data,
                               const char *data_dir, uint64_t seed, int quiet);

/* Settings of `method` for the scenario from the tuned file (defaults when
 * absent). Errors on a malformed file. An entry may be a named variant of
 * a method ("eupmu-adam": {"method": "eupmu", "optim": "adam", ...}): cfg's
 * method then becomes the registry's name; the caller keeps the variant's
 * name as the row's label. */
lethe_status proto_tuned(const char *path, const char *scenario, const char *method,
                         lethe_unlearn_config *cfg);
/* 0 if `name` is a method, or a variant of one in the tuned file's entries
 * for the scenario (scn may be NULL: methods only); else 2 after the
 * usage line of cli_check_method. */
int proto_check_method(const char *cmd, const char *opt, const char *name, const char *tuned,
                       const char *scn);
/* A search grid: "name=v1,v2;name=…" over the options of base's method
 * (lethe_method_params); every value is checked against base's method. */
#define PROTO_GRID_PARAMS 4
#define PROTO_GRID_VALUES 16
typedef struct {
    int np;
    char name[PROTO_GRID_PARAMS][32];
    int nv[PROTO_GRID_PARAMS];
    double v[PROTO_GRID_PARAMS][PROTO_GRID_VALUES];
} proto_grid;
lethe_status proto_parse_grid(const char *text, const lethe_unlearn_config *base, proto_grid *g);
/* Store the grid's values best[k] of each parameter as scenario.method's
 * settings in the tuned file (created if missing; other entries kept). */
lethe_status proto_write_best(const char *path, const char *scn, const char *method,
                              const proto_grid *g, const int *best);

typedef struct {
    lethe_metrics m;
    double gap;
    lethe_unlearn_result res;
    lethe_unlearn_config cfg;   /* as run: with the unseen reference, if any */
} proto_run;

/* Run one method from a copy of the original and evaluate it. */
lethe_status proto_run_method(proto_ctx *p, const lethe_unlearn_config *cfg, proto_run *out);

/* The unlearning table on stdout: | FIRST ("method" or "model") | UA | RA | TA |
 * MIA-Eff. | Avg. Gap | RTE (s) | fwd/bwd passes |. "–" for a gap that is NaN
 * (no Retrain), secs < 0 (not timed), no passes (r NULL: no run). */
void proto_table_begin(table *t, const char *first);
void proto_table_row(table *t, const char *name, const lethe_metrics *m, double gap,
                     double secs, const lethe_unlearn_result *r);
/* A row's last two cells: RTE (s) and fwd/bwd passes. */
void proto_table_cost(table *t, double secs, const lethe_unlearn_result *r);

#endif
