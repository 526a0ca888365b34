/* Generation commands: `lethe train --task diffusion`, `lethe sample`, and
 * `lethe eval --task diffusion` (main.c routes --task diffusion here). A
 * diffusion checkpoint carries its noise schedule in its metadata. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/fail.h"
#include "cli/gen.h"
#include "cli/report.h"
#include "cli/signals.h"

/* --------------------------------------------------------- shared pieces */

lethe_status gen_meta_schedule(lethe_metadata *md, const lethe_ddpm *s, double beta1,
                               double betaT)
{
    char T[16], b1[32], bT[32];
    snprintf(T, sizeof T, "%d", s->T);
    snprintf(b1, sizeof b1, "%.17g", beta1);
    snprintf(bT, sizeof bT, "%.17g", betaT);
    lethe_status st;
    if ((st = lethe_meta_set(md, "task", "diffusion")) != LETHE_OK ||
        (st = lethe_meta_set(md, "ddpm_T", T)) != LETHE_OK ||
        (st = lethe_meta_set(md, "ddpm_beta1", b1)) != LETHE_OK ||
        (st = lethe_meta_set(md, "ddpm_betaT", bT)) != LETHE_OK)
        return st;
    return LETHE_OK;
}

lethe_status gen_open(const char *path, lethe_model **m, lethe_metadata *md, lethe_ddpm *s)
{
    memset(s, 0, sizeof *s);
    lethe_status st = cli_open_model(path, m, md);
    if (st != LETHE_OK) return st;
    const char *task = lethe_meta_get(md, "task");
    const char *T = lethe_meta_get(md, "ddpm_T");
    const char *b1 = lethe_meta_get(md, "ddpm_beta1"), *bT = lethe_meta_get(md, "ddpm_betaT");
    if (!task || strcmp(task, "diffusion") != 0 || !T || !b1 || !bT) {
        lethe_model_free(*m);
        *m = NULL;
        return lethe_fail(LETHE_ERR_FORMAT, "%s: not a diffusion model (no noise schedule in "
                          "its metadata; train one with 'lethe train --task diffusion')", path);
    }
    char *e1, *e2, *e3;
    long t = strtol(T, &e1, 10);
    double beta1 = strtod(b1, &e2), betaT = strtod(bT, &e3);
    if (*e1 || *e2 || *e3 || t < 1 || t > 100000) {
        lethe_model_free(*m);
        *m = NULL;
        return lethe_fail(LETHE_ERR_FORMAT, "%s: bad noise schedule in metadata (T '%s', "
                          "beta '%s'..'%s')", path, T, b1, bT);
    }
    st = lethe_ddpm_init(s, (int)t, beta1, betaT);
    if (st != LETHE_OK) {
        lethe_model_free(*m);
        *m = NULL;
    }
    return st;
}

int gen_sample_opts(const cli_args *a, const char *cmd, lethe_sample_config *sc)
{
    lethe_sample_config_default(sc);
    long steps;
    double eta, w;
    if (cli_int(a, "steps", sc->steps, 1, 100000, &steps) ||
        cli_float(a, "eta", sc->eta, 0, 10, &eta) ||
        cli_float(a, "guidance", 2.0, 0, 100, &w))
        return 2;
    sc->steps = (int)steps;
    sc->eta = (float)eta;
    sc->guidance = (float)w;
    const char *kind = cli_str(a, "sampler", "ddim");
    if (strcmp(kind, "ddim") == 0) sc->kind = LETHE_SAMPLER_DDIM;
    else if (strcmp(kind, "ancestral") == 0) sc->kind = LETHE_SAMPLER_ANCESTRAL;
    else return cli_usage_error(cmd, "--sampler: unknown '%s' (ddim, ancestral)", kind);
    return 0;
}

