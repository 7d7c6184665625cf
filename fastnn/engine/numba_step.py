"""The trainer's hot path on the Numba backend: one batch's loss and gradients.

Two ways to the same numbers:

- The GEMM path's step, for any network, activation and head: every
  GEMM through Numba's np.dot (SciPy's OpenBLAS), each element-wise pass fused
  into the GEMM that produces its input (bias+activation, head+loss+gradient+
  bias gradient, activation derivative+bias gradient): `STEPS[act][head]`,
  compiled for one activation and head. Its forward pass is `FORWARDS[act]`,
  which predictions call too.
- `NarrowStep`, a BLAS-free single pass for narrow one-hidden-layer ReLU
  networks with a softmax head (the seed recipe, 784-10-10): with 10 hidden
  units a GEMM's inner dimension is too short for BLAS, and the step is bound by
  reading x. One pass per four rows does the forward pass, softmax, loss and
  every gradient while the rows are in L1. It reads uint8 pixels as they are.

Both compute gradients of ``scale * sum_i loss_i`` (scale = 1/n for a mean, or
1/global_n for a slice of a sharded batch) and return ``(loss, correct)``, the
scaled loss and the number of rows predicted right. The L2 term is the
caller's (`fastnn.engine.numba_epoch`), over the flat parameter buffer.
"""

import itertools
import os
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from fastnn.contract import numba_ops
from fastnn.contract.jit import INTERNAL, njit, specialise
from fastnn.contract.numba_math import (
    bias_identity,
    bias_logistic,
    bias_relu,
    bias_tanh,
    exp_nonpositive,
    flush_subnormal,
    grad_identity,
    grad_logistic,
    grad_relu,
    grad_tanh,
    head_exp,
    head_identity,
    head_logistic,
    head_softmax,
    smallest_normal,
)
from fastnn.contract.numba_ops import _DOT, _dropout
from fastnn.contract.register_blocks import row_axpy, row_sum
from fastnn.contract.tables import (
    ACTIVATIONS,
    COMPACT_INPUT,
    DENSE_INPUT,
    EXP_HEAD,
    HEADS,
    LOGISTIC,
    LOGISTIC_HEAD,
    RELU,
    SOFTMAX_HEAD,
    TANH,
)
from fastnn.engine.params import aligned_zeros, per_slot

# The steps' names per first-layer input (the dense ones keep their names)
SOURCE_SUFFIXES = ("", "_compact")


@njit(cache=True, nogil=True, inline="always")
def compact_rows(compact, rows, start, stop, xs):
    """Batch rows [start, stop) of the epoch order `rows` (empty: identity), as a row source.

    `compact` is (indptr, indices, data, touched): X's nonzeros by row, as a
    CSR matrix's (int64 or int32 row pointers; column indices of any integer
    type; values of the weights' dtype, or uint8 times the input scale xs),
    and a uint8 flag per column of X, all 0 between batches (see
    `compact_weight_grad`). The first layer reads a batch's rows through the
    permutation: nothing is gathered. A tuple, so that the step's signature
    is the dense one's.
    """
    return (compact[0], compact[1], compact[2], compact[3], rows, start, stop, xs)


# The first layer on a row source: the contract's compact kernels
# (`contract.numba_ops.compact_product` / `compact_weight_grad`, tested against
# the NumPy reference as `compact_linear_forward` / `compact_linear_backward`).


@njit(cache=True, nogil=True, inline="always")
def compact_forward(x, W, out):
    """out = x @ W for row source x (`compact_rows`): each nonzero adds a row of W."""
    indptr, indices, data, touched, rows, start, stop, xs = x
    numba_ops.compact_product(indptr, indices, data, rows, start, stop, xs, W, out)


@njit(cache=True, nogil=True, inline="always")
def compact_weight_grad(x, delta, dW):
    """dW = x.T @ delta for row source x, on the rows of dW that the batch touches
    (flagged in x's `touched`; see `contract.numba_ops.compact_weight_grad`)."""
    indptr, indices, data, touched, rows, start, stop, xs = x
    numba_ops.compact_weight_grad(indptr, indices, data, rows, start, stop, xs, delta, dW, touched)


# Compiled per activation (the forward pass) and per activation and head (the
# step), and per first-layer input (dense X or a compact row source) and
# dropout (on or off): closures over the codes, compiled by
# contract.jit.specialise. Numba prunes `if act == RELU:` before typing when
# both sides are constants (a closure cell, a global), so only the code's
# functions are typed, and inlined. Dropout's masks come in `drop`, a defaulted
# argument: omitted, it is typed alike from Python and from jitted callers
# (star arguments are not: a jitted caller's empty *args is another type, and
# the function compiled twice).


def _suffix(src, dropout):
    return SOURCE_SUFFIXES[src] + ("_dropout" if dropout else "")


