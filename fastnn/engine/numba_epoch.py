"""The compiled epoch loop: many training steps per call, no Python per batch.

`gemm_epoch(act, head, solver)` and `narrow_epoch(solver)` return the loop of
each path, compiled for one activation, head and solver: it takes an epoch's
row order and runs a range of its batches: gather (or read in place), fused
forward/backward, L2, optimizer update on the flat parameter buffer,
divergence check. The trainer calls it once per epoch, or in slices of bounded
time so that Ctrl-C is seen within a fraction of a second. It releases the GIL.

Rows may be read from float X of the weights' dtype in place (no shuffling,
contiguous rows: no copy at all), or gathered by index into a batch buffer;
uint8 X is widened and scaled by the input scale (1/255 for pixels) while it is
gathered, so a float copy of the data set is never made.
"""

import functools
from collections import namedtuple

import numpy as np
from numba.extending import overload

from fastnn.contract.jit import INTERNAL, njit, specialise
from fastnn.contract.numba_math import adam_square, adam_square_least, smallest_normal
from fastnn.contract.numba_ops import _DOT, _adam, _l2_penalty, _sgd_momentum, _sgd_plain
from fastnn.contract.tables import (
    ACTIVATIONS,
    ADAM,
    BAD_BATCH,
    BATCHES,
    CORRECT,
    DENSE_INPUT,
    HEADS,
    LOSS,
    LOSS_NOT_FINITE,
    OK,
    SGD,
    SOLVERS,
    STATUS,
    WEIGHT,
    WEIGHTS_NOT_FINITE,
)
from fastnn.engine.numba_step import (
    COMPACT_DROPOUT_STEPS,
    COMPACT_STEPS,
    DROPOUT_STEPS,
    SOURCE_SUFFIXES,
    STEPS,
    compact_narrow_batch,
    compact_rows,
    narrow_batch,
)


def fetch_rows(X, rows, start, stop, xs, xb):
    """Batch rows [start, stop) of the epoch order `rows` (empty: identity) as floats.

    This Python body runs only under NUMBA_DISABLE_JIT; compiled callers get
    `_fetch_rows`'s, specialised on X's dtype.
    """
    pick = slice(start, stop) if rows.shape[0] == 0 else rows[start:stop]
    if X.dtype == xb.dtype:
        return X[pick]
    m = stop - start
    np.multiply(X[pick], xb.dtype.type(xs), out=xb[:m], dtype=xb.dtype)
    return xb[:m]


# No cache option here: the body is compiled into its (cached) caller, and an
# overload's own cache=True fails at import on a read-only install.
@overload(fetch_rows, jit_options={"error_model": "numpy"})
def _fetch_rows(X, rows, start, stop, xs, xb):
    if X.dtype == xb.dtype:

        def read(X, rows, start, stop, xs, xb):
            if rows.shape[0] == 0:
                return X[start:stop]  # contiguous rows: read in place
            m, k = stop - start, X.shape[1]
            for r in range(m):
                src = rows[start + r]
                for j in range(k):  # element by element: a row assignment compiles
                    xb[r, j] = X[src, j]  # a shape check with a formatted error, seconds
            return xb[:m]
    else:

        def read(X, rows, start, stop, xs, xb):
            # integer pixels: widened and scaled on the way in
            dt = xb.dtype.type
            s = dt(xs)
            m, k = stop - start, X.shape[1]
            for r in range(m):
                src = rows[start + r] if rows.shape[0] else start + r
                for j in range(k):
                    xb[r, j] = dt(X[src, j]) * s
            return xb[:m]

    return read


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def take_rows(a, rows, start, stop, buf):
    """Entries [start, stop) of 1-D a (labels, row weights; empty stays empty) in epoch order."""
    if a.shape[0] == 0 or rows.shape[0] == 0:
        return a[start:stop] if a.shape[0] else a[:0]
    m = stop - start
    for r in range(m):
        buf[r] = a[rows[start + r]]
    return buf[:m]


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def take_rows_2d(a, rows, start, stop, buf):
    """Rows [start, stop) of 2-D a (float targets, or X; empty stays empty) in epoch order."""
    if a.shape[0] == 0 or rows.shape[0] == 0:
        return a[start:stop] if a.shape[0] else a[:0]
    m, k = stop - start, a.shape[1]
    for r in range(m):
        src = rows[start + r]
        for j in range(k):  # element by element: see fetch_rows
            buf[r, j] = a[src, j]
    return buf[:m]


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def batch_ids(rows, start, stop, buf):
    """The indices in X of batch [start, stop)'s rows (dropout's mask keys)."""
    if rows.shape[0]:
        return rows[start:stop]
    for r in range(stop - start):
        buf[r] = start + r
    return buf[: stop - start]