lethe_status gen_save(const lethe_model *m, const lethe_ddpm *s, const lethe_dataset *train,
                      const lethe_diffusion_config *cfg, const char *without, const char *path)
{
    lethe_metadata md = {0};
    char shape[64], ncls[16], recipe[256], seed[32];
    snprintf(shape, sizeof shape, "%d,%d,%d", train->c, train->h, train->w);
    snprintf(ncls, sizeof ncls, "%d", train->nclass);
    snprintf(recipe, sizeof recipe, "adamw lr=%g schedule=%d wd=%g epochs=%d batch=%d ema=%g "
             "p_uncond=%g", (double)cfg->train.lr, (int)cfg->train.schedule,
             (double)cfg->train.weight_decay, cfg->train.epochs, cfg->train.batch,
             (double)cfg->ema, (double)cfg->p_uncond);
    snprintf(seed, sizeof seed, "%lu", (unsigned long)cfg->train.seed);
    lethe_status st;
    if ((st = lethe_meta_set(&md, "format", "lethe")) != LETHE_OK ||
        (st = lethe_meta_set(&md, "version", LETHE_VERSION)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "arch", lethe_model_arch(m))) != LETHE_OK ||
        (st = lethe_meta_set(&md, "in_shape", shape)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "nclass", ncls)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "dataset", train->name)) != LETHE_OK ||
        (st = gen_meta_schedule(&md, s, s->beta[0], s->beta[s->T - 1])) != LETHE_OK ||
        (st = lethe_meta_set(&md, "recipe", recipe)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "seed", seed)) != LETHE_OK ||
        (without && (st = lethe_meta_set(&md, "trained_without", without)) != LETHE_OK))
        return st;
    return lethe_checkpoint_save(m, &md, path);
}

/* ------------------------------------------------------------- train */

