/* lethe bench --scenario fmnist-ddpm-cw: forget class 0 of a class-
 * conditional DDPM with every generation method, each measured by the
 * scenario's classifier (the cnn of fmnist-cw): UA_gen, the accuracy on
 * generated images of the retained classes, FD-cls, time and passes; a
 * table on stdout, JSON, and a grid of samples per method. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dist.h"
#include "cli/gen.h"
#include "cli/signals.h"
#include "core/fail.h"
#include "cli/protocol.h"
#include "cli/report.h"
#include "io/paths.h"

static const cli_opt opts[] = {
    {"scenario", "NAME", "fmnist-ddpm-cw", 0},
    {"methods", "LIST", "comma-separated methods or tuned variants (default: "
                        "eupmu,eupmu-log,eupmu-fast,eupmu-lookahead,ungrad,rl,salun,esd,ga,ft)", 0},
    {"tuned", "FILE", "tuned settings (default configs/tuned.json)", 0},
    {"cache", "DIR", "cached models (default: runs/cache of the tree the program was built in, "
                     "else ~/.cache/lethe/cache)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    {"ddpm-epochs", "N", "epochs of the DDPM recipe, Original and Retrain (default 12)", 0},
    {"steps", "N", "unlearning steps of every method (default: the scenario's budget, else "
                   "5·ceil(|D_f|/batch))", 0},
    {"batch", "N", "images per set and step (default: the scenario's budget, else 128)", 0},
    {"n", "N", "generated images per retained class (default 200)", 0},
    {"n-forget", "N", "generated images of the forgotten class, for UA_gen (default 500)", 0},
    {"steps-sample", "N", "DDIM steps (default 25)", 0},
    {"guidance", "W", "classifier-free guidance (default 2)", 0},
    {"no-retrain", NULL, "skip the Retrain DDPM (trained when not cached: ~45 min)", 1},
    {"seed", "N", "seed (default 0)", 0},
    {"report", "FILE", "results as JSON (default runs/bench-fmnist-ddpm-cw.json beside "
                       "the default cache)", 0},
    {"grids", "DIR", "a PNG of samples per method here (default runs/ddpm-grids beside "
                      "the default cache)", 0},
    {"quiet", NULL, "no progress on stderr", 1},
    {NULL, NULL, NULL, 0},
};

static const char *default_methods =
    "eupmu,eupmu-log,eupmu-fast,eupmu-lookahead,ungrad,rl,salun,esd,ga,ft";

/* The unlearning budget of every method (iterations × batch), the same for
 * all: "budget" in the scenario's tuned entries, else the protocol's
 * T = 5·⌈|D_f| / B⌉ steps (0 here) of B = 128 + 128 images. */
#define BUDGET_STEPS 0
#define BUDGET_BATCH 128

lethe_status gen_ensure_ddpm(const char *path, const lethe_dataset *train,
                                const lethe_subset *sub, const char *without, int epochs,
                                uint64_t seed, int quiet, lethe_model **m, lethe_ddpm *s)
{
    lethe_metadata md;
    /* Under mpirun: loaded only if every rank has it, else trained by all. */
    if (core_dist_all(access(path, R_OK) == 0)) {
        if (!quiet) fprintf(stderr, "reusing %s\n", path);
        return gen_open(path, m, &md, s);
    }
    lethe_status st = lethe_model_create(m, "unet", train->c, train->h, train->w, train->nclass);
    if (st == LETHE_OK) st = lethe_ddpm_init(s, LETHE_DDPM_T, LETHE_DDPM_BETA1, LETHE_DDPM_BETAT);
    if (st != LETHE_OK) return st;
    lethe_diffusion_config cfg;
    lethe_diffusion_config_default(&cfg);
    cfg.train.epochs = epochs;
    cfg.train.seed = seed;
    const char *what = without ? "the Retrain DDPM" : "the original DDPM";
    cli_run r;
    if ((st = cli_cache_run_begin(&r, path, what, quiet)) != LETHE_OK) return st;
    if (!quiet)
        fprintf(stderr, "training %s (unet, %d epochs on %zu images; 12 epochs on all "
                "60,000 take about 30 minutes on 2 cores), cached as %s\n", what, epochs,
                sub->n, path);
    cli_progress prog;
    cli_progress_init(&prog, without ? "retrain ddpm" : "ddpm");
    st = lethe_train_diffusion_run(*m, train, sub, s, &cfg, &r.ctl,
                                   quiet ? NULL : cli_progress_cb, &prog);
    if (!quiet) cli_progress_done(&prog);
    if ((st = cli_cache_run_end(&r, st, what)) == LETHE_OK &&
        (st = gen_save(*m, s, train, &cfg, without, path)) == LETHE_OK)
        cli_cache_run_done(path);
    return st;
}

