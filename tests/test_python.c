/* The Python binding (bindings/python/lethe, ctypes over liblethe.so) run by
 * /usr/bin/python3: tests/python/check_binding.py checks the λ controller
 * by hand, UNGrad's λ*, the errors (a missing library, a library that is
 * not Lethe, a NULL model, an option the method lacks), then unlearns a
 * checkpoint; its metrics and its θ must be those of `lethe unlearn` with
 * the same options. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "test.h"

typedef cli_t_path_buf path_buf;
static const cli_t_mnist py_spec = {100, 20, 28, 31, 1, 2, 0, 0};

/* The bytes after a safetensors header: the tensors themselves. */
static char *tensor_bytes(const char *path, size_t *n)
{
    size_t len;
    char *b = cli_t_slurp(path, &len);
    if (!b || len < 8) {
        free(b);
        return NULL;
    }
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | (uint8_t)b[i];
    if (h > len - 8) {
        free(b);
        return NULL;
    }
    *n = len - 8 - (size_t)h;
    memmove(b, b + 8 + h, *n);
    return b;
}

TEST(python_binding_matches_the_command_line)
{
#if defined(__SANITIZE_ADDRESS__)
    test_skip("a sanitizer build's library cannot be loaded by python3");
    return;
#endif
    if (access("/usr/bin/python3", X_OK) != 0) {
        test_skip("/usr/bin/python3 not found (apt-get install python3)");
        return;
    }
    if (!cli_t_have_bin() || !cli_t_mkdir("python")) return;
    path_buf dir, model, cliout, rep, pyout, lib, script;
    cli_t_path(dir, "python", "mnist");
    cli_t_path(model, "python", "mlp.safetensors");
    CHECK(cli_t_write_mnist(dir, &py_spec));
    char args[4096], *o = NULL, *e = NULL;
    snprintf(args, sizeof args,
             "train --arch mlp --data mnist --data-dir '%s' --epochs 1 --batch 32 --out '%s'", dir,
             model);
    int rc = cli_t_run("python", args, &o, &e);
    CHECK_MSG(rc == 0, "lethe train exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);
    snprintf(args, sizeof args,
             "unlearn --model '%s' --data mnist --data-dir '%s' --forget class:0 --method eupmu "
             "--steps 3 --batch 16 --quiet --out '%s' --report '%s'", model, dir,
             cli_t_path(cliout, "python", "cli.safetensors"), cli_t_path(rep, "python", "cli.json"));
    rc = cli_t_run("python", args, &o, &e);
    CHECK_MSG(rc == 0, "lethe unlearn exited %d: %s", rc, e ? e : "");
    free(o);
    free(e);

    /* The library beside the binary (make builds it for the tests). */
    const char *bin = getenv("LETHE_BIN");
    snprintf(lib, sizeof lib, "%.*s/liblethe.so.%s", (int)(strrchr(bin, '/') - bin), bin,
             LETHE_VERSION);
    CHECK_MSG(cli_t_exists(lib), "%s: not built (make shared)", lib);
    snprintf(script, sizeof script, "%s", test_data("../python/check_binding.py"));
    path_buf outf, errf;
    cli_t_path(outf, "python", "py.out");
    cli_t_path(errf, "python", "py.err");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "LETHE_LIB='%s' /usr/bin/python3 '%s' '%s' '%s' '%s' > '%s' 2> '%s'",
             lib, script, model, dir, cli_t_path(pyout, "python", "py.safetensors"), outf, errf);
    rc = system(cmd);
    char *pe = cli_t_slurp(errf, NULL);
    CHECK_MSG(rc == 0, "check_binding.py exited %d: %s", rc, pe ? pe : "");
    free(pe);

    /* The same metrics and the same θ as the command line's. */
    char *po = cli_t_slurp(outf, NULL);
    cJSON *py = po ? cJSON_Parse(po) : NULL;
    cJSON *cli = cli_t_load_json(rep);
    const cJSON *cm = cli ? cJSON_GetObjectItemCaseSensitive(cli, "metrics") : NULL;
    CHECK_MSG(py && cm, "no metrics to compare (python: %s)", po ? po : "nothing");
    if (py && cm) {
        static const char *const keys[][2] = {{"ua", "UA"}, {"ra", "RA"}, {"ta", "TA"},
                                              {"mia", "MIA"}};
        for (int k = 0; k < 4; k++)
            CHECK_MSG(fabs(cli_t_jnum(py, keys[k][0]) - cli_t_jnum(cm, keys[k][1])) < 1e-9,
                      "%s: python %.12g, command line %.12g", keys[k][1],
                      cli_t_jnum(py, keys[k][0]), cli_t_jnum(cm, keys[k][1]));
    }
    size_t na = 0, nb = 0;
    char *ta = tensor_bytes(pyout, &na), *tb = tensor_bytes(cliout, &nb);
    CHECK_MSG(ta && tb && na == nb && memcmp(ta, tb, na) == 0,
              "the binding's model differs from the command line's");
    free(ta);
    free(tb);
    cJSON_Delete(py);
    cJSON_Delete(cli);
    free(po);
}
