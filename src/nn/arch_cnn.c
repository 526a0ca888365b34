/* cnn (PROTOCOL.md): conv3×3(1→32, pad 1) → ReLU → maxpool 2 →
 * conv3×3(32→64, pad 1) → ReLU → maxpool 2 → flatten (3136) → linear 128 →
 * ReLU → linear 10; 421,642 parameters at 28×28. PyTorch names: conv1,
 * conv2, fc1, fc2. */
#include "nn/model.h"
#include "core/fail.h"

lethe_status nn_build_cnn(lethe_model *m)
{
    int x = nn_add_input(m);
    int h = nn_add_relu(m, nn_add_conv(m, "conv1", x, 32, 3, 1, 1, 1));
    h = nn_add_maxpool(m, h, 2, 2);
    h = nn_add_relu(m, nn_add_conv(m, "conv2", h, 64, 3, 1, 1, 1));
    h = nn_add_maxpool(m, h, 2, 2);
    h = nn_add_relu(m, nn_add_linear(m, "fc1", h, 128));
    if (nn_add_linear(m, "fc2", h, m->nclass) < 0)
        return lethe_fail(LETHE_ERR_ARG, "cnn: graph not built");
    return LETHE_OK;
}
