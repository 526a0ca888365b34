/* Generation commands (cmd_gen.c, cmd_gen_unlearn.c) and their shared
 * pieces: a diffusion checkpoint keeps its noise schedule in metadata. */
#ifndef LETHE_CLI_GEN_H
#define LETHE_CLI_GEN_H

#include "cli/cli.h"
#include "cli/table.h"

int cmd_train_diffusion(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval_diffusion(int argc, char **argv);
int cmd_unlearn_diffusion(int argc, char **argv);
int cmd_bench_diffusion(int argc, char **argv);

/* Store s (made from beta1..betaT) as "task", "ddpm_T", "ddpm_beta*";
 * lethe_meta_set's status. */
lethe_status gen_meta_schedule(lethe_metadata *md, const lethe_ddpm *s, double beta1,
                               double betaT);
/* Open a diffusion checkpoint and rebuild its schedule (free both). */
lethe_status gen_open(const char *path, lethe_model **m, lethe_metadata *md, lethe_ddpm *s);
/* Save a diffusion model with its schedule, recipe and data in metadata
 * (without: the forget spec it was trained without, or NULL). */
lethe_status gen_save(const lethe_model *m, const lethe_ddpm *s, const lethe_dataset *train,
                      const lethe_diffusion_config *cfg, const char *without, const char *path);
/* --sampler, --steps, --eta, --guidance (default 2); 0 or the exit status. */
int gen_sample_opts(const cli_args *a, const char *cmd, lethe_sample_config *sc);

/* Generation metrics as JSON, a per-class grid (cols per row). */
#include <cjson/cJSON.h>
cJSON *gen_metrics_json(const lethe_gen_metrics *g, const lethe_gen_eval_config *c);
lethe_status gen_write_grid(const char *path, const float *images, int nclass, int per_class,
                            int cols, int h, int w);
/* The cells of GEN_COLS: UA_gen with its 95% interval ("–" without a
 * forgotten class), accuracy on the retained classes, FD-cls. */
#define GEN_COLS                                                                           \
    TABLE_COL("UA_gen (95% CI)", "%.2f (%.1f–%.1f)"), TABLE_COL("acc on retained", "%.2f"),   \
        TABLE_COL("FD-cls", "%.2f")
void gen_cells(table *t, const lethe_gen_metrics *g);
/* eval's and unlearn's table on stdout, | model | GEN_COLS | acc of each class |:
 * a row of m0 labelled first (unless first is NULL), one of m, then m's floor. */
void gen_print_table(const char *first, const lethe_gen_metrics *m0, const char *label,
                     const lethe_gen_metrics *m);
/* The FD-cls floor line, when the metrics have one. */
void gen_print_floor(const lethe_gen_metrics *g);
/* A cached DDPM, trained when missing on `sub` of train (all of it for the
 * Original; D_r for Retrain, `without` naming the forget set). */
lethe_status gen_ensure_ddpm(const char *path, const lethe_dataset *train,
                             const lethe_subset *sub, const char *without, int epochs,
                             uint64_t seed, int quiet, lethe_model **m, lethe_ddpm *s);
int cmd_tune_diffusion(int argc, char **argv);
/* --n, --batch, --seed and the sampler options into ec; 0 or the exit status. */
int gen_eval_opts(const cli_args *a, const char *cmd, lethe_gen_eval_config *ec);

#endif
