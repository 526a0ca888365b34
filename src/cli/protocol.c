/* Scenarios, the model cache, tuned settings, and method runs. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/dist.h"
#include "io/json.h"
#include "core/fail.h"

#include "cli/protocol.h"
#include "cli/signals.h"
#include "cli/report.h"
#include "io/paths.h"

/* cifar10-cw forgets class 0 (airplane): PROTOCOL.md says why.
 * fmnist-vit-cw: fmnist-cw's class 0 from a vit-tiny, trained with AdamW,
 * no augmentation (PROTOCOL.md has the two recipes tried). */
/* sms-rnd: a random 10% of the messages (users asking for theirs to be
 * deleted); sms-idx: an index list, the 100 training messages 0, 45, …,
 * 4455 (written to the cache as an index file, since indices:FILE reads
 * one). Both with text-transformer's SMS Spam recipe (docs/RESULTS.md). */
static const proto_scenario scenarios[] = {
    {"fmnist-cw", "class:0", "cnn", "fmnist", 8, 0.05f, 0, 0, 0, 0},
    {"fmnist-rnd", "random:0.1", "cnn", "fmnist", 8, 0.05f, 0, 0, 0, 0},
    {"cifar10-cw", "class:0", "resnet20", "cifar10", PROTO_CIFAR_EPOCHS, 0.1f, 1, 0, 0, 0},
    {"cifar10-rnd", "random:0.1", "resnet20", "cifar10", PROTO_CIFAR_EPOCHS, 0.1f, 1, 0, 0, 0},
    {"fmnist-vit-cw", "class:0", "vit-tiny", "fmnist", PROTO_VIT_EPOCHS, 0.002f, 0, 1, 0.05f,
     128},
    {"sms-rnd", "random:0.1", "text-transformer", "sms-spam", PROTO_SMS_EPOCHS, 0.002f, 0, 1,
     0.01f, 32},
    {"sms-idx", "every:45:100", "text-transformer", "sms-spam", PROTO_SMS_EPOCHS, 0.002f, 0, 1,
     0.01f, 32},
};

int proto_scenario_names(const char **out, int cap, int with_gen)
{
    int n = 0;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0] && n < cap; i++)
        out[n++] = scenarios[i].name;
    if (with_gen && n < cap) out[n++] = "fmnist-ddpm-cw";
    return n;
}

const proto_scenario *proto_find(const char *name)
{
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        if (strcmp(scenarios[i].name, name) == 0) return &scenarios[i];
    return NULL;
}

/* A file name from a forget spec: class:0,3 → class0-3, random:0.1 → random0.1. */
static void spec_slug(const char *spec, char *out, size_t n)
{
    size_t k = 0;
    for (const char *s = spec; *s && k + 1 < n; s++) {
        char ch = *s;
        if (ch == ',') out[k++] = '-';
        else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.') out[k++] = ch;
    }
    out[k] = 0;
}

