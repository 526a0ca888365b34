/* resnet8: a 3×3 conv stem (16) with batch norm, three stages of one basic
 * block each (widths 16/32/64, strides 1/2/2), global average pool, linear.
 * Names follow torchvision's ResNet: conv1, bn1, layerS.0.{conv1,bn1,conv2,
 * bn2,downsample.0,downsample.1}, fc. */
#include <stdio.h>

#include "nn/model.h"
#include "core/fail.h"

/* relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) */
static int basic_block(lethe_model *m, const char *prefix, int x, int width, int stride)
{
    char name[64];
    snprintf(name, sizeof name, "%s.conv1", prefix);
    int h = nn_add_conv(m, name, x, width, 3, stride, 1, 0);
    snprintf(name, sizeof name, "%s.bn1", prefix);
    h = nn_add_relu(m, nn_add_bn(m, name, h));
    snprintf(name, sizeof name, "%s.conv2", prefix);
    h = nn_add_conv(m, name, h, width, 3, 1, 1, 0);
    snprintf(name, sizeof name, "%s.bn2", prefix);
    h = nn_add_bn(m, name, h);
    int sc = x;
    if (stride != 1 || m->nodes[x].c != width) {
        snprintf(name, sizeof name, "%s.downsample.0", prefix);
        sc = nn_add_conv(m, name, x, width, 1, stride, 0, 0);
        snprintf(name, sizeof name, "%s.downsample.1", prefix);
        sc = nn_add_bn(m, name, sc);
    }
    if (h < 0 || sc < 0) return -1;
    return nn_add_relu(m, nn_add_sum(m, h, sc));
}

lethe_status nn_build_resnet8(lethe_model *m)
{
    int x = nn_add_input(m);
    int h = nn_add_relu(m, nn_add_bn(m, "bn1", nn_add_conv(m, "conv1", x, 16, 3, 1, 1, 0)));
    h = basic_block(m, "layer1.0", h, 16, 1);
    if (h >= 0) h = basic_block(m, "layer2.0", h, 32, 2);
    if (h >= 0) h = basic_block(m, "layer3.0", h, 64, 2);
    if (h < 0 || nn_add_linear(m, "fc", nn_add_gap(m, h), m->nclass) < 0)
        return lethe_fail(LETHE_ERR_ARG, "resnet8: model tables full");
    return LETHE_OK;
}
