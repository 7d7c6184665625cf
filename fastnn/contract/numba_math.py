"""Jitted building blocks shared by the contract kernels and the fused step.

One function per activation and per output head, each a plain loop LLVM can
vectorise; the contract kernels choose them by the integer codes of
`fastnn.contract.tables` at run time, the trainer's loops at compile time.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fastnn.contract.jit import njit
from fastnn.contract.tables import LOGISTIC, RELU, TANH


@njit(cache=True, error_model="numpy")
def logistic(v):
    # exp(-v) overflows to inf for v < -88 (float32): 1 / inf is the right 0
    return 1.0 / (1.0 + np.exp(-v))


# -- one function per activation and per head ---------------------------------
#
# Inlined at the IR level where they are called (inlined, their loops vectorise
# as well as the fused step's did; called, the step was 3-4 % slower). A
# specialised loop calls one of each, chosen by a constant code, so that the
# others are never typed (fastnn.engine).


@njit(cache=True, error_model="numpy", inline="always")
def bias_identity(out, b):
    """out += b row-wise."""
    n, m = out.shape
    for i in range(n):
        for j in range(m):
            out[i, j] += b[j]


@njit(cache=True, error_model="numpy", inline="always")
def bias_logistic(out, b):
    """out = logistic(out + b) row-wise."""
    n, m = out.shape
    one = out.dtype.type(1)
    for i in range(n):
        for j in range(m):
            out[i, j] = one / (one + np.exp(-(out[i, j] + b[j])))


@njit(cache=True, error_model="numpy", inline="always")
def bias_tanh(out, b):
    """out = tanh(out + b) row-wise."""
    n, m = out.shape
    for i in range(n):
        for j in range(m):
            out[i, j] = np.tanh(out[i, j] + b[j])


@njit(cache=True, error_model="numpy", inline="always")
def bias_relu(out, b):
    """out = max(out + b, 0) row-wise."""
    n, m = out.shape
    zero = out.dtype.type(0)
    for i in range(n):
        for j in range(m):
            v = out[i, j] + b[j]
            # NaN passes through, as np.maximum does
            out[i, j] = zero if v <= zero else v


# out = d * f'(z), with the derivative written through the output a = f(z), as
# scikit-learn's DERIVATIVES: identity 1, logistic a (1 - a), tanh 1 - a^2, ReLU
# a gate (d where a > 0: inf * 0 would give NaN). With `want_db`, db receives
# the column sums of out, accumulated in float64 in acc (>= m entries; passed in,
# so that no compiled loop allocates: np.zeros costs 0.4 s of compile).


@njit(cache=True, error_model="numpy", inline="always")
def _clear(acc, m, want):
    if want:
        for j in range(m):
            acc[j] = 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _column_sums_into(out, i, acc, want_db):
    if want_db:
        for j in range(out.shape[1]):
            acc[j] += out[i, j]


@njit(cache=True, error_model="numpy", inline="always")
def _store_db(acc, db, want_db):
    if want_db:
        for j in range(db.shape[0]):
            db[j] = acc[j]


@njit(cache=True, error_model="numpy", inline="always")
def grad_identity(d, a, out, db, want_db, acc):
    n, m = d.shape
    _clear(acc, m, want_db)
    for i in range(n):
        for j in range(m):
            out[i, j] = d[i, j]
        _column_sums_into(out, i, acc, want_db)
    _store_db(acc, db, want_db)


@njit(cache=True, error_model="numpy", inline="always")
def grad_logistic(d, a, out, db, want_db, acc):
    n, m = d.shape
    one = d.dtype.type(1)
    _clear(acc, m, want_db)
    for i in range(n):
        for j in range(m):
            v = a[i, j]
            out[i, j] = d[i, j] * (v * (one - v))
        _column_sums_into(out, i, acc, want_db)
    _store_db(acc, db, want_db)


@njit(cache=True, error_model="numpy", inline="always")
def grad_tanh(d, a, out, db, want_db, acc):
    n, m = d.shape
    one = d.dtype.type(1)
    _clear(acc, m, want_db)
    for i in range(n):
        for j in range(m):
            v = a[i, j]
            out[i, j] = d[i, j] * (one - v * v)
        _column_sums_into(out, i, acc, want_db)
    _store_db(acc, db, want_db)


@njit(cache=True, error_model="numpy", inline="always")
def grad_relu(d, a, out, db, want_db, acc):
    n, m = d.shape
    zero = d.dtype.type(0)
    _clear(acc, m, want_db)
    for i in range(n):
        for j in range(m):
            out[i, j] = d[i, j] if a[i, j] > zero else zero
        _column_sums_into(out, i, acc, want_db)
    _store_db(acc, db, want_db)


# Output heads: loss of output pre-activations z (n, C) and, in place, its
# gradient with respect to z. Targets: integer labels y (n,) for softmax, float
# Y (n, C) for the others (the unused one may be empty). sw holds per-row
# weights, or is empty for weight 1. Each returns ``(loss, correct)``:
# ``loss = scale * sum_i sw_i loss_i`` (float64), with ``loss_i`` the row's
# cross-entropy (softmax), binary cross-entropy summed over outputs (logistic),
# ``0.5 * sum_j (z_ij - Y_ij)^2`` (identity) or half the Poisson deviance
# ``sum_j Y log(Y / e^z) - Y + e^z`` (exp); z becomes
# ``scale * sw_i * (f(z_i) - target_i)`` and db its column sums (accumulated
# in acc, float64 of >= C entries). `correct` counts the rows predicted right before the update
# (argmax == y; every output on the right side of 0.5), 0 for the regressions.


@njit(cache=True, error_model="numpy", inline="always")
def flush_subnormal(v, tiny):
    """v, or 0 where |v| is under `tiny`, the smallest normal number (`smallest_normal`).

    A confident network's probabilities underflow (after 4 Adam epochs on
    MNIST, 6.7 % of float32 softmax outputs were subnormal), and every
    product with a subnormal operand in the backward pass can take the
    CPU's slow path. The change is below 1.2e-38 (float32) absolute.
    """
    return v if abs(v) >= tiny else v * 0


@njit(cache=True, error_model="numpy", inline="always")
def adam_square(c, g, least):
    """Adam's ``c * g * g``, or 0 where |g| < `least` (`adam_square_least`).

    A weight that no data reaches (an input that is always 0, as MNIST's
    border pixels) has only its L2 gradient, which shrinks with the weight
    itself: after 5 epochs its c g g underflowed below the smallest normal
    number, and the CPU's slow path for results under it made the update of
    784-128's first layer 3-4x slower (AMD EPYC Zen 5, 82-87 thousand cycles
    against 20-34 per step and thread). g is zeroed before it is squared, so
    no product underflows; the second moment changes by under the smallest
    normal number (1.2e-38 in float32) absolute.
    """
    # a factor of 1 or 0 in g's dtype (least is of it): a select of two
    # constants, which LLVM vectorises (a select of g and 0 kept it scalar)
    factor = least / least if abs(g) >= least else least - least
    kept = g * factor
    return c * kept * kept


@njit(cache=True, error_model="numpy", inline="always")
def adam_square_least(c, tiny):
    """The least |g| for which ``c * g * g`` is at least `tiny` (the smallest normal
    number), in float64: the caller casts it to the weights' dtype."""
    return np.sqrt(tiny / c)


