/*
 * Settings by name: the options every method takes, those of the surgery
 * family (ε, and λ's rule for the EUPMU family), and the machinery that
 * reads, checks and prints any option, a method's own included (declared
 * in its file: ul_method.params). The command line, the settings file,
 * sweeps, tuning grids and reports go through here, so an option is
 * declared once.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unlearn/method.h"
#include "core/fail.h"

#define FIELD UL_FIELD
#define REAL UL_REAL
#define CHOICE UL_CHOICE

/* Every method's. */
static const lethe_param common[] = {
    {"steps", NULL, LETHE_PARAM_INT, "N", "steps T (default 5·ceil(|D_f|/batch))", NULL, 0, 1e9,
     0, 0, NULL, LETHE_STORE_LONG, FIELD(steps), 0},
    {"batch", NULL, LETHE_PARAM_INT, "N", "batch per set and step (default 128)", NULL, 1, 4096,
     0, 0, NULL, LETHE_STORE_I32, FIELD(batch), 0},
    REAL("lr", NULL, lr, 0, 1, FLT_MAX, 0, NULL, "learning rate α (default 0.01, or the tuned value)"),
    CHOICE("schedule", NULL, schedule, "constant|cosine|step", "α's schedule (default constant)"),
    REAL("momentum", NULL, momentum, 0, 0, 1, 1, NULL,
         "SGD momentum (default 0: plain SGD, as the theory assumes)"),
    CHOICE("optim", NULL, optim, "sgd|adam,adamw", "the optimiser of the steps (default sgd)"),
    REAL("adam_beta1", NULL, adam_beta1, 0, 0, 1, 1, NULL, "Adam's β1 (default 0.9)"),
    REAL("adam_beta2", NULL, adam_beta2, 0, 0, 1, 1, NULL, "Adam's β2 (default 0.999)"),
    REAL("wd", "weight_decay", weight_decay, 0, 0, 10, 0, NULL,
         "weight decay (Adam: decoupled, AdamW's; default 0)"),
    REAL("clip_grad", NULL, clip_grad, 0, 0, 1e9, 0, NULL,
         "scale each step's direction to norm ≤ X (default 0: off)"),
    REAL("retain_weight", NULL, retain_weight, 0, 1, 1e9, 0, NULL,
         "diffusion: ℓ_r = X·denoising MSE, in every method (default 1)"),
    {"seed", NULL, LETHE_PARAM_INT, "N", "seed of batches and random labels (default 0)", NULL, 0,
     9.2e18, 0, 0, NULL, LETHE_STORE_U64, FIELD(seed), 0},
    CHOICE("bn_running", NULL, bn_running, "all|retain|frozen",
           "batch norm's running averages move with every batch, forget batches too (all, "
           "the default), with the retain batches only (retain), or stay and normalise "
           "every batch (frozen: evaluation mode)"),
};

/* The surgery family (uses_eps: eupmu*, ungrad*): ℓ_u's kind, ε, D. */
static const lethe_param surgery[] = {
    CHOICE("loss", NULL, loss, "rl|ga|nc", "the unlearning loss ℓ_u (default rl)"),
    REAL("eps", NULL, eps, 0, 0, 1e6, 0, NULL,
         "ε, the tolerated retain-loss increase rate (default 0.01)"),
    REAL("eps_budget", NULL, eps_budget, 0, 0, 1e6, 0, NULL,
         "ε_max: choose ε_t so that Σ α_t ε_t = ε_max (default 0: off)"),
    REAL("lambda_max", NULL, lambda_max, 0, 1, 1e6, 0, NULL, "clip bound D of λ (default 100)"),
};

/* λ's rule (has_lambda_form: the EUPMU family). */
static const lethe_param lambda_rule[] = {
    REAL("beta", NULL, beta, 0, 0, 1e6, 0, NULL, "β_0 of the λ update (default 1)"),
    CHOICE("beta_schedule", "beta_decay", beta_decay, "constant|decay",
           "decay (β_0·α_t·(t+1)^-1/3, the default) | constant"),
    REAL("lambda0", NULL, lambda0, 0, 0, 1e6, 0, NULL, "initial λ (default 1)"),
    CHOICE("lambda_form", NULL, lambda_form, "paper|log",
           "paper (§3, default) | log (the authors' code, §7)"),
    REAL("w0", NULL, w0, -1e6, 0, 1e6, 0, NULL, "log form: initial weight w of log ℓ_r (default 0)"),
    REAL("w_lr", NULL, w_lr, 0, 1, 1e3, 0, NULL, "log form: Adam learning rate of w (default 0.025)"),
    REAL("w_decay", NULL, w_decay, 0, 0, 1e3, 0, NULL, "log form: weight decay of w (default 0.01)"),
};

