/* lethe tune: the small grid of PROTOCOL.md for one method and scenario;
 * the setting with the smallest Avg. Gap wins and, with --write, goes into
 * the versioned settings file that bench reads. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/protocol.h"
#include "cli/report.h"

static const cli_opt opts[] = {
    {"method", "NAME", "method to tune", 0},
    {"scenario", "NAME", "fmnist-cw | fmnist-rnd", 0},
    {"grid", "SPEC", "e.g. 'lr=0.005,0.01;eps=0.01,0.1' (default: the method's grid)", 0},
    {"tuned", "FILE", "settings file (default configs/tuned.json)", 0},
    {"write", NULL, "store the best setting in the settings file", 1},
    {"cache", "DIR", "cached original/Retrain models (default runs/cache)", 0},
    {"data-dir", "DIR", "folder of the data set", 0},
    {"epochs", "N", "epochs of the original/Retrain recipe (default 8)", 0},
    {"seed", "N", "seed (default 0)", 0},
    {"quiet", NULL, "no progress on stderr", 1},
    {NULL, NULL, NULL, 0},
};

/* Default grids: learning rate, and ε for the surgery methods. */
static const struct { const char *method, *grid; } grids[] = {
    {"eupmu", "lr=0.005,0.01,0.02,0.05;eps=0.01,0.1,0.5"},
    {"eupmu-fast", "lr=0.005,0.01,0.02,0.05;eps=0.01,0.1,0.5"},
    {"eupmu-lookahead", "lr=0.005,0.01,0.02,0.05;eps=0.01,0.1,0.5"},
    {"ungrad", "lr=0.005,0.01,0.02,0.05;eps=0.01,0.1,0.5"},
    {"ungrad-mixed", "lr=0.005,0.01,0.02,0.05;eps=0.01,0.1,0.5"},
    {"ft", "lr=0.01,0.02,0.05,0.1,0.2"},
    {"ga", "lr=0.0001,0.0003,0.001,0.003"},
    {"rl", "lr=0.002,0.005,0.01,0.02,0.05"},
    {"salun", "lr=0.002,0.005,0.01,0.02,0.05"},
    {"neggrad+", "lr=0.001,0.003,0.01,0.02;a=0.9,0.95,0.99"},
    {"l1-sparse", "lr=0.01,0.02,0.05;l1=0.0001,0.0005"},
};

#define MAX_PARAMS 4
#define MAX_VALUES 16
typedef struct {
    int np;
    char name[MAX_PARAMS][32];
    int nv[MAX_PARAMS];
    double v[MAX_PARAMS][MAX_VALUES];
} grid_spec;

static lethe_status parse_grid(const char *text, grid_spec *g)
{
    memset(g, 0, sizeof *g);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", text);
    char *s1, *s2;
    for (char *part = strtok_r(buf, ";", &s1); part; part = strtok_r(NULL, ";", &s1)) {
        char *eq = strchr(part, '=');
        if (!eq || g->np >= MAX_PARAMS)
            return lethe_fail(LETHE_ERR_ARG, "--grid: expected 'name=v1,v2;name=…', got '%s'", part);
        *eq = 0;
        snprintf(g->name[g->np], sizeof g->name[0], "%s", part);
        lethe_unlearn_config probe;
        lethe_unlearn_config_default(&probe);
        if (proto_set_param(&probe, part, 1.0) != LETHE_OK) return LETHE_ERR_ARG;
        for (char *v = strtok_r(eq + 1, ",", &s2); v; v = strtok_r(NULL, ",", &s2)) {
            char *end;
            double x = strtod(v, &end);
            if (end == v || *end || !isfinite(x) || g->nv[g->np] >= MAX_VALUES)
                return lethe_fail(LETHE_ERR_ARG, "--grid: bad value '%s' for %s", v, part);
            g->v[g->np][g->nv[g->np]++] = x;
        }
        if (!g->nv[g->np]) return lethe_fail(LETHE_ERR_ARG, "--grid: no values for %s", part);
        g->np++;
    }
    return g->np ? LETHE_OK : lethe_fail(LETHE_ERR_ARG, "--grid: empty");
}

static lethe_status write_best(const char *path, const char *scn, const char *method,
                               const grid_spec *g, const int *best)
{
    cJSON *root = NULL;
    FILE *f = fopen(path, "rb");
    if (f) {
        char *buf = malloc(1 << 20);
        size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
        fclose(f);
        if (buf) {
            buf[n] = 0;
            root = cJSON_Parse(buf);
            free(buf);
        }
        if (!root) return lethe_fail(LETHE_ERR_FORMAT, "%s: not valid JSON, not overwriting", path);
    } else {
        root = cJSON_CreateObject();
    }
    cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, scn);
    if (!sc) sc = cJSON_AddObjectToObject(root, scn);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(sc, method);
    if (!m) m = cJSON_AddObjectToObject(sc, method);
    for (int k = 0; k < g->np; k++) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, g->name[k]);
        cJSON_AddNumberToObject(m, g->name[k], g->v[k][best[k]]);
    }
    lethe_status st = report_write(path, root);
    cJSON_Delete(root);
    return st;
}

