"""Unchecked Numba kernels, one per contract function.

Shapes (rows are samples): x is (n, k), W is (k, m), b is (m,), y is (n,)
integer labels in [0, C). Every buffer is given, valid and C-contiguous: the
public wrappers in `fastnn.kernels` check that first, because these loops do no
bounds checks.

Every GEMM goes through Numba's np.dot (SciPy's BLAS): mixing NumPy's `@`
(NumPy's BLAS, a second thread pool) into the same hot loop makes both pools
spin against each other. No full fastmath: softmax must stay right for +-inf
(only the single pass's dot products use the reassoc/contract subset).
error_model="numpy": x / 0 gives inf or NaN as in NumPy, and without Python's
ZeroDivisionError branch, loops with a division vectorise (Adam: 10x).

The trainer's hot path, the fused step and the compiled epoch loop, is in
`fastnn.engine.numba_step` and `fastnn.engine.numba_epoch`.
"""

import numpy as np

# njit: cache=True that survives a read-only install
from fastnn.contract.jit import INTERNAL, njit
from fastnn.contract.numba_math import (
    activation_backward_inplace,
    activation_inplace,
    adam_square,
    adam_square_least,
    bias_activation_inplace,
    column_sums,
    logistic,
    smallest_normal,
)
from fastnn.contract.register_blocks import block_outputs, block_sum
from fastnn.contract.tables import IDENTITY, RELU

# The fast-math subset for loops that only add and multiply: reassoc lets LLVM
# vectorise their reductions; NaN and inf propagate as without it (no nnan/ninf).
_DOT = {"reassoc", "contract"}
# The compact first layer's subset: x @ W over the nonzeros only is the same
# products summed in another order; FMA contraction, no reassociation.
_AXPY = {"contract"}


@njit(cache=True, error_model="numpy")
def linear_forward(x, W, b, out):
    np.dot(x, W, out)
    bias_activation_inplace(out, b, IDENTITY)
    return out


@njit(cache=True, error_model="numpy")
def linear_relu_forward(x, W, b, out):
    np.dot(x, W, out)
    bias_activation_inplace(out, b, RELU)
    return out


@njit(cache=True, error_model="numpy")
def relu_forward(z, out):
    n, m = z.shape
    zero = z.dtype.type(0)
    for i in range(n):
        for j in range(m):
            v = z[i, j]
            # NaN passes through, as np.maximum does
            out[i, j] = zero if v <= zero else v
    return out


@njit(cache=True, error_model="numpy")
def relu_backward(dout, a, out):
    n, m = dout.shape
    zero = dout.dtype.type(0)
    for i in range(n):
        for j in range(m):
            # a gate, not a product: inf * 0 would give NaN
            out[i, j] = dout[i, j] if a[i, j] > zero else zero
    return out


@njit(cache=True, error_model="numpy")
def _softmax_row(z, i, out):
    # The max is private to the row: shared across rows it would be a data race
    # under prange, and a wrong answer that shift-invariant tests miss.
    m = z.shape[1]
    row_max = z[i, 0]
    for j in range(1, m):
        if z[i, j] > row_max:
            row_max = z[i, j]
    total = 0.0
    for j in range(m):
        e = np.exp(z[i, j] - row_max)
        out[i, j] = e
        total += e
    scale = out.dtype.type(1.0 / total)
    for j in range(m):
        out[i, j] *= scale
    return row_max, total


@njit(cache=True, error_model="numpy")
def softmax(z, out):
    for i in range(z.shape[0]):
        _softmax_row(z, i, out)
    return out


@njit(cache=True, error_model="numpy")
def softmax_cross_entropy(logits, y, probs_out, scale):
    n = logits.shape[0]
    loss = 0.0  # float64 whatever the dtype: a float32 sum drifts with n
    for i in range(n):
        target = float(logits[i, y[i]])  # read first: probs_out may be logits
        row_max, total = _softmax_row(logits, i, probs_out)
        loss += np.log(total) - (target - float(row_max))
    return loss * scale, probs_out