def _forward_for(act, src=DENSE_INPUT, dropout=0):
    def forward(x, coefs, intercepts, activations, drop=()):
        """Every layer's output for batch x into activations[i][:n]; returns the last.

        The last layer's is the output pre-activation (logits): the head
        applies its own function. x is a dense batch, or a compact row source
        (`compact_rows`) when `src` is COMPACT_INPUT. With `dropout` (a
        training step's forward pass), `drop` is the batch's masks
        (`DROPOUT_STEPS`): a hidden layer with a rate above 0 feeds the next
        one its dropped outputs, written to dropped[i][:n]; activations[i]
        keeps them undropped, for the derivative.
        """
        if src == DENSE_INPUT:
            n = x.shape[0]
            a = x
        else:
            n = x[6] - x[5]
            a = activations[0][:n]  # a placeholder: layer 0 reads x through compact_forward
        last = len(coefs) - 1
        if dropout:
            ids, seeds, step, rates, scales, dropped = drop
        for i in range(last):
            out = activations[i][:n]
            if src == DENSE_INPUT:
                np.dot(a, coefs[i], out)
            elif i == 0:
                compact_forward(x, coefs[0], out)
            else:
                np.dot(a, coefs[i], out)
            b = intercepts[i]
            if act == RELU:
                bias_relu(out, b)
            elif act == TANH:
                bias_tanh(out, b)
            elif act == LOGISTIC:
                bias_logistic(out, b)
            else:
                bias_identity(out, b)
            a = out
            if dropout:
                if rates[i] > 0:
                    a = _dropout(out, ids, seeds[i], step, rates[i], scales[i], dropped[i][:n])
        out = activations[last][:n]
        if src == DENSE_INPUT:
            np.dot(a, coefs[last], out)
        elif last == 0:
            compact_forward(x, coefs[0], out)
        else:
            np.dot(a, coefs[last], out)
        bias_identity(out, intercepts[last])
        return out

    suffix = ACTIVATIONS[act] + _suffix(src, dropout)
    return specialise(forward, suffix, error_model="numpy", nogil=True)


def _step_for(act, head, src=DENSE_INPUT, dropout=0):
    def batch_grads(
        x, y, Y, sw, scale, coefs, intercepts, activations, deltas, cg, ig, acc, drop=()
    ):
        """Loss of batch x and every gradient, over preallocated buffers.

        x (n, k0) of the weights' dtype, or a compact row source of n rows
        (`compact_rows`) when `src` is COMPACT_INPUT; y (n,) labels or Y (n, C)
        targets (the other empty); sw (n,) row weights or empty. coefs[i]
        (k_i, m_i), activations[i] (>= n, m_i), deltas[i] (>= n, k_i) for i >=
        1 (deltas[0] is unused), the gradients cg[i], ig[i] as coefs[i],
        intercepts[i], all tuples of one array type; acc float64 scratch as
        wide as the widest layer. Returns ``(loss, correct)``.

        With `dropout` (`DROPOUT_STEPS`), drop = (ids, seeds, step, rates,
        scales, dropped): ids (n,) int64 the rows' indices in X, and per hidden
        layer i its mask seed seeds[i] (uint64), rate rates[i] (float64), scale
        scales[i] = 1 / (1 - rate) (the weights' dtype) and a buffer dropped[i]
        as activations[i]; step (int64) the batch counter. Unit j of row r is
        kept when the contract's hash of (seeds[i], step, ids[r], j) is >= the
        rate (`contract.numba_ops._dropout`), in the forward pass and again in
        the backward pass.
        """
        if src == DENSE_INPUT:
            n = x.shape[0]
        else:
            n = x[6] - x[5]
        last = len(coefs) - 1
        if n == 0:  # a rank's empty slice of a small sharded batch
            for i in range(last + 1):
                cg[i][...] = 0
                ig[i][...] = 0
            return 0.0, 0
        if dropout:
            ids, seeds, step, rates, scales, dropped = drop
            if src == DENSE_INPUT:
                delta = DROPOUT_FORWARDS[act](x, coefs, intercepts, activations, drop)
            else:
                delta = COMPACT_DROPOUT_FORWARDS[act](x, coefs, intercepts, activations, drop)
        elif src == DENSE_INPUT:
            delta = FORWARDS[act](x, coefs, intercepts, activations)
        else:
            delta = COMPACT_FORWARDS[act](x, coefs, intercepts, activations)
        db = ig[last]
        if head == SOFTMAX_HEAD:
            loss, correct = head_softmax(delta, y, Y, sw, scale, db, acc)
        elif head == LOGISTIC_HEAD:
            loss, correct = head_logistic(delta, y, Y, sw, scale, db, acc)
        elif head == EXP_HEAD:
            loss, correct = head_exp(delta, y, Y, sw, scale, db, acc)
        else:
            loss, correct = head_identity(delta, y, Y, sw, scale, db, acc)
        for i in range(last, -1, -1):
            if src == DENSE_INPUT:
                a_in = x if i == 0 else activations[i - 1][:n]
            else:
                # at i == 0 unused: the input needs no gradient
                a_in = activations[max(i - 1, 0)][:n]
                if i == 0:
                    compact_weight_grad(x, delta, cg[0])
            if src == DENSE_INPUT or i > 0:
                w_in = a_in
                if dropout:
                    if i > 0 and rates[i - 1] > 0:
                        # the weights saw the dropped outputs; the derivative needs the undropped
                        w_in = dropped[i - 1][:n]
                np.dot(w_in.T, delta, cg[i])
            if i > 0:
                dx = deltas[i][:n]
                np.dot(delta, coefs[i].T, dx)
                if dropout:
                    if rates[i - 1] > 0:  # d(h mask scale)/dh: the same mask, recomputed
                        _dropout(dx, ids, seeds[i - 1], step, rates[i - 1], scales[i - 1], dx)
                db = ig[i - 1]
                if act == RELU:
                    grad_relu(dx, a_in, dx, db, True, acc)
                elif act == TANH:
                    grad_tanh(dx, a_in, dx, db, True, acc)
                elif act == LOGISTIC:
                    grad_logistic(dx, a_in, dx, db, True, acc)
                else:
                    grad_identity(dx, a_in, dx, db, True, acc)
                delta = dx
        return loss, correct

    suffix = f"{ACTIVATIONS[act]}_{HEADS[head]}" + _suffix(src, dropout)
    return specialise(batch_grads, suffix, error_model="numpy", nogil=True)


