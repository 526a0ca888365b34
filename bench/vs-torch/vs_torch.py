#!/usr/bin/env python3
"""Lethe against PyTorch (CPU), side by side, on the same work.

Same models (cnn, resnet8 by default; resnet20 and resnet18 on CIFAR's
3x32x32, vit-tiny on 1x28x28 and (vit-tiny:3x32x32) on 3x32x32, and
text-transformer on token ids (V 3756, SMS Spam's checkpoint's
vocabulary, T 64) with --arch; PyTorch twins from tools/lethe_torch.py), same
initial weights and inputs (exported by build/bench/bench_engine), batch
128 (+128 for the unlearning steps), the same thread count (2). Timed:
forward, training step (forward + cross-entropy + backward + SGD with
momentum 0.9 and weight decay 5e-4), and one unlearning step of EUPMU,
EUPMU-fast and UNGrad in the `mixed` form, each written for PyTorch the
autograd way; Lethe's `grouped` UNGrad is printed beside them.

PyTorch runs in two configurations, each in its own process:
  best     torch.set_flush_denormal(True), OPENBLAS_NUM_THREADS=1 (torch's
           own 2 threads do the work, OpenBLAS's do not compete), and
           MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296
           MALLOC_TOP_PAD_=268435456 (no page faults per step); for an
           image model, timed both in the default (NCHW) memory format
           and channels_last (model and input), and the layout whose
           training step is faster is the one reported;
  default  as installed (none of the above), NCHW.
Lethe runs with flush-to-zero/denormals-are-zero set (bench_engine does it).
Lethe and PyTorch alternate for --rounds rounds, so that a change in the
machine's load hits both; every figure is the median over rounds of each
round's median, with the smallest min and largest max, in ms per call.
Beside forward and training step, their CPU time (of all threads) against
PyTorch best's: on a shared machine, with --threads 1 under taskset, the
figure that the other jobs distort least.

    make                                   # builds build/bench/bench_engine
    /usr/bin/python3 bench/vs-torch/vs_torch.py [--arch cnn,resnet8]
        [--threads 2] [--runs 5] [--iters 5] [--rounds 3] [--no-unlearn]
        [--configs best,default] [--bench build/bench/bench_engine]

An --arch entry is NAME or NAME:CxHxW (bench_engine --in C,H,W); token models
(text-transformer, text-bag) take no unlearning steps. To compare on a
fixed core set, run the whole script under taskset (its children
inherit it): taskset -c 0 /usr/bin/python3 bench/vs-torch/vs_torch.py
--threads 1 ...

Needs PyTorch (Debian: apt-get install python3-torch python3-numpy) and
only for this benchmark; run it with the python3 that has torch
(/usr/bin/python3 on Debian when another python3 comes first on PATH).
Time it on a machine with nothing else running: a second busy process
moves these figures by 2x or more (the load average is printed).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BENCH = os.path.join(ROOT, "build", "bench", "bench_engine")

BEST_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "4294967296",
    "MALLOC_TOP_PAD_": "268435456",
}

# (key printed by bench_engine --tsv, label, images per call)
FIGURES = [
    ("forward", "forward", 128),
    ("training step", "training step", 128),
    ("eupmu step", "EUPMU step", 256),
    ("eupmu-fast step", "EUPMU-fast step", 256),
    ("ungrad mixed step", "UNGrad mixed step", 256),
    ("ungrad grouped step", "UNGrad grouped step", 256),
]

# ------------------------------------------------------------- worker


def is_text(arch):
    return arch.split(":")[0] in ("text-transformer", "text-bag")


def worker(args):
    """Time PyTorch on the exported state; print bench_engine-style TSV."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import lethe_torch as lt

    torch.set_num_threads(args.threads)
    if args.config == "best":
        torch.set_flush_denormal(True)
    model, meta = lt.model_from_file(args.init)
    model.train()
    B = args.batch
    raw = np.fromfile(args.input, dtype=np.uint8)
    c, h, w = (int(v) for v in meta.get("in_shape", "1,28,28").split(","))
    text = is_text(meta["arch"])
    shape = (2 * B, w) if text else (2 * B, c, h, w)    # token ids (2B, T) as floats
    nx = 2 * B * (w if text else c * h * w)
    x_all = torch.from_numpy(raw[: nx * 4].view(np.float32).copy()).reshape(shape)
    if text:
        x_all = x_all.long()
    elif args.layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x_all = x_all.contiguous(memory_format=torch.channels_last)
    y_all = torch.from_numpy(raw[nx * 4: nx * 4 + 2 * B * 4].view(np.int32).astype(np.int64))
    x, y = x_all[:B], y_all[:B]
    xf, xr, yf, yr = x_all[:B], x_all[B:], y_all[:B], y_all[B:]
    params = [p for p in model.parameters()]
    state0 = {k: v.clone() for k, v in model.state_dict().items()}

    def reset():
        model.load_state_dict(state0)

    def forward():
        with torch.no_grad():
            model(x)

    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=5e-4)

    def train_step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    # The unlearning steps (ALGORITHM.md §2-3), as autograd code runs them:
    # plain SGD at lr 0.01, RL targets (a random other label) redrawn
    # every step, λ by implicit gradient surgery (EUPMU) or explicitly
    # (UNGrad: two backward passes over the mixed batch).
    uopt = torch.optim.SGD(params, lr=0.01)
    igs = {"lam": 1.0, "t": 0, "prev": None}
    eps, beta0, lam_max, lr = 0.01, 1.0, 100.0, 0.01

    def rl_targets():
        return (yf + torch.randint(1, 10, yf.shape)) % 10

    def igs_observe(before, after):
        delta = (before - after) / lr + eps
        beta = beta0 * lr * (igs["t"] + 1) ** (-1.0 / 3.0)
        igs["lam"] = min(max(igs["lam"] - beta * delta, 0.0), lam_max)
        igs["t"] += 1

    def eupmu_step():
        uopt.zero_grad()
        lam = igs["lam"]
        lu = F.cross_entropy(model(xf), rl_targets())
        lr_before = F.cross_entropy(model(xr), yr)
        (lu + lam * lr_before).backward()
        uopt.step()
        with torch.no_grad():
            after = F.cross_entropy(model(xr), yr)
        igs_observe(lr_before.item(), after.item())

    def eupmu_fast_step():
        uopt.zero_grad()
        lu = F.cross_entropy(model(xf), rl_targets())
        lr_now = F.cross_entropy(model(xr), yr)
        if igs["prev"] is not None:
            igs_observe(igs["prev"], lr_now.item())
        (lu + igs["lam"] * lr_now).backward()
        uopt.step()
        igs["prev"] = lr_now.item()

    def ungrad_mixed_step():
        out = model(torch.cat([xf, xr]))
        lu = F.cross_entropy(out[:B], rl_targets())
        lr_ = F.cross_entropy(out[B:], yr)
        gu = torch.autograd.grad(lu, params, retain_graph=True)
        gr = torch.autograd.grad(lr_, params)
        dot = sum((a * b).sum() for a, b in zip(gu, gr)).item()
        n2 = sum((b * b).sum() for b in gr).item()
        lam = min(max(0.0, -(dot + eps) / n2), lam_max) if n2 > 0 else 0.0
        for p, a, b in zip(params, gu, gr):
            p.grad = a + lam * b
        uopt.step()

    cases = [("forward", forward), ("training step", train_step)]
    if args.unlearn:
        cases += [("eupmu step", eupmu_step), ("eupmu-fast step", eupmu_fast_step),
                  ("ungrad mixed step", ungrad_mixed_step)]
    for name, fn in cases:
        reset()
        igs.update(lam=1.0, t=0, prev=None)
        times, cpu = [], []
        for r in range(-1, args.runs):          # r = -1 warms up
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.iters):
                fn()
            if r >= 0:
                times.append((time.perf_counter() - t0) / args.iters)
                cpu.append((time.process_time() - c0) / args.iters)
        for key, v in ((name, sorted(times)), (name + " CPU", sorted(cpu))):
            print(f"{key}\t{v[len(v) // 2] * 1e3:.4f}\t{v[0] * 1e3:.4f}\t{v[-1] * 1e3:.4f}",
                  flush=True)
    return 0

