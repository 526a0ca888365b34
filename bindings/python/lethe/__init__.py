"""Lethe from Python: machine unlearning in C, through ctypes (no build step).

    import lethe
    igs = lethe.IGS(eps=0.01, beta=1.0, lambda0=1.0, D=100.0)
    lam = igs.weight()                    # step on loss_u + lam * loss_r
    igs.observe(loss_r_before, loss_r_after, lr)

    lethe.ungrad_lambda(dot_ru, norm2_r, eps, D)     # UNGrad's explicit λ*
    ds = lethe.Dataset("fmnist")                      # Lethe's data, split and batches:
    forget, retain = ds.split("class:0")              # the same as `lethe unlearn` draws
    x, y = ds.batch(lethe.BatchStream(forget, seed=1).next(128))
    m = lethe.unlearn("cnn.safetensors", forget="class:0",
                      config={"method": "eupmu", "lr": 0.02, "eps": 0.01},
                      out="unlearned.safetensors")   # -> {"ua": ..., "ra": ..., ...}

The library is found through $LETHE_LIB, then the build folder of the tree
this file sits in, then the system's (`make install`); loading it calls
lethe_init(0) (the thread pools; OMP_NUM_THREADS sets the count). Every
failure of the library raises LetheError with its one-line message
(lethe_last_error()).
"""
import ctypes
import ctypes.util
import os

__all__ = ["LetheError", "IGS", "ungrad_lambda", "unlearn", "checkpoint_metadata",
           "methods", "method_options", "library_version", "load", "Dataset", "BatchStream",
           "Rng"]

ABI_MAJOR = "0"


class LetheError(Exception):
    """An error of the Lethe library; str() is its one-line message."""


_lib = None


def _candidates():
    env = os.environ.get("LETHE_LIB")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.path.normpath(os.path.join(here, "..", "..", "..", "build"))
    if os.path.isdir(build):
        for name in sorted(os.listdir(build), reverse=True):
            if name.startswith("liblethe.so"):
                yield os.path.join(build, name)
    found = ctypes.util.find_library("lethe")
    if found:
        yield found


def load(path=None):
    """Load liblethe.so (path, or the search above); checks its ABI version."""
    global _lib
    if _lib is not None and path is None:
        return _lib
    tried = []
    for cand in ([path] if path else list(_candidates())):
        try:
            lib = ctypes.CDLL(cand)
        except OSError as e:
            tried.append("%s (%s)" % (cand, e))
            continue
        if not hasattr(lib, "lethe_version") or not hasattr(lib, "lethe_sizeof"):
            raise LetheError("%s is not liblethe of a version with lethe_version()" % cand)
        lib.lethe_version.restype = ctypes.c_char_p
        lib.lethe_version.argtypes = []
        version = (lib.lethe_version() or b"?").decode(errors="replace")
        if version.split(".")[0] != ABI_MAJOR:
            raise LetheError("%s is Lethe %s; this binding needs %s.x" % (cand, version, ABI_MAJOR))
        _declare(lib, cand)
        # The process-wide thread pools (lethe.h: lethe_init), as the command line sets them.
        if lib.lethe_init(0) != 0:
            raise LetheError(lib.lethe_last_error().decode(errors="replace"))
        _lib = lib
        return lib
    raise LetheError("liblethe.so not found (tried: %s); build it with `make shared` or "
                     "`make install`, or set LETHE_LIB" % ("; ".join(tried) or "nothing found"))