# Indexed by the codes: FORWARDS[act], STEPS[act][head]. A constant index into a
# global namedtuple is resolved before typing, so a caller compiles (or loads
# from the cache) the one it uses; the forward pass is shared by the step and
# by predictions. A namedtuple, not a tuple: Numba types a tuple of jitted
# functions through its experimental first-class functions, with a warning.
_codes = range(len(ACTIVATIONS))


def _forwards(src, dropout):
    return namedtuple("Forwards", ACTIVATIONS)(*(_forward_for(a, src, dropout) for a in _codes))


def _steps(src, dropout):
    heads = namedtuple("HeadSteps", HEADS)
    return namedtuple("Steps", ACTIVATIONS)(
        *(heads(*(_step_for(a, h, src, dropout) for h in range(len(HEADS)))) for a in _codes)
    )


FORWARDS, STEPS = _forwards(DENSE_INPUT, 0), _steps(DENSE_INPUT, 0)
# The first layer reading a compact row source (`compact_rows`)
COMPACT_FORWARDS, COMPACT_STEPS = _forwards(COMPACT_INPUT, 0), _steps(COMPACT_INPUT, 0)
# Dropout's: separate closures, compiled only by a fit that uses dropout; the
# others stay the code that fits without dropout run.
DROPOUT_FORWARDS, DROPOUT_STEPS = _forwards(DENSE_INPUT, 1), _steps(DENSE_INPUT, 1)
COMPACT_DROPOUT_FORWARDS = _forwards(COMPACT_INPUT, 1)
COMPACT_DROPOUT_STEPS = _steps(COMPACT_INPUT, 1)


# -- single pass for narrow networks -----------------------------------------
#
# reassoc lets LLVM vectorise the length-k dot products; these loops only add
# and multiply (NaN and inf still propagate), so it cannot change their meaning.
# x rows may be uint8 (pixels 0..255): they are widened in registers, and the
# input scale (1/255) is applied to the four dot products and to the gradients
# instead of to every pixel.


@njit(cache=True, error_model="numpy", nogil=True, fastmath=_DOT, **INTERNAL)
def _dots4(x0, x1, x2, x3, WT, pre):
    # pre[4 j + t] = x_t . WT[j] for four rows, two j at a time: each vector load
    # of x serves two FMAs and each of WT four, and the 8 accumulators and 6
    # loads fit in the 16 vector registers.
    k, nh = x0.shape[0], WT.shape[0]
    dt = WT.dtype.type  # widens uint8 pixels in registers
    zero = dt(0)
    for j in range(0, nh - 1, 2):
        w, v = WT[j], WT[j + 1]
        s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = zero
        for q in range(k):
            wq, vq = w[q], v[q]
            a0, a1, a2, a3 = dt(x0[q]), dt(x1[q]), dt(x2[q]), dt(x3[q])
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
            s0 += dt(x0[q]) * wq
            s1 += dt(x1[q]) * wq
            s2 += dt(x2[q]) * wq
            s3 += dt(x3[q]) * wq
        pre[4 * j], pre[4 * j + 1], pre[4 * j + 2], pre[4 * j + 3] = s0, s1, s2, s3


