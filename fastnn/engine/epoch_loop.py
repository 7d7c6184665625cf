"""The training loop: epochs of mini-batch steps over preallocated buffers.

`EpochRunner.run_epoch(rows)` runs one epoch and returns its statistics. On
the Numba backend the whole epoch is compiled (`fastnn.engine.numba_epoch`): Python
runs once per epoch, or once per slice of about `SLICE_SECONDS` of work, so
that Ctrl-C is seen within a fraction of a second, after a finished batch.
Two cases run a Python loop over batches instead, with the same arithmetic:
the NumPy backend (the readable reference), and the narrow single pass when a
batch is large enough to be split over threads (each batch is then a
millisecond or more, so the loop costs well under 1 %). `compiled=False`
forces the Python loop on Numba too (tests compare the two). Data-parallel
training (`shard`, from `fastnn.distributed`) runs the Python loop as well:
between a batch's gradients and its update comes the Allreduce.

What happens between epochs (history, early stopping, checkpoints) is the
estimator's (`fastnn.estimators.base`).
"""

import math
import time
from dataclasses import dataclass

import numpy as np

from fastnn.contract.tables import (
    BAD_BATCH,
    BATCHES,
    COMPACT_INPUT,
    CORRECT,
    DENSE_INPUT,
    LOSS,
    LOSS_NOT_FINITE,
    N_STATS,
    OK,
    STATUS,
    WEIGHT,
    WEIGHTS_NOT_FINITE,
)
from fastnn.engine.interrupt import StoppedTogether
from fastnn.engine.params import CACHE_LINE, per_slot, private_zeros

# Stretch of compiled work between two looks at Ctrl-C: Ctrl-C must stop within
# 0.5 s even when a slice runs several times slower than the last one (a busy
# second core stalls a 2-thread BLAS call); a return to Python costs ~50 us.
SLICE_SECONDS = 0.1
# An update of a row of W0 (Adam) against a nonzero's work in the compact first
# layer (forward pass and weight gradient), per output unit: 0.18 against
# 0.055 ns (float32, 784-128, AMD EPYC Zen 5; docs/design.md section 7)
UPDATE_NONZEROS = 3.3


@dataclass
class EpochResult:
    """What one epoch did: mean loss (with the L2 term), rows, their weight, correct rows."""

    loss: float
    rows: int
    weight: float
    correct: int
    batches: int
    status: int = OK
    bad_batch: int = -1


