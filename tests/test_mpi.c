/* Data-parallel runs under mpirun (src/core/dist.h): 2 ranks give the
 * model of one process to float-reduction precision (cnn, resnet8; train,
 * EUPMU with its λ trace, UNGrad), and with --deterministic the same bytes;
 * a failing rank (a NaN, killed) ends
 * every rank in bounded time with a message naming it, and the last saved
 * state resumes; bad input (more ranks than a batch has samples, ranks
 * given other options or other data, a state of another rank count, MPI
 * turned off, --deterministic beyond its chunks) is one line. Skipped when the build has no MPI or mpirun is
 * missing. Tiny synthetic data, one thread per rank: about 20 s in all. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cli_util.h"
#include "core/dist.h"
#include "lethe.h"
#include "test.h"

/* The tolerance, θ and buffers alike: |a − b| ≤ TOL_ABS + TOL_REL·|a|.
 * One step differs in the last bits (sums in another order): ≤ 6e-8 on
 * cnn and resnet8, 1, 2, 3 or 7 ranks. Later steps can grow that where a
 * last-bit difference flips a ReLU mask on these binary images (resnet8,
 * 8 steps: up to 6e-5, as one process with other sums would); a wrong
 * reduction (a batch-norm statistic of one rank's rows) is off by 1e-2 to
 * 1 from the first step. Hence few steps here, and this bound. */
#define TOL_ABS 1e-5
#define TOL_REL 1e-4

static char g_flags[128];   /* mpirun's flags for this MPI ("" for MPICH) */
static char g_env[16];      /* how mpirun passes a variable: "-x" (OpenMPI) */

/* 1 if this build and machine run mpirun; otherwise the test is skipped. */
static int mpi_here(void)
{
    if (!core_dist_built()) {
        test_skip("MPI is not built in (apt-get install openmpi-bin libopenmpi-dev, make)");
        return 0;
    }
    /* CI's time: under ASan these runs take minutes (2 min 41 s on the
     * shared 2-core machine, all passing). */
    if (test_skip_under_asan("LETHE_MPI_SAN", "MPI tests")) return 0;
    if (system("command -v mpirun >/dev/null 2>&1") != 0) {
        test_skip("mpirun is not on the PATH");
        return 0;
    }
    if (!cli_t_have_bin() || !cli_t_mkdir("mpi")) return 0;
    int open_mpi = system("mpirun --version 2>&1 | grep -q 'Open MPI'") == 0;
    snprintf(g_flags, sizeof g_flags, "%s", open_mpi ? "--oversubscribe --allow-run-as-root" : "");
    snprintf(g_env, sizeof g_env, "%s", open_mpi ? "-x" : "-genvlist");
    return 1;
}

static const char *tmp(const char *name)
{
    static cli_t_path_buf b[8];
    static int k;
    return cli_t_path(b[k++ % 8], "mpi", name);
}

/* The data folder, written once: 240 training images (10 classes), 60 test. */
static const char *data_dir(void)
{
    static const cli_t_mnist spec = {240, 60, 28, 7, 1, 2, 0, 0};
    static char d[1024];
    static int done;
    snprintf(d, sizeof d, "%s", tmp("data"));
    if (!done) done = cli_t_write_mnist(d, &spec);
    CHECK(done);
    return d;
}

/* Run `prefix mpirun FLAGS apps` (apps: "-np N $LETHE_BIN args", or
 * several joined by " : ") with one thread a rank and a 60 s limit; the
 * exit status (124: the limit), stdout and stderr; *secs the wall time. */
