"""Argument validation shared by both backends.

Every public kernel validates in Python, before any jitted code runs: a jitted
loop does no bounds checks, so a wrong shape that reached it would write out of
bounds. Errors name the argument. TypeError is for the wrong kind of object or
dtype, ValueError for the wrong shape, layout, writeability or values.
"""

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(name, a, ndim, dtype=None):
    """Check that `a` is a C-contiguous float32/float64 array of `ndim` dimensions.

    With `dtype`, it must also be of that dtype (all float arguments of one
    call share a dtype: fastnn never upcasts silently). Returns the dtype.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {a.dtype} but the other arguments are {dtype}; "
            "fastnn does not mix dtypes (convert with .astype)"
        )
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray({name}))")
    return a.dtype


def shape_is(name, a, shape):
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")


def writeable(name, a):
    if not a.flags.writeable:
        raise ValueError(f"{name} is read-only; it is written in place")


def out_buffer(name, out, shape, dtype):
    """Validate an optional output buffer; return it, or a new one when None."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    float_array(name, out, len(shape), dtype)
    shape_is(name, out, shape)
    writeable(name, out)
    return out


def no_overlap(name, out, *inputs):
    """A GEMM output must not alias its operands: BLAS would read what it wrote."""
    for other_name, other in inputs:
        if np.may_share_memory(out, other):
            raise ValueError(f"{name} must not share memory with {other_name}")


def _same_memory(a, b):
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
    )


def in_place_or_apart(name, out, *inputs):
    """An element-wise output may be one of its inputs, or apart from all of them.

    A partial overlap (a shifted view) would make a row-by-row loop read what
    it has just written: the backends would then disagree.
    """
    for other_name, other in inputs:
        if np.may_share_memory(out, other) and not _same_memory(out, other):
            raise ValueError(
                f"{name} partly overlaps {other_name}; pass {other_name} itself "
                "or a separate array"
            )


def apart(named):
    """Arrays written in place must not share memory with each other or any input."""
    for i, (name, a) in enumerate(named):
        for other_name, other in named[i + 1 :]:
            if np.may_share_memory(a, other):
                raise ValueError(f"{name} must not share memory with {other_name}")


def labels(name, y, n, n_classes):
    """Check integer labels `y` of shape (n,) with values in [0, n_classes)."""
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(y).__name__}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {y.dtype}")
    if not y.dtype.isnative:
        raise TypeError(f"{name} must be in native byte order, got {y.dtype}")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the batch, got {y.shape}")
    if not y.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray({name}))")
    lo, hi = y.min(), y.max()
    if lo < 0 or hi >= n_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{name} holds label {bad}, outside [0, {n_classes})")


def real_scalar(name, value, low=None, low_inclusive=True, high=None, high_inclusive=True):
    """Check a finite real scalar within optional bounds; return it as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low}, got {value}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {high}, got {value}")
    return value


def positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    # the jitted kernels take a 64-bit integer
    if not 1 <= value < 2**63:
        raise ValueError(f"{name} must be in [1, 2**63), got {value}")
    return int(value)


def flag(name, value):
    """A bool switch: an array or a string here is a mistake, not a truth value."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


# -- Per-function validation, shared by fastnn.reference and fastnn.kernels. --
# Each returns the output buffers (allocated when the caller passed None).


def linear_forward_args(x, W, b, out):
    dtype = float_array("x", x, 2)
    float_array("W", W, 2, dtype)
    float_array("b", b, 1, dtype)
    n, k = x.shape
    if W.shape[0] != k:
        raise ValueError(f"W must have {k} rows to match x's {k} columns, got shape {W.shape}")
    m = W.shape[1]
    shape_is("b", b, (m,))
    out = out_buffer("out", out, (n, m), dtype)
    no_overlap("out", out, ("x", x), ("W", W), ("b", b))
    return out


def csr_args(indptr, indices, data, W):
    """Check a CSR matrix (indptr, indices, data) to multiply with W; returns (n, dtype).

    Every index is read by a jitted loop without bounds checks, so the
    structure is checked whole: indptr from 0, non-decreasing, ending at nnz;
    column indices in [0, W.shape[0]).
    """
    dtype = float_array("W", W, 2)
    for name, a in (("indptr", indptr), ("indices", indices)):
        if not isinstance(a, np.ndarray) or a.dtype not in (np.int32, np.int64):
            raise TypeError(
                f"{name} must be an int32 or int64 numpy.ndarray, got "
                f"{getattr(a, 'dtype', type(a).__name__)}"
            )
        if a.ndim != 1 or not a.flags.c_contiguous:
            raise ValueError(f"{name} must be 1-D and C-contiguous, got shape {a.shape}")
    if indices.dtype != indptr.dtype:
        raise TypeError(f"indices has dtype {indices.dtype} but indptr {indptr.dtype}")
    if not isinstance(data, np.ndarray) or data.dtype != dtype:
        raise TypeError(
            f"data must be a numpy.ndarray of W's dtype {dtype}, got "
            f"{getattr(data, 'dtype', type(data).__name__)}"
        )
    _csr_structure(indptr, indices, data, W.shape[0])
    return indptr.shape[0] - 1, dtype


