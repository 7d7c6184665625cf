"""Sums over a row's nonzeros with their outputs held in vector registers.

`compact_product` adds, for each nonzero (q, v) of a row, v W[q] to that
row's outputs. Written as a Numba loop over the outputs, LLVM loads and
stores the output row once per nonzero (it cannot prove that the output does
not alias W, and Numba runs no SLP vectoriser to keep scalar accumulators in
vectors). `block_sum` is that loop written in LLVM IR for one block of
`block_outputs(W)` outputs: one `<B x float>` accumulator that LLVM keeps in
registers, the value broadcast, the block of W's row loaded as one vector.
The sums run in the same order, with the same FMA contraction, as the Numba
loop, so the results are the same bit for bit (tests/contract). The weight
gradient (`compact_weight_grad`) uses it too, on the batch's entries sorted
by column: a row of dW is then the sum, over the entries of its column, of
delta's rows.

The compact single pass (`fastnn.engine.numba_step`) has at most 32 hidden
units, padded to a multiple of 8: `row_sum` and `row_axpy` do its whole row
in one vector of H = 8, 16, 24 or 32 units (a loop per width, the one for
W's width chosen at run time), its forward sums in CHAINS accumulators (nonzero p
in chain p % CHAINS: several chains of FMAs, not one, to hide their latency) and its
weight gradient with the row's deltas loaded once.
"""

import functools

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@functools.cache
def _vector_bytes():
    """Bytes of one block: 16 vector registers' worth on AVX-512 (32 of them),
    8 elsewhere (AVX2 has 16 ymm registers, and the loads need some)."""
    from llvmlite import binding
    from numba.core import config

    if config.CPU_NAME or config.CPU_FEATURES:
        return 256  # compiling for another CPU (NUMBA_CPU_NAME): no AVX-512 assumed
    return 512 if binding.get_host_cpu_features().get("avx512f", False) else 256


def block_width(itemsize):
    """Outputs per block for weights of `itemsize` bytes."""
    return _vector_bytes() // itemsize


def _width(array_type):
    return block_width(array_type.dtype.bitwidth // 8)


class _Nonzeros:
    """Codegen for reading nonzero p of (indices, data) and the matching row of W."""

    def __init__(self, context, builder, W_t, Wv, ind_t, iv, dat_t, dv, width, column=None):
        self.context, self.builder = context, builder
        self.W_t, self.ind_t, self.dat_t = W_t, ind_t, dat_t
        self.itemsize = W_t.dtype.bitwidth // 8
        self.vec = ir.VectorType(context.get_data_type(W_t.dtype), width)
        W_a = context.make_array(W_t)(context, builder, Wv)
        self.ind = context.make_array(ind_t)(context, builder, iv).data
        self.dat = context.make_array(dat_t)(context, builder, dv).data
        self.w_row = cgutils.unpack_tuple(builder, W_a.strides, 2)[0]
        self.w_base = builder.bitcast(W_a.data, ir.IntType(8).as_pointer())
        if column is not None:  # the block's first output, in bytes
            self.w_base = builder.gep(self.w_base, [column])
        self.width = width

    def value(self, p):
        """data[p] as W's dtype."""
        value = self.builder.load(self.builder.gep(self.dat, [p]))
        return self.context.cast(self.builder, value, self.dat_t.dtype, self.W_t.dtype)

    def row(self, p):
        """A vector pointer to W's row indices[p] (from the block's column)."""
        builder = self.builder
        q = builder.load(builder.gep(self.ind, [p]))
        q = self.context.cast(builder, q, self.ind_t.dtype, types.int64)
        row = builder.gep(self.w_base, [builder.mul(q, self.w_row)])
        return builder.bitcast(row, self.vec.as_pointer())

    def splat(self, value):
        undefined = ir.Constant(self.vec, ir.Undefined)
        lane0 = self.builder.insert_element(undefined, value, ir.IntType(32)(0))
        all_lane0 = ir.Constant(ir.VectorType(ir.IntType(32), self.width), None)
        return self.builder.shuffle_vector(lane0, undefined, all_lane0)

    def fma(self, acc, value, w):
        # acc + v * w, contracted to an FMA as the Numba loop's `o[j] += v * w[j]` is
        builder = self.builder
        product = builder.fmul(self.splat(value), w, flags=["contract"])
        return builder.fadd(acc, product, flags=["contract"])

    def load(self, pointer):
        return self.builder.load(pointer, align=self.itemsize)

    def store(self, vector, pointer):
        self.builder.store(vector, pointer, align=self.itemsize)

    def vector_at(self, array_t, value):
        """A vector pointer to the start of 1-D or row-major array `value`'s data."""
        data = self.context.make_array(array_t)(self.context, self.builder, value).data
        return self.builder.bitcast(data, self.vec.as_pointer())


def _loop(builder, first, last, step, carried, body):
    """for p in range(first, last - step + 1, step): carried = body(p, carried).

    Returns (p after the loop, the carried values); `carried` is a list of
    (initial value, LLVM type).
    """
    i64 = ir.IntType(64)
    entry = builder.block
    head = builder.append_basic_block("nonzeros")
    loop = builder.append_basic_block("nonzero")
    done = builder.append_basic_block("after")
    builder.branch(head)
    builder.position_at_end(head)
    p = builder.phi(i64)
    p.add_incoming(first, entry)
    phis = []
    for initial, type_ in carried:
        phi = builder.phi(type_)
        phi.add_incoming(initial, entry)
        phis.append(phi)
    builder.cbranch(builder.icmp_signed("<", builder.add(p, i64(step - 1)), last), loop, done)
    builder.position_at_end(loop)
    updated = body(p, phis)
    p.add_incoming(builder.add(p, i64(step)), builder.block)
    for phi, value in zip(phis, updated):
        phi.add_incoming(value, builder.block)
    builder.branch(head)
    builder.position_at_end(done)
    return p, phis


def _bounds(context, builder, a, a_t, b, b_t):
    return context.cast(builder, a, a_t, types.int64), context.cast(builder, b, b_t, types.int64)


@intrinsic
def block_outputs(typingctx, W):
    """B, the outputs in one of `block_sum`'s blocks for W's dtype (a constant)."""
    sig = types.intp(W)

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, _width(signature.args[0]))

    return sig, codegen