static const cli_opt train_opts[] = {
    {"task", "NAME", "diffusion", 0},
    {"arch", "NAME", "unet (default)", 0},
    {"data", "NAME", "fmnist | mnist (default fmnist)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    {"epochs", "N", "epochs (default 12)", 0},
    {"batch", "N", "batch size (default 128)", 0},
    {"lr", "X", "AdamW learning rate (default 1e-3, cosine to 0)", 0},
    {"schedule", "NAME", "cosine | constant | step (default cosine)", 0},
    {"wd", "X", "weight decay (default 0)", 0},
    {"ema", "X", "decay of the averaged weights that are saved (default 0.999; 0: last)", 0},
    {"p-uncond", "X", "probability of training without the class (default 0.1)", 0},
    {"T", "N", "diffusion steps (default 1000; β linear 1e-4 to 0.02)", 0},
    {"seed", "N", "seed of weights, data order and noise (default 0)", 0},
    {"forget", "SPEC", "train without these images (Retrain): class:0 | ...", 0},
    {"forget-seed", "N", "seed of a random forget set (default 0)", 0},
    {"out", "FILE", "checkpoint to write (.safetensors)", 0},
    CLI_RUN_OPTS,
    {"quiet", NULL, "no progress on stderr", 1},
    {NULL, NULL, NULL, 0},
};

int cmd_train_diffusion(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "train", "--task diffusion --out FILE [options]", train_opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *out = cli_str(&a, "out", NULL);
    if (!out) return cli_usage_error("train", "--out FILE is required");
    lethe_diffusion_config cfg;
    lethe_diffusion_config_default(&cfg);
    long epochs, batch, seed, fseed, T;
    double lr, wd, ema, pu;
    if (cli_int(&a, "epochs", cfg.train.epochs, 1, 10000, &epochs) ||
        cli_int(&a, "batch", cfg.train.batch, 1, 4096, &batch) ||
        cli_int(&a, "seed", 0, 0, LONG_MAX, &seed) ||
        cli_int(&a, "forget-seed", 0, 0, LONG_MAX, &fseed) ||
        cli_int(&a, "T", LETHE_DDPM_T, 1, 100000, &T) ||
        cli_float(&a, "lr", cfg.train.lr, 1e-12, 100, &lr) ||
        cli_float(&a, "wd", cfg.train.weight_decay, 0, 1, &wd) ||
        cli_float(&a, "ema", cfg.ema, 0, 0.999999, &ema) ||
        cli_float(&a, "p-uncond", cfg.p_uncond, 0, 1, &pu))
        return 2;
    cfg.train.epochs = (int)epochs;
    cfg.train.batch = (int)batch;
    cfg.train.seed = (uint64_t)seed;
    cfg.train.lr = (float)lr;
    cfg.train.weight_decay = (float)wd;
    cfg.ema = (float)ema;
    cfg.p_uncond = (float)pu;
    lethe_schedule sch;
    if (lethe_schedule_parse(&sch, cli_str(&a, "schedule", "cosine")) != LETHE_OK)
        return cli_usage_error("train", "--schedule: %s", lethe_last_error());
    cfg.train.schedule = sch.kind;
    const char *arch = cli_str(&a, "arch", "unet");
    const char *data = cli_str(&a, "data", "fmnist");
    const char *fspec = cli_str(&a, "forget", NULL);
    lethe_forget_spec spec;
    if (fspec && (r = cli_forget_parse("train", "--forget", fspec, &spec))) return r;
    if ((r = cli_check_named_output(&a, "out", out))) return r;
    cli_run run;
    if ((r = cli_run_setup(&run, &a, out, NULL))) return r;

    int rc = 1;
    lethe_dataset train = {0}, test = {0};
    lethe_model *m = NULL;
    lethe_ddpm s = {0};
    lethe_subset all = {0}, forget = {0}, retain = {0};
    lethe_status st = cli_load_data(data, cli_str(&a, "data-dir", NULL), &train, &test);
    if (st != LETHE_OK) return cli_lib_error("train", st);
    if ((st = lethe_model_create(&m, arch, train.c, train.h, train.w, train.nclass)) != LETHE_OK ||
        (st = lethe_ddpm_init(&s, (int)T, LETHE_DDPM_BETA1, LETHE_DDPM_BETAT)) != LETHE_OK)
        goto fail;
    const lethe_subset *sub;
    if ((st = cli_training_set(fspec ? &spec : NULL, &train, (uint64_t)fseed, &all, &forget,
                               &retain, &sub)) != LETHE_OK)
        goto fail;
    size_t n;
    lethe_model_theta(m, &n);
    fprintf(stderr, "training %s (%zu parameters, %.1f MFLOP per image) as a DDPM (T %d) on %s: "
            "%zu images, %d epochs, batch %d, AdamW lr %g, EMA %g, seed %lu\n", arch, n,
            lethe_model_flops(m) / 1e6, s.T, train.name, sub->n, cfg.train.epochs,
            cfg.train.batch, (double)cfg.train.lr, (double)cfg.ema, (unsigned long)seed);
    cli_progress prog;
    cli_progress_init(&prog, "train");
    double t0 = core_now();
    cli_run_begin(&run);
    st = lethe_train_diffusion_run(m, &train, sub, &s, &cfg, &run.ctl,
                                   cli_flag(&a, "quiet") ? NULL : cli_progress_cb, &prog);
    if (!cli_flag(&a, "quiet")) cli_progress_done(&prog);
    if ((rc = cli_run_end(&run, "train", st))) goto done;
    if (st != LETHE_OK) goto fail;
    double secs = core_now() - t0;

    char without[LETHE_FORGET_TEXT_MAX] = "";
    if (fspec && (st = lethe_forget_to_string(&spec, without, sizeof without)) != LETHE_OK)
        goto fail;
    if ((st = gen_save(m, &s, &train, &cfg, fspec ? without : NULL, out)) != LETHE_OK) goto fail;
    cli_run_finish(&run);
    cli_train_table(arch, train.name, sub->n, cfg.train.epochs, NAN, NAN, secs);
    fprintf(stderr, "wrote %s\n", out);
    rc = 0;
    goto done;
fail:
    rc = cli_run_fail(&run, "train", st);
done:
    lethe_subset_free(&all);
    lethe_subset_free(&forget);
    lethe_subset_free(&retain);
    lethe_model_free(m);
    lethe_ddpm_free(&s);
    lethe_dataset_free(&train);
    lethe_dataset_free(&test);
    return rc;
}

/* ------------------------------------------------------------ sample */

static const cli_opt sample_opts[] = {
    {"model", "FILE", "diffusion checkpoint", 0},
    {"class", "C", "class to generate (default: every class, one row each)", 0},
    {"n", "N", "images (per class without --class; default 64, or 10 per class)", 0},
    {"out", "FILE", "PNG grid to write", 0},
    {"raw", "FILE", "also write the images as an IDX file (.gz: compressed), labels beside it", 0},
    {"sampler", "NAME", "ddim | ancestral (default ddim)", 0},
    {"steps", "N", "sampling steps (default 50)", 0},
    {"eta", "X", "DDIM noise (default 0: deterministic)", 0},
    {"guidance", "W", "classifier-free guidance scale (default 2; 1: conditional only)", 0},
    {"batch", "N", "images per forward (default 100)", 0},
    {"seed", "N", "seed of the noise (default 0)", 0},
    {NULL, NULL, NULL, 0},
};

/* labels path of an IDX image path: "x.idx" → "x-labels.idx" (".gz" kept). */
static void labels_path(char *out, size_t n, const char *path)
{
    const char *gz = strlen(path) > 3 && strcmp(path + strlen(path) - 3, ".gz") == 0 ? ".gz" : "";
    size_t base = strlen(path) - strlen(gz);
    const char *dot = NULL;
    for (const char *p = path; p < path + base; p++)
        if (*p == '.') dot = p;
        else if (*p == '/') dot = NULL;
    size_t stem = dot ? (size_t)(dot - path) : base;
    snprintf(out, n, "%.*s-labels%.*s%s", (int)stem, path, (int)(base - stem), path + stem, gz);
}

int cmd_sample(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "sample", "--model FILE --out GRID.png [options]", sample_opts, argc,
                      argv);
    if (r) return r == 1 ? 0 : 2;
    const char *path = cli_str(&a, "model", NULL), *out = cli_str(&a, "out", NULL);
    const char *raw = cli_str(&a, "raw", NULL);
    if (!path) return cli_usage_error("sample", "--model FILE is required");
    if (!out && !raw)
        return cli_usage_error("sample", "--out GRID.png (or --raw FILE) is required");
    lethe_sample_config sc;
    long cls, n, seed, batch;
    if ((r = gen_sample_opts(&a, "sample", &sc)) != 0) return r;
    if (cli_int(&a, "class", -1, -1, LETHE_GEN_MAX_CLASSES, &cls) ||
        cli_int(&a, "n", cls >= 0 ? 64 : 10, 1, 100000, &n) ||
        cli_int(&a, "batch", 100, 1, LETHE_GEN_MAX_BATCH, &batch) ||
        cli_int(&a, "seed", 0, 0, LONG_MAX, &seed))
        return 2;
    if ((out && (r = cli_check_named_output(&a, "out", out))) ||
        (raw && (r = cli_check_named_output(&a, "raw", raw))))
        return r;
    lethe_model *m = NULL;
    lethe_metadata md;
    lethe_ddpm s;
    lethe_status st = gen_open(path, &m, &md, &s);
    if (st != LETHE_OK) return cli_lib_error("sample", st);
    int nclass = lethe_model_nclass(m), c, h, w, rc = 1;
    lethe_model_input_shape(m, &c, &h, &w);
    if (sc.steps > s.T) {
        rc = cli_usage_error("sample", "--steps %d: %s has a schedule of T = %d steps", sc.steps,
                             path, s.T);
        goto out_free;
    }
    if (cls > nclass) {
        rc = cli_usage_error("sample", "--class %ld: the model has classes 0..%d (%d: "
                             "unconditional)", cls, nclass - 1, nclass);
        goto out_free;
    }
    int nrows = cls >= 0 ? 1 : nclass;
    size_t d = (size_t)c * h * w, total = (size_t)n * nrows;
    float *img = malloc(total * d * sizeof(float));     /* (rows·n, C·H·W) in [−1, 1] */
    int32_t *labels = malloc(total * sizeof(int32_t));  /* (rows·n) */
    lethe_ddpm_sampler ws = {0};
    if (!img || !labels) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for %zu images", total);
        goto fail;
    }
    if ((st = lethe_model_reserve(m, 2 * (int)batch)) != LETHE_OK ||
        (st = lethe_ddpm_sampler_init(&ws, (int)batch, (int)d)) != LETHE_OK)
        goto fail;
    double t0 = core_now();
    for (int k = 0; k < nrows; k++) {
        int y = cls >= 0 ? (int)cls : k;
        fprintf(stderr, "\rsampling class %d (%d of %d), %ld images, %s %d steps, guidance %g",
                y, k + 1, nrows, n, sc.kind == LETHE_SAMPLER_DDIM ? "DDIM" : "ancestral",
                sc.steps, (double)sc.guidance);
        if ((st = lethe_gen_sample_class(m, &s, &sc, &ws, y, (int)n, (uint64_t)seed,
                                         img + (size_t)k * n * d)) != LETHE_OK)
            goto fail;
        for (long i = 0; i < n; i++) labels[(size_t)k * n + i] = y;
    }
    fprintf(stderr, "\n%zu images in %.1f s\n", total, core_now() - t0);
    if (out) {
        /* One row per class: n columns (a single class: a square-ish grid). */
        int cols = cls >= 0 ? (int)ceil(sqrt((double)n)) : (int)n;
        if ((st = lethe_png_write_grid(out, img, (int)total, h, w, cols, -1.0f, 1.0f)) != LETHE_OK)
            goto fail;
        fprintf(stderr, "wrote %s\n", out);
    }
    if (raw) {
        char lp[1024];
        labels_path(lp, sizeof lp, raw);
        if ((st = lethe_idx_write_images_float(raw, img, (int)total, h, w, -1.0f, 1.0f)) !=
                LETHE_OK ||
            (st = lethe_idx_write_labels(lp, labels, (int)total)) != LETHE_OK)
            goto fail;
        fprintf(stderr, "wrote %s and %s\n", raw, lp);
    }
    rc = 0;
    goto done;
