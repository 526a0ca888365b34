/* Text models (issue 17): a "text" folder as a lethe_dataset (token ids,
 * the vocabulary blob), text-transformer trained on it, the vocabulary in
 * its checkpoint ("text.vocab") and that entry's bad forms, and a text
 * model refusing images and the reverse. */
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/text.h"
#include "io/safetensors.h"
#include "lethe.h"

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }


static void write_in(const char *dir, const char *file, const char *s)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(s, 1, strlen(s), f) == strlen(s));
    fclose(f);
}

/* A folder of two separable classes: "spam" texts of prize words, "ham"
 * ones of meeting words, each word at least twice (min_count 2). */
static const char *spam_dir(void)
{
    const char *dir = test_path("text-model");
    mkdir(dir, 0755);
    static const char *const spam[] = {"win a free prize now", "free cash prize call now",
                                       "claim your free prize", "win cash now call",
                                       "urgent claim cash prize", "call now to win free cash"};
    static const char *const ham[] = {"see you at lunch", "are we still meeting at noon",
                                      "lunch at noon is fine", "see you at the meeting",
                                      "ok see you soon", "meeting moved to noon ok"};
    char train[4096] = "", test[1024] = "";
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 6; i++) {
            char line[128];
            snprintf(line, sizeof line, "spam\t%s\nham\t%s\n", spam[(i + r) % 6], ham[(i + 2 * r) % 6]);
            strncat(train, line, sizeof train - strlen(train) - 1);
        }
    strcpy(test, "ham\tsee you at noon\nspam\tfree cash now\nham\tlunch meeting ok\n"
                 "spam\tclaim your prize now\n");
    write_in(dir, "train.tsv", train);
    write_in(dir, "test.tsv", test);
    return dir;
}

TEST(text_dataset_from_folder)
{
    const char *dir = spam_dir();
    lethe_dataset tr, te;
    CHECK_OK(lethe_dataset_load(&tr, "text", dir, 1));
    CHECK_OK(lethe_dataset_load(&te, "text", dir, 0));
    CHECK(tr.n == 48 && te.n == 4 && tr.nclass == 2 && te.nclass == 2);
    CHECK(tr.tokens && !tr.pixels && tr.h == 1 && tr.w == 64 && tr.c == te.c && tr.c > 20);
    CHECK(lethe_dataset_sample_size(&tr) == 64);
    CHECK(tr.vocab && tr.vocab_len == strlen(tr.vocab) && te.vocab_len == tr.vocab_len &&
          memcmp(tr.vocab, te.vocab, tr.vocab_len) == 0);
    /* Class 0 "ham", 1 "spam" (byte order); the first line is spam. */
    CHECK(tr.labels[0] == 1 && tr.labels[1] == 0 && te.labels[0] == 0);
    float x[2 * 64];
    int32_t y[2], idx[2] = {1, 0};
    lethe_dataset_batch(&tr, idx, 2, x, y);
    CHECK(y[0] == 0 && y[1] == 1);
    int same = 1;
    for (int t = 0; t < 64; t++) same &= x[t] == (float)tr.tokens[64 + t];
    CHECK(same && x[0] == (float)TEXT_CLS && x[63] == 0.0f && x[64 + 1] > 2.0f);
    /* The blob reads back: as many ids as c, two classes. */
    text_vocab v;
    text_classes c;
    CHECK_OK(text_vocab_read(&v, &c, tr.vocab, tr.vocab_len));
    CHECK(v.n == tr.c && c.n == 2 && strcmp(c.name[1], "spam") == 0);
    text_vocab_free(&v);
    text_classes_free(&c);
    lethe_dataset_free(&tr);
    lethe_dataset_free(&te);
    CHECK(tr.tokens == NULL && tr.vocab == NULL);

    /* The reader's own errors come through: a label the training split
     * lacks, an empty file. */
    const char *bad = test_path("text-model-bad");
    mkdir(bad, 0755);
    write_in(bad, "train.tsv", "a\tx y\nb\tz w\n");
    write_in(bad, "test.tsv", "c\tx\n");
    CHECK_FAILS(lethe_dataset_load(&te, "text", bad, 0), LETHE_ERR_FORMAT,
              "test.tsv line 1: label 'c' is not a class of the training split");
    write_in(bad, "test.tsv", "");
    CHECK_FAILS(lethe_dataset_load(&te, "text", bad, 1), LETHE_ERR_FORMAT, "test.tsv: empty file");
}

