#!/usr/bin/env python
"""Time fastnn's `MLPClassifier.fit` per step against NumPy, PyTorch, JAX and the seed loop.

Configurations (docs/design.md section 8): a = 784-10-10 at batch 42,000 (the seed
recipe, full batch), b = 784-128-10 at 128, c = 784-256-128-10 at 256,
d = 784-1024-1024-10 at 512; a-uint8 is config a with the same images as
uint8 bytes (``rint(X * 255)``), which fastnn reads as they are and scales by
1/255 on the fly. A step is forward, softmax cross-entropy, backward and a
plain SGD update (lr 0.1), on synthetic data shaped like the digits (pixels in
[0, 1), 10 classes). Every implementation trains on the same X: `ROWS[c]`
rows, a whole number of batches (config a: 42,000 rows, one step per epoch).

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
so that no two pools fight. The parent interleaves the workers round by round
(config by config, implementation by implementation, with an idle gap so that
spinning BLAS workers go to sleep) and reports medians over rounds. In the
same run an sgemm worker measures the machine's GEMM peak and a "floor"
worker the time to stream config a's X once (a jitted sum on `--threads`
threads), float32 and uint8.

The workers run without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (a user's
machine has neither); ``--coretype Haswell`` sets OPENBLAS_CORETYPE=Haswell
for them instead, ``--coretype-both`` runs both, one labelled table each.

    python scripts/bench_peers.py --out bench-results          # several minutes
    python scripts/bench_peers.py --coretype-both --out bench-results
    python scripts/bench_peers.py --quick --out /tmp/bench     # about a minute

PyTorch and JAX are optional (they are not fastnn dependencies); a missing one
is reported as such. Writes ``peers.md`` (a block meant for the README as it
is) and ``peers.json`` (every raw sample) to `--out`.
"""

import argparse
import datetime
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
IMPLS = ("fastnn-numba", "fastnn-numpy", "torch", "jax", "seed-numpy")
# The configs each implementation runs (the others: all but a-uint8)
ONLY = {"fastnn-numba": ("a", "a-uint8", "b", "c", "d"), "seed-numpy": ("a",)}
PEERS = ("fastnn-numpy", "torch", "jax", "seed-numpy")
LEARNING_RATE = 0.1
INPUT_SCALE = 1 / 255
SGEMM_SIZE = 2048
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


def _data(sizes, rows, dtype, seed=0):
    """X (rows, 784) in [0, 1), labels, and a network's weights (He-like, zero biases)."""
    import numpy as np

    rng = np.random.default_rng(seed)
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

    def __init__(self, backend, config, dtype, rows):
        import warnings

        import numpy as np
        from sklearn.exceptions import ConvergenceWarning

        from fastnn import MLPClassifier, get_backend
        from fastnn.engine.params import FlatParameters
        from fastnn.engine.step import TrainStep

        self._warnings, self._warning = warnings, ConvergenceWarning
        sizes, batch = CONFIGS[config]
        X, y, coefs, intercepts = _data(sizes, rows, dtype)
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


def _torch_bench(config, dtype, threads, rows):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    sizes, batch = CONFIGS[config]
    X, y, coefs, intercepts = _data(sizes, rows, dtype)
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


def _jax_bench(config, dtype, rows):
    import jax
    import jax.numpy as jnp
    import numpy as np

    if np.dtype(dtype) == np.float64:
        jax.config.update("jax_enable_x64", True)
    sizes, batch = CONFIGS[config]
    X, y, coefs, intercepts = _data(sizes, rows, dtype)
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


def _seed_bench(rows):
    """The blog's loop with correct maths (see the module docstring)."""
    import numpy as np

    X32, labels, _, _ = _data(CONFIGS["a"][0], rows, "float32")
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


def _make_bench(impl, config, dtype, threads, rows):
    if impl == "sgemm":
        return SgemmBench()
    if impl == "floor":
        return FloorBench(config, threads)
    if impl.startswith("fastnn-"):
        return FastnnBench(impl.split("-", 1)[1], config, dtype, rows)
    if impl == "torch":
        return _torch_bench(config, dtype, threads, rows)
    if impl == "jax":
        return _jax_bench(config, dtype, rows)
    if impl == "seed-numpy":
        return _seed_bench(rows)
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
    """Serve JSON-line requests on stdin: {"config", "kind", "min_time", "rows"} -> a result."""
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
        config, kind = request["config"], request["kind"]
        if kind == "setup":
            bench = _make_bench(impl, config, dtype, threads, request["rows"])
            benches[config] = bench
            info = bench.setup(request["min_time"])
            info["kinds"] = list(bench.kinds)
            print(json.dumps(info), flush=True)
            continue
        print(json.dumps(getattr(benches[config], kind)(request["min_time"])), flush=True)


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


