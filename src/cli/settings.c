/* Where the tuned settings come from (configs/tuned.json): resolved from
 * the program's own location first, so that `lethe demo` started in
 * another folder still runs the tuned settings of its tree, and said on
 * stderr, so that no run depends on the current folder without a word. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

#define SETTINGS_REL "configs/tuned.json"

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* dir/SETTINGS_REL into buf, canonical (no "build/.."), if it is a file. */
static int try_dir(const char *dir, char *buf, size_t n)
{
    char cand[PATH_MAX + 32], real[PATH_MAX];
    snprintf(cand, sizeof cand, "%s/%s", dir, SETTINGS_REL);
    if (!is_file(cand) || !realpath(cand, real) || strlen(real) >= n) return 0;
    memcpy(buf, real, strlen(real) + 1);
    return 1;
}

const char *cli_settings_path(const char *cmd, const char *given, char *buf, size_t n)
{
    if (given) {
        if (!is_file(given)) {
            cli_usage_error(cmd, "--tuned %s: %s", given,
                            access(given, F_OK) == 0 ? "not a regular file" : "no such file");
            return NULL;
        }
        return given;
    }
    /* Beside the program: an installed tree (bin/configs) or the build
     * folder of a source tree (build/lethe → configs/). */
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            if (try_dir(exe, buf, n)) return buf;
            char parent[PATH_MAX + 4], share[PATH_MAX + 32], real[PATH_MAX];
            snprintf(parent, sizeof parent, "%s/..", exe);
            if (try_dir(parent, buf, n)) return buf;
            /* Installed: PREFIX/bin/lethe reads PREFIX/share/lethe/tuned.json. */
            snprintf(share, sizeof share, "%s/../share/lethe/tuned.json", exe);
            if (is_file(share) && realpath(share, real) && strlen(real) < n) {
                memcpy(buf, real, strlen(real) + 1);
                return buf;
            }
        }
    }
    if (try_dir(".", buf, n)) return buf;
    snprintf(buf, n, "%s", SETTINGS_REL);
    return buf;
}

void cli_settings_note(const char *cmd, const char *path, int quiet)
{
    if (quiet) return;
    if (is_file(path))
        fprintf(stderr, "lethe %s: settings from %s\n", cmd, path);
    else if (strcmp(path, SETTINGS_REL) == 0)
        fprintf(stderr, "lethe %s: no settings file (%s, looked for beside the program and in "
                "the current folder): untuned defaults\n", cmd, SETTINGS_REL);
    else
        fprintf(stderr, "lethe %s: no settings file %s yet: untuned defaults\n", cmd, path);
}

/* The source tree the program was built in (build/lethe → the tree), by
 * the configs/tuned.json it holds; 0 when the program is not in one. */
static int program_tree(char *buf, size_t n)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return 0;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = '\0';
    for (int up = 0; up < 2; up++) {
        char dir[PATH_MAX + 4], cand[PATH_MAX + 32], real[PATH_MAX];
        snprintf(dir, sizeof dir, "%s%s", exe, up ? "/.." : "");
        snprintf(cand, sizeof cand, "%s/%s", dir, SETTINGS_REL);
        if (is_file(cand) && realpath(dir, real) && strlen(real) < n) {
            memcpy(buf, real, strlen(real) + 1);
            return 1;
        }
    }
    return 0;
}

const char *cli_runs_path(const char *rel, char *buf, size_t n)
{
    char base[PATH_MAX];
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (program_tree(base, sizeof base))
        snprintf(buf, n, "%s/runs/%s", base, rel);
    else if (xdg && *xdg == '/')
        snprintf(buf, n, "%s/lethe/%s", xdg, rel);
    else if (home && *home == '/')
        snprintf(buf, n, "%s/.cache/lethe/%s", home, rel);
    else
        snprintf(buf, n, "runs/%s", rel);
    return buf;
}
