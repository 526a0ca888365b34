/* The multi-objective methods (PCGrad, MGDA, CAGrad) against answers
 * worked by hand or by brute force, and the option registry: settings by
 * name, the refusals of an option a method does not take or a value out
 * of range, through the library, the command line and a settings file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "test.h"
#include "unlearn/method.h"

/* Gram entries of two 2-d vectors. */
static void gram(const double *u, const double *r, double *uu, double *rr, double *ur)
{
    *uu = u[0] * u[0] + u[1] * u[1];
    *rr = r[0] * r[0] + r[1] * r[1];
    *ur = u[0] * r[0] + u[1] * r[1];
}

TEST(pcgrad_projects_each_gradient_off_the_other)
{
    /* g_u = (1, 0), g_r = (−1, 1): ⟨g_u, g_r⟩ = −1.
     * g_u' = g_u + ½ g_r = (0.5, 0.5), g_r' = g_r + g_u = (0, 1): d = (0.5, 1.5)
     * = 2·g_u + 1.5·g_r. */
    double u[2] = {1, 0}, r[2] = {-1, 1}, uu, rr, ur, au, ar;
    gram(u, r, &uu, &rr, &ur);
    ul_pcgrad_weights(uu, rr, ur, &au, &ar);
    CHECK_NEAR(au, 2.0, 1e-12);
    CHECK_NEAR(ar, 1.5, 1e-12);
    double d[2] = {au * u[0] + ar * r[0], au * u[1] + ar * r[1]};
    CHECK_NEAR(d[0], 0.5, 1e-12);
    CHECK_NEAR(d[1], 1.5, 1e-12);
    /* No conflict: the plain sum. */
    ul_pcgrad_weights(1.0, 2.0, 0.3, &au, &ar);
    CHECK(au == 1.0 && ar == 1.0);
    /* A zero gradient has nothing to project. */
    ul_pcgrad_weights(0.0, 2.0, 0.0, &au, &ar);
    CHECK(au == 1.0 && ar == 1.0);
}

/* min over a in [0, 1] of ‖a·u + (1 − a)·r‖² on a fine grid. */
static double brute_min_norm(const double *u, const double *r, double *best_a)
{
    double best = INFINITY;
    for (int i = 0; i <= 100000; i++) {
        double a = i / 100000.0, x = a * u[0] + (1 - a) * r[0], y = a * u[1] + (1 - a) * r[1];
        if (x * x + y * y < best) best = x * x + y * y, *best_a = a;
    }
    return best;
}