#define N(a) ((int)(sizeof a / sizeof a[0]))

/* ------------------------------------------------------------ lookup */

/* name equals s, reading '-' as '_'. */
static int same_name(const char *name, const char *s)
{
    if (!name) return 0;
    for (; *name && *s; name++, s++)
        if (*name != *s && !(*name == '_' && *s == '-')) return 0;
    return !*name && !*s;
}

static int add(const lethe_param **out, int k, int max, const lethe_param *t, int n)
{
    for (int i = 0; i < n; i++) {
        if (k < max) out[k] = &t[i];
        k++;
    }
    return k;
}

int lethe_method_params(const char *method, const lethe_param **out, int max)
{
    const ul_method *m = method ? ul_find_method(method) : NULL;
    if (!m) return -1;
    int k = add(out, 0, max, common, N(common));
    if (m->uses_eps) k = add(out, k, max, surgery, N(surgery));
    if (m->has_lambda_form) k = add(out, k, max, lambda_rule, N(lambda_rule));
    return add(out, k, max, m->params, m->nparams);
}

int lethe_all_params(const lethe_param **out, int max)
{
    int k = add(out, 0, max, common, N(common));
    k = add(out, k, max, surgery, N(surgery));
    k = add(out, k, max, lambda_rule, N(lambda_rule));
    int nm;
    const ul_method *const *reg = ul_registry(&nm);
    for (int i = 0; i < nm; i++)
        for (int j = 0; j < reg[i]->nparams; j++) {
            /* A method's option may share a name with another's (each its own slot). */
            int seen = 0;
            for (int q = 0; q < k && q < max && !seen; q++)
                seen = strcmp(out[q]->name, reg[i]->params[j].name) == 0;
            if (!seen) k = add(out, k, max, &reg[i]->params[j], 1);
        }
    return k;
}

/* The option called `name` among those `method` takes (NULL: any method's). */
static const lethe_param *find_in(const char *method, const char *name)
{
    const lethe_param *all[128];
    int n = method ? lethe_method_params(method, all, N(all)) : lethe_all_params(all, N(all));
    if (n > N(all)) n = N(all);
    for (int i = 0; i < n; i++)
        if (same_name(all[i]->name, name) || same_name(all[i]->alias, name)) return all[i];
    return NULL;
}

const lethe_param *lethe_param_find(const char *name) { return find_in(NULL, name); }

int lethe_method_takes(const char *method, const lethe_param *p)
{
    const lethe_param *all[128];
    int n = lethe_method_params(method, all, N(all));
    for (int i = 0; i < n && i < N(all); i++)
        if (all[i] == p) return 1;
    return 0;
}

const char *lethe_method_summary(const char *method)
{
    const ul_method *m = method ? ul_find_method(method) : NULL;
    return m ? m->summary : NULL;
}

/* ------------------------------------------------------- get and set */

static void *slot(lethe_unlearn_config *c, const lethe_param *p)
{
    if (p->store == LETHE_STORE_OPT) return &c->method_opt[p->offset];
    return (char *)c + p->offset;
}

double lethe_unlearn_get(const lethe_unlearn_config *c, const lethe_param *p)
{
    const void *v = slot((lethe_unlearn_config *)c, p);
    switch (p->store) {
    case LETHE_STORE_F32: return *(const float *)v;
    case LETHE_STORE_I32: return *(const int *)v;
    case LETHE_STORE_LONG: return (double)*(const long *)v;
    case LETHE_STORE_U64: return (double)*(const uint64_t *)v;
    case LETHE_STORE_OPT: {
        float x = *(const float *)v;
        return isnan(x) ? (double)(float)p->def : x;
    }
    }
    return NAN;
}

/* The k-th choice's first spelling into buf. */
static const char *choice_name(const char *choices, int k, char *buf, size_t n)
{
    const char *p = choices;
    for (int i = 0; i < k && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p) return "?";
    size_t len = strcspn(p, "|,");
    snprintf(buf, n, "%.*s", (int)len, p);
    return buf;
}

/* The index of `text` among the choices (any spelling), or −1. */
static int choice_index(const char *choices, const char *text)
{
    int k = 0;
    for (const char *p = choices; *p; k++) {
        size_t len = strcspn(p, "|");
        for (const char *q = p; q < p + len;) {
            size_t w = strcspn(q, ",|");
            if (w == strlen(text) && strncmp(q, text, w) == 0) return k;
            q += w + (q[w] == ',');
        }
        p += len + (p[len] == '|');
    }
    return -1;
}