def _csr_structure(indptr, indices, data, k):
    """Check a CSR matrix's arrays whole (the jitted loops read every index
    unchecked): data 1-D, indptr from 0, non-decreasing, ending at nnz, one
    column index per value, each in [0, k) (W's rows)."""
    if data.ndim != 1 or not data.flags.c_contiguous:
        raise ValueError(f"data must be 1-D and C-contiguous, got shape {data.shape}")
    if indptr.shape[0] < 2:
        raise ValueError(f"indptr must hold at least 2 entries (one row), got {indptr.shape[0]}")
    nnz = data.shape[0]
    if indices.shape[0] != nnz:
        raise ValueError(
            f"indices and data must have the same length, got {indices.shape[0]} and {nnz}"
        )
    if indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
        raise ValueError(f"indptr must rise from 0 to nnz={nnz} without decreasing")
    if nnz and (indices.min() < 0 or indices.max() >= k):
        raise ValueError(f"indices must be in [0, {k}) (W's rows)")


def _index_array(name, a, dtypes):
    if not isinstance(a, np.ndarray) or a.dtype not in dtypes:
        allowed = " or ".join(np.dtype(d).name for d in dtypes)
        got = getattr(a, "dtype", type(a).__name__)
        raise TypeError(f"{name} must be a numpy.ndarray of {allowed}, got {got}")
    if a.ndim != 1 or not a.flags.c_contiguous:
        raise ValueError(f"{name} must be 1-D and C-contiguous, got shape {a.shape}")


def compact_args(indptr, indices, data, rows, xs, W):
    """Check X's nonzeros by row (indptr, indices, data), the `rows` of it read and
    the input scale `xs`, to multiply with W; returns (rows, xs, dtype).

    As `csr_args`, the structure is checked whole (the jitted loop reads every
    index unchecked): indptr from 0, non-decreasing, ending at nnz; columns in
    [0, W.shape[0]); rows in [0, n_X). `rows` None reads every row in order.
    """
    dtype = float_array("W", W, 2)
    _index_array("indptr", indptr, (np.int32, np.int64))
    _index_array("indices", indices, (np.uint16, np.int32, np.int64))
    if not isinstance(data, np.ndarray) or data.dtype not in (dtype, np.uint8):
        raise TypeError(
            f"data must be a numpy.ndarray of W's dtype {dtype} or uint8, got "
            f"{getattr(data, 'dtype', type(data).__name__)}"
        )
    _csr_structure(indptr, indices, data, W.shape[0])
    n_rows = indptr.shape[0] - 1
    if rows is None:
        rows = np.arange(n_rows, dtype=np.int64)
    _index_array("rows", rows, (np.int64,))
    if rows.shape[0] == 0:
        raise ValueError("rows must not be empty")
    if rows.min() < 0 or rows.max() >= n_rows:
        raise ValueError(f"rows must be in [0, {n_rows}) (indptr's rows)")
    return rows, real_scalar("xs", xs), dtype


def flags_array(name, a, k):
    """A writeable uint8 flag per row of W, (k,), C-contiguous."""
    _index_array(name, a, (np.uint8,))
    shape_is(name, a, (k,))
    writeable(name, a)


def elementwise_args(names, arrays, out):
    dtype = float_array(names[0], arrays[0], 2)
    for name, a in zip(names[1:], arrays[1:]):
        float_array(name, a, 2, dtype)
        shape_is(name, a, arrays[0].shape)
    out = out_buffer("out", out, arrays[0].shape, dtype)
    in_place_or_apart("out", out, *zip(names, arrays))
    return out


def linear_backward_args(dout, x, W, dx, dW, db, need_dx):
    dtype = float_array("dout", dout, 2)
    float_array("x", x, 2, dtype)
    float_array("W", W, 2, dtype)
    n, m = dout.shape
    if x.shape[0] != n:
        raise ValueError(f"x must have {n} rows to match dout, got shape {x.shape}")
    k = x.shape[1]
    shape_is("W", W, (k, m))
    if need_dx:
        dx = out_buffer("dx", dx, (n, k), dtype)
        no_overlap("dx", dx, ("dout", dout), ("x", x), ("W", W))
    elif dx is not None:
        raise ValueError("dx was given but need_dx is False")
    dW = out_buffer("dW", dW, (k, m), dtype)
    no_overlap("dW", dW, ("dout", dout), ("x", x), ("W", W))
    db = out_buffer("db", db, (m,), dtype)
    no_overlap("db", db, ("dout", dout), ("x", x), ("W", W))
    outputs = [("dW", dW), ("db", db)] + ([("dx", dx)] if need_dx else [])
    apart(outputs)
    return dx, dW, db