fail:
    rc = cli_lib_error("sample", st);
done:
    lethe_ddpm_sampler_free(&ws);
    free(img);
    free(labels);
out_free:
    lethe_model_free(m);
    lethe_ddpm_free(&s);
    return rc;
}

/* -------------------------------------------------------------- eval */

static const cli_opt eval_opts[] = {
    {"task", "NAME", "diffusion", 0},
    {"model", "FILE", "diffusion checkpoint", 0},
    {"classifier", "FILE", "classifier of the same classes (e.g. the cnn of 'lethe train')", 0},
    {"forget", "SPEC", "forgotten classes, class:C[,C…]: UA_gen, and FD-cls on the others", 0},
    {"n", "N", "generated images per class (default 100)", 0},
    {"n-forget", "N", "generated images of each forgotten class, for UA_gen (default: --n)", 0},
    {"batch", "N", "images per forward (default 100)", 0},
    {"sampler", "NAME", "ddim | ancestral (default ddim)", 0},
    {"steps", "N", "sampling steps (default 50)", 0},
    {"eta", "X", "DDIM noise (default 0)", 0},
    {"guidance", "W", "classifier-free guidance scale (default 2)", 0},
    {"seed", "N", "seed of the noise (default 0)", 0},
    {"data-dir", "DIR", "folder of the data set (real images: the test split)", 0},
    {"grid", "FILE", "PNG of the first 10 samples of every class, one row per class", 0},
    {"report", "FILE", "JSON with the metrics", 0},
    {NULL, NULL, NULL, 0},
};