@njit(cache=True, error_model="numpy", nogil=True, fastmath=_DOT, **INTERNAL)
def _axpy4(dWT, g, x0, x1, x2, x3):
    # dWT[j] += sum_t g[4 j + t] * x_t, two j at a time (x loads shared by both),
    # as a chain of four FMAs: fewer instructions than a tree of products and sums
    k, nh = x0.shape[0], dWT.shape[0]
    dt = dWT.dtype.type
    zero = dt(0)
    for j in range(0, nh - 1, 2):
        g0, g1, g2, g3 = g[4 * j], g[4 * j + 1], g[4 * j + 2], g[4 * j + 3]
        h0, h1, h2, h3 = g[4 * j + 4], g[4 * j + 5], g[4 * j + 6], g[4 * j + 7]
        if (
            g0 == zero
            and g1 == zero
            and g2 == zero
            and g3 == zero
            and h0 == zero
            and h1 == zero
            and h2 == zero
            and h3 == zero
        ):
            continue  # two units off (ReLU) for all four rows: nothing to add
        dw, dv = dWT[j], dWT[j + 1]
        for q in range(k):
            a0, a1, a2, a3 = dt(x0[q]), dt(x1[q]), dt(x2[q]), dt(x3[q])
            dw[q] = (((dw[q] + g0 * a0) + g1 * a1) + g2 * a2) + g3 * a3
            dv[q] = (((dv[q] + h0 * a0) + h1 * a1) + h2 * a2) + h3 * a3
    if nh % 2:
        j = nh - 1
        g0, g1, g2, g3 = g[4 * j], g[4 * j + 1], g[4 * j + 2], g[4 * j + 3]
        dw = dWT[j]
        for q in range(k):
            dw[q] = (((dw[q] + g0 * dt(x0[q])) + g1 * dt(x1[q])) + g2 * dt(x2[q])) + g3 * dt(x3[q])


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _narrow_head4(pre, b1, W2, b2, y, r, rows, dW2, db1, db2, lg, dh, scale, xs, acc):
    # Everything of rows r..r+rows-1 (rows <= 4) after their first-layer dot
    # products: ReLU, output layer, softmax, loss and correct count (added to
    # acc[0], acc[1]), dW2/db2/db1 (accumulated) and the hidden gradients dh,
    # times the input scale xs (ready for dW1). pre, lg and dh hold one value
    # per unit and row, at [4 unit + row]; pre becomes ReLU(xs pre + b1).
    # The four rows run side by side as four independent chains (one row's small
    # dot products alone are chains of dependent additions), each row adding in
    # the same order as it would alone.
    nh, nc = W2.shape
    dt = pre.dtype.type
    zero = dt(0)
    tiny = smallest_normal(pre)  # subnormal probabilities are written as 0, as head_softmax does
    for j in range(nh):
        bj = b1[j]
        for t in range(4):
            v = pre[4 * j + t] * xs + bj
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
        row_max = lg[t]
        best = 0
        for c in range(1, nc):
            if lg[4 * c + t] > row_max:
                row_max = lg[4 * c + t]
                best = c
        target = y[r + t]
        acc[1] += best == target
        for c in range(nc):
            lg[4 * c + t] -= row_max
        dh[t] = lg[4 * target + t]  # the shifted target logit, until dh is written
    for i in range(4 * nc):  # the four rows' exponentials as one vectorised loop
        lg[i] = dt(exp_nonpositive(float(lg[i])))
    for t in range(rows):
        target = y[r + t]
        total = 0.0
        for c in range(nc):
            total += lg[4 * c + t]
        acc[0] += np.log(total) - float(dh[t])
        factor = dt(scale / total)
        for c in range(nc):
            lg[4 * c + t] = flush_subnormal(lg[4 * c + t] * factor, tiny)
        lg[4 * target + t] -= dt(scale)
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
            a = dW2[j, c]
            a += h0 * g0
            a += h1 * g1
            a += h2 * g2
            a += h3 * g3
            dW2[j, c] = a
            w = W2[j, c]
            s0 += g0 * w
            s1 += g1 * w
            s2 += g2 * w
            s3 += g3 * w
        s0 = s0 if h0 > zero else zero
        s1 = s1 if h1 > zero else zero
        s2 = s2 if h2 > zero else zero
        s3 = s3 if h3 > zero else zero
        db1[j] += s0
        db1[j] += s1
        db1[j] += s2
        db1[j] += s3
        dh[4 * j], dh[4 * j + 1], dh[4 * j + 2] = s0 * xs, s1 * xs, s2 * xs
        dh[4 * j + 3] = s3 * xs


@njit(cache=True, error_model="numpy", nogil=True)
def narrow_rows(x, y, start, stop, W1T, b1, W2, b2, dW1T, db1, dW2, db2, scratch, scale, xs, acc):
    """Rows [start, stop) of a one-hidden-layer ReLU/softmax network in one pass.

    x (n, k) float or uint8 (times the input scale xs), W1T (h, k) (W1
    transposed), W2 (h, c). Sets dW1T and dW2 (x's dtype) and db1, db2
    (float64) to this chunk's gradient sums, acc[0] to its scaled loss and
    acc[1] to its correct count. scratch is (3, >= 4 max(h, c)).
    """
    dW1T[...] = 0
    dW2[...] = 0
    db1[...] = 0
    db2[...] = 0
    acc[0] = 0.0
    acc[1] = 0.0
    pre, dh, lg = scratch[0], scratch[1], scratch[2]
    dt = W1T.dtype.type
    xs_ = dt(xs)
    last = stop - 1
    for r in range(start, stop, 4):
        # Four rows a step; past the end (the last 1-3 rows) the missing rows
        # repeat the last one, with a zero gradient: one call site per kernel,
        # so one inlined copy to compile.
        rows = min(4, stop - r)
        x0, x1, x2, x3 = x[r], x[min(r + 1, last)], x[min(r + 2, last)], x[min(r + 3, last)]
        _dots4(x0, x1, x2, x3, W1T, pre)
        _narrow_head4(pre, b1, W2, b2, y, r, rows, dW2, db1, db2, lg, dh, scale, xs_, acc)
        _axpy4(dW1T, dh, x0, x1, x2, x3)
    acc[0] *= scale


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _sum_rows(a, rows, j):
    # a[:rows, j].sum() in its order, without compiling NumPy's sum (0.3 s)
    s = 0.0
    for t in range(rows):
        s += a[t, j]
    return s


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def narrow_finish(
    parts_dW1T, parts_dW2, parts_db1, parts_db2, parts_acc, chunks, coef_grads, intercept_grads
):
    """Add the first `chunks` partial sums into the gradients; return (loss, correct).

    The parts' slots may hold unused rows after the gradients' (`per_slot`).
    """
    dW1, dW2 = coef_grads[0], coef_grads[1]
    db1, db2 = intercept_grads[0], intercept_grads[1]
    k, nh = dW1.shape
    for q in range(k):
        for j in range(nh):
            s = parts_dW1T[0, j, q]
            for t in range(1, chunks):
                s += parts_dW1T[t, j, q]
            dW1[q, j] = s
    for j in range(nh):
        for c in range(dW2.shape[1]):
            s = parts_dW2[0, j, c]
            for t in range(1, chunks):
                s += parts_dW2[t, j, c]
            dW2[j, c] = s
    # the biases' float64 partial sums, rounded once
    for j in range(nh):
        db1[j] = _sum_rows(parts_db1, chunks, j)
    for c in range(db2.shape[0]):
        db2[c] = _sum_rows(parts_db2, chunks, c)
    loss = 0.0
    correct = 0.0
    for t in range(chunks):
        loss += parts_acc[t, 0]
        correct += parts_acc[t, 1]
    return loss, int(correct)


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def narrow_batch(
    x,
    y,
    scale,
    xs,
    coefs,
    intercepts,
    coef_grads,
    intercept_grads,
    W1T,
    parts_dW1T,
    parts_dW2,
    parts_db1,
    parts_db2,
    parts_acc,
    scratch,
):
    """The whole single pass on one thread: (loss, correct) of batch x, gradients set."""
    n = x.shape[0]
    W1 = coefs[0]
    for q in range(W1.shape[0]):  # element by element: see numba_epoch.fetch_rows
        for j in range(W1.shape[1]):
            W1T[j, q] = W1[q, j]
    narrow_rows(
        x,
        y,
        0,
        n,
        W1T,
        intercepts[0],
        coefs[1],
        intercepts[1],
        parts_dW1T[0, : W1.shape[1]],
        parts_db1[0, : W1.shape[1]],
        parts_dW2[0, : W1.shape[1]],
        parts_db2[0, : coefs[1].shape[1]],
        scratch[0],
        scale,
        xs,
        parts_acc[0, :2],
    )
    return narrow_finish(
        parts_dW1T, parts_dW2, parts_db1, parts_db2, parts_acc, 1, coef_grads, intercept_grads
    )


