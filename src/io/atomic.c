/* Atomic file writes: a crash or a full disk never leaves a half-written
 * file under the final name (write a temporary, fsync, rename), and what
 * is not a regular file (a device, a FIFO, "-" for standard output) is
 * written in place, never replaced: io_out_write (io/outpath.h). */
#include "lethe.h"

#include "io/outpath.h"

lethe_status lethe_write_file_atomic(const char *path, const void *data, size_t len)
{
    io_piece pc = {data, len};
    return io_out_write(path, &pc, 1);
}