/* FNV-1a over n bytes, on from h. */
static uint64_t fnv_bytes(uint64_t h, const void *data, size_t n)
{
    const uint8_t *b = data;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t fingerprint(const lethe_dataset *d, uint64_t h)
{
    int32_t dims[5] = {d->n, d->c, d->h, d->w, d->nclass};
    h = fnv_bytes(h, dims, sizeof dims);
    if (d->tokens) h = fnv_bytes(h, d->tokens, (size_t)d->n * d->w * sizeof(int32_t));
    else h = fnv_bytes(h, d->pixels, (size_t)d->n * d->c * d->h * d->w);
    return fnv_bytes(h, d->labels, (size_t)d->n);
}

void proto_cache_path(proto_ctx *p, const char *stem, const char *tail, char *out, size_t n)
{
    if (!p->data_fp[0])
        snprintf(p->data_fp, sizeof p->data_fp, "%016llx",
                 (unsigned long long)fingerprint(&p->sp.test,
                                                 fingerprint(&p->sp.train, 0xcbf29ce484222325ULL)));
    snprintf(out, n, "%s/%s-data-%.12s%s.safetensors", p->cache, stem, p->data_fp, tail);
    if (access(out, F_OK) == 0) return;
    /* Made before fingerprints: only the default folder's data made them
     * unless --data-dir was given, which cannot be told apart afterwards. */
    char legacy[1024], real[PATH_MAX];
    int default_data = !p->data_dir || (realpath(p->data_dir, real) &&
                                        strcmp(real, LETHE_FMNIST_DIR) == 0);
    snprintf(legacy, sizeof legacy, "%s/%s%s.safetensors", p->cache, stem, tail);
    lethe_metadata md = {0};
    if (default_data && strcmp(p->sp.train.name, "fmnist") == 0 && access(legacy, R_OK) == 0 &&
        lethe_checkpoint_read_meta(legacy, &md) == LETHE_OK &&
        !lethe_meta_get(&md, "data_fingerprint"))
        snprintf(out, n, "%s", legacy);
}

/* Train a model for the cache at path, resumable (cli_cache_run_begin). */
static lethe_status train_resumable(proto_ctx *p, lethe_model *m, const lethe_subset *sub,
                                    const lethe_train_config *cfg, const char *path,
                                    const char *what, cli_progress *prog)
{
    cli_run r;
    lethe_status st = cli_cache_run_begin(&r, path, what, p->quiet);
    if (st != LETHE_OK) return st;
    if (!p->quiet)
        fprintf(stderr, "training %s %s on %zu images (%d epochs), cached as %s\n", what,
                p->sc->arch, sub->n, cfg->epochs, path);
    st = lethe_train_run(m, &p->sp.train, sub, cfg, &r.ctl, p->quiet ? NULL : cli_progress_cb,
                         prog);
    if (!p->quiet) cli_progress_done(prog);
    return cli_cache_run_end(&r, st, what);
}

static lethe_status ensure_model(proto_ctx *p, const char *path, const lethe_subset *sub,
                                 const char *without, lethe_model **out, double *secs)
{
    lethe_metadata md = {0};
    *secs = 0;
    /* Under mpirun: loaded only if every rank has it, else trained by all. */
    if (core_dist_all(access(path, R_OK) == 0)) {
        if (!p->quiet) fprintf(stderr, "reusing %s\n", path);
        lethe_status st = lethe_checkpoint_open(out, path, &md);
        const char *fp = lethe_meta_get(&md, "data_fingerprint");
        if (st == LETHE_OK && fp && strcmp(fp, p->data_fp) != 0) {
            lethe_model_free(*out);
            *out = NULL;
            return lethe_fail(LETHE_ERR_MISMATCH, "%s: trained on other data (fingerprint %s, "
                              "these data %s): remove it to train again", path, fp, p->data_fp);
        }
        return st;
    }
    lethe_dataset *tr = &p->sp.train;
    lethe_status st = lethe_model_create(out, p->sc->arch, tr->c, tr->h, tr->w, tr->nclass);
    if (st != LETHE_OK) return st;
    lethe_train_config cfg;
    lethe_train_config_default(&cfg);
    cfg.epochs = p->epochs;
    cfg.seed = p->seed;
    cfg.lr = p->sc->lr;
    cfg.augment = p->sc->augment;
    if (p->sc->adamw) {
        cfg.optimizer = LETHE_OPT_ADAMW;
        cfg.weight_decay = p->sc->wd;
        cfg.batch = p->sc->batch;
    }
    cli_progress prog;
    cli_progress_init(&prog, without ? "retrain" : "original");
    double t0 = core_now();
    st = train_resumable(p, *out, sub, &cfg, path, without ? "Retrain" : "the original", &prog);
    *secs = core_now() - t0;
    if (st != LETHE_OK) return st;
    char shape[64], ncls[16], recipe[128], seed[32];
    snprintf(shape, sizeof shape, "%d,%d,%d", tr->c, tr->h, tr->w);
    snprintf(ncls, sizeof ncls, "%d", tr->nclass);
    char aug[32] = "";
    if (p->sc->augment) snprintf(aug, sizeof aug, " augment=%s", cli_augment_name(p->sc->augment));
    if (p->sc->adamw)
        snprintf(recipe, sizeof recipe, "adamw lr=%g schedule=cosine wd=%g epochs=%d batch=%d%s",
                 (double)p->sc->lr, (double)p->sc->wd, p->epochs, p->sc->batch, aug);
    else
        snprintf(recipe, sizeof recipe, "sgd lr=%g schedule=cosine momentum=0.9 wd=0.0005 "
                 "epochs=%d batch=128%s", (double)p->sc->lr, p->epochs, aug);
    snprintf(seed, sizeof seed, "%lu", (unsigned long)p->seed);
    if ((st = lethe_meta_set(&md, "format", "lethe")) != LETHE_OK ||
        (st = lethe_meta_set(&md, "version", LETHE_VERSION)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "arch", p->sc->arch)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "in_shape", shape)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "nclass", ncls)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "dataset", tr->name)) != LETHE_OK ||
        (st = cli_meta_put_norm(&md, tr)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "recipe", recipe)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "seed", seed)) != LETHE_OK ||
        (without && (st = lethe_meta_set(&md, "trained_without", without)) != LETHE_OK) ||
        (st = lethe_meta_set(&md, "data_fingerprint", p->data_fp)) != LETHE_OK)
        return st;
    if ((st = lethe_checkpoint_save(*out, &md, path)) == LETHE_OK) cli_cache_run_done(path);
    return st;
}

