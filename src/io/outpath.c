/* The one writer of every output file (see outpath.h for the rule): a
 * crash or a full disk never leaves a half-written regular file under its
 * final name, and a device, a FIFO or a symbolic link named as an output
 * is written through, never replaced. */
#include "io/outpath.h"
#include "core/fail.h"
#include "core/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int copy_path(char *dst, size_t n, const char *src)
{
    if ((size_t)snprintf(dst, n, "%s", src) >= n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* cur (n bytes) := where the symbolic link cur points: a relative link is
 * relative to the link's own folder. */
static int follow_link(char *cur, size_t n)
{
    char link[PATH_MAX];
    ssize_t k = readlink(cur, link, sizeof link - 1);
    if (k < 0) return -1;
    link[k] = '\0';
    char *slash = strrchr(cur, '/');
    if (link[0] == '/' || !slash) return copy_path(cur, n, link);
    size_t d = (size_t)(slash - cur) + 1;
    if (d + (size_t)k + 1 > n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(cur + d, link, (size_t)k + 1);
    return 0;
}

int io_out_fd(const char *path)
{
    if (strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0) return STDOUT_FILENO;
    if (strcmp(path, "/dev/stderr") == 0) return STDERR_FILENO;
    const char *num = NULL;
    if (strncmp(path, "/dev/fd/", 8) == 0) num = path + 8;
    else if (strncmp(path, "/proc/self/fd/", 14) == 0) num = path + 14;
    if (!num || !*num || strlen(num) > 6 || strspn(num, "0123456789") != strlen(num)) return -1;
    return atoi(num);
}

io_out_kind io_out_resolve(const char *path, char *target, size_t n)
{
    if (copy_path(target, n, path) != 0) return IO_OUT_BAD;
    /* Not through the /proc link: a file the shell opened (`> f`, `>> f`)
     * is written at the shell's offset, never renamed over. */
    int fd = io_out_fd(path);
    if (fd >= 0) {
        if (fcntl(fd, F_GETFL) < 0) return IO_OUT_BAD;     /* EBADF: not open */
        return IO_OUT_FD;
    }
    if (!*path) {
        errno = ENOENT;
        return IO_OUT_BAD;
    }
    struct stat sb, lsb;
    if (stat(path, &sb) == 0) {
        if (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode))
            return IO_OUT_STREAM;
        if (S_ISDIR(sb.st_mode)) {
            errno = EISDIR;
            return IO_OUT_BAD;
        }
        if (!S_ISREG(sb.st_mode)) {
            errno = ENODEV;
            return IO_OUT_BAD;
        }
        if (lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode)) {
            /* realpath, not readlink: /dev/stdout is a link to a magic
             * /proc/self/fd/1 that only the kernel resolves. */
            char real[PATH_MAX];
            if (!realpath(path, real) || copy_path(target, n, real) != 0) return IO_OUT_BAD;
        }
        return IO_OUT_FILE;
    }
    if (errno != ENOENT) return IO_OUT_BAD;
    /* Nothing there, or a chain of links that ends in nothing: the file is
     * made where the last link points (as a shell's `>` does). */
    for (int hop = 0; lstat(target, &lsb) == 0 && S_ISLNK(lsb.st_mode); hop++) {
        if (hop >= 40) {
            errno = ELOOP;
            return IO_OUT_BAD;
        }
        if (follow_link(target, n) != 0) return IO_OUT_BAD;
    }
    return IO_OUT_NEW;
}

static lethe_status write_all(int fd, const char *path, const io_piece *pc, int n)
{
    for (int i = 0; i < n; i++) {
        const char *p = pc[i].data;
        size_t left = pc[i].len;
        while (left > 0) {
            ssize_t k = write(fd, p, left);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0)
                return lethe_fail(LETHE_ERR_IO, "%s: write failed: %s", path,
                                  strerror(k < 0 ? errno : EIO));
            p += k;
            left -= (size_t)k;
        }
    }
    return LETHE_OK;
}

