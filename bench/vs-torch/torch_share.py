#!/usr/bin/env python3
"""PyTorch's own split of a transformer training step (the attention's and
GELU's share), for docs/PERFORMANCE.md beside Lethe's --profile.

    build/bench/bench_engine --arch vit-tiny --in 3,32,32 --export DIR --runs 1 --iters 1
    build/bench/bench_engine --arch text-transformer --export DIR --runs 1 --iters 1
    OMP_NUM_THREADS=1 taskset -c 0 /usr/bin/python3 bench/vs-torch/torch_share.py \\
        DIR/init_vit-tiny.safetensors DIR/init_text-transformer.safetensors

One thread, batch 128, 3 profiled steps (SGD, momentum 0.9) after 2
warm-up ones; self CPU time by op. The attention is the batched matmuls
(aten::bmm: the linears run aten::addmm/mm), softmax and its backward and
the key masking. Random inputs: ids in [3, V) with 40 real tokens for a
token model.
"""
import os
import sys

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import lethe_torch as lt  # noqa: E402

ATTN = ("aten::bmm", "aten::_softmax", "aten::_softmax_backward_data", "aten::masked_fill_",
        "aten::masked_fill")


def main():
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    for path in sys.argv[1:]:
        model, meta = lt.model_from_file(path)
        model.train()
        c, h, w = (int(v) for v in meta["in_shape"].split(","))
        text = meta["arch"] in ("text-transformer", "text-bag")
        if text:
            x = torch.randint(3, c, (128, w))
            x[:, 40:] = 0
            x[:, 0] = 2
        else:
            x = torch.randn(128, c, h, w)
        y = torch.randint(0, int(meta.get("nclass", 10)), (128,))
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)

        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

        for _ in range(2):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as p:
            for _ in range(3):
                step()
        ka = p.key_averages()
        tot = sum(e.self_cpu_time_total for e in ka)
        att = sum(e.self_cpu_time_total for e in ka if e.key in ATTN)
        gelu = sum(e.self_cpu_time_total for e in ka if "gelu" in e.key)
        print(f"{meta['arch']} {meta['in_shape']}: step {tot / 3e3:.1f} ms (profiled), "
              f"attention {100 * att / tot:.0f}%, GELU {100 * gelu / tot:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
