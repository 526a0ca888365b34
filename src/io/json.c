/* io_json_read and io_json_read_value (json.h). */
#include "io/json.h"
#include "core/fail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The document in `path` into *out; a file that does not parse is
 * "PATH: bad" (io_json_read keeps its one wording for both faults). */
static lethe_status read_doc(const char *path, long max_bytes, int missing_ok, cJSON **out,
                             const char *bad)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (missing_ok && errno == ENOENT) return LETHE_OK;
        return lethe_fail(LETHE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return lethe_fail(LETHE_ERR_IO, "%s: not a regular, seekable file", path);
    }
    if (len > max_bytes) {
        fclose(f);
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %ld bytes, more than the %ld a JSON file of "
                          "this kind may have", path, len, max_bytes);
    }
    char *buf = malloc((size_t)len + 1);
    if (!buf) {
        fclose(f);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) {
        free(buf);
        return lethe_fail(LETHE_ERR_IO, "%s: read failed", path);
    }
    buf[len] = 0;
    *out = cJSON_ParseWithLength(buf, (size_t)len);
    free(buf);
    if (!*out) return lethe_fail(LETHE_ERR_FORMAT, "%s: %s", path, bad);
    return LETHE_OK;
}

lethe_status io_json_read_value(const char *path, long max_bytes, int missing_ok, cJSON **out)
{
    return read_doc(path, max_bytes, missing_ok, out, "not valid JSON");
}

lethe_status io_json_read(const char *path, long max_bytes, int missing_ok, cJSON **out)
{
    lethe_status st = read_doc(path, max_bytes, missing_ok, out, "not a JSON object");
    if (st != LETHE_OK || !*out || cJSON_IsObject(*out)) return st;
    cJSON_Delete(*out);
    *out = NULL;
    return lethe_fail(LETHE_ERR_FORMAT, "%s: not a JSON object", path);
}
