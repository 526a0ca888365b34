/*
 * Data-parallel runs over MPI (docs/DISTRIBUTED.md): `mpirun -np N lethe
 * train|unlearn …` gives the same model as one process, to float-reduction
 * precision. Every rank reads the data and takes its shard of each global
 * batch (core_dist_shard); the step's gradient is summed across ranks in one
 * fused in-place all-reduce (core_dist_sum_f); the loss values a method
 * reads and the evaluation's counts are summed the same way; batch
 * normalisation sums its per-channel statistics across ranks through
 * core_dist_bn_gather; rank 0 alone writes files (io_out_write).
 *
 * One process (no MPI in the build, or not started by a launcher) is the
 * same API with size 1: every call is a no-op, no MPI function is called,
 * and the results are bitwise those of a build without this file.
 *
 * The run-time state is the rank and size, set once by core_dist_init
 * before any work and read-only afterwards.
 */
#ifndef LETHE_CORE_DIST_H
#define LETHE_CORE_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "lethe.h"

/* 1 if this build has MPI (HAVE_MPI). */
int core_dist_built(void);

/* Join the MPI job when started by a launcher (mpirun, mpiexec, srun: the
 * launcher's environment says so); otherwise size 1 and nothing is called.
 * A build without MPI started with more than one process, or a launcher
 * that gives no working job, fails with one line (lethe_last_error). */
lethe_status core_dist_init(int *argc, char ***argv);
/* Leave the job: exit status rc of this rank. rc != 0 on a rank whose
 * error was its own (core_dist_error_shared not set) aborts every rank
 * (MPI_Abort), so that none waits in a collective for it. Returns rc. */
int core_dist_finish(int rc);

int core_dist_rank(void);
int core_dist_size(void);
/* on = 1: until core_dist_alone(0), every rank runs the whole of what
 * follows as one process would (core_dist_size() is 1, no collective is
 * called, core_dist_shard gives all), for work that does not run
 * data-parallel; core_dist_rank and core_dist_root stay, so rank 0 alone
 * writes. Every rank must enter and leave it at the same point. */
void core_dist_alone(int on);
/* 1 on the rank that prints and writes files (rank 0). */
int core_dist_root(void);

/* This rank's part [lo, hi) of n items split in size contiguous blocks,
 * in rank order (the concatenation is 0..n−1). */
void core_dist_shard(long n, long *lo, long *hi);

/* In-place sums across ranks (MPI_Allreduce, MPI_SUM; floats on 2 ranks:
 * one exchange, dist.c); no-ops for size 1. The result is the same on
 * every rank. */
void core_dist_sum_f(float *buf, size_t n);
void core_dist_sum_d(double *buf, size_t n);
void core_dist_sum_l(long *buf, size_t n);
/* 1 if flag is non-zero on any rank. */
int core_dist_any(int flag);
/* 1 if flag is non-zero on every rank (a cached file every rank can read:
 * on machines of their own, one may lack it). */
int core_dist_all(int flag);
/* The lowest rank whose flag is non-zero, or −1. These two are over the
 * whole job even inside core_dist_alone (every rank reaches them there). */
int core_dist_first(int flag);
/* buf holds n floats of which this rank filled its core_dist_shard(n)
 * part: every rank gets all of them (MPI_Allgatherv in place). */
void core_dist_gather_f(float *buf, long n);

/* Batch normalisation's hook (src/nn/batchnorm.c): NULL for one process;
 * else gathers n doubles of every rank into out (size·n, rank order). Set
 * by core_dist_init. */
extern void (*core_dist_bn_gather)(const double *in, double *out, size_t n);

/* --deterministic: the same bits for any N (docs/PERFORMANCE.md, "Across
 * machines"). Each set of rows of a step (a training batch; the forget and
 * the retain batch) is cut into k fixed chunks (chunk j of a set of R rows
 * is rows [R·j/k, R·(j+1)/k)), whatever N is; rank r takes chunks
 * [k·r/N, k·(r+1)/N) of every set and runs them as one forward and
 * backward, a sample group per chunk (set-major). Every sum over samples
 * is then made per chunk and the chunks' values added in chunk order, on
 * every rank and for any N alike: the gradient (core_dist_plan_sum_f), the
 * loss sums (core_dist_plan_sum_d) and batch norm's statistics
 * (core_dist_plan_for). N ≤ k and k ≤ LETHE_MAX_GROUPS / sets. */
