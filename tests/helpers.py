"""Helpers shared by the test layers: comparison bounds, the kernel test
shapes, running the program, writers/servers for the small data files the
tests make, and comparing training states.

Test files import from here (``from tests.helpers import ...``), never from
one another; fixtures live in ``tests/conftest.py``.
"""

import contextlib
import functools
import gzip
import http.server
import importlib.util
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import threading

import numpy as np

from fastnn import datasets

REPO = pathlib.Path(__file__).resolve().parents[1]

DTYPES = [np.float32, np.float64]

# (n, k, m): batch 1, odd and prime sizes, wide and narrow layers, one output
SHAPES = [
    (1, 1, 1),
    (1, 784, 10),
    (2, 3, 1),
    (7, 13, 5),
    (31, 1, 17),
    (64, 257, 3),
    (97, 11, 128),
    (3, 1024, 2),
]


def close(actual, expected, dtype, scale=1.0, terms=1):
    """Assert that a kernel's result equals the reference's within rounding.

    Both sides round differently only in summation order, so the bound is
    the dtype's epsilon times the number of summed terms and the magnitude
    of the values summed (`scale`): ~1e-16 relative for float64, ~1e-7 for
    float32, grown by sqrt(terms) for a random-walk error.
    """
    eps = np.finfo(dtype).eps
    bound = 8 * eps * np.sqrt(terms) * scale
    np.testing.assert_allclose(actual, expected, rtol=8 * eps * np.sqrt(terms), atol=bound)


def load_script(name):
    """scripts/NAME.py as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_fastnn(*args, timeout=300):
    """Run the `fastnn` program (``python -m fastnn ARGS``) in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "fastnn", *args], capture_output=True, text=True, timeout=timeout
    )


def mpiexec_path():
    """The `mpiexec` beside this interpreter (MPICH's wheel puts it there), else on PATH;
    None when it or mpi4py is missing."""
    if importlib.util.find_spec("mpi4py") is None:
        return None
    beside = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def run_mpiexec(n, *command, timeout=300, env=None):
    """Run `command` as `n` MPI processes; the CompletedProcess (text output).

    The ranks' interpreter is this one; `-n 3` oversubscribes a 2-core machine,
    which MPICH allows by default.
    """
    return subprocess.run(
        [mpiexec_path(), "-n", str(n), *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def launcher_children(pid):
    """Process ids of every descendant of process `pid` (from /proc), with their
    environment; a test picks a rank by PMI_RANK."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # the command name may hold spaces: the parent id follows its ")"
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                try:
                    with open(f"/proc/{child}/environ", "rb") as f:
                        env = dict(
                            item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item
                        )
                except OSError:
                    continue
                found[child] = {k.decode(): v.decode(errors="replace") for k, v in env.items()}
                frontier.append(child)
    return found


# -- data files ----------------------------------------------------------------


def write_csv(path, header, rows):
    """A CSV file of a header line and `rows` (sequences of values)."""
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def idx_bytes(array):
    """`array` (uint8) in the IDX format: magic 0x0000080N, big-endian sizes, data."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(directory, subset="train", n=7, gz=False, rng=None):
    """Images (n, 4, 3) and labels of one MNIST subset, as IDX files in `directory`."""
    rng = rng or np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    names = datasets.IDX_FILES[subset]
    for name, array in zip(names, (images, labels)):
        data = idx_bytes(array)
        path = directory / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
    return images, labels


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests = []

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()


@contextlib.contextmanager
def serve(directory):
    """A static HTTP server on 127.0.0.1 for `directory`; yields (base URL, request log)."""
    handler = type("Handler", (_Handler,), {"requests": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mnist/", handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- networks --------------------------------------------------------------------


def small_network(rng, sizes, dtype=np.float64, scale=1.0):
    """Weights (k, m) ~ N(0, 1/k) * scale and biases ~ N(0, 0.01) of layers `sizes`."""
    coefs = [
        (rng.standard_normal((a, b)) / np.sqrt(a) * scale).astype(dtype)
        for a, b in zip(sizes[:-1], sizes[1:])
    ]
    intercepts = [(0.1 * rng.standard_normal(b)).astype(dtype) for b in sizes[1:]]
    return coefs, intercepts


def head_targets(head, rng, n, n_outputs, dtype=np.float64):
    """Targets the output head `head` trains on: labels (softmax), 0/1 (logistic), reals
    (identity), counts (exp)."""
    if head == "softmax":
        y = rng.integers(0, n_outputs, n).astype(np.intp)
        y[: min(n, n_outputs)] = np.arange(min(n, n_outputs))  # every class present
        return y
    if head == "logistic":
        return rng.integers(0, 2, (n, n_outputs)).astype(dtype)
    if head == "exp":
        return rng.poisson(2.0, (n, n_outputs)).astype(dtype)  # counts, zeros included
    return rng.standard_normal((n, n_outputs)).astype(dtype)


# -- training state ------------------------------------------------------------


def assert_same_training_state(got, expected):
    """Assert two `fastnn.engine.training_state.TrainingState`s are equal, arrays bit for bit.

    The optimizer's arrays (SGD's velocity, Adam's ms and vs) and scalars
    (learning rate, Adam's step count), the shuffling RNG and the counters.
    """
    assert got is not None and expected is not None
    assert (got.solver, got.learning_rate, got.adam_step) == (
        expected.solver,
        expected.learning_rate,
        expected.adam_step,
    )
    assert sorted(got.optimizer_arrays) == sorted(expected.optimizer_arrays)
    # an optimizer with state keeps arrays of it (momentum 0 keeps an empty velocity)
    if got.solver == "adam":
        assert {"ms", "vs"} <= set(got.optimizer_arrays)
    for name, value in expected.optimizer_arrays.items():
        assert got.optimizer_arrays[name].dtype == value.dtype, name
        np.testing.assert_array_equal(got.optimizer_arrays[name], value, err_msg=name)
    kind, keys, pos, has_gauss, gauss = expected.rng_state
    assert got.rng_state[0] == kind and got.rng_state[2:] == (pos, has_gauss, gauss)
    np.testing.assert_array_equal(got.rng_state[1], keys)
    assert (
        got.n_iter,
        got.samples_seen,
        got.best_loss,
        got.no_improvement_count,
        got.validation_scores,
        got.best_validation_score,
    ) == (
        expected.n_iter,
        expected.samples_seen,
        expected.best_loss,
        expected.no_improvement_count,
        expected.validation_scores,
        expected.best_validation_score,
    )
