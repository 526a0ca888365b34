/* Atomic file writes: a crash or a full disk never leaves a half-written
 * file under the final name (write a temporary, fsync, rename). */
#include "lethe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

lethe_status lethe_write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return lethe_fail(LETHE_ERR_ARG, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return lethe_fail(LETHE_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    /* The first failure names the cause (a later fsync's EINVAL on a
     * device would hide a write's ENOSPC). */
    int ok = 1, err = 0;
    if (fwrite(data, 1, len, f) != len || fflush(f) != 0) ok = 0, err = errno;
    if (ok && fsync(fileno(f)) != 0) ok = 0, err = errno;
    if (fclose(f) != 0 && ok) ok = 0, err = errno;
    if (!ok) {
        remove(tmp);
        return lethe_fail(LETHE_ERR_IO, "%s: write failed: %s", path, strerror(err));
    }
    if (rename(tmp, path) != 0) {
        err = errno;
        remove(tmp);
        return lethe_fail(LETHE_ERR_IO, "%s: cannot rename into place: %s", path, strerror(err));
    }
    return LETHE_OK;
}