@njit(cache=True, error_model="numpy")
def softmax_cross_entropy_backward(probs, y, out, scale):
    n, m = probs.shape
    s = probs.dtype.type(scale)
    one = probs.dtype.type(1.0)
    for i in range(n):
        target = probs[i, y[i]]  # read first: out may be probs
        for j in range(m):
            out[i, j] = probs[i, j] * s
        out[i, y[i]] = (target - one) * s
    return out


@njit(cache=True, error_model="numpy")
def binary_cross_entropy(logits, Y, probs_out, scale):
    n, m = logits.shape
    loss = 0.0
    for i in range(n):
        for j in range(m):
            v = float(logits[i, j])  # read first: probs_out may be logits
            # max(v, 0) - Y v + log(1 + exp(-|v|)): no overflow for logits of +-1000
            loss += max(v, 0.0) - float(Y[i, j]) * v + np.log1p(np.exp(-abs(v)))
            probs_out[i, j] = logistic(logits[i, j])
    return loss * scale, probs_out


@njit(cache=True, error_model="numpy")
def _scaled_difference(a, Y, out, scale):
    n, m = a.shape
    s = a.dtype.type(scale)
    for i in range(n):
        for j in range(m):
            out[i, j] = (a[i, j] - Y[i, j]) * s
    return out


def binary_cross_entropy_backward(probs, Y, out, scale):
    return _scaled_difference(probs, Y, out, scale)


@njit(cache=True, error_model="numpy")
def squared_error(pred, Y, scale):
    n, m = pred.shape
    total = 0.0
    for i in range(n):
        for j in range(m):
            d = float(pred[i, j]) - float(Y[i, j])
            total += d * d
    return scale * 0.5 * total


def squared_error_backward(pred, Y, out, scale):
    return _scaled_difference(pred, Y, out, scale)


@njit(cache=True, error_model="numpy")
def activation_forward(z, code, out):
    activation_inplace(z, out, code)
    return out


_NO_DB = {}
_NO_ACC = np.empty(0)


@njit(cache=True, error_model="numpy")
def _activation_backward(dout, a, code, out, db, acc):
    activation_backward_inplace(dout, a, out, code, db, False, acc)
    return out


def activation_backward(dout, a, code, out):
    # no bias gradient wanted: empty placeholders of the dtypes
    db = _NO_DB.setdefault(out.dtype, np.empty(0, out.dtype))
    return _activation_backward(dout, a, code, out, db, _NO_ACC)


@njit(cache=True, error_model="numpy")
def linear_activation_forward(x, W, b, code, out):
    np.dot(x, W, out)
    bias_activation_inplace(out, b, code)
    return out


@njit(cache=True, error_model="numpy")
def _linear_backward_params(dout, x, dW, db):
    np.dot(x.T, dout, dW)
    column_sums(dout, db)


@njit(cache=True, error_model="numpy")
def _linear_backward_all(dout, x, W, dx, dW, db):
    np.dot(dout, W.T, dx)
    _linear_backward_params(dout, x, dW, db)


def linear_backward(dout, x, W, dx, dW, db, need_dx):
    # Two jitted entry points rather than an Optional dx, so neither
    # specialisation carries a None check in its type.
    if need_dx:
        _linear_backward_all(dout, x, W, dx, dW, db)
        return dx, dW, db
    _linear_backward_params(dout, x, dW, db)
    return None, dW, db


@njit(cache=True, error_model="numpy", nogil=True)
def csr_linear_forward(indptr, indices, data, W, b, out):
    n, m = out.shape
    for i in range(n):
        for j in range(m):
            out[i, j] = b[j]
        # each stored entry adds one row of W: a sparse row costs nnz * m
        for p in range(indptr[i], indptr[i + 1]):
            v = data[p]
            c = indices[p]
            for j in range(m):
                out[i, j] += v * W[c, j]
    return out


@njit(cache=True, error_model="numpy", nogil=True)
def csr_linear_backward(indptr, indices, data, dout, dW):
    dW[...] = 0
    n, m = dout.shape
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            v = data[p]
            c = indices[p]
            for j in range(m):
                dW[c, j] += v * dout[i, j]
    return dW


