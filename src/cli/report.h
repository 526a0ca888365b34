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
/* The version of the report layout (docs/REPORTS.md): raised when a key
 * changes its meaning or disappears, not when one is added. */
#define REPORT_SCHEMA_VERSION 2

/* A float as its shortest round-trip decimal (0.01, not
 * 0.00999999977648258); null when not finite. */
cJSON *report_float(float v);
/* Write root (an object) as a report: first "schema_version",
 * "lethe_version", "command_line" and "created" (UTC, ISO 8601), then its
 * own keys; root is not changed. Atomic for a regular file; written
 * through for a device, a FIFO or "-" (standard output). */
lethe_status report_write(const char *path, const cJSON *root);
/* The same without those four keys: for JSON that is data, not a report
 * of a run (the tuned settings file). */
lethe_status report_write_plain(const char *path, const cJSON *root);

#endif