@intrinsic
def block_sum(typingctx, W, out, r, indices, data, a, b, s, j0, add):
    """out[r, j0:j0+B] = sum over p in [a, b) of (dt(data[p]) * s) * W[indices[p], j0:j0+B],
    the sum started from out[r, j0:j0+B] itself when `add` is true, else from 0.

    B = `block_outputs(W)`; dt = W's dtype, s already of it. W's and out's
    rows are contiguous (their strides[1] are the item size: the caller checks).
    """
    B = _width(W)
    sig = types.void(W, out, r, indices, data, a, b, s, j0, add)

    def codegen(context, builder, signature, args):
        W_t, out_t, r_t, ind_t, dat_t, a_t, b_t, s_t, j0_t, add_t = signature.args
        Wv, outv, rv, iv, dv, av, bv, sv, j0v, addv = args
        i64 = ir.IntType(64)
        itemsize = W_t.dtype.bitwidth // 8
        column = builder.mul(context.cast(builder, j0v, j0_t, types.int64), i64(itemsize))
        nz = _Nonzeros(context, builder, W_t, Wv, ind_t, iv, dat_t, dv, B, column)
        scale = context.cast(builder, sv, s_t, W_t.dtype)
        first, last = _bounds(context, builder, av, a_t, bv, b_t)

        out_a = context.make_array(out_t)(context, builder, outv)
        out_row = cgutils.unpack_tuple(builder, out_a.strides, 2)[0]
        r64 = context.cast(builder, rv, r_t, types.int64)
        target = builder.bitcast(out_a.data, ir.IntType(8).as_pointer())
        target = builder.gep(target, [builder.add(builder.mul(r64, out_row), column)])
        target = builder.bitcast(target, nz.vec.as_pointer())
        added = context.cast(builder, addv, add_t, types.boolean)
        start = builder.select(added, nz.load(target), ir.Constant(nz.vec, None))

        def add(p, carried):
            value = builder.fmul(nz.value(p), scale)
            return [nz.fma(carried[0], value, nz.load(nz.row(p)))]

        _, (acc,) = _loop(builder, first, last, 1, [(start, nz.vec)], add)
        nz.store(acc, target)
        return context.get_dummy_value()

    return sig, codegen


