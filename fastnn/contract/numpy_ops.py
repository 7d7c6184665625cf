"""Unchecked NumPy kernels: the algorithmic reference, plain and readable.

Shapes (rows are samples): x is (n, k), W is (k, m), b is (m,), y is (n,)
integer labels in [0, C). Every output buffer is given and valid; the public
wrappers in `fastnn.reference` check that first.
"""

import numpy as np

from fastnn.contract.tables import IDENTITY, LOGISTIC, RELU, TANH


def linear_forward(x, W, b, out):
    # out = x @ W + b
    np.matmul(x, W, out=out)
    out += b
    return out


def linear_relu_forward(x, W, b, out):
    # out = max(x @ W + b, 0)
    np.matmul(x, W, out=out)
    out += b
    np.maximum(out, 0, out=out)
    return out


def relu_forward(z, out):
    return np.maximum(z, 0, out=out)


def relu_backward(dout, a, out):
    # a is the ReLU's input or output: both are > 0 exactly where it passes.
    # A gate, not a product: inf * 0 would give NaN.
    out[...] = np.where(a > 0, dout, dout.dtype.type(0))
    return out


def softmax(z, out):
    shifted = z - z.max(axis=1, keepdims=True)
    np.exp(shifted, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def softmax_cross_entropy(logits, y, probs_out, scale):
    # loss_i = logsumexp(z_i) - z_i[y_i], computed from max-shifted logits
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=probs_out)
    row_sums = probs_out.sum(axis=1, keepdims=True)
    probs_out /= row_sums
    rows = np.arange(logits.shape[0])
    # float64 so that a float32 batch's sum does not drift with n
    per_row = np.log(row_sums[:, 0], dtype=np.float64) - shifted[rows, y]
    return scale * float(per_row.sum()), probs_out


def softmax_cross_entropy_backward(probs, y, out, scale):
    if out is not probs:
        out[...] = probs
    out[np.arange(probs.shape[0]), y] -= 1
    out *= out.dtype.type(scale)
    return out


def logistic(z, out):
    # exp(-z) overflows to inf for very negative z: 1 / inf is the right 0
    with np.errstate(over="ignore"):
        np.exp(-z, out=out)
    out += 1
    np.reciprocal(out, out=out)
    return out


def binary_cross_entropy(logits, Y, probs_out, scale):
    # max(z, 0) - Y z + log(1 + exp(-|z|)): no overflow for logits of +-1000
    z = logits.astype(np.float64)
    per_entry = np.maximum(z, 0) - Y * z + np.log1p(np.exp(-np.abs(z)))
    loss = scale * float(per_entry.sum())
    logistic(logits, probs_out)
    return loss, probs_out


def binary_cross_entropy_backward(probs, Y, out, scale):
    np.subtract(probs, Y, out=out)
    out *= out.dtype.type(scale)
    return out


def squared_error(pred, Y, scale):
    diff = pred.astype(np.float64) - Y
    return scale * 0.5 * float(np.sum(diff * diff))


def squared_error_backward(pred, Y, out, scale):
    np.subtract(pred, Y, out=out)
    out *= out.dtype.type(scale)
    return out


def _identity(z, out):
    if out is not z:
        out[...] = z
    return out


ACTIVATIONS = {
    IDENTITY: _identity,
    LOGISTIC: logistic,
    TANH: lambda z, out: np.tanh(z, out=out),
    RELU: lambda z, out: np.maximum(z, 0, out=out),
}

# The derivative written through the activation's output a, as scikit-learn's
# DERIVATIVES; ReLU's is a gate, not a product (inf * 0 would give NaN).
DERIVATIVES = {
    IDENTITY: lambda dout, a: dout,
    LOGISTIC: lambda dout, a: dout * (a * (1 - a)),
    TANH: lambda dout, a: dout * (1 - a * a),
    RELU: lambda dout, a: np.where(a > 0, dout, dout.dtype.type(0)),
}


def activation_forward(z, code, out):
    return ACTIVATIONS[code](z, out)


def activation_backward(dout, a, code, out):
    out[...] = DERIVATIVES[code](dout, a)
    return out


def linear_activation_forward(x, W, b, code, out):
    np.matmul(x, W, out=out)
    out += b
    return ACTIVATIONS[code](out, out)


def linear_backward(dout, x, W, dx, dW, db, need_dx):
    if need_dx:
        np.matmul(dout, W.T, out=dx)
    np.matmul(x.T, dout, out=dW)
    # float64 accumulation: float32 column sums over a large batch drift
    db[...] = dout.sum(axis=0, dtype=np.float64)
    return (dx if need_dx else None), dW, db


