"""The activation and output-head kernels against the NumPy reference and their
definitions, in float32 and float64: every activation, the three heads, the
caller's loss normaliser, extreme logits, aliasing."""

import numpy as np
import pytest

from fastnn import kernels, reference
from fastnn.contract.tables import ACTIVATIONS
from tests.helpers import close

SHAPES = [(1, 1), (1, 10), (2, 3), (7, 5), (129, 10), (5, 257)]


def extreme(rng, n, m, dtype):
    """Logits mixing ordinary values with +-1000, +-88 (float32 exp's edge) and ties."""
    z = 5 * rng.standard_normal((n, m))
    picks = rng.random((n, m))
    z[picks < 0.15] = 1000.0
    z[(picks >= 0.15) & (picks < 0.3)] = -1000.0
    z[(picks >= 0.3) & (picks < 0.35)] = 88.5
    z[(picks >= 0.35) & (picks < 0.4)] = -88.5
    return z.astype(dtype)


def definition(activation, z):
    z = z.astype(np.float64)
    return {
        "identity": z,
        "logistic": 0.5 * (1 + np.tanh(z / 2)),
        "tanh": np.tanh(z),
        "relu": np.maximum(z, 0),
    }[activation]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("n,m", SHAPES)
def test_activation_forward(rng, dtype, activation, n, m):
    z = extreme(rng, n, m, dtype)
    got = kernels.activation_forward(z, activation)
    assert got.dtype == dtype and np.isfinite(got).all()
    close(got, reference.activation_forward(z, activation), dtype, scale=1.0)
    close(got, definition(activation, z), dtype, scale=1.0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("n,m", SHAPES)
def test_activation_backward_from_the_output(rng, dtype, activation, n, m):
    z = extreme(rng, n, m, dtype)
    a = reference.activation_forward(z, activation)
    dout = rng.standard_normal((n, m)).astype(dtype)
    got = kernels.activation_backward(dout, a, activation)
    close(got, reference.activation_backward(dout, a, activation), dtype, scale=np.abs(dout).max())
    # the derivative of the definition, by central differences in float64
    z64 = np.clip(z.astype(np.float64), -30, 30)
    if activation != "relu":  # relu's kink: checked as a gate below
        h = 1e-6
        slope = (definition(activation, z64 + h) - definition(activation, z64 - h)) / (2 * h)
        a64 = definition(activation, z64).astype(dtype)
        expected = dout * slope
        np.testing.assert_allclose(
            kernels.activation_backward(dout, a64, activation),
            expected,
            atol=1e-6 if dtype == np.float64 else 2e-5 * np.abs(dout).max(),
            rtol=1e-4,
        )
    else:
        np.testing.assert_array_equal(got, np.where(z > 0, dout, 0))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_linear_activation_forward(rng, dtype, activation):
    x = rng.standard_normal((13, 31)).astype(dtype)
    W = rng.standard_normal((31, 7)).astype(dtype)
    b = rng.standard_normal(7).astype(dtype)
    got = kernels.linear_activation_forward(x, W, b, activation)
    close(
        got,
        reference.linear_activation_forward(x, W, b, activation),
        dtype,
        scale=np.abs(x).sum(1).max() * np.abs(W).max(),
        terms=31,
    )
    if activation == "relu":
        np.testing.assert_array_equal(got, kernels.linear_relu_forward(x, W, b))
    if activation == "identity":
        np.testing.assert_array_equal(got, kernels.linear_forward(x, W, b))


@pytest.mark.parametrize("n,m", SHAPES)
def test_binary_cross_entropy(rng, dtype, n, m):
    z = extreme(rng, n, m, dtype)
    Y = rng.integers(0, 2, (n, m)).astype(dtype)
    loss, probs = kernels.binary_cross_entropy(z, Y)
    ref_loss, ref_probs = reference.binary_cross_entropy(z, Y)
    assert isinstance(loss, float) and np.isfinite(loss)
    close(probs, ref_probs, dtype)
    close(probs, definition("logistic", z), dtype)
    # the definition in float64: -[Y log p + (1 - Y) log(1 - p)], with log p
    # written as -log(1 + exp(-z)) so that +-1000 stays finite
    z64 = z.astype(np.float64)
    per_entry = Y * np.logaddexp(0, -z64) + (1 - Y) * np.logaddexp(0, z64)
    scale = np.abs(z).max()
    close(loss, per_entry.sum() / n, dtype, scale=scale, terms=m)
    close(loss, ref_loss, dtype, scale=scale, terms=m)


@pytest.mark.parametrize("n,m", SHAPES)
def test_binary_cross_entropy_backward(rng, dtype, n, m):
    probs = kernels.activation_forward(extreme(rng, n, m, dtype), "logistic")
    Y = rng.integers(0, 2, (n, m)).astype(dtype)
    got = kernels.binary_cross_entropy_backward(probs, Y)
    close(got, reference.binary_cross_entropy_backward(probs, Y), dtype)
    close(got, (probs.astype(np.float64) - Y) / n, dtype)


@pytest.mark.parametrize("n,m", SHAPES)
def test_squared_error_and_backward(rng, dtype, n, m):
    pred = (10 * rng.standard_normal((n, m))).astype(dtype)
    Y = (10 * rng.standard_normal((n, m))).astype(dtype)
    loss = kernels.squared_error(pred, Y)
    diff = pred.astype(np.float64) - Y
    close(loss, 0.5 * np.sum(diff**2) / n, dtype, scale=np.max(diff**2), terms=n * m)
    close(loss, reference.squared_error(pred, Y), dtype, scale=np.max(diff**2), terms=n * m)
    got = kernels.squared_error_backward(pred, Y)
    close(got, reference.squared_error_backward(pred, Y), dtype, scale=np.abs(diff).max())
    close(got, diff / n, dtype, scale=np.abs(diff).max())


def test_one_output_squared_error_is_scikit_learns_half_mse(rng):
    from sklearn.neural_network._base import squared_loss

    pred = rng.standard_normal((50, 1))
    Y = rng.standard_normal((50, 1))
    assert kernels.squared_error(pred, Y) == pytest.approx(squared_loss(Y, pred), rel=1e-12)


def test_binary_cross_entropy_is_scikit_learns_binary_log_loss(rng):
    from sklearn.neural_network._base import binary_log_loss

    z = rng.standard_normal((40, 3))
    Y = rng.integers(0, 2, (40, 3)).astype(np.float64)
    loss, probs = kernels.binary_cross_entropy(z, Y)
    assert loss == pytest.approx(binary_log_loss(Y, probs), rel=1e-10)


@pytest.mark.parametrize(
    "name,target",
    [
        ("softmax_cross_entropy", "labels"),
        ("binary_cross_entropy", "binary"),
        ("squared_error", "real"),
    ],
)
def test_losses_take_the_callers_normaliser(rng, dtype, name, target):
    # a slice of a sharded batch: scale = 1 / global n instead of 1 / local n
    z = rng.standard_normal((6, 4)).astype(dtype)
    Y = (
        rng.integers(0, 4, 6)
        if target == "labels"
        else rng.integers(0, 2, (6, 4)).astype(dtype)
        if target == "binary"
        else rng.standard_normal((6, 4)).astype(dtype)
    )
    for backend in (kernels, reference):
        loss = getattr(backend, name)(z, Y)
        scaled = getattr(backend, name)(z, Y, scale=1 / 20)
        mean = loss[0] if isinstance(loss, tuple) else loss
        part = scaled[0] if isinstance(scaled, tuple) else scaled
        assert part == pytest.approx(mean * 6 / 20, rel=1e-6)
        backward = getattr(backend, name + "_backward")
        first = kernels.softmax(z) if target == "labels" else z
        np.testing.assert_allclose(
            backward(first, Y, scale=1 / 20), backward(first, Y) * 6 / 20, rtol=1e-5
        )
    with pytest.raises(ValueError, match="scale"):
        getattr(kernels, name)(z, Y, scale=-1.0)


@pytest.mark.parametrize("name", ["binary_cross_entropy_backward", "squared_error_backward"])
def test_backward_may_write_over_its_input(rng, dtype, name):
    a = rng.random((5, 3)).astype(dtype)
    Y = rng.integers(0, 2, (5, 3)).astype(dtype)
    expected = getattr(reference, name)(a, Y)
    for backend in (kernels, reference):
        buf = a.copy()
        assert getattr(backend, name)(buf, Y, out=buf) is buf
        close(buf, expected, dtype)


def test_binary_cross_entropy_probs_may_overwrite_the_logits(rng, dtype):
    z = extreme(rng, 6, 4, dtype)
    Y = rng.integers(0, 2, (6, 4)).astype(dtype)
    expected = reference.binary_cross_entropy(z, Y)
    for backend in (kernels, reference):
        buf = z.copy()
        loss, probs = backend.binary_cross_entropy(buf, Y, probs_out=buf)
        assert probs is buf
        close(loss, expected[0], dtype, scale=1000.0)
        close(probs, expected[1], dtype)


@pytest.mark.parametrize(
    "args,error,match",
    [
        (("z", "softplus"), ValueError, "activation must be one of"),
        (("z", 3), ValueError, "activation"),
    ],
)
def test_unknown_activation_is_named(args, error, match):
    z = np.zeros((2, 2))
    for backend in (kernels, reference):
        with pytest.raises(error, match=match):
            backend.activation_forward(z, args[1])


def test_float_targets_are_checked(dtype):
    z = np.zeros((3, 2), dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    for backend in (kernels, reference):
        with pytest.raises(ValueError, match="Y must have shape"):
            backend.binary_cross_entropy(z, np.zeros((3, 3), dtype))
        with pytest.raises(TypeError, match="Y has dtype"):
            backend.squared_error(z, np.zeros((3, 2), other))
        with pytest.raises(TypeError, match="Y must be a numpy.ndarray"):
            backend.squared_error_backward(z, [[0, 0]] * 3)


@pytest.mark.parametrize("head", ["softmax", "logistic"])
def test_the_training_heads_flush_subnormal_gradients_to_zero(dtype, head):
    # A confident row's probabilities underflow to subnormals, which the backward
    # pass's products would carry (slowly); the heads write 0 there instead.
    from fastnn.contract import numba_math

    tiny = np.finfo(dtype).tiny
    far = -95.0 if dtype == np.float32 else -720.0  # exp(far) is subnormal
    z = np.array([[0.0, far, -3.0], [far, 0.0, -1.0]], dtype)
    y = np.array([0, 1], np.intp)
    Y = np.array([[1, 0, 0], [0, 1, 0]], dtype)
    sw = np.empty(0, np.float64)
    db, acc = np.zeros(3, dtype), np.zeros(3)
    z64 = z.astype(np.float64)
    if head == "softmax":
        e = np.exp(z64 - z64.max(axis=1, keepdims=True))
        want = e / e.sum(axis=1, keepdims=True) - np.eye(3)[y]
        numba_math.head_softmax(z, y, np.empty((0, 3), dtype), sw, 1.0, db, acc)
    else:
        want = np.exp(z64 - np.logaddexp(0, z64)) - Y  # the sigmoid, without overflow
        numba_math.head_logistic(z, y, Y, sw, 1.0, db, acc)
    assert not ((z != 0) & (np.abs(z) < tiny)).any(), z
    assert z[0, 1] == 0 and z[1, 0] == 0
    # the other entries are the gradient as before
    normal = np.abs(want) >= tiny
    np.testing.assert_allclose(z[normal], want[normal], rtol=1e-5)
