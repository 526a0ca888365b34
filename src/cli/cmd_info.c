/* lethe info: a checkpoint's metadata and tensor table; with --system,
 * how this program was built and what it runs on: the kernel set chosen
 * and why, the threads and the BLAS. */
#include <cblas.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/cli.h"
#include "core/blas.h"
#include "data/text.h"
#include "nn/kernels.h"
#include "nn/model.h"

static const cli_opt opts[] = {
    {"arch", "NAME", "mlp | cnn | resnet8 | resnet20 | resnet18 | vit-tiny: read a "
                     "checkpoint whose metadata names no architecture (a PyTorch "
                     "state_dict) as this one", 0},
    {"data", "NAME", "with --arch, when the metadata has no in_shape or nclass: the data set "
                     "that gives them (default fmnist)", 0},
    {"data-dir", "DIR", "folder of that data set", 0},
    {"system", NULL, "print the build, the CPU, the kernel set chosen and why, the "
                     "threads and the BLAS, instead of a checkpoint", CLI_FLAG},
    {"quiet", NULL, "no effect: info prints only what was asked", 1},
    CLI_EXAMPLE("lethe info runs/cnn.safetensors"),
    CLI_EXAMPLE("lethe info --system"),
    {NULL, NULL, NULL, 0},
};

/* The CPU's name from /proc/cpuinfo ("model name"), or "unknown". */
static void cpu_name(char *buf, size_t n)
{
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon) continue;
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        snprintf(buf, n, "%s", colon);
        buf[strcspn(buf, "\n")] = '\0';
        break;
    }
    fclose(f);
}

/* lethe info --system. Returns 1 when LETHE_KERNELS is refused (after
 * printing everything), else 0. */
static int info_system(void)
{
    lethe_status ks = nn_kernels_init();
    char cpu[128];
    cpu_name(cpu, sizeof cpu);
    printf("lethe %s, compiled by %s %s\n", LETHE_VERSION,
#ifdef __clang__
           "clang",
#else
           "GCC",
#endif
           __VERSION__);
    printf("build     %s\n", nn_kernels_build());
    printf("cpu       %s\n", cpu);
    printf("kernels   %s (%s)\n", nn_kernels_active(), nn_kernels_reason());
    if (ks != LETHE_OK) printf("          refused: %s\n", lethe_last_error());
    for (int i = 0; i < nn_kernels_count(); i++)
        printf("  %-8s %-50s %s\n", nn_kernels_name(i), nn_kernels_needs(i),
               strcmp(nn_kernels_name(i), nn_kernels_active()) == 0 ? "runs here, active"
               : nn_kernels_usable(i)                                ? "runs here"
                                                                      : "not on this CPU");
#ifdef _OPENMP
    const int nt = omp_get_max_threads();
    printf("threads   %d OpenMP thread%s for the kernels (OMP_NUM_THREADS, else one per "
           "core this process may use)\n", nt, nt == 1 ? "" : "s");
#else
    printf("threads   1 (built without OpenMP)\n");
#endif
    const int par = openblas_get_parallel();
    printf("BLAS      OpenBLAS, %s kernels, %s with %d thread%s of its own%s\n",
           openblas_get_corename(), core_blas_threading(),
           openblas_get_num_threads(), openblas_get_num_threads() == 1 ? "" : "s",
           par == 1 ? " (run single-threaded inside the kernels' threads)" : "");
    printf("          %s\n", openblas_get_config());
    if (*core_blas_note()) printf("          %s\n", core_blas_note());
    return ks == LETHE_OK ? 0 : 1;
}

int cmd_info(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse_pos(&a, "info", "MODEL.safetensors | --system", opts, 1, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    if (cli_flag(&a, "system")) {
        if (a.npos) return cli_usage_error("info", "--system takes no checkpoint");
        return info_system();
    }
    if (a.npos != 1) return cli_usage_error("info", "expected one checkpoint file");
    lethe_model *m;
    lethe_metadata md = {0};
    /* A run state (--state of train/unlearn) is a safetensors file too. */
    if (lethe_runstate_read_meta(a.pos[0], &md) == LETHE_OK) {
        printf("%s: a run state (resume with --resume)\n\n", a.pos[0]);
        for (int i = 0; i < md.n; i++) printf("  %-18s %s\n", md.kv[i].key, md.kv[i].value);
        return 0;
    }
    memset(&md, 0, sizeof md);
    const char *arch = cli_str(&a, "arch", NULL), *data = cli_str(&a, "data", NULL);
    if ((arch && (r = cli_check_arch("info", arch))) || (data && (r = cli_check_data("info", data))))
        return r;
    lethe_status st = cli_open_model_as(a.pos[0], arch, data, cli_str(&a, "data-dir", NULL), &m,
                                        &md);
    if (st != LETHE_OK) return cli_lib_error("info", st);
    printf("%s\n\nmetadata:\n", a.pos[0]);
    for (int i = 0; i < md.n; i++) printf("  %-18s %s\n", md.kv[i].key, md.kv[i].value);
    size_t vlen;
    const char *blob = nn_model_vocab(m, &vlen);
    text_vocab v;
    text_classes c;
    if (blob && text_vocab_read(&v, &c, blob, vlen) == LETHE_OK) {
        printf("\nvocabulary (text.vocab, %zu bytes): %d ids, %d per text, %d classes:", vlen,
               v.n, v.cfg.max_len, c.n);
        for (int k = 0; k < c.n && k < 20; k++) printf(" %s", c.name[k]);
        printf("%s\n", c.n > 20 ? " …" : "");
        text_vocab_free(&v);
        text_classes_free(&c);
    }
    size_t n, nb;
    lethe_model_theta(m, &n);
    lethe_model_buffers(m, &nb);
    printf("\ntensors (%zu parameters, %zu buffer values):\n", n, nb);
    for (int i = 0; i < lethe_model_ntensors(m); i++) {
        const lethe_tensor *t = lethe_model_tensor(m, i);
        char shape[64] = "";
        int k = 0;
        for (int d = 0; d < t->ndim; d++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%d", d ? ", " : "", t->shape[d]);
        double s2 = 0;
        for (size_t j = 0; j < t->numel; j++) s2 += (double)t->data[j] * t->data[j];
        printf("  %-36s [%s]%*s %s  rms %.4g\n", t->name, shape, (int)(18 - strlen(shape)), "",
               t->trainable ? "param " : (t->is_int64 ? "int64 " : "buffer"),
               t->numel ? sqrt(s2 / (double)t->numel) : 0.0);
    }
    lethe_model_free(m);
    return 0;
}
