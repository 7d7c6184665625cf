"""Jitted building blocks shared by the contract kernels and the fused step.

Activations and output heads are selected by the integer codes of
`fastnn.contract.tables`. Each element-wise pass branches on the code once, outside
its loops, so that every branch is a plain loop LLVM can vectorise.
"""

import numpy as np

from fastnn.contract.jit import njit
from fastnn.contract.tables import (
    EXP_HEAD,
    LOGISTIC,
    LOGISTIC_HEAD,
    RELU,
    SOFTMAX_HEAD,
    TANH,
)


@njit(cache=True, error_model="numpy")
def logistic(v):
    # exp(-v) overflows to inf for v < -88 (float32): 1 / inf is the right 0
    return 1.0 / (1.0 + np.exp(-v))


@njit(cache=True, error_model="numpy", inline="always")
def bias_activation_inplace(out, b, code):
    """out = f(out + b) row-wise, for activation `code`."""
    n, m = out.shape
    one = out.dtype.type(1)
    zero = out.dtype.type(0)
    if code == RELU:
        for i in range(n):
            for j in range(m):
                v = out[i, j] + b[j]
                # NaN passes through, as np.maximum does
                out[i, j] = zero if v <= zero else v
    elif code == TANH:
        for i in range(n):
            for j in range(m):
                out[i, j] = np.tanh(out[i, j] + b[j])
    elif code == LOGISTIC:
        for i in range(n):
            for j in range(m):
                out[i, j] = one / (one + np.exp(-(out[i, j] + b[j])))
    else:
        for i in range(n):
            for j in range(m):
                out[i, j] += b[j]


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
def activation_backward_inplace(d, a, out, code, db, want_db):
    """out = d * f'(z), with the derivative written through the output a = f(z).

    As scikit-learn's DERIVATIVES: logistic a (1 - a), tanh 1 - a^2, ReLU a
    gate (d where a > 0: inf * 0 would give NaN), identity 1. With `want_db`,
    db receives the column sums of out, accumulated in float64.
    """
    n, m = d.shape
    one = d.dtype.type(1)
    zero = d.dtype.type(0)
    acc = np.zeros(m if want_db else 0, dtype=np.float64)
    for i in range(n):
        if code == RELU:
            for j in range(m):
                out[i, j] = d[i, j] if a[i, j] > zero else zero
        elif code == TANH:
            for j in range(m):
                v = a[i, j]
                out[i, j] = d[i, j] * (one - v * v)
        elif code == LOGISTIC:
            for j in range(m):
                v = a[i, j]
                out[i, j] = d[i, j] * (v * (one - v))
        else:
            for j in range(m):
                out[i, j] = d[i, j]
        if want_db:
            for j in range(m):
                acc[j] += out[i, j]
    if want_db:
        for j in range(m):
            db[j] = acc[j]


@njit(cache=True, error_model="numpy", inline="always")
def head_grad_inplace(z, y, Y, sw, head, scale, db):
    """Loss of output pre-activations z and, in place, its gradient with respect to z.

    z is (n, C). Targets: integer labels y (n,) for the softmax head, float
    Y (n, C) for the others (the unused one may be empty). sw holds per-row
    weights, or is empty for weight 1. Returns ``(loss, correct)``:
    ``loss = scale * sum_i sw_i loss_i`` (float64), with ``loss_i`` the row's
    cross-entropy (softmax), binary cross-entropy summed over outputs
    (logistic), ``0.5 * sum_j (z_ij - Y_ij)^2`` (identity) or half the Poisson
    deviance ``sum_j Y log(Y / e^z) - Y + e^z`` (exp); z becomes
    ``scale * sw_i * (f(z_i) - target_i)`` and db its column sums (float64
    accumulation). `correct` counts the rows predicted right before the update
    (argmax == y; every output on the right side of 0.5), 0 for identity.
    """
    n, m = z.shape
    weighted = sw.shape[0] > 0
    acc = np.zeros(m, dtype=np.float64)
    loss = 0.0
    correct = 0
    one = z.dtype.type(1)
    zero = z.dtype.type(0)
    for i in range(n):
        w = float(sw[i]) if weighted else 1.0
        row_loss = 0.0
        if head == SOFTMAX_HEAD:
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
                z[i, j] *= factor
            z[i, target] -= z.dtype.type(g)
        elif head == LOGISTIC_HEAD:
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
                z[i, j] = g * (p - t)
            correct += right
        elif head == EXP_HEAD:
            g = z.dtype.type(scale * w)
            for j in range(m):
                t = Y[i, j]
                mu = np.exp(z[i, j])
                # t log t - t z - t + e^z (t log t = 0 at t = 0, as scipy's xlogy)
                tlogt = float(t) * np.log(float(t)) if t > 0 else 0.0
                row_loss += tlogt - float(t) * float(z[i, j]) - float(t) + float(mu)
                z[i, j] = g * (mu - t)
        else:
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
    return loss * scale, correct


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