# ------------------------------------------------------------- driver


def parse_tsv(text):
    out = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            out[parts[0]] = tuple(float(v) for v in parts[1:])
    return out


def run(cmd, env=None):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"vs_torch: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr.strip()}")
    return parse_tsv(p.stdout)


def merge(rounds):
    """Per figure: median of the rounds' medians, min of mins, max of maxes."""
    keys = rounds[0].keys()
    return {k: (statistics.median(r[k][0] for r in rounds), min(r[k][1] for r in rounds),
                max(r[k][2] for r in rounds)) for k in keys if all(k in r for r in rounds)}


def fmt(v):
    return f"{v[0]:8.2f} ({v[1]:.1f}-{v[2]:.1f})" if v else f"{'-':>8}"


def blas_core_lethe_picks(lethe):
    """The OpenBLAS core Lethe switched to on this CPU (`lethe info
    --system`), or None where OpenBLAS's own choice stands."""
    if not os.access(lethe, os.X_OK):
        return None
    out = subprocess.run([lethe, "info", "--system"], capture_output=True, text=True).stdout
    mark = "Lethe switched it to "
    for line in out.splitlines():
        if mark in line:
            return line.split(mark, 1)[1].split()[0]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="cnn,resnet8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--no-unlearn", dest="unlearn", action="store_false")
    ap.add_argument("--configs", default="best,default",
                    help="PyTorch configurations to time (default: %(default)s)")
    ap.add_argument("--bench", default=BENCH, help="the bench_engine binary (default: %(default)s)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", default="best", help=argparse.SUPPRESS)
    ap.add_argument("--init", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--layout", default="contiguous", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    try:
        import numpy  # noqa: F401
        import torch
    except ImportError as e:
        # Debian's python3-torch lives in /usr/bin/python3; another python3
        # may come first on PATH (a pyenv, a venv): try that one once.
        system = "/usr/bin/python3"
        if (os.path.realpath(sys.executable) != os.path.realpath(system)
                and os.access(system, os.X_OK)):
            os.execv(system, [system, os.path.abspath(__file__)] + sys.argv[1:])
        sys.exit(f"vs_torch: {e}\nPyTorch is needed for this benchmark only: "
                 "apt-get install python3-torch python3-numpy, then run this script with "
                 "/usr/bin/python3 (another python3 on PATH may lack them).")
    if not os.access(args.bench, os.X_OK):
        sys.exit(f"vs_torch: {args.bench} not found: run `make` first")

    # PyTorch's linear layers run on the system's OpenBLAS too. Where Lethe
    # corrects OpenBLAS's choice of kernels (src/core/blas.h: 0.3.21 runs
    # SSE3 kernels on CPUs it does not know), PyTorch at its best gets the
    # same kernels, by OPENBLAS_CORETYPE; its default stays as installed.
    core = blas_core_lethe_picks(os.path.join(os.path.dirname(os.path.dirname(args.bench)),
                                              "lethe"))
    if core and "OPENBLAS_CORETYPE" not in os.environ:
        BEST_ENV["OPENBLAS_CORETYPE"] = core
    print(f"Lethe vs PyTorch {torch.__version__} (CPU), batch {args.batch}, "
          f"{args.threads} threads, {args.rounds} rounds of {args.runs} runs of "
          f"{args.iters} calls; ms per call: median (min-max)")
    if "OPENBLAS_CORETYPE" in BEST_ENV:
        print(f"PyTorch best: OPENBLAS_CORETYPE={core}, the OpenBLAS kernels Lethe runs here")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    base_env = {k: v for k, v in os.environ.items()
                if k not in BEST_ENV and not k.startswith("OMP_")}
    configs = args.configs.split(",")
    results, layouts = {}, {}
    with tempfile.TemporaryDirectory(prefix="lethe-vs-torch-") as tmp:
        for entry in args.arch.split(","):
            arch, _, shape = entry.partition(":")
            unlearn = args.unlearn and not is_text(arch)
            lethe, default = [], []
            best = {"contiguous": [], "channels_last": []}
            if is_text(arch):
                del best["channels_last"]
            common = ["--runs", str(args.runs), "--iters", str(args.iters),
                      "--threads", str(args.threads), "--batch", str(args.batch)]
            for r in range(args.rounds):
                cmd = [args.bench, "--arch", arch, "--tsv"] + common
                if shape:
                    cmd += ["--in", shape.replace("x", ",")]
                if unlearn:
                    cmd.append("--unlearn")
                if r == 0:
                    cmd += ["--export", tmp]
                lethe.append(run(cmd))
                wcmd = [sys.executable, os.path.abspath(__file__), "--worker", "--arch", arch,
                        "--init", os.path.join(tmp, f"init_{arch}.safetensors"),
                        "--input", os.path.join(tmp, f"input_{arch}.bin")] + common
                if not unlearn:
                    wcmd.append("--no-unlearn")
                if "best" in configs:
                    for layout, runs_ in best.items():
                        runs_.append(run(wcmd + ["--config", "best", "--layout", layout],
                                         dict(base_env, **BEST_ENV)))
                if "default" in configs:
                    default.append(run(wcmd + ["--config", "default"], base_env))
            # PyTorch best: the layout with the faster training step.
            merged = {k: merge(v) for k, v in best.items() if v}
            pick = min(merged, key=lambda k: merged[k]["training step"][0]) if merged else None
            layouts[entry] = (pick, {k: v["training step"][0] for k, v in merged.items()})
            results[entry] = (merge(lethe), merged.get(pick, {}),
                              merge(default) if default else {})

    print(f"{'':22} {'Lethe':>22} {'PyTorch best':>22} {'speed-up':>9} "
          f"{'PyTorch default':>22} {'speed-up':>9}")
    for arch, (le, be, de) in results.items():
        pick, steps = layouts[arch]
        print(f"{arch}" + (f"  (PyTorch best in {pick}; training step " +
                           ", ".join(f"{k} {v:.2f} ms" for k, v in steps.items()) + ")"
                           if pick else ""))
        for key, label, _ in FIGURES:
            if key not in le:
                continue
            b, d = be.get(key), de.get(key)
            sb = f"{b[0] / le[key][0]:8.2f}x" if b else f"{'':9}"
            sd = f"{d[0] / le[key][0]:8.2f}x" if d else f"{'':9}"
            print(f"  {label:20} {fmt(le[key]):>22} {fmt(b):>22} {sb} {fmt(d):>22} {sd}")
            ck = key + " CPU"
            if ck in le and ck in be:
                # CPU time of all threads: what a loaded machine distorts least
                # (with 1 thread, the thread's time, not the time it waited).
                print(f"  {'  CPU time':20} {fmt(le[ck]):>22} {fmt(be[ck]):>22} "
                      f"{be[ck][0] / le[ck][0]:8.2f}x")
        if "ungrad mixed step" in le:
            m = le["ungrad mixed step"][0]
            print(f"  Lethe vs its mixed UNGrad step: EUPMU {le['eupmu step'][0] / m:.2f} "
                  f"(target 0.72), EUPMU-fast {le['eupmu-fast step'][0] / m:.2f} (0.62), "
                  f"grouped UNGrad {le['ungrad grouped step'][0] / m:.2f} (0.62)")
    print("\nspeed-up = PyTorch time / Lethe time (images/s ratio). Targets: cnn training "
          "step >= 1.6x and forward >= 1.5x, resnet8 training step >= 1.3x, resnet20, "
          "resnet18, vit-tiny and text-transformer training step >= 1.0x, against PyTorch best.")
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