# -- The compact first layer: X's nonzeros by row, read through a row selection ---------
# The training step calls `compact_product` and `compact_weight_grad` on a batch
# [start, stop) of an epoch's permutation (`fastnn.engine.numba_step.compact_rows`);
# the contract's `compact_linear_forward` / `compact_linear_backward` on the rows
# given. `rows` empty reads rows start..stop-1 in order. A value is read as
# ``dtype(data[p]) * dtype(xs)``: uint8 bytes widened and scaled as the dense
# path scales a gathered batch (floats are read with xs = 1).


# W's size above which `compact_product` runs block by block over all rows,
# not row by row over all blocks: a row's nonzeros then read one block of W
# (k x B) that stays in L2, not all of W. Measured on AMD EPYC Zen 5 (1 MB L2
# a core; batch 512 of MNIST rows, one thread): float32 784 x 1024 (3.2 MB)
# 4.28 -> 3.43 ms, float64 784 x 512 (3.2 MB) 3.17 -> 2.66, 784 x 1024
# 9.64 -> 6.79; at 1.6 MB (float32 784 x 512) 2-4 % slower: not under 2 MiB.
BLOCKS_OUTER_BYTES = 1 << 21


@njit(cache=True, error_model="numpy", nogil=True, fastmath=_AXPY, **INTERNAL)
def compact_product(indptr, indices, data, rows, start, stop, xs, W, out):
    """out[r] = xs X[rows[start + r]] @ W for r < stop - start: each nonzero adds a row of W.

    Whole blocks of outputs are summed in registers (`register_blocks`), the
    rest by the loop below; both in the same order, bit for bit alike.
    """
    dt = W.dtype.type
    s = dt(xs)
    m = W.shape[1]
    zero = dt(0)
    B = block_outputs(W)
    rows_contiguous = W.strides[1] == W.itemsize and out.strides[1] == out.itemsize
    full = m - m % B if rows_contiguous else 0
    blocks_outer = W.shape[0] * m * W.itemsize > BLOCKS_OUTER_BYTES
    if blocks_outer:  # each block of W's columns over every row: the block stays in L2
        for j0 in range(0, full, B):
            for r in range(stop - start):
                src = rows[start + r] if rows.shape[0] else start + r
                block_sum(W, out, r, indices, data, indptr[src], indptr[src + 1], s, j0, False)
    for r in range(stop - start):
        src = rows[start + r] if rows.shape[0] else start + r
        a, b = indptr[src], indptr[src + 1]
        if not blocks_outer:
            for j0 in range(0, full, B):
                block_sum(W, out, r, indices, data, a, b, s, j0, False)
        if full == m:
            continue
        o = out[r]
        for j in range(full, m):
            o[j] = zero
        for p in range(a, b):
            v = dt(data[p]) * s
            w = W[indices[p]]
            for j in range(full, m):
                o[j] += v * w[j]


@njit(cache=True, error_model="numpy", nogil=True, fastmath=_AXPY, **INTERNAL)
def compact_weight_grad(indptr, indices, data, rows, start, stop, xs, delta, dW, touched):
    """dW += (xs X[rows[start:stop]]).T @ delta on the rows of dW that the batch touches.

    Row c of dW is the sum, over the batch rows r that have column c, of
    ``v delta[r]`` (v the entry's value). It is zeroed first unless flagged
    (touched[c] != 0: then added to), and flagged (touched[c] = 1); the rows
    of columns the batch has no entry in are left as they are: the training
    step's update (`numba_epoch.finish_compact_batch`) reads them as zero and
    clears the flags. When the batch has at least 2 entries per column of
    dW on average, the entries are sorted by column and each row of dW is
    summed in registers (`_weight_grad_by_column`); otherwise each entry adds
    to its row of dW in memory. Both add in batch-row order, with the same
    FMA contraction: the results are the same bit for bit.
    """
    nnz = 0
    for r in range(stop - start):
        src = rows[start + r] if rows.shape[0] else start + r
        nnz += indptr[src + 1] - indptr[src]
    contiguous = dW.strides[1] == dW.itemsize and delta.strides[1] == delta.itemsize
    if contiguous and dW.shape[1] >= block_outputs(dW) and nnz >= 2 * dW.shape[0]:
        _weight_grad_by_column(
            indptr, indices, data, rows, start, stop, xs, delta, dW, touched, nnz
        )
        return
    dt = dW.dtype.type
    s = dt(xs)
    m = dW.shape[1]
    zero = dt(0)
    for r in range(stop - start):
        src = rows[start + r] if rows.shape[0] else start + r
        g = delta[r]
        for p in range(indptr[src], indptr[src + 1]):
            v = dt(data[p]) * s
            c = indices[p]
            d = dW[c]
            if touched[c] == 0:
                touched[c] = 1
                for j in range(m):
                    d[j] = zero
            for j in range(m):
                d[j] += v * g[j]


