"""A sum over a row's nonzeros with its outputs held in vector registers.

`compact_product` adds, for each nonzero (q, v) of a row, v W[q] to that
row's outputs. Written as a Numba loop over the outputs, LLVM loads and
stores the output row once per nonzero (it cannot prove that the output does
not alias W, and Numba runs no SLP vectoriser to keep scalar accumulators in
vectors). `block_sum` is that loop written in LLVM IR for one block of
`block_outputs(W)` outputs: one `<B x float>` accumulator that LLVM keeps in
registers, the value broadcast, the block of W's row loaded as one vector.
The sums run in the same order, with the same FMA contraction, as the Numba
loop, so the results are the same bit for bit (tests/contract).
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


@intrinsic
def block_outputs(typingctx, W):
    """B, the outputs in one of `block_sum`'s blocks for W's dtype (a constant)."""
    sig = types.intp(W)

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, _width(signature.args[0]))

    return sig, codegen


@intrinsic
def block_sum(typingctx, W, out, r, indices, data, a, b, s, j0):
    """out[r, j0:j0+B] = sum over p in [a, b) of (dt(data[p]) * s) * W[indices[p], j0:j0+B].

    B = `block_outputs(W)`; dt = W's dtype, s already of it. W's and out's
    rows are contiguous (their strides[1] are the item size: the caller checks).
    """
    B = _width(W)
    sig = types.void(W, out, r, indices, data, a, b, s, j0)

    def codegen(context, builder, signature, args):
        W_t, out_t, r_t, ind_t, dat_t, a_t, b_t, s_t, j0_t = signature.args
        Wv, outv, rv, iv, dv, av, bv, sv, j0v = args
        i64 = ir.IntType(64)
        bytes_ = ir.IntType(8).as_pointer()
        itemsize = W_t.dtype.bitwidth // 8
        vec = ir.VectorType(context.get_data_type(W_t.dtype), B)
        W_a = context.make_array(W_t)(context, builder, Wv)
        out_a = context.make_array(out_t)(context, builder, outv)
        ind_a = context.make_array(ind_t)(context, builder, iv)
        dat_a = context.make_array(dat_t)(context, builder, dv)
        w_row = cgutils.unpack_tuple(builder, W_a.strides, 2)[0]
        out_row = cgutils.unpack_tuple(builder, out_a.strides, 2)[0]
        block = builder.mul(context.cast(builder, j0v, j0_t, types.int64), i64(itemsize))
        w_base = builder.gep(builder.bitcast(W_a.data, bytes_), [block])
        scale = context.cast(builder, sv, s_t, W_t.dtype)
        first = context.cast(builder, av, a_t, types.int64)
        last = context.cast(builder, bv, b_t, types.int64)

        entry = builder.block
        head = builder.append_basic_block("nonzeros")
        body = builder.append_basic_block("nonzero")
        done = builder.append_basic_block("store")
        builder.branch(head)
        builder.position_at_end(head)
        p = builder.phi(i64)
        acc = builder.phi(vec)
        p.add_incoming(first, entry)
        acc.add_incoming(ir.Constant(vec, None), entry)
        builder.cbranch(builder.icmp_signed("<", p, last), body, done)

        builder.position_at_end(body)
        q = builder.load(builder.gep(ind_a.data, [p]))
        q = context.cast(builder, q, ind_t.dtype, types.int64)
        value = builder.load(builder.gep(dat_a.data, [p]))
        value = builder.fmul(context.cast(builder, value, dat_t.dtype, W_t.dtype), scale)
        row = builder.gep(w_base, [builder.mul(q, w_row)])
        w = builder.load(builder.bitcast(row, vec.as_pointer()), align=itemsize)
        undefined = ir.Constant(vec, ir.Undefined)
        lane0 = builder.insert_element(undefined, value, ir.IntType(32)(0))
        all_lane0 = ir.Constant(ir.VectorType(ir.IntType(32), B), None)
        splat = builder.shuffle_vector(lane0, undefined, all_lane0)
        # acc + v * w, contracted to an FMA as the Numba loop's `o[j] += v * w[j]` is
        total = builder.fadd(acc, builder.fmul(splat, w, flags=["contract"]), flags=["contract"])
        p.add_incoming(builder.add(p, i64(1)), builder.block)
        acc.add_incoming(total, builder.block)
        builder.branch(head)

        builder.position_at_end(done)
        r64 = context.cast(builder, rv, r_t, types.int64)
        target = builder.gep(builder.bitcast(out_a.data, bytes_), [builder.mul(r64, out_row)])
        target = builder.gep(target, [block])
        builder.store(acc, builder.bitcast(target, vec.as_pointer()), align=itemsize)
        return context.get_dummy_value()

    return sig, codegen
