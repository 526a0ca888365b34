/* JSON pieces of reports (cJSON objects owned by the caller). */
#ifndef LETHE_CLI_REPORT_H
#define LETHE_CLI_REPORT_H

#include <cjson/cJSON.h>

#include "lethe.h"

cJSON *report_metrics(const lethe_metrics *m);
cJSON *report_config(const lethe_unlearn_config *c, const char *forget);
cJSON *report_run(const lethe_unlearn_result *r, int with_trace);
lethe_status report_write(const char *path, const cJSON *root);

#endif
