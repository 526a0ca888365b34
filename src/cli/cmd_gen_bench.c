/* lethe bench --scenario fmnist-ddpm-cw: forget class 0 of a class-
 * conditional DDPM with every generation method, each measured by the
 * scenario's classifier (the cnn of fmnist-cw): UA_gen, the accuracy on
 * generated images of the retained classes, FD-cls, time and passes; a
 * table on stdout, JSON, and a grid of samples per method. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/gen.h"
#include "cli/protocol.h"
#include "cli/report.h"
#include "io/paths.h"

static const cli_opt opts[] = {
    {"scenario", "NAME", "fmnist-ddpm-cw", 0},
    {"methods", "LIST", "comma-separated (default: eupmu,eupmu-fast,ungrad,ga,rl,salun,ft)", 0},
    {"tuned", "FILE", "tuned settings (default configs/tuned.json)", 0},
    {"cache", "DIR", "cached models (default runs/cache)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    {"ddpm-epochs", "N", "epochs of the DDPM recipe (default 12)", 0},
    {"steps", "N", "unlearning steps of every method (default 100)", 0},
    {"batch", "N", "images per set and step (default 64)", 0},
    {"n", "N", "generated images per class for the metrics (default 50)", 0},
    {"steps-sample", "N", "DDIM steps (default 25)", 0},
    {"guidance", "W", "classifier-free guidance (default 2)", 0},
    {"seed", "N", "seed (default 0)", 0},
    {"json", "FILE", "results as JSON (default runs/bench-fmnist-ddpm-cw.json)", 0},
    {"grids", "DIR", "a PNG of samples per method here (default runs/ddpm-grids)", 0},
    {"quiet", NULL, "no progress on stderr", 1},
    {NULL, NULL, NULL, 0},
};

static const char *default_methods = "eupmu,eupmu-fast,ungrad,ga,rl,salun,ft";

/* The cached DDPM, trained when missing (about half an hour on 2 cores). */
static lethe_status ensure_ddpm(const char *path, const lethe_dataset *train, int epochs,
                                uint64_t seed, int quiet, lethe_model **m, lethe_ddpm *s)
{
    lethe_metadata md;
    if (access(path, R_OK) == 0) {
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
    lethe_subset all;
    if ((st = lethe_subset_all(&all, (size_t)train->n)) != LETHE_OK) return st;
    if (!quiet)
        fprintf(stderr, "training the DDPM (unet, %d epochs; 12 took 48 minutes on a shared 2-core machine), "
                "cached as %s\n", epochs, path);
    cli_progress prog;
    cli_progress_init(&prog, "ddpm");
    st = lethe_train_diffusion(*m, train, &all, s, &cfg, quiet ? NULL : cli_progress_cb, &prog);
    if (!quiet) cli_progress_done(&prog);
    lethe_subset_free(&all);
    if (st == LETHE_OK) st = gen_save(*m, s, train, &cfg, NULL, path);
    return st;
}

static void row(const char *name, const lethe_gen_metrics *g, const lethe_unlearn_result *r)
{
    printf("| %s | %.2f | %.2f | %.2f |", name, g->ua_gen, g->acc_retained, g->fd_cls);
    if (r)
        printf(" %.1f | %.0f/%.0f |\n", r->seconds, (double)r->fwd_samples / r->batch,
               (double)r->bwd_samples / r->batch);
    else
        printf(" – | – |\n");
    fflush(stdout);
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

int cmd_bench_diffusion(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "bench", "--scenario fmnist-ddpm-cw [options]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    long depochs, steps, batch, seed;
    if (cli_int(&a, "ddpm-epochs", 12, 1, 1000, &depochs) ||
        cli_int(&a, "steps", 100, 1, 10000000, &steps) ||
        cli_int(&a, "batch", 64, 1, 1024, &batch) || cli_int(&a, "seed", 0, 0, LONG_MAX, &seed))
        return 2;
    lethe_gen_eval_config ec;
    long ssteps, n;
    double gw;
    lethe_gen_eval_config_default(&ec);
    if (cli_int(&a, "n", 50, 2, 100000, &n) || cli_int(&a, "steps-sample", 25, 1, 1000, &ssteps) ||
        cli_float(&a, "guidance", 2.0, 0, 100, &gw))
        return 2;
    ec.per_class = (int)n;
    ec.sample.steps = (int)ssteps;
    ec.sample.guidance = (float)gw;
    ec.seed = (uint64_t)seed;
    const char *scn = "fmnist-ddpm-cw";
    const char *tuned = cli_str(&a, "tuned", "configs/tuned.json");
    const char *json = cli_str(&a, "json", "runs/bench-fmnist-ddpm-cw.json");
    const char *grids = cli_str(&a, "grids", "runs/ddpm-grids");
    const char *cache = cli_str(&a, "cache", "runs/cache");
    char mlist[1024];
    snprintf(mlist, sizeof mlist, "%s", cli_str(&a, "methods", default_methods));
    int quiet = cli_flag(&a, "quiet");

    /* Every method's settings, checked before any work. */
    lethe_ddpm probe_s = {0};
    char *save, *tok, tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", mlist);
    for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        lethe_unlearn_config cfg;
        lethe_unlearn_config_default(&cfg);
        cfg.method = tok;
        cfg.ddpm = &probe_s;
        lethe_status st = proto_tuned(tuned, scn, tok, &cfg);
        if (st == LETHE_OK) st = lethe_unlearn_validate(&cfg);
        if (st != LETHE_OK) return cli_lib_error("bench", st);
    }
    if (strncmp(json, "runs/", 5) == 0 && io_mkdir_parent(json) != 0)
        return cli_error("bench", "%s: cannot create its folder: %s", json, strerror(errno));
    if (io_mkdir_p(grids) != 0)
        return cli_error("bench", "%s: cannot create the folder: %s", grids, strerror(errno));
    if (cli_check_writable("bench", json)) return 1;

    /* The classifier is fmnist-cw's original cnn (same cache, same recipe). */
    proto_ctx p;
    memset(&p, 0, sizeof p);
    p.sc = proto_find("fmnist-cw");
    p.cache = cache;
    p.epochs = 8;
    p.seed = (uint64_t)seed;
    p.quiet = quiet;
    int rc = 1;
    lethe_model *ddpm = NULL, *work = NULL;
    lethe_ddpm s = {0};
    cJSON *root = NULL, *runs = NULL;
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
    char path[1024];
    snprintf(path, sizeof path, "%s/ddpm-unet-fmnist-e%ld-s%lu.safetensors", cache, depochs,
             (unsigned long)seed);
    if ((st = ensure_ddpm(path, &p.sp.train, (int)depochs, (uint64_t)seed, quiet, &ddpm, &s)) !=
        LETHE_OK)
        goto fail;
    lethe_dataset *tr = &p.sp.train;
    if ((st = lethe_model_create(&work, "unet", tr->c, tr->h, tr->w, tr->nclass)) != LETHE_OK)
        goto fail;

    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "scenario", scn);
    cJSON_AddStringToObject(root, "forget", p.sp.spec_text);
    cJSON_AddStringToObject(root, "model", path);
    if (!quiet) fprintf(stderr, "measuring the original DDPM (%d images per class)...\n", ec.per_class);
    lethe_gen_metrics g0;
    ec.floor_set = &p.sp.train;   /* once, for the original's row */
    st = lethe_gen_evaluate(ddpm, &s, p.orig, &p.sp.test, p.sp.spec.class_mask, &ec, &g0, NULL);
    ec.floor_set = NULL;
    if (st != LETHE_OK ||
        (st = write_grid(grids, "original", ddpm, &s, &ec.sample)) != LETHE_OK)
        goto fail;
    cJSON_AddItemToObject(root, "original", gen_metrics_json(&g0, &ec));
    runs = cJSON_AddArrayToObject(root, "methods");
    printf("Forgetting class 0 of a class-conditional DDPM (fmnist-ddpm-cw): %d generated images "
           "per class, DDIM %d steps, guidance %g; FD-cls against %d real test images\n\n",
           ec.per_class, ec.sample.steps, (double)ec.sample.guidance, g0.n_real);
    printf("| method | UA_gen | acc on retained | FD-cls | RTE (s) | fwd/bwd passes |\n");
    printf("|---|---|---|---|---|---|\n");
    row("Original", &g0, NULL);
    snprintf(tmp, sizeof tmp, "%s", mlist);
    for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        lethe_unlearn_config cfg;
        lethe_unlearn_config_default(&cfg);
        cfg.method = tok;
        cfg.steps = steps;
        cfg.batch = (int)batch;
        cfg.seed = (uint64_t)seed;
        cfg.ddpm = &s;
        cfg.p_uncond = 0.1f;
        if ((st = proto_tuned(tuned, scn, tok, &cfg)) != LETHE_OK ||
            (st = lethe_model_copy(work, ddpm)) != LETHE_OK)
            goto fail;
        cli_progress prog;
        cli_progress_init(&prog, tok);
        lethe_unlearn_result res;
        st = lethe_unlearn(work, tr, &p.sp.forget, &p.sp.retain, &cfg, &res,
                           quiet ? NULL : cli_progress_cb, &prog);
        if (!quiet) cli_progress_done(&prog);
        if (st == LETHE_ERR_NUMERIC) {
            /* A diverging method is a result, not the end of the bench. */
            printf("| %s | diverged: %s | | | | |\n", tok, lethe_last_error());
            fflush(stdout);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "method", tok);
            cJSON_AddItemToObject(o, "config", report_config(&cfg, p.sp.spec_text));
            cJSON_AddStringToObject(o, "error", lethe_last_error());
            cJSON_AddItemToArray(runs, o);
            continue;
        }
        if (st != LETHE_OK) {
            lethe_unlearn_result_free(&res);
            goto fail;
        }
        lethe_gen_metrics g;
        if ((st = lethe_gen_evaluate(work, &s, p.orig, &p.sp.test, p.sp.spec.class_mask, &ec, &g,
                                     NULL)) != LETHE_OK ||
            (st = write_grid(grids, tok, work, &s, &ec.sample)) != LETHE_OK) {
            lethe_unlearn_result_free(&res);
            goto fail;
        }
        row(tok, &g, &res);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "method", tok);
        cJSON_AddItemToObject(o, "config", report_config(&cfg, p.sp.spec_text));
        cJSON_AddItemToObject(o, "run", report_run(&res, 0));
        cJSON_AddItemToObject(o, "metrics", gen_metrics_json(&g, &ec));
        cJSON_AddItemToArray(runs, o);
        lethe_unlearn_result_free(&res);
    }
    if ((st = report_write(json, root)) != LETHE_OK) goto fail;
    gen_print_floor(&g0);
    printf("\nUA_gen = share of class-0 samples the cnn does not call class 0; acc on retained = "
           "its accuracy on samples of classes 1-9;\nFD-cls = Frechet distance of its penultimate "
           "features, real vs generated (classes 1-9); not the Inception FID.\n");
    fprintf(stderr, "wrote %s and the sample grids in %s\n", json, grids);
    rc = 0;
    goto done;
fail:
    rc = cli_lib_error("bench", st);
done:
    cJSON_Delete(root);
    lethe_model_free(ddpm);
    lethe_model_free(work);
    lethe_ddpm_free(&s);
    lethe_model_free(p.orig);
    cli_split_free(&p.sp);
    return rc;
}