static const table_col cols[] = {TABLE_COL("method", NULL), GEN_COLS, TABLE_COL("RTE (s)", "%.1f"),
                                 TABLE_COL("fwd/bwd passes", "%.0f/%.0f")};

static void row(table *t, const char *name, const lethe_gen_metrics *g,
                const lethe_unlearn_result *r)
{
    table_text(t, "%s", name);
    gen_cells(t, g);
    proto_table_cost(t, r ? r->seconds : -1, r);
    table_end_row(t);
}

static lethe_status write_grid(const char *dir, const char *name, lethe_model *m,
                               const lethe_ddpm *s, const lethe_sample_config *sc)
{
    int nclass = lethe_model_nclass(m), c, h, w, gn = 8;
    lethe_model_input_shape(m, &c, &h, &w);
    size_t d = (size_t)c * h * w;
    float *x = malloc((size_t)nclass * gn * d * sizeof(float));   /* (nclass·8, d) */
    lethe_ddpm_sampler ws = {0};
    lethe_status st = x ? lethe_ddpm_sampler_init(&ws, gn, (int)d)
                        : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int k = 0; k < nclass && st == LETHE_OK; k++)
        st = lethe_gen_sample_class(m, s, sc, &ws, k, gn, 0, x + (size_t)k * gn * d);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    if (st == LETHE_OK) st = lethe_png_write_grid(path, x, nclass * gn, h, w, gn, -1.0f, 1.0f);
    lethe_ddpm_sampler_free(&ws);
    free(x);
    return st;
}

/* Measure one model's samples, draw its grid, print its row, add its JSON. */
static lethe_status measure(table *t, const char *label, lethe_model *m, const lethe_ddpm *s,
                            proto_ctx *p, lethe_gen_eval_config *ec, const char *grids,
                            const lethe_unlearn_result *res, const lethe_unlearn_config *cfg,
                            cJSON *arr, lethe_gen_metrics *g)
{
    lethe_status st = lethe_gen_evaluate(m, s, p->orig, &p->sp.test, p->sp.spec.class_mask, ec,
                                         g, NULL);
    if (st == LETHE_OK) st = write_grid(grids, label, m, s, &ec->sample);
    if (st != LETHE_OK) return st;
    row(t, label, g, res);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", label);
    if (cfg) cJSON_AddItemToObject(o, "config", report_config(cfg, p->sp.spec_text));
    if (res) cJSON_AddItemToObject(o, "run", report_run(res, 0));
    cJSON_AddItemToObject(o, "metrics", gen_metrics_json(g, ec));
    cJSON_AddItemToArray(arr, o);
    return LETHE_OK;
}

/* Where the bench stands: rows done of all, elapsed, and time left at the
 * mean time per row so far. */
static void bench_progress(int quiet, int done, int total, double t0)
{
    if (quiet || done <= 0) return;
    double el = core_now() - t0, left = el / done * (total - done);
    fprintf(stderr, "bench: %d/%d rows, %.0f:%02.0f elapsed, about %.0f:%02.0f left\n", done,
            total, floor(el / 60), fmod(el, 60), floor(left / 60), fmod(left, 60));
}