# The single pass's padded hidden widths (`numba_step.padded_width`, at most
# `numba_step.NARROW_MAX_WIDTH`): one loop per width, chosen at run time
WIDTHS = (8, 16, 24, 32)


def _padded_rows(name, emit_row):
    """An intrinsic f(W, vector, indices, data, a, b) over nonzeros [a, b) and the
    rows of W they name, W's width (its padded row length, one of `WIDTHS`) a
    vector: emit_row(nz, vector's data as a vector pointer, a, b) per width."""

    def typer(typingctx, W, vector, indices, data, a, b):
        sig = types.void(W, vector, indices, data, a, b)

        def codegen(context, builder, signature, args):
            W_t, v_t, ind_t, dat_t, a_t, b_t = signature.args
            Wv, vv, iv, dv, av, bv = args
            first, last = _bounds(context, builder, av, a_t, bv, b_t)
            W_a = context.make_array(W_t)(context, builder, Wv)
            width = cgutils.unpack_tuple(builder, W_a.shape, 2)[1]
            done = builder.append_basic_block("widths_done")
            # the widest loop also takes any other width: the caller pads to one of WIDTHS
            other = builder.append_basic_block(f"width_{WIDTHS[-1]}")
            switch = builder.switch(width, other)
            for H in WIDTHS:
                if H == WIDTHS[-1]:
                    block = other
                else:
                    block = builder.append_basic_block(f"width_{H}")
                    switch.add_case(ir.Constant(width.type, H), block)
                builder.position_at_end(block)
                nz = _Nonzeros(context, builder, W_t, Wv, ind_t, iv, dat_t, dv, H)
                emit_row(nz, nz.vector_at(v_t, vv), first, last)
                builder.branch(done)
            builder.position_at_end(done)
            return context.get_dummy_value()

        return sig, codegen

    typer.__name__ = typer.__qualname__ = name
    return intrinsic(typer)


# Accumulators of `row_sum`: nonzero p goes to accumulator p % CHAINS, so that
# CHAINS chains of FMAs, not one, hide their latency (4: the two FMA pipes of
# an AVX-512 core each take a new one every cycle, for 4 cycles)
CHAINS = 4


def _row_sum(nz, out, first, last):
    builder = nz.builder
    zero = ir.Constant(nz.vec, None)

    def add_chains(p, carried):
        return [
            nz.fma(acc, nz.value(q), nz.load(nz.row(q)))
            for acc, q in (
                (acc, builder.add(p, ir.IntType(64)(i))) for i, acc in enumerate(carried)
            )
        ]

    p, chains = _loop(builder, first, last, CHAINS, [(zero, nz.vec)] * CHAINS, add_chains)

    def add_one(p, carried):
        return [nz.fma(carried[0], nz.value(p), nz.load(nz.row(p)))]

    # the last nonzeros (fewer than CHAINS) into the first chain, then the chains
    # added pairwise: (0 + 1) + (2 + 3)
    _, (first_chain,) = _loop(builder, p, last, 1, [(chains[0], nz.vec)], add_one)
    chains = [first_chain, *chains[1:]]
    while len(chains) > 1:
        chains = [builder.fadd(a, b) for a, b in zip(chains[::2], chains[1::2])]
    nz.store(chains[0], out)


def _row_axpy(nz, g, first, last):
    deltas = nz.load(g)  # loaded once for the row

    def add(p, carried):
        row = nz.row(p)
        nz.store(nz.fma(nz.load(row), nz.value(p), deltas), row)
        return []

    _loop(nz.builder, first, last, 1, [], add)


row_sum = _padded_rows("row_sum", _row_sum)
row_sum.__doc__ = """row_sum(W, out, indices, data, a, b): out[:H] = sum over p in [a, b) of
dt(data[p]) * W[indices[p], :H], H = W.shape[1] (one of `WIDTHS`).

CHAINS accumulators (the row's i-th nonzero in chain i % CHAINS, its last
ones, fewer than CHAINS, in the first), added pairwise at the end. W's rows and out
are contiguous; out holds at least H entries."""

row_axpy = _padded_rows("row_axpy", _row_axpy)
row_axpy.__doc__ = """row_axpy(dW, g, indices, data, a, b): for p in [a, b),
dW[indices[p], :H] += dt(data[p]) * g[:H], H = dW.shape[1] (one of `WIDTHS`).

dW's rows are contiguous; g holds at least H entries."""
