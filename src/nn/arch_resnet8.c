/* The CIFAR ResNets of He et al. (2016, §4.2), 6n + 2 layers: a 3×3 conv
 * stem (16) with batch norm, three stages of n basic blocks (widths
 * 16/32/64, the first block of a stage with stride 1/2/2), global average
 * pool, linear. resnet8 is n = 1; resnet20 is n = 3, 272,474 parameters
 * at 3×32×32 (the paper's 0.27M; where a block changes shape its shortcut
 * is a 1×1 conv with batch norm, He et al.'s option B, so that every
 * layer is one PyTorch has). resnet18 is the CIFAR variant of
 * torchvision's ResNet-18 that the unlearning papers train (SalUn, EUPMU):
 * the same 3×3 stem (64, stride 1, no max pool), four stages of two basic
 * blocks (64/128/256/512, strides 1/2/2/2), 11,173,962 parameters for ten
 * classes. Names follow torchvision's ResNet: conv1, bn1,
 * layerS.B.{conv1,bn1,conv2,bn2,downsample.0,downsample.1}, fc. */
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

/* A stem conv of width[0] channels, then nstage stages of n basic blocks
 * each (stage s: width[s] channels, its first block with stride[s]). */
static lethe_status resnet(lethe_model *m, int nstage, const int *width, const int *stride, int n)
{
    int x = nn_add_input(m);
    int h = nn_add_relu(m, nn_add_bn(m, "bn1", nn_add_conv(m, "conv1", x, width[0], 3, 1, 1, 0)));
    char prefix[32];
    for (int s = 0; s < nstage; s++)
        for (int b = 0; b < n && h >= 0; b++) {
            snprintf(prefix, sizeof prefix, "layer%d.%d", s + 1, b);
            h = basic_block(m, prefix, h, width[s], b == 0 ? stride[s] : 1);
        }
    if (h < 0 || nn_add_linear(m, "fc", nn_add_gap(m, h), m->nclass) < 0)
        return lethe_fail(LETHE_ERR_ARG, "%s: graph not built", m->arch);
    return LETHE_OK;
}

static const int cifar_width[3] = {16, 32, 64}, cifar_stride[3] = {1, 2, 2};
static const int r18_width[4] = {64, 128, 256, 512}, r18_stride[4] = {1, 2, 2, 2};

lethe_status nn_build_resnet8(lethe_model *m) { return resnet(m, 3, cifar_width, cifar_stride, 1); }
lethe_status nn_build_resnet20(lethe_model *m) { return resnet(m, 3, cifar_width, cifar_stride, 3); }
lethe_status nn_build_resnet18(lethe_model *m) { return resnet(m, 4, r18_width, r18_stride, 2); }