@njit(cache=True, error_model="numpy", nogil=True, fastmath=_AXPY, **INTERNAL)
def _weight_grad_by_column(indptr, indices, data, rows, start, stop, xs, delta, dW, touched, nnz):
    """`compact_weight_grad` with the batch's nnz entries sorted by column first.

    A counting sort (stable: batch-row order within a column) into a column
    pointer, the batch row and the value of each entry (4 + X's itemsize
    bytes an entry, allocated per call); then row c of dW is `block_sum` over
    column c's entries, with delta's rows as the rows summed. Each row of dW
    is written once, not once per entry, which is what the by-row loop is
    bound by (its loads and stores of dW's rows).
    """
    k, m = dW.shape
    n = stop - start
    # colptr[c + 2] counts column c; after the prefix sums, colptr[c + 1] is
    # column c's first entry and the scatter moves it to its end
    colptr = np.zeros(k + 2, np.int64)
    entry_rows = np.empty(nnz, np.int32)
    entry_values = np.empty(nnz, data.dtype)
    for r in range(n):
        src = rows[start + r] if rows.shape[0] else start + r
        for p in range(indptr[src], indptr[src + 1]):
            colptr[indices[p] + 2] += 1
    for c in range(2, k + 2):
        colptr[c] += colptr[c - 1]
    for r in range(n):
        src = rows[start + r] if rows.shape[0] else start + r
        for p in range(indptr[src], indptr[src + 1]):
            c = indices[p] + 1
            q = colptr[c]
            entry_rows[q] = r
            entry_values[q] = data[p]
            colptr[c] = q + 1
    dt = dW.dtype.type
    s = dt(xs)
    zero = dt(0)
    B = block_outputs(dW)
    full = m - m % B
    # block by block, each over every column: one block of delta's columns (rows x
    # B) stays in L2 while every column is summed, where a column's blocks in
    # turn would sweep all of delta per column (wide layers: 2 MB at 512 x
    # 1024 float32, more than a core's L2)
    for j0 in range(0, full, B):
        for c in range(k):
            a, b = colptr[c], colptr[c + 1]
            if a < b:
                block_sum(delta, dW, c, entry_rows, entry_values, a, b, s, j0, touched[c] != 0)
    for c in range(k):
        a, b = colptr[c], colptr[c + 1]
        if a == b:
            continue
        added = touched[c] != 0
        touched[c] = 1
        d = dW[c]
        for j in range(full, m):
            if not added:
                d[j] = zero
            for p in range(a, b):
                d[j] += (dt(entry_values[p]) * s) * delta[entry_rows[p], j]


@njit(cache=True, error_model="numpy", nogil=True)
def compact_linear_forward(indptr, indices, data, rows, xs, W, b, out):
    compact_product(indptr, indices, data, rows, 0, rows.shape[0], xs, W, out)
    bias_activation_inplace(out, b, IDENTITY)
    return out


@njit(cache=True, error_model="numpy", nogil=True)
def _compact_linear_backward(indptr, indices, data, rows, xs, dout, dW, touched, whole):
    compact_weight_grad(indptr, indices, data, rows, 0, rows.shape[0], xs, dout, dW, touched)
    if whole:  # the rows no entry reached are zero in the gradient
        zero = dW.dtype.type(0)
        for c in range(dW.shape[0]):
            if touched[c] == 0:
                for j in range(dW.shape[1]):
                    dW[c, j] = zero
    return dW


def compact_linear_backward(indptr, indices, data, rows, xs, dout, dW, touched):
    whole = touched is None
    flags = np.zeros(dW.shape[0], np.uint8) if whole else touched
    return _compact_linear_backward(indptr, indices, data, rows, xs, dout, dW, flags, whole)


