"""The GEMM path's epoch loop on T threads at once, with no reduction of gradients.

Each of T threads runs the same compiled loop (`parallel_epoch(act, head,
solver)`) over every batch, in two phases with a barrier after each:

1. Rows: thread t gathers its block of the batch's rows, [m t / T, m (t+1) / T),
   and runs for them the forward pass, the head (its part of the loss) and the
   backward pass of the deltas, delta_{l-1} = (delta_l @ W_l^T) * f'. Nothing
   here depends on another thread's rows. It also sums the squares of the
   weights it owns (phase 2), for the L2 term of the loss.
2. Parameters: thread t owns rows [k t / T, k (t+1) / T) of each k x m weight
   matrix and columns [m t / T, m (t+1) / T) of each bias. It computes their
   gradient over the whole batch, dW[rows] = A_in[:, rows]^T @ delta, and the
   bias's column sums, adds the L2 term and applies the optimizer's update to
   them at once. Each gradient entry is one thread's sum over the whole batch:
   no buffer per thread and no reduction.

The barriers are spin-waits on a shared int64 array through atomic
instructions (Numba intrinsics, which cache as any jitted code does). Every
thread reads the same partial losses in the same order, so all agree on
whether a batch's loss is finite. GEMMs are Numba's (SciPy's OpenBLAS), which
the caller holds at 1 thread (`fastnn.engine.threads`).
"""

import functools

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from fastnn.contract.jit import INTERNAL, njit, specialise
from fastnn.contract.numba_math import (
    bias_identity,
    bias_logistic,
    bias_relu,
    bias_tanh,
    grad_identity,
    grad_logistic,
    grad_relu,
    grad_tanh,
    head_exp,
    head_identity,
    head_logistic,
    head_softmax,
)
from fastnn.contract.numba_ops import _l2_penalty
from fastnn.contract.tables import (
    ACTIVATIONS,
    BAD_BATCH,
    BATCHES,
    CORRECT,
    EXP_HEAD,
    HEADS,
    LOGISTIC,
    LOGISTIC_HEAD,
    LOSS,
    LOSS_NOT_FINITE,
    RELU,
    SOFTMAX_HEAD,
    SOLVERS,
    STATUS,
    TANH,
    WEIGHT,
)
from fastnn.engine.numba_epoch import (
    UPDATES,
    _sum_squares,
    check_weights,
    fetch_rows,
    take_rows,
    take_rows_2d,
)

# The slots of the shared int64 `sync` array, a cache line (8 slots) apart so
# that the atomics on one do not contend with the others: arrivals at each
# phase's barrier (counted up over the batches of one call), and the abort flag.
ARRIVED_1, ARRIVED_2, ABORT = 0, 8, 16
SYNC_SIZE = 24
# Per thread in `parts`: the data loss of its rows, its rows predicted right,
# the squares of its weights; a row of 8 (a cache line of float64) each
PART_LOSS, PART_CORRECT, PART_SQUARES, PART_WIDTH = 0, 1, 2, 8
# Spins before yielding the core: a wait for a running thread takes ~1-5 us
SPINS = 2000


def _element_pointer(context, builder, arrtype, arr, index):
    a = context.make_array(arrtype)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arrtype, a, [index])


@intrinsic
def atomic_add(typingctx, arr, index, value):
    """arr[index] += value atomically (sequentially consistent); returns the old value."""
    sig = types.int64(arr, index, value)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def atomic_load(typingctx, arr, index):
    """arr[index], read atomically (acquire: sees what was written before a release)."""
    sig = types.int64(arr, index)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def yield_core(typingctx):
    """sched_yield(): let another thread (or process) run on this core."""
    sig = types.int32()

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "sched_yield")
        return builder.call(fn, [])

    return sig, codegen


