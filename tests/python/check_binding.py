"""The Python binding against the library and the command line (run by
tests/test_python.c with /usr/bin/python3):
check_binding.py MODEL DATA_DIR OUT [LIB_V1 LIB_OLD]
prints the metrics of lethe.unlearn as JSON after checking the small calls
and the errors. LIB_V1 and LIB_OLD are fake libraries (fake_lethe.c) of
major version 1 and of a 0.x without the calls the binding needs. Exit 0
only if every check held."""
import ctypes
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bindings", "python"))
import lethe  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


model, data_dir, out = sys.argv[1:4]
fake_v1, fake_old = (sys.argv[4:6] + [None, None])[:2]

# The λ controller: a rising retain loss raises λ; by hand, β_t = β0·α·(t+1)^(-1/3).
igs = lethe.IGS(eps=0.01, beta=1.0, lambda0=1.0, D=100.0)
lam = 1.0
for t in range(5):
    igs.observe(0.3 + 0.01 * t, 0.31 + 0.01 * t, 0.1)
    delta = (-0.01) / 0.1 + 0.01
    lam = min(max(lam - 1.0 * 0.1 * (t + 1) ** (-1.0 / 3.0) * delta, 0.0), 100.0)
check(abs(igs.weight() - lam) < 1e-5, "IGS weight %g, by hand %g" % (igs.weight(), lam))
check(lethe.ungrad_lambda(-2.0, 4.0, 0.0, 100.0) == 0.5, "UNGrad lambda* of (-2, 4)")
check(lethe.ungrad_lambda(2.0, 4.0, 0.0, 100.0) == 0.0, "UNGrad lambda* without conflict")
check("eupmu" in lethe.methods() and "cagrad" in lethe.methods(), "methods()")
# What computes: the kernel set first, then OpenBLAS's core as it runs now (the library's
# own OpenBLAS, asked through the same handle).
info = lethe.compute_info()
_corename = lethe.load().openblas_get_corename
_corename.restype = ctypes.c_char_p
check(info.startswith("kernels ") and
      ("; OpenBLAS %s kernels, " % _corename().decode()) in info, "compute_info %r" % info)
check("c" in lethe.method_options("cagrad") and "c" not in lethe.method_options("pcgrad"),
      "method_options")

# Errors are LetheError with the library's message, never a crash.
def raises(fn, needle, what):
    try:
        fn()
    except lethe.LetheError as e:
        check(needle in str(e), "%s: message %r lacks %r" % (what, str(e), needle))
        return
    failures.append("%s: no LetheError" % what)

raises(lambda: lethe.IGS(eps=-1.0), "eps", "IGS with eps < 0")
raises(lambda: lethe.method_options("nope"), "nope", "unknown method")
raises(lambda: lethe.unlearn(None, "class:0"), "model", "a NULL model")
raises(lambda: lethe.unlearn("/nonexistent.safetensors", "class:0"), "/nonexistent",
       "a missing checkpoint")
raises(lambda: lethe.unlearn(model, "class:0", {"method": "pcgrad", "c": 0.5},
                             data="mnist", data_dir=data_dir), "pcgrad has no option 'c'",
       "an option the method lacks")
raises(lambda: lethe.load("/nonexistent/liblethe.so"), "not found", "a missing library")
raises(lambda: lethe.load("libm.so.6"), "not liblethe", "a library that is not Lethe")
if fake_v1:
    raises(lambda: lethe.load(fake_v1), "is Lethe 1.0.0; this binding needs 0.x",
           "a library of another major version (ABI)")
if fake_old:
    raises(lambda: lethe.load(fake_old), "lacks lethe_last_error",
           "a 0.x library without the binding's calls")
# The binding's own library stays loaded after the refusals above.
check(lethe.IGS().weight() == 1.0, "IGS after the refused libraries")
# A NULL model given to the library itself: an error status, never a crash.
lib = lethe.load()
check(lib.lethe_model_reserve(None, 8) == 4 and b"NULL model" in lib.lethe_last_error(),
      "lethe_model_reserve(NULL): %r" % lib.lethe_last_error())
check(lib.lethe_unlearn(None, None, None, None, None, None, None, None) == 4 and
      b"NULL model" in lib.lethe_last_error(), "lethe_unlearn(NULL): %r" % lib.lethe_last_error())

meta = lethe.checkpoint_metadata(model)
check(meta.get("arch") == "mlp", "checkpoint metadata %r" % (meta,))

metrics = lethe.unlearn(model, "class:0", {"method": "eupmu", "steps": 3, "batch": 16},
                        data="mnist", data_dir=data_dir, out=out)
check(all(math.isfinite(metrics[k]) for k in ("ua", "ra", "ta", "mia")), "finite metrics")
check(metrics["steps"] == 3 and os.path.exists(out), "steps and the saved model")
print(json.dumps(metrics))
for f in failures:
    print("check_binding: " + f, file=sys.stderr)
sys.exit(1 if failures else 0)