@njit(cache=True, error_model="numpy", inline="always")
def smallest_normal(a):
    """The smallest normal number of array a's dtype (float32 or float64)."""
    return a.dtype.type(1.1754943508222875e-38 if a.itemsize == 4 else 2.2250738585072014e-308)


@intrinsic
def _float_bits(typingctx, x):
    """The bits of float64 x as an int64 (no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_float(typingctx, bits):
    """The float64 whose bits are int64 `bits`."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


# exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 in [-ln 2 / 2, ln 2 / 2]:
# ln 2 in two parts (fdlibm's), the high one with trailing zeros so that k times
# it is exact; exp(r) by its Taylor series to r^13 / 13!, whose remainder is
# under 1e-17 of it; k read from the low bits of x / ln 2 + 1.5 * 2^52
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_ROUND = 6755399441055744.0
_TAYLOR = tuple(1.0 / math.factorial(i) for i in range(14))
_T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9, _T10, _T11, _T12, _T13 = _TAYLOR[2:]
# below it exp(x) is under 2^-1021, 3.3e-308: written as 0
EXP_FLOOR = -708.0


@njit(cache=True, error_model="numpy", inline="always")
def exp_nonpositive(x):
    """exp(x) in float64 for x <= 0 (or NaN), within 1 ulp of np.exp; 0 below EXP_FLOOR.

    The softmax's exponentials, of logits minus their row's maximum. No
    branch and no call: a loop of them is vectorised (libm's exp, which
    np.exp compiles to, is a call per element: 5x slower on AVX-512).
    """
    low = EXP_FLOOR if x < EXP_FLOOR else x  # NaN stays NaN
    kd = low * _INV_LN2 + _ROUND
    k = _float_bits(kd)  # round(low / ln 2) in the low bits
    kd -= _ROUND
    r = (low - kd * _LN2_HI) - kd * _LN2_LO
    p = _T13
    p = p * r + _T12
    p = p * r + _T11
    p = p * r + _T10
    p = p * r + _T9
    p = p * r + _T8
    p = p * r + _T7
    p = p * r + _T6
    p = p * r + _T5
    p = p * r + _T4
    p = p * r + _T3
    p = p * r + _T2
    p = p * r + 1.0
    p = p * r + 1.0
    two_k = _bits_float((k + 1023) << 52)  # 2^k, a normal number for k >= -1022
    return 0.0 if x < EXP_FLOOR else p * two_k


