/*
 * Reading a JSON object from a file: the reports, plots' inputs and the
 * tuned settings all go through here, so that a size bound, a missing
 * file and a bad document are handled (and worded) one way.
 */
#ifndef LETHE_IO_JSON_H
#define LETHE_IO_JSON_H

#include <cjson/cJSON.h>

#include "lethe.h"

/* The JSON object in `path` into *out (the caller's, cJSON_Delete). Files
 * over max_bytes are refused. With missing_ok a file that does not exist
 * gives LETHE_OK and *out NULL; any other failure is an error naming the
 * file. */
lethe_status io_json_read(const char *path, long max_bytes, int missing_ok, cJSON **out);
/* As io_json_read, for a document of any kind (an array of labels, …):
 * "not valid JSON" where io_json_read says "not a JSON object". */
lethe_status io_json_read_value(const char *path, long max_bytes, int missing_ok,
                                cJSON **out);

#endif
