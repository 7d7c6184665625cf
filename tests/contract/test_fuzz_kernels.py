"""Property test: random shapes, dtypes, strides and values at every kernel wrapper.

Each example builds a valid call of one contract function, then may apply
faults (a wrong dtype, ndim or shape, a strided, read-only, unaligned or
aliased array, a list, a bad label or scalar). Both backends are called on
identical copies and must agree: either both raise the same documented
TypeError/ValueError, or both return results equal within a bound derived
from the inputs (rounding only). A valid call must not raise. Anything else
(a Numba typing error, an IndexError, a crash) fails.

Every C-contiguous array handed to a backend sits inside a larger buffer whose
margins hold a canary pattern: a kernel that writes out of bounds changes it.
CI also runs this file with NUMBA_BOUNDSCHECK=1 and an empty NUMBA_CACHE_DIR
(Numba's cache key ignores the flag: a warm cache would serve unchecked code),
where an out-of-bounds read raises IndexError too; `test_boundscheck_is_live`
proves the flag reached the compiled kernels.
"""

import inspect
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from fastnn import kernels, reference
from fastnn.contract import spec

BACKENDS = (reference, kernels)
FLOATS = (np.float32, np.float64)
PAD = 64  # canary bytes on each side of every array
CANARY = 0xA5
# CI runs the same 60 examples per function every time; FASTNN_FUZZ_EXAMPLES=N
# explores N fresh random ones instead.
EXAMPLES = os.environ.get("FASTNN_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(EXAMPLES or 60),
    deadline=None,  # the first call of a new signature compiles
    derandomize=EXAMPLES is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# name of each function's outputs: returned values, then arrays written in place
RETURNS = {
    "linear_forward": ("out",),
    "linear_relu_forward": ("out",),
    "linear_activation_forward": ("out",),
    "relu_forward": ("out",),
    "relu_backward": ("out",),
    "activation_forward": ("out",),
    "activation_backward": ("out",),
    "softmax": ("out",),
    "softmax_cross_entropy": ("loss", "probs_out"),
    "softmax_cross_entropy_backward": ("out",),
    "binary_cross_entropy": ("loss", "probs_out"),
    "binary_cross_entropy_backward": ("out",),
    "squared_error": ("loss",),
    "squared_error_backward": ("out",),
    "linear_backward": ("dx", "dW", "db"),
    "csr_linear_forward": ("out",),
    "csr_linear_backward": ("dW",),
    "compact_linear_forward": ("out",),
    "compact_linear_backward": ("dW",),
    "dropout_forward": ("out",),
    "dropout_backward": ("out",),
    "sgd_update": ("param",),
    "adam_update": ("param",),
    "l2_penalty": ("penalty",),
}
WRITTEN = {
    "sgd_update": ("param", "velocity"),
    "adam_update": ("param", "m", "v"),
    "l2_penalty": ("dW",),
    "compact_linear_backward": ("touched",),
}


# -- values ---------------------------------------------------------------


def values(rng, shape, dtype, special):
    """Random floats; with `special`, some NaN, +-inf, +-1000, -0.0 and tied rows."""
    scale = rng.choice([1e-3, 1.0, 30.0])
    a = rng.uniform(-scale, scale, shape)
    if special and a.size:
        picks = rng.random(shape)
        a[picks < 0.05] = np.nan
        a[(picks >= 0.05) & (picks < 0.1)] = np.inf
        a[(picks >= 0.1) & (picks < 0.15)] = -np.inf
        a[(picks >= 0.15) & (picks < 0.25)] = 1000.0 * rng.choice([-1, 1])
        a[(picks >= 0.25) & (picks < 0.3)] = -0.0
        if a.ndim == 2 and rng.random() < 0.2:
            a[:] = a[:1]  # all rows equal
    return a.astype(dtype)


# -- building a valid call -------------------------------------------------


@st.composite
def valid_call(draw, name):
    """(args, kinds): the arguments of a valid call, by parameter name."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from(FLOATS))
    n, k, m = (draw(st.integers(1, 6)) for _ in range(3))
    give_out = draw(st.booleans())
    special = draw(st.booleans())

    def arr(shape, special=False):
        return values(rng, shape, dtype, special)

    def out(shape):
        return np.full(shape, 7, dtype) if give_out else None

    def y(rows, classes):
        label_dtype = draw(st.sampled_from([np.int64, np.int32, np.uint8, np.intp]))
        return rng.integers(0, classes, rows).astype(label_dtype)

    def scale():
        return draw(st.sampled_from([None, 0.0, 1e-3, 0.5]))

    def targets(binary):
        Y = rng.integers(0, 2, (n, m)) if binary else rng.uniform(-3, 3, (n, m))
        return Y.astype(dtype)

    activation = draw(st.sampled_from(["identity", "logistic", "tanh", "relu"]))
    if name in ("linear_forward", "linear_relu_forward"):
        args = dict(x=arr((n, k)), W=arr((k, m)), b=arr((m,)), out=out((n, m)))
    elif name == "linear_activation_forward":
        args = dict(
            x=arr((n, k)), W=arr((k, m)), b=arr((m,)), activation=activation, out=out((n, m))
        )
    elif name in ("relu_forward", "softmax"):
        args = dict(z=arr((n, m), special), out=out((n, m)))
    elif name == "activation_forward":
        args = dict(z=arr((n, m), special), activation=activation, out=out((n, m)))
    elif name == "relu_backward":
        args = dict(dout=arr((n, m), special), a=arr((n, m), special), out=out((n, m)))
    elif name == "activation_backward":
        args = dict(
            dout=arr((n, m), special),
            a=arr((n, m), special),
            activation=activation,
            out=out((n, m)),
        )
    elif name == "softmax_cross_entropy":
        args = dict(logits=arr((n, m), special), y=y(n, m), probs_out=out((n, m)), scale=scale())
    elif name == "softmax_cross_entropy_backward":
        args = dict(probs=arr((n, m), special), y=y(n, m), out=out((n, m)), scale=scale())
    elif name == "binary_cross_entropy":
        args = dict(
            logits=arr((n, m), special), Y=targets(True), probs_out=out((n, m)), scale=scale()
        )
    elif name == "binary_cross_entropy_backward":
        args = dict(probs=arr((n, m), special), Y=targets(True), out=out((n, m)), scale=scale())
    elif name == "squared_error":
        args = dict(pred=arr((n, m), special), Y=targets(False), scale=scale())
    elif name == "squared_error_backward":
        args = dict(pred=arr((n, m), special), Y=targets(False), out=out((n, m)), scale=scale())
    elif name == "linear_backward":
        need_dx = draw(st.booleans())
        args = dict(
            dout=arr((n, m)),
            x=arr((n, k)),
            W=arr((k, m)),
            dx=out((n, k)) if need_dx else None,
            dW=out((k, m)),
            db=out((m,)),
            need_dx=need_dx,
        )
    elif name in ("csr_linear_forward", "csr_linear_backward"):
        # a random sparse (n, k) matrix: empty rows, full rows, no entries at all
        dense = arr((n, k)) * (rng.random((n, k)) < draw(st.sampled_from([0.0, 0.3, 1.0])))
        x = sparse.csr_matrix(dense)
        index_dtype = draw(st.sampled_from([np.int32, np.int64]))
        csr = dict(
            indptr=x.indptr.astype(index_dtype),
            indices=x.indices.astype(index_dtype),
            data=x.data.astype(dtype),
        )
        if name == "csr_linear_forward":
            args = dict(**csr, W=arr((k, m)), b=arr((m,)), out=out((n, m)))
        else:
            args = dict(**csr, dout=arr((n, m)), W=arr((k, m)), dW=out((k, m)))
    elif name in ("compact_linear_forward", "compact_linear_backward"):
        # X's nonzeros by row (uint8 or float values, with inf and NaN), read
        # through a random selection of its rows (repeats allowed) or all of them
        n_x = draw(st.integers(1, 6))
        mask = rng.random((n_x, k)) < draw(st.sampled_from([0.0, 0.3, 1.0]))
        uint8 = draw(st.booleans())
        if uint8:
            X = np.where(mask, rng.integers(0, 256, (n_x, k)), 0).astype(np.uint8)
        else:
            X = np.where(mask, arr((n_x, k), special), 0).astype(dtype)
        x = sparse.csr_matrix(X)
        rows = rng.integers(0, n_x, n).astype(np.int64) if draw(st.booleans()) else None
        n_rows = n_x if rows is None else n
        parts = dict(
            indptr=x.indptr.astype(draw(st.sampled_from([np.int32, np.int64]))),
            indices=x.indices.astype(draw(st.sampled_from([np.uint16, np.int32, np.int64]))),
            data=x.data.astype(np.uint8 if uint8 else dtype),
        )
        xs = draw(st.sampled_from([1.0, 1 / 255, 3.0]))
        if name == "compact_linear_forward":
            args = dict(
                **parts, W=arr((k, m)), b=arr((m,)), rows=rows, xs=xs, out=out((n_rows, m))
            )
        else:
            # the training step's form: flags in, dW's other rows kept
            flagged = draw(st.booleans())
            args = dict(
                **parts,
                dout=arr((n_rows, m)),
                W=arr((k, m)),
                rows=rows,
                xs=xs,
                dW=arr((k, m)) if flagged else out((k, m)),
                touched=rng.integers(0, 2, k).astype(np.uint8) if flagged else None,
            )
    elif name in ("dropout_forward", "dropout_backward"):
        rows = rng.choice(10**6, n, replace=draw(st.booleans())).astype(np.int64)
        args = {
            "a" if name == "dropout_forward" else "dout": arr((n, m), special),
            "rows": rows,
            "seed": draw(st.sampled_from([0, 1, 2**63, 2**64 - 1])),
            "step": draw(st.sampled_from([0, 1, 2**62])),
            "rate": draw(st.sampled_from([0.0, 0.5, 0.999])),
            "out": out((n, m)),
        }
    else:
        shape = draw(st.sampled_from([(m,), (k, m)]))
        if name == "sgd_update":
            momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
            velocity = arr(shape) if momentum or draw(st.booleans()) else None
            lr = draw(st.sampled_from([0.0, 1e-3, 0.5]))
            args = dict(
                param=arr(shape),
                grad=arr(shape),
                lr=lr,
                velocity=velocity,
                momentum=momentum,
                nesterov=draw(st.booleans()),
            )
        elif name == "adam_update":
            args = dict(
                param=arr(shape),
                grad=arr(shape),
                m=arr(shape),
                v=np.abs(arr(shape)),
                t=draw(st.integers(1, 10**6)),
                lr=draw(st.sampled_from([1e-3, 0.1])),
                beta1=draw(st.sampled_from([0.0, 0.9])),
                beta2=draw(st.sampled_from([0.5, 0.999])),
                eps=draw(st.sampled_from([1e-8, 1e-3])),
            )
        else:
            args = dict(W=arr(shape), dW=arr(shape), scale=draw(st.sampled_from([0.0, 1e-4, 2.0])))
    return args


# -- faults ------------------------------------------------------------------

WRONG_DTYPES = [
    np.float16,
    np.int32,
    np.int64,
    np.bool_,
    np.complex64,
    np.dtype(">f8"),
    np.dtype(">f4"),
    np.float32,
    np.float64,
]
BAD_SCALARS = [
    np.nan,
    np.inf,
    -1.0,
    1.5,
    0,
    2**70,
    "0.1",
    None,
    True,
    np.float32(0.25),
    np.array([0.1, 0.2]),
]


@st.composite
def faults(draw, args):
    """A list of (kind, argument name, parameter): 0 to 2 faults."""
    arrays = [k for k, v in args.items() if isinstance(v, np.ndarray)]
    absent = [k for k, v in args.items() if v is None]
    scalars = [k for k, v in args.items() if k not in arrays and k not in absent]
    found = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(
            st.sampled_from(
                [
                    "dtype",
                    "ndim",
                    "shape",
                    "strided",
                    "readonly",
                    "unaligned",
                    "list",
                    "alias",
                    "overlap",
                    "scalar",
                    "labels",
                    "absent",
                ]
            )
        )
        if kind == "scalar" and scalars:
            value = draw(st.sampled_from(BAD_SCALARS))
            found.append((kind, draw(st.sampled_from(scalars)), value))
        elif kind == "absent" and absent:
            found.append((kind, draw(st.sampled_from(absent)), None))
        elif kind in ("alias", "overlap") and len(arrays) > 1:
            target, source = draw(st.permutations(arrays))[:2]
            found.append((kind, target, source))
        elif kind == "labels" and "y" in args:
            found.append(
                (
                    kind,
                    "y",
                    draw(
                        st.sampled_from(
                            ["float", "bool", "too_big", "negative", "short", "2d", "big_endian"]
                        )
                    ),
                )
            )
        elif kind == "dtype" and arrays:
            dtype = draw(st.sampled_from(WRONG_DTYPES))
            found.append((kind, draw(st.sampled_from(arrays)), dtype))
        elif kind in ("ndim", "shape", "strided", "readonly", "unaligned", "list") and arrays:
            found.append((kind, draw(st.sampled_from(arrays)), draw(st.integers(0, 2))))
    return found


class Canaries:
    """Arrays placed inside canary-filled buffers, checked after the call."""

    def __init__(self):
        self.buffers = []

    def place(self, a, misalign=0):
        if not isinstance(a, np.ndarray) or not a.flags.c_contiguous:
            return a
        buf = np.full(a.nbytes + 2 * PAD + misalign, CANARY, np.uint8)
        inner = buf[PAD + misalign : PAD + misalign + a.nbytes]
        view = inner.view(a.dtype).reshape(a.shape) if a.nbytes else a.copy()
        view[...] = a
        view.flags.writeable = a.flags.writeable
        self.buffers.append((buf, PAD + misalign, a.nbytes))
        return view

    def intact(self):
        return all(
            (buf[:start] == CANARY).all() and (buf[start + size :] == CANARY).all()
            for buf, start, size in self.buffers
        )


def apply(args, found, canaries):
    """A fresh copy of `args` with `found` faults applied, arrays in canary buffers."""
    args = {
        k: canaries.place(v.copy()) if isinstance(v, np.ndarray) else v for k, v in args.items()
    }
    for kind, name, param in found:
        a = args[name]
        if not isinstance(a, np.ndarray) and kind not in ("scalar", "absent"):
            continue  # an earlier fault already replaced it
        if kind == "dtype":
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                args[name] = canaries.place(a.astype(param))
        elif kind == "ndim":
            args[name] = (a.reshape(-1), a[None], a[..., None])[param]
        elif kind == "shape":
            shape = list(a.shape)
            shape[-1] = max(0, shape[-1] + (-1, 1, 2)[param])
            args[name] = canaries.place(np.ones(shape, a.dtype))
        elif kind == "strided":
            wide = np.repeat(a, 2, axis=-1)
            args[name] = (np.asfortranarray(a), wide[..., ::2], a[::-1])[param]
        elif kind == "readonly":
            a.flags.writeable = False
        elif kind == "unaligned":
            args[name] = canaries.place(a, misalign=1 + param)  # 1 to 3 bytes off
        elif kind == "list":
            args[name] = a.tolist()
        elif kind == "scalar":
            args[name] = param
        elif kind == "absent":
            args[name] = np.zeros(3)
        elif kind == "alias" and isinstance(args[param], np.ndarray):
            args[name] = args[param]
        elif kind == "overlap" and isinstance(args[param], np.ndarray):
            # target and source become neighbouring views of one buffer
            src = args[param]
            shared = canaries.place(np.concatenate([src.ravel(), src.ravel()[:1]]))
            args[param] = shared[:-1].reshape(src.shape)
            args[name] = shared[1:].reshape(src.shape)
        elif kind == "labels":
            args[name] = {
                "float": lambda y: y.astype(np.float64),
                "bool": lambda y: y > 0,
                "too_big": lambda y: np.full_like(y, 255 if y.dtype == np.uint8 else 10**6),
                "negative": lambda y: y.astype(np.int64) - 1000,
                "short": lambda y: y[:-1] if y.size > 1 else np.zeros(3, y.dtype),
                "2d": lambda y: y[:, None],
                "big_endian": lambda y: y.astype(y.dtype.newbyteorder(">")),
            }[param](a)
    return args


# -- running and comparing -----------------------------------------------


def call(backend, name, valid, found):
    """(outcome, arguments before, arguments after, canaries intact).

    The outcome is a dict of outputs by name, or (exception type, message).
    """
    canaries = Canaries()
    args = apply(valid, found, canaries)
    before = {
        k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in args.items()
    }
    function = getattr(backend, name)
    try:
        with np.errstate(all="ignore"):
            result = function(**args)
    except (TypeError, ValueError) as exc:
        return (type(exc), str(exc)), before, args, canaries.intact()
    if not isinstance(result, tuple):
        result = (result,)
    outputs = dict(zip(RETURNS[name], result))
    for written in WRITTEN.get(name, ()):
        outputs.setdefault(written, args[written])
    return outputs, before, args, canaries.intact()


def bounds(name, a, outputs):
    """Largest rounding difference allowed between the backends, per output.

    Worst-case bounds from the inputs' magnitudes: a k-term dot product
    rounds within (k+2) eps sum|terms|; element-wise updates within a few eps
    of their operands. `a` holds the arguments as they were before the call.
    """
    f = {
        k: np.abs(v.astype(np.float64)) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
        for k, v in a.items()
    }
    dtype = next(v.dtype for v in a.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f")
    u = float(np.finfo(dtype).eps)
    tiny = 16 * float(np.finfo(dtype).smallest_subnormal)
    with np.errstate(all="ignore"):

        def scale_of(z):
            return 1.0 / z.shape[0] if a.get("scale") is None else a["scale"]

        if name in ("linear_forward", "linear_relu_forward", "linear_activation_forward"):
            k = a["x"].shape[1]
            # every activation is 1-Lipschitz, and logistic/tanh add a few ulps
            return {"out": 2 * (k + 2) * u * (f["x"] @ f["W"] + f["b"]) + 4 * u + tiny}
        if name in ("relu_forward", "relu_backward", "dropout_forward", "dropout_backward"):
            return {"out": 0.0}  # one multiplication (dropout: the same mask and scale)
        if name == "activation_forward":
            return {"out": 4 * u * (1 + f["z"]) + tiny}
        if name == "activation_backward":
            # dout * a (1 - a): a few roundings of each factor
            # (a NaN or inf a gives a NaN or inf result whatever the bound)
            return {"out": 8 * u * f["dout"] * (1 + np.nan_to_num(f["a"], nan=0.0)) ** 2 + tiny}
        if name in ("softmax", "softmax_cross_entropy"):
            z = a["z" if name == "softmax" else "logits"]
            n, m = z.shape
            finite = np.abs(z[np.isfinite(z)].astype(np.float64))
            biggest = finite.max() if finite.size else 0.0
            loss_scale = scale_of(z) * n if name != "softmax" else 1.0
            return {
                "out": 4 * (m + 4) * u,
                "probs_out": 4 * (m + 4) * u,
                "loss": 4 * u * (4 * biggest + m + 4) * loss_scale,
            }
        if name == "softmax_cross_entropy_backward":
            return {"out": 4 * u * (f["probs"] + 1) * scale_of(a["probs"]) + tiny}
        if name == "binary_cross_entropy":
            z = a["logits"]
            finite = np.abs(z[np.isfinite(z)].astype(np.float64))
            biggest = finite.max() if finite.size else 0.0
            return {
                "probs_out": 4 * u + tiny,
                "loss": 8 * u * (biggest + 2) * z.size * scale_of(z) + tiny,
            }
        if name in ("binary_cross_entropy_backward", "squared_error_backward"):
            first = a["probs" if name.startswith("binary") else "pred"]
            return {
                "out": 4 * u * (np.abs(first.astype(np.float64)) + f["Y"]) * scale_of(first) + tiny
            }
        if name == "squared_error":
            diff = np.abs(a["pred"].astype(np.float64) - a["Y"])
            return {
                "loss": 8 * u * float(np.sum((diff + f["Y"] + 1) ** 2)) * scale_of(a["pred"])
                + tiny
            }
        if name.startswith("csr_"):
            x = abs(
                sparse.csr_matrix(
                    (f["data"], a["indices"], a["indptr"]),
                    shape=(a["indptr"].shape[0] - 1, a["W"].shape[0]),
                )
            )
            if name == "csr_linear_forward":
                k = a["W"].shape[0]
                return {"out": 2 * (k + 2) * u * (x @ f["W"] + f["b"]) + tiny}
            n = a["dout"].shape[0]
            return {"dW": 2 * (n + 2) * u * (x.T @ f["dout"]) + tiny}
        if name.startswith("compact_"):
            W = a["W"]
            n_x = a["indptr"].shape[0] - 1
            rows = np.arange(n_x) if a["rows"] is None else a["rows"]
            read = a["data"].astype(W.dtype) * W.dtype.type(a["xs"])
            x = abs(
                sparse.csr_matrix(
                    (read.astype(np.float64), a["indices"], a["indptr"]), shape=(n_x, W.shape[0])
                )[rows]
            )
            if name == "compact_linear_forward":
                k = W.shape[0]
                return {"out": 2 * (k + 2) * u * (x @ f["W"] + f["b"]) + tiny}
            n = rows.shape[0]
            kept = 0.0 if a["touched"] is None else f["dW"]  # flagged rows are added to
            return {"dW": 2 * (n + 2) * u * (x.T @ f["dout"] + kept) + tiny, "touched": 0.0}
        if name == "linear_backward":
            n, m = a["dout"].shape
            return {
                "dx": 2 * (m + 2) * u * (f["dout"] @ f["W"].T) + tiny,
                "dW": 2 * (n + 2) * u * (f["x"].T @ f["dout"]) + tiny,
                "db": 2 * (n + 2) * u * f["dout"].sum(axis=0) + tiny,
            }
        if name == "sgd_update":
            vel = f["velocity"] if a["velocity"] is not None else 0.0
            step = f["lr"] * f["grad"] + vel
            return {
                "param": 8 * u * (f["param"] + 2 * step) + tiny,
                "velocity": 8 * u * step + tiny,
            }
        if name == "adam_update":
            new = np.abs(outputs["param"].astype(np.float64))
            return {
                "param": 8 * u * (f["param"] + new) + tiny,
                "m": 8 * u * (f["m"] + f["grad"]) + tiny,
                "v": 8 * u * (f["v"] + f["grad"] ** 2) + tiny,
            }
        if name == "l2_penalty":
            squares = float((f["W"] ** 2).sum())
            return {
                "dW": 8 * u * (f["dW"] + f["scale"] * f["W"]) + tiny,
                "penalty": f["scale"] * squares * (a["W"].size + 4) * u + tiny,
            }
    raise AssertionError(name)


def assert_close(label, actual, expected, bound):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, label
    # NaN and inf must sit in the same places; finite values within the bound
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=label)
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(
        actual[~finite & ~np.isnan(expected)],
        expected[~finite & ~np.isnan(expected)],
        err_msg=label,
    )
    bound = np.broadcast_to(bound, expected.shape)
    with np.errstate(invalid="ignore"):
        error = np.abs(actual - expected)
    bad = finite & ~(error <= bound)
    assert not bad.any(), (
        f"{label}: numba and numpy differ by {error[bad].max():.3g} > bound {bound[bad].min():.3g}"
    )


def check(name, args, found):
    ref, ref_before, _, ref_intact = call(reference, name, args, found)
    got, _, got_args, got_intact = call(kernels, name, args, found)
    assert ref_intact and got_intact, "a kernel wrote outside its arrays"
    if not found:
        assert isinstance(ref, dict), f"a valid call raised {ref}"
    if isinstance(ref, tuple):
        assert got == ref, "the backends raised different errors"
        return
    assert isinstance(got, dict), f"numpy returned but numba raised {got}"
    limits = bounds(name, ref_before, ref)
    for key, expected in ref.items():
        if expected is None:
            assert got[key] is None, key
        else:
            assert_close(key, got[key], expected, limits[key])
    # arguments that are neither outputs nor aliases of one must be untouched
    for key, value in got_args.items():
        if (
            isinstance(value, np.ndarray)
            and key not in ref
            and not any(
                isinstance(o, np.ndarray) and np.may_share_memory(value, o) for o in got.values()
            )
        ):
            assert value.tobytes() == ref_before[key].tobytes(), f"{key} was modified"


@pytest.mark.parametrize("name", spec.CONTRACT)
@FUZZ
@given(data=st.data())
def test_random_calls_agree_or_raise_documented_errors(name, data):
    args = data.draw(valid_call(name), label="args")
    assert list(args) == list(inspect.signature(getattr(kernels, name)).parameters)
    found = data.draw(faults(args), label="faults")
    check(name, args, found)


@pytest.mark.skipif(
    os.environ.get("NUMBA_BOUNDSCHECK") != "1", reason="only meaningful under NUMBA_BOUNDSCHECK=1"
)
def test_boundscheck_is_live():
    # Unchecked ops with a label out of range: with bounds checks compiled in
    # this raises IndexError; code served from a cache built without them
    # would read out of bounds instead.
    logits = np.zeros((2, 3), np.float64)
    y = np.array([0, 3], np.int64)
    with pytest.raises(IndexError):
        kernels.ops.softmax_cross_entropy(logits, y, np.empty_like(logits), 0.5)
