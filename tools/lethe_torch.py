#!/usr/bin/env python3
"""Lethe <-> PyTorch: safetensors files and torch twins of Lethe's models.

The modules below have exactly Lethe's parameter names, shapes and forward
(PyTorch state_dict order), so a Lethe checkpoint loads here with
load_state_dict(strict=True) and a torch-made file loads into Lethe.

    python3 tools/lethe_torch.py check MODEL.safetensors
        load a Lethe checkpoint into torch (strict) and print its
        Fashion-MNIST test accuracy: the "loads in PyTorch" proof
    python3 tools/lethe_torch.py fixture [--arch resnet8|…|vit-tiny|text-transformer|text-bag] OUT.safetensors
        write the test fixture OUT and OUT's logits file (*_logits.safetensors);
        resnet18's is one small file (synthesised weights: cmd_fixture)
    python3 tools/lethe_torch.py export --arch A [--seed S] OUT.safetensors
        save a freshly initialised torch model

Needs only torch, numpy, json, struct (Debian: python3-torch, python3-numpy;
run with /usr/bin/python3 if another python3 comes first on PATH).
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(f"lethe_torch.py: {e} (try /usr/bin/python3, with python3-torch and python3-numpy)")

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
MAX_HEADER = 100 << 20

# ------------------------------------------------------------ safetensors

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
    "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
    "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}


def _tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: same bits as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def save_safetensors(state_dict, path, metadata=None):
    """Write tensors (in dict order) and string metadata, atomically."""
    if sys.byteorder != "little":
        raise RuntimeError("safetensors data is little-endian; this host is not")
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in state_dict.items():
        if t.dtype not in NAMES:
            raise ValueError(f"{name}: dtype {t.dtype} has no safetensors name")
        b = _tensor_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)  # pad so the data block starts 8-aligned
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_safetensors(path):
    """Return ({name: tensor}, {metadata}) with bounds checked."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", buf[:8])
    if n == 0 or n > MAX_HEADER or 8 + n > len(buf):
        raise ValueError(f"{path}: bad header length {n}")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not an object")
    data = memoryview(buf)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, e in header.items():
        dtype = DTYPES.get(e.get("dtype"))
        if dtype is None:
            raise ValueError(f"{path}: {name}: unsupported dtype {e.get('dtype')!r}")
        shape = [int(d) for d in e["shape"]]
        b, end = (int(x) for x in e["data_offsets"])
        numel = math.prod(shape)
        size = numel * torch.empty((), dtype=dtype).element_size()
        if not 0 <= b <= end <= len(data) or end - b != size:
            raise ValueError(f"{path}: {name}: bad data_offsets [{b}, {end}]")
        if numel == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            raw = bytearray(data[b:end])  # a writable copy for frombuffer
            tensors[name] = torch.frombuffer(raw, dtype=dtype).reshape(shape)
    return tensors, meta


# ----------------------------------------------------------------- models