static int run_mpi(const char *prefix, const char *apps, char **out, char **err, double *secs)
{
    char cmd[8192];
    cli_t_path_buf ob, eb;
    const char *o = cli_t_path(ob, "mpi", "stdout.txt"), *e = cli_t_path(eb, "mpi", "stderr.txt");
    /* Under make SAN=1 the MPI library's own allocations at exit are not
     * this code's leaks: LeakSanitizer is off for these runs (one process
     * is checked by the rest of the suite). */
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0 %s timeout 60 "
             "mpirun %s %s >'%s' 2>'%s'", prefix ? prefix : "", g_flags, apps, o, e);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st = system(cmd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (secs) *secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    *out = cli_t_slurp(o, NULL);
    *err = cli_t_slurp(e, NULL);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

/* `lethe args` under mpirun -np np, expected to succeed. */
static int mpi_ok(int np, const char *args)
{
    char apps[4096], *o, *e;
    snprintf(apps, sizeof apps, "-np %d '%s' %s", np, getenv("LETHE_BIN"), args);
    int rc = run_mpi(NULL, apps, &o, &e, NULL);
    CHECK_MSG(rc == 0, "mpirun -np %d lethe %s exited %d: %s", np, args, rc, e ? e : "");
    free(o);
    free(e);
    return rc == 0;
}

/* `lethe args` in one process (one thread), expected to succeed. */
static int one_ok(const char *args)
{
    char *o, *e, was[64] = "";
    const char *t = getenv("OMP_NUM_THREADS");
    if (t) snprintf(was, sizeof was, "%s", t);
    setenv("OMP_NUM_THREADS", "1", 1);
    int rc = cli_t_run("mpi", args, &o, &e);
    if (t) setenv("OMP_NUM_THREADS", was, 1);
    else unsetenv("OMP_NUM_THREADS");
    CHECK_MSG(rc == 0, "lethe %s exited %d: %s", args, rc, e ? e : "");
    free(o);
    free(e);
    return rc == 0;
}

/* Every tensor of checkpoints a and b (θ and buffers) within the tolerance
 * (tol_abs: TOL_ABS, or more for AdamW's runs); *worst the largest
 * difference. */
static void check_same_model(const char *a, const char *b, double tol_abs, double *worst)
{
    lethe_model *ma = NULL, *mb = NULL;
    *worst = INFINITY;
    CHECK_OK(lethe_checkpoint_open(&ma, a, NULL));
    CHECK_OK(lethe_checkpoint_open(&mb, b, NULL));
    if (!ma || !mb) goto done;
    *worst = 0.0;
    for (int part = 0; part < 2; part++) {
        size_t na, nb;
        const float *x = part ? lethe_model_buffers(ma, &na) : lethe_model_theta(ma, &na);
        const float *y = part ? lethe_model_buffers(mb, &nb) : lethe_model_theta(mb, &nb);
        CHECK(na == nb);
        for (size_t i = 0; i < na && na == nb; i++) {
            double d = fabs((double)x[i] - y[i]);
            if (d > *worst) *worst = d;
            if (!(d <= tol_abs + TOL_REL * fabs(x[i]))) {
                test_fail(__FILE__, __LINE__, "%s vs %s: %s value %zu: %.9g vs %.9g", a, b,
                          part ? "buffer" : "theta", i, x[i], y[i]);
                goto done;
            }
        }
    }
done:
    lethe_model_free(ma);
    lethe_model_free(mb);
}

/* The reports' λ traces within 1e-3 (relative) and metrics within 0.1 points. */
static void check_same_report(const char *a, const char *b)
{
    cJSON *ra = cli_t_load_json(a), *rb = cli_t_load_json(b);
    CHECK(ra && rb);
    if (!ra || !rb) goto done;
    const cJSON *la = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ra, "run"),
                                                              "trace"), "lambda");
    const cJSON *lb = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(rb, "run"),
                                                              "trace"), "lambda");
    CHECK(cJSON_GetArraySize(la) > 0 && cJSON_GetArraySize(la) == cJSON_GetArraySize(lb));
    for (int t = 0; t < cJSON_GetArraySize(la); t++) {
        double x = cJSON_GetArrayItem(la, t)->valuedouble, y = cJSON_GetArrayItem(lb, t)->valuedouble;
        CHECK_MSG(fabs(x - y) <= 1e-3 * (fabs(x) + 1e-3), "lambda at step %d: %.9g vs %.9g", t, x, y);
    }
    static const char *keys[] = {"UA", "RA", "TA", "MIA_Eff"};
    for (int k = 0; k < 4; k++)
        CHECK_NEAR(cli_t_jnum(cJSON_GetObjectItem(ra, "metrics"), keys[k]),
                   cli_t_jnum(cJSON_GetObjectItem(rb, "metrics"), keys[k]), 0.1);
