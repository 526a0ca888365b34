/* Where an output goes, and the one writer every output goes through.
 *
 * The rule (never replace what Lethe did not create):
 *   "-", /dev/stdout, /dev/fd/N  a descriptor of this process (stdout for
 *   (/dev/stderr, /proc/self/fd) "-"): written through it, after stdout and
 *                                stderr are flushed, so that the bytes land
 *                                where the shell pointed it, in order;
 *   a character device, a FIFO   opened O_WRONLY (no O_CREAT, no O_TRUNC)
 *   or a socket that exists      and written in place: no temporary, no
 *                                rename, so /dev/null stays /dev/null;
 *   a regular file, or nothing   a temporary TARGET.tmp.PID beside it is
 *                                written, fsynced and renamed over TARGET;
 *   a symbolic link              followed: TARGET is the file at the end of
 *                                the chain, so the link survives and the
 *                                file it names gets the new bytes;
 *   a folder, a block device     refused.
 */
#ifndef LETHE_IO_OUTPATH_H
#define LETHE_IO_OUTPATH_H

#include <stddef.h>

#include "lethe.h"

typedef enum {
    IO_OUT_FD,          /* "-" or another open descriptor (io_out_fd) */
    IO_OUT_STREAM,      /* an existing character device, FIFO or socket */
    IO_OUT_FILE,        /* an existing regular file (perhaps through links) */
    IO_OUT_NEW,         /* nothing there yet (or a link to nothing) */
    IO_OUT_BAD          /* a folder, a block device, a loop of links… (errno set) */
} io_out_kind;

/* The descriptor `path` names: 1 for "-" and /dev/stdout, 2 for
 * /dev/stderr, N for /dev/fd/N and /proc/self/fd/N; −1 for any other path
 * (whether or not that descriptor is open). */
int io_out_fd(const char *path);

/* What writing to `path` does. target (n bytes) receives the path written
 * or renamed over: `path` itself, or for a symbolic link the end of its
 * chain; on IO_OUT_BAD errno says why (EISDIR for a folder, ENODEV for a
 * block device or another special file). */
io_out_kind io_out_resolve(const char *path, char *target, size_t n);

/* One piece of an output file's bytes. */
typedef struct {
    const void *data;
    size_t len;
} io_piece;

/* Write the n pieces, one after the other, to `path` by the rule above.
 * A failure names `path` ("PATH: write failed: why") and leaves an
 * existing regular file as it was. */
lethe_status io_out_write(const char *path, const io_piece *pieces, int n);

/* Copy the whole file `src` (which a child process wrote, e.g. gnuplot)
 * to `path` by the rule above. */
lethe_status io_out_copy(const char *src, const char *path);

#endif
