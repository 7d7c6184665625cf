"""The GEMM path's epoch loop on T threads at once, with no reduction of gradients.

Each of T threads runs the same compiled loop (`parallel_epoch(act, head,
solver)`) over every batch, in three phases, with a barrier after the first
two:

0. First layer, by inputs: thread t owns rows [ks[t], ks[t + 1]) of the
   first layer's weights W0 (input features; whole cache lines of the flat
   buffers). It reads those columns of the batch's rows into a buffer of its
   own and multiplies them by its rows of W0 (or, on X's compact form, adds
   the rows of W0 of its columns' nonzeros): its partial product of the
   layer's output, every row and column, in `partials[t]`. Its rows of W0,
   their gradient and optimizer state are contiguous and written by it
   alone: the largest weights never move between cores, and no thread reads
   the whole batch.
1. Rows: thread t takes rows [m t / T, m (t+1) / T) of the batch, sums the
   T partial products of those rows in thread order, adds the bias and
   applies the activation, and runs for its rows the rest of the forward
   pass, the head (its part of the loss) and the backward pass of the
   deltas, delta_{l-1} = (delta_l @ W_l^T) * f'. It also sums the squares
   of the weights it owns (phase 2), for the L2 term.
2. Parameters: thread t owns rows [k t / T, k (t+1) / T) of each k x m
   weight matrix (of W0: its ks rows, from the batch columns it read in
   phase 0), dW[rows] = A_in[:, rows]^T @ delta, and columns of each bias;
   it adds the L2 term and applies the optimizer's update to them at once.
   Each gradient entry is one thread's sum over the whole batch: no buffer
   per thread and no reduction. A thread done with phase 2 goes on to the
   next batch's phase 0, which touches only its own buffers and weights.

The barriers are spin-waits on a shared int64 array through atomic
instructions (Numba intrinsics, which cache as any jitted code does). Every
thread reads the same partial losses in the same order, so all agree on
whether a batch's loss is finite. GEMMs are Numba's (SciPy's OpenBLAS),
which the caller holds at 1 thread (`fastnn.engine.threads`); where
OpenBLAS multiplies small matrices without packing, the products and
weight gradients of a step are cut into tiles its small-matrix kernels take
(`small_tiles`, `even_tile`).
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
from fastnn.contract.numba_ops import _l2_penalty, compact_product, compact_weight_grad
from fastnn.contract.tables import (
    ACTIVATIONS,
    ADAM,
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
    _first_layer_update,
    _sum_squares,
    check_weights,
    take_rows,
    take_rows_2d,
)

# The slots of the shared int64 `sync` array, a cache line (8 slots) apart so
# that the atomics on one do not contend with the others: arrivals at each
# phase's barrier (counted up over the batches of one call), the abort flag,
# and arrivals at the end of a call.
ARRIVED_0, ARRIVED_1, ABORT, WRITTEN = 0, 8, 16, 24
SYNC_SIZE = 32
# Per thread in `parts`: the data loss of its rows, its rows predicted right,
# the squares of its weights; a row of 8 (a cache line of float64) each
PART_LOSS, PART_CORRECT, PART_SQUARES, PART_WIDTH = 0, 1, 2, 8
# The narrowest tile worth a call of its own (small_tiles)
MIN_TILE = 32
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
def _xgemm(typingctx, trans_a, trans_b, M, N, K, A, a_at, lda, B, b_at, ldb, C, c_at, ldc):
    """C = op(A) @ op(B) through BLAS's xgemm, column-major, in place (unchecked).

    op(A) is M x K, op(B) K x N, C M x N; each matrix starts at element
    `*_at` of its array with leading dimension `ld*`; trans_* are ord("n") or
    ord("t"). C arrays seen column-major are transposed, so a block of rows
    or columns of a C array is read and written in place, where Numba's
    np.dot would copy a block that is not contiguous. The function called is
    Numba's own np.dot's (`numba_xxgemm`, SciPy's BLAS).
    """
    sig = types.int32(trans_a, trans_b, M, N, K, A, a_at, lda, B, b_at, ldb, C, c_at, ldc)

    def codegen(context, builder, sig, args):
        ta, tb, m, n, k, a, a_at_, lda_, b, b_at_, ldb_, c, c_at_, ldc_ = args
        intp = context.get_value_type(types.intp)
        char = ir.IntType(8)
        void_p = char.as_pointer()
        fnty = ir.FunctionType(
            ir.IntType(32),
            [char, char, char, intp, intp, intp]
            + [void_p, void_p, intp, void_p, intp, void_p, void_p, intp],
        )
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        dtype = sig.args[5].dtype
        llty = context.get_value_type(dtype)
        one = cgutils.alloca_once_value(builder, ir.Constant(llty, 1.0))
        zero = cgutils.alloca_once_value(builder, ir.Constant(llty, 0.0))
        kind = ir.Constant(char, ord("s" if dtype == types.float32 else "d"))

        def at(arrtype, arr, offset):
            data = context.make_array(arrtype)(context, builder, arr).data
            return builder.bitcast(builder.gep(data, [offset]), void_p)

        return builder.call(
            fn,
            [
                kind,
                builder.trunc(ta, char),
                builder.trunc(tb, char),
                m,
                n,
                k,
                builder.bitcast(one, void_p),
                at(sig.args[5], a, a_at_),
                lda_,
                at(sig.args[8], b, b_at_),
                ldb_,
                builder.bitcast(zero, void_p),
                at(sig.args[11], c, c_at_),
                ldc_,
            ],
        )

    return sig, codegen


NO, TRANSPOSED = ord("n"), ord("t")


def weight_grad_rows(a, k0, k1, delta, out, tile):
    """out[k0:k1] = a[:, k0:k1].T @ delta (a (n, k), delta (n, m), out (k, m), C order).

    The NumPy reference; jitted callers get BLAS's xgemm on the block in place,
    with the transposes of Numba's np.dot(a.T, delta), in tiles of `tile`
    rows of out (0: one call). Tiles split no sum.
    """
    out[k0:k1] = a[:, k0:k1].T @ delta


@overload(weight_grad_rows, jit_options={"error_model": "numpy"})
def _weight_grad_rows(a, k0, k1, delta, out, tile):
    def impl(a, k0, k1, delta, out, tile):
        n, k = a.shape
        m = delta.shape[1]
        if k1 > k0 and n > 0:
            step = tile if tile > 0 else k1 - k0
            for q0 in range(k0, k1, step):
                # column-major: out^T[:, q0:q1] (m x rows) = delta^T (m x n) @ a[:, q0:q1]
                tq = min(step, k1 - q0)
                _xgemm(NO, TRANSPOSED, m, tq, n, delta, 0, m, a, q0, k, out, q0 * m, m)
        elif k1 > k0:  # no rows: BLAS would leave out alone
            out[k0:k1] = 0

    return impl


def partial_product(x, W, k0, out, tile):
    """out = x @ W[k0:k0 + kt] (x (m, kt), W (k, w), out (m, w); unit column strides).

    The NumPy reference; jitted callers get BLAS's xgemm on W's rows in place,
    in column tiles of `tile` columns of out (0: one call). Tiles split no
    sum: each entry is the one call's.
    """
    out[...] = x @ W[k0 : k0 + x.shape[1]]


@overload(partial_product, jit_options={"error_model": "numpy"})
def _partial_product(x, W, k0, out, tile):
    def impl(x, W, k0, out, tile):
        m, kt = x.shape
        w = W.shape[1]
        ldx = x.strides[0] // x.itemsize  # x may be a block of X, read in place
        step = tile if tile > 0 else w
        for c0 in range(0, w, step):
            # column-major: out^T[c0:c0+tw] (tw x m) = W[k0:, c0:]^T (tw x kt) @ x^T (kt x m)
            tw = min(step, w - c0)
            _xgemm(NO, NO, tw, m, kt, W, k0 * w + c0, w, x, 0, ldx, out, c0, w)

    return impl


def input_rows_grad(x, delta, k0, dW, tile):
    """dW[k0:k0 + kt] = x.T @ delta (x (m, kt), delta (m, w), dW (k, w); unit column strides).

    The NumPy reference; jitted callers get BLAS's xgemm on dW's rows in
    place, in tiles of `tile` rows (0: one call). Tiles split no sum.
    """
    dW[k0 : k0 + x.shape[1]] = x.T @ delta


@overload(input_rows_grad, jit_options={"error_model": "numpy"})
def _input_rows_grad(x, delta, k0, dW, tile):
    def impl(x, delta, k0, dW, tile):
        m, kt = x.shape
        w = delta.shape[1]
        ldx = x.strides[0] // x.itemsize
        step = tile if tile > 0 else kt
        for q0 in range(0, kt, step):
            # column-major: dW^T[:, k0+q0:] (w x tq) = delta^T (w x m) @ x[:, q0:q0+tq]
            tq = min(step, kt - q0)
            _xgemm(NO, TRANSPOSED, w, tq, m, delta, 0, w, x, q0, ldx, dW, (k0 + q0) * w, w)

    return impl


@njit(cache=True, nogil=True, inline="always")
def small_tiles(m, kt, w, small_mnk, line):
    """Tiles of phase 0's product and phase 2's gradient that BLAS's small-matrix kernels take.

    OpenBLAS's AVX-512 (SkylakeX) kernels multiply without packing when
    M N K <= small_mnk (1e6), about 1.5x the packed kernels' speed at these
    sizes (docs/design.md section 7); small_mnk 0: the BLAS has no such
    kernels. Returns (columns per product tile, rows per gradient tile), 0
    for one call: tiles narrower than MIN_TILE lose to the one call.
    """
    if small_mnk == 0 or m * kt == 0:
        return 0, 0
    tw = small_mnk // (m * kt) // line * line
    tk = small_mnk // (m * w)
    return (tw if MIN_TILE <= tw < w else 0), (tk if MIN_TILE <= tk < kt else 0)


@njit(cache=True, nogil=True, inline="always")
def even_tile(count, other, small_mnk, line):
    """Width of even tiles of `count` (a GEMM's output columns or rows) that BLAS's
    small-matrix kernels take, `other` the product of its other two sizes; 0 for
    one call (as `small_tiles`: no such kernels, tiles under MIN_TILE, or one
    tile). Phase 1's products and the later layers' weight gradients at
    32-100 rows a thread are just over the kernels' limit: 32 x 256 @ 256 x 128
    took 29.4 us in one call and 18.3 in two tiles of 64 columns, a thread's
    128 rows of a 256 x 128 gradient at batch 64 25.2 and 18.7 (float32, AMD
    EPYC Zen 4). Not delta @ W.T: in tiles it took longer (32 rows 29.8 ->
    30.3 us, 128 rows 89.8 -> 98.2), so it stays one call.
    """
    if small_mnk == 0 or other == 0:
        return 0
    most = small_mnk // other // line * line
    if most < MIN_TILE or most >= count:
        return 0
    tiles = -(-count // most)
    width = -(-count // tiles)
    return -(-width // line) * line


def fetch_columns(X, rows, start, stop, xs, k0, xb):
    """Columns [k0, k0 + w) of batch rows [start, stop) of the epoch order `rows`, as floats.

    xb: (batch, w), of the weights' dtype; uint8 X is widened and scaled by xs
    on the way in (float X is read as it is). Returns xb[:stop - start], or,
    for X of the weights' dtype read in its own order (`rows` empty) with
    unit column stride, X's block itself: a copy saved (43 us of config c's
    0.84 ms step, 20 of b's 0.19), as the serial loop reads such rows in
    place. This Python body runs only under NUMBA_DISABLE_JIT; compiled
    callers get `_fetch_columns`'s, specialised on X's dtype.
    """
    pick = slice(start, stop) if rows.shape[0] == 0 else rows[start:stop]
    m, w = stop - start, xb.shape[1]
    block = X[pick, k0 : k0 + w]
    if X.dtype == xb.dtype and rows.shape[0] == 0 and X.strides[1] == X.itemsize:
        return block
    if X.dtype == xb.dtype:
        xb[:m] = block
    else:
        np.multiply(block, xb.dtype.type(xs), out=xb[:m], dtype=xb.dtype)
    return xb[:m]


@overload(fetch_columns, jit_options={"error_model": "numpy"})
def _fetch_columns(X, rows, start, stop, xs, k0, xb):
    same = X.dtype == xb.dtype

    def read(X, rows, start, stop, xs, k0, xb):
        dt = xb.dtype.type
        s = dt(xs)
        m, w = stop - start, xb.shape[1]
        if same and rows.shape[0] == 0 and X.strides[1] == X.itemsize:
            return X[start:stop, k0 : k0 + w]
        for r in range(m):
            src = rows[start + r] if rows.shape[0] else start + r
            for j in range(w):  # element by element: see numba_epoch.fetch_rows
                if same:
                    xb[r, j] = X[src, k0 + j]
                else:  # integer pixels
                    xb[r, j] = dt(X[src, k0 + j]) * s
        return xb[:m]

    return read


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

    Dense X (float of the weights' dtype, or uint8 times xs), or X's compact
    form split by the threads' inputs (`compact.split_by_columns`); no dropout.
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
        ks,
        partials,
        small_mnk,
        cptr,
        cidx,
        cval,
        touched,
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

        Shared: the batch buffers yb, Yb, swb, activations and deltas (each
        thread writes its rows), `partials` (T, batch, width of the first
        layer: each thread writes its partial product), the parameters and
        gradients (each thread its own entries; offsets[i] is where coefs[i]
        starts in the flat buffers, offsets[L + i] intercepts[i]), `parts`
        (T, PART_WIDTH) and `sync`. Private: xb (the batch's columns
        [ks[tid], ks[tid + 1]) of X), acc (float64) and db_scratch (the
        heads' and derivatives' bias sums of its rows, unused), each as wide
        as the widest layer. cptr, cidx, cval: the entries of X's compact
        form in this thread's columns (empty for dense X: the first layer
        then reads X); `touched`, the form's per-column flags, shared, each
        thread setting and clearing its own columns'
        (`numba_ops.compact_weight_grad`). small_mnk: the largest GEMM (M N K) that the
        BLAS multiplies with its small-matrix kernels, 0 if none
        (`small_tiles`). Thread 0 alone writes `stats`. As `gemm_epoch`'s
        loop otherwise, with the same arithmetic per weight.
        """
        n_batches = (n + batch_size - 1) // batch_size
        last = len(coefs) - 1
        k_lo, k_hi = ks[tid], ks[tid + 1]
        compact = cptr.shape[0] > 0
        w0 = coefs[0].shape[1]
        line = 64 // coefs[0].itemsize
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
            rounds += 1
            # phase 0: this thread's inputs (rows of W0) times the batch's
            # columns for them, a partial product of the first layer's output
            product = partials[tid, :m]
            x, tk = xb[:0], 0
            if compact:  # the nonzeros of its columns, read in place
                compact_product(cptr, cidx, cval, rows, start, stop, xs, coefs[0], product)
            elif k_hi > k_lo:
                x = fetch_columns(X, rows, start, stop, xs, k_lo, xb)
                tw, tk = small_tiles(m, k_hi - k_lo, w0, small_mnk, line)
                partial_product(x, coefs[0], k_lo, product, tw)
            else:  # no inputs of its own (fewer inputs than threads' cache lines)
                for r in range(m):
                    for j in range(product.shape[1]):
                        product[r, j] = 0
            if not barrier(sync, ARRIVED_0, T * rounds):
                break
            # phase 1: this thread's rows, from the first layer's output on
            loss, correct, squares = 0.0, 0, 0.0
            if r1 > r0:
                yy = take_rows(y, rows, start + r0, start + r1, yb[r0:])
                YY = take_rows_2d(Y, rows, start + r0, start + r1, Yb[r0:])
                ww = take_rows(sw, rows, start + r0, start + r1, swb[r0:])
                a = activations[0][r0:r1]
                for r in range(r1 - r0):  # the partial products, in thread order
                    for j in range(a.shape[1]):
                        a[r, j] = partials[0, r0 + r, j]
                    for p in range(1, T):
                        for j in range(a.shape[1]):
                            a[r, j] += partials[p, r0 + r, j]
                if last == 0:
                    bias_identity(a, intercepts[0])
                elif act == RELU:
                    bias_relu(a, intercepts[0])
                elif act == TANH:
                    bias_tanh(a, intercepts[0])
                elif act == LOGISTIC:
                    bias_logistic(a, intercepts[0])
                else:
                    bias_identity(a, intercepts[0])
                rows_ = r1 - r0
                for i in range(1, last):
                    out = activations[i][r0:r1]
                    k, w = coefs[i].shape
                    partial_product(a, coefs[i], 0, out, even_tile(w, rows_ * k, small_mnk, line))
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
                if last > 0:
                    k, w = coefs[last].shape
                    partial_product(a, coefs[last], 0, z, even_tile(w, rows_ * k, small_mnk, line))
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
                    np.dot(delta, coefs[i].T, dx)  # BLAS's small kernels: no faster in tiles
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
                    q0, q1 = (k_lo, k_hi) if i == 0 else share(k, tid, T)
                    squares += _sum_squares(params[offsets[i] + q0 * w : offsets[i] + q1 * w])
            parts[tid, PART_LOSS] = loss
            parts[tid, PART_CORRECT] = correct
            parts[tid, PART_SQUARES] = squares
            if not barrier(sync, ARRIVED_1, T * rounds):
                break
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
                break
            # phase 2: this thread's parameters over the whole batch: its rows
            # of each layer's weights (of W0 from its columns of the batch)
            t_next = t
            for i in range(last + 1):
                delta = activations[last][:m] if i == last else deltas[i + 1][:m]
                k, w = coefs[i].shape
                if i == 0:
                    q0, q1 = k_lo, k_hi
                    if compact:
                        compact_weight_grad(
                            cptr, cidx, cval, rows, start, stop, xs, delta, coef_grads[0], touched
                        )
                    elif k_hi > k_lo:
                        input_rows_grad(x, delta, k_lo, coef_grads[0], tk)
                else:
                    q0, q1 = share(k, tid, T)
                    tq = even_tile(q1 - q0, m * w, small_mnk, line)
                    weight_grad_rows(activations[i - 1][:m], q0, q1, delta, coef_grads[i], tq)
                lo, hi = offsets[i] + q0 * w, offsets[i] + q1 * w
                w_lo, w_hi = params[lo:hi], grads[lo:hi]
                m1 = state1[lo:hi] if state1.shape[0] else state1
                m2 = state2[lo:hi] if state2.shape[0] else state2
                j0, j1 = share(w, tid, T)
                if i == 0 and compact:
                    # rows no entry touched have a zero data gradient (flags cleared)
                    t_next = t + 1 if solver == ADAM else t
                    _first_layer_update(
                        w_lo,
                        w_hi,
                        touched[k_lo:k_hi],
                        w0,
                        alpha > 0,
                        params.dtype.type(alpha * scale),
                        solver == ADAM,
                        lr,
                        momentum,
                        nesterov,
                        beta1,
                        beta2,
                        eps,
                        m1,
                        m2,
                        t_next,
                    )
                else:
                    if alpha > 0:
                        _l2_penalty(w_lo, w_hi, alpha * scale)
                    t_next = UPDATES[solver](
                        w_lo, w_hi, lr, momentum, nesterov, beta1, beta2, eps, m1, m2, t
                    )
                bias_grad_columns(delta, j0, j1, intercept_grads[i], acc)
                lo, hi = offsets[last + 1 + i] + j0, offsets[last + 1 + i] + j1
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
            # no barrier here: the next step's phase 0 writes only this
            # thread's own buffers (xb, its partial product, read by the
            # others in phase 1 before ARRIVED_1); what phase 2 reads is
            # written again only in phase 1, after every thread's ARRIVED_0
        # every thread's last writes done, whatever stopped the loop
        if barrier(sync, WRITTEN, T) and tid == 0 and stop_batch == n_batches:
            check_weights(params, n_batches, stats)
        return t

    suffix = f"{ACTIVATIONS[act]}_{HEADS[head]}_{SOLVERS[solver]}"
    return specialise(run_thread, suffix, error_model="numpy", nogil=True)
