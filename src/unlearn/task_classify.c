/*
 * The classification task: a row is an image and its label, the model's
 * outputs are class logits, and every loss kind (CE, −CE, the
 * negative-class loss) reads them against the row's target yt.
 */
#include "unlearn/method.h"

static float classify_loss(ul_ctx *c, lethe_loss_kind k, int from, int count, float weight,
                           int grad)
{
    for (int i = 0; i < count; i++) c->w[from + i] = weight;
    size_t off = (size_t)from * (size_t)c->nclass;
    lethe_loss(k, c->losses + from, grad ? c->dlogits + off : NULL, c->logits + off,
               c->yt + from, c->w + from, count, c->nclass);
    double s = 0.0;
    for (int i = 0; i < count; i++) s += c->losses[from + i];
    return (float)(s / count);
}

static float classify_eval_loss(ul_ctx *c, const float *out, int from, int count)
{
    lethe_loss(LETHE_LOSS_CE, c->losses + from, NULL, out, c->yt + from, NULL, count,
               c->nclass);
    double s = 0.0;
    for (int i = 0; i < count; i++) s += c->losses[from + i];
    return (float)(s / count);
}

const ul_task ul_task_classify = {
    .name = "classification",
    .loss = classify_loss,
    .eval_loss = classify_eval_loss,
};