def _csr(indptr, indices, data, n_cols):
    from scipy.sparse import csr_matrix

    return csr_matrix((data, indices, indptr), shape=(indptr.shape[0] - 1, n_cols))


def csr_linear_forward(indptr, indices, data, W, b, out):
    out[...] = _csr(indptr, indices, data, W.shape[0]) @ W
    out += b
    return out


def csr_linear_backward(indptr, indices, data, dout, dW):
    dW[...] = _csr(indptr, indices, data, dW.shape[0]).T @ dout
    return dW


def _compact(indptr, indices, data, rows, xs, dtype, n_cols):
    # the rows selected, each value read as dtype(value) * dtype(xs) (uint8 widened first)
    values = data.astype(dtype) * dtype.type(xs)
    return _csr(indptr, indices, values, n_cols)[rows]


def compact_linear_forward(indptr, indices, data, rows, xs, W, b, out):
    out[...] = _compact(indptr, indices, data, rows, xs, W.dtype, W.shape[0]) @ W
    out += b
    return out


def compact_linear_backward(indptr, indices, data, rows, xs, dout, dW, touched):
    x = _compact(indptr, indices, data, rows, xs, dW.dtype, dW.shape[0])
    grad = x.T @ dout
    if touched is None:
        dW[...] = grad
        return dW
    # only the rows of the columns the selected rows store an entry in: zeroed
    # unless already flagged, then added to and flagged; the others untouched
    hit = np.zeros(dW.shape[0], bool)
    hit[x.indices] = True
    dW[hit & (touched == 0)] = 0
    dW[hit] += grad[hit]
    touched[hit] = 1
    return dW


def sgd_update(param, grad, lr, velocity, momentum, nesterov):
    if velocity is None:
        param -= param.dtype.type(lr) * grad
        return param
    velocity *= param.dtype.type(momentum)
    velocity -= param.dtype.type(lr) * grad
    if nesterov:
        param += param.dtype.type(momentum) * velocity - param.dtype.type(lr) * grad
    else:
        param += velocity
    return param


def adam_update(param, grad, m, v, t, lr, beta1, beta2, eps):
    # Kingma & Ba's bias correction folded into the step size (as scikit-learn does)
    m *= param.dtype.type(beta1)
    m += param.dtype.type(1.0 - beta1) * grad
    v *= param.dtype.type(beta2)
    v += param.dtype.type(1.0 - beta2) * grad * grad
    step = lr * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    param -= param.dtype.type(step) * m / (np.sqrt(v) + param.dtype.type(eps))
    return param


def l2_penalty(W, dW, scale):
    # dW += scale * W; returns 0.5 * scale * ||W||^2 (scale = alpha / n)
    dW += W.dtype.type(scale) * W
    return 0.5 * scale * float(np.dot(W.ravel(), W.ravel()))


# -- Dropout masks from a counter-based generator --------------------------------------
# A unit's keep/drop decision is a hash of (seed, step, row, unit): no mask is stored
# or drawn in sequence, so the backward pass recomputes the forward pass's mask, and
# any split of a batch (threads, MPI ranks) draws the same masks. SplitMix64's
# finaliser (Steele, Lea and Flood, 2014) mixes the counter into 64 random bits.

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_uniform(seed, step, rows, n_units):
    """(len(rows), n_units) uniforms in [0, 1): the hash of (seed, step, row, unit)."""
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as the hash intends
        key = _mix64(np.uint64(seed) + _GOLDEN * (np.uint64(step) + np.uint64(1)))
        row_keys = _mix64(key + _GOLDEN * rows.astype(np.uint64))
        units = _GOLDEN * (np.arange(n_units, dtype=np.uint64) + np.uint64(1))
        bits = _mix64(row_keys[:, None] + units[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _dropout(a, rows, seed, step, rate, scale, out):
    keep = dropout_uniform(seed, step, rows, a.shape[1]) >= rate
    np.multiply(a, scale, out=out)
    out[~keep] = 0  # also where a is inf or NaN: a dropped unit gives nothing
    return out


def dropout_forward(a, rows, seed, step, rate, scale, out):
    return _dropout(a, rows, seed, step, rate, scale, out)


def dropout_backward(dout, rows, seed, step, rate, scale, out):
    # the same mask and scale as the forward pass: d(a * mask * scale)/da
    return _dropout(dout, rows, seed, step, rate, scale, out)