@njit(cache=True, error_model="numpy")
def _sgd_plain(param, grad, lr):
    p, g = param.ravel(), grad.ravel()
    step = param.dtype.type(lr)
    for i in range(p.size):
        p[i] -= step * g[i]


@njit(cache=True, error_model="numpy")
def _sgd_momentum(param, grad, lr, velocity, momentum, nesterov):
    p, g, vel = param.ravel(), grad.ravel(), velocity.ravel()
    step = param.dtype.type(lr)
    mu = param.dtype.type(momentum)
    for i in range(p.size):
        v = mu * vel[i] - step * g[i]
        vel[i] = v
        if nesterov:
            p[i] += mu * v - step * g[i]
        else:
            p[i] += v


# The update kernels are element-wise: flat views give one compiled
# specialisation for weights and biases alike (half the compile time).


def sgd_update(param, grad, lr, velocity, momentum, nesterov):
    if velocity is None:
        _sgd_plain(param.reshape(-1), grad.reshape(-1), lr)
    else:
        _sgd_momentum(
            param.reshape(-1), grad.reshape(-1), lr, velocity.reshape(-1), momentum, nesterov
        )
    return param


@njit(cache=True, error_model="numpy")
def _adam(param, grad, m, v, t, lr, beta1, beta2, eps):
    p, g, mm, vv = param.ravel(), grad.ravel(), m.ravel(), v.ravel()
    dt = param.dtype.type
    b1, b2 = dt(beta1), dt(beta2)
    c1, c2 = dt(1.0 - beta1), dt(1.0 - beta2)
    # float exponents call libm's pow, as Python does; Numba's integer power differs by ulps
    step = dt(lr * np.sqrt(1.0 - beta2 ** float(t)) / (1.0 - beta1 ** float(t)))
    e = dt(eps)
    least = dt(adam_square_least(c2, smallest_normal(p)))
    for i in range(p.size):
        gi = g[i]
        mi = b1 * mm[i] + c1 * gi
        vi = b2 * vv[i] + adam_square(c2, gi, least)
        mm[i] = mi
        vv[i] = vi
        p[i] -= step * mi / (np.sqrt(vi) + e)


def adam_update(param, grad, m, v, t, lr, beta1, beta2, eps):
    _adam(
        param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1), t, lr, beta1, beta2, eps
    )
    return param


@njit(cache=True, error_model="numpy", fastmath=_DOT)
def _l2_penalty(W, dW, scale):
    w, dw = W.ravel(), dW.ravel()
    s = W.dtype.type(scale)
    total = 0.0
    for i in range(w.size):
        wi = w[i]
        dw[i] += s * wi
        total += float(wi) * float(wi)
    return 0.5 * scale * total


def l2_penalty(W, dW, scale):
    return _l2_penalty(W, dW, scale)


# -- Dropout masks from a counter-based generator (numpy_ops has the reference) --------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def dropout_row_key(seed, step, row):
    """The hash state of one row at one step; unit j's uniform is `dropout_unit(key, j)`."""
    key = _mix64(np.uint64(seed) + _GOLDEN * (np.uint64(step) + np.uint64(1)))
    return _mix64(key + _GOLDEN * np.uint64(row))


@njit(cache=True, inline="always")
def dropout_unit(row_key, unit):
    bits = _mix64(row_key + _GOLDEN * (np.uint64(unit) + np.uint64(1)))
    return np.float64(bits >> np.uint64(11)) * 2.0**-53


@njit(cache=True, error_model="numpy")
def _dropout(a, rows, seed, step, rate, scale, out):
    n, m = a.shape
    for i in range(n):
        key = dropout_row_key(seed, step, rows[i])
        for j in range(m):
            out[i, j] = a[i, j] * scale if dropout_unit(key, j) >= rate else 0.0
    return out


def dropout_forward(a, rows, seed, step, rate, scale, out):
    return _dropout(a, rows, seed, step, rate, scale, out)


def dropout_backward(dout, rows, seed, step, rate, scale, out):
    # the same mask and scale as the forward pass: d(a * mask * scale)/da
    return _dropout(dout, rows, seed, step, rate, scale, out)
