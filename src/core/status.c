/* Status codes and the per-thread last error message. */
#include "lethe.h"
#include "core/fail.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024] = "no error";

const char *lethe_status_to_string(lethe_status s)
{
    switch (s) {
    case LETHE_OK: return "ok";
    case LETHE_ERR_NOMEM: return "out of memory";
    case LETHE_ERR_IO: return "input/output error";
    case LETHE_ERR_FORMAT: return "malformed file";
    case LETHE_ERR_ARG: return "bad argument";
    case LETHE_ERR_MISMATCH: return "checkpoint does not match the model";
    case LETHE_ERR_NUMERIC: return "numerical fault (NaN or infinity)";
    case LETHE_ERR_NOTFOUND: return "not found";
    case LETHE_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

const char *lethe_last_error(void) { return last_error; }

lethe_status lethe_fail(lethe_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}