@njit(cache=True, error_model="numpy", nogil=True)
def narrow_forward(x, xs, W1T, b1, W2, b2, out):
    """Logits of a one-hidden-layer ReLU network without BLAS, four rows at a time.

    For predictions between the single pass's training steps: a BLAS call's
    threads spin on both cores after it returns, and slow the next step's own
    threads down (by half, on 2 cores). x (n, k) float or uint8 (times xs).
    """
    n = x.shape[0]
    nh, nc = W2.shape
    dt = W1T.dtype.type
    zero = dt(0)
    s = dt(xs)
    pre = np.empty(4 * nh, W1T.dtype)
    last = n - 1
    for r in range(0, n, 4):
        _dots4(x[r], x[min(r + 1, last)], x[min(r + 2, last)], x[min(r + 3, last)], W1T, pre)
        for t in range(min(4, n - r)):
            for c in range(nc):
                total = b2[c]
                for j in range(nh):
                    v = pre[4 * j + t] * s + b1[j]
                    if v > zero:  # ReLU, and a NaN stays NaN, as np.maximum keeps it
                        total += v * W2[j, c]
                    elif v != v:
                        total += v
                out[r + t, c] = total
    return out


# -- the single pass on the compact form of X ----------------------------------
#
# The same maths as narrow_rows, reading each row's nonzeros only: a nonzero
# (q, v) adds v W1[q] to the row's pre-activations and v dh to dW1[q]. W1 and
# dW1 are (k, H), H the hidden width rounded up to a multiple of 8 (W1 copied
# in, zero-padded), at most NARROW_MAX_WIDTH: a row's units are one vector
# held in registers across the row's nonzeros (`register_blocks.row_sum`,
# `row_axpy`: a loop compiled per padded width, picked at run time). uint8
# values are scaled by xs where the dense pass scales them (after the dot
# products, and in dh), so the two differ only in the order of the sums.

BLOCK = 8
# Rows per block of the gradient by column (`column_blocks`): their hidden
# gradients (BLOCK_ROWS x H) stay in L1 while the block's columns are summed
BLOCK_ROWS = 256
# Nonzeros per column and block, on average, below which the gradient by column
# costs more (a sum per column and block) than it saves: measured with
# scripts/bench_compact_narrow.py (docs/design.md)
BY_COLUMN_MIN = 32


