/* Evaluating a class-conditional generator with a classifier
 * (PROTOCOL.md "Generation"): generate per_class images of every class,
 * quantise them to bytes as a saved image would be, classify them, and
 * compare the classifier's penultimate features of the generated and the
 * real retained-class images (FD-cls: a Fréchet distance on this
 * classifier's features; not the Inception FID). */
#include "lethe.h"
#include "core/fail.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lethe_gen_eval_config_default(lethe_gen_eval_config *c)
{
    memset(c, 0, sizeof *c);
    c->per_class = 100;
    c->batch = 100;
    lethe_sample_config_default(&c->sample);
    c->sample.guidance = 2.0f;
    c->seed = 0;
}

void lethe_wilson95(long k, long n, double *lo, double *hi)
{
    if (n <= 0 || k < 0 || k > n) {
        *lo = *hi = NAN;
        return;
    }
    const double z = 1.959963984540054;     /* the 97.5% normal quantile */
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double den = 1.0 + z2 / nn, mid = (p + z2 / (2.0 * nn)) / den;
    double half = z * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / den;
    /* At the ends the interval touches the share itself: rounding must not
     * leave 0/n above its lower end or n/n below its upper one. */
    *lo = k == 0 ? 0.0 : mid - half > 0.0 ? mid - half : 0.0;
    *hi = k == n ? 1.0 : mid + half < 1.0 ? mid + half : 1.0;
}

lethe_status lethe_unet_eps(void *ctx, const float *x, const int32_t *t, const int32_t *y,
                            int n, float *eps_out)
{
    lethe_model *m = ctx;
    const float *out;
    lethe_status st = lethe_model_set_cond(m, t, y);
    if (st == LETHE_OK) st = lethe_model_forward(m, x, n, NULL, LETHE_BN_EVAL, &out);
    if (st == LETHE_OK) memcpy(eps_out, out, (size_t)n * lethe_model_out_size(m) * sizeof(float));
    return st;
}

lethe_status lethe_gen_sample_class(lethe_model *unet, const lethe_ddpm *s,
                                    const lethe_sample_config *sc, lethe_ddpm_sampler *w,
                                    int cls, int n, uint64_t seed, float *x)
{
    int nclass = lethe_model_nclass(unet);
    if (cls < 0 || cls > nclass)
        return lethe_fail(LETHE_ERR_ARG, "class %d is not in [0, %d]", cls, nclass);
    /* One noise stream per class: the same seed gives the same x_T for a
     * class before and after unlearning, so grids pair up row by row. */
    lethe_rng rng;
    lethe_rng_seed(&rng, seed * 1000003ULL + (uint64_t)cls + 1);
    int32_t y[LETHE_GEN_MAX_BATCH];
    lethe_status st = LETHE_OK;
    for (int done = 0; done < n && st == LETHE_OK;) {
        int b = n - done < w->max_batch ? n - done : w->max_batch;
        if (b > LETHE_GEN_MAX_BATCH) b = LETHE_GEN_MAX_BATCH;
        for (int i = 0; i < b; i++) y[i] = cls;
        st = lethe_ddpm_sample(s, sc, w, lethe_unet_eps, unet, nclass, y, b, &rng,
                               x + (size_t)done * (size_t)w->d);
        done += b;
    }
    return st;
}

/* x (n, d) in [−1, 1] → the classifier's input: bytes as saved, then the
 * data set's normalisation. */
static void to_classifier_input(float *out, const float *x, size_t n, const lethe_dataset *ref)
{
    for (size_t i = 0; i < n; i++) {
        float v = 255.0f * (x[i] + 1.0f) * 0.5f;
        v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        out[i] = (floorf(v + 0.5f) / 255.0f - ref->mean[0]) / ref->std[0];
    }
}

/* Classifier forward of xin (n, d): argmax into pred, features into feat. */
static lethe_status classify(lethe_model *clf, const float *xin, int n, int32_t *pred,
                             float *feat, int dim)
{
    const float *logits;
    lethe_status st = lethe_model_forward(clf, xin, n, NULL, LETHE_BN_EVAL, &logits);
    if (st != LETHE_OK) return st;
    int c = lethe_model_nclass(clf), fd = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < c; k++)
            if (logits[(size_t)i * c + k] > logits[(size_t)i * c + best]) best = k;
        pred[i] = best;
    }
    const float *f = lethe_model_features(clf, &fd);
    if (!f || fd != dim) return lethe_fail(LETHE_ERR_MISMATCH, "classifier features changed size");
    memcpy(feat, f, (size_t)n * (size_t)dim * sizeof(float));
    return LETHE_OK;
}