lethe_status proto_ensure_original(proto_ctx *p)
{
    lethe_subset all;
    lethe_status st = lethe_subset_all(&all, (size_t)p->sp.train.n);
    if (st != LETHE_OK) return st;
    char path[1024], stem[128], tail[64];
    double secs;
    snprintf(stem, sizeof stem, "orig-%s-%s", p->sc->arch, p->sc->data);
    snprintf(tail, sizeof tail, "-e%d-s%lu", p->epochs, (unsigned long)p->seed);
    proto_cache_path(p, stem, tail, path, sizeof path);
    st = ensure_model(p, path, &all, NULL, &p->orig, &secs);
    lethe_subset_free(&all);
    return st;
}

/* The index file of an "every:K:N" forget set in the cache (written once,
 * atomically): "indices:PATH" into p->every_spec. */
static lethe_status every_file(proto_ctx *p, const char **spec)
{
    int k, n;
    char tail;
    if (sscanf(p->sc->forget + 6, "%d:%d%c", &k, &n, &tail) != 2 || k < 1 || n < 1 ||
        (long)k * n > INT_MAX)
        return lethe_fail(LETHE_ERR_ARG, "scenario %s: bad forget rule '%s'", p->sc->name,
                          p->sc->forget);
    char name[128], path[1050];
    snprintf(name, sizeof name, PROTO_EVERY_FILE, p->sc->name);
    int len = snprintf(path, sizeof path, "%s/%s", p->cache, name);
    if (len < 0 || (size_t)len >= sizeof path)
        return lethe_fail(LETHE_ERR_ARG, "%s: cache path too long", p->cache);
    snprintf(p->every_spec, sizeof p->every_spec, "indices:%s", path);
    *spec = p->every_spec;
    if (access(path, R_OK) == 0) return LETHE_OK;
    size_t cap = 128 + (size_t)n * 12, used = 0;
    char *text = malloc(cap);
    if (!text) return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %d indices", n);
    used += (size_t)snprintf(text, cap, "# scenario %s: the training indices 0, %d, %d, ... "
                             "(%d of them)\n", p->sc->name, k, 2 * k, n);
    for (int i = 0; i < n; i++) used += (size_t)snprintf(text + used, cap - used, "%d\n", i * k);
    lethe_status st = lethe_write_file_atomic(path, text, used);
    free(text);
    return st;
}