int cmd_bench_diffusion(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "bench", "--scenario fmnist-ddpm-cw [options]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *scn = "fmnist-ddpm-cw";
    char tbuf[4096];
    const char *tuned = cli_settings_path("bench", cli_str(&a, "tuned", NULL), tbuf, sizeof tbuf);
    if (!tuned) return 2;
    /* The budget: the scenario's, unless given. */
    lethe_unlearn_config bud;
    lethe_unlearn_config_default(&bud);
    bud.steps = BUDGET_STEPS;
    bud.batch = BUDGET_BATCH;
    lethe_ddpm probe_s = {0};
    bud.ddpm = &probe_s;
    bud.method = "ft";
    lethe_status st0 = proto_tuned(tuned, scn, "budget", &bud);
    if (st0 != LETHE_OK) return cli_lib_error("bench", st0);
    long depochs, steps, batch, seed;
    if (cli_int(&a, "ddpm-epochs", 12, 1, 1000, &depochs) ||
        cli_int(&a, "steps", bud.steps, 0, 10000000, &steps) ||
        cli_int(&a, "batch", bud.batch, 1, 1024, &batch) ||
        cli_int(&a, "seed", 0, 0, LONG_MAX, &seed))
        return 2;
    lethe_gen_eval_config ec;
    long ssteps, n, nf;
    double gw;
    lethe_gen_eval_config_default(&ec);
    if (cli_int(&a, "n", 200, 2, 100000, &n) || cli_int(&a, "n-forget", 500, 2, 100000, &nf) ||
        cli_int(&a, "steps-sample", 25, 1, 1000, &ssteps) ||
        cli_float(&a, "guidance", 2.0, 0, 100, &gw))
        return 2;
    ec.per_class = (int)n;
    ec.per_forget = (int)nf;
    ec.sample.steps = (int)ssteps;
    ec.sample.guidance = (float)gw;
    ec.seed = (uint64_t)seed;
    char jdef[4096], gdef[4096], cdef[4096];
    const char *json = cli_str(&a, "report", cli_runs_path("bench-fmnist-ddpm-cw.json", jdef,
                                                           sizeof jdef));
    const char *grids = cli_str(&a, "grids", cli_runs_path("ddpm-grids", gdef, sizeof gdef));
    const char *cache = cli_str(&a, "cache", cli_runs_path("cache", cdef, sizeof cdef));
    char mlist[1024];
    snprintf(mlist, sizeof mlist, "%s", cli_str(&a, "methods", default_methods));
    int quiet = cli_flag(&a, "quiet"), with_retrain = !cli_flag(&a, "no-retrain");

    /* Every method's settings, checked before any work. */
    char *save, *tok, tmp[1024];
    int nmeth = 0;
    snprintf(tmp, sizeof tmp, "%s", mlist);
    for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        lethe_unlearn_config cfg;
        lethe_unlearn_config_default(&cfg);
        cfg.method = tok;
        cfg.ddpm = &probe_s;
        if ((r = proto_check_method("bench", "--methods", tok, tuned, scn))) return r;
        lethe_status st = proto_tuned(tuned, scn, tok, &cfg);
        if (st == LETHE_OK) st = lethe_unlearn_validate(&cfg);
        if (st != LETHE_OK) {
            cli_lib_error("bench", st);
            return 2;
        }
        nmeth++;
    }
    if (!cli_str(&a, "report", NULL) && io_mkdir_parent(json) != 0)
        return cli_error("bench", "%s: cannot create its folder: %s", json, strerror(errno));
    if (io_mkdir_p(grids) != 0)
        return cli_error("bench", "%s: cannot create the folder: %s", grids, strerror(errno));
    if (cli_str(&a, "report", NULL) ? (r = cli_check_named_output(&a, "report", json)) != 0
                                  : (r = cli_check_output("bench", NULL, json)) != 0)
        return r;

    /* The classifier is fmnist-cw's original cnn (same cache, same recipe). */
    cli_settings_note("bench", tuned, quiet);
    proto_ctx p;
    memset(&p, 0, sizeof p);
    p.sc = proto_find("fmnist-cw");
    p.cache = cache;
    p.data_dir = cli_str(&a, "data-dir", NULL);
    p.epochs = 8;
    p.seed = (uint64_t)seed;
    p.quiet = quiet;
    int rc = 1;
    lethe_model *ddpm = NULL, *work = NULL, *retrain = NULL;
    lethe_ddpm s = {0}, s_re = {0};
    cJSON *root = NULL, *runs = NULL;
    lethe_subset all = {0};
    lethe_status st;
    if (io_mkdir_p(cache) != 0) {
        st = lethe_fail(LETHE_ERR_IO, "%s: cannot create the cache folder: %s", cache,
                        strerror(errno));
        goto fail;
    }
    if ((st = cli_split_load(&p.sp, "fmnist", cli_str(&a, "data-dir", NULL), "class:0",
                             (uint64_t)seed)) != LETHE_OK ||
        (st = proto_ensure_original(&p)) != LETHE_OK)
        goto fail;
    char path[1024], rpath[1024], tail[64];
    snprintf(tail, sizeof tail, "-e%ld-s%lu", depochs, (unsigned long)seed);
    proto_cache_path(&p, "ddpm-unet-fmnist", tail, path, sizeof path);
    proto_cache_path(&p, "retrain-ddpm-unet-fmnist-class0", tail, rpath, sizeof rpath);
    if ((st = lethe_subset_all(&all, (size_t)p.sp.train.n)) != LETHE_OK ||
        (st = gen_ensure_ddpm(path, &p.sp.train, &all, NULL, (int)depochs, (uint64_t)seed, quiet,
                          &ddpm, &s)) != LETHE_OK)
        goto fail;
    if (with_retrain &&
        (st = gen_ensure_ddpm(rpath, &p.sp.train, &p.sp.retain, p.sp.spec_text, (int)depochs,
                          (uint64_t)seed, quiet, &retrain, &s_re)) != LETHE_OK)
        goto fail;
    lethe_dataset *tr = &p.sp.train;
    if ((st = lethe_model_create(&work, "unet", tr->c, tr->h, tr->w, tr->nclass)) != LETHE_OK)
        goto fail;

    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "scenario", scn);
    cJSON_AddStringToObject(root, "forget", p.sp.spec_text);
    cJSON_AddStringToObject(root, "model", path);
    if (with_retrain) cJSON_AddStringToObject(root, "retrain", rpath);
    cJSON_AddNumberToObject(root, "steps", (double)steps);
    cJSON_AddNumberToObject(root, "batch", (double)batch);
    if (!steps) steps = 5 * (long)((p.sp.forget.n + (size_t)batch - 1) / (size_t)batch);
    runs = cJSON_AddArrayToObject(root, "methods");
    printf("Forgetting class 0 of a class-conditional DDPM (fmnist-ddpm-cw). Every method: %ld "
           "steps of %ld forgetting + %ld retaining images from the same DDPM. Metrics: DDIM %d "
           "steps, guidance %g ((1 + w)·ε_c − w·ε_∅ with w = %g), %d generated images of class 0 "
           "(UA_gen, Wilson 95%% interval) and %d of each of classes 1-9 (accuracy, FD-cls "
           "against the %s real test images of classes 1-9), classified by the fmnist-cw cnn; "
           "the same starting noise for every model.\n\n",
           steps, batch, batch, ec.sample.steps, (double)ec.sample.guidance,
           (double)ec.sample.guidance - 1.0, ec.per_forget, ec.per_class, "9,000");
    table t;
    table_begin(&t, stdout, TABLE_MARKDOWN, cols, 6);
    int total = nmeth + 1 + with_retrain, done_rows = 0;
    double t0 = core_now();
    if (!quiet)
        fprintf(stderr, "measuring the original DDPM (%d + %d×9 images)...\n", ec.per_forget,
                ec.per_class);
    lethe_gen_metrics g0, g;
    ec.floor_set = &p.sp.train;   /* once, for the original's row */
    st = measure(&t, "Original", ddpm, &s, &p, &ec, grids, NULL, NULL, runs, &g0);
    ec.floor_set = NULL;
    if (st != LETHE_OK) goto fail;
    bench_progress(quiet, ++done_rows, total, t0);
    if (with_retrain) {
        if ((st = measure(&t, "Retrain", retrain, &s_re, &p, &ec, grids, NULL, NULL, runs, &g)) !=
            LETHE_OK)
            goto fail;
        bench_progress(quiet, ++done_rows, total, t0);
    }
    snprintf(tmp, sizeof tmp, "%s", mlist);
    for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        lethe_unlearn_config cfg;
        lethe_unlearn_config_default(&cfg);
        cfg.method = tok;
        cfg.ddpm = &s;
        cfg.p_uncond = 0.1f;
        cfg.seed = (uint64_t)seed;
        if ((st = proto_tuned(tuned, scn, tok, &cfg)) != LETHE_OK ||
            (st = lethe_model_copy(work, ddpm)) != LETHE_OK)
            goto fail;
        cfg.steps = steps;              /* the same budget for every method */
        cfg.batch = (int)batch;
        cli_progress prog;
        cli_progress_init(&prog, tok);
        lethe_unlearn_result res;
        st = lethe_unlearn(work, tr, &p.sp.forget, &p.sp.retain, &cfg, &res,
                           quiet ? NULL : cli_progress_cb, &prog);
        if (!quiet) cli_progress_done(&prog);
        if (st == LETHE_ERR_NUMERIC) {
            /* A diverging method is a result, not the end of the bench. */
            table_text(&t, "%s", tok);
            table_text(&t, "diverged: %s", lethe_last_error());
            table_end_row(&t);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "method", tok);
            cJSON_AddItemToObject(o, "config", report_config(&cfg, p.sp.spec_text));
            cJSON_AddStringToObject(o, "error", lethe_last_error());
            cJSON_AddItemToArray(runs, o);
            bench_progress(quiet, ++done_rows, total, t0);
            continue;
        }
        if (st != LETHE_OK) goto fail;
        st = measure(&t, tok, work, &s, &p, &ec, grids, &res, &cfg, runs, &g);
        lethe_unlearn_result_free(&res);
        if (st != LETHE_OK) goto fail;
        bench_progress(quiet, ++done_rows, total, t0);
    }
    if ((st = report_write(json, root)) != LETHE_OK) goto fail;
    gen_print_floor(&g0);
    printf("\nUA_gen = share of class-0 samples the cnn does not call class 0; acc on retained = "
           "its accuracy on samples of classes 1-9;\nFD-cls = Frechet distance of its penultimate "
           "features, real vs generated (classes 1-9); not the Inception FID. RTE: unlearning "
           "time on this machine; passes in batches of %ld.\n", batch);
    if (!quiet) fprintf(stderr, "wrote %s and the sample grids in %s\n", json, grids);
    rc = 0;
    goto done;
fail:
    rc = cli_lib_error("bench", st);
done:
    cJSON_Delete(root);
    lethe_subset_free(&all);
    lethe_model_free(ddpm);
    lethe_model_free(retrain);
    lethe_model_free(work);
    lethe_ddpm_free(&s);
    lethe_ddpm_free(&s_re);
    lethe_model_free(p.orig);
    cli_split_free(&p.sp);
    return rc;
}