done:
    cJSON_Delete(ra);
    cJSON_Delete(rb);
}

/* Train (2 steps), then EUPMU and (cnn) UNGrad (3 steps each), in one
 * process and on 2 ranks: the same models, λ traces and metrics. */
static void same_as_one_process(const char *arch)
{
    if (!mpi_here()) return;
    const char *d = data_dir();
    char args[4096], one[64], two[64];
    double worst;
    snprintf(one, sizeof one, "%s-1.st", arch);
    snprintf(two, sizeof two, "%s-2.st", arch);
    snprintf(args, sizeof args, "train --arch %s --data mnist --data-dir '%s' --epochs 1 --batch 120 "
             "--seed 3 --quiet --force --out '%%s'", arch, d);
    char a1[4096], a2[4096];
    snprintf(a1, sizeof a1, args, tmp(one));
    snprintf(a2, sizeof a2, args, tmp(two));
    if (!one_ok(a1) || !mpi_ok(2, a2)) return;
    check_same_model(tmp(one), tmp(two), TOL_ABS, &worst);
    fprintf(stderr, "  %s train, 2 ranks vs 1: max |diff| %.3g\n", arch, worst);
    /* UNGrad's sums are the code EUPMU's are; resnet8 runs EUPMU alone
     * (CI's time), and EUPMU again in mpi_deterministic_bitwise. */
    static const char *methods[] = {"eupmu", "ungrad"};
    for (int k = 0; k < (strcmp(arch, "cnn") == 0 ? 2 : 1); k++) {
        char u1[64], u2[64], r1[64], r2[64];
        snprintf(u1, sizeof u1, "%s-%s-1.st", arch, methods[k]);
        snprintf(u2, sizeof u2, "%s-%s-2.st", arch, methods[k]);
        snprintf(r1, sizeof r1, "%s-%s-1.json", arch, methods[k]);
        snprintf(r2, sizeof r2, "%s-%s-2.json", arch, methods[k]);
        snprintf(args, sizeof args, "unlearn --model '%s' --data mnist --data-dir '%s' --forget "
                 "class:0 --method %s --steps 3 --batch 16 --seed 1 --quiet --force --out '%%s' "
                 "--report '%%s'", tmp(one), d, methods[k]);
        snprintf(a1, sizeof a1, args, tmp(u1), tmp(r1));
        snprintf(a2, sizeof a2, args, tmp(u2), tmp(r2));
        if (!one_ok(a1) || !mpi_ok(2, a2)) return;
        check_same_model(tmp(u1), tmp(u2), TOL_ABS, &worst);
        check_same_report(tmp(r1), tmp(r2));
        fprintf(stderr, "  %s %s, 2 ranks vs 1: max |diff| %.3g\n", arch, methods[k], worst);
    }
}

TEST(mpi_same_as_one_process_cnn) { same_as_one_process("cnn"); }
TEST(mpi_same_as_one_process_resnet8) { same_as_one_process("resnet8"); }

/* The diffusion task under mpirun: training (its noise and timesteps drawn
 * for the global batch, as one process) and EUPMU's unlearning give one
 * process's U-Net. AdamW moves a weight whose gradient is near 0 (near its
 * ε) by up to lr whatever the gradient's last bits (lr 1e-3: 9.6e-5 after 4
 * steps, 8.6e-6 between 1 and 2 threads of one process): lr 1e-4 here and
 * a tolerance of 1e-4, which a wrong gradient (every step's update off by
 * about 2·lr where its sign flips) exceeds. */
