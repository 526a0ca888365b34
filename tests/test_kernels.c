/* The kernel sets against each other (src/nn/kernels.h). Every model
 * (cnn, resnet8, mlp, the U-Net) run with the test's set and with each
 * other set this CPU runs: the output of a TRAIN forward, the running
 * statistics it updates, and the weight gradients of two sample groups
 * agree to float tolerance. Bitwise equality is not expected: the direct
 * convolution's tiles use fused multiply-adds (the plain loop does not),
 * and vectorised reductions have as many lanes as the vectors. A wrong
 * kernel (a tile's edge, a masked load, a lane left out) is off by the
 * size of the values, far above the tolerance. That two sets differ at
 * all somewhere is checked too: bitwise equal results on every model
 * would mean that both ran the same code. Where only one set runs there
 * is nothing to compare and the test is skipped.
 *
 * Also: the sets' bookkeeping (names, refusals, the active set), and
 * LETHE_KERNELS and `lethe info --system` at the command line. */
#include "test.h"
#include "cli_util.h"

#include <stdlib.h>
#include <string.h>

#include "lethe.h"
#include "nn/kernels.h"

enum { B = 6, B0 = 2 };   /* two groups: [0, B0), [B0, B) */

typedef struct { float *out, *grad, *buf; size_t nout, n, nb; } model_run;

static void run_free(model_run *r)
{
    free(r->out);
    free(r->grad);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* One forward (TRAIN) and backward of `arch` from seed 7 with the active
 * kernel set: r gets copies of the output, the gradients of both groups
 * (2·n floats) and the buffers. Inputs 1×28×28, but resnet18's 3×12×12
 * (its four stages at 12, 6, 3, 2 pixels; 28×28 costs ten times as much).
 * Returns 0, or -1 after a failed check. */
static int run_model(const char *arch, model_run *r)
{
    memset(r, 0, sizeof *r);
    lethe_model *m = NULL;
    const int big = strcmp(arch, "resnet18") == 0, ch = big ? 3 : 1, hw = big ? 12 : 28;
    const int nx = B * ch * hw * hw;
    float *x = malloc((size_t)nx * sizeof(float));
    if (!x) return -1;
    CHECK_OK(lethe_model_create(&m, arch, ch, hw, hw, 10));
    if (!m) {
        free(x);
        return -1;
    }
    CHECK_OK(lethe_model_reserve(m, B));
    lethe_rng rng;
    lethe_rng_seed(&rng, 7);
    lethe_model_init(m, &rng);
    float *dl = NULL;
    for (int i = 0; i < nx; i++) x[i] = lethe_rng_normal(&rng);
    const int32_t t[B] = {0, 1, 250, 500, 998, 999}, y[B] = {0, 3, 10, 7, 9, 1};
    lethe_groups g;
    lethe_groups_two(&g, B0, B - B0);
    int rc = -1;
    const float *out = NULL;
    if (strcmp(arch, "unet") == 0) CHECK_OK(lethe_model_set_cond(m, t, y));
    lethe_status st = lethe_model_forward(m, x, B, &g, LETHE_BN_TRAIN, &out);
    CHECK_OK(st);
    if (st != LETHE_OK) goto done;
    r->nout = (size_t)B * lethe_model_out_size(m);
    lethe_model_theta(m, &r->n);
    const float *buf = lethe_model_buffers(m, &r->nb);
    r->out = malloc(r->nout * sizeof(float));
    r->grad = calloc(2 * r->n, sizeof(float));
    r->buf = malloc((r->nb ? r->nb : 1) * sizeof(float));
    dl = malloc(r->nout * sizeof(float));
    if (!r->out || !r->grad || !r->buf || !dl) {
        CHECK_MSG(0, "out of memory");
        goto done;
    }
    memcpy(r->out, out, r->nout * sizeof(float));
    memcpy(r->buf, buf, r->nb * sizeof(float));
    for (size_t i = 0; i < r->nout; i++) dl[i] = lethe_rng_normal(&rng) / (float)B;
    float *const grads[2] = {r->grad, r->grad + r->n};
    CHECK_OK(lethe_model_backward(m, dl, &g, grads));
    rc = 0;
done:
    free(dl);
    free(x);
    lethe_model_free(m);
    return rc;
}

/* max |a − b| ≤ tol · max |b| (with a floor, for all-zero tensors). */
static void check_close(const char *what, const char *arch, const char *other, const float *a,
                        const float *b, size_t n, double tol)
{
    double diff = 0.0, scale = 1e-6;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        if (d > diff || d != d) {
            diff = d;
            at = i;
        }
        if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
    }
    CHECK_MSG(diff <= tol * scale, "%s %s: %s and %s differ by %.3g at %zu (scale %.3g, tol %g)",
              arch, what, test_kset(), other, diff, at, scale, tol);
}

