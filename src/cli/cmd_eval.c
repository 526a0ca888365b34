/* lethe eval: accuracy of a model, or with --forget the unlearning metrics
 * (UA, RA, TA, MIA-Efficacy) and, with --reference, their gaps. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/report.h"
#include "cli/table.h"

static const cli_opt opts[] = {
    CLI_HEADING("model and data"),
    {"task", "NAME", "classification (default) | diffusion: see --task diffusion --help (a "
                     "diffusion checkpoint takes that form by itself)", 0},
    {"model", "FILE", "checkpoint to evaluate (required)", 0},
    {"arch", "NAME", "mlp | cnn | resnet8 | resnet20 | resnet18 | vit-tiny: load a "
                     "checkpoint whose metadata names no architecture (a PyTorch "
                     "state_dict) as this one", 0},
    {"data", "NAME", "fmnist | mnist | cifar10 | idx[:K] | cifar:K (default: the "
                     "checkpoint's)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    CLI_HEADING("accuracy (without --forget)"),
    {"split", "NAME", "train | test (default test)", 0},
    {"per-class", NULL, "accuracy of each class", 1},
    CLI_HEADING("unlearning metrics (with --forget)"),
    {"forget", "SPEC", "UA, RA, TA and MIA-Efficacy for class:C | random:P% | indices:FILE", 0},
    {"forget-seed", "N", "seed of a random forget set (default 0)", 0},
    {"reference", "FILE", "Retrain checkpoint: report gaps and Avg. Gap", 0},
    {"seed", "N", "seed of the MIA shadow set (default 0)", 0},
    CLI_HEADING("outputs"),
    {"report", "FILE", "also write the results as JSON; - for stdout", 0},
    {"quiet", NULL, "print only the results", 1},
    CLI_EXAMPLE("lethe eval --model runs/cnn.safetensors --per-class"),
    CLI_EXAMPLE("lethe eval --model runs/unlearned.safetensors --forget class:0 "
                "--reference runs/retrain.safetensors"),
    {NULL, NULL, NULL, 0},
};

static int write_json(const char *path, cJSON *root)
{
    lethe_status st = report_write(path, root);
    return st == LETHE_OK ? 0 : cli_lib_error("eval", st);
}

/* Non-zero (after printing) when the model was trained on inputs
 * normalised otherwise than the data set's. */
static int eval_norm_check(const char *path, const lethe_metadata *md, const lethe_dataset *ds)
{
    char why[256];
    return cli_norm_differs(md, ds, why, sizeof why)
               ? cli_error("eval", "%s: %s (data set %s)", path, why, ds->name)
               : 0;
}

static int eval_accuracy(const cli_args *a, lethe_model *m, const char *data, const char *path,
                         const lethe_metadata *md)
{
    lethe_dataset ds = {0};
    const char *split = cli_str(a, "split", "test");    /* checked by cmd_eval */
    lethe_status st = cli_dataset_load_for(m, &ds, data, cli_str(a, "data-dir", NULL),
                                           strcmp(split, "train") == 0);
    if (st != LETHE_OK) return cli_lib_error("eval", st);
    if (eval_norm_check(path, md, &ds)) {
        lethe_dataset_free(&ds);
        return 1;
    }
    int rc = 1;
    int C = ds.nclass;
    lethe_subset all = {0};
    lethe_subset cls = {malloc((size_t)ds.n * sizeof(int32_t)), 0};
    cJSON *root = cJSON_CreateObject();
    if (lethe_subset_all(&all, (size_t)ds.n) != LETHE_OK || !cls.idx || !root) {
        cli_error("eval", "out of memory");
        goto done;
    }
    double acc;
    if ((st = lethe_model_reserve(m, 256)) != LETHE_OK ||
        (st = lethe_eval_accuracy(m, &ds, &all, 256, &acc, NULL)) != LETHE_OK) {
        cli_lib_error("eval", st);
        goto done;
    }
    cJSON_AddStringToObject(root, "split", split);
    cJSON_AddNumberToObject(root, "accuracy", acc);
    static const table_col cols[2][3] = {
        {TABLE_COL("split", NULL), TABLE_COL("images", "%.0f"), TABLE_COL("accuracy", "%.2f")},
        {TABLE_COL("class", "%.0f"), TABLE_COL("images", "%.0f"), TABLE_COL("accuracy", "%.2f")}};
    table t;
    table_begin(&t, stdout, TABLE_MARKDOWN, cols[0], 3);
    table_text(&t, "%s", split);
    table_nums(&t, (const double[]){ds.n, acc}, 2);
    table_end_row(&t);
    if (cli_flag(a, "per-class")) {
        cJSON *pc = cJSON_AddArrayToObject(root, "per_class");
        printf("\n");
        table_begin(&t, stdout, TABLE_MARKDOWN, cols[1], 3);
        for (int c = 0; c < C; c++) {
            cls.n = 0;
            for (int i = 0; i < ds.n; i++)
                if (ds.labels[i] == c) cls.idx[cls.n++] = i;
            double ac = 0;
            if (cls.n && (st = lethe_eval_accuracy(m, &ds, &cls, 256, &ac, NULL)) != LETHE_OK) {
                cli_lib_error("eval", st);
                goto done;
            }
            table_nums(&t, (const double[]){c, (double)cls.n, ac}, 3);
            table_end_row(&t);
            cJSON_AddItemToArray(pc, cJSON_CreateNumber(ac));
        }
    }
    const char *json = cli_str(a, "report", NULL);
    rc = json ? write_json(json, root) : 0;
done:
    cJSON_Delete(root);
    free(all.idx);
    free(cls.idx);
    lethe_dataset_free(&ds);
    return rc;
}