TEST(mgda_is_the_min_norm_point_of_the_hull)
{
    /* g_u = (2, 0), g_r = (0, 1): α = 1/5 by hand, d/2 = (0.4, 0.8). */
    double u[2] = {2, 0}, r[2] = {0, 1}, uu, rr, ur, au, ar, a;
    gram(u, r, &uu, &rr, &ur);
    ul_mgda_weights(uu, rr, ur, &au, &ar);
    CHECK_NEAR(au, 0.4, 1e-12);
    CHECK_NEAR(ar, 1.6, 1e-12);
    /* Against brute force on vectors with and without conflict, and where
     * the minimum sits at an end (g_r in the direction of g_u, shorter). */
    static const double cases[][4] = {
        {1, 0, -1, 1}, {3, 1, -2, 0.5}, {1, 2, 0.2, 0.4}, {0.5, -1, 2, 2}, {1, 1, 1, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double uv[2] = {cases[i][0], cases[i][1]}, rv[2] = {cases[i][2], cases[i][3]};
        gram(uv, rv, &uu, &rr, &ur);
        ul_mgda_weights(uu, rr, ur, &au, &ar);
        CHECK_NEAR(au + ar, 2.0, 1e-12);
        double x = 0.5 * (au * uv[0] + ar * rv[0]), y = 0.5 * (au * uv[1] + ar * rv[1]);
        double want = brute_min_norm(uv, rv, &a);
        CHECK_MSG(fabs(x * x + y * y - want) < 1e-8, "case %zu: ‖d/2‖² %.10g, brute force %.10g",
                  i, x * x + y * y, want);
    }
}

/* CAGrad's primal: among d with ‖d − g_0‖ ≤ c‖g_0‖, the largest
 * min(⟨g_u, d⟩, ⟨g_r, d⟩); brute force over a fine polar grid of the ball. */
static double brute_cagrad(const double *u, const double *r, double c)
{
    double g0[2] = {0.5 * (u[0] + r[0]), 0.5 * (u[1] + r[1])};
    double rad = c * sqrt(g0[0] * g0[0] + g0[1] * g0[1]), best = -INFINITY;
    for (int i = 0; i <= 400; i++)
        for (int k = 0; k < 2000; k++) {
            double rr_ = rad * i / 400.0, th = 2 * M_PI * k / 2000.0;
            double d[2] = {g0[0] + rr_ * cos(th), g0[1] + rr_ * sin(th)};
            double m = fmin(u[0] * d[0] + u[1] * d[1], r[0] * d[0] + r[1] * d[1]);
            if (m > best) best = m;
        }
    return best;
}

TEST(cagrad_solves_its_primal)
{
    double uu, rr, ur, au, ar;
    /* c = 0: the plain sum g_u + g_r. */
    ul_cagrad_weights(1.0, 4.0, -1.5, 0.0, &au, &ar);
    CHECK_NEAR(au, 1.0, 1e-12);
    CHECK_NEAR(ar, 1.0, 1e-12);
    static const double cases[][4] = {{1, 0, -1, 1}, {3, 1, -2, 0.5}, {1, 2, 0.2, 0.4},
                                      {0.5, -1, 2, 2}};
    static const double cs[] = {0.2, 0.5, 0.8};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t j = 0; j < 3; j++) {
            double u[2] = {cases[i][0], cases[i][1]}, r[2] = {cases[i][2], cases[i][3]};
            gram(u, r, &uu, &rr, &ur);
            ul_cagrad_weights(uu, rr, ur, cs[j], &au, &ar);
            /* Undo the rescaling 2/(1 + c²) to get the primal's d. */
            double k = (1.0 + cs[j] * cs[j]) / 2.0;
            double d[2] = {k * (au * u[0] + ar * r[0]), k * (au * u[1] + ar * r[1])};
            double g0[2] = {0.5 * (u[0] + r[0]), 0.5 * (u[1] + r[1])};
            double dist = hypot(d[0] - g0[0], d[1] - g0[1]), rad = cs[j] * hypot(g0[0], g0[1]);
            CHECK_MSG(dist <= rad * (1 + 1e-9) + 1e-12, "case %zu c %g: d outside the ball", i,
                      cs[j]);
            double got = fmin(u[0] * d[0] + u[1] * d[1], r[0] * d[0] + r[1] * d[1]);
            double want = brute_cagrad(u, r, cs[j]);
            CHECK_MSG(got >= want - 1e-4 * (1 + fabs(want)),
                      "case %zu c %g: worse decrease %.8g, brute force %.8g", i, cs[j], got, want);
        }
}

/* --------------------------------------------------- settings by name */

