/* Loading a forget/retain split of a data set and evaluating a model on it;
 * the training set of `lethe train`; saving an unlearned model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/fail.h"

/* The unseen reference: CLI_UNSEEN_N test images (a fifth of a smaller
 * test set) by a fixed seed, out of test_retain; both keep their order. */
static lethe_status carve_unseen(cli_split *s)
{
    lethe_subset *tr = &s->test_retain;
    size_t n = tr->n / 5 < CLI_UNSEEN_N ? tr->n / 5 : CLI_UNSEEN_N;
    if (n == 0) return LETHE_OK;
    int32_t *pos = malloc(tr->n * sizeof(int32_t));     /* (N) */
    uint8_t *held = calloc(tr->n, 1);                   /* (N) 1 = unseen */
    s->unseen.idx = malloc(n * sizeof(int32_t));
    if (!pos || !held || !s->unseen.idx) {
        free(pos);
        free(held);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for the unseen reference");
    }
    s->test_full.idx = malloc(tr->n * sizeof(int32_t));
    if (!s->test_full.idx) {
        free(pos);
        free(held);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for the unseen reference");
    }
    memcpy(s->test_full.idx, tr->idx, tr->n * sizeof(int32_t));
    s->test_full.n = tr->n;
    for (size_t i = 0; i < tr->n; i++) pos[i] = (int32_t)i;
    lethe_rng r;
    lethe_rng_seed(&r, CLI_UNSEEN_SEED);
    lethe_rng_shuffle(&r, pos, tr->n);
    for (size_t i = 0; i < n; i++) held[pos[i]] = 1;
    size_t k = 0;
    for (size_t i = 0; i < tr->n; i++) {
        if (held[i]) s->unseen.idx[s->unseen.n++] = tr->idx[i];
        else tr->idx[k++] = tr->idx[i];
    }
    tr->n = k;
    free(pos);
    free(held);
    return LETHE_OK;
}

lethe_status cli_split_load(cli_split *s, const char *data, const char *dir,
                            const char *spec, uint64_t seed)
{
    return cli_split_load_for(s, NULL, data, dir, spec, seed);
}

lethe_status cli_split_load_for(cli_split *s, const lethe_model *m, const char *data,
                                const char *dir, const char *spec, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    lethe_status st = lethe_forget_parse(&s->spec, spec);
    if (st != LETHE_OK) return st;
    if ((st = cli_load_data_for(m, data, dir, &s->train, &s->test)) != LETHE_OK) return st;
    if ((st = lethe_forget_split(&s->spec, &s->train, seed, &s->forget, &s->retain)) != LETHE_OK ||
        (st = lethe_forget_split_test(&s->spec, &s->test, &s->test_forget,
                                      &s->test_retain)) != LETHE_OK) {
        cli_split_free(s);
        return st;
    }
    if (s->spec.kind != LETHE_FORGET_CLASS && (st = carve_unseen(s)) != LETHE_OK) {
        cli_split_free(s);
        return st;
    }
    if ((st = lethe_forget_to_string(&s->spec, s->spec_text, sizeof s->spec_text)) != LETHE_OK)
        cli_split_free(s);
    return st;
}

lethe_status cli_split_match(cli_split *s, const char *mode, int diffusion)
{
    int on = strcmp(mode, "on") == 0, is_auto = strcmp(mode, "auto") == 0;
    if (!on && !is_auto && strcmp(mode, "off") != 0)
        return lethe_fail(LETHE_ERR_ARG, "--match-unseen %s: expected auto, on or off", mode);
    if (on && s->spec.kind == LETHE_FORGET_CLASS)
        return lethe_fail(LETHE_ERR_ARG, "--match-unseen on: the forget set is a class; "
                          "Retrain recognises none of a class it never saw, so unseen "
                          "data is not the target there (auto leaves class-wise runs alone)");
    if (on && diffusion)
        return lethe_fail(LETHE_ERR_ARG, "--match-unseen on: diffusion models have no "
                          "per-sample class loss to match");
    if (on && !s->unseen.n)
        return lethe_fail(LETHE_ERR_ARG, "--match-unseen on: the test set is too small to set "
                          "an unseen reference aside");
    if ((on || is_auto) && !diffusion) return LETHE_OK;
    /* Off: the reference goes back into the test split, which is then the
     * whole test set as before the gate existed (same order). */
    if (s->unseen.n) {
        lethe_subset_free(&s->test_retain);
        s->test_retain = s->test_full;
        s->test_full = (lethe_subset){0};
        lethe_subset_free(&s->unseen);
    }
    return LETHE_OK;
}