TEST_KSETS(kernel_sets_agree_on_every_model)
{
    const char *self = test_kset();
    static const char *arches[] = {"cnn", "resnet8", "resnet20", "resnet18", "vit-tiny", "mlp",
                                   "unet"};
    int compared = 0;
    for (int k = 0; k < nn_kernels_count(); k++) {
        const char *other = nn_kernels_name(k);
        if (strcmp(other, self) == 0 || !nn_kernels_usable(k)) continue;
        int differ = 0;
        for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
            model_run mine, theirs;
            CHECK_OK(nn_kernels_use(self));
            if (run_model(arches[a], &mine) != 0) return;
            CHECK_OK(nn_kernels_use(other));
            if (run_model(arches[a], &theirs) != 0) {
                run_free(&mine);
                return;
            }
            CHECK(mine.nout == theirs.nout && mine.n == theirs.n && mine.nb == theirs.nb);
            if (mine.nout == theirs.nout && mine.n == theirs.n && mine.nb == theirs.nb) {
                check_close("output", arches[a], other, mine.out, theirs.out, mine.nout, 2e-5);
                check_close("buffers", arches[a], other, mine.buf, theirs.buf, mine.nb, 2e-5);
                check_close("group 0 gradient", arches[a], other, mine.grad, theirs.grad,
                            mine.n, 1e-4);
                check_close("group 1 gradient", arches[a], other, mine.grad + mine.n,
                            theirs.grad + theirs.n, mine.n, 1e-4);
                differ |= memcmp(mine.out, theirs.out, mine.nout * sizeof(float)) != 0 ||
                          memcmp(mine.grad, theirs.grad, 2 * mine.n * sizeof(float)) != 0;
            }
            run_free(&mine);
            run_free(&theirs);
        }
        CHECK_MSG(differ, "the %s and %s kernels gave bitwise the same results on every model: "
                  "do both run the same code?", self, other);
        compared++;
    }
    CHECK_OK(nn_kernels_use(self));
    if (!compared) test_skip("no other kernel set runs on this CPU: nothing to compare with");
}

/* The set of the test is the active one, and the names and refusals are
 * what kernels.h says. */
TEST_KSETS(kernel_sets_bookkeeping)
{
    CHECK(strcmp(nn_kernels_active(), test_kset()) == 0);
    int usable = 0, found = 0;
    for (int k = 0; k < nn_kernels_count(); k++) {
        usable += nn_kernels_usable(k);
        found += strcmp(nn_kernels_name(k), test_kset()) == 0;
        CHECK(nn_kernels_needs(k) && *nn_kernels_needs(k));
    }
    CHECK(usable >= 1 && found == 1);
    CHECK(nn_kernels_name(nn_kernels_count()) == NULL);
    CHECK(nn_kernels_use("no-such-set") == LETHE_ERR_NOTFOUND);
    CHECK(strstr(lethe_last_error(), "no-such-set") != NULL);
    CHECK(strcmp(nn_kernels_active(), test_kset()) == 0);
    for (int k = 0; k < nn_kernels_count(); k++) {
        if (nn_kernels_usable(k)) continue;
        /* Refused by name, and the active set stays. */
        CHECK(nn_kernels_use(nn_kernels_name(k)) == LETHE_ERR_ARG);
        CHECK(strstr(lethe_last_error(), "cannot run") != NULL);
        CHECK(strcmp(nn_kernels_active(), test_kset()) == 0);
    }
}