int cmd_tune(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse(&a, "tune", "--method NAME --scenario NAME [options]", opts, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    const char *method = cli_str(&a, "method", NULL), *scn = cli_str(&a, "scenario", NULL);
    if (!method || !scn) return cli_error("tune", "--method and --scenario are required");
    const proto_scenario *sc = proto_find(scn);
    if (!sc) return cli_error("tune", "unknown scenario '%s' (fmnist-cw, fmnist-rnd)", scn);
    long epochs, seed;
    if (cli_int(&a, "epochs", 8, 1, 1000, &epochs) || cli_int(&a, "seed", 0, 0, LONG_MAX, &seed))
        return 2;
    const char *tuned = cli_str(&a, "tuned", "configs/tuned.json");
    const char *gtext = cli_str(&a, "grid", NULL);
    for (size_t i = 0; !gtext && i < sizeof grids / sizeof grids[0]; i++)
        if (strcmp(grids[i].method, method) == 0) gtext = grids[i].grid;
    lethe_unlearn_config base;
    lethe_unlearn_config_default(&base);
    base.method = method;
    base.seed = (uint64_t)seed;
    lethe_status st = proto_tuned(tuned, scn, method, &base);
    if (st == LETHE_OK) st = lethe_unlearn_validate(&base);
    if (st != LETHE_OK) return cli_lib_error("tune", st);
    if (!gtext) return cli_error("tune", "no default grid for '%s': give --grid", method);
    grid_spec g;
    if ((st = parse_grid(gtext, &g)) != LETHE_OK) return cli_lib_error("tune", st);

    proto_ctx p;
    if ((st = proto_open(&p, sc, cli_str(&a, "cache", "runs/cache"), cli_str(&a, "data-dir", NULL),
                         (int)epochs, (uint64_t)seed, cli_flag(&a, "quiet"))) != LETHE_OK) {
        proto_close(&p);
        return cli_lib_error("tune", st);
    }
    int total = 1;
    for (int k = 0; k < g.np; k++) total *= g.nv[k];
    printf("\ntuning %s on %s: %d settings, Avg. Gap against Retrain\n\n| ", method, scn, total);
    for (int k = 0; k < g.np; k++) printf("%s | ", g.name[k]);
    printf("UA | RA | TA | MIA-Eff. | Avg. Gap |\n|");
    for (int k = 0; k < g.np + 5; k++) printf("---|");
    printf("\n");
    int best[MAX_PARAMS] = {0}, cur[MAX_PARAMS] = {0};
    double best_gap = INFINITY;
    int rc = 0;
    for (int i = 0; i < total; i++) {
        int rem = i;
        lethe_unlearn_config cfg = base;
        for (int k = g.np - 1; k >= 0; k--) {
            cur[k] = rem % g.nv[k];
            rem /= g.nv[k];
            proto_set_param(&cfg, g.name[k], g.v[k][cur[k]]);
        }
        proto_run run;
        printf("| ");
        for (int k = 0; k < g.np; k++) printf("%g | ", g.v[k][cur[k]]);
        if ((st = lethe_unlearn_validate(&cfg)) != LETHE_OK ||
            (st = proto_run_method(&p, &cfg, &run)) != LETHE_OK) {
            printf("failed: %s |\n", lethe_last_error());
            continue;
        }
        printf("%.2f | %.2f | %.2f | %.2f | %.2f |\n", run.m.ua, run.m.ra, run.m.ta, run.m.mia,
               run.gap);
        fflush(stdout);
        lethe_unlearn_result_free(&run.res);
        if (run.gap < best_gap) {
            best_gap = run.gap;
            memcpy(best, cur, sizeof best);
        }
    }
    if (!isfinite(best_gap)) {
        rc = cli_error("tune", "every setting failed");
    } else {
        printf("\nbest:");
        for (int k = 0; k < g.np; k++) printf(" %s=%g", g.name[k], g.v[k][best[k]]);
        printf(" (Avg. Gap %.2f)\n", best_gap);
        if (cli_flag(&a, "write")) {
            if ((st = write_best(tuned, scn, method, &g, best)) != LETHE_OK)
                rc = cli_lib_error("tune", st);
            else
                fprintf(stderr, "stored in %s\n", tuned);
        }
    }
    proto_close(&p);
    return rc;
}