@njit(cache=True, error_model="numpy", nogil=True, **INTERNAL)
def _all_finite(a):
    for i in range(a.shape[0]):
        if not np.isfinite(a[i]):
            return False
    return True


# The optimizers' updates of the flat buffers, with one signature: returns Adam's t


@njit(cache=True, error_model="numpy", nogil=True, **INTERNAL)
def sgd_step(params, grads, lr, momentum, nesterov, beta1, beta2, eps, state1, state2, t):
    if momentum > 0:
        _sgd_momentum(params, grads, lr, state1, momentum, nesterov)
    else:
        _sgd_plain(params, grads, lr)
    return t


@njit(cache=True, error_model="numpy", nogil=True, **INTERNAL)
def adam_step(params, grads, lr, momentum, nesterov, beta1, beta2, eps, state1, state2, t):
    _adam(params, grads, state1, state2, t + 1, lr, beta1, beta2, eps)
    return t + 1


# indexed by solver code (a namedtuple: see numba_step.STEPS)
UPDATES = namedtuple("Updates", SOLVERS)(sgd_step, adam_step)


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def finish_batch(
    loss,
    weight,
    scale,
    b,
    params,
    grads,
    n_coef,
    alpha,
    update,
    lr,
    momentum,
    nesterov,
    beta1,
    beta2,
    eps,
    state1,
    state2,
    t,
    stats,
):
    """After a batch's gradients: the L2 term, the divergence check, the update.

    `loss` and the gradients are the batch's (scaled by `scale`, the batch
    holding `weight` rows or weight); `params`/`grads` are the flat buffers,
    whose first n_coef entries are the weights (the L2 term's, as in
    scikit-learn's packing); `update` is one of UPDATES. On a NaN or inf loss,
    sets STATUS and BAD_BATCH and leaves the parameters alone. Returns Adam's
    step count t.
    """
    if alpha > 0:
        loss += _l2_penalty(params[:n_coef], grads[:n_coef], alpha * scale)
    if not np.isfinite(loss):
        stats[STATUS] = LOSS_NOT_FINITE
        stats[BAD_BATCH] = b
        return t
    t = update(params, grads, lr, momentum, nesterov, beta1, beta2, eps, state1, state2, t)
    stats[LOSS] += loss * weight
    stats[WEIGHT] += weight
    stats[BATCHES] += 1
    return t


@njit(cache=True, error_model="numpy", nogil=True, fastmath=_DOT, **INTERNAL)
def _sum_squares(w):
    # _l2_penalty's sum of squares, in its order (the same loop and flags)
    total = 0.0
    for i in range(w.size):
        wi = w[i]
        total += float(wi) * float(wi)
    return total


# The first layer's update on the compact path, one kernel per solver over a
# span of weights; hit and l2 are constants at each call site (inlined), so
# each span's loop is branch-free and vectorised.


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _grad(grads, params, i, hit, l2, s):
    g = grads[i] if hit else params.dtype.type(0)
    if l2:
        g += s * params[i]
    return g


