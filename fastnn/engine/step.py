"""A network's forward pass and training step over preallocated buffers, on either backend.

Like llm.c's `gpt2_forward/backward`, these only call kernels: the Numba
backend's fused step (`fastnn.engine.numba_step`) or the NumPy reference step
(`fastnn.engine.numpy_step`). `TrainStep` allocates every buffer of a step once for
the largest batch; a smaller batch runs on leading-row views, so a step
allocates nothing (on the Numba backend). Inputs are assumed valid: the
estimator checks them once per fit.

coefs[i] is (fan_in, fan_out), intercepts[i] is (fan_out,), rows are samples.
uint8 inputs (pixels) are read as they are and scaled by `input_scale`.
"""

import importlib

import numpy as np

from fastnn.contract.tables import RELU, SOFTMAX_HEAD, activation_code, head_code
from fastnn.engine import compact
from fastnn.engine.compact import use_compact
from fastnn.engine.params import aligned_zeros

_STEPS = {"numba": "fastnn.engine.numba_step", "numpy": "fastnn.engine.numpy_step"}
_BY_MODULE = {
    "fastnn.kernels": "numba",
    "fastnn.contract.numba_ops": "numba",
    "fastnn.reference": "numpy",
    "fastnn.contract.numpy_ops": "numpy",
}


def backend_name(backend):
    """ "numba" or "numpy" from a name, a backend module or its `ops`."""
    if isinstance(backend, str) and backend in _STEPS:
        return backend
    name = _BY_MODULE.get(getattr(backend, "__name__", None))
    if name is None:
        raise ValueError(
            f"backend must be 'numba', 'numpy' or a fastnn backend module, got {backend!r}"
        )
    return name


def _as_float(x, dtype, input_scale, out=None):
    """x itself when it is already `dtype`, else x widened and times `input_scale`."""
    if x.dtype == dtype:
        return x
    if out is None:
        out = np.empty(x.shape, dtype)
    np.multiply(x, dtype.type(input_scale), out=out, dtype=dtype)
    return out


class ForwardPass:
    """Output pre-activations (logits) of up to `max_batch` rows at a time."""

    def __init__(self, backend, coefs, intercepts, max_batch, activation="relu"):
        self.backend = backend_name(backend)
        self.step_module = importlib.import_module(_STEPS[self.backend])
        self.coefs = list(coefs)
        self.intercepts = list(intercepts)
        self.dtype = self.coefs[0].dtype
        self.act = activation_code(activation)
        self.max_batch = max_batch
        # activations[i] is layer i's output; the last one holds the logits,
        # then (in a TrainStep) the loss gradient, in place.
        self.activations = tuple(
            aligned_zeros((max_batch, W.shape[1]), self.dtype) for W in self.coefs
        )
        self._x = None  # a float batch buffer, made on the first integer batch

    def _narrow_forward(self):
        # the single pass's networks: no BLAS in their predictions (see narrow_forward)
        if self.backend != "numba" or len(self.coefs) != 2 or self.act != RELU:
            return False
        from fastnn.engine.numba_step import NARROW_MAX_WIDTH

        return max(W.shape[1] for W in self.coefs) <= NARROW_MAX_WIDTH

    def _float_batch(self, x, input_scale):
        if x.dtype == self.dtype:
            return x
        if self._x is None:
            self._x = np.empty((self.max_batch, x.shape[1]), self.dtype)
        return _as_float(x, self.dtype, input_scale, self._x[: x.shape[0]])

    def forward(self, x, input_scale=1.0):
        """Logits of batch `x` (a view of n rows of the last buffer on Numba)."""
        if self._narrow_forward():
            from fastnn.engine.numba_step import narrow_predict

            xs = 1.0 if x.dtype == self.dtype else input_scale
            W1T = np.ascontiguousarray(self.coefs[0].T)
            return narrow_predict(
                x,
                xs,
                W1T,
                self.intercepts[0],
                self.coefs[1],
                self.intercepts[1],
                self.activations[-1][: x.shape[0]],
            )
        x = self._float_batch(x, input_scale)
        if self.backend == "numpy":
            return self.step_module.forward(x, self.act, self.coefs, self.intercepts)
        return self.step_module.FORWARDS[self.act](
            x, tuple(self.coefs), tuple(self.intercepts), self.activations
        )

    def forward_compact(self, parts, input_scale=1.0):
        """Logits of the rows of X whose nonzeros by row are `parts` (`engine.compact`),
        the first layer reading those only (Numba backend)."""
        indptr, indices, data = parts
        xs = 1.0 if data.dtype == self.dtype else input_scale
        # a row source of rows 0..n-1 in order (`numba_step.compact_rows`); the
        # flags are the weight gradient's, unused here
        source = (indptr, indices, data, _NO_FLAGS, _IN_ORDER, 0, indptr.shape[0] - 1, xs)
        return self.step_module.COMPACT_FORWARDS[self.act](
            source, tuple(self.coefs), tuple(self.intercepts), self.activations
        )