static int eval_unlearning(const cli_args *a, lethe_model *m, const char *data, uint64_t seed,
                           uint64_t fseed, const char *path, const lethe_metadata *md)
{
    cli_split sp;
    lethe_status st = cli_split_load_for(&sp, m, data, cli_str(a, "data-dir", NULL),
                                         cli_str(a, "forget", NULL), fseed);
    if (st != LETHE_OK) return cli_lib_error("eval", st);
    if (eval_norm_check(path, md, &sp.train)) {
        cli_split_free(&sp);
        return 1;
    }
    int rc = 1;
    lethe_model *ref = NULL;
    cJSON *root = cJSON_CreateObject();
    lethe_metrics mm, mr;
    const char *refpath = cli_str(a, "reference", NULL);
    if ((st = cli_split_metrics(&sp, m, seed, &mm)) != LETHE_OK) goto fail;
    if (refpath) {
        lethe_metadata rmd = {0};
        if ((st = cli_open_model_as(refpath, cli_str(a, "arch", NULL), data,
                                    cli_str(a, "data-dir", NULL), &ref, &rmd)) != LETHE_OK)
            goto fail;
        if ((st = cli_split_metrics(&sp, ref, seed, &mr)) != LETHE_OK) goto fail;
    }
    /* TA on the forgotten classes for a class forget set; Avg. Gap with a reference. */
    table_col cols[] = {TABLE_COL("model", NULL), TABLE_COL("UA", "%.2f"), TABLE_COL("RA", "%.2f"),
                        TABLE_COL("TA", "%.2f"), TABLE_COL("TA (forgotten)", "%.2f"),
                        TABLE_COL("MIA-Eff.", "%.2f"), TABLE_COL("Avg. Gap", "%.2f")};
    cols[4].hide = !mm.has_ta_forget;
    cols[6].hide = !refpath;
    table t;
    table_begin(&t, stdout, TABLE_MARKDOWN, cols, 7);
    for (int k = 0; k < 1 + !!refpath; k++) {
        const lethe_metrics *x = k ? &mr : &mm;
        table_text(&t, "%s", k ? refpath : cli_str(a, "model", "model"));
        table_nums(&t, (const double[]){x->ua, x->ra, x->ta, x->ta_forget, x->mia,
                                        refpath ? lethe_avg_gap(x, &mr) : NAN}, 6);
        table_end_row(&t);
    }
    cJSON_AddStringToObject(root, "forget", sp.spec_text);
    cJSON_AddItemToObject(root, "metrics", report_metrics(&mm));
    if (refpath) {
        cJSON_AddItemToObject(root, "reference", report_metrics(&mr));
        cJSON_AddNumberToObject(root, "avg_gap", lethe_avg_gap(&mm, &mr));
    }
    const char *json = cli_str(a, "report", NULL);
    rc = json ? write_json(json, root) : 0;
    goto done;
fail:
    rc = cli_lib_error("eval", st);
done:
    cJSON_Delete(root);
    lethe_model_free(ref);
    cli_split_free(&sp);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "eval", "--model FILE [options]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    /* --task diffusion went to the generation commands (main.c). */
    if (cli_str(&a, "task", NULL) && strcmp(cli_str(&a, "task", NULL), "classification") != 0)
        return cli_usage_error("eval", "--task: unknown '%s' (classification, diffusion)",
                               cli_str(&a, "task", NULL));
    const char *path = cli_str(&a, "model", NULL);
    if (!path) return cli_usage_error("eval", "--model FILE is required");
    const char *split = cli_str(&a, "split", "test");
    if (strcmp(split, "train") && strcmp(split, "test"))
        return cli_usage_error("eval", "--split: expected train or test, got '%s'", split);
    long seed, fseed;
    if (cli_int(&a, "seed", 0, 0, LONG_MAX, &seed) ||
        cli_int(&a, "forget-seed", 0, 0, LONG_MAX, &fseed))
        return 2;
    lethe_forget_spec spec;
    if (cli_str(&a, "forget", NULL) &&
        (r = cli_forget_parse("eval", "--forget", cli_str(&a, "forget", NULL), &spec)))
        return r;
    if (cli_str(&a, "data", NULL) && (r = cli_check_data("eval", cli_str(&a, "data", NULL))))
        return r;
    const char *json = cli_str(&a, "report", NULL);
    if (json && (r = cli_check_named_output(&a, "report", json))) return r;
    lethe_model *m;
    lethe_metadata md = {0};
    const char *arch = cli_str(&a, "arch", NULL);
    if (arch && (r = cli_check_arch("eval", arch))) return r;
    lethe_status st = cli_open_model_as(path, arch, cli_str(&a, "data", NULL),
                                        cli_str(&a, "data-dir", NULL), &m, &md);
    if (st != LETHE_OK) return cli_lib_error("eval", st);
    const char *data = cli_str(&a, "data", lethe_meta_get(&md, "dataset"));
    if (!data) data = "fmnist";
    int rc = cli_str(&a, "forget", NULL)
                 ? eval_unlearning(&a, m, data, (uint64_t)seed, (uint64_t)fseed, path, &md)
                 : eval_accuracy(&a, m, data, path, &md);
    lethe_model_free(m);
    return rc;
}