# Spans are row views, looped from 0: an index known non-negative needs no
# wraparound check, which would keep the loop scalar


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _adam_span(params, grads, hit, l2, s, m, v, b1, b2, c1, c2, step, e, least):
    for i in range(params.shape[0]):
        g = _grad(grads, params, i, hit, l2, s)
        mi = b1 * m[i] + c1 * g
        vi = b2 * v[i] + adam_square(c2, g, least)
        m[i] = mi
        v[i] = vi
        params[i] -= step * mi / (np.sqrt(vi) + e)


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _momentum_span(params, grads, hit, l2, s, vel, mu, lr, nesterov):
    for i in range(params.shape[0]):
        g = _grad(grads, params, i, hit, l2, s)
        v = mu * vel[i] - lr * g
        vel[i] = v
        if nesterov:
            params[i] += mu * v - lr * g
        else:
            params[i] += v


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _plain_span(params, grads, hit, l2, s, lr):
    for i in range(params.shape[0]):
        params[i] -= lr * _grad(grads, params, i, hit, l2, s)


@njit(cache=True, error_model="numpy", nogil=True, **INTERNAL)
def _first_layer_update(
    params,
    grads,
    touched,
    m,
    l2,
    s,
    adam,
    lr,
    momentum,
    nesterov,
    beta1,
    beta2,
    eps,
    state1,
    state2,
    t,
):
    """The update of the first layer's k x m weights (the flat buffers' head), row by row.

    The same operations per element as the L2 term and `_adam` /
    `_sgd_momentum` / `_sgd_plain` over the whole buffer: a row that no
    nonzero of the batch touched (touched[row] == 0) has a zero data
    gradient, which is neither read nor zeroed; only its L2 term,
    ``s * w``, is added (without L2, plain SGD leaves it alone). Clears the
    flags. t: Adam's step count, this step's.
    """
    dt = params.dtype.type
    lr_, mu = dt(lr), dt(momentum)
    b1, b2 = dt(beta1), dt(beta2)
    c1, c2 = dt(1.0 - beta1), dt(1.0 - beta2)
    step = dt(lr * np.sqrt(1.0 - beta2 ** float(t)) / (1.0 - beta1 ** float(t))) if adam else lr_
    e = dt(eps)
    least = dt(adam_square_least(c2, smallest_normal(params)))
    for c in range(touched.shape[0]):
        hit = touched[c] != 0
        touched[c] = 0
        lo, hi = c * m, c * m + m
        p, g = params[lo:hi], grads[lo:hi]
        s1 = state1[lo:hi] if state1.shape[0] else state1
        s2 = state2[lo:hi] if state2.shape[0] else state2
        if adam:
            if hit and l2:
                _adam_span(p, g, True, True, s, s1, s2, b1, b2, c1, c2, step, e, least)
            elif hit:
                _adam_span(p, g, True, False, s, s1, s2, b1, b2, c1, c2, step, e, least)
            elif l2:
                _adam_span(p, g, False, True, s, s1, s2, b1, b2, c1, c2, step, e, least)
            else:
                _adam_span(p, g, False, False, s, s1, s2, b1, b2, c1, c2, step, e, least)
        elif momentum > 0:
            if hit and l2:
                _momentum_span(p, g, True, True, s, s1, mu, lr_, nesterov)
            elif hit:
                _momentum_span(p, g, True, False, s, s1, mu, lr_, nesterov)
            elif l2:
                _momentum_span(p, g, False, True, s, s1, mu, lr_, nesterov)
            else:
                _momentum_span(p, g, False, False, s, s1, mu, lr_, nesterov)
        elif hit and l2:
            _plain_span(p, g, True, True, s, lr_)
        elif hit:
            _plain_span(p, g, True, False, s, lr_)
        elif l2:
            _plain_span(p, g, False, True, s, lr_)


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def finish_compact_batch(
    loss,
    weight,
    scale,
    b,
    params,
    grads,
    n_coef,
    alpha,
    update,
    lr,
    momentum,
    nesterov,
    beta1,
    beta2,
    eps,
    state1,
    state2,
    t,
    stats,
    touched,
    m,
    adam,
):
    """`finish_batch` after a compact step: the first layer's rows updated in one pass.

    The first layer (`touched.shape[0]` x m weights at the head of the flat
    buffers) has a gradient only on the rows flagged in `touched`
    (`numba_step.compact_weight_grad`); its L2 term and update are
    `_first_layer_update`'s, the rest of the buffers' as in `finish_batch`.
    The same arithmetic per weight, with no pass to zero, and none to add the
    L2 term, over the first layer's gradient.
    """
    head = touched.shape[0] * m
    s = params.dtype.type(alpha * scale)
    if alpha > 0:
        # the L2 loss over every weight, summed as finish_batch sums it
        loss += 0.5 * (alpha * scale) * _sum_squares(params[:n_coef])
        _l2_penalty(params[head:n_coef], grads[head:n_coef], alpha * scale)
    if not np.isfinite(loss):
        stats[STATUS] = LOSS_NOT_FINITE
        stats[BAD_BATCH] = b
        for c in range(touched.shape[0]):
            touched[c] = 0
        return t
    rest1 = state1[head:] if state1.shape[0] else state1
    rest2 = state2[head:] if state2.shape[0] else state2
    t = update(
        params[head:], grads[head:], lr, momentum, nesterov, beta1, beta2, eps, rest1, rest2, t
    )
    _first_layer_update(
        params,
        grads,
        touched,
        m,
        alpha > 0,
        s,
        adam,
        lr,
        momentum,
        nesterov,
        beta1,
        beta2,
        eps,
        state1,
        state2,
        t,
    )
    stats[LOSS] += loss * weight
    stats[WEIGHT] += weight
    stats[BATCHES] += 1
    return t