TEST(mpi_diffusion_same_as_one_process)
{
    if (!mpi_here()) return;
    static const cli_t_mnist small = {64, 20, 8, 7, 1, 2, 0, 0};
    char d[1024];
    snprintf(d, sizeof d, "%s", tmp("data8"));
    if (!cli_t_exists(d)) CHECK(cli_t_write_mnist(d, &small));
    char args[4096], a1[4096], a2[4096];
    double worst;
    snprintf(args, sizeof args, "train --task diffusion --data mnist --data-dir '%s' --epochs 1 "
             "--batch 16 --T 50 --lr 1e-4 --quiet --force --out '%%s'", d);
    snprintf(a1, sizeof a1, args, tmp("ddpm-1.st"));
    snprintf(a2, sizeof a2, args, tmp("ddpm-2.st"));
    if (!one_ok(a1) || !mpi_ok(2, a2)) return;
    check_same_model(tmp("ddpm-1.st"), tmp("ddpm-2.st"), 1e-4, &worst);
    fprintf(stderr, "  unet train, 2 ranks vs 1: max |diff| %.3g\n", worst);
    snprintf(args, sizeof args, "unlearn --task diffusion --model '%s' --data-dir '%s' --forget "
             "class:0 --method eupmu --steps 3 --batch 8 --n 2 --steps-sample 2 --quiet --force "
             "--out '%%s'", tmp("ddpm-1.st"), d);
    snprintf(a1, sizeof a1, args, tmp("ddpm-u1.st"));
    snprintf(a2, sizeof a2, args, tmp("ddpm-u2.st"));
    if (!one_ok(a1) || !mpi_ok(2, a2)) return;
    check_same_model(tmp("ddpm-u1.st"), tmp("ddpm-u2.st"), 1e-4, &worst);
    fprintf(stderr, "  unet eupmu, 2 ranks vs 1: max |diff| %.3g\n", worst);
}

/* lethe bench under mpirun: the methods that run data-parallel (FT) and
 * those that run whole on every rank (SalUn) give one process's metrics;
 * rank 0 alone writes the report. */
TEST(mpi_bench)
{
    if (!mpi_here()) return;
    const char *d = data_dir();
    char args[4096], a1[4096], a2[4096];
    snprintf(args, sizeof args, "bench --scenario fmnist-cw --data-dir '%s' --epochs 1 --steps 2 "
             "--methods ft,salun --quiet --force --cache '%%s' --report '%%s'", d);
    snprintf(a1, sizeof a1, args, tmp("cache1"), tmp("bench-1.json"));
    snprintf(a2, sizeof a2, args, tmp("cache2"), tmp("bench-2.json"));
    if (!one_ok(a1) || !mpi_ok(2, a2)) return;
    cJSON *ra = cli_t_load_json(tmp("bench-1.json")), *rb = cli_t_load_json(tmp("bench-2.json"));
    const cJSON *ma = cJSON_GetObjectItem(ra, "methods"), *mb = cJSON_GetObjectItem(rb, "methods");
    CHECK(cJSON_GetArraySize(ma) == 2 && cJSON_GetArraySize(mb) == 2);
    static const char *keys[] = {"UA", "RA", "TA", "MIA_Eff"};
    for (int i = 0; i < cJSON_GetArraySize(ma) && i < cJSON_GetArraySize(mb); i++)
        for (int k = 0; k < 4; k++)
            CHECK_NEAR(cli_t_jnum(cJSON_GetObjectItem(cJSON_GetArrayItem(ma, i), "metrics"), keys[k]),
                       cli_t_jnum(cJSON_GetObjectItem(cJSON_GetArrayItem(mb, i), "metrics"), keys[k]),
                       0.1);
    cJSON_Delete(ra);
    cJSON_Delete(rb);
}