/* A model reads other data with its own vocabulary and classes: a folder
 * whose training split has other words (so a vocabulary built from it
 * numbers them otherwise) and the same test texts encodes those texts to
 * the very ids the model was trained with; a label the model lacks, and a
 * broken vocabulary, are refused in one line. */
TEST(text_model_vocabulary_reads_other_data)
{
    const char *dir = spam_dir();
    lethe_dataset tr, te, own, with;
    CHECK_OK(lethe_dataset_load(&tr, "text", dir, 1));
    CHECK_OK(lethe_dataset_load(&te, "text", dir, 0));
    const char *other = test_path("text-model-other");
    mkdir(other, 0755);
    write_in(other, "train.tsv", "ham\tlunch lunch lunch noon noon ok\nham\tlunch lunch noon\n"
                                 "spam\tcash cash cash prize prize\nspam\tcash cash prize\n"
                                 "ham\tzebra zebra lunch\n");
    write_in(other, "test.tsv", "ham\tsee you at noon\nspam\tfree cash now\nham\tlunch meeting ok\n"
                                "spam\tclaim your prize now\n");
    CHECK_OK(lethe_dataset_load(&own, "text", other, 0));
    /* Built anew, the ids differ: the check below has something to catch. */
    CHECK(own.c != te.c || memcmp(own.tokens, te.tokens, (size_t)te.n * te.w * 4) != 0);
    CHECK_OK(text_datasets_load(NULL, &with, "text", other, tr.vocab, tr.vocab_len));
    CHECK(with.n == te.n && with.c == te.c && with.w == te.w && with.nclass == te.nclass);
    CHECK(with.tokens && memcmp(with.tokens, te.tokens, (size_t)te.n * te.w * 4) == 0);
    CHECK(with.labels && memcmp(with.labels, te.labels, (size_t)te.n) == 0);
    CHECK(with.vocab_len == tr.vocab_len && memcmp(with.vocab, tr.vocab, tr.vocab_len) == 0);
    lethe_dataset_free(&with);
    lethe_dataset_free(&own);

    write_in(other, "test.tsv", "ham\tsee you\neggs\tham and eggs\n");
    CHECK_FAILS(text_datasets_load(NULL, &with, "text", other, tr.vocab, tr.vocab_len),
                LETHE_ERR_FORMAT, "test.tsv line 2: label 'eggs' is not a class of the model");
    CHECK_FAILS(text_datasets_load(NULL, &with, "text", other, tr.vocab, 20), LETHE_ERR_FORMAT,
                "the model's vocabulary (text.vocab): ");
    lethe_dataset_free(&tr);
    lethe_dataset_free(&te);
}

/* Logits of m on the first n examples of ds. */
static void logits_of(lethe_model *m, const lethe_dataset *ds, int n, float *out)
{
    float x[8 * 64];
    int32_t y[8], idx[8];
    for (int i = 0; i < n; i++) idx[i] = i;
    lethe_dataset_batch(ds, idx, n, x, y);
    const float *lg = NULL;
    CHECK_OK(lethe_model_forward(m, x, n, NULL, LETHE_BN_EVAL, &lg));
    if (lg) memcpy(out, lg, (size_t)n * 2 * sizeof(float));
}