def padded_width(nh):
    """The compact pass's padded hidden width: nh rounded up to a multiple of BLOCK."""
    return -(-nh // BLOCK) * BLOCK


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _compact_pre(indptr, indices, data, src, W1p, a):
    # a[:H] = x_src @ W1p, unscaled
    row_sum(W1p, a, indices, data, indptr[src], indptr[src + 1])


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _compact_axpy(indptr, indices, data, src, dW1p, g):
    # dW1p[q] += v g for each nonzero (q, v) of row src (g: the row's dh, scaled by xs)
    row_axpy(dW1p, g, indices, data, indptr[src], indptr[src + 1])


@njit(cache=True, error_model="numpy", nogil=True)
def column_blocks(indptr, indices, data, offset, start, stop, k):
    """X's rows offset + [start, stop) by column, in blocks of BLOCK_ROWS rows.

    Returns (ptr, rows, values): block b's nonzeros of column q are
    rows[ptr[b, q]:ptr[b, q + 1]] (uint16, from the block's first row) and
    their values, each column's in row order. Built once per fixed batch chunk
    (`NarrowStep.compact`): it holds as many nonzeros as the chunk.
    """
    blocks = -(-(stop - start) // BLOCK_ROWS)
    ptr = np.zeros((blocks, k + 1), np.int64)
    total = 0
    for b in range(blocks):
        first = start + b * BLOCK_ROWS
        for r in range(first, min(first + BLOCK_ROWS, stop)):
            for p in range(indptr[offset + r], indptr[offset + r + 1]):
                ptr[b, indices[p] + 1] += 1
        ptr[b, 0] = total
        for q in range(k):
            ptr[b, q + 1] += ptr[b, q]
        total = ptr[b, k]
    rows = np.empty(total, np.uint16)
    values = np.empty(total, data.dtype)
    fill = ptr[:, :k].copy()
    for b in range(blocks):
        first = start + b * BLOCK_ROWS
        for r in range(first, min(first + BLOCK_ROWS, stop)):
            for p in range(indptr[offset + r], indptr[offset + r + 1]):
                q = indices[p]
                at = fill[b, q]
                rows[at] = r - first
                values[at] = data[p]
                fill[b, q] = at + 1
    return ptr, rows, values


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _column_grads(columns, b, G, dW1p, a):
    # dW1p[q] += sum of v G[row] over block b's nonzeros (row, v) of column q:
    # each column's sum in registers, then one add to dW1p's row
    ptr, rows, values = columns
    H = dW1p.shape[1]
    for q in range(dW1p.shape[0]):
        first, last = ptr[b, q], ptr[b, q + 1]
        if first < last:
            row_sum(G, a, rows, values, first, last)
            for j in range(H):
                dW1p[q, j] += a[j]


@njit(cache=True, error_model="numpy", nogil=True)
def compact_narrow_rows(
    cx, y, start, stop, W1p, b1, W2, b2, dW1p, db1, dW2, db2, scratch, scale, xs, acc, columns, G
):
    """`narrow_rows` on the compact form: batch rows [start, stop).

    cx = (indptr, indices, data, rows, offset): X's nonzeros by row
    (`fastnn.engine.compact`), and batch row r is X's row rows[offset + r]
    (rows empty: offset + r), so shuffled rows are read in place. y holds the
    batch's labels. W1p (k, H) is W1 zero-padded to H = `padded_width(h)`
    columns; dW1p is set as W1p, its padding columns included. scratch is (4,
    >= 4 max(h, c, 8)).

    columns: `column_blocks` of these rows, or empty arrays. With them, the
    weight gradient runs per block of BLOCK_ROWS rows by column: the block's
    hidden gradients are kept in G (BLOCK_ROWS, H), zero past h, and each
    column's sum is held in registers (`_column_grads`) instead of adding
    each nonzero's row into dW1p, a load and a store per nonzero.
    """
    indptr, indices, data, order, offset = cx
    dW1p[...] = 0
    dW2[...] = 0
    db1[...] = 0
    db2[...] = 0
    acc[0] = 0.0
    acc[1] = 0.0
    pre, dh, lg, a = scratch[0], scratch[1], scratch[2], scratch[3]
    nh = W2.shape[0]
    dt = W1p.dtype.type
    zero = dt(0)
    xs_ = dt(xs)
    for j in range(nh, W1p.shape[1]):
        a[j] = zero  # the padding units' gradients, for _compact_axpy
    by_column = columns[0].shape[0] > 0
    for r in range(start, stop, 4):
        rows = min(4, stop - r)
        for t in range(4):
            if t < rows:
                src = order[offset + r + t] if order.shape[0] else offset + r + t
                _compact_pre(indptr, indices, data, src, W1p, a)
                for j in range(nh):
                    pre[4 * j + t] = a[j]
            else:  # a missing row: no gradient (_narrow_head4)
                for j in range(nh):
                    pre[4 * j + t] = zero
        _narrow_head4(pre, b1, W2, b2, y, r, rows, dW2, db1, db2, lg, dh, scale, xs_, acc)
        if by_column:
            block, first = divmod(r - start, BLOCK_ROWS)
            for t in range(rows):
                for j in range(nh):
                    G[first + t, j] = dh[4 * j + t]
            if first + 4 >= BLOCK_ROWS or r + 4 >= stop:  # the block's last rows
                _column_grads(columns, block, G, dW1p, a)
            continue
        for t in range(rows):
            live = False
            for j in range(nh):
                a[j] = dh[4 * j + t]
                live |= a[j] != zero
            if live:  # else every unit is off (ReLU): nothing to add
                src = order[offset + r + t] if order.shape[0] else offset + r + t
                _compact_axpy(indptr, indices, data, src, dW1p, a)
    acc[0] *= scale


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def compact_narrow_batch(
    cx, y, n, scale, xs, coefs, intercepts, coef_grads, intercept_grads, buffers
):
    """The compact single pass on one thread: (loss, correct) of an n-row batch.

    buffers: `NarrowStep.compact_buffers()`.
    """
    W1p, parts_dW1p, parts_dW1T, parts_dW2, parts_db1, parts_db2, parts_acc, scratch = buffers
    W1 = coefs[0]
    for q in range(W1.shape[0]):
        for j in range(W1.shape[1]):
            W1p[q, j] = W1[q, j]
    compact_narrow_rows(
        cx,
        y,
        0,
        n,
        W1p,
        intercepts[0],
        coefs[1],
        intercepts[1],
        parts_dW1p[0, : W1.shape[0]],
        parts_db1[0, : W1.shape[1]],
        parts_dW2[0, : W1.shape[1]],
        parts_db2[0, : coefs[1].shape[1]],
        scratch[0],
        scale,
        xs,
        parts_acc[0, :2],
        (np.zeros((0, 1), np.int64), np.zeros(0, np.uint16), np.zeros(0, cx[2].dtype)),
        np.zeros((0, 1), W1p.dtype),
    )
    return narrow_finish(
        parts_dW1T, parts_dW2, parts_db1, parts_db2, parts_acc, 1, coef_grads, intercept_grads
    )


# compact_narrow_rows' `columns` when the rows go by row (`_compact_rows`)
_NO_COLUMNS = {
    np.dtype(t): (np.zeros((0, 1), np.int64), np.zeros(0, np.uint16), np.zeros(0, t))
    for t in (np.uint8, np.float32, np.float64)
}


def n_threads():
    """Threads a step may use: Numba's current thread count (NUMBA_NUM_THREADS by default)."""
    return max(1, min(numba.get_num_threads(), os.cpu_count() or 1))


_POOL = {}
# A forked child inherits the pool but not its threads: work submitted there
# would wait forever. The child starts a pool of its own on first use.
os.register_at_fork(after_in_child=_POOL.clear)


def _pool(threads):
    # Created on first use: a step that never splits rows starts no threads.
    if threads not in _POOL:
        _POOL[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fastnn")
    return _POOL[threads]


# Rows per chunk below which splitting a narrow step costs more than it saves
MIN_ROWS_PER_THREAD = 1024
# The same for predictions (`narrow_predict`): a row costs about a microsecond
# (784-10-10), handing a chunk to the pool tens of microseconds
MIN_PREDICT_ROWS_PER_THREAD = 256
# Chunks per thread: a thread slowed down (by another process on its core)
# leaves its later chunks to the others instead of holding up the step
CHUNKS_PER_THREAD = 4
# Widest hidden and output layers that the single pass handles (beyond them,
# per-row dot products lose to a GEMM)
NARROW_MAX_WIDTH = 32


def narrow_predict(x, xs, W1T, b1, W2, b2, out):
    """`narrow_forward` of x's rows, split over the pool's threads when there are
    enough of them (each row's logits are its own: the same values, bit for bit).

    The first chunk runs on the calling thread. Used for predictions and for the
    validation scores between the single pass's epochs.
    """
    n = x.shape[0]
    threads = min(n_threads(), n // MIN_PREDICT_ROWS_PER_THREAD)
    if threads < 2:
        return narrow_forward(x, xs, W1T, b1, W2, b2, out)
    bounds = [n * t // threads for t in range(threads + 1)]
    pool = _pool(n_threads())
    futures = [
        pool.submit(narrow_forward, x[a:b], xs, W1T, b1, W2, b2, out[a:b])
        for a, b in zip(bounds[1:-1], bounds[2:])
    ]
    try:
        narrow_forward(x[: bounds[1]], xs, W1T, b1, W2, b2, out[: bounds[1]])
    finally:
        for future in futures:
            future.result()
    return out


def narrow_applies(n_hidden_layers, widths, activation, head, weighted, dropout=False):
    """Whether the single pass can run this network (else the GEMM path does).

    Not with dropout: the single pass keeps a row's hidden units in registers
    from the first layer's dot products to its gradients, four rows at a time,
    and a mask would put the hash of every unit into that inner loop for the
    networks that need dropout least (at most 32 hidden units underfit rather
    than overfit). They train on the GEMM path instead, which takes the masks.
    """
    return (
        n_hidden_layers == 1
        and max(widths) <= NARROW_MAX_WIDTH
        and activation == RELU
        and head == SOFTMAX_HEAD
        and not weighted
        and not dropout
    )


class NarrowStep:
    """The single pass over row chunks, on a thread pool when the batch is large.

    Holds the per-chunk partial sums, allocated once for `threads` threads.
    """

    def __init__(self, coefs, intercepts, coef_grads, intercept_grads, threads=None):
        (k, nh), nc = coefs[0].shape, coefs[1].shape[1]
        dtype = coefs[0].dtype
        self.threads = n_threads() if threads is None else threads
        slots = self.threads * CHUNKS_PER_THREAD if self.threads > 1 else 1
        self.coefs, self.intercepts = tuple(coefs), tuple(intercepts)
        self.coef_grads, self.intercept_grads = tuple(coef_grads), tuple(intercept_grads)
        self.W1T = np.empty((nh, k), dtype)
        self.dW1T = per_slot(slots, (nh, k), dtype)
        self.dW2 = per_slot(slots, (nh, nc), dtype)
        self.db1 = per_slot(slots, (nh,), np.float64)
        self.db2 = per_slot(slots, (nc,), np.float64)
        self.acc = per_slot(slots, (2,), np.float64)
        self.scratch = per_slot(slots, (3, 4 * max(nh, nc)), dtype)
        self._compact = None  # the compact pass's buffers, made on its first batch
        # the weight gradient by column (`column_blocks`) for batches of rows in
        # order, where it pays; False: always by row
        self.by_column = True
        self._columns_of, self._column_cache, self._blocks = None, {}, None
        self._no_block = np.zeros((0, 1), dtype)

    def chunks(self, n):
        """How many row chunks a batch of n rows is split into."""
        return max(1, min(self.dW1T.shape[0], n // MIN_ROWS_PER_THREAD))

    def buffers(self):
        """The work buffers, in `narrow_batch`'s order after intercept_grads."""
        return (self.W1T, self.dW1T, self.dW2, self.db1, self.db2, self.acc, self.scratch)

    def compact_buffers(self):
        """The compact pass's buffers (`compact_narrow_batch`), made on first use."""
        if self._compact is None:
            slots, (k, nh) = self.dW1T.shape[0], self.coefs[0].shape
            dtype = self.W1T.dtype
            # on cache lines: a row of H = 16 float64 then spans two lines, not
            # three (a third faster forward sums, half the gradient's time)
            W1p = aligned_zeros((k, padded_width(nh)), dtype)
            dW1p = per_slot(slots, W1p.shape, dtype)
            # narrow_finish reads dW1 as (chunk, unit, feature)
            dW1T = dW1p[:, :k, :nh].transpose(0, 2, 1)
            width = max(4 * BLOCK, self.scratch.shape[2])
            scratch = per_slot(slots, (4, width), dtype)
            self._compact = (W1p, dW1p, dW1T, self.dW2, self.db1, self.db2, self.acc, scratch)
        return self._compact

    def _run(self, chunks, work):
        """work(t) for each chunk t, on this thread and threads - 1 of the pool's.

        Each thread takes the next chunk left until there is none (a thread
        slowed down by another process takes fewer): one hand-off per helper
        thread per step, not one per chunk, and this thread works instead of
        waiting. Each chunk writes its own slot, so who runs it does not
        change the result.
        """
        next_chunk = itertools.count().__next__  # one at a time: it holds the GIL

        def take_chunks():
            while (t := next_chunk()) < chunks:
                work(t)

        helpers = [
            _pool(self.threads).submit(take_chunks) for _ in range(min(self.threads, chunks) - 1)
        ]
        try:
            take_chunks()
        finally:
            for helper in helpers:
                helper.result()

    def _sums(self, t):
        """Chunk t's db1, dW2, db2: the rows of its slots in use (`per_slot` pads them)."""
        nh, nc = self.coefs[1].shape
        return self.db1[t, :nh], self.dW2[t, :nh], self.db2[t, :nc]

    def _rows(self, t, x, y, start, stop, scale, xs):
        narrow_rows(
            x,
            y,
            start,
            stop,
            self.W1T,
            self.intercepts[0],
            self.coefs[1],
            self.intercepts[1],
            self.dW1T[t, : self.W1T.shape[0]],
            *self._sums(t),
            self.scratch[t],
            scale,
            xs,
            self.acc[t, :2],
        )

    def __call__(self, x, y, scale, xs=1.0):
        """(loss, correct) of batch (x, y); the gradients into coef_grads, intercept_grads."""
        n = x.shape[0]
        chunks = self.chunks(n)
        if chunks == 1:
            return narrow_batch(
                x,
                y,
                scale,
                xs,
                self.coefs,
                self.intercepts,
                self.coef_grads,
                self.intercept_grads,
                *self.buffers(),
            )
        np.copyto(self.W1T, self.coefs[0].T)
        bounds = [n * t // chunks for t in range(chunks + 1)]
        self._run(chunks, lambda t: self._rows(t, x, y, bounds[t], bounds[t + 1], scale, xs))
        return narrow_finish(
            self.dW1T,
            self.dW2,
            self.db1,
            self.db2,
            self.acc,
            chunks,
            self.coef_grads,
            self.intercept_grads,
        )

    def _compact_rows(self, t, cx, y, start, stop, scale, xs, columns):
        W1p, dW1p, _, _, _, _, acc, scratch = self.compact_buffers()
        if columns is None:
            columns, G = _NO_COLUMNS[cx[2].dtype], self._no_block
        else:
            G = self._blocks[t, :BLOCK_ROWS]
        compact_narrow_rows(
            cx,
            y,
            start,
            stop,
            W1p,
            self.intercepts[0],
            self.coefs[1],
            self.intercepts[1],
            dW1p[t, : W1p.shape[0]],
            *self._sums(t),
            scratch[t],
            scale,
            xs,
            acc[t, :2],
            columns,
            G,
        )

    def _columns(self, parts, offset, n, bounds):
        """Each chunk's `column_blocks` for batch rows offset..offset + n - 1, or
        None where a block's columns would hold too few nonzeros to pay.

        Built on the batch's first step and kept while X's compact form is the
        same: at most one copy of X's nonzeros (each batch's rows once), and a
        pointer per column and block, no more than the block's nonzeros take.
        """
        indptr, k = parts[0], self.coefs[0].shape[0]
        nonzeros = int(indptr[offset + n] - indptr[offset])
        if not self.by_column or nonzeros < BY_COLUMN_MIN * k * -(-n // BLOCK_ROWS):
            return None
        if self._columns_of is not indptr:
            self._columns_of, self._column_cache = indptr, {}
        if self._blocks is None:
            W1p = self.compact_buffers()[0]
            self._blocks = per_slot(self.dW1T.shape[0], (BLOCK_ROWS, W1p.shape[1]), W1p.dtype)
        key = (offset, n, len(bounds))
        if key not in self._column_cache:
            self._column_cache[key] = [
                column_blocks(*parts[:3], offset, a, b, k) for a, b in zip(bounds, bounds[1:])
            ]
        return self._column_cache[key]

    def compact(self, parts, rows, offset, n, y, scale, xs=1.0):
        """As a call on the batch of X's rows rows[offset:offset + n] (rows empty:
        offset..offset + n - 1), read from X's compact form `parts` (indptr,
        indices, data) in place; y holds the batch's labels."""
        cx = (parts[0], parts[1], parts[2], rows, offset)
        chunks = self.chunks(n)
        buffers = self.compact_buffers()
        if chunks == 1:
            return compact_narrow_batch(
                cx,
                y,
                n,
                scale,
                xs,
                self.coefs,
                self.intercepts,
                self.coef_grads,
                self.intercept_grads,
                buffers,
            )
        W1p, _, dW1T, dW2, db1, db2, acc, _ = buffers
        np.copyto(W1p[:, : self.coefs[0].shape[1]], self.coefs[0])
        bounds = [n * t // chunks for t in range(chunks + 1)]
        # rows in order (unshuffled, as a full batch is): the same chunks each
        # step, worth sorting by column once
        columns = self._columns(parts, offset, n, bounds) if rows.shape[0] == 0 else None

        def chunk(t):
            blocks = None if columns is None else columns[t]
            self._compact_rows(t, cx, y, bounds[t], bounds[t + 1], scale, xs, blocks)

        self._run(chunks, chunk)
        return narrow_finish(
            dW1T, dW2, db1, db2, acc, chunks, self.coef_grads, self.intercept_grads
        )