/* 1 if files a and b hold the same bytes (else a failure naming them). */
static int same_bytes(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *x = cli_t_slurp(a, &la), *y = cli_t_slurp(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    CHECK_MSG(same, "--deterministic: %s and %s differ (%zu and %zu bytes)", a, b, la, lb);
    free(x);
    free(y);
    return same;
}

/* --deterministic: one process and 2 ranks write the same bytes: train
 * (cnn; resnet8, whose batch-norm statistics are merged chunk by chunk
 * too), then EUPMU on the resnet8 (its grouped backward, λ from the loss
 * sums, the extra forward of B_r), and on 2 ranks with --diagnostics too
 * (they only observe: their second backward moves nothing). */
TEST(mpi_deterministic_bitwise)
{
    if (!mpi_here()) return;
    const char *d = data_dir();
    static const char *archs[] = {"cnn", "resnet8"};
    for (int k = 0; k < 2; k++) {
        char args[4096], a1[4096], a2[4096], one[64], two[64];
        snprintf(one, sizeof one, "det-%s-1.st", archs[k]);
        snprintf(two, sizeof two, "det-%s-2.st", archs[k]);
        snprintf(args, sizeof args, "train --arch %s --data mnist --data-dir '%s' --epochs 1 "
                 "--batch 120 --seed 3 --deterministic --quiet --force --out '%%s'", archs[k], d);
        snprintf(a1, sizeof a1, args, tmp(one));
        snprintf(a2, sizeof a2, args, tmp(two));
        if (!one_ok(a1) || !mpi_ok(2, a2) || !same_bytes(tmp(one), tmp(two))) continue;
        if (k == 0) continue;
        snprintf(args, sizeof args, "unlearn --model '%s' --data mnist --data-dir '%s' --forget "
                 "class:0 --method eupmu --steps 2 --batch 16 --seed 1 --deterministic --quiet "
                 "--force --out '%%s'", tmp(one), d);
        snprintf(a1, sizeof a1, args, tmp("det-eupmu-1.st"));
        snprintf(a2, sizeof a2, args, tmp("det-eupmu-2.st"));
        if (one_ok(a1) && mpi_ok(2, a2)) same_bytes(tmp("det-eupmu-1.st"), tmp("det-eupmu-2.st"));
        snprintf(args, sizeof args, "unlearn --model '%s' --data mnist --data-dir '%s' --forget "
                 "class:0 --method eupmu --steps 2 --batch 16 --seed 1 --deterministic "
                 "--diagnostics --quiet --force --out '%s'", tmp(one), d,
                 tmp("det-eupmu-diag.st"));
        if (mpi_ok(2, args)) same_bytes(tmp("det-eupmu-1.st"), tmp("det-eupmu-diag.st"));
    }
}

/* Bad input gives one "lethe …" line on stderr (mpirun's own banners
 * aside), a non-zero exit, no hang. */
static void expect_one_line(const char *prefix, const char *apps, const char *needle)
{
    char *o, *e;
    int rc = run_mpi(prefix, apps, &o, &e, NULL);
    CHECK_MSG(rc != 0 && rc != 124, "%s: exit %d", apps, rc);
    int lines = 0;
    for (const char *p = e; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "")
        lines += strncmp(p, "lethe", 5) == 0;
    CHECK_MSG(lines == 1, "%s: %d 'lethe' lines on stderr: %s", apps, lines, e ? e : "");
    CHECK_MSG(e && strstr(e, needle), "%s: stderr lacks '%s': %s", apps, needle, e ? e : "");
    free(o);
    free(e);
}

/* A rank that fails (its loss NaN at step 2; killed at step 3) ends every
 * rank within the 60 s limit, a message naming rank 1, no model written;
 * the state saved every step before it is whole: 3 ranks are refused it
 * in one line, 2 resume it, and both resumed runs give the same model,
 * bitwise. */
TEST(mpi_fault_ends_every_rank)
{
    if (!mpi_here()) return;
    const char *d = data_dir(), *bin = getenv("LETHE_BIN");
    static const char *faults[] = {"1:1:nan", "1:2:kill"};
    static const char *says[] = {"rank 1 of 2: step 2: the training loss is NaN", "rank 1"};
    char *model[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        char st[1024], out[1024];
        snprintf(st, sizeof st, "%s", tmp("fault.state"));
        snprintf(out, sizeof out, "%s", tmp("fault.st"));
        remove(st);
        remove(out);
        char apps[8192], args[4096], prefix[64], *o, *e;
        snprintf(args, sizeof args, "train --arch cnn --data mnist --data-dir '%s' --epochs 1 "
                 "--batch 60 --seed 5 --quiet --force --out '%s'", d, out);
        snprintf(prefix, sizeof prefix, "LETHE_DIST_FAULT=%s", faults[k]);
        snprintf(apps, sizeof apps, "%s LETHE_DIST_FAULT -np 2 '%s' %s --state '%s' "
                 "--checkpoint-every 1", g_env, bin, args, st);
        double secs;
        int rc = run_mpi(prefix, apps, &o, &e, &secs);
        CHECK_MSG(rc != 0 && rc != 124, "fault %s: exit %d (124: a hang)", faults[k], rc);
        CHECK_MSG(secs < 30.0, "fault %s: the ranks took %.1f s to end", faults[k], secs);
        CHECK_MSG(e && strcasestr(e, says[k]), "fault %s: stderr lacks '%s': %s", faults[k],
                  says[k], e ? e : "");
        CHECK_MSG(!cli_t_exists(out), "fault %s: a model was written", faults[k]);
        free(o);
        free(e);
        if (k == 0) {
            /* A state of 2 ranks resumed on 3. */
            snprintf(apps, sizeof apps, "-np 3 '%s' %s --resume '%s'", bin, args, st);
            expect_one_line(NULL, apps, "the state was written by 2 processes (mpirun), this "
                            "run has 3 (resume with mpirun -np 2)");
        }
        snprintf(apps, sizeof apps, "%s --resume '%s'", args, st);
        if (!mpi_ok(2, apps)) continue;
        model[k] = cli_t_slurp(out, &len[k]);
    }
    CHECK_MSG(model[0] && model[1] && len[0] == len[1] && memcmp(model[0], model[1], len[0]) == 0,
              "the runs resumed after the two faults differ");
    free(model[0]);
    free(model[1]);
}

TEST(mpi_bad_input)
{
    if (!mpi_here()) return;
    const char *d = data_dir(), *bin = getenv("LETHE_BIN");
    char apps[16384], common[4096];
    snprintf(common, sizeof common, "--arch cnn --data mnist --data-dir '%s' --epochs 1 --quiet "
             "--force --out '%s'", d, tmp("bad.st"));
    /* More ranks than the global batch has samples. */
    snprintf(apps, sizeof apps, "-np 3 '%s' train %s --batch 2", bin, common);
    expect_one_line(NULL, apps, "3 ranks, but a batch has 2 samples");
    /* --deterministic on more ranks than its chunks. */
    snprintf(apps, sizeof apps, "-np 5 '%s' train %s --deterministic --batch 40", bin, common);
    expect_one_line(NULL, apps, "--deterministic runs on at most 4 ranks");
    /* Ranks given other options: the first setting that differs. */
    snprintf(apps, sizeof apps, "-np 1 '%s' train %s --seed 1 : -np 1 '%s' train %s --seed 2",
             bin, common, bin, common);
    expect_one_line(NULL, apps, "rank 0 has '--seed 1', rank 1 has '--seed 2'");
    /* Ranks given other data under the same path (their own folders). */
    const char *w0 = tmp("w0"), *w1 = tmp("w1");
    char mk[2200];
    snprintf(mk, sizeof mk, "mkdir -p '%s' '%s'", w0, w1);
    CHECK(system(mk) == 0);
    static const cli_t_mnist other = {240, 60, 28, 8, 1, 2, 0, 0};
    char p0[1024], p1[1024];
    snprintf(p0, sizeof p0, "%s/data", w0);
    snprintf(p1, sizeof p1, "%s/data", w1);
    CHECK(cli_t_write_mnist(p0, &other));
    static const cli_t_mnist other2 = {240, 60, 28, 9, 1, 2, 0, 0};
    CHECK(cli_t_write_mnist(p1, &other2));
    snprintf(common, sizeof common, "train --arch cnn --data mnist --data-dir data --epochs 1 "
             "--quiet --force --out '%s'", tmp("bad.st"));
    snprintf(apps, sizeof apps, "-np 1 -wdir '%s' '%s' %s : -np 1 -wdir '%s' '%s' %s", w0, bin,
             common, w1, bin, common);
    expect_one_line(NULL, apps, "rank 1 has 'data_bytes=");
    /* MPI turned off: the message of a build without MPI. */
    snprintf(apps, sizeof apps, "%s LETHE_MPI -np 2 '%s' --version", g_env, bin);
    expect_one_line("LETHE_MPI=0", apps, "started by an MPI launcher with 2 processes");
}

/* --deterministic in one process (no MPI needed; under ASan too): 1 and 2
 * threads write the same bytes on cnn (its fixed chunks, the linear
 * layers' fixed blocks, one sample a conv chunk; resnet8's batch norm in
 * mpi_deterministic_bitwise, CI's time), and the plain mode's checkpoint
 * is another (the test sees the chunks at work). */
TEST(deterministic_threads_bitwise)
{
    if (!cli_t_have_bin() || !cli_t_mkdir("mpi")) return;
    const char *d = data_dir();
    char args[4096], was[64] = "";
    const char *t = getenv("OMP_NUM_THREADS");
    if (t) snprintf(was, sizeof was, "%s", t);
    static const char *const outs[] = {"det-t1.st", "det-t2.st", "plain-t2.st"};
    for (int k = 0; k < 3; k++) {
        setenv("OMP_NUM_THREADS", k ? "2" : "1", 1);
        snprintf(args, sizeof args, "train --arch cnn --data mnist --data-dir '%s' --epochs 1 "
                 "--batch 120 --seed 3 %s --quiet --force --out '%s'", d,
                 k < 2 ? "--deterministic" : "", tmp(outs[k]));
        char *o, *e;
        int rc = cli_t_run("mpi", args, &o, &e);
        CHECK_MSG(rc == 0, "lethe %s exited %d: %s", args, rc, e ? e : "");
        free(o);
        free(e);
    }
    if (t) setenv("OMP_NUM_THREADS", was, 1);
    else unsetenv("OMP_NUM_THREADS");
    same_bytes(tmp(outs[0]), tmp(outs[1]));
    size_t la = 0, lb = 0;
    char *a = cli_t_slurp(tmp(outs[1]), &la), *b = cli_t_slurp(tmp(outs[2]), &lb);
    CHECK_MSG(a && b && (la != lb || memcmp(a, b, la) != 0),
              "--deterministic wrote the plain mode's bytes");
    free(a);
    free(b);
}

/* --deterministic's limits in one process (no MPI needed): a batch that
 * cannot be cut in its chunks, a method that forwards on its own. */
TEST(deterministic_bad_input)
{
    if (!cli_t_have_bin() || !cli_t_mkdir("mpi")) return;
    const char *d = data_dir();
    char args[4096];
    snprintf(args, sizeof args, "train --arch cnn --data mnist --data-dir '%s' --epochs 1 "
             "--batch 3 --deterministic --quiet --force --out '%s'", d, tmp("det-bad.st"));
    cli_t_expect_fail_at(__FILE__, __LINE__, "mpi", args,
                         "--deterministic cuts every batch in 4 chunks, but a batch has 3 "
                         "samples", 1);
    CHECK(!cli_t_exists(tmp("det-bad.st")));
    snprintf(args, sizeof args, "train --arch mlp --data mnist --data-dir '%s' --epochs 1 "
             "--batch 120 --quiet --force --out '%s'", d, tmp("det-mlp.st"));
    if (!one_ok(args)) return;
    snprintf(args, sizeof args, "unlearn --model '%s' --data mnist --data-dir '%s' --forget "
             "class:0 --method salun --steps 1 --deterministic --quiet --force --out '%s'",
             tmp("det-mlp.st"), d, tmp("det-bad-u.st"));
    cli_t_expect_fail_at(__FILE__, __LINE__, "mpi", args,
                         "--deterministic: method salun forwards on its own", 1);
    snprintf(args, sizeof args, "unlearn --model '%s' --data mnist --data-dir '%s' --forget "
             "class:0 --method eupmu --steps 1 --batch 1 --deterministic --quiet --force "
             "--out '%s'", tmp("det-mlp.st"), d, tmp("det-bad-u.st"));
    cli_t_expect_fail_at(__FILE__, __LINE__, "mpi", args,
                         "--deterministic cuts every batch in 2 chunks, but a batch has 1 sample", 1);
    CHECK(!cli_t_exists(tmp("det-bad-u.st")));
}