lethe_status proto_open(proto_ctx *p, const proto_scenario *sc, const char *cache,
                        const char *data_dir, int epochs, uint64_t seed, int quiet)
{
    return proto_open_draw(p, sc, cache, data_dir, epochs, seed, seed, "auto", quiet);
}

lethe_status proto_open_draw(proto_ctx *p, const proto_scenario *sc, const char *cache,
                             const char *data_dir, int epochs, uint64_t seed,
                             uint64_t forget_seed, const char *match_unseen, int quiet)
{
    memset(p, 0, sizeof *p);
    p->sc = sc;
    p->cache = cache;
    p->data_dir = data_dir;
    p->epochs = epochs;
    p->seed = seed;
    p->quiet = quiet;
    if (io_mkdir_p(cache) != 0)
        return lethe_fail(LETHE_ERR_IO, "%s: cannot create the cache folder: %s", cache,
                          strerror(errno));
    const char *forget = sc->forget;
    lethe_status st;
    if (strncmp(forget, "every:", 6) == 0) {
        if ((st = every_file(p, &forget)) != LETHE_OK) return st;
    }
    st = cli_split_load(&p->sp, sc->data, data_dir, forget, forget_seed);
    if (st != LETHE_OK || (st = cli_split_match(&p->sp, match_unseen, 0)) != LETHE_OK) return st;
    if ((st = proto_ensure_original(p)) != LETHE_OK) return st;
    char path[1024], slug[256], draw[32] = "", stem[400], tail[64];
    spec_slug(p->sp.spec_text, slug, sizeof slug);
    /* Another draw of a random forget set has its own Retrain; the
     * scenario's own draw (forget seed = seed) keeps its old name. */
    if (forget_seed != seed && p->sp.spec.kind != LETHE_FORGET_CLASS)
        snprintf(draw, sizeof draw, "-f%lu", (unsigned long)forget_seed);
    snprintf(stem, sizeof stem, "retrain-%s-%s-%s", sc->arch, sc->data, slug);
    snprintf(tail, sizeof tail, "%s-e%d-s%lu", draw, epochs, (unsigned long)seed);
    proto_cache_path(p, stem, tail, path, sizeof path);
    if ((st = ensure_model(p, path, &p->sp.retain, p->sp.spec_text, &p->retrain,
                           &p->retrain_seconds)) != LETHE_OK)
        return st;
    if ((st = cli_split_metrics(&p->sp, p->orig, seed, &p->m_orig)) != LETHE_OK) return st;
    return cli_split_metrics(&p->sp, p->retrain, seed, &p->m_retrain);
}

lethe_status proto_open_custom(proto_ctx *p, const char *model_path, const char *arch,
                               const char *reference_path,
                               const char *forget, uint64_t forget_seed, const char *data,
                               const char *data_dir, uint64_t seed, int quiet)
{
    memset(p, 0, sizeof *p);
    p->data_dir = data_dir;
    p->seed = seed;
    p->quiet = quiet;
    lethe_metadata md = {0};
    lethe_status st = cli_open_model_as(model_path, arch, data, data_dir, &p->orig, &md);
    if (st != LETHE_OK) return st;
    const char *dname = data ? data : lethe_meta_get(&md, "dataset");
    p->own.name = "custom";
    p->own.forget = forget;
    p->own.arch = lethe_model_arch(p->orig);    /* a static name */
    snprintf(p->own_data, sizeof p->own_data, "%s", dname ? dname : "fmnist");
    p->own.data = p->own_data;
    p->sc = &p->own;
    if ((st = cli_split_load_for(&p->sp, p->orig, p->own.data, data_dir, forget, forget_seed)) !=
        LETHE_OK)
        return st;
    const lethe_dataset *tr = &p->sp.train;
    const char *shape = lethe_meta_get(&md, "in_shape");
    char want[64];
    snprintf(want, sizeof want, "%d,%d,%d", tr->c, tr->h, tr->w);
    if (shape && strcmp(shape, want) != 0)
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: model expects inputs %s, data set %s has %s",
                          model_path, shape, tr->name, want);
    if (lethe_model_nclass(p->orig) != tr->nclass)
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: model has %d classes, data set %s has %d",
                          model_path, lethe_model_nclass(p->orig), tr->name, tr->nclass);
    char why[256];
    if (cli_norm_differs(&md, tr, why, sizeof why))
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: %s (data set %s)", model_path, why, tr->name);
    if (reference_path) {
        lethe_metadata rmd = {0};
        if ((st = cli_open_model_as(reference_path, arch, dname, data_dir, &p->retrain, &rmd)) !=
            LETHE_OK)
            return st;
        if (strcmp(lethe_model_arch(p->retrain), p->own.arch) != 0)
            return lethe_fail(LETHE_ERR_MISMATCH, "%s: reference is a %s, the model a %s",
                              reference_path, lethe_model_arch(p->retrain), p->own.arch);
    }
    if ((st = cli_split_metrics(&p->sp, p->orig, seed, &p->m_orig)) != LETHE_OK) return st;
    if (p->retrain) return cli_split_metrics(&p->sp, p->retrain, seed, &p->m_retrain);
    return LETHE_OK;
}