def _param_and_grad(param, grad, names=("param", "grad"), written=0):
    """A 1-D or 2-D parameter and its gradient; `names[written]` is written in place."""
    if not isinstance(param, np.ndarray):
        raise TypeError(f"{names[0]} must be a numpy.ndarray, got {type(param).__name__}")
    if param.ndim not in (1, 2):
        raise ValueError(f"{names[0]} must be 1-D or 2-D, got shape {param.shape}")
    dtype = float_array(names[0], param, param.ndim)
    float_array(names[1], grad, param.ndim, dtype)
    shape_is(names[1], grad, param.shape)
    writeable(names[written], (param, grad)[written])
    return dtype


def _state(name, a, param, dtype):
    float_array(name, a, param.ndim, dtype)
    shape_is(name, a, param.shape)
    writeable(name, a)


def sgd_update_args(param, grad, lr, velocity, momentum):
    dtype = _param_and_grad(param, grad)
    lr = real_scalar("lr", lr, low=0.0)
    momentum = real_scalar("momentum", momentum, low=0.0, high=1.0, high_inclusive=False)
    if velocity is None:
        if momentum != 0.0:
            raise ValueError("velocity is required when momentum is not 0")
        apart([("param", param), ("grad", grad)])
    else:
        _state("velocity", velocity, param, dtype)
        apart([("param", param), ("grad", grad), ("velocity", velocity)])
    return lr, momentum


def adam_update_args(param, grad, m, v, t, lr, beta1, beta2, eps):
    dtype = _param_and_grad(param, grad)
    _state("m", m, param, dtype)
    _state("v", v, param, dtype)
    t = positive_int("t", t)
    lr = real_scalar("lr", lr, low=0.0)
    beta1 = real_scalar("beta1", beta1, low=0.0, high=1.0, high_inclusive=False)
    beta2 = real_scalar("beta2", beta2, low=0.0, high=1.0, high_inclusive=False)
    eps = real_scalar("eps", eps, low=0.0, low_inclusive=False)
    apart([("param", param), ("grad", grad), ("m", m), ("v", v)])
    return t, lr, beta1, beta2, eps


def l2_penalty_args(W, dW, scale):
    _param_and_grad(W, dW, names=("W", "dW"), written=1)
    apart([("dW", dW), ("W", W)])
    return real_scalar("scale", scale, low=0.0)


def activation(value):
    """The code of activation name `value` (`fastnn.contract.tables.ACTIVATIONS`)."""
    from fastnn.contract.tables import ACTIVATIONS

    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {value!r}")
    return ACTIVATIONS.index(value)


def loss_scale(scale, n):
    """The loss normaliser: 1/n by default (a mean), or the caller's (1/global n)."""
    if scale is None:
        return 1.0 / n
    return real_scalar("scale", scale, low=0.0)


def float_targets(name, Y, shape, dtype):
    """Float targets of the outputs' shape and dtype (multilabel 0/1, regression values)."""
    float_array(name, Y, 2, dtype)
    shape_is(name, Y, shape)


def head_args(z_name, z, y_name, y, out_name, out, labels_target):
    """A head's (outputs, targets, out): labels or float targets, `out` may be `z`."""
    dtype = float_array(z_name, z, 2)
    if labels_target:
        labels(y_name, y, z.shape[0], z.shape[1])
    else:
        float_targets(y_name, y, z.shape, dtype)
    out = out_buffer(out_name, out, z.shape, dtype)
    in_place_or_apart(out_name, out, (z_name, z))
    # a target overwritten mid-row would be read wrong (a label, out of bounds)
    if labels_target:
        no_overlap(out_name, out, (y_name, y))
    else:
        in_place_or_apart(out_name, out, (y_name, y))
    return out


def dropout_args(names, arrays, rows, seed, step, rate, out):
    """Check a dropout call; returns (out, seed, step, rate, scale): seed and step
    as uint64 (one compiled signature for every value), `scale` is 1 / (1 - rate)
    in the arrays' dtype, so that both backends multiply by the same number."""
    out = elementwise_args(names, arrays, out)
    n = arrays[0].shape[0]
    if not isinstance(rows, np.ndarray) or rows.dtype != np.int64:
        got = getattr(rows, "dtype", type(rows).__name__)
        raise TypeError(f"rows must be an int64 numpy.ndarray, got {got}")
    shape_is("rows", rows, (n,))
    if n and rows.min() < 0:
        raise ValueError("rows must be non-negative row numbers")
    for name, value, high in (("seed", seed, 2**64), ("step", step, 2**63)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
        if not 0 <= value < high:
            raise ValueError(f"{name} must be in [0, 2**{high.bit_length() - 1}), got {value}")
    rate = real_scalar("rate", rate, low=0.0, high=1.0, high_inclusive=False)
    scale = arrays[0].dtype.type(1.0 / (1.0 - rate))
    return out, np.uint64(seed), np.uint64(step), rate, scale
