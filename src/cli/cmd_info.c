/* lethe info: a checkpoint's metadata and tensor table. */
#include <math.h>
#include <string.h>

#include "cli/cli.h"

static const cli_opt opts[] = {
    {"arch", "NAME", "mlp | cnn | resnet8: read a checkpoint whose metadata names no "
                     "architecture (a PyTorch state_dict) as this one", 0},
    {"data", "NAME", "with --arch, when the metadata has no in_shape or nclass: the data set "
                     "that gives them (default fmnist)", 0},
    {"data-dir", "DIR", "folder of that data set", 0},
    {"quiet", NULL, "no effect: info prints only the checkpoint", 1},
    CLI_EXAMPLE("lethe info runs/cnn.safetensors"),
    {NULL, NULL, NULL, 0},
};

int cmd_info(int argc, char **argv)
{
    cli_args a;
    int r = cli_parse_pos(&a, "info", "MODEL.safetensors", opts, 1, argc, argv);
    if (r) return r == 1 ? 0 : 2;
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