void cli_split_unseen(const cli_split *s, lethe_unlearn_config *cfg)
{
    int use = s->unseen.n > 0 && !cfg->ddpm;
    cfg->unseen = use ? &s->unseen : NULL;
    cfg->unseen_data = use ? &s->test : NULL;
}

void cli_split_free(cli_split *s)
{
    lethe_subset_free(&s->forget);
    lethe_subset_free(&s->retain);
    lethe_subset_free(&s->test_forget);
    lethe_subset_free(&s->test_retain);
    lethe_subset_free(&s->unseen);
    lethe_subset_free(&s->test_full);
    lethe_dataset_free(&s->train);
    lethe_dataset_free(&s->test);
}

lethe_status cli_split_metrics(cli_split *s, lethe_model *m, uint64_t seed, lethe_metrics *out)
{
    lethe_status st = lethe_model_reserve(m, 256);
    if (st != LETHE_OK) return st;
    return lethe_evaluate(m, &s->train, &s->test, &s->forget, &s->retain, &s->test_retain,
                          s->test_forget.n ? &s->test_forget : NULL, seed, out);
}

lethe_status cli_open_model(const char *path, lethe_model **m, lethe_metadata *md)
{
    return cli_open_model_as(path, NULL, NULL, NULL, m, md);
}

/* "C,H,W" into c, h, w: 1 on success. */
static int parse_shape(const char *s, int *c, int *h, int *w)
{
    char tail;
    return s && sscanf(s, "%d,%d,%d%c", c, h, w, &tail) == 3 && *c > 0 && *h > 0 && *w > 0;
}

lethe_status cli_open_model_as(const char *path, const char *arch, const char *data,
                               const char *dir, lethe_model **m, lethe_metadata *md)
{
    lethe_metadata meta = {0};
    struct stat sb;
    *m = NULL;
    /* A pipe is read once: only a regular file is peeked at first. */
    if (!arch && (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)))
        return lethe_checkpoint_open(m, path, md);
    lethe_status st = lethe_checkpoint_read_meta(path, &meta);
    if (st != LETHE_OK) return st;
    const char *have = lethe_meta_get(&meta, "arch");
    if (have && arch && strcmp(have, arch) != 0)
        return lethe_fail(LETHE_ERR_MISMATCH, "%s: its metadata says arch %s, --arch says %s",
                          path, have, arch);
    if (have) return lethe_checkpoint_open(m, path, md);
    if (!arch)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: no 'arch' in the metadata (a PyTorch "
                          "state_dict?): name its architecture with --arch mlp|cnn|resnet8|"
                          "resnet20|resnet18|vit-tiny",
                          path);
    /* A state_dict alone: the input shape and class count from the
     * metadata where it has them, else from the data set it is used on. */
    int c, h, w, nclass;
    const char *nc = lethe_meta_get(&meta, "nclass");
    int have_shape = parse_shape(lethe_meta_get(&meta, "in_shape"), &c, &h, &w);
    int have_nclass = nc && sscanf(nc, "%d", &nclass) == 1;
    if (!have_shape || !have_nclass) {
        lethe_dataset ds;
        const char *dname = data ? data : lethe_meta_get(&meta, "dataset");
        if ((st = lethe_dataset_load(&ds, dname ? dname : "fmnist", dir, 0)) != LETHE_OK)
            return st;
        if (!have_shape) c = ds.c, h = ds.h, w = ds.w;
        if (!have_nclass) nclass = ds.nclass;
        lethe_dataset_free(&ds);
    }
    if ((st = lethe_model_create(m, arch, c, h, w, nclass)) != LETHE_OK) return st;
    if ((st = lethe_checkpoint_load(*m, path, &meta)) != LETHE_OK) {
        char why[600];
        snprintf(why, sizeof why, "%s", lethe_last_error());
        lethe_model_free(*m);
        *m = NULL;
        return lethe_fail(st, "%s (loaded as --arch %s)", why, arch);
    }
    /* Outputs made from it (an unlearned model) say what it is. */
    char shape[64], ncls[16];
    snprintf(shape, sizeof shape, "%d,%d,%d", c, h, w);
    snprintf(ncls, sizeof ncls, "%d", nclass);
    if ((st = lethe_meta_set(&meta, "arch", arch)) != LETHE_OK ||
        (st = lethe_meta_set(&meta, "in_shape", shape)) != LETHE_OK ||
        (st = lethe_meta_set(&meta, "nclass", ncls)) != LETHE_OK) {
        lethe_model_free(*m);
        *m = NULL;
        return st;
    }
    if (md) *md = meta;
    return LETHE_OK;
}

