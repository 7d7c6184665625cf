"""The trainer's hot path: one jitted call per training step.

`fused_train_step` binds a network's buffers into ``step(x, y, alpha) -> loss``.
It runs either the GEMM path (every layer's GEMM through Numba's np.dot, with
each element-wise pass fused into the GEMM that produces its input) or, for
narrow one-hidden-layer networks, a BLAS-free single pass over x.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ._jit import njit
from ._numba_math import bias_activation_inplace
from ._numba_ops import _DOT, _l2_penalty
from ._tables import IDENTITY, RELU

# -- fused training step ---------------------------------------------------
#
# The trainer's hot path: one jitted call per step instead of a dozen kernel
# calls, with each element-wise pass fused into the GEMM that produces its
# input (bias+ReLU, softmax+cross-entropy+gradient+bias-gradient,
# ReLU-gate+bias-gradient). Same arithmetic as the contract functions.


@njit(cache=True, error_model="numpy")
def _softmax_xent_grad_inplace(z, y, db):
    # z: logits (n, C) -> (softmax(z) - onehot(y)) / n in place; db = its column sums.
    n, m = z.shape
    inv_n = 1.0 / n
    acc = np.zeros(m, dtype=np.float64)
    loss = 0.0
    for i in range(n):
        row_max = z[i, 0]
        for j in range(1, m):
            if z[i, j] > row_max:
                row_max = z[i, j]
        target = y[i]
        shifted_target = float(z[i, target] - row_max)  # read before z is overwritten
        total = 0.0
        for j in range(m):
            e = np.exp(z[i, j] - row_max)
            z[i, j] = e
            total += e
        loss += np.log(total) - shifted_target
        scale = z.dtype.type(inv_n / total)
        for j in range(m):
            z[i, j] *= scale
        z[i, target] -= z.dtype.type(inv_n)
        for j in range(m):
            acc[j] += z[i, j]
    for j in range(m):
        db[j] = acc[j]
    return loss * inv_n


@njit(cache=True, error_model="numpy")
def _relu_gate_colsum_inplace(d, a, db):
    # d = d where a > 0 else 0 (a gate: inf * 0 would give NaN); db = column sums of d
    n, m = d.shape
    zero = d.dtype.type(0)
    acc = np.zeros(m, dtype=np.float64)
    for i in range(n):
        for j in range(m):
            v = d[i, j] if a[i, j] > zero else zero
            d[i, j] = v
            acc[j] += v
    for j in range(m):
        db[j] = acc[j]


@njit(cache=True, error_model="numpy", nogil=True)
def train_step_grads(x, y, coefs, intercepts, activations, deltas, coef_grads,
                     intercept_grads):
    """Loss of batch (x, y) and every gradient (no L2), in one call over preallocated buffers.

    coefs[i] (k_i, m_i), activations[i] (>= n, m_i), deltas[i] (>= n, k_i) for
    i >= 1 (deltas[0] is unused), all tuples of one array type.
    """
    n = x.shape[0]
    last = len(coefs) - 1
    a = x
    for i in range(last + 1):
        out = activations[i][:n]
        np.dot(a, coefs[i], out)
        bias_activation_inplace(out, intercepts[i], RELU if i < last else IDENTITY)
        a = out
    delta = activations[last][:n]
    loss = _softmax_xent_grad_inplace(delta, y, intercept_grads[last])
    for i in range(last, -1, -1):
        a_in = x if i == 0 else activations[i - 1][:n]
        np.dot(a_in.T, delta, coef_grads[i])
        if i > 0:
            dx = deltas[i][:n]
            np.dot(delta, coefs[i].T, dx)
            _relu_gate_colsum_inplace(dx, a_in, intercept_grads[i - 1])
            delta = dx
    return loss


# -- single pass for narrow networks (the seed recipe, 784-10-10) -----------
#
# With 10 hidden units, a GEMM's inner dimension is too short for BLAS to be
# efficient, and the step is bound by reading x (twice: forward, then x.T @
# delta). One pass per row does all of it while the row is in L1: forward,
# softmax, loss, and every gradient. Row chunks run on Python threads (the
# kernel releases the GIL): parallel=True would add seconds of compile time.
# reassoc lets LLVM vectorise the length-k dot products; these loops only add
# and multiply (NaN and inf still propagate), so it cannot change their meaning.


@njit(cache=True, error_model="numpy", nogil=True, fastmath=_DOT)
def _dots4(x0, x1, x2, x3, WT, pre):
    # pre[4 j + t] = x_t . WT[j] for four rows, two j at a time: each vector load
    # of x serves two FMAs and each of WT four, and the 8 accumulators and 6
    # loads fit in the 16 vector registers.
    k, nh = x0.shape[0], WT.shape[0]
    zero = x0.dtype.type(0)
    for j in range(0, nh - 1, 2):
        w, v = WT[j], WT[j + 1]
        s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = zero
        for q in range(k):
            wq, vq = w[q], v[q]
            a0, a1, a2, a3 = x0[q], x1[q], x2[q], x3[q]
            s0 += a0 * wq
            s1 += a1 * wq
            s2 += a2 * wq
            s3 += a3 * wq
            t0 += a0 * vq
            t1 += a1 * vq
            t2 += a2 * vq
            t3 += a3 * vq
        pre[4 * j], pre[4 * j + 1], pre[4 * j + 2], pre[4 * j + 3] = s0, s1, s2, s3
        pre[4 * j + 4], pre[4 * j + 5], pre[4 * j + 6], pre[4 * j + 7] = t0, t1, t2, t3
    if nh % 2:
        j = nh - 1
        w = WT[j]
        s0 = s1 = s2 = s3 = zero
        for q in range(k):
            wq = w[q]
            s0 += x0[q] * wq
            s1 += x1[q] * wq
            s2 += x2[q] * wq
            s3 += x3[q] * wq
        pre[4 * j], pre[4 * j + 1], pre[4 * j + 2], pre[4 * j + 3] = s0, s1, s2, s3


@njit(cache=True, error_model="numpy", nogil=True, fastmath=_DOT)
def _axpy4(dWT, g, x0, x1, x2, x3):
    # dWT[j] += sum_t g[4 j + t] * x_t, two j at a time (x loads shared by both),
    # as a chain of four FMAs: fewer instructions than a tree of products and sums
    k, nh = x0.shape[0], dWT.shape[0]
    zero = x0.dtype.type(0)
    for j in range(0, nh - 1, 2):
        g0, g1, g2, g3 = g[4 * j], g[4 * j + 1], g[4 * j + 2], g[4 * j + 3]
        h0, h1, h2, h3 = g[4 * j + 4], g[4 * j + 5], g[4 * j + 6], g[4 * j + 7]
        if (g0 == zero and g1 == zero and g2 == zero and g3 == zero and h0 == zero
                and h1 == zero and h2 == zero and h3 == zero):
            continue  # two units off (ReLU) for all four rows: nothing to add
        dw, dv = dWT[j], dWT[j + 1]
        for q in range(k):
            a0, a1, a2, a3 = x0[q], x1[q], x2[q], x3[q]
            dw[q] = (((dw[q] + g0 * a0) + g1 * a1) + g2 * a2) + g3 * a3
            dv[q] = (((dv[q] + h0 * a0) + h1 * a1) + h2 * a2) + h3 * a3
    if nh % 2:
        j = nh - 1
        g0, g1, g2, g3 = g[4 * j], g[4 * j + 1], g[4 * j + 2], g[4 * j + 3]
        dw = dWT[j]
        for q in range(k):
            dw[q] = (((dw[q] + g0 * x0[q]) + g1 * x1[q]) + g2 * x2[q]) + g3 * x3[q]


@njit(cache=True, error_model="numpy", nogil=True)
def _narrow_head4(pre, b1, W2, b2, y, r, rows, dW2, db1, db2, lg, dh, inv_n, loss):
    # Everything of rows r..r+rows-1 (rows <= 4) after their first-layer dot
    # products: ReLU, output layer, softmax, loss (added to `loss`, returned),
    # dW2/db2/db1 (accumulated) and the hidden gradients dh. pre, lg and dh hold
    # one value per unit and row, at [4 unit + row]; pre becomes ReLU(pre + b1).
    # The four rows run side by side as four independent chains (one row's small
    # dot products alone are chains of dependent additions), each row adding in
    # the same order as it would alone.
    nh, nc = W2.shape
    dt = pre.dtype.type
    zero = dt(0)
    for j in range(nh):
        bj = b1[j]
        for t in range(4):
            v = pre[4 * j + t] + bj
            # NaN passes through, as np.maximum does; a missing row gets no gradient
            pre[4 * j + t] = zero if (v <= zero or t >= rows) else v
    for c in range(nc):
        s0 = s1 = s2 = s3 = b2[c]
        for j in range(nh):
            w = W2[j, c]
            s0 += pre[4 * j] * w
            s1 += pre[4 * j + 1] * w
            s2 += pre[4 * j + 2] * w
            s3 += pre[4 * j + 3] * w
        lg[4 * c], lg[4 * c + 1], lg[4 * c + 2], lg[4 * c + 3] = s0, s1, s2, s3
    for t in range(rows):  # a runtime bound: one copy of this loop's body to compile
        target = y[r + t]
        row_max = lg[t]
        for c in range(1, nc):
            if lg[4 * c + t] > row_max:
                row_max = lg[4 * c + t]
        shifted_target = float(lg[4 * target + t] - row_max)
        total = 0.0
        for c in range(nc):
            e = np.exp(lg[4 * c + t] - row_max)
            lg[4 * c + t] = e
            total += e
        loss += np.log(total) - shifted_target
        scale = dt(inv_n / total)
        for c in range(nc):
            lg[4 * c + t] *= scale
        lg[4 * target + t] -= dt(inv_n)
    for t in range(rows, 4):
        for c in range(nc):
            lg[4 * c + t] = zero
    for c in range(nc):
        g0, g1, g2, g3 = lg[4 * c], lg[4 * c + 1], lg[4 * c + 2], lg[4 * c + 3]
        db2[c] += g0
        db2[c] += g1
        db2[c] += g2
        db2[c] += g3
    for j in range(nh):
        h0, h1, h2, h3 = pre[4 * j], pre[4 * j + 1], pre[4 * j + 2], pre[4 * j + 3]
        s0 = s1 = s2 = s3 = zero
        for c in range(nc):
            g0, g1, g2, g3 = lg[4 * c], lg[4 * c + 1], lg[4 * c + 2], lg[4 * c + 3]
            acc = dW2[j, c]
            acc += h0 * g0
            acc += h1 * g1
            acc += h2 * g2
            acc += h3 * g3
            dW2[j, c] = acc
            w = W2[j, c]
            s0 += g0 * w
            s1 += g1 * w
            s2 += g2 * w
            s3 += g3 * w
        s0 = s0 if h0 > zero else zero
        s1 = s1 if h1 > zero else zero
        s2 = s2 if h2 > zero else zero
        s3 = s3 if h3 > zero else zero
        dh[4 * j], dh[4 * j + 1], dh[4 * j + 2], dh[4 * j + 3] = s0, s1, s2, s3
        db1[j] += s0
        db1[j] += s1
        db1[j] += s2
        db1[j] += s3
    return loss


@njit(cache=True, error_model="numpy", nogil=True)
def _narrow_rows(x, y, start, stop, W1T, b1, W2, b2, dW1T, db1, dW2, db2, scratch, inv_n):
    """Loss sum of rows [start, stop) of a one-hidden-layer network, and its gradient sums.

    x (n, k), W1T (h, k) (W1 transposed), W2 (h, c); dW1T and dW2 are sums in
    x's dtype, db1 and db2 in float64. scratch is (3, >= 4 max(h, c)).
    """
    dW1T[...] = 0
    dW2[...] = 0
    db1[...] = 0
    db2[...] = 0
    pre, dh, lg = scratch[0], scratch[1], scratch[2]
    loss = 0.0
    last = stop - 1
    for r in range(start, stop, 4):
        # Four rows a step; past the end (the last 1-3 rows) the missing rows
        # repeat the last one, with a zero gradient: one call site per kernel,
        # so one inlined copy to compile.
        rows = min(4, stop - r)
        x0, x1, x2, x3 = x[r], x[min(r + 1, last)], x[min(r + 2, last)], x[min(r + 3, last)]
        _dots4(x0, x1, x2, x3, W1T, pre)
        loss = _narrow_head4(pre, b1, W2, b2, y, r, rows, dW2, db1, db2, lg, dh, inv_n, loss)
        _axpy4(dW1T, dh, x0, x1, x2, x3)
    return loss


def n_threads():
    """Threads a fused step may use: NUMBA_NUM_THREADS (default: every core)."""
    return max(1, min(numba.config.NUMBA_NUM_THREADS, os.cpu_count() or 1))


_POOL = []
# A forked child inherits the pool but not its threads: work submitted there
# would wait forever. The child starts a pool of its own on first use.
os.register_at_fork(after_in_child=_POOL.clear)


def _pool():
    # Created on first use: a fused step that never splits rows starts no threads.
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=n_threads(), thread_name_prefix="fastnn"))
    return _POOL[0]


# Rows per chunk below which splitting a narrow step costs more than it saves
_MIN_ROWS_PER_THREAD = 1024
# Chunks per thread: a thread slowed down (by another process on its core)
# leaves its later chunks to the others instead of holding up the step
_CHUNKS_PER_THREAD = 4
# Widest hidden and output layers that the single pass handles (beyond them,
# per-row dot products lose to a GEMM)
NARROW_MAX_WIDTH = 32


class _NarrowStep:
    """One-hidden-layer step by single passes over row chunks, on a thread pool."""

    def __init__(self, coefs, intercepts, coef_grads, intercept_grads):
        (k, nh), nc = coefs[0].shape, coefs[1].shape[1]
        dtype, threads = coefs[0].dtype, n_threads()
        slots = threads * _CHUNKS_PER_THREAD if threads > 1 else 1
        self.coefs, self.intercepts = coefs, intercepts
        self.coef_grads, self.intercept_grads = coef_grads, intercept_grads
        self.W1T = np.empty((nh, k), dtype)
        self.dW1T_sum = np.empty((nh, k), dtype)
        self.db_sum = np.empty(max(nh, nc))
        self.dW1T = np.empty((slots, nh, k), dtype)
        self.dW2 = np.empty((slots, nh, nc), dtype)
        self.db1 = np.empty((slots, nh))
        self.db2 = np.empty((slots, nc))
        self.scratch = np.empty((slots, 3, 4 * max(nh, nc)), dtype)

    def _rows(self, t, x, y, start, stop, inv_n):
        return _narrow_rows(
            x, y, start, stop, self.W1T, self.intercepts[0], self.coefs[1],
            self.intercepts[1], self.dW1T[t], self.db1[t], self.dW2[t], self.db2[t],
            self.scratch[t], inv_n,
        )

    def __call__(self, x, y, alpha):
        n = x.shape[0]
        inv_n = 1.0 / n
        # Small reshuffles in NumPy (no BLAS involved): a few microseconds
        # a step, and less to compile than jitted equivalents
        np.copyto(self.W1T, self.coefs[0].T)
        chunks = max(1, min(self.dW1T.shape[0], n // _MIN_ROWS_PER_THREAD))
        bounds = [n * t // chunks for t in range(chunks + 1)]
        if chunks == 1:
            loss = self._rows(0, x, y, 0, n, inv_n)
        else:
            futures = [
                _pool().submit(self._rows, t, x, y, bounds[t], bounds[t + 1], inv_n)
                for t in range(chunks)
            ]
            loss = sum(f.result() for f in futures)
        (dW1, dW2), (db1, db2) = self.coef_grads, self.intercept_grads
        np.sum(self.dW1T[:chunks], axis=0, out=self.dW1T_sum)
        np.copyto(dW1, self.dW1T_sum.T)
        np.sum(self.dW2[:chunks], axis=0, out=dW2)
        # float64 partial sums of the biases' gradients, rounded once
        nh, nc = db1.shape[0], db2.shape[0]
        np.copyto(db1, np.sum(self.db1[:chunks], axis=0, out=self.db_sum[:nh]),
                  casting="same_kind")
        np.copyto(db2, np.sum(self.db2[:chunks], axis=0, out=self.db_sum[:nc]),
                  casting="same_kind")
        return loss * inv_n + _l2(self.coefs, self.coef_grads, alpha, n)


def fused_train_step(coefs, intercepts, activations, deltas, coef_grads, intercept_grads):
    """The training step over these buffers as one callable, ``step(x, y, alpha) -> loss``.

    Parameters
    ----------
    coefs, intercepts : tuple of ndarray
        The layers' weights (k_i, m_i) and biases (m_i,), read.
    activations, deltas : tuple of ndarray
        Work buffers of shapes (max_batch, m_i) and (max_batch, k_i); deltas[0]
        is unused (any array of the same type).
    coef_grads, intercept_grads : tuple of ndarray
        Receive the gradients of the mean loss (plus the L2 term).

    Returns
    -------
    callable
        ``step(x, y, alpha)`` returns the batch's mean cross-entropy plus
        ``alpha / (2 n) * sum ||W||^2``, as `fastnn.network.TrainStep`'s
        kernel-by-kernel path does. A one-hidden-layer network with narrow
        layers takes the single pass over x; any other takes the GEMM path.
    """
    if len(coefs) == 2 and max(W.shape[1] for W in coefs) <= NARROW_MAX_WIDTH:
        return _NarrowStep(coefs, intercepts, coef_grads, intercept_grads)
    args = (coefs, intercepts, activations, deltas, coef_grads, intercept_grads)

    def step(x, y, alpha):
        return train_step_grads(x, y, *args) + _l2(coefs, coef_grads, alpha, x.shape[0])

    return step


def _l2(coefs, coef_grads, alpha, n):
    # Outside the fused kernels, so that it is compiled only when alpha > 0
    if alpha <= 0:
        return 0.0
    return sum(_l2_penalty(W, dW, alpha / n) for W, dW in zip(coefs, coef_grads))