lethe_status lethe_unlearn_get_text(const lethe_unlearn_config *c, const lethe_param *p,
                                    char *buf, size_t n)
{
    if (!c || !p || !buf || !n)
        return lethe_fail(LETHE_ERR_ARG, "lethe_unlearn_get_text: NULL argument or no buffer");
    buf[0] = '\0';
    char text[LETHE_PARAM_TEXT_MAX];
    double v = lethe_unlearn_get(c, p);
    if (p->type == LETHE_PARAM_CHOICE) {
        /* choice_name answers "?" (not text) past the last choice. */
        if (!(v >= 0) || choice_name(p->choices, (int)v, text, sizeof text) != text)
            return lethe_fail(LETHE_ERR_ARG, "option %s: value %g is none of its choices (%s)",
                              p->name, v, p->choices);
    } else if (p->store == LETHE_STORE_U64) {
        snprintf(text, sizeof text, "%llu",
                 (unsigned long long)*(const uint64_t *)slot((lethe_unlearn_config *)c, p));
    } else if (p->type == LETHE_PARAM_INT) {
        snprintf(text, sizeof text, "%.0f", v);
    } else {
        /* The shortest text that reads back as the same float. */
        for (int prec = 1; prec <= 9; prec++) {
            snprintf(text, sizeof text, "%.*g", prec, v);
            if (strtof(text, NULL) == (float)v) break;
        }
    }
    size_t len = (size_t)snprintf(buf, n, "%s", text);
    if (len >= n)
        return lethe_fail(LETHE_ERR_ARG, "option %s: its text '%s' does not fit a buffer of %zu "
                          "bytes (LETHE_PARAM_TEXT_MAX always does)", p->name, text, n);
    return LETHE_OK;
}

/* The methods that take p, comma-joined. */
static void takers(const lethe_param *p, char *buf, size_t n)
{
    int nm;
    const ul_method *const *reg = ul_registry(&nm);
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < nm && k < n; i++)
        if (lethe_method_takes(reg[i]->name, p))
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "", reg[i]->name);
}

/* The option `name` of c->method, or NULL after failing with the reason. */
static const lethe_param *resolve(const lethe_unlearn_config *c, const char *name,
                                  lethe_status *st)
{
    const char *method = c->method ? c->method : "(none)";
    if (!ul_find_method(method)) {
        *st = lethe_fail(LETHE_ERR_ARG, "option '%s': unknown method '%s'", name, method);
        return NULL;
    }
    const lethe_param *p = find_in(method, name);
    if (p) return p;
    const lethe_param *other = lethe_param_find(name);
    if (other) {
        char who[512];
        takers(other, who, sizeof who);
        *st = lethe_fail(LETHE_ERR_ARG, "%s has no option '%s' (it is an option of %s)", method,
                         other->name, who);
        return NULL;
    }
    /* The nearest name of the method's options: a typo of one letter or two. */
    const lethe_param *all[128];
    int n = lethe_method_params(method, all, N(all));
    const char *best = NULL;
    int bestd = 3;
    for (int i = 0; i < n && i < N(all); i++) {
        int d = ul_edit_distance(name, all[i]->name);
        if (d < bestd) bestd = d, best = all[i]->name;
    }
    if (best)
        *st = lethe_fail(LETHE_ERR_ARG, "%s has no option '%s' (did you mean '%s'?)", method,
                         name, best);
    else
        *st = lethe_fail(LETHE_ERR_ARG, "%s has no option '%s'", method, name);
    return NULL;
}

static lethe_status out_of_range(const lethe_unlearn_config *c, const lethe_param *p,
                                 const char *text)
{
    return lethe_fail(LETHE_ERR_ARG, "%s: option %s must be %s in %c%g, %g%c, got %s", c->method,
                      p->name, p->type == LETHE_PARAM_INT ? "a whole number" : "a number",
                      p->lo_open ? '(' : '[', p->lo, p->hi, p->hi_open ? ')' : ']', text);
}

static int in_range(const lethe_param *p, double v)
{
    if (!isfinite(v)) return 0;
    if (p->lo_open ? !(v > p->lo) : !(v >= p->lo)) return 0;
    if (p->hi_open ? !(v < p->hi) : !(v <= p->hi)) return 0;
    return 1;
}

/* Store v (already checked) in c. */
static void store(lethe_unlearn_config *c, const lethe_param *p, double v, uint64_t u)
{
    void *s = slot(c, p);
    switch (p->store) {
    case LETHE_STORE_F32:
    case LETHE_STORE_OPT: *(float *)s = (float)v; break;
    case LETHE_STORE_I32: *(int *)s = (int)v; break;
    case LETHE_STORE_LONG: *(long *)s = (long)v; break;
    case LETHE_STORE_U64: *(uint64_t *)s = u; break;
    }
}