def run(args, coretype):
    impls = [i for i in args.impls.split(",") if i]
    configs = [c for c in args.configs.split(",") if c]
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown config {c!r}; known: {', '.join(CONFIGS)}")
    rows_of = QUICK_ROWS if args.quick else ROWS
    env = worker_env(args.threads, coretype)
    load_before = os.getloadavg()[0]
    # (impl, config) pairs each worker serves: sgemm and the memory floor first
    plan = {"sgemm": ["-"], "floor": ["float32", "uint8"]}
    for impl in impls:
        plan[impl] = [c for c in configs if runs_config(impl, c)]
    workers, skipped = {}, {}
    for impl, its_configs in plan.items():
        if not its_configs:
            continue
        w = Worker(impl, args.dtype, args.threads, env)
        if w.error:
            skipped[impl] = w.error
            w.close()
        else:
            workers[impl] = w
    setup, kinds = {}, {}
    samples = {}  # (impl, config, kind) -> list of results
    try:
        for impl, w in workers.items():
            for c in plan[impl]:
                info = w.ask(
                    config=c, kind="setup", min_time=args.min_time, rows=rows_of.get(c, 0)
                )
                setup[f"{impl}/{c}"] = info
                kinds[(impl, c)] = info["kinds"]
                for kind in info["kinds"]:
                    samples[(impl, c, kind)] = []
                time.sleep(args.gap)
        order_all = list(workers)
        for round_ in range(args.rounds):
            # Rotate the order each round so no implementation always runs first
            k = round_ % len(order_all)
            order = order_all[k:] + order_all[:k]
            for c in ["-", "float32", "uint8", *configs]:
                for impl in order:
                    if c not in plan[impl]:
                        continue
                    for kind in kinds[(impl, c)]:
                        samples[(impl, c, kind)].append(
                            workers[impl].ask(config=c, kind=kind, min_time=args.min_time)
                        )
                        time.sleep(args.gap)
            print(f"[{coretype}] round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()

    def med(impl, c, kind):
        got = samples.get((impl, c, kind))
        return statistics.median(s["ms"] for s in got) if got else None

    sgemm_ms = med("sgemm", "-", "bare")
    peak = 2 * SGEMM_SIZE**3 / (sgemm_ms * 1e-3) / 1e9
    floor = {}
    for kind in ("float32", "uint8"):
        ms = med("floor", kind, "bare")
        nbytes = setup[f"floor/{kind}"]["bytes"]
        floor[kind] = {
            "bytes": nbytes,
            "ms": ms,
            "gb_per_s": nbytes / (ms * 1e-3) / 1e9,
            "samples": samples[("floor", kind, "bare")],
        }
    rows = []
    for c in configs:
        sizes, batch = CONFIGS[c]
        flops = step_flops(sizes, batch)
        for impl in impls:
            if impl not in workers or c not in plan[impl]:
                continue
            fit_ms, bare_ms = med(impl, c, "fit"), med(impl, c, "bare")
            info = setup[f"{impl}/{c}"]
            rows.append(
                {
                    "config": c,
                    "network": "-".join(map(str, sizes)),
                    "batch": batch,
                    "rows": rows_of[c],
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
                    "setup": info,
                    "fit_samples": samples.get((impl, c, "fit"), []),
                    "bare_samples": samples.get((impl, c, "bare"), []),
                }
            )
    best = {(r["config"], r["impl"]): r["best_ms"] for r in rows}
    fit = {(r["config"], r["impl"]): r["fit_ms"] for r in rows}
    ratios = {}
    for c in configs:
        mine = fit.get((c, "fastnn-numba"))
        for peer in PEERS:
            theirs = best.get((base_config(c), peer))
            if mine and theirs and mine > 0:  # a busy machine can make a difference <= 0
                ratios.setdefault(c, {})[peer] = theirs / mine
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
        "dtype": args.dtype,
        "rounds": args.rounds,
        "min_time_s": args.min_time,
        "gap_s": args.gap,
        "quick": args.quick,
        "versions": {impl: w.version for impl, w in workers.items()},
        "skipped": skipped,
        "sgemm": {
            "size": SGEMM_SIZE,
            "ms": sgemm_ms,
            "gflops": peak,
            "samples": samples[("sgemm", "-", "bare")],
        },
        "memory_floor": floor,
        "results": rows,
        "speedup_of_fastnn_numba_fit": ratios,
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
        fit_ms = _ms(r["fit_ms"], r["fit_samples"])
        bare_ms = _ms(r["bare_ms"], r["bare_samples"])
        noisy = noisy or "†" in fit_ms + bare_ms
        overhead = "-" if r["fit_overhead_pct"] is None else f"{r['fit_overhead_pct']:+.0f} %"
        if r["impl"] == "fastnn-numba":
            cells = [
                f"{ratios[r['config']][p]:.2f}x" if p in ratios.get(r["config"], {}) else "-"
                for p in PEERS
            ]
        else:
            cells = [""] * len(PEERS)
        lines.append(
            f"| {r['config']} ({r['network']}, batch {r['batch']}, {r['rows']} rows) | "
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
    if noisy:
        lines += [
            "",
            "† its samples spread by more than their median: the machine was busy; "
            "rerun on an idle one.",
        ]
    if report["skipped"]:
        lines += ["", "Not run: " + ", ".join(f"{k} ({v})" for k, v in report["skipped"].items())]
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2)
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
    parser.add_argument("--out", help="directory for peers.md and peers.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.dtype, args.threads)
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
    text = "\n".join(markdown(r) for r in reports)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "peers.md"), "w") as f:
            f.write(text)
        with open(os.path.join(args.out, "peers.json"), "w") as f:
            json.dump({"command": reports[0]["command"], "runs": reports}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
