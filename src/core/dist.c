/*
 * Data-parallel runs over MPI (dist.h). Built with HAVE_MPI when the
 * Makefile finds MPI (mpicc or pkg-config ompi-c / mpich); without it the
 * same functions run one process. Only MPI-3 calls (MPI_Allreduce and
 * MPI_Allgather(v) with MPI_IN_PLACE, MPI_Abort), so that OpenMPI and MPICH
 * both build it.
 *
 * A rank that fails alone (its own file, a NaN of its own, a crash) must
 * not leave the others waiting in a collective: core_dist_finish aborts the
 * job (MPI_Abort) after its one error line, which names the rank; a killed
 * rank is noticed by the launcher, which ends the others. Errors every rank
 * finds together (a bad option, the checks of core_dist_agree) are printed
 * by rank 0 alone and end every rank normally.
 */
#include "core/dist.h"
#include "core/fail.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;
static int g_shared_error = 0;
static int g_alone = 0;                /* core_dist_alone: every rank runs all of it */
#ifdef HAVE_MPI
static int g_mpi_on = 0;               /* MPI_Init was called and not finalised */
#endif
static long g_fault_rank = -1, g_fault_step = -1;
static char g_fault_kind[8];

void (*core_dist_bn_gather)(const double *in, double *out, size_t n) = NULL;

int core_dist_built(void)
{
#ifdef HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int core_dist_rank(void) { return g_rank; }
int core_dist_size(void) { return g_alone ? 1 : g_size; }
void core_dist_alone(int on) { g_alone = on; }

/* The rank within the job as the splitting sees it (0 when alone). */
static int eff_rank(void) { return g_alone ? 0 : g_rank; }
int core_dist_root(void) { return g_rank == 0; }

void core_dist_error_shared(void) { g_shared_error = 1; }
int core_dist_error_is_shared(void) { return g_shared_error; }

/* The job size a launcher announces in the environment (OpenMPI, MPICH's
 * and Intel's Hydra), 0 when not started by one, −1 when it says so but
 * not the size (PMIx alone). */
static long launcher_size(void)
{
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) {
            long n = strtol(v, NULL, 10);
            return n > 0 ? n : -1;
        }
    }
    return getenv("PMIX_RANK") ? -1 : 0;
}

static void read_fault(void)
{
    const char *f = getenv("LETHE_DIST_FAULT");
    char kind[8] = "";
    long r, s;
    if (f && sscanf(f, "%ld:%ld:%7s", &r, &s, kind) == 3) {
        g_fault_rank = r;
        g_fault_step = s;
        memcpy(g_fault_kind, kind, sizeof g_fault_kind);
    }
}

int core_dist_fault(long step)
{
    if (g_fault_rank != g_rank || g_fault_step != step) return 0;
    if (strcmp(g_fault_kind, "kill") == 0) raise(SIGKILL);
    if (strcmp(g_fault_kind, "exit") == 0) _exit(1);
    return strcmp(g_fault_kind, "nan") == 0;
}