def _declare(lib, path):
    c = ctypes
    sigs = {
        "lethe_version": (c.c_char_p, []),
        "lethe_sizeof": (c.c_size_t, [c.c_char_p]),
        "lethe_last_error": (c.c_char_p, []),
        "lethe_init": (c.c_int, [c.c_int]),
        "lethe_compute_info": (c.c_char_p, []),
        "lethe_igs_init": (c.c_int, [c.c_void_p, c.c_float, c.c_float, c.c_float, c.c_float]),
        "lethe_igs_weight": (c.c_float, [c.c_void_p]),
        "lethe_igs_observe": (c.c_int, [c.c_void_p, c.c_float, c.c_float, c.c_float]),
        "lethe_ungrad_lambda": (c.c_float, [c.c_double, c.c_double, c.c_float, c.c_float]),
        "lethe_methods": (c.POINTER(c.c_char_p), [c.POINTER(c.c_int)]),
        "lethe_method_params": (c.c_int, [c.c_char_p, c.POINTER(c.c_void_p), c.c_int]),
        "lethe_checkpoint_open": (c.c_int, [c.POINTER(c.c_void_p), c.c_char_p, c.c_void_p]),
        "lethe_checkpoint_read_meta": (c.c_int, [c.c_char_p, c.c_void_p]),
        "lethe_checkpoint_save": (c.c_int, [c.c_void_p, c.c_void_p, c.c_char_p]),
        "lethe_meta_get": (c.c_char_p, [c.c_void_p, c.c_char_p]),
        "lethe_meta_set": (c.c_int, [c.c_void_p, c.c_char_p, c.c_char_p]),
        "lethe_model_free": (None, [c.c_void_p]),
        "lethe_model_reserve": (c.c_int, [c.c_void_p, c.c_int]),
        "lethe_dataset_load": (c.c_int, [c.c_void_p, c.c_char_p, c.c_char_p, c.c_int]),
        "lethe_dataset_free": (None, [c.c_void_p]),
        "lethe_forget_parse": (c.c_int, [c.c_void_p, c.c_char_p]),
        "lethe_forget_split": (c.c_int, [c.c_void_p, c.c_void_p, c.c_uint64, c.c_void_p,
                                         c.c_void_p]),
        "lethe_forget_split_test": (c.c_int, [c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p]),
        "lethe_subset_free": (None, [c.c_void_p]),
        "lethe_unlearn_config_default": (None, [c.c_void_p]),
        "lethe_unlearn_set": (c.c_int, [c.c_void_p, c.c_char_p, c.c_char_p]),
        "lethe_unlearn_validate": (c.c_int, [c.c_void_p]),
        "lethe_unlearn": (c.c_int, [c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p,
                                    c.c_void_p, c.c_void_p, c.c_void_p]),
        "lethe_unlearn_result_free": (None, [c.c_void_p]),
        "lethe_evaluate": (c.c_int, [c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p,
                                     c.c_void_p, c.c_void_p, c.c_uint64, c.c_void_p]),
        "lethe_dataset_batch": (None, [c.c_void_p, c.POINTER(c.c_int32), c.c_int,
                                       c.POINTER(c.c_float), c.POINTER(c.c_int32)]),
        "lethe_dataset_sample_size": (c.c_size_t, [c.c_void_p]),
        "lethe_rng_seed": (None, [c.c_void_p, c.c_uint64]),
        "lethe_rng_below": (c.c_uint32, [c.c_void_p, c.c_uint32]),
        "lethe_stream_init": (c.c_int, [c.c_void_p, c.c_void_p, c.c_uint64]),
        "lethe_stream_next": (c.c_int, [c.c_void_p, c.c_int, c.c_int, c.POINTER(c.c_int32)]),
        "lethe_stream_free": (None, [c.c_void_p]),
    }
    missing = [name for name in sigs if not hasattr(lib, name)]
    if missing:
        more = " and %d more" % (len(missing) - 3) if len(missing) > 3 else ""
        raise LetheError("%s lacks %s%s: a Lethe older than this binding (rebuild it, or "
                         "point LETHE_LIB at a newer one)" % (path, ", ".join(missing[:3]), more))
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


def _check(status):
    if status != 0:
        raise LetheError(load().lethe_last_error().decode(errors="replace"))