void proto_close(proto_ctx *p)
{
    lethe_model_free(p->orig);
    lethe_model_free(p->retrain);
    cli_split_free(&p->sp);
}

lethe_status proto_tuned(const char *path, const char *scenario, const char *method,
                         lethe_unlearn_config *cfg)
{
    /* The method's own defaults first (scrub's lr), then the file's settings. */
    if (cfg->method && lethe_method_summary(cfg->method))
        lethe_unlearn_set(cfg, "method", cfg->method);
    return lethe_settings_read(path, scenario, method, cfg);
}

lethe_status proto_run_method(proto_ctx *p, const lethe_unlearn_config *cfg, proto_run *out)
{
    memset(out, 0, sizeof *out);
    lethe_model *m = NULL;
    lethe_dataset *tr = &p->sp.train;
    lethe_status st = lethe_model_create(&m, p->sc->arch, tr->c, tr->h, tr->w, tr->nclass);
    if (st != LETHE_OK) return st;
    if ((st = lethe_model_copy(m, p->orig)) != LETHE_OK) goto done;
    lethe_unlearn_config c = *cfg;
    cli_split_unseen(&p->sp, &c);
    out->cfg = c;
    cli_progress prog;
    cli_progress_init(&prog, cfg->method);
    st = lethe_unlearn(m, tr, &p->sp.forget, &p->sp.retain, &c, &out->res,
                       p->quiet ? NULL : cli_progress_cb, &prog);
    if (!p->quiet) cli_progress_done(&prog);
    if (st != LETHE_OK) goto done;
    if ((st = cli_split_metrics(&p->sp, m, p->seed, &out->m)) != LETHE_OK) goto done;
    out->gap = p->retrain ? lethe_avg_gap(&out->m, &p->m_retrain) : NAN;
done:
    lethe_model_free(m);
    return st;
}

#define PROTO_COLS(first)                                                                  \
    {TABLE_COL(first, NULL), TABLE_COL("UA", "%.2f"), TABLE_COL("RA", "%.2f"),                 \
     TABLE_COL("TA", "%.2f"), TABLE_COL("MIA-Eff.", "%.2f"), TABLE_COL("Avg. Gap", "%.2f"),    \
     TABLE_COL("RTE (s)", "%.1f"), TABLE_COL("fwd/bwd passes", "%.0f/%.0f")}
static const table_col by_method[] = PROTO_COLS("method"), by_model[] = PROTO_COLS("model");

void proto_table_begin(table *t, const char *first)
{
    table_begin(t, stdout, TABLE_MARKDOWN, strcmp(first, "model") ? by_method : by_model, 8);
}

