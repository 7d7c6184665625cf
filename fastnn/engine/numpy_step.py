"""The NumPy backend's training step: the readable reference of `fastnn.engine.numba_step`.

The same results as the Numba `FORWARDS[act]` and `STEPS[act][head]` (codes as arguments), written
as plain array expressions, with activations (`fastnn.contract.numpy_ops`) and heads in tables
as in scikit-learn's `_base.py`. The Numba step is tested against this one.
"""

import numpy as np

from fastnn.contract.numpy_ops import ACTIVATIONS, DERIVATIVES, dropout_forward, logistic
from fastnn.contract.tables import EXP_HEAD, IDENTITY_HEAD, LOGISTIC_HEAD, SOFTMAX_HEAD


def forward(x, act, coefs, intercepts, activations=None, drop=None, inputs=None):
    """Output pre-activations (logits) of batch x; `activations` (a list) gets every layer's.

    With `drop` (see `batch_grads`), a hidden layer's outputs reach the next
    layer dropped; `inputs` (a list) gets what each layer after the first read.
    """
    a = x
    last = len(coefs) - 1
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = a @ W + b
        a = ACTIVATIONS[act](z, z) if i < last else z
        if activations is not None:
            activations.append(a)
        if i < last and drop is not None:
            a = _dropped(a, i, drop)
            inputs.append(a)
    return a


def _dropped(h, i, drop):
    """Hidden layer i's outputs h with the batch's masks (the contract's dropout)."""
    ids, seeds, step, rates, scales = drop
    if rates[i] == 0:
        return h
    return dropout_forward(h, ids, seeds[i], step, rates[i], scales[i], np.empty_like(h))


def _softmax_head(z, y, Y, w):
    shifted = z - z.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(z.shape[0])
    per_row = np.log(total[:, 0], dtype=np.float64) - shifted[rows, y]
    grad = exp / total
    grad[rows, y] -= 1
    correct = int(np.sum(np.argmax(z, axis=1) == y))
    return per_row, grad, correct


def _logistic_head(z, y, Y, w):
    # log(1 + exp(z)) - Y z, without overflow for logits of +-1000
    z64 = z.astype(np.float64)
    per_row = (np.maximum(z64, 0) - Y * z64 + np.log1p(np.exp(-np.abs(z64)))).sum(axis=1)
    grad = logistic(z, np.empty_like(z)) - Y
    correct = int(np.sum(np.all((z > 0) == (Y > 0.5), axis=1)))
    return per_row, grad, correct


def _identity_head(z, y, Y, w):
    diff = z - Y
    per_row = 0.5 * np.sum(diff.astype(np.float64) ** 2, axis=1)
    return per_row, diff, 0


def _exp_head(z, y, Y, w):
    # half the Poisson deviance of mu = exp(z): scikit-learn's poisson_loss per row
    from scipy.special import xlogy

    z64, Y64 = z.astype(np.float64), Y.astype(np.float64)
    mu = np.exp(z)
    per_row = (xlogy(Y64, Y64) - Y64 * z64 - Y64 + mu.astype(np.float64)).sum(axis=1)
    return per_row, mu - Y, 0


HEADS = {
    SOFTMAX_HEAD: _softmax_head,
    LOGISTIC_HEAD: _logistic_head,
    IDENTITY_HEAD: _identity_head,
    EXP_HEAD: _exp_head,
}


def batch_grads(
    x, y, Y, sw, scale, act, head, coefs, intercepts, coef_grads, intercept_grads, drop=None
):
    """Loss of batch x and every gradient; returns ``(loss, correct)``.

    loss = scale * sum_i sw_i loss_i (sw empty: weight 1); the gradients of
    that into coef_grads and intercept_grads (written in place).

    drop: None, or the batch's dropout masks (ids, seeds, step, rates, scales)
    as the Numba `DROPOUT_STEPS` take them (without their buffers): inverted
    dropout of hidden layer i's outputs at rate rates[i], unit j of row r kept
    when the hash of (seeds[i], step, ids[r], j) is >= the rate.
    """
    if x.shape[0] == 0:
        for g in list(coef_grads) + list(intercept_grads):
            g[...] = 0
        return 0.0, 0
    activations, inputs = [], []
    z = forward(x, act, coefs, intercepts, activations, drop, inputs)
    per_row, delta, correct = HEADS[head](z, y, Y, sw)
    w = np.ones(x.shape[0]) if sw.shape[0] == 0 else sw.astype(np.float64)
    loss = scale * float(np.dot(w, per_row))
    delta = (delta * (scale * w)[:, None]).astype(z.dtype)
    for i in range(len(coefs) - 1, -1, -1):
        a_in = x if i == 0 else activations[i - 1]
        coef_grads[i][...] = (a_in if drop is None or i == 0 else inputs[i - 1]).T @ delta
        # float64 accumulation: float32 column sums over a large batch drift
        intercept_grads[i][...] = delta.sum(axis=0, dtype=np.float64)
        if i > 0:
            dx = delta @ coefs[i].T
            if drop is not None:  # through the mask: the same hash, the same scale
                dx = _dropped(dx, i - 1, drop)
            delta = DERIVATIVES[act](dx, a_in)
    return loss, correct