lethe_status cli_training_set(const lethe_forget_spec *spec, const lethe_dataset *train,
                              uint64_t seed, lethe_subset *all, lethe_subset *forget,
                              lethe_subset *retain, const lethe_subset **sub)
{
    lethe_status st;
    if (spec) {
        st = lethe_forget_split(spec, train, seed, forget, retain);
        *sub = retain;
    } else {
        st = lethe_subset_all(all, (size_t)train->n);
        *sub = all;
    }
    return st;
}

lethe_status cli_save_unlearned(const lethe_model *m, lethe_metadata *md,
                                const lethe_unlearn_config *cfg, const char *forgot,
                                const char *from, const char *out)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%lu", (unsigned long)cfg->seed);
    lethe_status st;
    if ((st = lethe_meta_set(md, "unlearned_by", cfg->method)) != LETHE_OK ||
        (st = lethe_meta_set(md, "forgot", forgot)) != LETHE_OK ||
        (st = lethe_meta_set(md, "unlearn_seed", seed)) != LETHE_OK ||
        (st = lethe_meta_set(md, "unlearned_from", from)) != LETHE_OK)
        return st;
    return lethe_checkpoint_save(m, md, out);
}

lethe_status cli_meta_put_norm(lethe_metadata *md, const lethe_dataset *ds)
{
    if (ds->tokens) return LETHE_OK;    /* text: token ids, nothing normalised */
    char mean[96] = "", std[96] = "";
    for (int c = 0; c < ds->c && c < 3; c++) {
        size_t km = strlen(mean), ks = strlen(std);
        snprintf(mean + km, sizeof mean - km, "%s%.6g", c ? "," : "", (double)ds->mean[c]);
        snprintf(std + ks, sizeof std - ks, "%s%.6g", c ? "," : "", (double)ds->std[c]);
    }
    lethe_status st = lethe_meta_set(md, "input_mean", mean);
    return st == LETHE_OK ? lethe_meta_set(md, "input_std", std) : st;
}

/* One key's values against want[0..c): 0 when equal (or absent). */
static int norm_key_differs(const lethe_metadata *md, const char *key, const float *want, int c,
                            char *why, size_t n)
{
    const char *v = lethe_meta_get(md, key);
    if (!v) return 0;
    int values = 1;
    for (const char *q = v; *q; q++) values += *q == ',';
    if (values != c) return 0;    /* another channel count: the shape check says so */
    const char *s = v;
    for (int k = 0; k < c; k++) {
        char *end;
        double x = strtod(s, &end);
        if (end == s || (k + 1 < c ? *end != ',' : *end != 0)) {
            snprintf(why, n, "its %s '%s' is not %d numbers", key, v, c);
            return 1;
        }
        if (fabs(x - (double)want[k]) > 1e-4) {
            snprintf(why, n, "it was trained on inputs with %s %s; the data set's channel %d "
                     "has %.4g", key, v, k, (double)want[k]);
            return 1;
        }
        s = end + 1;
    }
    return 0;
}

int cli_norm_differs(const lethe_metadata *md, const lethe_dataset *ds, char *why, size_t n)
{
    if (ds->tokens) return 0;
    int c = ds->c < 3 ? ds->c : 3;
    return norm_key_differs(md, "input_mean", ds->mean, c, why, n) ||
           norm_key_differs(md, "input_std", ds->std, c, why, n);
}