lethe_status lethe_gen_evaluate(lethe_model *unet, const lethe_ddpm *s, lethe_model *clf,
                                const lethe_dataset *real, uint64_t forget_mask,
                                const lethe_gen_eval_config *c, lethe_gen_metrics *out,
                                float *images)
{
    memset(out, 0, sizeof *out);
    int nclass = lethe_model_nclass(unet);
    int ic, ih, iw;
    lethe_model_input_shape(unet, &ic, &ih, &iw);
    int d = ic * ih * iw;
    if (nclass > LETHE_GEN_MAX_CLASSES)
        return lethe_fail(LETHE_ERR_ARG, "at most %d classes", LETHE_GEN_MAX_CLASSES);
    if (c->per_class < 2 || c->batch < 1 || c->batch > LETHE_GEN_MAX_BATCH)
        return lethe_fail(LETHE_ERR_ARG, "need >= 2 images per class and a batch in [1, %d]",
                          LETHE_GEN_MAX_BATCH);
    if (lethe_model_out_size(clf) != (size_t)lethe_model_nclass(clf))
        return lethe_fail(LETHE_ERR_MISMATCH, "the classifier '%s' predicts images, not classes",
                          lethe_model_arch(clf));
    if (c->sample.steps > s->T)
        return lethe_fail(LETHE_ERR_ARG, "%d sampling steps: the schedule has T = %d",
                          c->sample.steps, s->T);
    if (lethe_model_nclass(clf) != nclass)
        return lethe_fail(LETHE_ERR_MISMATCH, "the classifier has %d classes, the generator %d",
                          lethe_model_nclass(clf), nclass);
    lethe_status st = lethe_model_check_data(clf, real);
    if (st != LETHE_OK) return st;
    if (real->c * real->h * real->w != d)
        return lethe_fail(LETHE_ERR_MISMATCH, "generator images (%d values) and the real set's "
                          "(%d) differ", d, real->c * real->h * real->w);
    if ((forget_mask >> nclass) != 0 || forget_mask == ((1ULL << nclass) - 1))
        return lethe_fail(LETHE_ERR_ARG, "the forget mask must name some classes < %d, not all",
                          nclass);
    int bs = c->batch;
    if ((st = lethe_model_reserve(unet, 2 * bs)) != LETHE_OK ||
        (st = lethe_model_reserve(clf, bs)) != LETHE_OK)
        return st;
    /* The classifier's feature size, from one forward. */
    int dim = 0;
    {
        const float *lg;
        float *z = calloc((size_t)d, sizeof(float));
        if (!z) return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        st = lethe_model_forward(clf, z, 1, NULL, LETHE_BN_EVAL, &lg);
        free(z);
        if (st != LETHE_OK) return st;
        if (!lethe_model_features(clf, &dim) || dim < 1)
            return lethe_fail(LETHE_ERR_ARG, "classifier '%s' has no penultimate features",
                              lethe_model_arch(clf));
    }
    int pc = c->per_class, nkeep = 0;
    if (c->per_forget < 0)
        return lethe_fail(LETHE_ERR_ARG, "per_forget must be >= 0 (0: per_class), got %d",
                          c->per_forget);
    int pf = c->per_forget > 0 ? c->per_forget : pc;   /* images of each forgotten class */
    if (pf < 2) return lethe_fail(LETHE_ERR_ARG, "need >= 2 images per forgotten class");
    if (images && pf != pc)
        return lethe_fail(LETHE_ERR_ARG, "images are returned only with as many images of "
                          "every class (per_forget %d, per_class %d)", pf, pc);
    for (int k = 0; k < nclass; k++) nkeep += !((forget_mask >> k) & 1);
    size_t nreal_max = (size_t)real->n;
    int pmax = pf > pc ? pf : pc;
    /* (one class at a time, pmax, d); with images: (C·pc, d), class by class */
    float *gen = images ? images : malloc((size_t)pmax * d * sizeof(float));
    float *xin = malloc((size_t)bs * d * sizeof(float));            /* (bs, d) */
    int32_t *pred = malloc((size_t)(bs > pmax ? bs : pmax) * sizeof(int32_t));
    float *fgen = malloc((size_t)pc * nkeep * dim * sizeof(float));  /* (pc·kept, dim) */
    float *freal = malloc(nreal_max * dim * sizeof(float));          /* (≤ N, dim) */
    float *fb = malloc((size_t)bs * dim * sizeof(float));            /* (bs, dim) */
    int32_t *idx = malloc((size_t)bs * sizeof(int32_t));
    int32_t *yb = malloc((size_t)bs * sizeof(int32_t));
    lethe_ddpm_sampler w = {0};
    if (!gen || !xin || !pred || !fgen || !freal || !fb || !idx || !yb) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for generation metrics");
        goto done;
    }
    if ((st = lethe_ddpm_sampler_init(&w, bs, d)) != LETHE_OK) goto done;

    int kept_rows = 0;
    double acc_keep = 0.0, acc_forget = 0.0;
    int nforget = 0, correct_forget = 0;
    for (int k = 0; k < nclass; k++) {
        int forgotten = (forget_mask >> k) & 1, nk = forgotten ? pf : pc;
        float *gk = images ? gen + (size_t)k * pc * d : gen;
        if ((st = lethe_gen_sample_class(unet, s, &c->sample, &w, k, nk, c->seed, gk)) != LETHE_OK)
            goto done;
        out->fwd_samples += (long)nk * c->sample.steps * (c->sample.guidance != 1.0f ? 2 : 1);
        int correct = 0;
        for (int o = 0; o < nk; o += bs) {
            int b = nk - o < bs ? nk - o : bs;
            to_classifier_input(xin, gk + (size_t)o * d, (size_t)b * d, real);
            if ((st = classify(clf, xin, b, pred, fb, dim)) != LETHE_OK) goto done;
            for (int i = 0; i < b; i++) correct += pred[i] == k;
            if (!((forget_mask >> k) & 1)) {
                memcpy(fgen + (size_t)kept_rows * dim, fb, (size_t)b * dim * sizeof(float));
                kept_rows += b;
            }
        }
        out->acc[k] = 100.0 * correct / nk;
        if (forgotten) {
            acc_forget += out->acc[k];
            correct_forget += correct;
            nforget++;
        } else {
            acc_keep += out->acc[k];
        }
    }
    out->nclass = nclass;
    out->per_class = pc;
    out->forget_mask = forget_mask;
    out->ua_gen = nforget ? 100.0 - acc_forget / nforget : NAN;
    out->n_forget = nforget ? pf : 0;
    out->ua_gen_lo = out->ua_gen_hi = NAN;
    if (nforget) {
        /* Wilson's 95% interval of the share not assigned to its class,
         * over all forgotten classes' images together. */
        long n = (long)pf * nforget;
        lethe_wilson95(n - correct_forget, n, &out->ua_gen_lo, &out->ua_gen_hi);
        out->ua_gen_lo *= 100.0;
        out->ua_gen_hi *= 100.0;
    }
    out->acc_retained = acc_keep / nkeep;

    /* Real retained-class images of the reference split. */
    int nreal = 0, nb = 0;
    for (int i = 0; i <= real->n; i++) {
        if (i < real->n && !((forget_mask >> real->labels[i]) & 1)) idx[nb++] = i;
        if (nb == bs || (i == real->n && nb > 0)) {
            lethe_dataset_batch(real, idx, nb, xin, yb);
            if ((st = classify(clf, xin, nb, pred, freal + (size_t)nreal * dim, dim)) != LETHE_OK)
                goto done;
            nreal += nb;
            nb = 0;
        }
    }
    out->n_real = nreal;
    out->fd_cls_real = NAN;
    if ((st = lethe_frechet_distance(freal, nreal, fgen, kept_rows, dim, &out->fd_cls)) !=
        LETHE_OK)
        goto done;
    if (c->floor_set) {
        /* The floor: as many real images of the same classes, in place of
         * the generated ones (the first per_class of each, in file order). */
        const lethe_dataset *fs = c->floor_set;
        int rows = 0;
        nb = 0;
        for (int k = 0; k < nclass; k++) {
            if ((forget_mask >> k) & 1) continue;
            int got = 0;
            for (int i = 0; i <= fs->n && got < pc; i++) {
                int take = i < fs->n && fs->labels[i] == k;
                if (take) idx[nb++] = i, got++;
                if (nb == bs || (nb > 0 && (i == fs->n || got == pc))) {
                    lethe_dataset_batch(fs, idx, nb, xin, yb);
                    if ((st = classify(clf, xin, nb, pred, fgen + (size_t)rows * dim, dim)) !=
                        LETHE_OK)
                        goto done;
                    rows += nb;
                    nb = 0;
                }
            }
        }
        if (rows >= 2)
            st = lethe_frechet_distance(freal, nreal, fgen, rows, dim, &out->fd_cls_real);
        out->n_floor = rows;
    }
done:
    lethe_ddpm_sampler_free(&w);
    if (!images) free(gen);
    free(xin);
    free(pred);
    free(fgen);
    free(freal);
    free(fb);
    free(idx);
    free(yb);
    return st;
}