/* LETHE_KERNELS at the command line: `lethe info --system` names the set
 * and why; a set forced is used, one this CPU cannot run or that this
 * build lacks is refused in one line, exit 1, before any work. */
TEST(kernel_sets_cli)
{
    if (!cli_t_have_bin() || !cli_t_mkdir("kernels")) return;
    char *o, *e, args[1024], want[128], saved[64] = "";
    const char *env = getenv("LETHE_KERNELS");   /* the suite's own, put back at the end */
    if (env) snprintf(saved, sizeof saved, "%s", env);
    unsetenv("LETHE_KERNELS");
    int rc = cli_t_run("kernels", "info --system", &o, &e);
    CHECK_MSG(rc == 0, "info --system exited %d: %s", rc, e ? e : "");
    const char *out = o ? o : "";
    CHECK_MSG(strstr(out, "build ") && strstr(out, "threads ") && strstr(out, "OpenBLAS"),
              "info --system: %s", out);
    int first = 0;   /* detected: the first set this CPU runs */
    while (first < nn_kernels_count() - 1 && !nn_kernels_usable(first)) first++;
    snprintf(want, sizeof want, "kernels   %s (", nn_kernels_name(first));
    CHECK_MSG(strstr(out, want), "info --system lacks '%s': %s", want, out);
    free(o);
    free(e);
    for (int k = 0; k < nn_kernels_count(); k++) {
        const char *name = nn_kernels_name(k);
        setenv("LETHE_KERNELS", name, 1);
        rc = cli_t_run("kernels", "info --system", &o, &e);
        out = o ? o : "";
        if (nn_kernels_usable(k)) {
            snprintf(want, sizeof want, "kernels   %s (forced by LETHE_KERNELS=%s)", name, name);
            CHECK_MSG(rc == 0 && strstr(out, want), "LETHE_KERNELS=%s: exit %d: %s", name, rc,
                      out);
        } else {
            snprintf(want, sizeof want, "refused: LETHE_KERNELS=%s: this CPU cannot run", name);
            CHECK_MSG(rc == 1 && strstr(out, want), "LETHE_KERNELS=%s: exit %d: %s", name, rc,
                      out);
        }
        free(o);
        free(e);
    }
    /* A command that computes stops at once: train from a folder that
     * does not exist would fail later, on the data, so the kernels are
     * refused before it is read. */
    cli_t_path_buf dir, model;
    cli_t_path(dir, "kernels", "mnist");
    cli_t_path(model, "kernels", "m.safetensors");
    static const cli_t_mnist spec = {40, 20, 28, 5, 0, 0, 0, 0};
    CHECK(cli_t_write_mnist(dir, &spec));
    snprintf(args, sizeof args,
             "train --arch mlp --data mnist --data-dir '%s' --epochs 1 --batch 20 --quiet "
             "--out '%s'", dir, model);
    setenv("LETHE_KERNELS", "no-such-set", 1);
    cli_t_expect_fail_at(__FILE__, __LINE__, "kernels", args,
                         "LETHE_KERNELS=no-such-set: no such kernel set in this build", 1);
    CHECK(!cli_t_exists(model));
    for (int k = 0; k < nn_kernels_count(); k++) {
        if (nn_kernels_usable(k)) continue;
        setenv("LETHE_KERNELS", nn_kernels_name(k), 1);
        snprintf(want, sizeof want, "LETHE_KERNELS=%s: this CPU cannot run", nn_kernels_name(k));
        cli_t_expect_fail_at(__FILE__, __LINE__, "kernels", args, want, 1);
        CHECK(!cli_t_exists(model));
    }
    unsetenv("LETHE_KERNELS");
    rc = cli_t_run("kernels", args, &o, &e);
    CHECK_MSG(rc == 0 && cli_t_exists(model), "train exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    if (saved[0]) setenv("LETHE_KERNELS", saved, 1);
}