@njit(cache=True, error_model="numpy", inline="always")
def head_softmax(z, y, Y, sw, scale, db, acc):
    n, m = z.shape
    weighted = sw.shape[0] > 0
    _clear(acc, m, True)
    tiny = smallest_normal(z)
    loss = 0.0
    correct = 0
    for i in range(n):
        w = float(sw[i]) if weighted else 1.0
        # the max is private to the row: shared, it races under prange (docs/design.md s. 6)
        row_max = z[i, 0]
        best = 0
        for j in range(1, m):
            if z[i, j] > row_max:
                row_max = z[i, j]
                best = j
        target = y[i]
        correct += best == target
        shifted_target = float(z[i, target] - row_max)  # read before z is overwritten
        total = 0.0
        for j in range(m):
            e = np.exp(z[i, j] - row_max)
            z[i, j] = e
            total += e
        row_loss = np.log(total) - shifted_target
        g = scale * w
        factor = z.dtype.type(g / total)
        for j in range(m):
            z[i, j] = flush_subnormal(z[i, j] * factor, tiny)
        z[i, target] -= z.dtype.type(g)
        loss += w * row_loss
        for j in range(m):
            acc[j] += z[i, j]
    for j in range(m):
        db[j] = acc[j]
    return loss * scale, correct


@njit(cache=True, error_model="numpy", inline="always")
def head_logistic(z, y, Y, sw, scale, db, acc):
    n, m = z.shape
    weighted = sw.shape[0] > 0
    _clear(acc, m, True)
    tiny = smallest_normal(z)
    loss = 0.0
    correct = 0
    one = z.dtype.type(1)
    zero = z.dtype.type(0)
    for i in range(n):
        w = float(sw[i]) if weighted else 1.0
        row_loss = 0.0
        right = True
        g = z.dtype.type(scale * w)
        for j in range(m):
            v = z[i, j]
            t = Y[i, j]
            right = right and ((v > zero) == (t > 0.5))
            # log(1 + exp(v)) - t v without overflow, for logits of +-1000
            av = abs(v)
            row_loss += float(max(v, zero) - t * v) + np.log1p(np.exp(-float(av)))
            if v >= zero:
                p = one / (one + np.exp(-v))
            else:
                e = np.exp(v)
                p = e / (one + e)
            z[i, j] = flush_subnormal(g * (p - t), tiny)
        correct += right
        loss += w * row_loss
        for j in range(m):
            acc[j] += z[i, j]
    for j in range(m):
        db[j] = acc[j]
    return loss * scale, correct