_NO_FLAGS = np.zeros(0, np.uint8)
_IN_ORDER = np.empty(0, np.intp)
_EMPTY_LABELS = np.empty(0, np.intp)
_EMPTY_WEIGHTS = np.empty(0, np.float64)


class TrainStep(ForwardPass):
    """Loss and gradients of one batch, over preallocated buffers.

    Parameters
    ----------
    backend : "numba", "numpy", or a backend module or its ops
    coefs, intercepts : list of ndarray
        The parameters (read); views of a flat buffer in the estimator.
    max_batch : int
    activation : str
        Hidden-layer activation, a name of `fastnn.contract.tables.ACTIVATIONS`.
    head : str
        Output head, a name of `fastnn.contract.tables.HEADS`.
    coef_grads, intercept_grads : list of ndarray, optional
        Where the gradients go (default: new arrays).
    dropout : sequence of float, optional
        Dropout rates of the hidden layers (`DropoutMasks`); None or all 0:
        none, and the step runs exactly the code it runs without them.
    dropout_seed : int in [0, 2**64)
        The masks' seed; hidden layer i's masks hash ``dropout_seed + i``.
    """

    def __init__(
        self,
        backend,
        coefs,
        intercepts,
        max_batch,
        activation="relu",
        head="softmax",
        coef_grads=None,
        intercept_grads=None,
        dropout=None,
        dropout_seed=0,
    ):
        super().__init__(backend, coefs, intercepts, max_batch, activation)
        self.head = head_code(head)
        self.masks = DropoutMasks.of(dropout, dropout_seed, self.coefs, max_batch)
        dtype = self.dtype
        self.coef_grads = (
            [np.empty_like(W) for W in self.coefs] if coef_grads is None else list(coef_grads)
        )
        self.intercept_grads = (
            [np.empty_like(b) for b in self.intercepts]
            if intercept_grads is None
            else list(intercept_grads)
        )
        # deltas[i] is the gradient with respect to layer i's input, for i >= 1;
        # tuples hold one array type, hence the (0, 0) placeholder for deltas[0]
        self.deltas = (np.empty((0, 0), dtype),) + tuple(
            aligned_zeros((max_batch, W.shape[0]), dtype) for W in self.coefs[1:]
        )
        self.empty_targets = np.empty((0, self.coefs[-1].shape[1]), dtype)
        # float64 column sums of the widest layer's gradients (the bias gradients)
        self.acc = np.empty(max(W.shape[1] for W in self.coefs))
        self.narrow = None
        if self.backend == "numba":
            from fastnn.engine.numba_step import NarrowStep, narrow_applies

            widths = [W.shape[1] for W in self.coefs]
            hidden = len(self.coefs) - 1
            if narrow_applies(hidden, widths, self.act, self.head, False, self.masks is not None):
                self.narrow = NarrowStep(
                    self.coefs, self.intercepts, self.coef_grads, self.intercept_grads
                )

    @property
    def params(self):
        return self.coefs + self.intercepts

    @property
    def grads(self):
        return self.coef_grads + self.intercept_grads

    def gemm_args(self):
        """The Numba GEMM path's network arguments, after (x, y, Y, sw, scale)."""
        return (
            tuple(self.coefs),
            tuple(self.intercepts),
            self.activations,
            self.deltas,
            tuple(self.coef_grads),
            tuple(self.intercept_grads),
            self.acc,
        )

    def batch_grads(
        self,
        x,
        y=None,
        Y=None,
        sample_weight=None,
        scale=None,
        input_scale=1.0,
        ids=None,
        step=0,
    ):
        """``(loss, correct)`` of one batch; its gradients into coef_grads and intercept_grads.

        y: integer labels (softmax head) or Y: float targets (the others);
        loss = scale * sum_i w_i loss_i, scale 1/n (or 1 / sum of the weights)
        unless given. With dropout: ids, the int64 indices in X of the batch's
        rows, and step, the batch counter, are the masks' keys.
        """
        n = x.shape[0]
        y = _EMPTY_LABELS if y is None else y
        Y = self.empty_targets if Y is None else Y
        sw = _EMPTY_WEIGHTS if sample_weight is None else sample_weight
        if scale is None:
            total = float(sw.sum()) if sw.shape[0] else float(n)
            scale = 1.0 / total if total > 0 else 0.0
        if self.backend == "numpy":
            return self.step_module.batch_grads(
                self._float_batch(x, input_scale),
                y,
                Y,
                sw,
                scale,
                self.act,
                self.head,
                self.coefs,
                self.intercepts,
                self.coef_grads,
                self.intercept_grads,
                None if self.masks is None else self.masks.keys(ids, step),
            )
        if self.narrow is not None and sw.shape[0] == 0:
            xs = 1.0 if x.dtype == self.dtype else input_scale
            return self.narrow(x, y, scale, xs)
        if self.masks is not None:
            return self.step_module.DROPOUT_STEPS[self.act][self.head](
                self._float_batch(x, input_scale),
                y,
                Y,
                sw,
                scale,
                *self.gemm_args(),
                (*self.masks.keys(ids, step), self.masks.dropped),
            )
        return self.step_module.STEPS[self.act][self.head](
            self._float_batch(x, input_scale), y, Y, sw, scale, *self.gemm_args()
        )

    def loss_and_grads(self, x, targets, alpha=0.0):
        """Mean loss of batch (x, targets) plus ``alpha / (2 n) * sum ||W||^2``; gradients too.

        `targets` are labels for the softmax head, float targets otherwise.
        """
        if self.head == SOFTMAX_HEAD:
            loss, _ = self.batch_grads(x, y=targets)
        else:
            loss, _ = self.batch_grads(x, Y=targets)
        if alpha > 0:
            scale = alpha / x.shape[0]
            for W, dW in zip(self.coefs, self.coef_grads):
                dW += W.dtype.type(scale) * W
                loss += 0.5 * scale * float(np.dot(W.ravel(), W.ravel()))
        return loss