@intrinsic
def _xgemm_rows(typingctx, a, k0, k1, delta, out):
    """out[k0:k1] = a[:, k0:k1]^T @ delta through BLAS's xgemm (C arrays, unchecked).

    Numba's np.dot copies a column block (not contiguous) first; xgemm reads
    it in place with a's row length as its leading dimension. The call is
    Numba's own np.dot's (`numba_xxgemm`, SciPy's BLAS), with the same
    transposes, so each entry is the same sum.
    """
    sig = types.int32(a, k0, k1, delta, out)

    def codegen(context, builder, sig, args):
        a_, k0_, k1_, d_, o_ = args
        intp = context.get_value_type(types.intp)
        char = ir.IntType(8)
        void_p = char.as_pointer()
        fnty = ir.FunctionType(
            ir.IntType(32),
            [char, char, char, intp, intp, intp]
            + [void_p, void_p, intp, void_p, intp, void_p, void_p, intp],
        )
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        aa = context.make_array(sig.args[0])(context, builder, a_)
        dd = context.make_array(sig.args[3])(context, builder, d_)
        oo = context.make_array(sig.args[4])(context, builder, o_)
        n, k = cgutils.unpack_tuple(builder, aa.shape, 2)
        m = cgutils.unpack_tuple(builder, dd.shape, 2)[1]
        dtype = sig.args[0].dtype
        llty = context.get_value_type(dtype)
        one = cgutils.alloca_once_value(builder, ir.Constant(llty, 1.0))
        zero = cgutils.alloca_once_value(builder, ir.Constant(llty, 0.0))
        kind = ir.Constant(char, ord("s" if dtype == types.float32 else "d"))
        # column-major: out^T (m x rows) = delta^T (m x n) @ a[:, k0:k1] (n x rows)
        return builder.call(
            fn,
            [
                kind,
                ir.Constant(char, ord("n")),
                ir.Constant(char, ord("t")),
                m,
                builder.sub(k1_, k0_),
                n,
                builder.bitcast(one, void_p),
                builder.bitcast(dd.data, void_p),
                m,
                builder.bitcast(builder.gep(aa.data, [k0_]), void_p),
                k,
                builder.bitcast(zero, void_p),
                builder.bitcast(builder.gep(oo.data, [builder.mul(k0_, m)]), void_p),
                m,
            ],
        )

    return sig, codegen


def weight_grad_rows(a, k0, k1, delta, out):
    """out[k0:k1] = a[:, k0:k1].T @ delta (a (n, k), delta (n, m), out (k, m), C order).

    The NumPy reference; jitted callers get BLAS's xgemm on the block in place.
    """
    out[k0:k1] = a[:, k0:k1].T @ delta


@overload(weight_grad_rows, jit_options={"error_model": "numpy"})
def _weight_grad_rows(a, k0, k1, delta, out):
    def impl(a, k0, k1, delta, out):
        if k1 > k0 and a.shape[0] > 0:
            _xgemm_rows(a, k0, k1, delta, out)
        elif k1 > k0:  # no rows: BLAS would leave out alone
            out[k0:k1] = 0

    return impl


def batch_input(X, rows, start, stop, xb):
    """The batch's rows of X as phase 1 left them: X itself (read in place) or xb."""
    if X.dtype == xb.dtype and rows.shape[0] == 0:
        return X[start:stop]
    return xb[: stop - start]


@overload(batch_input, jit_options={"error_model": "numpy"})
def _batch_input(X, rows, start, stop, xb):
    if X.dtype == xb.dtype:

        def impl(X, rows, start, stop, xb):
            if rows.shape[0] == 0:
                return X[start:stop]
            return xb[: stop - start]
    else:

        def impl(X, rows, start, stop, xb):
            return xb[: stop - start]

    return impl


@njit(cache=True, nogil=True, inline="always")
def barrier(sync, slot, target):
    """Arrive at counter `slot` and wait until it reaches `target`; False on abort."""
    atomic_add(sync, slot, 1)
    spins = 0
    while atomic_load(sync, slot) < target:
        if atomic_load(sync, ABORT) != 0:
            return False
        spins += 1
        if spins > SPINS:
            yield_core()
    return True


