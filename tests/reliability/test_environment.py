"""Environment faults, each in a fresh interpreter: a read-only install with no
writable Numba cache, NUMBA_DISABLE_JIT=1, and the threading layers.

Each child checks every kernel of the Numba backend against the NumPy
reference on random data, trains a tiny model, and prints what it saw.

fastnn's kernels use no ``parallel=True`` (their threads are a Python pool
over jitted code that releases the GIL), so training alone starts no Numba
threading layer. The threading-layer test therefore also runs a small
``prange`` function in the child, after fastnn's kernels, so that the layer
is loaded and used in the same process, and checks that it is the one asked
for.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn

CHILD = r"""
import warnings
import numpy as np
import numba
import fastnn
from fastnn import MLPClassifier, kernels, reference
from fastnn.contract import numba_ops

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
# PARALLEL
try:
    layer = numba.threading_layer()
except ValueError:  # no parallel region has run
    layer = None
print("file", fastnn.__file__)
print("jitted", isinstance(numba_ops.linear_forward, numba.core.dispatcher.Dispatcher))
print("layer", layer)
print("ok")
"""


# Parallel work in the child, while fastnn's kernels are loaded: the threads
# of the threading layer sum rows of a matrix and say which thread took each
# row. The sums must be right and both threads must have taken rows. (Nothing
# here may call numba.get_num_threads(): that alone starts the layer, without
# any parallel work.)
PARALLEL = r"""
@numba.njit(parallel=True)
def row_sums(a, thread_of_row):
    out = np.empty(a.shape[0])
    for i in numba.prange(a.shape[0]):
        out[i] = a[i].sum()
        thread_of_row[i] = numba.get_thread_id()
    return out

big = rng.random((4000, 50))
thread_of_row = np.full(len(big), -1)
np.testing.assert_allclose(row_sums(big, thread_of_row), big.sum(axis=1), rtol=1e-12)
print("threads_used", len(np.unique(thread_of_row)))
"""


def run_child(env_changes, cwd=None, pythonpath=None, parallel=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(env_changes)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    code = CHILD.replace("# PARALLEL\n", PARALLEL if parallel else "")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("ok\n")
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines()[:-1])
    return lines, result.stderr


def test_read_only_install_without_a_writable_cache_imports_and_trains(tmp_path):
    # A regular file where a directory should be makes every cache location
    # unusable, even for root (for whom permission bits do not apply).
    package = tmp_path / "site" / "fastnn"
    shutil.copytree(
        Path(fastnn.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    folders = [package, *(p for p in package.rglob("*") if p.is_dir())]
    for folder in folders:  # every layer's folder has its own cache
        (folder / "__pycache__").write_text("not a directory")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    for path in package.rglob("*"):
        if path.is_file():
            path.chmod(0o444)
    for folder in folders:
        folder.chmod(0o555)
    try:
        lines, stderr = run_child(
            {
                "NUMBA_CACHE_DIR": str(blocker / "numba"),
                "HOME": str(blocker),
                "XDG_CACHE_HOME": str(blocker / "cache"),
            },
            cwd=tmp_path,
            pythonpath=str(package.parent),
        )
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert lines["file"] == str(package / "__init__.py")
    assert lines["jitted"] == "True"
    # one warning, not one per kernel
    assert stderr.count("no writable Numba cache directory") == 1
    assert "Traceback" not in stderr


def test_disable_jit_runs_the_same_code_as_plain_python():
    lines, stderr = run_child({"NUMBA_DISABLE_JIT": "1"})
    assert lines["jitted"] == "False"  # the kernels ran as Python functions
    assert "Traceback" not in stderr


def _omp_loads():
    try:
        from numba.np.ufunc import omppool  # noqa: F401  (needs libgomp)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize(
    "layer",
    [
        "workqueue",  # built into Numba: always there
        pytest.param(
            "omp",
            marks=pytest.mark.skipif(
                not _omp_loads(), reason="Numba's OpenMP layer does not load"
            ),
        ),
    ],
)
def test_threading_layer(layer):
    lines, stderr = run_child(
        {"NUMBA_THREADING_LAYER": layer, "NUMBA_NUM_THREADS": "2"}, parallel=True
    )
    assert lines["jitted"] == "True"
    # the layer that ran the prange loop is the one asked for, not a fallback,
    # and the loop's rows were shared between its two threads
    assert lines["layer"] == layer
    assert lines["threads_used"] == "2"
    assert "Traceback" not in stderr