@njit(cache=True, error_model="numpy", nogil=True)
def finish_any_batch(
    loss,
    weight,
    scale,
    b,
    params,
    grads,
    n_coef,
    alpha,
    solver,
    lr,
    momentum,
    nesterov,
    beta1,
    beta2,
    eps,
    state1,
    state2,
    t,
    stats,
):
    """`finish_batch` for the Python loop over batches, with the solver's code."""
    if solver == SGD:
        return finish_batch(
            loss,
            weight,
            scale,
            b,
            params,
            grads,
            n_coef,
            alpha,
            sgd_step,
            lr,
            momentum,
            nesterov,
            beta1,
            beta2,
            eps,
            state1,
            state2,
            t,
            stats,
        )
    return finish_batch(
        loss,
        weight,
        scale,
        b,
        params,
        grads,
        n_coef,
        alpha,
        adam_step,
        lr,
        momentum,
        nesterov,
        beta1,
        beta2,
        eps,
        state1,
        state2,
        t,
        stats,
    )


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def check_weights(params, n_batches, stats):
    """After an epoch: the last batch's update is seen by no later loss."""
    if stats[STATUS] == OK and not _all_finite(params):
        stats[STATUS] = WEIGHTS_NOT_FINITE
        stats[BAD_BATCH] = n_batches - 1


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def batch_weight(ww, start, stop):
    """The batch's weight (rows, or the sum of its row weights) and its loss scale."""
    if ww.shape[0] == 0:
        weight = float(stop - start)
    else:  # ww.sum() in its order, without compiling NumPy's sum (0.3 s)
        weight = 0.0
        for i in range(ww.shape[0]):
            weight += ww[i]
    return weight, (1.0 / weight if weight > 0 else 0.0)


# One compiled entry point per path and per (activation, head, solver), so that
# a fit compiles only what it runs: the codes are closure constants, and the
# branches of the others are pruned before typing (contract.jit.PruneInlined).
# Each is a large call graph that LLVM optimises whole.