def _buffer(type_name):
    """A zeroed, aligned buffer as large as the library's struct."""
    n = load().lethe_sizeof(type_name.encode())
    if n == 0:
        raise LetheError("the library does not know the struct %s" % type_name)
    return (ctypes.c_double * ((n + 7) // 8))()


class _Metrics(ctypes.Structure):
    _fields_ = [("ua", ctypes.c_double), ("ra", ctypes.c_double), ("ta", ctypes.c_double),
                ("ta_forget", ctypes.c_double), ("has_ta_forget", ctypes.c_int),
                ("mia", ctypes.c_double)]


class _ResultHead(ctypes.Structure):
    """The first fields of lethe_unlearn_result (the rest stays opaque)."""
    _fields_ = [("steps", ctypes.c_long), ("seconds", ctypes.c_double),
                ("fwd_samples", ctypes.c_long), ("bwd_samples", ctypes.c_long)]


def library_version():
    return load().lethe_version().decode()


def compute_info():
    """One line: Lethe's kernel set, the OpenMP threads, OpenBLAS's kernels and threads,
    and whether Lethe switched OpenBLAS's kernels (as `lethe info --system` reports)."""
    return load().lethe_compute_info().decode(errors="replace")


class IGS:
    """EUPMU's λ controller (ALGORITHM.md §3): descend on loss_u + weight()·loss_r,
    then observe(retain loss before the step, after it, the step's learning rate)."""

    def __init__(self, eps=0.01, beta=1.0, lambda0=1.0, D=100.0):
        self._s = _buffer("lethe_igs")
        _check(load().lethe_igs_init(self._s, eps, beta, lambda0, D))

    def weight(self):
        return float(load().lethe_igs_weight(self._s))

    def observe(self, before, after, lr):
        _check(load().lethe_igs_observe(self._s, before, after, lr))


def ungrad_lambda(dot_ru, norm2_r, eps=0.0, D=100.0):
    """UNGrad's explicit multiplier λ* = clip(−(⟨g_r, g_u⟩ + ε)/‖g_r‖², 0, D)."""
    return float(load().lethe_ungrad_lambda(dot_ru, norm2_r, eps, D))


def methods():
    n = ctypes.c_int()
    names = load().lethe_methods(ctypes.byref(n))
    return [names[i].decode() for i in range(n.value)]


class _Param(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("alias", ctypes.c_char_p), ("type", ctypes.c_int),
                ("arg", ctypes.c_char_p), ("help", ctypes.c_char_p)]


def method_options(method):
    """{option: help} of a method (every method's options, its family's, its own)."""
    ptrs = (ctypes.c_void_p * 160)()
    n = load().lethe_method_params(method.encode(), ptrs, 160)
    if n < 0:
        raise LetheError("unknown method '%s' (known: %s)" % (method, ", ".join(methods())))
    out = {}
    for i in range(min(n, 160)):
        p = ctypes.cast(ptrs[i], ctypes.POINTER(_Param)).contents
        out[p.name.decode()] = p.help.decode()
    return out


def checkpoint_metadata(path):
    """The metadata of a Lethe safetensors checkpoint, as a dict."""
    lib = load()
    md = _buffer("lethe_metadata")
    _check(lib.lethe_checkpoint_read_meta(os.fsencode(path), md))
    keys = ("format", "version", "arch", "in_shape", "nclass", "dataset", "recipe", "seed",
            "trained_without", "unlearned_with", "forget", "task")
    out = {}
    for k in keys:
        v = lib.lethe_meta_get(md, k.encode())
        if v is not None:
            out[k] = v.decode()
    return out


def unlearn(model, forget, config=None, data=None, data_dir=None, out=None, seed=0,
            forget_seed=0):
    """Unlearn `forget` ("class:0", "random:10%", "indices:FILE") from the checkpoint
    `model` with the options of `config` (the names of `lethe help unlearn`, "method"
    among them); save the result to `out` if given; return its metrics in percent
    (ua, ra, ta, mia, and ta_forget for class-wise forgetting) with the run's cost."""
    lib = load()
    if not isinstance(model, (str, bytes, os.PathLike)):
        raise LetheError("model must be a checkpoint path, got %r" % (model,))
    config = dict(config or {})
    m = ctypes.c_void_p()
    md = _buffer("lethe_metadata")
    train, test = _buffer("lethe_dataset"), _buffer("lethe_dataset")
    spec = _buffer("lethe_forget_spec")
    fs, rs, tf, tr = (_buffer("lethe_subset") for _ in range(4))
    res = _buffer("lethe_unlearn_result")
    loaded = []
    try:
        _check(lib.lethe_checkpoint_open(ctypes.byref(m), os.fsencode(model), md))
        name = data or (lib.lethe_meta_get(md, b"dataset") or b"fmnist").decode()
        ddir = os.fsencode(data_dir) if data_dir else None
        _check(lib.lethe_dataset_load(train, name.encode(), ddir, 1))
        loaded.append(train)
        _check(lib.lethe_dataset_load(test, name.encode(), ddir, 0))
        loaded.append(test)
        _check(lib.lethe_forget_parse(spec, forget.encode()))
        _check(lib.lethe_forget_split(spec, train, forget_seed, fs, rs))
        _check(lib.lethe_forget_split_test(spec, test, tf, tr))
        cfg = _buffer("lethe_unlearn_config")
        lib.lethe_unlearn_config_default(cfg)
        method = str(config.pop("method", "eupmu")).encode()
        # The method first: the options that follow are checked against it.
        _check(lib.lethe_unlearn_set(cfg, b"method", method))
        _check(lib.lethe_unlearn_set(cfg, b"seed", str(seed).encode()))
        for k, v in config.items():
            _check(lib.lethe_unlearn_set(cfg, str(k).encode(), str(v).encode()))
        _check(lib.lethe_unlearn_validate(cfg))
        _check(lib.lethe_unlearn(m, train, fs, rs, cfg, res, None, None))
        _check(lib.lethe_model_reserve(m, 256))
        mt = _Metrics()
        _check(lib.lethe_evaluate(m, train, test, fs, rs, tr, tf, seed, ctypes.byref(mt)))
        if out:
            _check(lib.lethe_meta_set(md, b"unlearned_with", method))
            _check(lib.lethe_meta_set(md, b"forget", forget.encode()))
            _check(lib.lethe_checkpoint_save(m, md, os.fsencode(out)))
        head = ctypes.cast(res, ctypes.POINTER(_ResultHead)).contents
        metrics = {"ua": mt.ua, "ra": mt.ra, "ta": mt.ta, "mia": mt.mia,
                   "steps": head.steps, "seconds": head.seconds,
                   "fwd_samples": head.fwd_samples, "bwd_samples": head.bwd_samples}
        if mt.has_ta_forget:
            metrics["ta_forget"] = mt.ta_forget
        return metrics
    finally:
        lib.lethe_unlearn_result_free(res)
        for s in (fs, rs, tf, tr):
            lib.lethe_subset_free(s)
        for d in loaded:
            lib.lethe_dataset_free(d)
        if m.value:
            lib.lethe_model_free(m)


class _Subset(ctypes.Structure):
    _fields_ = [("idx", ctypes.POINTER(ctypes.c_int32)), ("n", ctypes.c_size_t)]


class Dataset:
    """A data set as Lethe loads it ("fmnist", "mnist", "cifar10"; data_dir None: the
    default folder), with Lethe's forget splits and its normalised batches, so that a
    PyTorch loop sees the very inputs `lethe unlearn` sees."""

    def __init__(self, name="fmnist", data_dir=None, train=True):
        lib = load()
        self._ds = _buffer("lethe_dataset")
        ddir = os.fsencode(data_dir) if data_dir else None
        _check(lib.lethe_dataset_load(self._ds, name.encode(), ddir, 1 if train else 0))
        head = ctypes.cast(self._ds, ctypes.POINTER(ctypes.c_int * 5)).contents
        self.n, self.c, self.h, self.w, self.nclass = (int(v) for v in head)

    def __del__(self):
        if getattr(self, "_ds", None) is not None and _lib is not None:
            _lib.lethe_dataset_free(self._ds)
            self._ds = None

    def split(self, forget, seed=0):
        """(forget, retain) index lists of a forget spec ("class:0", "random:10%",
        "indices:FILE"), each in increasing order, as lethe_forget_split makes them
        (random fractions drawn from seed)."""
        lib = load()
        spec = _buffer("lethe_forget_spec")
        fs, rs = _Subset(), _Subset()
        _check(lib.lethe_forget_parse(spec, forget.encode()))
        try:
            _check(lib.lethe_forget_split(spec, self._ds, seed, ctypes.byref(fs), ctypes.byref(rs)))
            return fs.idx[:fs.n], rs.idx[:rs.n]
        finally:
            lib.lethe_subset_free(ctypes.byref(fs))
            lib.lethe_subset_free(ctypes.byref(rs))

    def batch(self, indices):
        """(x, y) of the images `indices`: x a ctypes float array (n, C, H, W) normalised
        as Lethe does ((p/255 − mean)/std per channel), y a list of labels. Wrap x with
        torch.frombuffer(x, dtype=torch.float32).view(n, C, H, W). A text set
        ("text", "sms-spam") gives its token ids as floats, x (n, W)."""
        n = len(indices)
        for i in indices:
            if not 0 <= i < self.n:
                raise LetheError("index %d is outside the data set (0..%d)" % (i, self.n - 1))
        idx = (ctypes.c_int32 * max(n, 1))(*indices)
        x = (ctypes.c_float * max(n * load().lethe_dataset_sample_size(self._ds), 1))()
        y = (ctypes.c_int32 * max(n, 1))()
        load().lethe_dataset_batch(self._ds, idx, n, x, y)
        return x, list(y[:n])


class BatchStream:
    """Lethe's seeded batch stream over an index list (lethe_stream): next(bs) returns the
    next bs indices, reshuffling at each epoch; with wrap (as unlearning draws) every batch
    is full. `lethe unlearn` draws its forgetting batches with seed 2·s + 1 and its
    retaining ones with 2·s + 2, s its --seed."""

    def __init__(self, indices, seed):
        lib = load()
        self._idx = (ctypes.c_int32 * max(len(indices), 1))(*indices)   # kept: the stream reads it
        self._sub = _Subset(self._idx, len(indices))
        self._s = _buffer("lethe_stream")
        _check(lib.lethe_stream_init(self._s, ctypes.byref(self._sub), seed))

    def __del__(self):
        if getattr(self, "_s", None) is not None and _lib is not None:
            _lib.lethe_stream_free(self._s)
            self._s = None

    def next(self, bs, wrap=True):
        out = (ctypes.c_int32 * max(bs, 1))()
        k = load().lethe_stream_next(self._s, bs, 1 if wrap else 0, out)
        return list(out[:k])


class Rng:
    """Lethe's explicit RNG (xoshiro256** seeded by splitmix64). `lethe unlearn` draws
    the random labels of `rl` from Rng(seed ^ 0x726c6162656c73), one below(C − 1) per
    forgetting row, in batch order."""

    def __init__(self, seed):
        self._r = _buffer("lethe_rng")
        load().lethe_rng_seed(self._r, seed & 0xFFFFFFFFFFFFFFFF)

    def below(self, n):
        if n < 1:
            raise LetheError("Rng.below(%d): n must be at least 1" % n)
        return int(load().lethe_rng_below(self._r, n))