class MLP(nn.Module):
    """flatten -> fc1 -> ReLU -> fc2 -> ReLU -> fc3"""

    def __init__(self, in_c=1, in_h=28, in_w=28, nclass=10):
        super().__init__()
        self.fc1 = nn.Linear(in_c * in_h * in_w, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, nclass)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CNN(nn.Module):
    """conv1(32) -> ReLU -> pool -> conv2(64) -> ReLU -> pool -> fc1(128) -> ReLU -> fc2"""

    def __init__(self, in_c=1, in_h=28, in_w=28, nclass=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * (in_h // 2 // 2) * (in_w // 2 // 2), 128)
        self.fc2 = nn.Linear(128, nclass)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))"""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.downsample is None else self.downsample(x)))


class ResNet8(nn.Module):
    """conv1 -> bn1 -> ReLU -> layer1..3 (16/32/64, strides 1/2/2) -> avg pool -> fc"""

    def __init__(self, in_c=1, in_h=28, in_w=28, nclass=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(BasicBlock(16, 16, 1))
        self.layer2 = nn.Sequential(BasicBlock(16, 32, 2))
        self.layer3 = nn.Sequential(BasicBlock(32, 64, 2))
        self.fc = nn.Linear(64, nclass)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ResNet20(nn.Module):
    """The CIFAR ResNet-20 of He et al. (2016, section 4.2): conv1 -> bn1 -> ReLU ->
    layer1..3 of three basic blocks each (16/32/64, first strides 1/2/2; 1x1
    conv + BN shortcuts where the shape changes) -> avg pool -> fc; 272,474
    parameters at 3x32x32"""

    def __init__(self, in_c=3, in_h=32, in_w=32, nclass=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(*[BasicBlock(16, 16, 1) for _ in range(3)])
        self.layer2 = nn.Sequential(BasicBlock(16, 32, 2), BasicBlock(32, 32, 1),
                                    BasicBlock(32, 32, 1))
        self.layer3 = nn.Sequential(BasicBlock(32, 64, 2), BasicBlock(64, 64, 1),
                                    BasicBlock(64, 64, 1))
        self.fc = nn.Linear(64, nclass)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class VitAttention(nn.Module):
    """timm's Attention: qkv (D -> 3D, q k v then heads), softmax(q·kᵀ/√dh)·v, proj"""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        """mask (b, t) bool, True for a real token: padded keys get no weight"""
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        if mask is not None:
            a = a.masked_fill(~mask[:, None, None, :], float("-inf"))
        x = (a.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(x)


class VitMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class VitBlock(nn.Module):
    """pre-norm: x + attn(norm1(x)), then x + mlp(norm2(x))"""

    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = VitAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = VitMlp(dim, hidden)

    def forward(self, x, mask=None):
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class VitPatchEmbed(nn.Module):
    def __init__(self, in_c, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_c, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VitTiny(nn.Module):
    """Lethe's vit-tiny with timm's VisionTransformer names: patch 4, width 64,
    4 blocks of 4 heads, MLP 128, class token readout after the final norm."""

    def __init__(self, in_c=1, in_h=28, in_w=28, nclass=10, patch=4, dim=64, depth=4,
                 heads=4, hidden=128):
        super().__init__()
        ntok = (in_h // patch) * (in_w // patch) + 1
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, ntok, dim) * 0.02)
        self.patch_embed = VitPatchEmbed(in_c, patch, dim)
        self.blocks = nn.ModuleList([VitBlock(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, nclass)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])



class ResNet18(nn.Module):
    """The CIFAR ResNet-18 of the unlearning papers: torchvision's ResNet-18
    with a 3x3 stem (64, stride 1, pad 1) and no max pool: conv1 -> bn1 ->
    ReLU -> layer1..4 of two basic blocks each (64/128/256/512, first strides
    1/2/2/2; 1x1 conv + BN downsample where the shape changes) -> avg pool ->
    fc; 11,173,962 parameters for ten classes"""

    def __init__(self, in_c=3, in_h=32, in_w=32, nclass=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths, cin = (64, 128, 256, 512), 64
        for s, w in enumerate(widths):
            stride = 1 if s == 0 else 2
            setattr(self, f"layer{s + 1}",
                    nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.fc = nn.Linear(512, nclass)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class TextTransformer(nn.Module):
    """Lethe's text-transformer (src/nn/arch_text.c): in_shape (V, 1, T) is a
    vocabulary of V ids and T ids per example; forward takes token ids (b, T)
    int64, id 0 padding. embed (V, 64) + pos_embed, 2 pre-norm blocks of 4
    heads (MLP 128) with padded keys masked, final norm, mean over the real
    tokens, head."""

    def __init__(self, in_c, in_h=1, in_w=64, nclass=2, dim=64, depth=2, heads=4, hidden=128):
        super().__init__()
        self.embed = nn.Embedding(in_c, dim)
        self.pos_embed = nn.Parameter(torch.randn(1, in_w, dim) * 0.02)
        self.blocks = nn.ModuleList([VitBlock(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, nclass)

    def forward(self, ids):
        mask = ids != 0
        x = self.embed(ids) + self.pos_embed
        for b in self.blocks:
            x = b(x, mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        return self.head((self.norm(x) * m).sum(1) / m.sum(1))


class TextBag(nn.Module):
    """Lethe's text-bag: EmbeddingBag(mode="mean") over the non-pad ids (id 0
    padding) and a linear head; in_shape (V, 1, T), token ids in."""

    def __init__(self, in_c, in_h=1, in_w=64, nclass=2, dim=64):
        super().__init__()
        self.embed = nn.Embedding(in_c, dim)
        self.head = nn.Linear(dim, nclass)

    def forward(self, ids):
        m = (ids != 0).unsqueeze(-1).float()
        return self.head((self.embed(ids) * m).sum(1) / m.sum(1))


ARCHS = {"mlp": MLP, "cnn": CNN, "resnet8": ResNet8, "resnet20": ResNet20,
         "resnet18": ResNet18, "vit-tiny": VitTiny, "text-transformer": TextTransformer,
         "text-bag": TextBag}
TEXT_ARCHS = ("text-transformer", "text-bag")
TEXT_VOCAB = "text.vocab"   # a text model's vocabulary blob (U8), not a parameter
CIFAR_ARCHS = ("resnet20", "resnet18")   # made for 3x32x32 inputs


def make_model(arch, in_shape="1,28,28", nclass=10):
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r} (known: {', '.join(ARCHS)})")
    c, h, w = (int(v) for v in in_shape.split(","))
    return ARCHS[arch](c, h, w, int(nclass))


def model_from_file(path):
    """(torch module loaded strictly from a safetensors file, metadata); a
    text model's vocabulary (text.vocab, UTF-8 text) is returned in
    meta["text.vocab"], and its forward takes token ids"""
    tensors, meta = load_safetensors(path)
    if TEXT_VOCAB in tensors:
        meta[TEXT_VOCAB] = bytes(tensors.pop(TEXT_VOCAB).numpy()).decode("utf-8")
    if "arch" not in meta:
        raise ValueError(f"{path}: no 'arch' in the metadata")
    model = make_model(meta["arch"], meta.get("in_shape", "1,28,28"), meta.get("nclass", 10))
    model.load_state_dict(tensors, strict=True)
    return model, meta


# ------------------------------------------------------------------- data

def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    m, n = struct.unpack(">II", raw[:8])
    if m != magic:
        raise ValueError(f"{path}: magic {m:#x}, want {magic:#x}")
    if magic == 0x803:
        rows, cols = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, np.uint8, n * rows * cols, 16).reshape(n, 1, rows, cols)
    return np.frombuffer(raw, np.uint8, n, 8)


def fmnist_test(root=FMNIST_DIR):
    x = read_idx(os.path.join(root, "t10k-images-idx3-ubyte.gz"), 0x803)
    y = read_idx(os.path.join(root, "t10k-labels-idx1-ubyte.gz"), 0x801)
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - FMNIST_MEAN) / FMNIST_STD
    return x, torch.from_numpy(y.astype(np.int64))


# --------------------------------------------------------------- commands

def probe_input(n=4, c=1, h=28, w=28):
    """x[n,c,i,j] = sin(0.1·k), k the flat index, computed in double."""
    k = torch.arange(n * c * h * w, dtype=torch.float64)
    return torch.sin(0.1 * k).float().reshape(n, c, h, w)


def cmd_check(args):
    model, meta = model_from_file(args.model)
    if meta.get("in_shape", "1,28,28") != "1,28,28":
        sys.exit(f"{args.model}: in_shape {meta['in_shape']} is not Fashion-MNIST's 1,28,28")
    x, y = fmnist_test(args.data)
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 1000):
            correct += (model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
    print(f"{args.model}: {meta['arch']} loaded in PyTorch (strict), "
          f"Fashion-MNIST test accuracy {100.0 * correct / len(y):.2f}% ({len(y)} images)")


def logits_path(out):
    base = out[:-len(".safetensors")] if out.endswith(".safetensors") else out
    return base + "_logits.safetensors"


def synth_weights(state):
    """Fill every weight of more than one dimension (convs, fc) in place with
    u * s: u = (splitmix64(j << 32 | k) >> 40) / 2^23 - 1, uniform on
    [-1, 1) and exact in float32, for the k-th entry of the j-th state_dict
    tensor, and s = float32(sqrt(6 / fan_in)) (He's uniform), fan_in =
    numel / shape[0]. tests/test_checkpoint.c makes the same floats bit for
    bit, so that the resnet18 fixture need not hold 11M weights."""
    m64 = np.uint64(0xFFFFFFFFFFFFFFFF)
    for j, (name, t) in enumerate(state.items()):
        if t.dim() < 2:
            continue
        z = (np.uint64(j) << np.uint64(32)) + np.arange(t.numel(), dtype=np.uint64)
        with np.errstate(over="ignore"):
            z = (z + np.uint64(0x9E3779B97F4A7C15)) & m64
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        u = (z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 23) - np.float32(1)
        s = np.float32(math.sqrt(6.0 / (t.numel() // t.shape[0])))
        t.copy_(torch.from_numpy((u * s).reshape(tuple(t.shape))))


def cmd_fixture(args):
    """resnet18 (3x16x16, two probes): weights of synth_weights, batch norms
    as resnet8's below with the running statistics the exact means of its
    three batches (momentum None); the file holds the batch norms, fc.bias,
    and for each synthesised weight "synth:NAME", its shape (int64), in
    state_dict order, then the probe and torch's logits: 80 kB, not 45 MB.
    resnet8 (1x28x28), resnet20 (3x32x32, CIFAR's shape): BN affine
    randomised, 3 train-mode batches so the running stats and
    num_batches_tracked are not the defaults; then eval logits.
    cnn: stored as F16 (to stay small and exercise F16 loading), its logits
    computed from the F16-rounded weights."""
    torch.manual_seed(0)
    if args.arch == "resnet18":
        return fixture_synth(args)
    if args.arch in TEXT_ARCHS:
        return fixture_text(args)
    shape = (3, 32, 32) if args.arch == "resnet20" else (1, 28, 28)
    in_shape = ",".join(str(v) for v in shape)
    model = make_model(args.arch, in_shape)
    meta = {"arch": args.arch, "in_shape": in_shape, "nclass": "10", "made_by": "pytorch"}
    if args.arch in ("resnet8", "resnet20"):
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, nn.BatchNorm2d):
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.2, 0.2)
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(8, *shape))
        state = model.state_dict()
    elif args.arch == "vit-tiny":
        # Every parameter away from its default (norms, positions, class token).
        with torch.no_grad():
            for name, prm in model.named_parameters():
                if "norm" in name or name in ("cls_token", "pos_embed"):
                    prm.add_(0.3 * torch.randn_like(prm))
        state = model.state_dict()
    else:
        model = model.half().float()  # the weights the F16 file will hold
        state = {k: v.half() for k, v in model.state_dict().items()}
    model.eval()
    x = probe_input(4, *shape)
    with torch.no_grad():
        logits = model(x)
    save_safetensors(state, args.out, meta)
    save_safetensors({"input": x, "expected_logits": logits}, logits_path(args.out),
                     {"made_by": "pytorch", "model": os.path.basename(args.out)})
    print(f"wrote {args.out} and {logits_path(args.out)}")


def probe_ids(n, vocab, t):
    """ids[i, j] = 1 + (7·i + 3·j) mod (vocab − 1) for j < t − 3·i, then 0
    (padding): four examples of t, t−3, t−6, t−9 tokens, integers only"""
    ids = torch.zeros(n, t, dtype=torch.int64)
    for i in range(n):
        for j in range(t - 3 * i):
            ids[i, j] = 1 + (7 * i + 3 * j) % (vocab - 1)
    return ids


def fixture_text(args):
    """text-transformer or text-bag (V 50, T 12, 2 classes), every parameter
    away from its default; the probe's ids stored as F32 (Lethe's text
    batches hold them so) beside torch's logits"""
    vocab, t = 50, 12
    in_shape = f"{vocab},1,{t}"
    model = make_model(args.arch, in_shape, 2)
    with torch.no_grad():
        for name, prm in model.named_parameters():
            if "norm" in name or name == "pos_embed":
                prm.add_(0.3 * torch.randn_like(prm))
    model.eval()
    ids = probe_ids(4, vocab, t)
    with torch.no_grad():
        logits = model(ids)
    save_safetensors(model.state_dict(), args.out,
                     {"arch": args.arch, "in_shape": in_shape, "nclass": "2",
                      "made_by": "pytorch"})
    save_safetensors({"input": ids.float(), "expected_logits": logits}, logits_path(args.out),
                     {"made_by": "pytorch", "model": os.path.basename(args.out)})
    print(f"wrote {args.out} and {logits_path(args.out)}")


def fixture_synth(args):
    shape = (3, 16, 16)
    in_shape = ",".join(str(v) for v in shape)
    model = make_model(args.arch, in_shape)
    with torch.no_grad():
        synth_weights(model.state_dict())
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.momentum = None      # running stats: the mean over the batches
        model.train()
        for _ in range(3):
            model(torch.randn(8, *shape))
    model.eval()
    out = {}
    for name, t in model.state_dict().items():
        if t.dim() < 2:
            out[name] = t
        else:
            out["synth:" + name] = torch.tensor(list(t.shape), dtype=torch.int64)
    x = probe_input(2, *shape)
    with torch.no_grad():
        logits = model(x)
    out["input"] = x
    out["expected_logits"] = logits
    save_safetensors(out, args.out, {"arch": args.arch, "in_shape": in_shape, "nclass": "10",
                                     "made_by": "pytorch", "weights": "synth"})
    print(f"wrote {args.out} (logits {logits.abs().max().item():.3g} at most)")


def cmd_export(args):
    torch.manual_seed(args.seed)
    in_shape = "3,32,32" if args.arch in CIFAR_ARCHS else "1,28,28"
    nclass = 10
    if args.arch in TEXT_ARCHS:   # no vocabulary: Lethe's loads it, predict cannot
        in_shape, nclass = "50,1,64", 2
    model = make_model(args.arch, in_shape, nclass)
    save_safetensors(model.state_dict(), args.out,
                     {"arch": args.arch, "in_shape": in_shape, "nclass": str(nclass),
                      "made_by": "pytorch", "seed": str(args.seed)})
    print(f"wrote {args.out}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="load a Lethe checkpoint, print FMNIST test accuracy")
    c.add_argument("model")
    c.add_argument("--data", default=FMNIST_DIR)
    c.set_defaults(fn=cmd_check)
    f = sub.add_parser("fixture", help="write the PyTorch-made test fixture")
    f.add_argument("--arch", choices=["resnet8", "resnet20", "resnet18", "cnn", "vit-tiny",
                                      "text-transformer", "text-bag"],
                   default="resnet8")
    f.add_argument("out")
    f.set_defaults(fn=cmd_fixture)
    e = sub.add_parser("export", help="save a freshly initialised torch model")
    e.add_argument("--arch", choices=sorted(ARCHS), required=True)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("out")
    e.set_defaults(fn=cmd_export)
    args = p.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