typedef struct {
    int sets, k;            /* row sets (1 or 2), chunks per set */
    int rows[2];            /* global rows of each set */
    int lo, hi;             /* this rank's chunks [lo, hi) of every set */
    lethe_groups g;         /* this rank's rows, set-major: a group a chunk */
} core_dist_plan;

/* The plan of `sets` sets of rows[s] global rows, k chunks each (every
 * chunk at least one row, k ≥ N: the callers refuse other settings). */
void core_dist_plan_init(core_dist_plan *p, int sets, const int rows[], int k);
/* This rank's rows [lo, hi) of set s, in that set's global numbering. */
void core_dist_plan_rows(const core_dist_plan *p, int s, long *lo, long *hi);
/* Batch norm's view (src/nn/batchnorm.c): the plan in use if its local
 * groups are g, else NULL. core_dist_plan_use sets it (NULL: none) around
 * the forward and backward that run a plan's groups. */
void core_dist_plan_use(const core_dist_plan *p);
const core_dist_plan *core_dist_plan_for(const lethe_groups *g);
/* The plan in use, or NULL: the kernels whose bits depend on the number of
 * rows (src/nn/linear.c) then run in fixed blocks of rows. */
const core_dist_plan *core_dist_plan_active(void);
/* The rank and local group of chunk j of set s. */
void core_dist_plan_where(const core_dist_plan *p, int s, int j, int *rank, int *local);
/* The scratch of the kernels' MPI and --deterministic paths: a buffer of
 * at least `bytes` in *buf (capacity *cap), grown by realloc when short
 * (once per shape), or NULL (no memory; *buf is kept). */
void *core_dist_scratch(void **buf, size_t *cap, size_t bytes);
/* Every rank's `per` doubles into all (N·per, rank order); size 1 copies. */
void core_dist_gather_d(const double *mine, double *all, size_t per);
/* A gradient buffer of sets·k·w floats: this rank's local group k writes
 * w floats at core_dist_plan_mine(p, all, w) + k·w. core_dist_plan_sum_f
 * gathers every rank's chunks into all (in place) and writes out[s] (w
 * floats, overwritten; NULL skips the set; sets sharing one vector get
 * their sum) = Σ_j chunk j of set s, summed in double in chunk order.
 * out must not overlap all. */
float *core_dist_plan_mine(const core_dist_plan *p, float *all, size_t w);
void core_dist_plan_sum_f(const core_dist_plan *p, float *all, size_t w, float *const out[]);
/* mine[k]: this rank's value of its local group k; out[s] = Σ_j the value
 * of chunk j of set s, in chunk order. */
void core_dist_plan_sum_d(const core_dist_plan *p, const double *mine, double *out);

/* The same settings on every rank: text is compared across ranks (tokens
 * split at sep); a difference fails on every rank with one line naming the
 * first rank that differs from rank 0 and the first token that differs:
 * "ranks disagree on LABEL: rank 0 has A, rank R has B". */
lethe_status core_dist_agree(const char *label, const char *text, char sep);
/* core_dist_agree on a run's settings (its run-state config: the options,
 * the subset, the starting θ) and a hash of the data set's bytes. */
lethe_status core_dist_agree_run(const char *config, const lethe_dataset *ds);
/* Under mpirun, before a training loop over n samples in batches of bs:
 * each rank needs a sample of every batch, the last one too (else one
 * line, the same on every rank); " ranks=N" is appended to config (len
 * bytes; a run state is for one rank count) and the ranks' configs and
 * data compared (core_dist_agree_run). LETHE_OK at once for one process. */
lethe_status core_dist_check_train(long n, long bs, char *config, size_t len,
                                   const lethe_dataset *ds);
/* Mark the error about to be returned as the same on every rank (a
 * collective check): only rank 0 prints it and no rank aborts. */
void core_dist_error_shared(void);
int core_dist_error_is_shared(void);

/* Test-only fault injection (LETHE_DIST_FAULT="RANK:STEP:KIND", KIND
 * kill, exit or nan): 1 when this rank should make its step-STEP loss NaN;
 * kill and exit end this rank there. Read once by core_dist_init. */
int core_dist_fault(long step);

#endif
