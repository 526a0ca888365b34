/* mkdir -p without a shell: a fresh clone has no runs/, and a user's
 * --cache or --grids may name several new levels at once. */
#include "io/paths.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

static int make_one(const char *p)
{
    struct stat sb;
    if (mkdir(p, 0755) == 0) return 0;
    int e = errno;
    if (e == EEXIST || e == EACCES || e == EROFS) {
        /* It may exist already (EEXIST), or exist in a folder we cannot
         * write (EACCES, EROFS): a folder there is all we need. */
        if (stat(p, &sb) == 0) {
            if (S_ISDIR(sb.st_mode)) return 0;
            errno = ENOTDIR;
            return -1;
        }
    }
    errno = e;
    return -1;
}

int io_mkdir_p(const char *dir)
{
    char p[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0) {
        errno = ENOENT;
        return -1;
    }
    if (n >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(p, dir, n + 1);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;   /* "runs/cache/" */
    for (char *s = p + 1; *s; s++) {
        if (*s != '/' || s[-1] == '/') continue;
        *s = 0;
        int r = make_one(p);
        *s = '/';
        if (r != 0) return -1;
    }
    return make_one(p);
}

int io_mkdir_parent(const char *path)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(p, path, n + 1);
    char *slash = strrchr(p, '/');
    if (!slash || slash == p) return 0;
    *slash = 0;
    return io_mkdir_p(p);
}