TEST(text_transformer_trains_and_keeps_its_vocabulary)
{
    const char *dir = spam_dir();
    lethe_dataset tr, te;
    CHECK_OK(lethe_dataset_load(&tr, "text", dir, 1));
    CHECK_OK(lethe_dataset_load(&te, "text", dir, 0));
    if (!tr.tokens || !te.tokens) return;
    lethe_model *m = NULL;
    CHECK_OK(lethe_model_create(&m, "text-transformer", tr.c, tr.h, tr.w, tr.nclass));
    if (!m) return;
    lethe_train_config cfg;
    lethe_train_config_default(&cfg);
    cfg.optimizer = LETHE_OPT_ADAMW;
    cfg.lr = 0.003f;
    cfg.weight_decay = 0.01f;
    cfg.epochs = 6;
    cfg.batch = 16;
    cfg.init = 1;
    lethe_subset all, tall;
    CHECK_OK(lethe_subset_all(&all, (size_t)tr.n));
    CHECK_OK(lethe_subset_all(&tall, (size_t)te.n));
    CHECK_OK(lethe_train(m, &tr, &all, &cfg, NULL, NULL));
    double acc = 0;
    CHECK_OK(lethe_model_reserve(m, 8));
    CHECK_OK(lethe_eval_accuracy(m, &te, &tall, 8, &acc, NULL));
    CHECK_MSG(acc == 100.0, "test accuracy %.1f%% on a separable set", acc);

    /* The checkpoint holds the vocabulary; the model read back gives the
     * same logits and carries the same blob. */
    const char *path = test_path("text-model.safetensors");
    CHECK_OK(lethe_checkpoint_save(m, NULL, path));
    lethe_model *r = NULL;
    CHECK_OK(lethe_checkpoint_open(&r, path, NULL));
    if (r) {
        float a[8], b[8];
        logits_of(m, &te, 4, a);
        CHECK_OK(lethe_model_reserve(r, 8));
        logits_of(r, &te, 4, b);
        CHECK(memcmp(a, b, sizeof a) == 0);
        CHECK_OK(lethe_model_check_data(r, &te));
    }
    st_file f;
    CHECK_OK(st_read(&f, path, 1));
    const st_entry *e = st_find(&f, "text.vocab");
    CHECK(e && e->dtype == ST_U8 && e->ndim == 1 && e->numel == tr.vocab_len &&
          memcmp(f.data + e->begin, tr.vocab, tr.vocab_len) == 0);
    st_free(&f);

    /* A text model refuses images, an image model refuses texts; a text
     * set of another vocabulary is refused too. */
    lethe_dataset img = {.n = 1, .c = 1, .h = 28, .w = 28, .nclass = 2};
    snprintf(img.name, sizeof img.name, "fmnist");
    CHECK_FAILS(lethe_model_check_data(m, &img), LETHE_ERR_MISMATCH,
              "text-transformer is a text model, data set fmnist holds images");
    lethe_model *cnn = NULL;
    CHECK_OK(lethe_model_create(&cnn, "cnn", 1, 28, 28, 2));
    if (cnn) {
        tr.c = 1, tr.h = 28, tr.w = 28;   /* even of the right shape */
        CHECK_FAILS(lethe_model_check_data(cnn, &tr), LETHE_ERR_MISMATCH,
                  "cnn is an image model, data set text holds texts (token ids)");
        tr.c = te.c, tr.h = 1, tr.w = 64;
    }
    if (r) {
        te.vocab[te.vocab_len - 2] ^= 1;
        CHECK_FAILS(lethe_model_check_data(r, &te), LETHE_ERR_MISMATCH, "another vocabulary");
        te.vocab[te.vocab_len - 2] ^= 1;
    }
    /* An id the table lacks, a value that is no id. */
    float x[64] = {2, 5, 0};
    const float *lg;
    x[1] = (float)tr.c;
    CHECK_FAILS(lethe_model_forward(m, x, 1, NULL, LETHE_BN_EVAL, &lg), LETHE_ERR_ARG,
              "token id");
    x[1] = 1.5f;
    CHECK_FAILS(lethe_model_forward(m, x, 1, NULL, LETHE_BN_EVAL, &lg), LETHE_ERR_ARG,
              "is not a token id");
    lethe_model_free(cnn);
    lethe_model_free(r);
    lethe_model_free(m);
    lethe_subset_free(&all);
    lethe_subset_free(&tall);
    lethe_dataset_free(&tr);
    lethe_dataset_free(&te);
}

/* The "text.vocab" entry is bounded and checked: its dtype and rank, its
 * grammar, its fit to the model; only a text model may hold one. */