lethe_status lethe_unlearn_set(lethe_unlearn_config *c, const char *name, const char *value)
{
    lethe_status st = LETHE_OK;
    if (!c || !name || !value) return lethe_fail(LETHE_ERR_ARG, "lethe_unlearn_set: NULL argument");
    if (strcmp(name, "method") == 0) {
        /* The registry's own name, which outlives `value`. */
        const ul_method *m = ul_find_method(value);
        if (!m) return ul_unknown_method(value);
        c->method = m->name;
        /* Its own defaults of shared options ("lr=0.001;…"), if it has any. */
        char buf[256], *save;
        snprintf(buf, sizeof buf, "%s", m->defaults ? m->defaults : "");
        for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq) continue;
            *eq = 0;
            if ((st = lethe_unlearn_set(c, kv, eq + 1)) != LETHE_OK) return st;
        }
        return LETHE_OK;
    }
    const lethe_param *p = resolve(c, name, &st);
    if (!p) return st;
    if (p->type == LETHE_PARAM_CHOICE) {
        int k = choice_index(p->choices, value);
        if (k < 0) {
            /* The first spelling of each: "sgd, adam". */
            char list[128], nm[32];
            size_t at = 0;
            for (int i = 0; at < sizeof list && choice_index(p->choices, choice_name(
                                 p->choices, i, nm, sizeof nm)) == i; i++)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", nm);
            return lethe_fail(LETHE_ERR_ARG, "%s: option %s must be one of %s, got '%s'",
                              c->method, p->name, list, value);
        }
        store(c, p, k, 0);
        return LETHE_OK;
    }
    char *end;
    errno = 0;
    if (p->store == LETHE_STORE_U64) {
        if (value[0] == '-') return out_of_range(c, p, value);
        unsigned long long u = strtoull(value, &end, 10);
        if (errno || end == value || *end) return out_of_range(c, p, value);
        store(c, p, 0, (uint64_t)u);
        return LETHE_OK;
    }
    double v = strtod(value, &end);
    if (errno || end == value || *end || !in_range(p, v) ||
        (p->type == LETHE_PARAM_INT && v != floor(v)))
        return out_of_range(c, p, value);
    store(c, p, v, 0);
    return LETHE_OK;
}

lethe_status lethe_unlearn_set_number(lethe_unlearn_config *c, const char *name, double v)
{
    lethe_status st = LETHE_OK;
    if (!c || !name) return lethe_fail(LETHE_ERR_ARG, "lethe_unlearn_set_number: NULL argument");
    const lethe_param *p = resolve(c, name, &st);
    if (!p) return st;
    char text[64];
    snprintf(text, sizeof text, "%.17g", v);
    if (p->type == LETHE_PARAM_CHOICE) {
        char nm[32];
        int nchoice = 1;
        for (const char *q = p->choices; *q; q++) nchoice += *q == '|';
        if (!(v >= 0 && v < nchoice && v == floor(v)))
            return lethe_fail(LETHE_ERR_ARG, "%s: option %s takes a name (%s), got %s", c->method,
                              p->name, choice_name(p->choices, 0, nm, sizeof nm), text);
        store(c, p, v, 0);
        return LETHE_OK;
    }
    /* A float slot cannot hold what is beyond FLT_MAX (the conversion
     * itself would be undefined). */
    int f32 = p->store == LETHE_STORE_F32 || p->store == LETHE_STORE_OPT;
    if (!in_range(p, v) || (p->type == LETHE_PARAM_INT && v != floor(v)) ||
        (f32 && fabs(v) > FLT_MAX))
        return out_of_range(c, p, text);
    /* Only a u64 slot reads u: a real's value may be beyond uint64_t. */
    uint64_t u = p->store == LETHE_STORE_U64 && v >= 0 && v < 0x1p64 ? (uint64_t)v : 0;
    store(c, p, v, u);
    return LETHE_OK;
}

lethe_status ul_check_params(const lethe_unlearn_config *c)
{
    const lethe_param *all[128];
    int n = lethe_method_params(c->method, all, N(all));
    for (int i = 0; i < n && i < N(all); i++) {
        const lethe_param *p = all[i];
        if (p->type == LETHE_PARAM_CHOICE || p->store == LETHE_STORE_U64) continue;
        if (p->store == LETHE_STORE_OPT && isnan(c->method_opt[p->offset])) continue;
        double v = lethe_unlearn_get(c, p);
        if (!in_range(p, v) || (p->type == LETHE_PARAM_INT && v != floor(v))) {
            char text[64];
            snprintf(text, sizeof text, "%.9g", v);
            return out_of_range(c, p, text);
        }
    }
    return LETHE_OK;
}

int ul_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 99;
    int d[41][41];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int ca = a[i - 1] == '-' ? '_' : a[i - 1], cb = b[j - 1] == '-' ? '_' : b[j - 1];
            int v = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}