TEST(options_by_name_follow_the_method)
{
    lethe_unlearn_config c;
    lethe_unlearn_config_default(&c);
    c.method = "cagrad";
    const lethe_param *ps[64];
    int n = lethe_method_params("cagrad", ps, 64);
    CHECK(n > 0);
    const lethe_param *pc = lethe_param_find("c");
    CHECK(pc != NULL && lethe_method_takes("cagrad", pc) && !lethe_method_takes("pcgrad", pc));
    /* Unset: the default; set: the value, as text too. */
    CHECK_NEAR(lethe_unlearn_get(&c, pc), 0.5, 1e-7);
    CHECK_OK(lethe_unlearn_set(&c, "c", "0.25"));
    CHECK_NEAR(lethe_unlearn_get(&c, pc), 0.25, 1e-7);
    char buf[LETHE_PARAM_TEXT_MAX];
    CHECK_OK(lethe_unlearn_get_text(&c, pc, buf, sizeof buf));
    CHECK(strcmp(buf, "0.25") == 0);
    /* Too short a buffer, and a choice index outside the choices: refused. */
    CHECK(lethe_unlearn_get_text(&c, pc, buf, 4) == LETHE_ERR_ARG && strcmp(buf, "0.2") == 0);
    const lethe_param *po = lethe_param_find("optim");
    CHECK(po != NULL && po->type == LETHE_PARAM_CHOICE);
    if (po) {
        CHECK_OK(lethe_unlearn_set(&c, "optim", "adam"));
        CHECK_OK(lethe_unlearn_get_text(&c, po, buf, sizeof buf));
        CHECK(strcmp(buf, "adam") == 0);
        c.optim = (lethe_opt_kind)7;
        CHECK(lethe_unlearn_get_text(&c, po, buf, sizeof buf) == LETHE_ERR_ARG);
        c.optim = LETHE_OPT_SGD;
    }
    /* Out of range, not a number, an option of another method, unknown. */
    static const struct { const char *method, *name, *value, *needle[2]; } bad[] = {
        {"cagrad", "c", "20", {"cagrad", "c must be"}},
        {"cagrad", "c", "x", {"cagrad", "got x"}},
        {"pcgrad", "c", "0.5", {"pcgrad has no option 'c'", "cagrad"}},
        {"eupmu", "gamma", "0.3", {"eupmu has no option 'gamma'", "salun"}},
        {"eupmu", "lamda0", "1", {"eupmu has no option 'lamda0'", "lambda0"}},
        {"salun", "optim", "rmsprop", {"optim", "sgd, adam"}},
        {"rl", "steps", "2.5", {"rl", "whole number"}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lethe_unlearn_config_default(&c);
        c.method = bad[i].method;
        lethe_unlearn_config before = c;
        lethe_status st = lethe_unlearn_set(&c, bad[i].name, bad[i].value);
        CHECK_MSG(st == LETHE_ERR_ARG, "%s %s=%s accepted", bad[i].method, bad[i].name,
                  bad[i].value);
        for (int k = 0; k < 2; k++)
            CHECK_MSG(strstr(lethe_last_error(), bad[i].needle[k]) != NULL,
                      "%s %s=%s: message lacks '%s': %s", bad[i].method, bad[i].name,
                      bad[i].value, bad[i].needle[k], lethe_last_error());
        CHECK_MSG(memcmp(&before, &c, sizeof c) == 0, "%s: a refused value changed the config",
                  bad[i].name);
    }
    /* Choices by name or index; the old name of an option still read. */
    lethe_unlearn_config_default(&c);
    CHECK_OK(lethe_unlearn_set(&c, "optim", "adamw"));
    CHECK(c.optim == LETHE_OPT_ADAMW);
    CHECK_OK(lethe_unlearn_set_number(&c, "beta_decay", 0));
    CHECK(c.beta_decay == 0);
    CHECK_OK(lethe_unlearn_set(&c, "beta-schedule", "decay"));
    CHECK(c.beta_decay == 1);
    CHECK(lethe_unlearn_set_number(&c, "optim", 5) == LETHE_ERR_ARG);
    /* A slot set out of range by hand is caught by validation. */
    lethe_unlearn_config_default(&c);
    c.method = "cagrad";
    c.method_opt[0] = -1.0f;
    CHECK(lethe_unlearn_validate(&c) == LETHE_ERR_ARG);
    CHECK(strstr(lethe_last_error(), "cagrad") && strstr(lethe_last_error(), "c must be"));
}

TEST(every_option_has_help_and_every_method_a_grid)
{
    const lethe_param *ps[160];
    int n = lethe_all_params(ps, 160);
    CHECK(n > 20 && n < 160);
    for (int i = 0; i < n && i < 160; i++) {
        CHECK_MSG(ps[i]->help && *ps[i]->help, "option %s has no help", ps[i]->name);
        CHECK_MSG(lethe_param_find(ps[i]->name) == ps[i], "option %s: not found by its name",
                  ps[i]->name);
    }
    int nm;
    const char *const *names = lethe_methods(&nm);
    for (int i = 0; i < nm; i++) {
        CHECK_MSG(lethe_method_summary(names[i]) != NULL, "%s has no summary", names[i]);
        /* Every method can be tuned on the task it runs on. */
        const char *g = lethe_method_grid(names[i], !lethe_method_classifies(names[i]));
        CHECK_MSG(g != NULL, "%s has no default grid", names[i]);
        /* Each grid value is one the method takes. */
        char buf[256];
        snprintf(buf, sizeof buf, "%s", g ? g : "");
        char *s1, *s2;
        for (char *part = strtok_r(buf, ";", &s1); part; part = strtok_r(NULL, ";", &s1)) {
            char *eq = strchr(part, '=');
            CHECK(eq != NULL);
            if (!eq) break;
            *eq = 0;
            for (char *v = strtok_r(eq + 1, ",", &s2); v; v = strtok_r(NULL, ",", &s2)) {
                lethe_unlearn_config c;
                lethe_unlearn_config_default(&c);
                c.method = names[i];
                CHECK_MSG(lethe_unlearn_set(&c, part, v) == LETHE_OK, "%s grid %s=%s: %s",
                          names[i], part, v, lethe_last_error());
            }
        }
    }
}

/* ------------------------------------------------------- command line */

typedef cli_t_path_buf path_buf;
static const cli_t_mnist mo_spec = {100, 20, 28, 31, 1, 2, 0, 0};

static int mo_fixture(path_buf dir, path_buf model)
{
    if (!cli_t_have_bin() || !cli_t_mkdir("multiobj")) return 0;
    cli_t_path(dir, "multiobj", "mnist");
    cli_t_path(model, "multiobj", "mlp.safetensors");
    if (cli_t_exists(model)) return 1;
    CHECK(cli_t_write_mnist(dir, &mo_spec));
    char args[2048], *o, *e;
    snprintf(args, sizeof args,
             "train --arch mlp --data mnist --data-dir '%s' --epochs 1 --batch 32 --out '%s'", dir,
             model);
    int rc = cli_t_run("multiobj", args, &o, &e);
    CHECK_MSG(rc == 0, "lethe train exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    return rc == 0 && cli_t_exists(model);
}

TEST(cli_multiobj_methods_run_and_report_their_options)
{
    path_buf dir, model, outb, repb;
    if (!mo_fixture(dir, model)) return;
    const char *out = cli_t_path(outb, "multiobj", "u.safetensors");
    const char *rep = cli_t_path(repb, "multiobj", "u.json");
    static const char *const methods[] = {"pcgrad", "mgda", "cagrad --c 0.3"};
    for (int i = 0; i < 3; i++) {
        char args[4096], *o, *e;
        snprintf(args, sizeof args,
                 "unlearn --model '%s' --data-dir '%s' --forget class:0 --steps 3 --batch 16 "
                 "--method %s --no-eval --quiet --force --out '%s' --report '%s'",
                 model, dir, methods[i], out, rep);
        int rc = cli_t_run("multiobj", args, &o, &e);
        CHECK_MSG(rc == 0, "`%s` exited %d: %s", methods[i], rc, e ? e : "");
        cJSON *j = cli_t_load_json(rep);
        const cJSON *cfg = j ? cJSON_GetObjectItemCaseSensitive(j, "config") : NULL;
        CHECK_MSG(cfg != NULL, "%s: no config in the report", methods[i]);
        if (cfg && i == 2) CHECK_NEAR(cli_t_jnum(cfg, "c"), 0.3, 1e-6);
        cJSON_Delete(j);
        free(o);
        free(e);
    }
}

TEST(cli_refuses_options_the_method_lacks)
{
    path_buf dir, model, outb, tunedb;
    if (!mo_fixture(dir, model)) return;
    const char *out = cli_t_path(outb, "multiobj", "bad.safetensors");
    static const struct { const char *opts, *needle[2]; } cases[] = {
        {"--method cagrad --c 20", {"--c", "cagrad"}},
        {"--method pcgrad --c 0.5", {"pcgrad has no option 'c'", "cagrad"}},
        {"--method mgda --eps 0.1", {"mgda has no option 'eps'", "eupmu"}},
        {"--method salun --gamma 2", {"salun", "gamma"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[4096], *o, *e;
        snprintf(args, sizeof args,
                 "unlearn --model '%s' --data-dir '%s' --forget class:0 --steps 2 --batch 16 "
                 "%s --out '%s'", model, dir, cases[i].opts, out);
        remove(out);
        int rc = cli_t_run("multiobj", args, &o, &e);
        const char *err = e ? e : "";
        CHECK_MSG(rc == 2, "`%s` exited %d (expected 2): %s", cases[i].opts, rc, err);
        CHECK_MSG(cli_t_count_lines(err) == 1, "`%s`: not one line:\n%s", cases[i].opts, err);
        for (int k = 0; k < 2; k++)
            CHECK_MSG(strstr(err, cases[i].needle[k]) != NULL, "`%s`: message lacks '%s': %s",
                      cases[i].opts, cases[i].needle[k], err);
        CHECK_MSG(!cli_t_exists(out), "`%s` wrote %s", cases[i].opts, out);
        free(o);
        free(e);
    }
    /* The same through a settings file: the file, the entry and the option named. */
    const char *tuned = cli_t_path(tunedb, "multiobj", "tuned-bad.json");
    static const char *const files[][2] = {
        {"{\"fmnist-cw\": {\"pcgrad\": {\"lr\": 0.01, \"c\": 0.5}}}", "pcgrad has no option 'c'"},
        {"{\"fmnist-cw\": {\"cagrad\": {\"c\": -1}}}", "c must be"},
    };
    for (int i = 0; i < 2; i++) {
        CHECK(cli_t_spit(tuned, files[i][0], strlen(files[i][0])));
        char args[4096], *o, *e;
        snprintf(args, sizeof args,
                 "sweep --scenario fmnist-cw --method %s --param lr --values 0.01 --tuned '%s' "
                 "--no-plot --json -", i ? "cagrad" : "pcgrad", tuned);
        int rc = cli_t_run("multiobj", args, &o, &e);
        const char *err = e ? e : "";
        CHECK_MSG(rc != 0, "settings file %d accepted", i);
        CHECK_MSG(strstr(err, "tuned-bad.json") && strstr(err, files[i][1]),
                  "settings file %d: message lacks the file or '%s': %s", i, files[i][1], err);
        CHECK_MSG(!o || !*o, "settings file %d: printed %s", i, o);
        free(o);
        free(e);
    }
}
