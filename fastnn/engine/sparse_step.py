"""Sparse X (CSR, or CSC converted to CSR): the first layer reads the sparse rows directly.

Only the first layer sees X, so only it changes: its forward pass and weight
gradient are the contract's CSR x dense pair (`csr_linear_forward`,
`csr_linear_backward`), which cost nnz * width instead of n * k * width and
never densify X, nor a batch of it. Batches are CSR row slices. The layers
after it are dense and run through the backend's contract ops, and the head
through the NumPy step's tables (`fastnn.engine.numpy_step.HEADS`), from Python
once per batch: `SparseTrainStep` has `TrainStep.batch_grads`' arguments and
results, so the per-batch loop of `fastnn.engine.epoch_loop.EpochRunner` and the
L-BFGS objective take it as they are.
"""

import numpy as np
from scipy import sparse

from fastnn.backend import get_backend
from fastnn.contract.tables import IDENTITY, activation_code, head_code
from fastnn.engine.numpy_step import HEADS
from fastnn.engine.step import DropoutMasks, backend_name

# Rows per chunk when predicting
PREDICT_CHUNK = 4096


def is_sparse(X):
    return sparse.issparse(X)


def as_csr(X):
    """X as a CSR matrix with int32 or int64 indices (CSC is converted; CSR is not copied)."""
    X = X.tocsr()
    if X.indices.dtype not in (np.int32, np.int64):
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
    return X


class SparseTrainStep:
    """Loss and gradients of a batch of CSR rows, over buffers for `max_batch` rows.

    Parameters
    ----------
    backend : "numba" or "numpy"
    coefs, intercepts : lists of ndarray
        As `fastnn.engine.step.TrainStep`'s (views of the flat buffer).
    coef_grads, intercept_grads : lists of ndarray, or None (forward passes only)
    max_batch : int
    activation, head : str
    dropout, dropout_seed : as `fastnn.engine.step.TrainStep`'s
    """

    narrow = None  # the single pass reads dense rows only

    def __init__(
        self,
        backend,
        coefs,
        intercepts,
        max_batch,
        activation,
        head,
        coef_grads=None,
        intercept_grads=None,
        dropout=None,
        dropout_seed=0,
    ):
        self.backend = backend_name(backend)
        self.ops = get_backend(self.backend).ops
        self.coefs, self.intercepts = list(coefs), list(intercepts)
        self.coef_grads, self.intercept_grads = coef_grads, intercept_grads
        self.dtype = self.coefs[0].dtype
        self.act = activation_code(activation)
        self.head = head_code(head)
        self.activations = [np.empty((max_batch, W.shape[1]), self.dtype) for W in self.coefs]
        self.deltas = [np.empty((max_batch, W.shape[0]), self.dtype) for W in self.coefs]
        self.empty_targets = np.empty((0, self.coefs[-1].shape[1]), self.dtype)
        self.masks = DropoutMasks.of(dropout, dropout_seed, self.coefs, max_batch)

    def forward(self, x, keys=None):
        """Every layer's output for CSR batch x into the buffers; returns the logits.

        keys: the batch's dropout masks (`DropoutMasks.keys`), for training.
        """
        ops, n, last = self.ops, x.shape[0], len(self.coefs) - 1
        z = ops.csr_linear_forward(
            x.indptr, x.indices, x.data, self.coefs[0], self.intercepts[0], self.activations[0][:n]
        )
        a = z if last == 0 else ops.activation_forward(z, self.act, z)
        for i in range(1, last + 1):
            a = self._dropped(a, i - 1, keys)
            code = self.act if i < last else IDENTITY
            a = ops.linear_activation_forward(
                a, self.coefs[i], self.intercepts[i], code, self.activations[i][:n]
            )
        return a

    def _dropped(self, a, i, keys, out=None):
        """Hidden layer i's outputs (or their gradient) through the batch's mask."""
        if keys is None or keys[3][i] == 0:
            return a
        ids, seeds, step, rates, scales = keys
        if out is None:
            out = self.masks.dropped[i][: a.shape[0]]
        return self.ops.dropout_forward(a, ids, seeds[i], step, rates[i], scales[i], out)

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
        """``(loss, correct)`` of CSR batch x; gradients into coef_grads and intercept_grads.

        As `TrainStep.batch_grads`: loss = scale * sum_i w_i loss_i (scale 1/n,
        or 1 / sum of the weights, unless given); ids and step key the dropout masks.
        """
        keys = None if self.masks is None else self.masks.keys(ids, step)
        ops, n, last = self.ops, x.shape[0], len(self.coefs) - 1
        w = (
            np.ones(n)
            if sample_weight is None or sample_weight.shape[0] == 0
            else sample_weight.astype(np.float64)
        )
        if scale is None:
            scale = 1.0 / w.sum() if w.sum() > 0 else 0.0
        z = self.forward(x, keys)
        per_row, delta, correct = HEADS[self.head](z, y, self.empty_targets if Y is None else Y, w)
        loss = scale * float(np.dot(w, per_row))
        delta = np.ascontiguousarray(delta * (scale * w)[:, None], dtype=self.dtype)
        for i in range(last, 0, -1):
            a_in = self.activations[i - 1][:n]
            # the weights saw the dropped outputs (the buffer forward wrote them to)
            seen = a_in if keys is None or keys[3][i - 1] == 0 else self.masks.dropped[i - 1][:n]
            dx = self.deltas[i][:n]
            ops.linear_backward(
                delta, seen, self.coefs[i], dx, self.coef_grads[i], self.intercept_grads[i], True
            )
            dx = self._dropped(dx, i - 1, keys, out=dx)
            delta = ops.activation_backward(dx, a_in, self.act, dx)
        ops.csr_linear_backward(x.indptr, x.indices, x.data, delta, self.coef_grads[0])
        # float64 accumulation, as every other bias gradient
        self.intercept_grads[0][...] = delta.sum(axis=0, dtype=np.float64)
        return loss, correct


def sparse_logits(backend, coefs, intercepts, X, activation):
    """Output pre-activations of every row of CSR matrix X, chunk by chunk."""
    n = X.shape[0]
    chunk = max(1, min(PREDICT_CHUNK, n))
    step = SparseTrainStep(backend, coefs, intercepts, chunk, activation, "identity")
    out = np.empty((n, coefs[-1].shape[1]), coefs[0].dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out[start:stop] = step.forward(X[start:stop])
    return out
