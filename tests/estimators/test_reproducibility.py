"""Reproducibility of training, run in fresh interpreters.

Contract:
- same random_state, backend, dtype and thread count: bit-identical weights
  in every run;
- another thread count (NUMBA_NUM_THREADS, OPENBLAS_NUM_THREADS) or the other
  backend: the same arithmetic summed in another order, so the weights agree
  to rounding, which training then amplifies. For short runs (tens of steps)
  the largest difference is within TOLERANCE times the largest weight of the
  layer; measured here after 4 epochs: up to 1.1e-6 (float32) and 1.0e-13
  (float64) between backends, 1.0e-7 and 8e-16 between 1 and 2 threads.
  Long runs drift further apart, as any two floating-point trainings do.

Two workloads: digits through the GEMM path (batches of 64), and a narrow
784-10-10-like net on 4,096-row full batches, where the Numba backend splits
rows across threads (so the thread count changes its sums).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

TOLERANCE = {"float32": 1e-4, "float64": 1e-10}

FIT = r"""
import sys, warnings
import numpy as np
from fastnn import MLPClassifier
from fastnn.datasets import load_digits

warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
wide_X = rng.random((4096, 64))
wide_y = rng.integers(0, 10, 4096)
out = {}
for dtype in ("float32", "float64"):
    X, _, y, _ = load_digits(dtype=dtype)
    runs = {
        "gemm": (X[:640], y[:640], dict(hidden_layer_sizes=(32, 16), batch_size=64)),
        "narrow": (wide_X.astype(dtype), wide_y, dict(hidden_layer_sizes=(10,),
                                                      batch_size=4096)),
    }
    for backend in ("numba", "numpy"):
        for name, (Xr, yr, kwargs) in runs.items():
            model = MLPClassifier(max_iter=4, random_state=0, backend=backend, dtype=dtype,
                                  learning_rate_init=0.01, **kwargs).fit(Xr, yr)
            for i, a in enumerate(model.coefs_ + model.intercepts_):
                out[f"{dtype}/{backend}/{name}/{i}"] = a
np.savez(sys.argv[1], **out)
"""


def fit_in_subprocess(path, threads):
    env = dict(
        os.environ,
        NUMBA_NUM_THREADS=str(threads),
        OPENBLAS_NUM_THREADS=str(threads),
        OMP_NUM_THREADS=str(threads),
    )
    result = subprocess.run(
        [sys.executable, "-c", FIT, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("repro")
    return {
        "two": fit_in_subprocess(tmp / "a.npz", 2),
        "two_again": fit_in_subprocess(tmp / "b.npz", 2),
        "one": fit_in_subprocess(tmp / "c.npz", 1),
    }


def assert_within_tolerance(actual, expected, key):
    dtype = key.split("/")[0]
    assert actual.dtype == expected.dtype == np.dtype(dtype)
    scale = np.abs(expected).max()
    error = np.abs(actual.astype(np.float64) - expected).max()
    assert error <= TOLERANCE[dtype] * scale, (
        f"{key}: {error:.3g} > {TOLERANCE[dtype]} x {scale:.3g}"
    )


def test_same_settings_give_bit_identical_weights(runs):
    first, second = runs["two"], runs["two_again"]
    assert first.keys() == second.keys() and len(first) == 2 * 2 * (6 + 4)
    for key in first:
        assert first[key].tobytes() == second[key].tobytes(), key


def test_thread_counts_agree_within_tolerance(runs):
    for key, expected in runs["two"].items():
        assert_within_tolerance(runs["one"][key], expected, key)


def test_backends_agree_within_tolerance(runs):
    for key, expected in runs["two"].items():
        if "/numba/" in key:
            assert_within_tolerance(expected, runs["two"][key.replace("/numba/", "/numpy/")], key)