@functools.cache
def gemm_epoch(act, head, solver, src, dropout):
    """The GEMM path's epoch loop for activation `act`, head `head` and `solver` (codes).

    `src` (numba_step.DENSE_INPUT or COMPACT_INPUT) is what X is: a dense
    array, or X's nonzeros by row, (indptr, indices, data) (`compact_rows`).
    With `dropout` (1), the loop takes the masks' arguments after `stats`,
    drop = (seeds, step0, rates, scales, dropped, idb) as
    `numba_step.DROPOUT_STEPS` takes them (idb an int64 batch buffer), and
    batch b of the epoch is training step step0 + b. Every argument is given
    (functools.cache: a default would be another key, the same specialisation).
    """

    def run_batches(
        X,
        y,
        Y,
        sw,
        xs,
        rows,
        n,
        batch_size,
        first,
        stop_batch,
        xb,
        yb,
        Yb,
        swb,
        coefs,
        intercepts,
        activations,
        deltas,
        coef_grads,
        intercept_grads,
        acc,
        params,
        grads,
        n_coef,
        alpha,
        lr,
        momentum,
        nesterov,
        beta1,
        beta2,
        eps,
        state1,
        state2,
        t,
        stats,
        drop=(),
    ):
        """Batches [first, stop_batch) of an epoch of n rows on the GEMM path; returns Adam's t.

        X (float of the weights' dtype, or uint8 scaled by xs) is read in place
        or gathered into xb. Each batch as `finish_batch` describes; `stats`
        accumulates LOSS (batch losses times their weight), WEIGHT, CORRECT and
        BATCHES, and stops at the first non-finite loss. After the epoch's last
        batch, `check_weights`.
        """
        n_batches = (n + batch_size - 1) // batch_size
        if dropout:
            seeds, step0, rates, scales, dropped, idb = drop
        for b in range(first, stop_batch):
            start = b * batch_size
            stop = min(start + batch_size, n)
            yy = take_rows(y, rows, start, stop, yb)
            YY = take_rows_2d(Y, rows, start, stop, Yb)
            ww = take_rows(sw, rows, start, stop, swb)
            weight, scale = batch_weight(ww, start, stop)
            if src == DENSE_INPUT:
                x = fetch_rows(X, rows, start, stop, xs, xb)
            else:
                x = compact_rows(X, rows, start, stop, xs)
            # separate calls, not one call of a chosen function with *masks: a star
            # call increfs and decrefs every array of its arguments (13 pairs a batch)
            if dropout:
                ids = batch_ids(rows, start, stop, idb)
                if src == DENSE_INPUT:
                    loss, correct = DROPOUT_STEPS[act][head](
                        x,
                        yy,
                        YY,
                        ww,
                        scale,
                        coefs,
                        intercepts,
                        activations,
                        deltas,
                        coef_grads,
                        intercept_grads,
                        acc,
                        (ids, seeds, step0 + b, rates, scales, dropped),
                    )
                else:
                    loss, correct = COMPACT_DROPOUT_STEPS[act][head](
                        x,
                        yy,
                        YY,
                        ww,
                        scale,
                        coefs,
                        intercepts,
                        activations,
                        deltas,
                        coef_grads,
                        intercept_grads,
                        acc,
                        (ids, seeds, step0 + b, rates, scales, dropped),
                    )
            elif src == DENSE_INPUT:
                loss, correct = STEPS[act][head](
                    x,
                    yy,
                    YY,
                    ww,
                    scale,
                    coefs,
                    intercepts,
                    activations,
                    deltas,
                    coef_grads,
                    intercept_grads,
                    acc,
                )
            else:
                loss, correct = COMPACT_STEPS[act][head](
                    x,
                    yy,
                    YY,
                    ww,
                    scale,
                    coefs,
                    intercepts,
                    activations,
                    deltas,
                    coef_grads,
                    intercept_grads,
                    acc,
                )
            if src == DENSE_INPUT:
                t = finish_batch(
                    loss,
                    weight,
                    scale,
                    b,
                    params,
                    grads,
                    n_coef,
                    alpha,
                    UPDATES[solver],
                    lr,
                    momentum,
                    nesterov,
                    beta1,
                    beta2,
                    eps,
                    state1,
                    state2,
                    t,
                    stats,
                )
            else:
                t = finish_compact_batch(
                    loss,
                    weight,
                    scale,
                    b,
                    params,
                    grads,
                    n_coef,
                    alpha,
                    UPDATES[solver],
                    lr,
                    momentum,
                    nesterov,
                    beta1,
                    beta2,
                    eps,
                    state1,
                    state2,
                    t,
                    stats,
                    X[3],
                    coefs[0].shape[1],
                    solver == ADAM,
                )
            if stats[STATUS] != OK:
                return t
            stats[CORRECT] += correct
        if stop_batch == n_batches:
            check_weights(params, n_batches, stats)
        return t

    suffix = f"{ACTIVATIONS[act]}_{HEADS[head]}_{SOLVERS[solver]}{SOURCE_SUFFIXES[src]}"
    suffix += "_dropout" if dropout else ""
    return specialise(run_batches, suffix, error_model="numpy", nogil=True)