@njit(cache=True, error_model="numpy", inline="always")
def head_identity(z, y, Y, sw, scale, db, acc):
    n, m = z.shape
    weighted = sw.shape[0] > 0
    _clear(acc, m, True)
    loss = 0.0
    for i in range(n):
        w = float(sw[i]) if weighted else 1.0
        row_loss = 0.0
        g = z.dtype.type(scale * w)
        for j in range(m):
            diff = z[i, j] - Y[i, j]
            row_loss += 0.5 * float(diff) * float(diff)
            z[i, j] = g * diff
        loss += w * row_loss
        for j in range(m):
            acc[j] += z[i, j]
    for j in range(m):
        db[j] = acc[j]
    return loss * scale, 0


@njit(cache=True, error_model="numpy", inline="always")
def head_exp(z, y, Y, sw, scale, db, acc):
    n, m = z.shape
    weighted = sw.shape[0] > 0
    _clear(acc, m, True)
    loss = 0.0
    for i in range(n):
        w = float(sw[i]) if weighted else 1.0
        row_loss = 0.0
        g = z.dtype.type(scale * w)
        for j in range(m):
            t = Y[i, j]
            mu = np.exp(z[i, j])
            # t log t - t z - t + e^z (t log t = 0 at t = 0, as scipy's xlogy)
            tlogt = float(t) * np.log(float(t)) if t > 0 else 0.0
            row_loss += tlogt - float(t) * float(z[i, j]) - float(t) + float(mu)
            z[i, j] = g * (mu - t)
        loss += w * row_loss
        for j in range(m):
            acc[j] += z[i, j]
    for j in range(m):
        db[j] = acc[j]
    return loss * scale, 0


# The contract kernels take the activation code at run time: they compile every
# activation's function.


@njit(cache=True, error_model="numpy", inline="always")
def bias_activation_inplace(out, b, code):
    """out = f(out + b) row-wise, for activation `code`."""
    if code == RELU:
        bias_relu(out, b)
    elif code == TANH:
        bias_tanh(out, b)
    elif code == LOGISTIC:
        bias_logistic(out, b)
    else:
        bias_identity(out, b)


@njit(cache=True, error_model="numpy", inline="always")
def activation_inplace(z, out, code):
    """out = f(z) element-wise (out may be z)."""
    n, m = z.shape
    one = z.dtype.type(1)
    zero = z.dtype.type(0)
    if code == RELU:
        for i in range(n):
            for j in range(m):
                v = z[i, j]
                out[i, j] = zero if v <= zero else v
    elif code == TANH:
        for i in range(n):
            for j in range(m):
                out[i, j] = np.tanh(z[i, j])
    elif code == LOGISTIC:
        for i in range(n):
            for j in range(m):
                out[i, j] = one / (one + np.exp(-z[i, j]))
    else:
        for i in range(n):
            for j in range(m):
                out[i, j] = z[i, j]


@njit(cache=True, error_model="numpy", inline="always")
def activation_backward_inplace(d, a, out, code, db, want_db, acc):
    """out = d * f'(z) for activation `code`, db its column sums with `want_db`."""
    if code == RELU:
        grad_relu(d, a, out, db, want_db, acc)
    elif code == TANH:
        grad_tanh(d, a, out, db, want_db, acc)
    elif code == LOGISTIC:
        grad_logistic(d, a, out, db, want_db, acc)
    else:
        grad_identity(d, a, out, db, want_db, acc)


@njit(cache=True, error_model="numpy", inline="always")
def column_sums(a, out):
    """out = a.sum(axis=0), accumulated in float64."""
    n, m = a.shape
    acc = np.zeros(m, dtype=np.float64)
    for i in range(n):
        for j in range(m):
            acc[j] += a[i, j]
    for j in range(m):
        out[j] = acc[j]
    return out
