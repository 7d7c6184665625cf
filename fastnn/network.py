"""The MLP's forward and backward passes as calls to a backend's kernels.

Like llm.c's `gpt2_forward/backward`, these only call kernels. `TrainStep`
allocates every buffer of a training step once for the largest batch; a
smaller batch runs on leading-row views of the same buffers, so a step
allocates nothing. Inputs are assumed valid: the estimator checks them once
per fit, and the kernels' unchecked `ops` are called directly.
"""

import numpy as np


class ForwardPass:
    """Logits of up to `max_batch` rows at a time, over preallocated activations.

    coefs[i] is (fan_in, fan_out), intercepts[i] is (fan_out,), rows are samples.
    """

    def __init__(self, ops, coefs, intercepts, max_batch):
        self.ops = ops
        self.coefs = coefs
        self.intercepts = intercepts
        # activations[i] is layer i's output; in a TrainStep the last one holds
        # logits, then probabilities, then the loss gradient, in place.
        self.activations = [np.empty((max_batch, W.shape[1]), coefs[0].dtype) for W in coefs]

    def forward(self, x):
        """Logits of batch `x`, in `activations[-1]` (a view of n rows)."""
        ops, n = self.ops, x.shape[0]
        a = x
        last = len(self.coefs) - 1
        for i, (W, b) in enumerate(zip(self.coefs, self.intercepts)):
            out = self.activations[i][:n]
            if i < last:
                a = ops.linear_relu_forward(a, W, b, out)
            else:
                a = ops.linear_forward(a, W, b, out)
        return a


class TrainStep(ForwardPass):
    """Forward, loss, backward and L2 for one batch, over preallocated buffers."""

    def __init__(self, ops, coefs, intercepts, max_batch):
        super().__init__(ops, coefs, intercepts, max_batch)
        dtype = coefs[0].dtype
        # deltas[i] is the gradient with respect to layer i's input, for i >= 1.
        self.deltas = [None] + [np.empty((max_batch, W.shape[0]), dtype) for W in coefs[1:]]
        self.coef_grads = [np.empty_like(W) for W in coefs]
        self.intercept_grads = [np.empty_like(b) for b in intercepts]
        # A backend with a fused step (Numba) runs the whole of loss_and_grads
        # in one call; its tuples hold one array type, hence the (0, 0)
        # placeholder for the unused deltas[0].
        self._fused = None
        if ops.__name__ == "fastnn._numba_ops":
            from ._numba_step import fused_train_step

            self._fused = fused_train_step(
                tuple(coefs), tuple(intercepts), tuple(self.activations),
                (np.empty((0, 0), dtype),) + tuple(self.deltas[1:]),
                tuple(self.coef_grads), tuple(self.intercept_grads),
            )

    @property
    def params(self):
        return self.coefs + self.intercepts

    @property
    def grads(self):
        return self.coef_grads + self.intercept_grads

    def loss_and_grads(self, x, y, alpha):
        """Mean cross-entropy (plus L2) of batch (x, y); gradients into *_grads."""
        if self._fused is not None:
            return self._fused(x, y, alpha)
        ops, n = self.ops, x.shape[0]
        logits = self.forward(x)
        loss, probs = ops.softmax_cross_entropy(logits, y, logits)
        delta = ops.softmax_cross_entropy_backward(probs, y, probs)
        for i in range(len(self.coefs) - 1, -1, -1):
            a_in = x if i == 0 else self.activations[i - 1][:n]
            dx = None if i == 0 else self.deltas[i][:n]
            ops.linear_backward(
                delta, a_in, self.coefs[i], dx, self.coef_grads[i],
                self.intercept_grads[i], i > 0,
            )
            if alpha > 0:
                loss += ops.l2_penalty(self.coefs[i], self.coef_grads[i], alpha / n)
            if i > 0:
                delta = ops.relu_backward(dx, a_in, dx)
        return loss


def predict_logits(ops, coefs, intercepts, X, chunk=4096):
    """Logits of every row of X, computed `chunk` rows at a time."""
    n = X.shape[0]
    out = np.empty((n, coefs[-1].shape[1]), dtype=X.dtype)
    step = ForwardPass(ops, coefs, intercepts, min(chunk, n))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out[start:stop] = step.forward(X[start:stop])
    return out
