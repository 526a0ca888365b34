/* JSON pieces of reports (cJSON objects owned by the caller). */
#ifndef LETHE_CLI_REPORT_H
#define LETHE_CLI_REPORT_H

#include <cjson/cJSON.h>

#include "lethe.h"

cJSON *report_metrics(const lethe_metrics *m);
cJSON *report_config(const lethe_unlearn_config *c, const char *forget);
/* The run: cost, ε, the diagnostics and audit summaries when recorded,
 * and (with_trace) the per-step trace arrays. */
cJSON *report_run(const lethe_unlearn_result *r, int with_trace);
/* The utility-budget search: its settings, trials and choice. */
cJSON *report_budget(const lethe_budget_config *bc, const lethe_budget_result *br);
lethe_status report_write(const char *path, const cJSON *root);

#endif
