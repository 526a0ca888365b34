/* mlp (PROTOCOL.md): 784 → 256 → ReLU → 256 → ReLU → 10.
 * PyTorch names: fc1, fc2, fc3; the input is flattened. */
#include "nn/model.h"
#include "core/fail.h"

lethe_status nn_build_mlp(lethe_model *m)
{
    int x = nn_add_input(m);
    int h = nn_add_relu(m, nn_add_linear(m, "fc1", x, 256));
    h = nn_add_relu(m, nn_add_linear(m, "fc2", h, 256));
    if (nn_add_linear(m, "fc3", h, m->nclass) < 0)
        return lethe_fail(LETHE_ERR_ARG, "mlp: graph not built");
    return LETHE_OK;
}