cJSON *gen_metrics_json(const lethe_gen_metrics *g, const lethe_gen_eval_config *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *acc = cJSON_AddArrayToObject(o, "acc_per_class");
    for (int k = 0; k < g->nclass; k++) cJSON_AddItemToArray(acc, cJSON_CreateNumber(g->acc[k]));
    if (isfinite(g->ua_gen)) {
        cJSON_AddNumberToObject(o, "ua_gen", g->ua_gen);
        cJSON *ci = cJSON_AddArrayToObject(o, "ua_gen_ci95");
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(g->ua_gen_lo));
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(g->ua_gen_hi));
        cJSON_AddNumberToObject(o, "n_forget", g->n_forget);
    } else {
        cJSON_AddNullToObject(o, "ua_gen");
    }
    cJSON_AddNumberToObject(o, "acc_retained", g->acc_retained);
    cJSON_AddNumberToObject(o, "fd_cls", g->fd_cls);
    if (isfinite(g->fd_cls_real)) {
        cJSON_AddNumberToObject(o, "fd_cls_real_floor", g->fd_cls_real);
        cJSON_AddNumberToObject(o, "n_floor", g->n_floor);
    }
    cJSON_AddNumberToObject(o, "per_class", g->per_class);
    cJSON_AddNumberToObject(o, "n_real", g->n_real);
    cJSON_AddNumberToObject(o, "sampler_forwards", (double)g->fwd_samples);
    cJSON_AddStringToObject(o, "sampler", c->sample.kind == LETHE_SAMPLER_DDIM ? "ddim" : "ancestral");
    cJSON_AddNumberToObject(o, "steps", c->sample.steps);
    cJSON_AddItemToObject(o, "guidance", report_float(c->sample.guidance));
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    return o;
}