class DropoutMasks:
    """Inverted dropout of a step's hidden layers, with masks from a counter-based hash.

    Unit j of hidden layer i in the row with index r in X (the training data
    as given to fit) is kept, at training step `step` (the batch counter of the
    run), when the contract's SplitMix64 hash of ``(seed + i, step, r, j)`` is
    at least ``rates[i]`` (`fastnn.contract.numpy_ops.dropout_uniform`); kept
    units are multiplied by ``1 / (1 - rates[i])``. No mask is stored or drawn
    in sequence: both backends, any batch order, any split of a batch (threads,
    MPI ranks) and the backward pass compute the same mask for a row.
    """

    def __init__(self, rates, seed, coefs, max_batch):
        dtype = coefs[0].dtype
        self.rates = np.asarray(rates, np.float64)
        # rounded to the weights' dtype as the contract's dropout_args rounds them
        self.scales = np.array([dtype.type(1.0 / (1.0 - r)) for r in self.rates], dtype)
        self.seeds = np.array([(int(seed) + i) % 2**64 for i in range(len(rates))], np.uint64)
        # what the next layer reads; activations[i] keeps the undropped outputs
        self.dropped = tuple(np.empty((max_batch, W.shape[1]), dtype) for W in coefs[:-1])

    @classmethod
    def of(cls, rates, seed, coefs, max_batch):
        """The masks of these rates, or None when none drops anything."""
        if rates is None or not any(r > 0 for r in rates):
            return None
        if len(rates) != len(coefs) - 1:
            raise ValueError(f"dropout: {len(rates)} rates for {len(coefs) - 1} hidden layers")
        return cls(rates, seed, coefs, max_batch)

    def keys(self, ids, step):
        """The batch's mask arguments (ids, seeds, step, rates, scales), without buffers."""
        if ids is None:
            raise ValueError("a dropout step needs the rows' indices in X (ids)")
        return (np.asarray(ids, np.int64), self.seeds, int(step), self.rates, self.scales)


def predict_logits(
    backend,
    coefs,
    intercepts,
    X,
    activation="relu",
    input_scale=1.0,
    chunk=4096,
    skip_zeros=False,
):
    """Output pre-activations of every row of X, `chunk` rows at a time.

    On the Numba backend, a chunk that `compact.use_compact(skip_zeros, ...)`
    takes is read as its nonzeros: True always, "auto" under
    `compact.PREDICT_CROSSOVER` density, except for the single pass's networks
    (as fit does). The compact form is built per chunk, so memory stays
    bounded (a memory-mapped X too).
    """
    n = X.shape[0]
    out = np.empty((n, coefs[-1].shape[1]), dtype=coefs[0].dtype)
    step = ForwardPass(backend, coefs, intercepts, max(1, min(chunk, n)), activation)
    if step.backend != "numba" or (skip_zeros == "auto" and step._narrow_forward()):
        skip_zeros = False
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        x = X[start:stop]
        parts = use_compact(skip_zeros, x, False, compact.PREDICT_CROSSOVER)
        if parts is None:
            out[start:stop] = step.forward(x, input_scale)
        else:
            out[start:stop] = step.forward_compact(parts, input_scale)
    return out