/* Through an open descriptor: what stdio holds goes first. */
static lethe_status write_fd(const char *path, const io_piece *pc, int n)
{
    if (fflush(stdout) != 0 || fflush(stderr) != 0)
        return lethe_fail(LETHE_ERR_IO, "%s: flushing standard output failed: %s", path,
                          strerror(errno));
    return write_all(io_out_fd(path), strcmp(path, "-") == 0 ? "standard output" : path, pc, n);
}

/* In place: a device or a FIFO has no folder entry of ours to replace. */
static lethe_status write_stream(const char *path, const char *target, const io_piece *pc,
                                 int n)
{
    int fd;
    while ((fd = open(target, O_WRONLY | O_NOCTTY | O_CLOEXEC)) < 0 && errno == EINTR) {}
    if (fd < 0) return lethe_fail(LETHE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    lethe_status st = write_all(fd, path, pc, n);
    if (close(fd) != 0 && errno != EINTR && st == LETHE_OK)
        st = lethe_fail(LETHE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return st;
}

/* A temporary beside target, written, fsynced and renamed over it. */
static lethe_status write_replace(const char *path, const char *target, const io_piece *pc,
                                  int n)
{
    char tmp[PATH_MAX + 32];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", target, (long)getpid()) >= sizeof tmp)
        return lethe_fail(LETHE_ERR_ARG, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return lethe_fail(LETHE_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    /* The first failure names the cause (a later fsync's EINVAL on a
     * device would hide a write's ENOSPC). */
    int ok = 1, err = 0;
    for (int i = 0; i < n && ok; i++)
        if (pc[i].len && fwrite(pc[i].data, 1, pc[i].len, f) != pc[i].len) ok = 0, err = errno;
    if (ok && fflush(f) != 0) ok = 0, err = errno;
    if (ok && fsync(fileno(f)) != 0) ok = 0, err = errno;
    if (fclose(f) != 0 && ok) ok = 0, err = errno;
    if (!ok) {
        remove(tmp);
        return lethe_fail(LETHE_ERR_IO, "%s: write failed: %s", path, strerror(err));
    }
    if (rename(tmp, target) != 0) {
        err = errno;
        remove(tmp);
        return lethe_fail(LETHE_ERR_IO, "%s: cannot rename into place: %s", path, strerror(err));
    }
    return LETHE_OK;
}

lethe_status io_out_write(const char *path, const io_piece *pieces, int n)
{
    /* Under mpirun rank 0 alone writes (checkpoints, reports, run states). */
    if (!core_dist_root()) return LETHE_OK;
    char target[PATH_MAX];
    switch (io_out_resolve(path, target, sizeof target)) {
    case IO_OUT_FD:
        return write_fd(path, pieces, n);
    case IO_OUT_STREAM:
        return write_stream(path, target, pieces, n);
    case IO_OUT_FILE:
    case IO_OUT_NEW:
        return write_replace(path, target, pieces, n);
    case IO_OUT_BAD:
    default:
        break;
    }
    if (errno == ENODEV)
        return lethe_fail(LETHE_ERR_IO, "%s: not a regular file, a character device or a FIFO: "
                          "not written", path);
    return lethe_fail(LETHE_ERR_IO, "%s: cannot write there: %s", path, strerror(errno));
}

lethe_status io_out_copy(const char *src, const char *path)
{
    if (!core_dist_root()) return LETHE_OK;
    FILE *f = fopen(src, "rb");
    if (!f) return lethe_fail(LETHE_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    /* Plots and other files made by a child process: a few MiB at most. */
    if (len < 0 || len > (1L << 30) || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return lethe_fail(LETHE_ERR_IO, "%s: cannot read its size", src);
    }
    char *buf = malloc((size_t)len + 1);
    if (!buf) {
        fclose(f);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory (%ld bytes)", src, len);
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    lethe_status st;
    if (got != (size_t)len) {
        st = lethe_fail(LETHE_ERR_IO, "%s: read failed", src);
    } else {
        io_piece pc = {buf, (size_t)len};
        st = io_out_write(path, &pc, 1);
    }
    free(buf);
    return st;
}
