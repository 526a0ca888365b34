/* lethe predict: classify texts with a text model's checkpoint alone (its
 * vocabulary and class names ride in it as "text.vocab"): --text "…", or
 * one text a line from standard input; one line out per text,
 * label<TAB>probability (the softmax of the predicted class, 6 decimals). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/text.h"
#include "nn/model.h"

static const cli_opt opts[] = {
    {"model", "FILE", "a text model's checkpoint (lethe train --data text|sms-spam; required)", 0},
    {"text", "TEXT", "the text to classify; without it, one text a line from standard input "
                     "(a '\\r' before the '\\n' dropped)", 0},
    {"quiet", NULL, "no effect: predict prints only its answers", 1},
    CLI_NOTE("Texts are read as the training split's were (docs/PROTOCOL.md, \"Text data\"): "
             "invalid UTF-8 bytes become U+FFFD, words beyond the model's tokens per text are "
             "dropped, unknown words are <unk>; an empty text is one <unk>."),
    CLI_EXAMPLE("lethe predict --model runs/sms.safetensors --text \"WIN a free prize, call now\""),
    CLI_EXAMPLE("lethe predict --model runs/sms.safetensors < messages.txt"),
    {NULL, NULL, NULL, 0},
};

typedef struct {
    lethe_model *m;
    text_vocab v;
    text_classes c;
    int32_t *ids;   /* (T) */
    uint8_t *mask;  /* (T) */
    float *x;       /* (T) unread: the ids go by lethe_model_set_tokens */
} predictor;

/* Classify n bytes of s and print its line. */
static lethe_status predict_one(predictor *p, const char *s, size_t n)
{
    const int T = p->v.cfg.max_len, k = p->c.n;
    int cut;
    text_encode(&p->v, s, n, p->ids, &cut);
    for (int t = 0; t < T; t++) p->mask[t] = p->ids[t] != TEXT_PAD;
    const float *lg;
    lethe_status st = lethe_model_set_tokens(p->m, p->ids, p->mask);
    if (st == LETHE_OK) st = lethe_model_forward(p->m, p->x, 1, NULL, LETHE_BN_EVAL, &lg);
    if (st != LETHE_OK) return st;
    int best = 0;
    for (int j = 1; j < k; j++)
        if (lg[j] > lg[best]) best = j;
    double z = 0.0;
    for (int j = 0; j < k; j++) z += exp((double)lg[j] - lg[best]);
    printf("%s\t%.6f\n", p->c.name[best], 1.0 / z);
    return LETHE_OK;
}

int cmd_predict(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "predict", "--model FILE [--text TEXT]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *path = cli_str(&a, "model", NULL);
    if (!path) return cli_usage_error("predict", "--model FILE is required");
    predictor p = {0};
    lethe_metadata md = {0};
    lethe_status st = cli_open_model(path, &p.m, &md);
    if (st != LETHE_OK) return cli_lib_error("predict", st);
    int rc = 1;
    size_t len;
    const char *blob = nn_model_vocab(p.m, &len);
    if (!blob) {
        int c, h, w;
        lethe_model_input_shape(p.m, &c, &h, &w);
        rc = h != 1 ? cli_error("predict", "%s: a %s model classifies %dx%dx%d images, not text "
                                "(predict takes a text model: lethe train --arch "
                                "text-transformer --data text|sms-spam)", path,
                                lethe_model_arch(p.m), c, h, w)
                    : cli_error("predict", "%s: holds no vocabulary (text.vocab) to read text "
                                "with: a model trained by lethe train --data text|sms-spam "
                                "has one", path);
        goto done;
    }
    if ((st = text_vocab_read(&p.v, &p.c, blob, len)) != LETHE_OK) goto fail;
    const int T = p.v.cfg.max_len;
    p.ids = malloc((size_t)T * sizeof *p.ids);
    p.mask = malloc((size_t)T);
    p.x = calloc((size_t)T, sizeof *p.x);
    if (!p.ids || !p.mask || !p.x) {
        rc = cli_error("predict", "out of memory");
        goto done;
    }
    if ((st = lethe_model_reserve(p.m, 1)) != LETHE_OK) goto fail;
    const char *text = cli_str(&a, "text", NULL);
    if (text) {
        if ((st = predict_one(&p, text, strlen(text))) != LETHE_OK) goto fail;
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        long no = 0;
        while ((n = getline(&line, &cap, stdin)) >= 0) {
            no++;
            if (n > 0 && line[n - 1] == '\n') n--;
            if (n > 0 && line[n - 1] == '\r') n--;
            if ((size_t)n > TEXT_MAX_LINE) {
                free(line);
                rc = cli_error("predict", "standard input line %ld: %zd bytes, over the limit "
                               "of %d", no, n, TEXT_MAX_LINE);
                goto done;
            }
            if ((st = predict_one(&p, line, (size_t)n)) != LETHE_OK) {
                free(line);
                goto fail;
            }
        }
        free(line);
    }
    if (fflush(stdout) != 0) {
        rc = cli_error("predict", "standard output: write failed");
        goto done;
    }
    rc = 0;
    goto done;
fail:
    rc = cli_lib_error("predict", st);
done:
    free(p.ids);
    free(p.mask);
    free(p.x);
    text_vocab_free(&p.v);
    text_classes_free(&p.c);
    lethe_model_free(p.m);
    return rc;
}