TEST(text_checkpoint_vocabulary_checked)
{
    const char *dir = spam_dir();
    lethe_dataset tr;
    CHECK_OK(lethe_dataset_load(&tr, "text", dir, 1));
    if (!tr.tokens) return;
    lethe_model *m = NULL;
    CHECK_OK(lethe_model_create(&m, "text-transformer", tr.c, 1, tr.w, 2));
    if (!m) return;
    const int n = lethe_model_ntensors(m);
    st_out *t = calloc((size_t)n + 1, sizeof *t);
    for (int i = 0; i < n; i++) {
        const lethe_tensor *x = lethe_model_tensor(m, i);
        t[i] = (st_out){.name = x->name, .dtype = ST_F32, .ndim = x->ndim, .data = x->data};
        for (int k = 0; k < x->ndim; k++) t[i].shape[k] = x->shape[k];
    }
    lethe_metadata md = {0};
    char shape[64];
    snprintf(shape, sizeof shape, "%d,1,%d", tr.c, tr.w);
    CHECK_OK(lethe_meta_set(&md, "arch", "text-transformer"));
    CHECK_OK(lethe_meta_set(&md, "in_shape", shape));
    CHECK_OK(lethe_meta_set(&md, "nclass", "2"));
    const char *path = test_path("text-vocab-bad.safetensors");
    char *blob = malloc(tr.vocab_len + 1);
    float fl[4] = {0};
    struct {
        const char *what;
        st_dtype dt;
        int ndim;
        size_t len;
        int flip;       /* byte changed in the blob (−1: none) */
        lethe_status want;
        const char *msg;
    } bad[] = {
        {"F32", ST_F32, 1, 4, -1, LETHE_ERR_FORMAT, "must be U8 bytes of one dimension"},
        {"2-D", ST_U8, 2, 0, -1, LETHE_ERR_FORMAT, "must be U8 bytes of one dimension"},
        {"cut", ST_U8, 1, 40, -1, LETHE_ERR_FORMAT, "'text.vocab': "},
        {"bad", ST_U8, 1, 0, 0, LETHE_ERR_FORMAT, "'text.vocab': "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(blob, tr.vocab, tr.vocab_len);
        if (bad[i].flip >= 0) blob[bad[i].flip] = '#';
        size_t len = bad[i].len ? bad[i].len : tr.vocab_len;
        t[n] = (st_out){.name = "text.vocab", .dtype = bad[i].dt, .ndim = bad[i].ndim,
                        .data = fl, .u8 = (const uint8_t *)blob};
        t[n].shape[0] = (int64_t)len;
        if (bad[i].ndim == 2) t[n].shape[0] = 1, t[n].shape[1] = (int64_t)len;
        CHECK_OK(st_write(path, &md, t, n + 1));
        lethe_model *r = (lethe_model *)1;
        lethe_status s = lethe_checkpoint_open(&r, path, NULL);
        CHECK_MSG(s == bad[i].want && contains(lethe_last_error(), bad[i].msg) && !r,
                  "%s: %s: %s", bad[i].what, lethe_status_to_string(s), lethe_last_error());
    }
    /* A vocabulary of another size than the model's table. */
    memcpy(blob, tr.vocab, tr.vocab_len);
    t[n] = (st_out){.name = "text.vocab", .dtype = ST_U8, .ndim = 1, .shape = {(int64_t)tr.vocab_len},
                    .u8 = (const uint8_t *)blob};
    snprintf(shape, sizeof shape, "%d,1,%d", tr.c + 1, tr.w);
    lethe_model *big = NULL;
    CHECK_OK(lethe_model_create(&big, "text-transformer", tr.c + 1, 1, tr.w, 2));
    if (big) {
        const lethe_tensor *e = lethe_model_tensor(big, 0);
        t[0].shape[0] = e->shape[0];
        t[0].data = e->data;
        CHECK_OK(lethe_meta_set(&md, "in_shape", shape));
        CHECK_OK(st_write(path, &md, t, n + 1));
        lethe_model *r = NULL;
        CHECK_FAILS(lethe_checkpoint_open(&r, path, NULL), LETHE_ERR_MISMATCH,
                  "does not fit the text-transformer model");
        lethe_model_free(r);
    }
    /* An image model's file with a vocabulary. */
    lethe_model *cnn = NULL;
    CHECK_OK(lethe_model_create(&cnn, "cnn", 1, 28, 28, 2));
    if (cnn) {
        CHECK_OK(lethe_checkpoint_save(cnn, NULL, path));
        st_file f;
        CHECK_OK(st_read(&f, path, 1));
        const int nc = lethe_model_ntensors(cnn);
        st_out *o = calloc((size_t)nc + 1, sizeof *o);
        for (int i = 0; i < nc; i++) {
            const lethe_tensor *x = lethe_model_tensor(cnn, i);
            o[i] = (st_out){.name = x->name, .dtype = ST_F32, .ndim = x->ndim, .data = x->data};
            for (int k = 0; k < x->ndim; k++) o[i].shape[k] = x->shape[k];
        }
        o[nc] = t[n];
        lethe_metadata cm = {0};
        CHECK_OK(lethe_meta_set(&cm, "arch", "cnn"));
        CHECK_OK(lethe_meta_set(&cm, "nclass", "2"));
        CHECK_OK(st_write(path, &cm, o, nc + 1));
        lethe_model *r = NULL;
        CHECK_FAILS(lethe_checkpoint_open(&r, path, NULL), LETHE_ERR_MISMATCH,
                  "holds a vocabulary ('text.vocab') but the cnn model is not a text model");
        lethe_model_free(r);
        st_free(&f);
        free(o);
    }
    lethe_model_free(cnn);
    lethe_model_free(big);
    free(blob);
    free(t);
    lethe_model_free(m);
    lethe_dataset_free(&tr);
}

/* tools/lethe_torch.py fixture --arch ARCH: torch's twin (V 50, T 12,
 * norms and positions away from their defaults) on four examples of 12,
 * 9, 6 and 3 tokens; Lethe's logits on the same ids (F32, as a text batch
 * holds them) within 1e-4. */
static void torch_fixture_text(const char *arch)
{
    char name[64], lname[64];
    snprintf(name, sizeof name, "torch_%s.safetensors", arch);
    snprintf(lname, sizeof lname, "torch_%s_logits.safetensors", arch);
    lethe_model *m = NULL;
    lethe_metadata md;
    CHECK_OK(lethe_checkpoint_open(&m, test_data(name), &md));
    if (!m) return;
    CHECK(strcmp(lethe_model_arch(m), arch) == 0 && lethe_model_nclass(m) == 2);
    st_file f;
    CHECK_OK(st_read(&f, test_data(lname), 1));
    const st_entry *ein = f.n ? st_find(&f, "input") : NULL;
    const st_entry *eout = f.n ? st_find(&f, "expected_logits") : NULL;
    CHECK(ein && ein->numel == 48 && eout && eout->numel == 8);
    if (ein && eout && ein->numel == 48 && eout->numel == 8) {
        float x[48], want[8];
        st_entry_to_float(&f, ein, x);
        st_entry_to_float(&f, eout, want);
        CHECK(x[0] == 1.0f && x[11] != 0.0f && x[12 + 9] == 0.0f && x[36 + 3] == 0.0f);
        const float *lg = NULL;
        CHECK_OK(lethe_model_reserve(m, 4));
        CHECK_OK(lethe_model_forward(m, x, 4, NULL, LETHE_BN_EVAL, &lg));
        double err = 0, big = 0;
        for (int k = 0; lg && k < 8; k++) {
            err = fmax(err, fabs(lg[k] - want[k]));
            big = fmax(big, fabs(want[k]));
        }
        CHECK(lg != NULL && big > 0.1);
        CHECK_NEAR(err, 0, 1e-4);
        /* The same through lethe_model_set_tokens (ids and mask). */
        int32_t ids[48];
        uint8_t mask[48];
        for (int k = 0; k < 48; k++) ids[k] = (int32_t)x[k], mask[k] = ids[k] != 0;
        float zero[48] = {0};
        CHECK_OK(lethe_model_set_tokens(m, ids, mask));
        CHECK_OK(lethe_model_forward(m, zero, 4, NULL, LETHE_BN_EVAL, &lg));
        err = 0;
        for (int k = 0; lg && k < 8; k++) err = fmax(err, fabs(lg[k] - want[k]));
        CHECK_NEAR(err, 0, 1e-4);
    }
    st_free(&f);
    lethe_model_free(m);
}

TEST(torch_fixture_text_transformer_logits) { torch_fixture_text("text-transformer"); }
TEST(torch_fixture_text_bag_logits) { torch_fixture_text("text-bag"); }

/* ------------------------------------------------------- command line */

#include "cli_util.h"

#define EXPECT_FAIL(args, needle) cli_t_expect_fail_at(__FILE__, __LINE__, "textcli", args, needle, 1)

/* lethe train --data text, predict (--text, and standard input), unlearn
 * and eval with --forget class:spam, and the bad inputs: a label no class
 * has, a text model given images and an image model given texts (train,
 * eval, unlearn, predict). */
TEST(text_cli_train_predict_forget_by_label)
{
    if (!cli_t_have_bin() || !cli_t_mkdir("textcli")) return;
    const char *dir = spam_dir();
    cli_t_path_buf model, forgot, cnn, mnist, in;
    cli_t_path(model, "textcli", "t.safetensors");
    cli_t_path(forgot, "textcli", "f.safetensors");
    cli_t_path(cnn, "textcli", "cnn.safetensors");
    cli_t_path(mnist, "textcli", "mnist");
    cli_t_path(in, "textcli", "in.txt");
    char args[4096], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "train --arch text-transformer --data text --data-dir '%s' "
             "--optimizer adamw --lr 0.003 --wd 0.01 --epochs 6 --batch 16 --quiet --out '%s'",
             dir, model);
    int rc = cli_t_run("textcli", args, &o, &e);
    CHECK_MSG(rc == 0, "train exited %d: %s", rc, e ? e : "");
    CHECK(o && contains(o, "| text-transformer | text | 48 | 6 | 100.00 | 100.00 |"));
    free(o);
    free(e);

    snprintf(args, sizeof args, "info '%s'", model);
    rc = cli_t_run("textcli", args, &o, NULL);
    CHECK_MSG(rc == 0 && o && contains(o, "ids, 64 per text, 2 classes: ham spam"), "info: %s",
              o ? o : "");
    free(o);

    /* One line per text, label TAB probability. */
    snprintf(args, sizeof args, "predict --model '%s' --text 'claim a FREE prize now!'", model);
    rc = cli_t_run("textcli", args, &o, &e);
    CHECK_MSG(rc == 0 && o && strncmp(o, "spam\t0.", 7) == 0 && cli_t_count_lines(o) == 1,
              "predict: %d %s %s", rc, o ? o : "", e ? e : "");
    free(o);
    free(e);
    const char lines[] = "see you at lunch\r\n\xff\xfe broken bytes\n\nwin cash";
    CHECK(cli_t_spit(in, lines, sizeof lines - 1));
    snprintf(args, sizeof args, "predict --model '%s' < '%s'", model, in);
    rc = cli_t_run("textcli", args, &o, &e);
    CHECK_MSG(rc == 0 && o && cli_t_count_lines(o) == 4 && strncmp(o, "ham\t", 4) == 0,
              "predict from stdin: %d %s %s", rc, o ? o : "", e ? e : "");
    if (o) {
        const char *last = strrchr(o, '\n');
        while (last > o && last[-1] != '\n') last--;
        CHECK(last && strncmp(last, "spam\t", 5) == 0);
    }
    free(o);
    free(e);

    /* Forget by label; the unlearned model still classifies text alone. */
    snprintf(args, sizeof args, "unlearn --model '%s' --data text --data-dir '%s' --forget "
             "class:spam --method ga --quiet --out '%s'", model, dir, forgot);
    rc = cli_t_run("textcli", args, &o, &e);
    CHECK_MSG(rc == 0, "unlearn class:spam exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "predict --model '%s' --text 'hello'", forgot);
    rc = cli_t_run("textcli", args, &o, NULL);
    CHECK(rc == 0 && o && cli_t_count_lines(o) == 1);
    free(o);
    snprintf(args, sizeof args, "eval --model '%s' --data text --data-dir '%s' --forget class:spam",
             model, dir);
    rc = cli_t_run("textcli", args, &o, &e);
    CHECK_MSG(rc == 0 && o && contains(o, "UA"), "eval class:spam: %d %s", rc, e ? e : "");
    free(o);
    free(e);
    snprintf(args, sizeof args, "eval --model '%s' --data text --data-dir '%s' --forget class:eggs",
             model, dir);
    EXPECT_FAIL(args, "text has no class 'eggs' (classes: ham … spam)");

    /* Another folder, other training words, the same test texts: eval reads
     * them with the model's vocabulary and gives the same table. */
    char *o2 = NULL;
    const char *other = test_path("textcli-other");
    mkdir(other, 0755);
    write_in(other, "train.tsv", "ham\tzebra zebra lunch lunch\nspam\tcash cash zebra\n");
    char test_tsv[4096];
    snprintf(test_tsv, sizeof test_tsv, "%s/test.tsv", dir);
    char *tt = cli_t_slurp(test_tsv, NULL);
    CHECK(tt != NULL);
    if (tt) write_in(other, "test.tsv", tt);
    free(tt);
    snprintf(args, sizeof args, "eval --model '%s' --data text --data-dir '%s'", model, dir);
    rc = cli_t_run("textcli", args, &o, NULL);
    snprintf(args, sizeof args, "eval --model '%s' --data text --data-dir '%s'", model, other);
    int rc2 = cli_t_run("textcli", args, &o2, &e);
    CHECK_MSG(rc == 0 && rc2 == 0 && o && o2 && strcmp(o, o2) == 0 && contains(o, "| 4 |"),
              "eval on another folder: %d %d\n%s\n%s\n%s", rc, rc2, o ? o : "", o2 ? o2 : "",
              e ? e : "");
    free(o);
    free(o2);
    free(e);

    /* Images for a text model, texts for an image model. */
    static const cli_t_mnist spec = {40, 20, 28, 7, 1, 2, 0, 0};
    CHECK(cli_t_write_mnist(mnist, &spec));
    snprintf(args, sizeof args, "eval --model '%s' --data mnist --data-dir '%s'", model, mnist);
    EXPECT_FAIL(args, "text-transformer is a text model, data set mnist holds images");
    snprintf(args, sizeof args, "unlearn --model '%s' --data mnist --data-dir '%s' --forget "
             "class:0 --method ga --out '%s' --force", model, mnist, forgot);
    EXPECT_FAIL(args, "a text-transformer model reads texts, data set mnist holds images");
    snprintf(args, sizeof args, "train --arch text-transformer --data mnist --data-dir '%s' "
             "--out '%s' --force", mnist, forgot);
    EXPECT_FAIL(args, "--arch text-transformer reads texts, --data mnist holds images");
    snprintf(args, sizeof args, "train --arch cnn --data text --data-dir '%s' --out '%s' "
             "--force", dir, forgot);
    EXPECT_FAIL(args, "--arch cnn reads images, --data text holds texts");
    lethe_model *m = NULL;
    CHECK_OK(lethe_model_create(&m, "cnn", 1, 28, 28, 10));
    lethe_metadata md = {0};
    CHECK_OK(lethe_meta_set(&md, "in_shape", "1,28,28"));
    if (m) CHECK_OK(lethe_checkpoint_save(m, &md, cnn));
    lethe_model_free(m);
    snprintf(args, sizeof args, "eval --model '%s' --data text --data-dir '%s'", cnn, dir);
    EXPECT_FAIL(args, "cnn is an image model, data set text holds texts");
    snprintf(args, sizeof args, "unlearn --model '%s' --data text --data-dir '%s' --forget "
             "class:0 --method ga --out '%s' --force", cnn, dir, forgot);
    EXPECT_FAIL(args, "a cnn model reads images, data set text holds texts");
    snprintf(args, sizeof args, "predict --model '%s' --text hi", cnn);
    EXPECT_FAIL(args, "a cnn model classifies 1x28x28 images, not text");
    snprintf(args, sizeof args, "unlearn --model '%s' --data mnist --data-dir '%s' --forget "
             "class:spam --method ga --out '%s' --force", cnn, mnist, forgot);
    EXPECT_FAIL(args, "mnist has no class names");
    EXPECT_FAIL("predict --text hi", "--model FILE is required");

    /* The reader's bad folders reach the command line as one line. */
    const char *bad = test_path("text-cli-bad");
    mkdir(bad, 0755);
    write_in(bad, "train.tsv", "a\tx y\nb\tz w\n");
    write_in(bad, "test.tsv", "a\tx\nc\ty\n");
    snprintf(args, sizeof args, "train --arch text-transformer --data text --data-dir '%s' "
             "--out '%s' --force", bad, forgot);
    EXPECT_FAIL(args, "test.tsv line 2: label 'c' is not a class of the training split");
    write_in(bad, "test.tsv", "");
    EXPECT_FAIL(args, "test.tsv: empty file");
    write_in(bad, "train.tsv", "");
    EXPECT_FAIL(args, "train.tsv: empty file");
}
