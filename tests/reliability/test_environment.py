"""Environment faults, each in a fresh interpreter: a read-only install with no
writable Numba cache, NUMBA_DISABLE_JIT=1, and the `workqueue` threading layer.

Each child checks every kernel of the Numba backend against the NumPy
reference on random data, trains a tiny model, and prints what it saw.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import fastnn

CHILD = r"""
import warnings
import numpy as np
import numba
import fastnn
from fastnn import MLPClassifier, kernels, reference, _numba_ops

rng = np.random.default_rng(0)
x, W, b = rng.random((9, 5)), rng.random((5, 4)) - 0.5, rng.random(4)
y = rng.integers(0, 4, 9)
z = np.ascontiguousarray(x[:, :4])
for name, args in [
    ("linear_forward", (x, W, b)), ("linear_relu_forward", (x, W, b)),
    ("relu_forward", (x - 0.5,)), ("softmax", (x,)),
    ("softmax_cross_entropy", (z, y)), ("linear_backward", (z, x, W)),
]:
    got, want = getattr(kernels, name)(*args), getattr(reference, name)(*args)
    for g, w in zip(got if isinstance(got, tuple) else (got,),
                    want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", category=Warning)  # ConvergenceWarning of a 3-epoch fit
    X = rng.random((120, 6)).astype(np.float32)
    model = MLPClassifier((8,), max_iter=3, random_state=0).fit(X, (X[:, 0] > 0.5).astype(int))
assert model.n_iter_ == 3 and np.isfinite(model.loss_curve_).all()
assert model.loss_curve_[-1] < model.loss_curve_[0]
try:
    layer = numba.threading_layer()
except ValueError:  # no parallel region has run
    layer = None
print("file", fastnn.__file__)
print("jitted", isinstance(_numba_ops.linear_forward, numba.core.dispatcher.Dispatcher))
print("layer", layer)
print("ok")
"""


def run_child(env_changes, cwd=None, pythonpath=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(env_changes)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    result = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("ok\n")
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines()[:-1])
    return lines, result.stderr


def test_read_only_install_without_a_writable_cache_imports_and_trains(tmp_path):
    # A regular file where a directory should be makes every cache location
    # unusable, even for root (for whom permission bits do not apply).
    package = tmp_path / "site" / "fastnn"
    shutil.copytree(Path(fastnn.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (package / "__pycache__").write_text("not a directory")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    for path in package.iterdir():
        path.chmod(0o444)
    package.chmod(0o555)
    try:
        lines, stderr = run_child(
            {"NUMBA_CACHE_DIR": str(blocker / "numba"), "HOME": str(blocker),
             "XDG_CACHE_HOME": str(blocker / "cache")},
            cwd=tmp_path, pythonpath=str(package.parent),
        )
    finally:
        package.chmod(0o755)
    assert lines["file"] == str(package / "__init__.py")
    assert lines["jitted"] == "True"
    # one warning, not one per kernel
    assert stderr.count("no writable Numba cache directory") == 1
    assert "Traceback" not in stderr


def test_disable_jit_runs_the_same_code_as_plain_python():
    lines, stderr = run_child({"NUMBA_DISABLE_JIT": "1"})
    assert lines["jitted"] == "False"  # the kernels ran as Python functions
    assert "Traceback" not in stderr


def test_workqueue_threading_layer():
    lines, stderr = run_child({"NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2"})
    assert lines["jitted"] == "True"
    assert lines["layer"] in ("None", "workqueue")
    assert "Traceback" not in stderr