#ifdef HAVE_MPI
static void bn_gather_mpi(const double *in, double *out, size_t n)
{
    MPI_Allgather(in, (int)n, MPI_DOUBLE, out, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
}

/* Any exit that does not pass through core_dist_finish (an exit() deep in
 * the command line) must not leave the other ranks waiting. */
static void abort_at_exit(void)
{
    if (g_mpi_on && g_size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}
#endif

lethe_status core_dist_init(int *argc, char ***argv)
{
    read_fault();
    long n = launcher_size();
    const char *off = getenv("LETHE_MPI");
    int use = core_dist_built() && !(off && strcmp(off, "0") == 0);
    if (n == 0 || n == 1) return LETHE_OK;
    if (!use) {
        /* Every process says it alone: the first one prints (main). */
        const char *r = getenv("OMPI_COMM_WORLD_RANK");
        if (!r) r = getenv("PMI_RANK");
        if (r) g_rank = (int)strtol(r, NULL, 10);
        char many[32] = "several";
        if (n > 1) snprintf(many, sizeof many, "%ld", n);
        if (core_dist_built())
            return lethe_fail(LETHE_ERR_ARG, "started by an MPI launcher with %s processes, but "
                              "LETHE_MPI=0 turns MPI off: unset it, or run without mpirun", many);
        return lethe_fail(LETHE_ERR_ARG, "started by an MPI launcher with %s processes, but this "
                          "lethe was built without MPI (apt-get install openmpi-bin "
                          "libopenmpi-dev, then make: the build says whether it found MPI); "
                          "run it without mpirun", many);
    }
#ifdef HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(argc, argv) != MPI_SUCCESS)
        return lethe_fail(LETHE_ERR_IO, "MPI_Init failed: no working MPI runtime");
    g_mpi_on = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    atexit(abort_at_exit);
    if (g_size > 1) core_dist_bn_gather = bn_gather_mpi;
#else
    (void)argc;
    (void)argv;
#endif
    return LETHE_OK;
}

int core_dist_finish(int rc)
{
#ifdef HAVE_MPI
    if (g_mpi_on) {
        fflush(stdout);
        fflush(stderr);
        if (rc != 0 && g_size > 1 && !g_shared_error) MPI_Abort(MPI_COMM_WORLD, rc);
        g_mpi_on = 0;
        MPI_Finalize();
    }
#endif
    return rc;
}

void core_dist_shard(long n, long *lo, long *hi)
{
    *lo = n * eff_rank() / core_dist_size();
    *hi = n * (eff_rank() + 1) / core_dist_size();
}

#ifdef HAVE_MPI
static void sum_all(void *buf, size_t n, MPI_Datatype t)
{
    if (core_dist_size() > 1) MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, t, MPI_SUM, MPI_COMM_WORLD);
}
#define SUM_ALL(buf, n, t) sum_all(buf, n, t)

/* The gradient's sum. Two ranks: one MPI_Sendrecv of the whole buffer and
 * a + b here, where MPI_Allreduce (a ring, or halving and doubling, in
 * segments) takes several round trips: on a loaded machine each can wait
 * a time slice for the other rank (bench_mpi, cnn: 17–23 ms a step in
 * MPI_Allreduce, 5–8 ms so; docs/PERFORMANCE.md). The same bits: a + b =
 * b + a, on both ranks. The received copy needs a buffer of n floats,
 * grown once; without one, MPI_Allreduce. */
static void *pair_buf;
static size_t pair_cap;

static void sum_floats(float *buf, size_t n)
{
    float *other = core_dist_size() == 2
                       ? core_dist_scratch(&pair_buf, &pair_cap, n * sizeof(float)) : NULL;
    if (!other) {
        sum_all(buf, n, MPI_FLOAT);
        return;
    }
    MPI_Sendrecv(buf, (int)n, MPI_FLOAT, 1 - g_rank, 0x5e, other, (int)n, MPI_FLOAT, 1 - g_rank,
                 0x5e, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) buf[i] += other[i];
}
#else
#define SUM_ALL(buf, n, t) ((void)(buf), (void)(n))
#endif

#ifdef HAVE_MPI
void core_dist_sum_f(float *buf, size_t n) { sum_floats(buf, n); }
#else
void core_dist_sum_f(float *buf, size_t n) { SUM_ALL(buf, n, MPI_FLOAT); }
#endif
void core_dist_sum_d(double *buf, size_t n) { SUM_ALL(buf, n, MPI_DOUBLE); }
void core_dist_sum_l(long *buf, size_t n) { SUM_ALL(buf, n, MPI_LONG); }

int core_dist_any(int flag)
{
    int v = flag != 0;
#ifdef HAVE_MPI
    if (g_size > 1) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#endif
    return v;
}

int core_dist_all(int flag) { return !core_dist_any(!flag); }

int core_dist_first(int flag)
{
    int v = flag ? g_rank : g_size;
#ifdef HAVE_MPI
    if (g_size > 1) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
#endif
    return v < g_size ? v : -1;
}

void core_dist_gather_f(float *buf, long n)
{
#ifdef HAVE_MPI
    if (core_dist_size() <= 1) return;
    int cnt[g_size], disp[g_size];
    for (int r = 0; r < g_size; r++) {
        long lo = n * r / g_size, hi = n * (r + 1) / g_size;
        disp[r] = (int)lo;
        cnt[r] = (int)(hi - lo);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, cnt, disp, MPI_FLOAT,
                   MPI_COMM_WORLD);
#else
    (void)buf;
    (void)n;
#endif
}

#ifdef HAVE_MPI
/* The first token (split at sep) where a and b differ, into pa, la and pb, lb. */
static void first_diff(const char *a, const char *b, char sep, const char **pa, int *la,
                       const char **pb, int *lb)
{
    char set[2] = {sep, 0};
    for (;;) {
        size_t na = strcspn(a, set), nb = strcspn(b, set);
        if (na != nb || strncmp(a, b, na) != 0 || !a[na] || !b[nb]) {
            *pa = a;
            *la = (int)(na < 160 ? na : 160);
            *pb = b;
            *lb = (int)(nb < 160 ? nb : 160);
            return;
        }
        a += na + 1;
        b += nb + 1;
    }
}

#endif

enum { AGREE_TEXT = 4096 };

lethe_status core_dist_agree(const char *label, const char *text, char sep)
{
    if (core_dist_size() <= 1) return LETHE_OK;
#ifdef HAVE_MPI
    char *all = malloc((size_t)g_size * AGREE_TEXT);
    char mine[AGREE_TEXT];
    if (!all) return lethe_fail(LETHE_ERR_NOMEM, "out of memory comparing the ranks' %s", label);
    snprintf(mine, sizeof mine, "%s", text);
    MPI_Allgather(mine, AGREE_TEXT, MPI_CHAR, all, AGREE_TEXT, MPI_CHAR, MPI_COMM_WORLD);
    lethe_status st = LETHE_OK;
    for (int r = 1; r < g_size && st == LETHE_OK; r++) {
        const char *a = all, *b = all + (size_t)r * AGREE_TEXT;
        if (strcmp(a, b) == 0) continue;
        const char *pa, *pb;
        int la, lb;
        first_diff(a, b, sep, &pa, &la, &pb, &lb);
        core_dist_error_shared();
        st = lethe_fail(LETHE_ERR_MISMATCH, "ranks disagree on the %s: rank 0 has '%.*s', rank "
                        "%d has '%.*s' (every rank needs the same options and data)", label,
                        la, pa, r, lb, pb);
    }
    free(all);
    return st;
#else
    (void)label;
    (void)text;
    (void)sep;
    return LETHE_OK;
#endif
}

/* 64-bit FNV-1a over 8-byte words (then the tail): the data sets' bytes. */
static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

lethe_status core_dist_agree_run(const char *config, const lethe_dataset *ds)
{
    if (core_dist_size() <= 1) return LETHE_OK;
    uint64_t h = 0xcbf29ce484222325ULL;
    if (ds->pixels) h = hash_bytes(h, ds->pixels, (size_t)ds->n * ds->c * ds->h * ds->w);
    if (ds->tokens) h = hash_bytes(h, (const uint8_t *)ds->tokens, (size_t)ds->n * ds->w * sizeof(int32_t));
    if (ds->labels) h = hash_bytes(h, ds->labels, (size_t)ds->n);
    char text[AGREE_TEXT];
    snprintf(text, sizeof text, "%s data_bytes=%016llx", config, (unsigned long long)h);
    return core_dist_agree("settings", text, ' ');
}

lethe_status core_dist_check_train(long n, long bs, char *config, size_t len,
                                   const lethe_dataset *ds)
{
    if (core_dist_size() <= 1) return LETHE_OK;
    long per_epoch = (n + bs - 1) / bs, last = n - (per_epoch - 1) * bs, ranks = core_dist_size();
    if (ranks > last) {
        core_dist_error_shared();
        return lethe_fail(LETHE_ERR_ARG, "%ld ranks, but %s batch has %ld sample%s: each rank "
                          "needs at least one sample of every batch (use -np %ld or fewer, or "
                          "another --batch)", ranks, last < bs ? "the last" : "a", last,
                          last > 1 ? "s" : "", last);
    }
    size_t at = strlen(config);
    if (at < len) snprintf(config + at, len - at, " ranks=%ld", ranks);
    return core_dist_agree_run(config, ds);
}

/* ------------------------------------------------------- --deterministic */

static const core_dist_plan *g_plan;   /* the plan whose groups are running */

static void plan_chunks_of(int rank, int k, int *lo, int *hi)
{
    *lo = (int)((long)k * rank / core_dist_size());
    *hi = (int)((long)k * (rank + 1) / core_dist_size());
}

void core_dist_plan_init(core_dist_plan *p, int sets, const int rows[], int k)
{
    memset(p, 0, sizeof *p);
    p->sets = sets;
    p->k = k;
    plan_chunks_of(eff_rank(), k, &p->lo, &p->hi);
    int at = 0;
    p->g.n = 0;
    p->g.start[0] = 0;
    for (int s = 0; s < sets; s++) {
        p->rows[s] = rows[s];
        for (int j = p->lo; j < p->hi; j++) {
            at += (int)((long)rows[s] * (j + 1) / k - (long)rows[s] * j / k);
            p->g.start[++p->g.n] = at;
        }
    }
}

void core_dist_plan_rows(const core_dist_plan *p, int s, long *lo, long *hi)
{
    *lo = (long)p->rows[s] * p->lo / p->k;
    *hi = (long)p->rows[s] * p->hi / p->k;
}

void core_dist_plan_use(const core_dist_plan *p) { g_plan = p; }
const core_dist_plan *core_dist_plan_active(void) { return g_plan; }

const core_dist_plan *core_dist_plan_for(const lethe_groups *g)
{
    if (!g_plan || !g || g->n != g_plan->g.n) return NULL;
    for (int k = 0; k <= g->n; k++)
        if (g->start[k] != g_plan->g.start[k]) return NULL;
    return g_plan;
}

void core_dist_plan_where(const core_dist_plan *p, int s, int j, int *rank, int *local)
{
    int r = (int)(((long)j * core_dist_size()) / p->k), lo, hi;
    /* The rank whose [lo, hi) holds j (the division lands on it or next to it). */
    for (;;) {
        plan_chunks_of(r, p->k, &lo, &hi);
        if (j < lo) r--;
        else if (j >= hi) r++;
        else break;
    }
    *rank = r;
    *local = s * (hi - lo) + (j - lo);
}

void *core_dist_scratch(void **buf, size_t *cap, size_t bytes)
{
    if (bytes > *cap) {
        void *p = realloc(*buf, bytes);
        if (!p) return NULL;
        *buf = p;
        *cap = bytes;
    }
    return *buf;
}

void core_dist_gather_d(const double *mine, double *all, size_t per)
{
#ifdef HAVE_MPI
    if (core_dist_size() > 1) {
        MPI_Allgather(mine, (int)per, MPI_DOUBLE, all, (int)per, MPI_DOUBLE, MPI_COMM_WORLD);
        return;
    }
#endif
    if (all != mine) memmove(all, mine, per * sizeof *all);
}

float *core_dist_plan_mine(const core_dist_plan *p, float *all, size_t w)
{
    return all + (size_t)p->sets * p->lo * w;
}

void core_dist_plan_sum_f(const core_dist_plan *p, float *all, size_t w, float *const out[])
{
#ifdef HAVE_MPI
    if (core_dist_size() > 1) {
        /* Rank r's local groups follow each other from chunk sets·lo_r on. */
        int cnt[g_size], disp[g_size];
        for (int r = 0; r < g_size; r++) {
            int lo, hi;
            plan_chunks_of(r, p->k, &lo, &hi);
            disp[r] = (int)((size_t)p->sets * lo * w);
            cnt[r] = (int)((size_t)p->sets * (hi - lo) * w);
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, cnt, disp, MPI_FLOAT,
                       MPI_COMM_WORLD);
    }
#endif
    /* The chunks of each destination, set by set, in chunk order. */
    const float *src[2 * LETHE_MAX_GROUPS];
    for (int s = 0; s < p->sets; s++) {
        if (!out[s]) continue;
        int m = 0, first = 1;
        for (int t = 0; t < p->sets; t++) {
            if (out[t] != out[s]) continue;
            if (t < s) first = 0;
            for (int j = 0; j < p->k; j++) {
                int r, loc, lo, hi;
                core_dist_plan_where(p, t, j, &r, &loc);
                plan_chunks_of(r, p->k, &lo, &hi);
                src[m++] = all + ((size_t)p->sets * lo + (size_t)loc) * w;
            }
        }
        if (!first) continue;   /* an earlier set wrote this vector */
        float *o = out[s];
#pragma omp parallel for schedule(static) if (w > 65536)
        for (size_t i = 0; i < w; i++) {
            double v = 0.0;
            for (int q = 0; q < m; q++) v += src[q][i];
            o[i] = (float)v;
        }
    }
}

void core_dist_plan_sum_d(const core_dist_plan *p, const double *mine, double *out)
{
    double pad[LETHE_MAX_GROUPS] = {0};
    for (int k = 0; k < p->g.n; k++) pad[k] = mine[k];
    double all[core_dist_size() * LETHE_MAX_GROUPS];
    core_dist_gather_d(pad, all, LETHE_MAX_GROUPS);
    for (int s = 0; s < p->sets; s++) {
        double v = 0.0;
        for (int j = 0; j < p->k; j++) {
            int r, loc;
            core_dist_plan_where(p, s, j, &r, &loc);
            v += all[(size_t)r * LETHE_MAX_GROUPS + loc];
        }
        out[s] = v;
    }
}
