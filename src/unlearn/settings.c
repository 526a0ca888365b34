/*
 * Settings files (configs/tuned.json): per scenario, per method (or named
 * variant of a method), the options to use as defaults, by the names of
 * the options' tables (params.c). Read here, in the library, so that every
 * front end and the fuzz harness share one parser.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "io/json.h"
#include "core/fail.h"

#include "lethe.h"

/* A named variant ("eupmu-log": {"method": "eupmu", …}): the registry's
 * own name, which outlives the JSON. */
static lethe_status set_method(const char *path, const char *scn, const char *entry,
                               const cJSON *it, lethe_unlearn_config *cfg)
{
    if (!cJSON_IsString(it))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %s.%s.method must be a method's name", path, scn,
                          entry);
    int nm;
    const char *const *names = lethe_methods(&nm);
    for (int k = 0; k < nm; k++)
        if (strcmp(names[k], it->valuestring) == 0) {
            cfg->method = names[k];
            return LETHE_OK;
        }
    return lethe_fail(LETHE_ERR_FORMAT, "%s: %s.%s: unknown method '%s'", path, scn, entry,
                      it->valuestring);
}

/* One option by name: a name ("adam") or a number; the file, the entry
 * and the option named in any refusal. */
static lethe_status set_option(const char *path, const char *scn, const char *entry,
                               const cJSON *it, lethe_unlearn_config *cfg)
{
    lethe_status st;
    if (cJSON_IsString(it))
        st = lethe_unlearn_set(cfg, it->string, it->valuestring);
    else if (cJSON_IsNumber(it) && isfinite(it->valuedouble))
        st = lethe_unlearn_set_number(cfg, it->string, it->valuedouble);
    else
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %s.%s.%s must be a number or a name", path, scn,
                          entry, it->string);
    if (st == LETHE_OK) return st;
    char why[512];
    snprintf(why, sizeof why, "%s", lethe_last_error());
    return lethe_fail(LETHE_ERR_FORMAT, "%s: %s.%s: %s", path, scn, entry, why);
}

lethe_status lethe_settings_read(const char *path, const char *scenario, const char *method,
                                 lethe_unlearn_config *cfg)
{
    cJSON *root;
    lethe_status st = io_json_read(path, 1L << 20, 1, &root);
    if (st != LETHE_OK || !root) return st;     /* no tuned file: defaults */
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, scenario);
    const cJSON *m = sc ? cJSON_GetObjectItemCaseSensitive(sc, method) : NULL;
    if (m && !cJSON_IsObject(m)) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: %s.%s is not an object", path, scenario, method);
    } else if (m) {
        /* The method first (a variant's options are its method's), then the rest. */
        const cJSON *mk = cJSON_GetObjectItemCaseSensitive(m, "method"), *it;
        if (mk) st = set_method(path, scenario, method, mk, cfg);
        cJSON_ArrayForEach(it, m) {
            if (st != LETHE_OK) break;
            if (it == mk || it->string[0] == '_') continue;    /* "_note": a comment */
            st = set_option(path, scenario, method, it, cfg);
        }
    }
    cJSON_Delete(root);
    if (st == LETHE_OK) st = lethe_unlearn_validate(cfg);
    return st;
}

