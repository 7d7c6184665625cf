"""Bad arguments to the kernel wrappers: a clear error naming the argument,
raised in Python before any jitted code runs, the same from both backends."""

import numpy as np
import pytest

f32, f64 = np.float32, np.float64


def arr(*shape, dtype=f64):
    return np.ones(shape, dtype=dtype)


# (indptr, indices, data) of a 2 x 3 X with one entry per row
COMPACT = (np.array([0, 1, 2]), np.array([0, 2], np.uint16), np.array([3, 5], np.uint8))


CASES = [
    # (function, args, kwargs, exception, words the message must contain)
    ("linear_forward", (arr(3, 4).tolist(), arr(4, 2), arr(2)), {}, TypeError, "x"),
    ("linear_forward", (arr(3, 4, dtype=np.int64), arr(4, 2), arr(2)), {}, TypeError, "x"),
    ("linear_forward", (arr(3, 4), arr(4, 2, dtype=f32), arr(2)), {}, TypeError, "W"),
    ("linear_forward", (arr(3, 4, dtype=f32), arr(4, 2, dtype=f32), arr(2)), {}, TypeError, "b"),
    ("linear_forward", (arr(3, 4), arr(5, 2), arr(2)), {}, ValueError, "W"),
    ("linear_forward", (arr(3, 4), arr(4, 2), arr(3)), {}, ValueError, "b"),
    ("linear_forward", (arr(4), arr(4, 2), arr(2)), {}, ValueError, "x"),
    ("linear_forward", (arr(0, 4), arr(4, 2), arr(2)), {}, ValueError, "x"),
    ("linear_forward", (arr(3, 8)[:, ::2], arr(4, 2), arr(2)), {}, ValueError, "contiguous"),
    ("linear_forward", (arr(3, 4), arr(4, 2), arr(2)), {"out": arr(3, 3)}, ValueError, "out"),
    (
        "linear_forward",
        (arr(3, 4), arr(4, 2), arr(2)),
        {"out": arr(3, 2, dtype=f32)},
        TypeError,
        "out",
    ),
    (
        "linear_relu_forward",
        (arr(3, 4), arr(4, 2), arr(2)),
        {"out": arr(2, 3).T},
        ValueError,
        "out",
    ),
    ("relu_forward", (arr(3, 4),), {"out": arr(4, 3)}, ValueError, "out"),
    ("relu_backward", (arr(3, 4), arr(3, 5)), {}, ValueError, "a"),
    ("relu_backward", (arr(3, 4), arr(3, 4, dtype=f32)), {}, TypeError, "a"),
    ("softmax", (arr(3),), {}, ValueError, "z"),
    ("softmax_cross_entropy", (arr(3, 4), np.array([0, 1, 4])), {}, ValueError, "y"),
    ("softmax_cross_entropy", (arr(3, 4), np.array([0, -1, 2])), {}, ValueError, "y"),
    ("softmax_cross_entropy", (arr(3, 4), np.array([0.0, 1.0, 2.0])), {}, TypeError, "y"),
    ("softmax_cross_entropy", (arr(3, 4), np.array([0, 1])), {}, ValueError, "y"),
    ("softmax_cross_entropy_backward", (arr(3, 4), np.array([0, 1, 9])), {}, ValueError, "y"),
    ("linear_backward", (arr(3, 2), arr(4, 4), arr(4, 2)), {}, ValueError, "x"),
    ("linear_backward", (arr(3, 2), arr(3, 4), arr(4, 3)), {}, ValueError, "W"),
    ("linear_backward", (arr(3, 2), arr(3, 4), arr(4, 2)), {"dW": arr(2, 4)}, ValueError, "dW"),
    ("linear_backward", (arr(3, 2), arr(3, 4), arr(4, 2)), {"db": arr(3)}, ValueError, "db"),
    (
        "linear_backward",
        (arr(3, 2), arr(3, 4), arr(4, 2)),
        {"dx": arr(3, 4), "need_dx": False},
        ValueError,
        "dx",
    ),
    ("sgd_update", (arr(3), arr(4), 0.1), {}, ValueError, "grad"),
    ("sgd_update", (arr(3), arr(3), -0.1), {}, ValueError, "lr"),
    ("sgd_update", (arr(3), arr(3), "0.1"), {}, TypeError, "lr"),
    ("sgd_update", (arr(3), arr(3), 0.1), {"momentum": 0.9}, ValueError, "velocity"),
    (
        "sgd_update",
        (arr(3), arr(3), 0.1),
        {"velocity": arr(3, dtype=f32), "momentum": 0.9},
        TypeError,
        "velocity",
    ),
    ("adam_update", (arr(3), arr(3), arr(3), arr(3), 0, 0.1), {}, ValueError, "t"),
    ("adam_update", (arr(3), arr(3), arr(3), arr(2), 1, 0.1), {}, ValueError, "v"),
    ("adam_update", (arr(3), arr(3), arr(3), arr(3), 1, 0.1), {"beta1": 1.0}, ValueError, "beta1"),
    ("adam_update", (arr(3), arr(3), arr(3), arr(3), 1, 0.1), {"eps": 0.0}, ValueError, "eps"),
    ("l2_penalty", (arr(3, 2), arr(2, 3), 0.1), {}, ValueError, "dW"),
    # the compact first layer: one stored entry per row of a 2 x 3 X
    ("compact_linear_forward", (*COMPACT, arr(2, 2), arr(2)), {}, ValueError, "indices"),
    ("compact_linear_forward", (*COMPACT, arr(3, 2), arr(3)), {}, ValueError, "b"),
    (
        "compact_linear_forward",
        (COMPACT[0].astype(np.uint32), *COMPACT[1:], arr(3, 2), arr(2)),
        {},
        TypeError,
        "indptr",
    ),
    (
        "compact_linear_forward",
        (*COMPACT[:2], COMPACT[2].astype(f32), arr(3, 2), arr(2)),
        {},
        TypeError,
        "data",
    ),
    ("compact_linear_forward", (*COMPACT, arr(3, 2), arr(2)), {"rows": [0]}, TypeError, "rows"),
    ("compact_linear_forward", (*COMPACT, arr(3, 2), arr(2)), {"xs": "1"}, TypeError, "xs"),
    (
        "compact_linear_forward",
        (*COMPACT, arr(3, 2), arr(2)),
        {"out": arr(2, 2, dtype=f32)},
        TypeError,
        "out",
    ),
    ("compact_linear_backward", (*COMPACT, arr(3, 2), arr(3, 2)), {}, ValueError, "dout"),
    (
        "compact_linear_backward",
        (*COMPACT, arr(2, 2), arr(3, 2)),
        {"dW": arr(3, 2), "touched": np.zeros(3, np.int8)},
        TypeError,
        "touched",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_arguments_raise_named_errors(backend, case):
    name, args, kwargs, exception, word = case
    with pytest.raises(exception, match=rf"\b{word}\b"):
        getattr(backend, name)(*args, **kwargs)


def test_read_only_buffers_are_refused(backend):
    out = arr(3, 2)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out.*read-only"):
        backend.linear_forward(arr(3, 4), arr(4, 2), arr(2), out=out)
    param = arr(3)
    param.flags.writeable = False
    with pytest.raises(ValueError, match="param.*read-only"):
        backend.sgd_update(param, arr(3), 0.1)


def test_output_may_not_alias_a_gemm_operand(backend):
    x = arr(3, 3)
    with pytest.raises(ValueError, match="out"):
        backend.linear_forward(x, arr(3, 3), arr(3), out=x)


def test_a_refused_call_leaves_its_arguments_untouched(backend):
    param = np.arange(4.0)
    with pytest.raises(ValueError):
        backend.adam_update(param, np.ones(4), np.zeros(4), np.zeros(3), 1, 0.1)
    np.testing.assert_array_equal(param, np.arange(4.0))