class EpochRunner:
    """Runs epochs of `step` (a `fastnn.engine.step.TrainStep`) with `optimizer`.

    Parameters
    ----------
    step : TrainStep
        Whose coefs/intercepts and coef_grads/intercept_grads are views of
        `params` and `grads`.
    optimizer : an optimizer of `fastnn.engine.optim`
    params, grads : FlatParameters
    X : ndarray (n, k), float of the weights' dtype or uint8 (times input_scale)
    y : intp ndarray (n,) labels (softmax head) or None
    Y : float ndarray (n, C) targets (other heads) or None
    sample_weight : float64 ndarray (n,) or None
    batch_size, alpha, input_scale : as the estimator's
    compiled : bool
        False runs the Numba backend's steps from a Python loop.
    shard : fastnn.distributed.BatchAllreduce, optional
        Train data-parallel: this rank computes its slice of every batch into
        `grads`, which must be ``shard.grads``, and the slices are summed.
    compact : tuple (indptr, indices, data, touched), optional
        X's nonzeros by row (`fastnn.engine.compact`), which the compiled GEMM
        loop's first layer reads instead of X (sparse X, or sparse enough dense
        X), and the single pass too when X is dense (`NarrowStep.compact`, in
        the compiled loop and in the Python loop of a threaded step). Otherwise
        only the compiled loop reads it: the GEMM path's Python loop reads X.

    With dropout (``step.masks``), batch b of an epoch is training step
    ``dropout_step + b`` (the caller sets `dropout_step`, the run's batch
    counter, before each epoch), and a row's masks are keyed by its index in
    X, so the compiled loop, the Python loop and every rank's slice of a batch
    draw the same masks.
    """

    def __init__(
        self,
        step,
        optimizer,
        params,
        grads,
        X,
        y,
        Y,
        sample_weight,
        batch_size,
        alpha,
        input_scale=1.0,
        compiled=True,
        shard=None,
        compact=None,
    ):
        self.step = step
        self.optimizer = optimizer
        self.params, self.grads = params, grads
        self.X = X
        dtype = step.dtype
        self.y = np.empty(0, np.intp) if y is None else y
        self.Y = step.empty_targets if Y is None else Y
        self.sw = np.empty(0, np.float64) if sample_weight is None else sample_weight
        self.batch_size = int(batch_size)
        self.alpha = float(alpha)
        self.input_scale = float(input_scale)
        self.stats = np.zeros(N_STATS)
        bs, k = self.batch_size, X.shape[1]
        self.compact = compact
        # the compiled loop's batch buffer (none for the Python loop, nor for a
        # compact X, read in place: sparse X may be wide)
        self.xb = np.empty((bs if compiled and compact is None else 0, k), dtype)
        self.yb = np.empty(bs if self.y.shape[0] else 0, np.intp)
        self.Yb = np.empty((bs if self.Y.shape[0] else 0, self.Y.shape[1]), dtype)
        self.swb = np.empty(bs if self.sw.shape[0] else 0, np.float64)
        self.ops = _ops(step.backend)
        # the single pass takes no row weights; it reads dense X, or the
        # compact form of dense X (sparse X trains on the GEMM path)
        narrow = step.narrow if self.sw.shape[0] == 0 else None
        if compact is not None and not isinstance(X, np.ndarray):
            narrow = None
        self.use_narrow = narrow is not None
        threaded = narrow is not None and narrow.chunks(bs) > 1
        self.shard = shard
        self.compiled = compiled and step.backend == "numba" and not threaded and shard is None
        if compact is not None and (shard is not None or not (self.compiled or self.use_narrow)):
            raise ValueError("a compact X is read by the compiled loop and the single pass only")
        # batches per compiled call: 1 until one call has been timed
        self.batches_per_call = 1
        if step.backend == "numba":
            from fastnn.engine import numba_epoch

            self._numba = numba_epoch
        self.parallel = None
        if self.compiled and not self.use_narrow and step.masks is None:
            from fastnn.engine.threads import gemm_threads

            threads = gemm_threads(bs, params.layer_sizes)
            if threads > 1:
                self.parallel = ParallelEpoch(step, params, threads, bs, compact)
        if self.compiled and self.use_narrow:
            # the single pass gathers shuffled rows in X's own dtype (the
            # compact form's are read in place)
            self.xnb = np.empty((bs if compact is None else 0, k), X.dtype)
            buffers = narrow.buffers() if compact is None else narrow.compact_buffers()
            self._narrow_args = (buffers,)
        self.x_native = None  # gathered rows of X's own dtype (Python loop, uint8 X)
        self.masks = step.masks
        self.dropout_step = 0
        if self.masks is not None:
            self.idb = np.empty(bs, np.int64)  # the batch's row indices (identity order)

    def run_epoch(self, rows, interrupt=None):
        """One epoch over `rows` (intp order of row indices; empty: 0..n-1 in order)."""
        n = rows.shape[0] if rows.shape[0] else self.X.shape[0]
        self.stats[:] = 0
        if self.compiled:
            self._compiled_epoch(rows, n, interrupt)
        else:
            self._python_epoch(rows, n, interrupt)
        s = self.stats
        return EpochResult(
            loss=s[LOSS] / s[WEIGHT] if s[WEIGHT] > 0 else 0.0,
            rows=n,
            weight=float(s[WEIGHT]),
            correct=int(s[CORRECT]),
            batches=int(s[BATCHES]),
            status=int(s[STATUS]),
            bad_batch=int(s[BAD_BATCH]),
        )

    def _compiled_epoch(self, rows, n, interrupt):
        step, opt = self.step, self.optimizer
        n_batches = -(-n // self.batch_size)
        first = 0
        while first < n_batches:
            stop = min(n_batches, first + self.batches_per_call)
            solver, lr, momentum, nesterov, beta1, beta2, eps, state1, state2, t = (
                opt.compiled_args()
            )
            update = (
                self.params.data,
                self.grads.data,
                self.params.n_coef,
                self.alpha,
                lr,
                momentum,
                nesterov,
                beta1,
                beta2,
                eps,
                state1,
                state2,
                t,
                self.stats,
            )
            started = time.perf_counter()
            if self.parallel is not None:
                X, xs = self.X, self.input_scale
                if self.compact is not None:  # read by the threads' parts of it
                    X = np.empty((0, self.X.shape[1]), step.dtype)
                    xs = 1.0 if self.compact[2].dtype == step.dtype else self.input_scale
                data = (X, self.y, self.Y, self.sw, xs, rows, n)
                batches = (self.batch_size, first, stop, self.xb, self.yb, self.Yb, self.swb)
                t = self.parallel.run(step, solver, data, batches, update)
            elif self.use_narrow:
                xs = 1.0 if self.X.dtype == step.dtype else self.input_scale
                src = DENSE_INPUT if self.compact is None else COMPACT_INPUT
                t = self._numba.narrow_epoch(solver, src)(
                    self.X if self.compact is None else self.compact[:3],
                    self.y,
                    xs,
                    rows,
                    n,
                    self.batch_size,
                    first,
                    stop,
                    self.xnb,
                    self.yb,
                    tuple(step.coefs),
                    tuple(step.intercepts),
                    tuple(step.coef_grads),
                    tuple(step.intercept_grads),
                    *self._narrow_args,
                    *update,
                )
            else:
                src = DENSE_INPUT if self.compact is None else COMPACT_INPUT
                dropout = 0 if self.masks is None else 1
                # the input scale applies to uint8 X only (the compact kernels scale any values)
                values = self.X if self.compact is None else self.compact[2]
                xs = 1.0 if values.dtype == step.dtype else self.input_scale
                t = self._numba.gemm_epoch(step.act, step.head, solver, src, dropout)(
                    self.X if self.compact is None else self.compact,
                    self.y,
                    self.Y,
                    self.sw,
                    xs,
                    rows,
                    n,
                    self.batch_size,
                    first,
                    stop,
                    self.xb,
                    self.yb,
                    self.Yb,
                    self.swb,
                    *step.gemm_args(),
                    *update,
                    *self._mask_args(),
                )
            seconds = time.perf_counter() - started
            opt.set_step_count(t)
            if self.stats[STATUS] != OK:
                return
            # at most doubled: one fast slice (a tiny first one) must not make the next huge
            self.batches_per_call = max(
                1,
                min(2 * (stop - first), int(SLICE_SECONDS * (stop - first) / max(seconds, 1e-9))),
            )
            first = stop
            if interrupt is not None and interrupt.pending and first < n_batches:
                raise KeyboardInterrupt

    def _mask_args(self):
        """The compiled loop's dropout arguments (none without dropout)."""
        m = self.masks
        if m is None:
            return ()
        return ((m.seeds, self.dropout_step, m.rates, m.scales, m.dropped, self.idb),)

    def _python_epoch(self, rows, n, interrupt):
        step, bs, shard = self.step, self.batch_size, self.shard
        n_batches = -(-n // bs)
        for b in range(n_batches):
            start, stop = b * bs, min(b * bs + bs, n)
            weight = self._batch_weight(rows, start, stop)
            # the whole batch's normaliser, also on a rank that holds a slice of it
            scale = 1.0 / weight if weight > 0 else 0.0
            if shard is not None:
                start, stop = shard.part(start, stop)
            if self.compact is not None:  # the single pass on the compact form, in place
                y = self.y[start:stop] if rows.shape[0] == 0 else self.y[rows[start:stop]]
                xs = 1.0 if self.X.dtype == step.dtype else self.input_scale
                loss, correct = step.narrow.compact(
                    self.compact, rows, start, stop - start, y, scale, xs
                )
                self._finish(loss, weight, scale, b)
                if self.stats[STATUS] != OK:
                    return
                self.stats[CORRECT] += correct
                if interrupt is not None and interrupt.pending and b + 1 < n_batches:
                    raise KeyboardInterrupt
                continue
            x, y, Y, sw = self._batch(rows, start, stop)
            keys = {}
            if self.masks is not None:
                ids = rows[start:stop] if rows.shape[0] else np.arange(start, stop)
                keys = {"ids": ids, "step": self.dropout_step + b}
            loss, correct = step.batch_grads(x, y, Y, sw, scale, self.input_scale, **keys)
            stopping = interrupt is not None and interrupt.pending
            if shard is not None:
                loss, correct, stopping = shard(loss, correct, stopping)
            self._finish(loss, weight, scale, b)
            if self.stats[STATUS] != OK:
                return
            self.stats[CORRECT] += correct
            if stopping and b + 1 < n_batches:
                raise KeyboardInterrupt if shard is None else StoppedTogether
        if self.stats[STATUS] == OK and not np.isfinite(self.params.data).all():
            self.stats[STATUS] = WEIGHTS_NOT_FINITE
            self.stats[BAD_BATCH] = n_batches - 1

    def _batch_weight(self, rows, start, stop):
        """Rows in batch [start, stop) of the epoch, or the sum of their weights."""
        if self.sw.shape[0] == 0:
            return float(stop - start)
        pick = slice(start, stop) if rows.shape[0] == 0 else rows[start:stop]
        return float(self.sw[pick].sum())

    def _batch(self, rows, start, stop):
        if rows.shape[0] == 0:
            pick = slice(start, stop)
            x = self.X[pick]
        else:
            pick = rows[start:stop]
            if not isinstance(self.X, np.ndarray):
                x = self.X[
                    pick
                ]  # sparse X (fastnn.engine.sparse_step): the batch's rows, still CSR
            else:
                if self.x_native is None:
                    self.x_native = np.empty((self.batch_size, self.X.shape[1]), self.X.dtype)
                x = np.take(self.X, pick, axis=0, out=self.x_native[: stop - start])
        y = self.y[pick] if self.y.shape[0] else self.y
        Y = self.Y[pick] if self.Y.shape[0] else None
        sw = self.sw[pick] if self.sw.shape[0] else self.sw
        return x, y, Y, sw

    def _finish(self, loss, weight, scale, b):
        opt = self.optimizer
        if self.step.backend == "numba":
            solver, lr, momentum, nesterov, beta1, beta2, eps, state1, state2, t = (
                opt.compiled_args()
            )
            t = self._numba.finish_any_batch(
                loss,
                weight,
                scale,
                b,
                self.params.data,
                self.grads.data,
                self.params.n_coef,
                self.alpha,
                solver,
                lr,
                momentum,
                nesterov,
                beta1,
                beta2,
                eps,
                state1,
                state2,
                t,
                self.stats,
            )
            opt.set_step_count(t)
            return
        # the NumPy reference of finish_batch
        n_coef = self.params.n_coef
        if self.alpha > 0:
            loss += self.ops.l2_penalty(
                self.params.data[:n_coef], self.grads.data[:n_coef], self.alpha * scale
            )
        if not np.isfinite(loss):
            self.stats[STATUS] = LOSS_NOT_FINITE
            self.stats[BAD_BATCH] = b
            return
        opt.update_params(self.ops, self.params.data, self.grads.data)
        self.stats[LOSS] += loss * weight
        self.stats[WEIGHT] += weight
        self.stats[BATCHES] += 1


class ParallelEpoch:
    """The GEMM path's compiled epoch on `threads` threads (`fastnn.engine.numba_parallel`).

    Shared with the serial loop: the target and row-weight buffers, the step's
    activations and deltas (each thread writes its rows), the flat parameters
    and gradients (each thread its own entries). Each thread's own: its
    columns of the batch's rows of X, a float64 accumulator, a scratch bias
    row, and its partial product of the first layer's output in `partials`.
    OpenBLAS is held at 1 thread while it runs.
    """

    def __init__(self, step, params, threads, batch_size, compact=None):
        from fastnn.engine import numba_parallel
        from fastnn.engine import threads as threads_module
        from fastnn.engine.compact import split_by_columns

        self._numba, self._threads = numba_parallel, threads_module
        self.threads = threads
        width = max(params.layer_sizes)
        # what each thread alone writes, on pages of its own (params.PAGE)
        self.acc = per_slot(threads, (width,), np.float64)
        self.db = per_slot(threads, (width,), step.dtype)
        self.sync = np.zeros(numba_parallel.SYNC_SIZE, np.int64)
        self.parts = per_slot(threads, (numba_parallel.PART_WIDTH,), np.float64)
        base = params.data.ctypes.data
        views = list(params.coefs) + list(params.intercepts)
        size = params.data.itemsize
        self.offsets = np.array([(v.ctypes.data - base) // size for v in views], np.int64)
        self._blas = threads_module.BlasLimit()
        # the first layer's inputs (rows of W0) per thread: whole cache lines
        # of the flat buffers (which start on one), so that no line of W0, dW0
        # or the optimizer state is written by two threads
        work = None
        if compact is not None:  # split by the work of each input, not their count
            n_batches = -(-(compact[0].shape[0] - 1) // batch_size)
            work = compact_input_work(compact[1], params.coefs[0].shape[0], n_batches)
        self.ks = first_layer_inputs(*params.coefs[0].shape, threads, size, work)
        self.small_mnk = threads_module.small_gemm_mnk()
        self._xb, self._partials = [], None
        # X's compact form: each thread reads the entries of its own inputs
        if compact is None:
            none = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, step.dtype))
            self.entries, self.touched = [none] * threads, np.empty(0, np.uint8)
        else:
            self.entries = split_by_columns(compact[:3], self.ks)
            self.touched = compact[3]

    def run(self, step, solver, data, batches, update):
        """Batches [first, stop) on every thread; returns Adam's t."""
        loop = self._numba.parallel_epoch(step.act, step.head, solver)
        coefs, intercepts, activations, deltas, coef_grads, intercept_grads, _ = step.gemm_args()
        network = (coefs, intercepts, activations, deltas, coef_grads, intercept_grads)
        T = self.threads
        rows, dtype = batches[0], step.dtype
        if self._partials is None or self._partials.shape[1] != rows:
            # each thread's columns of the batch (none on the compact form)
            widths = np.diff(self.ks) if self.touched.shape[0] == 0 else [0] * T
            self._xb = [private_zeros((rows, w), dtype) for w in widths]
            self._partials = per_slot(T, (rows, coefs[0].shape[1]), dtype)

        def call(tid):
            return lambda: loop(
                tid,
                T,
                self.sync,
                self.parts,
                self.offsets,
                *data,
                *batches[:3],
                self._xb[tid],
                *batches[4:],
                *network,
                self.acc[tid],
                self.db[tid],
                self.ks,
                self._partials,
                self.small_mnk,
                *self.entries[tid],
                self.touched,
                *update,
            )

        with self._blas.limit():
            return self._threads.run_together([call(tid) for tid in range(T)], self.sync)


def first_layer_inputs(inputs, width, threads, itemsize, work=None):
    """Thread t's inputs of the first layer (rows of its k x width W0): [ks[t], ks[t + 1]).

    An even split of the inputs, or of their `work` (one nonnegative cost per
    input) where given, with the inner ends rounded so that each thread's
    rows start on a cache line (of a buffer that starts on one); a thread may
    get none: it then adds a zero partial product and takes rows and other
    layers.
    """
    step = CACHE_LINE // math.gcd(CACHE_LINE, width * itemsize)
    if work is None or not np.sum(work) > 0:
        ends = [inputs * t / threads for t in range(threads + 1)]
    else:  # where the cumulative work reaches each thread's share, between inputs
        cumulative = np.concatenate([[0.0], np.cumsum(work, dtype=np.float64)])
        shares = cumulative[-1] * np.arange(threads + 1) / threads
        ends = np.interp(shares, cumulative, np.arange(inputs + 1))
    cuts = [round(e / step) * step for e in ends]
    cuts[0], cuts[-1] = 0, inputs
    return np.array([min(c, inputs) for c in cuts], np.int64)


def compact_input_work(indices, inputs, n_batches):
    """The first layer's work per input on X's compact form, in nonzeros of an epoch.

    Each nonzero of input q is read twice an epoch (the forward pass and the
    weight gradient), and row q of W0 is updated at each of the epoch's
    `n_batches` steps, which costs UPDATE_NONZEROS nonzeros' work. MNIST's
    nonzeros lie 47 / 53 % in the first / last 392 pixels: an even split of
    the inputs kept one thread waiting for the other at each barrier.
    """
    counts = np.bincount(indices, minlength=inputs)[:inputs]
    return counts + UPDATE_NONZEROS * n_batches


def _ops(backend):
    from fastnn.backend import get_backend

    return get_backend(backend).ops
