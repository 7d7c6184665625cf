"""Input validation that keeps garbage out of the jitted loops and the estimator.

Complements kernels/test_kernel_errors.py (one case per argument) with the layouts a
row-by-row loop would get wrong silently: partial overlaps, labels that alias
an output, foreign byte orders, truthy non-bools; and with the estimator's
data checks (scikit-learn's check_array behaviour).
"""

import numpy as np
import pytest

from fastnn import MLPClassifier


def ones(*shape, dtype=np.float64):
    return np.ones(shape, dtype=dtype)


# -- kernels -----------------------------------------------------------------


def test_mixed_float_dtypes_are_refused(backend):
    with pytest.raises(TypeError, match=r"\bgrad\b.*float32.*float64"):
        backend.sgd_update(ones(3), ones(3, dtype=np.float32), 0.1)
    with pytest.raises(TypeError, match=r"\bm\b"):
        backend.adam_update(ones(3), ones(3), ones(3, dtype=np.float32), ones(3), 1, 0.1)


def test_elementwise_out_may_be_the_input_but_not_a_shifted_view(backend):
    z = np.linspace(-2, 2, 12).reshape(3, 4)
    expected = np.maximum(z, 0)
    np.testing.assert_array_equal(backend.relu_forward(z, out=z), expected)
    buf = np.linspace(-2, 2, 16)
    with pytest.raises(ValueError, match="out partly overlaps z"):
        backend.relu_forward(buf[:12].reshape(3, 4), out=buf[4:].reshape(3, 4))
    with pytest.raises(ValueError, match="probs_out partly overlaps logits"):
        backend.softmax_cross_entropy(
            buf[:12].reshape(3, 4), np.zeros(3, np.int64), probs_out=buf[1:13].reshape(3, 4)
        )


def test_labels_must_not_share_memory_with_the_output(backend):
    # a label overwritten while its row is written would index out of bounds
    holder = np.zeros((2, 2))
    labels = holder.view(np.int64).ravel()[:2]
    with pytest.raises(ValueError, match=r"out must not share memory with y"):
        backend.softmax_cross_entropy_backward(np.full((2, 2), 0.5), labels, out=holder)


def test_written_arrays_must_not_overlap(backend):
    param = ones(4)
    with pytest.raises(ValueError, match="param must not share memory with grad"):
        backend.sgd_update(param, param, 0.1)
    state = ones(4)
    with pytest.raises(ValueError, match="m must not share memory with v"):
        backend.adam_update(ones(4), ones(4), state, state, 1, 0.1)
    dW = ones(2, 2)
    with pytest.raises(ValueError, match="dW must not share memory with dx"):
        backend.linear_backward(ones(2, 2), ones(2, 2), ones(2, 2), dx=dW, dW=dW)


def test_labels_of_foreign_byte_order_are_refused(backend):
    y = np.array([0, 1], dtype=">i8")
    with pytest.raises(TypeError, match="y must be in native byte order"):
        backend.softmax_cross_entropy(ones(2, 3), y)


@pytest.mark.parametrize("value", [np.array([True, False]), "yes", None])
def test_flags_must_be_bools(backend, value):
    with pytest.raises(TypeError, match="need_dx must be a bool"):
        backend.linear_backward(ones(2, 2), ones(2, 2), ones(2, 2), need_dx=value)
    with pytest.raises(TypeError, match="nesterov must be a bool"):
        backend.sgd_update(ones(2), ones(2), 0.1, ones(2), 0.5, nesterov=value)


def test_step_count_must_fit_the_kernel(backend):
    with pytest.raises(ValueError, match=r"t must be in \[1, 2\*\*63\)"):
        backend.adam_update(ones(2), ones(2), ones(2), ones(2), 2**63, 0.1)
    with pytest.raises(TypeError, match=r"\bt\b"):
        backend.adam_update(ones(2), ones(2), ones(2), ones(2), 1.0, 0.1)


# -- estimator -----------------------------------------------------------------


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random((30, 4)), np.arange(30) % 3


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_X_is_refused_by_every_method(data, bad):
    X, y = data
    X_bad = X.copy()
    X_bad[2, 3] = bad
    model = MLPClassifier((3,), max_iter=1)
    with pytest.raises(ValueError, match="infinity|NaN"):
        model.fit(X_bad, y)
    with pytest.raises(ValueError, match="infinity|NaN"):
        model.partial_fit(X_bad, y, classes=[0, 1, 2])
    model.partial_fit(X, y, classes=[0, 1, 2])
    for method in (model.predict, model.predict_proba):
        with pytest.raises(ValueError, match="infinity|NaN"):
            method(X_bad)
    with pytest.raises(ValueError, match="infinity|NaN"):
        MLPClassifier((3,), max_iter=1).fit(X, y, validation_data=(X_bad, y))


def test_bad_shapes_and_labels_are_refused(data):
    X, y = data
    model = MLPClassifier((3,), max_iter=1)
    with pytest.raises(ValueError, match="2D array"):
        model.fit(X[0], y)
    with pytest.raises(ValueError, match="Multioutput target data is not supported"):
        model.fit(X, np.stack([y, y], axis=1))
    model.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"`classes=\[0, 1, 2, 3\]` is not the same"):
        model.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"labels not in classes_: \[7\]"):
        model.partial_fit(X, np.full(30, 7))
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :2], y)
    with pytest.raises(ValueError, match="minimum of 1 is required"):
        model.predict(X[:0])
