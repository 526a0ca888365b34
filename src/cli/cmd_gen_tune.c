/* lethe tune --scenario fmnist-ddpm-cw: a grid search of one method on the
 * diffusion scenario, at the bench's budget (steps × batch), each setting
 * measured with shorter sampling than the bench's (tuning is about ranking,
 * the bench about the figures).
 *
 * The score, in order:
 *   1. settings that forget, UA_gen ≥ 95% on the tuning sample, come first,
 *      ranked by FD-cls (smaller: the retained classes closer to the real
 *      images), ties by accuracy on the retained classes;
 *   2. if none forgets, the largest UA_gen wins (the method cannot reach
 *      the target at this budget: the table says so).
 * With --write the winner becomes the method's entry of the scenario in the
 * tuned file, which `lethe unlearn --task diffusion` and the bench read as
 * their defaults. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gen.h"
#include "cli/protocol.h"
#include "cli/report.h"

static const cli_opt opts[] = {
    {"scenario", "NAME", "fmnist-ddpm-cw", 0},
    {"method", "NAME", "method (or tuned variant, e.g. eupmu-log) to tune", 0},
    {"grid", "SPEC", "e.g. 'lr=0.0001,0.0003;eps=0,0.001' (default: the method's grid)", 0},
    {"tuned", "FILE", "settings file (default configs/tuned.json)", 0},
    {"write", NULL, "store the best setting in the settings file", 1},
    {"cache", "DIR", "cached models (default: runs/cache of the tree the program was built in, "
                     "else ~/.cache/lethe/cache)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    {"ddpm-epochs", "N", "epochs of the DDPM recipe (default 12)", 0},
    {"steps", "N", "unlearning steps (default: the scenario's budget)", 0},
    {"batch", "N", "images per set and step (default: the scenario's budget)", 0},
    {"n", "N", "generated images per retained class (default 50)", 0},
    {"n-forget", "N", "generated images of the forgotten class (default 200)", 0},
    {"steps-sample", "N", "DDIM steps while tuning (default 10)", 0},
    {"guidance", "W", "classifier-free guidance (default 2)", 0},
    {"seed", "N", "seed (default 0)", 0},
    {"quiet", NULL, "no progress on stderr", 1},
    {NULL, NULL, NULL, 0},
};


/* Is a better than b by the score above? */
static int better(const lethe_gen_metrics *a, const lethe_gen_metrics *b)
{
    int fa = a->ua_gen >= 95.0, fb = b->ua_gen >= 95.0;
    if (fa != fb) return fa;
    if (!fa) return a->ua_gen > b->ua_gen;
    if (a->fd_cls != b->fd_cls) return a->fd_cls < b->fd_cls;
    return a->acc_retained > b->acc_retained;
}