void proto_table_row(table *t, const char *name, const lethe_metrics *m, double gap,
                     double secs, const lethe_unlearn_result *r)
{
    table_text(t, "%s", name);
    table_nums(t, (const double[]){m->ua, m->ra, m->ta, m->mia, gap}, 5);
    proto_table_cost(t, secs, r);
    table_end_row(t);
}

void proto_table_cost(table *t, double secs, const lethe_unlearn_result *r)
{
    double fwd = r ? (double)r->fwd_samples / r->batch : 0;
    double bwd = r ? (double)r->bwd_samples / r->batch : 0;
    table_nums(t, (const double[]){secs >= 0 ? secs : NAN, fwd > 0 || bwd > 0 ? fwd : NAN, bwd}, 3);
}

lethe_status proto_parse_grid(const char *text, const lethe_unlearn_config *base, proto_grid *g)
{
    memset(g, 0, sizeof *g);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", text);
    char *s1, *s2;
    for (char *part = strtok_r(buf, ";", &s1); part; part = strtok_r(NULL, ";", &s1)) {
        char *eq = strchr(part, '=');
        if (!eq || g->np >= PROTO_GRID_PARAMS)
            return lethe_fail(LETHE_ERR_ARG, "--grid: expected 'name=v1,v2;name=…', got '%s'", part);
        *eq = 0;
        snprintf(g->name[g->np], sizeof g->name[0], "%s", part);
        for (char *v = strtok_r(eq + 1, ",", &s2); v; v = strtok_r(NULL, ",", &s2)) {
            char *end;
            double x = strtod(v, &end);
            if (end == v || *end || !isfinite(x) || g->nv[g->np] >= PROTO_GRID_VALUES)
                return lethe_fail(LETHE_ERR_ARG, "--grid: bad value '%s' for %s", v, part);
            /* Every value must be one the method takes. */
            lethe_unlearn_config probe = *base;
            lethe_status st = lethe_unlearn_set_number(&probe, part, x);
            if (st != LETHE_OK) {
                char why[512];
                snprintf(why, sizeof why, "%s", lethe_last_error());
                return lethe_fail(st, "--grid: %s", why);
            }
            g->v[g->np][g->nv[g->np]++] = x;
        }
        if (!g->nv[g->np]) return lethe_fail(LETHE_ERR_ARG, "--grid: no values for %s", part);
        g->np++;
    }
    return g->np ? LETHE_OK : lethe_fail(LETHE_ERR_ARG, "--grid: empty");
}

lethe_status proto_write_best(const char *path, const char *scn, const char *method,
                              const proto_grid *g, const int *best)
{
    cJSON *root;
    lethe_status st = io_json_read(path, 1L << 20, 1, &root);
    if (st != LETHE_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", lethe_last_error());
        return lethe_fail(st, "%s; not overwriting it", why);
    }
    if (!root) root = cJSON_CreateObject();
    cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, scn);
    if (!sc) sc = cJSON_AddObjectToObject(root, scn);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(sc, method);
    if (!m) m = cJSON_AddObjectToObject(sc, method);
    for (int k = 0; k < g->np; k++) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, g->name[k]);
        cJSON_AddNumberToObject(m, g->name[k], g->v[k][best[k]]);
    }
    st = report_write_plain(path, root);
    cJSON_Delete(root);
    return st;
}

int proto_check_method(const char *cmd, const char *opt, const char *name, const char *tuned,
                       const char *scn)
{
    int n;
    const char *const *names = lethe_methods(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return 0;
    if (scn && tuned) {
        /* A variant: its entry names a method, and proto_tuned applies it. */
        lethe_unlearn_config probe;
        lethe_unlearn_config_default(&probe);
        probe.method = NULL;
        lethe_ddpm s0 = {0};
        if (strcmp(scn, "fmnist-ddpm-cw") == 0) probe.ddpm = &s0;
        if (proto_tuned(tuned, scn, name, &probe) == LETHE_OK && probe.method &&
            strcmp(probe.method, name) != 0)
            return 0;
    }
    return cli_check_method(cmd, opt, name);
}