lethe_status gen_write_grid(const char *path, const float *images, int nclass, int per_class,
                            int cols, int h, int w)
{
    if (cols > per_class) cols = per_class;
    size_t d = (size_t)h * w;
    float *g = malloc((size_t)nclass * cols * d * sizeof(float));  /* (nclass·cols, h·w) */
    if (!g) return lethe_fail(LETHE_ERR_NOMEM, "out of memory for the grid");
    for (int k = 0; k < nclass; k++)
        memcpy(g + (size_t)k * cols * d, images + (size_t)k * per_class * d,
               (size_t)cols * d * sizeof(float));
    lethe_status st = lethe_png_write_grid(path, g, nclass * cols, h, w, cols, -1.0f, 1.0f);
    free(g);
    return st;
}

void gen_cells(table *t, const lethe_gen_metrics *g)
{
    table_nums(t, (const double[]){g->ua_gen, g->ua_gen_lo, g->ua_gen_hi, g->acc_retained,
                                   g->fd_cls}, 5);
}

void gen_print_table(const char *first, const lethe_gen_metrics *m0, const char *label,
                     const lethe_gen_metrics *m)
{
    char head[LETHE_GEN_MAX_CLASSES][16];
    table_col col[4 + LETHE_GEN_MAX_CLASSES] = {TABLE_COL("model", NULL), GEN_COLS};
    for (int k = 0; k < m->nclass; k++) {
        snprintf(head[k], sizeof head[k], "acc %d", k);
        col[4 + k] = (table_col)TABLE_COL(head[k], "%.0f");
    }
    table t;
    table_begin(&t, stdout, TABLE_MARKDOWN, col, 4 + m->nclass);
    for (int i = !first; i < 2; i++) {
        table_text(&t, "%s", i ? label : first);
        gen_cells(&t, i ? m : m0);
        table_nums(&t, (i ? m : m0)->acc, m->nclass);
        table_end_row(&t);
    }
    gen_print_floor(m);
}

void gen_print_floor(const lethe_gen_metrics *g)
{
    if (isfinite(g->fd_cls_real))
        printf("\nFD-cls floor: %.2f, with %d real training images of the same classes in place "
               "of the generated ones (the value of a perfect generator at this sample size)\n",
               g->fd_cls_real, g->n_floor);
}

int gen_eval_opts(const cli_args *a, const char *cmd, lethe_gen_eval_config *ec)
{
    lethe_gen_eval_config_default(ec);
    long n, nf, batch, seed;
    int r = gen_sample_opts(a, cmd, &ec->sample);
    if (r) return r;
    if (cli_int(a, "n", ec->per_class, 2, 100000, &n) ||
        cli_int(a, "n-forget", 0, 2, 100000, &nf) ||
        cli_int(a, "batch", ec->batch, 1, LETHE_GEN_MAX_BATCH, &batch) ||
        cli_int(a, "seed", 0, 0, LONG_MAX, &seed))
        return 2;
    ec->per_class = (int)n;
    ec->per_forget = (int)nf;
    ec->batch = (int)batch;
    ec->seed = (uint64_t)seed;
    return 0;
}