int cmd_tune_diffusion(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "tune", "--scenario fmnist-ddpm-cw --method NAME [options]", opts,
                      argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *scn = "fmnist-ddpm-cw", *method = cli_str(&a, "method", NULL);
    if (!method) return cli_usage_error("tune", "--method NAME is required");
    char tbuf[4096];
    const char *tuned = cli_str(&a, "tuned", NULL);
    /* --write may create a named file. */
    if (!(tuned && cli_flag(&a, "write")) &&
        !(tuned = cli_settings_path("tune", tuned, tbuf, sizeof tbuf)))
        return 2;
    lethe_ddpm probe_s = {0};
    lethe_unlearn_config base, bud;
    lethe_unlearn_config_default(&bud);
    bud.method = "ft";
    bud.ddpm = &probe_s;
    bud.steps = 0;      /* the protocol's 5·⌈|D_f|/B⌉ unless the scenario has a budget */
    bud.batch = 128;
    lethe_status st = proto_tuned(tuned, scn, "budget", &bud);
    if (st != LETHE_OK) return cli_lib_error("tune", st);
    long depochs, steps, batch, seed, n, nf, ssteps;
    double gw;
    if (cli_int(&a, "ddpm-epochs", 12, 1, 1000, &depochs) ||
        cli_int(&a, "steps", bud.steps, 0, 10000000, &steps) ||
        cli_int(&a, "batch", bud.batch, 1, 1024, &batch) ||
        cli_int(&a, "seed", 0, 0, LONG_MAX, &seed) || cli_int(&a, "n", 50, 2, 100000, &n) ||
        cli_int(&a, "n-forget", 200, 2, 100000, &nf) ||
        cli_int(&a, "steps-sample", 10, 1, 1000, &ssteps) ||
        cli_float(&a, "guidance", 2.0, 0, 100, &gw))
        return 2;
    if ((r = proto_check_method("tune", "--method", method, tuned, scn))) return r;
    lethe_unlearn_config_default(&base);
    base.method = method;
    base.ddpm = &probe_s;
    base.seed = (uint64_t)seed;
    if ((st = proto_tuned(tuned, scn, method, &base)) != LETHE_OK)
        return cli_lib_error("tune", st);
    if ((st = lethe_unlearn_validate(&base)) != LETHE_OK) return cli_lib_error("tune", st) + 1;
    const char *gtext = cli_str(&a, "grid", NULL);
    if (!gtext) gtext = lethe_method_grid(base.method, 1);   /* the method's own */
    if (!gtext) return cli_usage_error("tune", "no default grid for '%s': give --grid", method);
    proto_grid g;
    if ((st = proto_parse_grid(gtext, &base, &g)) != LETHE_OK) return cli_lib_error("tune", st) + 1;
    int quiet = cli_flag(&a, "quiet");

    cli_settings_note("tune", tuned, quiet);
    lethe_gen_eval_config ec;
    lethe_gen_eval_config_default(&ec);
    ec.per_class = (int)n;
    ec.per_forget = (int)nf;
    ec.sample.steps = (int)ssteps;
    ec.sample.guidance = (float)gw;
    ec.seed = (uint64_t)seed;

    proto_ctx p;
    memset(&p, 0, sizeof p);
    p.sc = proto_find("fmnist-cw");
    char cdef[4096];
    p.cache = cli_str(&a, "cache", cli_runs_path("cache", cdef, sizeof cdef));
    p.data_dir = cli_str(&a, "data-dir", NULL);
    p.epochs = 8;
    p.seed = (uint64_t)seed;
    p.quiet = quiet;
    lethe_model *ddpm = NULL, *work = NULL;
    lethe_ddpm s = {0};
    lethe_subset all = {0};
    int rc = 1;
    char path[1024], tail[64];
    if ((st = cli_split_load(&p.sp, "fmnist", cli_str(&a, "data-dir", NULL), "class:0",
                             (uint64_t)seed)) != LETHE_OK)
        goto fail;
    snprintf(tail, sizeof tail, "-e%ld-s%lu", depochs, (unsigned long)seed);
    proto_cache_path(&p, "ddpm-unet-fmnist", tail, path, sizeof path);
    if ((st = proto_ensure_original(&p)) != LETHE_OK ||
        (st = lethe_subset_all(&all, (size_t)p.sp.train.n)) != LETHE_OK ||
        (st = gen_ensure_ddpm(path, &p.sp.train, &all, NULL, (int)depochs, (uint64_t)seed,
                              quiet, &ddpm, &s)) != LETHE_OK)
        goto fail;
    lethe_dataset *tr = &p.sp.train;
    if ((st = lethe_model_create(&work, "unet", tr->c, tr->h, tr->w, tr->nclass)) != LETHE_OK)
        goto fail;
    int total = 1;
    for (int k = 0; k < g.np; k++) total *= g.nv[k];
    if (!steps) steps = 5 * (long)((p.sp.forget.n + (size_t)batch - 1) / (size_t)batch);
    printf("\ntuning %s on %s: %d settings of %ld steps × %ld images; DDIM %d steps, guidance "
           "%g, %d images of class 0 and %d of each other class. Score: UA_gen ≥ 95 first, "
           "then the smallest FD-cls.\n\n", method, scn, total, steps, batch, ec.sample.steps,
           (double)ec.sample.guidance, ec.per_forget, ec.per_class);
    static const table_col figs[] = {TABLE_COL("UA_gen", "%.2f"),
                                     TABLE_COL("acc on retained", "%.2f"),
                                     TABLE_COL("FD-cls", "%.2f"), TABLE_COL("RTE (s)", "%.1f")};
    table_col cols[PROTO_GRID_PARAMS + 4];
    for (int k = 0; k < g.np + 4; k++)
        cols[k] = k < g.np ? (table_col)TABLE_COL(g.name[k], "%g") : figs[k - g.np];
    table t;
    table_begin(&t, stdout, TABLE_MARKDOWN, cols, g.np + 4);
    int best[PROTO_GRID_PARAMS] = {0}, cur[PROTO_GRID_PARAMS] = {0}, have = 0;
    lethe_gen_metrics gbest;
    memset(&gbest, 0, sizeof gbest);
    for (int i = 0; i < total; i++) {
        int rem = i;
        lethe_unlearn_config cfg = base;
        cfg.ddpm = &s;
        cfg.steps = steps;
        cfg.batch = (int)batch;
        for (int k = g.np - 1; k >= 0; k--) {
            cur[k] = rem % g.nv[k];
            rem /= g.nv[k];
            lethe_unlearn_set_number(&cfg, g.name[k], g.v[k][cur[k]]);  /* checked */
        }
        for (int k = 0; k < g.np; k++) table_num(&t, g.v[k][cur[k]]);
        fflush(stdout);     /* the setting being tried, while it runs */
        lethe_unlearn_result res;
        memset(&res, 0, sizeof res);
        cli_progress prog;
        cli_progress_init(&prog, method);
        if ((st = lethe_unlearn_validate(&cfg)) != LETHE_OK ||
            (st = lethe_model_copy(work, ddpm)) != LETHE_OK ||
            (st = lethe_unlearn(work, tr, &p.sp.forget, &p.sp.retain, &cfg, &res,
                                quiet ? NULL : cli_progress_cb, &prog)) != LETHE_OK) {
            if (!quiet) cli_progress_done(&prog);
            table_text(&t, "failed: %s", lethe_last_error());
            table_end_row(&t);
            continue;
        }
        if (!quiet) cli_progress_done(&prog);
        lethe_gen_metrics gm;
        st = lethe_gen_evaluate(work, &s, p.orig, &p.sp.test, p.sp.spec.class_mask, &ec, &gm,
                                NULL);
        double secs = res.seconds;
        lethe_unlearn_result_free(&res);
        if (st != LETHE_OK) goto fail;
        table_nums(&t, (const double[]){gm.ua_gen, gm.acc_retained, gm.fd_cls, secs}, 4);
        table_end_row(&t);
        if (!have || better(&gm, &gbest)) {
            gbest = gm;
            memcpy(best, cur, sizeof best);
            have = 1;
        }
    }
    if (!have) {
        rc = cli_error("tune", "every setting failed");
        goto done;
    }
    printf("\nbest:");
    for (int k = 0; k < g.np; k++) printf(" %s=%g", g.name[k], g.v[k][best[k]]);
    printf(" (UA_gen %.2f, acc on retained %.2f, FD-cls %.2f)%s\n", gbest.ua_gen,
           gbest.acc_retained, gbest.fd_cls,
           gbest.ua_gen >= 95.0 ? "" : "; no setting reached UA_gen 95 at this budget");
    if (cli_flag(&a, "write")) {
        if ((st = proto_write_best(tuned, scn, method, &g, best)) != LETHE_OK) goto fail;
        if (!quiet) fprintf(stderr, "stored in %s\n", tuned);
    }
    rc = 0;
    goto done;
fail:
    rc = cli_lib_error("tune", st);
done:
    lethe_subset_free(&all);
    lethe_model_free(ddpm);
    lethe_model_free(work);
    lethe_ddpm_free(&s);
    lethe_model_free(p.orig);
    cli_split_free(&p.sp);
    return rc;
}