@functools.cache
def narrow_epoch(solver, src=DENSE_INPUT):
    """The single pass's epoch loop (one hidden ReLU layer, softmax head) for `solver`.

    `src` COMPACT_INPUT: X is its compact form (indptr, indices, data), read
    in place through the epoch's row order (`compact_narrow_batch`); a
    separate loop, compiled only by the fits that use it.
    """

    def run_narrow_batches(
        X,
        y,
        xs,
        rows,
        n,
        batch_size,
        first,
        stop_batch,
        xnb,
        yb,
        coefs,
        intercepts,
        coef_grads,
        intercept_grads,
        narrow_buffers,
        params,
        grads,
        n_coef,
        alpha,
        lr,
        momentum,
        nesterov,
        beta1,
        beta2,
        eps,
        state1,
        state2,
        t,
        stats,
    ):
        """As the GEMM path's loop, on the single pass (no row weights).

        X is read in its own dtype (uint8 pixels widened in registers and
        scaled by xs; xs is 1 for float X), gathered into xnb when the rows
        are shuffled. On the compact form (`src`), narrow_buffers are
        `NarrowStep.compact_buffers()` and xnb is unused.
        """
        n_batches = (n + batch_size - 1) // batch_size
        if src == DENSE_INPUT:
            W1T, p_dW1T, p_dW2, p_db1, p_db2, p_acc, scratch = narrow_buffers
        for b in range(first, stop_batch):
            start = b * batch_size
            stop = min(start + batch_size, n)
            yy = take_rows(y, rows, start, stop, yb)
            weight, scale = float(stop - start), 1.0 / (stop - start)
            if src == DENSE_INPUT:
                xr = take_rows_2d(X, rows, start, stop, xnb)
                loss, correct = narrow_batch(
                    xr,
                    yy,
                    scale,
                    xs,
                    coefs,
                    intercepts,
                    coef_grads,
                    intercept_grads,
                    W1T,
                    p_dW1T,
                    p_dW2,
                    p_db1,
                    p_db2,
                    p_acc,
                    scratch,
                )
            else:
                loss, correct = compact_narrow_batch(
                    (X[0], X[1], X[2], rows, start),
                    yy,
                    stop - start,
                    scale,
                    xs,
                    coefs,
                    intercepts,
                    coef_grads,
                    intercept_grads,
                    narrow_buffers,
                )
            t = finish_batch(
                loss,
                weight,
                scale,
                b,
                params,
                grads,
                n_coef,
                alpha,
                UPDATES[solver],
                lr,
                momentum,
                nesterov,
                beta1,
                beta2,
                eps,
                state1,
                state2,
                t,
                stats,
            )
            if stats[STATUS] != OK:
                return t
            stats[CORRECT] += correct
        if stop_batch == n_batches:
            check_weights(params, n_batches, stats)
        return t

    suffix = SOLVERS[solver] + SOURCE_SUFFIXES[src]
    return specialise(run_narrow_batches, suffix, error_model="numpy", nogil=True)