@njit(cache=True, nogil=True, inline="always")
def share(count, part, parts):
    """Part `part` of `parts` of range(count): [count part / parts, count (part+1) / parts)."""
    return count * part // parts, count * (part + 1) // parts


@njit(cache=True, error_model="numpy", nogil=True, **INTERNAL)
def bias_grad_columns(delta, c0, c1, db, acc):
    """db[c0:c1] = the column sums of delta, in float64 in row order (as the heads sum them)."""
    for j in range(c0, c1):
        acc[j] = 0.0
    for r in range(delta.shape[0]):
        for j in range(c0, c1):
            acc[j] += delta[r, j]
    for j in range(c0, c1):
        db[j] = acc[j]


@functools.cache
def parallel_epoch(act, head, solver):
    """The loop each thread of the parallel GEMM epoch runs, for codes `act`, `head`, `solver`.

    Dense X only (float of the weights' dtype, or uint8 times xs), no dropout.
    """

    def run_thread(
        tid,
        T,
        sync,
        parts,
        offsets,
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
        db_scratch,
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
        """Thread `tid` of T's share of batches [first, stop_batch); returns Adam's t.

        Shared: the batch buffers xb, yb, Yb, swb, activations and deltas
        (each thread writes its rows), the parameters and gradients (each
        thread its own entries; offsets[i] is where coefs[i] starts in the flat
        buffers, offsets[L + i] intercepts[i]), `parts` (T, PART_WIDTH) and
        `sync`. Private: acc (float64) and db_scratch (the heads' and
        derivatives' bias sums of its rows, unused), each as wide as the
        widest layer. Thread 0 alone writes `stats`. As `gemm_epoch`'s loop
        otherwise, with the same arithmetic per weight.
        """
        n_batches = (n + batch_size - 1) // batch_size
        last = len(coefs) - 1
        rounds = 0
        for b in range(first, stop_batch):
            start = b * batch_size
            stop = min(start + batch_size, n)
            m = stop - start
            r0, r1 = share(m, tid, T)
            if sw.shape[0] == 0:
                weight = float(m)
            else:  # the batch's weight, summed in batch order by every thread
                weight = 0.0
                for r in range(m):
                    weight += sw[rows[start + r]] if rows.shape[0] else sw[start + r]
            scale = 1.0 / weight if weight > 0 else 0.0
            # phase 1: this thread's rows
            loss, correct, squares = 0.0, 0, 0.0
            if r1 > r0:
                x = fetch_rows(X, rows, start + r0, start + r1, xs, xb[r0:])
                yy = take_rows(y, rows, start + r0, start + r1, yb[r0:])
                YY = take_rows_2d(Y, rows, start + r0, start + r1, Yb[r0:])
                ww = take_rows(sw, rows, start + r0, start + r1, swb[r0:])
                a = x
                for i in range(last):
                    out = activations[i][r0:r1]
                    np.dot(a, coefs[i], out)
                    if act == RELU:
                        bias_relu(out, intercepts[i])
                    elif act == TANH:
                        bias_tanh(out, intercepts[i])
                    elif act == LOGISTIC:
                        bias_logistic(out, intercepts[i])
                    else:
                        bias_identity(out, intercepts[i])
                    a = out
                z = activations[last][r0:r1]
                np.dot(a, coefs[last], z)
                bias_identity(z, intercepts[last])
                db = db_scratch[: z.shape[1]]
                if head == SOFTMAX_HEAD:
                    loss, correct = head_softmax(z, yy, YY, ww, scale, db, acc)
                elif head == LOGISTIC_HEAD:
                    loss, correct = head_logistic(z, yy, YY, ww, scale, db, acc)
                elif head == EXP_HEAD:
                    loss, correct = head_exp(z, yy, YY, ww, scale, db, acc)
                else:
                    loss, correct = head_identity(z, yy, YY, ww, scale, db, acc)
                delta = z
                for i in range(last, 0, -1):
                    dx = deltas[i][r0:r1]
                    np.dot(delta, coefs[i].T, dx)
                    a_in = activations[i - 1][r0:r1]
                    db = db_scratch[: dx.shape[1]]
                    if act == RELU:
                        grad_relu(dx, a_in, dx, db, False, acc)
                    elif act == TANH:
                        grad_tanh(dx, a_in, dx, db, False, acc)
                    elif act == LOGISTIC:
                        grad_logistic(dx, a_in, dx, db, False, acc)
                    else:
                        grad_identity(dx, a_in, dx, db, False, acc)
                    delta = dx
            if alpha > 0:
                for i in range(last + 1):
                    k, w = coefs[i].shape
                    q0, q1 = share(k, tid, T)
                    squares += _sum_squares(params[offsets[i] + q0 * w : offsets[i] + q1 * w])
            parts[tid, PART_LOSS] = loss
            parts[tid, PART_CORRECT] = correct
            parts[tid, PART_SQUARES] = squares
            rounds += 1
            if not barrier(sync, ARRIVED_1, T * rounds):
                return t
            # every thread sums the parts in thread order: they agree on the loss
            loss, correct, squares = 0.0, 0.0, 0.0
            for p in range(T):
                loss += parts[p, PART_LOSS]
                correct += parts[p, PART_CORRECT]
                squares += parts[p, PART_SQUARES]
            loss += 0.5 * (alpha * scale) * squares
            if not np.isfinite(loss):
                if tid == 0:
                    stats[STATUS] = LOSS_NOT_FINITE
                    stats[BAD_BATCH] = b
                return t
            # phase 2: this thread's parameters, over the whole batch
            x = batch_input(X, rows, start, stop, xb)
            t_next = t
            for i in range(last + 1):
                delta = activations[last][:m] if i == last else deltas[i + 1][:m]
                k, w = coefs[i].shape
                q0, q1 = share(k, tid, T)
                if i == 0:
                    weight_grad_rows(x, q0, q1, delta, coef_grads[0])
                else:
                    weight_grad_rows(activations[i - 1][:m], q0, q1, delta, coef_grads[i])
                lo, hi = offsets[i] + q0 * w, offsets[i] + q1 * w
                if alpha > 0:
                    _l2_penalty(params[lo:hi], grads[lo:hi], alpha * scale)
                t_next = UPDATES[solver](
                    params[lo:hi],
                    grads[lo:hi],
                    lr,
                    momentum,
                    nesterov,
                    beta1,
                    beta2,
                    eps,
                    state1[lo:hi] if state1.shape[0] else state1,
                    state2[lo:hi] if state2.shape[0] else state2,
                    t,
                )
                c0, c1 = share(w, tid, T)
                bias_grad_columns(delta, c0, c1, intercept_grads[i], acc)
                lo, hi = offsets[last + 1 + i] + c0, offsets[last + 1 + i] + c1
                UPDATES[solver](
                    params[lo:hi],
                    grads[lo:hi],
                    lr,
                    momentum,
                    nesterov,
                    beta1,
                    beta2,
                    eps,
                    state1[lo:hi] if state1.shape[0] else state1,
                    state2[lo:hi] if state2.shape[0] else state2,
                    t,
                )
            t = t_next
            if tid == 0:
                stats[LOSS] += loss * weight
                stats[WEIGHT] += weight
                stats[BATCHES] += 1
                stats[CORRECT] += correct
            if not barrier(sync, ARRIVED_2, T * rounds):
                return t
        if tid == 0 and stop_batch == n_batches:
            check_weights(params, n_batches, stats)
        return t

    suffix = f"{ACTIVATIONS[act]}_{HEADS[head]}_{SOLVERS[solver]}"
    return specialise(run_thread, suffix, error_model="numpy", nogil=True)
