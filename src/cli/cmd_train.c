/* lethe train: the original model, or Retrain with --forget (the same
 * recipe on the retained part only). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/report.h"
#include "cli/signals.h"
#include "cli/table.h"
#include "nn/model.h"

static const cli_opt opts[] = {
    CLI_HEADING("model and data"),
    {"task", "NAME", "classification (default) | diffusion: see --task diffusion --help", 0},
    {"arch", "NAME", "mlp | cnn | resnet8 | resnet20 | resnet18 | vit-tiny | text-transformer "
                     "| text-bag (default cnn)", 0},
    {"data", "NAME", "fmnist | mnist | cifar10 | sms-spam (default fmnist), or one's own in "
                     "--data-dir: idx (IDX files; idx:K for K classes) | cifar:K (CIFAR "
                     "binaries of K classes) | text (train.tsv, test.tsv: label<TAB>text)", 0},
    {"data-dir", "DIR", "folder of the data set (default: Debian's for fmnist, "
                        LETHE_CIFAR10_DIR " for cifar10: lethe data fetch cifar10, "
                        LETHE_SMS_SPAM_DIR " for sms-spam)", 0},
    {"forget", "SPEC", "Retrain: train on the retained part only (class:0 | random:10% | "
                       "indices:FILE)", 0},
    {"forget-seed", "N", "seed of a random forget set (default 0)", 0},
    CLI_HEADING("recipe"),
    {"epochs", "N", "passes over the training set (default 8)", 0},
    {"batch", "N", "images per step (default 128)", 0},
    {"lr", "X", "learning rate (default 0.05)", 0},
    {"schedule", "NAME", "how the learning rate changes: cosine | constant | step (default "
                         "cosine)", 0},
    {"warmup", "EPOCHS", "linear warm-up: over the first EPOCHS epochs (fractions allowed) the "
                         "rate rises from lr/W to the schedule's, W the warm-up's steps "
                         "(default 0: none)", 0},
    {"optimizer", "NAME", "sgd | adamw (default sgd)", 0},
    {"momentum", "X", "SGD momentum (default 0.9)", 0},
    {"wd", "X", "weight decay (default 5e-4)", 0},
    {"nesterov", NULL, "Nesterov momentum", 1},
    {"seed", "N", "seed of the initial weights and the data order (default 0)", 0},
    {"augment", "MODE", "auto | on | flip | off: on is a random crop (4 black pixels of "
                        "padding) and horizontal flip of every training batch, flip the flip "
                        "alone, drawn from --seed; auto (default) is on for cifar10 only. "
                        "Never applied to evaluation", 0},
    {"deterministic", NULL, "sum every batch in 4 fixed chunks, so that mpirun -np 1 to 4 "
                            "(and one process) write the same bits (docs/PERFORMANCE.md)", 1},
    CLI_HEADING("outputs"),
    {"out", "FILE", "checkpoint to write (.safetensors; required)", 0},
    {"report", "FILE", "write a JSON report (recipe, accuracies; timing apart) here; - for "
                       "stdout", 0},
    CLI_HEADING("run control"),
    CLI_RUN_OPTS,
    {"quiet", NULL, "print only the result table (no progress, banner or 'wrote' lines)", 1},
    CLI_EXAMPLE("lethe train --arch cnn --data fmnist --out runs/cnn.safetensors"),
    CLI_EXAMPLE("lethe train --arch cnn --forget class:0 --out runs/retrain-class0.safetensors"),
    CLI_EXAMPLE("lethe train --arch resnet20 --data cifar10 --out runs/resnet20.safetensors"),
    CLI_EXAMPLE("lethe train --arch text-transformer --data sms-spam --optimizer adamw --lr 0.002 "
                "--wd 0.01 --batch 32 --epochs 10 --out runs/sms.safetensors"),
    {NULL, NULL, NULL, 0},
};

void cli_train_table(const char *arch, const char *data, size_t n, int epochs, double acc_train,
                     double acc_test, double secs)
{
    table_col cols[] = {TABLE_COL("arch", NULL), TABLE_COL("data", NULL),
                        TABLE_COL("images", "%.0f"), TABLE_COL("epochs", "%.0f"),
                        TABLE_COL("train acc", "%.2f"), TABLE_COL("test acc", "%.2f"),
                        TABLE_COL("time (s)", "%.1f")};
    cols[4].hide = cols[5].hide = isnan(acc_train);
    table t;
    table_begin(&t, stdout, TABLE_MARKDOWN, cols, 7);
    table_text(&t, "%s", arch);
    table_text(&t, "%s", data);
    table_nums(&t, (const double[]){(double)n, epochs, acc_train, acc_test, secs}, 5);
    table_end_row(&t);
}

int cmd_train(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "train", "--out FILE [options]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    /* --task diffusion went to the generation commands (main.c). */
    if (cli_str(&a, "task", NULL) && strcmp(cli_str(&a, "task", NULL), "classification") != 0)
        return cli_usage_error("train", "--task: unknown '%s' (classification, diffusion)",
                               cli_str(&a, "task", NULL));
    const char *out = cli_str(&a, "out", NULL);
    if (!out) return cli_usage_error("train", "--out FILE is required");
    lethe_train_config cfg;
    lethe_train_config_default(&cfg);
    long epochs, batch, seed, fseed;
    double lr, mom, wd, warm;
    if (cli_int(&a, "epochs", cfg.epochs, 1, 10000, &epochs) ||
        cli_int(&a, "batch", cfg.batch, 1, 4096, &batch) ||
        cli_int(&a, "seed", 0, 0, LONG_MAX, &seed) ||
        cli_int(&a, "forget-seed", 0, 0, LONG_MAX, &fseed) ||
        cli_float(&a, "lr", cfg.lr, 1e-12, 100, &lr) ||
        cli_float(&a, "momentum", cfg.momentum, 0, 0.9999, &mom) ||
        cli_float(&a, "wd", cfg.weight_decay, 0, 1, &wd) ||
        cli_float(&a, "warmup", 0, 0, 10000, &warm))
        return 2;
    if (warm > (double)epochs)
        return cli_usage_error("train", "--warmup %g: longer than the run's %ld epoch%s", warm,
                               epochs, epochs == 1 ? "" : "s");
    cfg.epochs = (int)epochs;
    cfg.batch = (int)batch;
    cfg.seed = (uint64_t)seed;
    cfg.lr = (float)lr;
    cfg.momentum = (float)mom;
    cfg.weight_decay = (float)wd;
    cfg.warmup = (float)warm;
    cfg.nesterov = cli_flag(&a, "nesterov");
    cfg.deterministic = cli_flag(&a, "deterministic");
    lethe_schedule sch;
    if (lethe_schedule_parse(&sch, cli_str(&a, "schedule", "cosine")) != LETHE_OK)
        return cli_usage_error("train", "--schedule: %s", lethe_last_error());
    cfg.schedule = sch.kind;
    const char *optn = cli_str(&a, "optimizer", "sgd");
    if (strcmp(optn, "sgd") == 0) cfg.optimizer = LETHE_OPT_SGD;
    else if (strcmp(optn, "adamw") == 0) cfg.optimizer = LETHE_OPT_ADAMW;
    else return cli_usage_error("train", "--optimizer: unknown '%s' (sgd, adamw)", optn);
    const char *arch = cli_str(&a, "arch", "cnn");
    if ((r = cli_check_arch("train", arch))) return r;
    const char *data = cli_str(&a, "data", "fmnist");
    if ((r = cli_check_data("train", data))) return r;
    const char *aug = cli_str(&a, "augment", "auto");
    if (strcmp(aug, "on") == 0)
        cfg.augment = LETHE_AUGMENT_CROP_FLIP;
    else if (strcmp(aug, "flip") == 0)
        cfg.augment = LETHE_AUGMENT_FLIP;
    else if (strcmp(aug, "off") == 0)
        cfg.augment = LETHE_AUGMENT_OFF;
    else if (strcmp(aug, "auto") == 0)
        cfg.augment = strcmp(data, "cifar10") == 0 ? LETHE_AUGMENT_CROP_FLIP : LETHE_AUGMENT_OFF;
    else
        return cli_usage_error("train", "--augment: unknown '%s' (auto, on, flip, off)", aug);
    const char *aug_name = cli_augment_name(cfg.augment);
    const char *fspec = cli_str(&a, "forget", NULL);
    lethe_forget_spec spec;
    if (fspec && (r = cli_forget_parse("train", "--forget", fspec, &spec))) return r;
    int quiet = cli_flag(&a, "quiet");
    const char *rep = cli_str(&a, "report", NULL);
    if ((r = cli_check_named_output(&a, "out", out)) ||
        (rep && (r = cli_check_named_output(&a, "report", rep))))
        return r;
    cli_run run;
    if ((r = cli_run_setup(&run, &a, out, rep))) return r;

    int rc = 1;
    lethe_dataset train = {0}, test = {0};
    lethe_model *m = NULL;
    cJSON *root = NULL;
    lethe_subset all = {0}, forget = {0}, retain = {0}, tf = {0}, tr = {0};
    lethe_status st = cli_load_data(data, cli_str(&a, "data-dir", NULL), &train, &test);
    if (st != LETHE_OK) return cli_lib_error("train", st);
    if (nn_arch_is_text(arch) != (train.tokens != NULL)) {
        rc = cli_usage_error("train", "--arch %s reads %s, --data %s holds %s%s", arch,
                             nn_arch_is_text(arch) ? "texts" : "images", data,
                             train.tokens ? "texts" : "images",
                             train.tokens ? " (a text model: --arch text-transformer)" : "");
        goto done;
    }
    if ((st = lethe_model_create(&m, arch, train.c, train.h, train.w, train.nclass)) != LETHE_OK)
        goto fail;
    const lethe_subset *sub;
    if ((st = cli_training_set(fspec ? &spec : NULL, &train, (uint64_t)fseed, &all, &forget,
                               &retain, &sub)) != LETHE_OK)
        goto fail;
    size_t n;
    lethe_model_theta(m, &n);
    if (!quiet)
        fprintf(stderr, "training %s (%zu parameters) on %s: %zu images, %d epochs, batch %d, "
                "lr %g %s, seed %lu%s%s%s\n", arch, n, train.name, sub->n, cfg.epochs, cfg.batch,
                (double)cfg.lr, cli_str(&a, "schedule", "cosine"), (unsigned long)seed,
                cfg.augment ? ", augmented (" : "", cfg.augment ? aug_name : "",
                cfg.augment ? ")" : "");
    cli_progress prog;
    cli_progress_init(&prog, "train");
    double t0 = core_now();
    cli_run_begin(&run);
    st = lethe_train_run(m, &train, sub, &cfg, &run.ctl,
                         quiet ? NULL : cli_progress_cb, &prog);
    if (!quiet) cli_progress_done(&prog);
    if ((rc = cli_run_end(&run, "train", st))) goto done;
    rc = 1;
    if (st != LETHE_OK) goto fail;
    double secs = core_now() - t0;

    /* Test accuracy: for Retrain on classes, the retained classes' test images. */
    if (fspec) {
        if ((st = lethe_forget_split_test(&spec, &test, &tf, &tr)) != LETHE_OK) goto fail;
    } else {
        if ((st = lethe_subset_all(&tr, (size_t)test.n)) != LETHE_OK) goto fail;
    }
    double acc_test, acc_train;
    if ((st = lethe_model_reserve(m, 256)) != LETHE_OK ||
        (st = lethe_eval_accuracy(m, &test, &tr, 256, &acc_test, NULL)) != LETHE_OK ||
        (st = lethe_eval_accuracy(m, &train, sub, 256, &acc_train, NULL)) != LETHE_OK)
        goto fail;

    lethe_metadata md = {0};
    char shape[64], ncls[16], recipe[256], seedb[32], without[LETHE_FORGET_TEXT_MAX], acc[32];
    snprintf(shape, sizeof shape, "%d,%d,%d", train.c, train.h, train.w);
    snprintf(ncls, sizeof ncls, "%d", train.nclass);
    snprintf(recipe, sizeof recipe,
             "%s lr=%g schedule=%s momentum=%g wd=%g nesterov=%d epochs=%d batch=%d", optn,
             (double)cfg.lr, cli_str(&a, "schedule", "cosine"), (double)cfg.momentum,
             (double)cfg.weight_decay, cfg.nesterov, cfg.epochs, cfg.batch);
    /* Only when on: a checkpoint trained without it keeps its bytes. */
    if (cfg.augment) {
        size_t at = strlen(recipe);
        snprintf(recipe + at, sizeof recipe - at, " augment=%s", aug_name);
    }
    if (cfg.warmup > 0.0f) {
        size_t at = strlen(recipe);
        snprintf(recipe + at, sizeof recipe - at, " warmup=%g", (double)cfg.warmup);
    }
    snprintf(seedb, sizeof seedb, "%lu", (unsigned long)seed);
    snprintf(acc, sizeof acc, "%.2f", acc_test);
    if (fspec && (st = lethe_forget_to_string(&spec, without, sizeof without)) != LETHE_OK)
        goto fail;
    /* In this order: the checkpoint's header lists them so. */
    if ((st = lethe_meta_set(&md, "format", "lethe")) != LETHE_OK ||
        (st = lethe_meta_set(&md, "version", LETHE_VERSION)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "arch", arch)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "in_shape", shape)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "nclass", ncls)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "dataset", train.name)) != LETHE_OK ||
        (st = cli_meta_put_norm(&md, &train)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "recipe", recipe)) != LETHE_OK ||
        (st = lethe_meta_set(&md, "seed", seedb)) != LETHE_OK ||
        (fspec && (st = lethe_meta_set(&md, "trained_without", without)) != LETHE_OK) ||
        (st = lethe_meta_set(&md, "test_accuracy", acc)) != LETHE_OK)
        goto fail;
    /* The table first: an output "-" then has standard output to itself. */
    cli_train_table(arch, train.name, sub->n, cfg.epochs, acc_train, acc_test, secs);
    cli_stdout_restore(out);
    if ((st = lethe_checkpoint_save(m, &md, out)) != LETHE_OK) goto fail;
    if (rep) {
        /* Everything but "timing" is the same for the same command, seed and threads. */
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "arch", arch);
        cJSON_AddStringToObject(root, "data", train.name);
        cJSON *rc_ = cJSON_AddObjectToObject(root, "config");
        cJSON_AddStringToObject(rc_, "optimizer", optn);
        cJSON_AddNumberToObject(rc_, "epochs", cfg.epochs);
        cJSON_AddNumberToObject(rc_, "batch", cfg.batch);
        cJSON_AddItemToObject(rc_, "lr", report_float(cfg.lr));
        cJSON_AddStringToObject(rc_, "schedule", cli_str(&a, "schedule", "cosine"));
        cJSON_AddItemToObject(rc_, "warmup_epochs", report_float(cfg.warmup));
        cJSON_AddItemToObject(rc_, "momentum", report_float(cfg.momentum));
        cJSON_AddItemToObject(rc_, "wd", report_float(cfg.weight_decay));
        cJSON_AddBoolToObject(rc_, "nesterov", cfg.nesterov);
        cJSON_AddBoolToObject(rc_, "augment", cfg.augment != LETHE_AUGMENT_OFF);
        cJSON_AddStringToObject(rc_, "augment_mode", aug_name);
        cJSON_AddNumberToObject(rc_, "seed", (double)seed);
        if (fspec) cJSON_AddStringToObject(rc_, "forget", lethe_meta_get(&md, "trained_without"));
        cJSON_AddNumberToObject(root, "images", (double)sub->n);
        cJSON_AddNumberToObject(root, "steps", (double)run.ctl.step);
        cJSON_AddNumberToObject(root, "train_accuracy", acc_train);
        cJSON_AddNumberToObject(root, "test_accuracy", acc_test);
        cJSON *tm = cJSON_AddObjectToObject(root, "timing");
        cJSON_AddNumberToObject(tm, "seconds", secs);
        if ((st = report_write(rep, root)) != LETHE_OK) goto fail;
    }
    cli_run_finish(&run);
    if (!quiet) fprintf(stderr, "wrote %s\n", out);
    rc = 0;
    goto done;
fail:
    rc = cli_run_fail(&run, "train", st);
done:
    cJSON_Delete(root);
    lethe_subset_free(&all);
    lethe_subset_free(&forget);
    lethe_subset_free(&retain);
    lethe_subset_free(&tf);
    lethe_subset_free(&tr);
    lethe_model_free(m);
    lethe_dataset_free(&train);
    lethe_dataset_free(&test);
    return rc;
}