int cmd_eval_diffusion(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "eval", "--task diffusion --model FILE --classifier FILE [options]",
                      eval_opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *path = cli_str(&a, "model", NULL), *cpath = cli_str(&a, "classifier", NULL);
    const char *grid = cli_str(&a, "grid", NULL), *rep = cli_str(&a, "report", NULL);
    if (!path || !cpath)
        return cli_usage_error("eval", "--model FILE and --classifier FILE are required");
    lethe_gen_eval_config ec;
    if ((r = gen_eval_opts(&a, "eval", &ec)) != 0) return r;
    uint64_t mask = 0;
    const char *fspec = cli_str(&a, "forget", NULL);
    if (fspec) {
        lethe_forget_spec spec;
        if ((r = cli_forget_parse("eval", "--forget", fspec, &spec))) return r;
        if (spec.kind != LETHE_FORGET_CLASS)
            return cli_usage_error("eval", "--forget: generation forgets classes (class:C), not "
                                   "'%s'", fspec);
        mask = spec.class_mask;
    }
    if ((grid && (r = cli_check_named_output(&a, "grid", grid))) ||
        (rep && (r = cli_check_named_output(&a, "report", rep))))
        return r;
    int rc = 1;
    lethe_model *m = NULL, *clf = NULL;
    lethe_metadata md, cmd_;
    lethe_ddpm s = {0};
    lethe_dataset train = {0}, test = {0};
    float *images = NULL;
    lethe_status st = gen_open(path, &m, &md, &s);
    if (st != LETHE_OK) return cli_lib_error("eval", st);
    if ((st = cli_open_model(cpath, &clf, &cmd_)) != LETHE_OK) goto fail;
    const char *dname = lethe_meta_get(&md, "dataset");
    if ((st = cli_load_data(dname ? dname : "fmnist", cli_str(&a, "data-dir", NULL), &train,
                            &test)) != LETHE_OK)
        goto fail;
    int c, h, w;
    lethe_model_input_shape(m, &c, &h, &w);
    /* The grid shows the first images of each class: kept only for it, and
     * only with one count for every class. */
    if (grid && ec.per_forget && ec.per_forget != ec.per_class) {
        rc = cli_usage_error("eval", "--grid needs as many images of every class: drop "
                             "--n-forget");
        goto done;
    }
    if (grid)
        images = malloc((size_t)lethe_model_nclass(m) * ec.per_class * c * h * w * sizeof(float));
    if (grid && !images) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for the samples");
        goto fail;
    }
    fprintf(stderr, "generating %d images of each of %d classes (%s, %d steps, guidance %g)...\n",
            ec.per_class, lethe_model_nclass(m),
            ec.sample.kind == LETHE_SAMPLER_DDIM ? "DDIM" : "ancestral", ec.sample.steps,
            (double)ec.sample.guidance);
    double t0 = core_now();
    lethe_gen_metrics g;
    ec.floor_set = &train;
    if ((st = lethe_gen_evaluate(m, &s, clf, &test, mask, &ec, &g, images)) != LETHE_OK) goto fail;
    fprintf(stderr, "done in %.1f s; FD-cls against %d real test images of the retained classes\n",
            core_now() - t0, g.n_real);
    gen_print_table(NULL, NULL, path, &g);
    if (grid) {
        if ((st = gen_write_grid(grid, images, g.nclass, ec.per_class, 10, h, w)) != LETHE_OK)
            goto fail;
        fprintf(stderr, "wrote %s\n", grid);
    }
    if (rep) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", path);
        cJSON_AddStringToObject(root, "classifier", cpath);
        if (fspec) cJSON_AddStringToObject(root, "forget", fspec);
        cJSON_AddItemToObject(root, "metrics", gen_metrics_json(&g, &ec));
        st = report_write(rep, root);
        cJSON_Delete(root);
        if (st != LETHE_OK) goto fail;
    }
    rc = 0;
    goto done;
fail:
    rc = cli_lib_error("eval", st);
done:
    free(images);
    lethe_model_free(m);
    lethe_model_free(clf);
    lethe_ddpm_free(&s);
    lethe_dataset_free(&train);
    lethe_dataset_free(&test);
    return rc;
}
