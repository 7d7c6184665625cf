"""The compiled epoch loop (`fastnn.engine.numba_epoch`) against the per-batch Python
loop it replaces, and uint8 pixels against their float copy.

`EpochRunner(compiled=False)` runs the same Numba step and update kernels from
a Python loop over batches; the compiled loop must give the same weights. The
NumPy backend's readable loop must agree with both to rounding.
"""

import numpy as np
import pytest

from fastnn import MLPClassifier, MLPRegressor
from fastnn.engine import epoch_loop

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CASES = {
    # name: (estimator parameters, data shape (n, k)); narrow = the single pass
    "sgd-nesterov-l2": (
        dict(
            solver="sgd",
            momentum=0.9,
            nesterovs_momentum=True,
            alpha=1e-3,
            hidden_layer_sizes=(24, 12),
        ),
        (300, 20),
    ),
    "sgd-momentum": (
        dict(solver="sgd", momentum=0.5, nesterovs_momentum=False, hidden_layer_sizes=(24,)),
        (300, 20),
    ),
    "sgd-plain": (
        dict(solver="sgd", momentum=0.0, activation="tanh", hidden_layer_sizes=(40,)),
        (300, 20),
    ),
    "adam-l2": (
        dict(solver="adam", alpha=1e-2, activation="logistic", hidden_layer_sizes=(33,)),
        (300, 20),
    ),
    "narrow-adam": (dict(solver="adam", hidden_layer_sizes=(10,)), (300, 20)),
    "narrow-full-batch": (
        dict(solver="sgd", momentum=0.0, hidden_layer_sizes=(10,), batch_size=300, shuffle=False),
        (300, 20),
    ),
}


def data(shape, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random(shape)
    y = (X[:, :3].sum(axis=1) * 3).astype(int) % 4
    return X, y


def fit(params, X, y, backend, dtype, compiled=True, monkeypatch=None, estimator=MLPClassifier):
    if not compiled:
        init = epoch_loop.EpochRunner.__init__
        monkeypatch.setattr(
            epoch_loop.EpochRunner,
            "__init__",
            lambda self, *a, **k: init(self, *a, **{**k, "compiled": False}),
        )
    model = estimator(
        **{
            "batch_size": 32,
            "max_iter": 3,
            "random_state": 0,
            "tol": 0.0,
            "n_iter_no_change": 100,
            **params,
        },
        backend=backend,
        dtype=dtype,
    )
    model.fit(X, y)
    if not compiled:
        monkeypatch.undo()
    return model


def assert_same(a, b, rtol, atol):
    for got, want in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=rtol)


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_epochs_equal_the_per_batch_loop(case, dtype, monkeypatch):
    params, shape = CASES[case]
    X, y = data(shape)
    X = X.astype(dtype)
    compiled = fit(params, X, y, "numba", dtype)
    stepwise = fit(params, X, y, "numba", dtype, compiled=False, monkeypatch=monkeypatch)
    # the same kernels in the same order: equal to the last bit
    assert_same(compiled, stepwise, rtol=0, atol=0)
    assert compiled.history_["train_accuracy"] == stepwise.history_["train_accuracy"]
    reference = fit(params, X, y, "numpy", dtype)
    # the NumPy loop differs in summation order only
    tol = 2e-4 if dtype == np.float32 else 1e-10
    assert_same(compiled, reference, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", ["sgd-plain", "narrow-adam", "narrow-full-batch"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_uint8_pixels_train_like_their_float_copy(case, backend, dtype):
    # bytes kept as bytes, scaled by input_scale on the fly, against X / 255 as floats
    params, shape = CASES[case]
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    y = (pixels[:, :3].sum(axis=1) // 200) % 4
    as_bytes = fit({**params, "input_scale": 1 / 255}, pixels, y, backend, dtype)
    as_float = fit(params, (pixels / 255).astype(dtype), y, backend, dtype)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    assert_same(as_bytes, as_float, rtol=tol, atol=tol)
    np.testing.assert_allclose(
        as_bytes.predict_proba(pixels),
        as_float.predict_proba((pixels / 255).astype(dtype)),
        rtol=tol,
        atol=tol,
    )


@pytest.mark.parametrize("case", ["adam-l2", "narrow-adam"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_uint8_x_means_its_values_by_default_and_trains_in_float64(case, backend):
    # scikit-learn's reading of uint8 X: the float64 values 0..255, here still
    # read as bytes (no float copy); input_scale=1 multiplies exactly
    params, shape = CASES[case]
    rng = np.random.default_rng(2)
    X = rng.integers(0, 256, shape, dtype=np.uint8)
    y = (X[:, :3].sum(axis=1) // 200) % 4
    as_bytes = fit(params, X, y, backend, None)
    as_float = fit(params, X.astype(np.float64), y, backend, None)
    assert as_bytes.coefs_[0].dtype == np.float64
    assert_same(as_bytes, as_float, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        as_bytes.predict_proba(X), as_float.predict_proba(X.astype(np.float64)), rtol=1e-10
    )


def test_fit_does_not_copy_a_c_contiguous_array_of_its_dtype(monkeypatch):
    # X reaches the epoch runner as the caller's own array (no conversion pass)
    seen = []
    init = epoch_loop.EpochRunner.__init__

    def spy(self, step, optimizer, params, grads, X, *args, **kwargs):
        seen.append(X)
        init(self, step, optimizer, params, grads, X, *args, **kwargs)

    monkeypatch.setattr(epoch_loop.EpochRunner, "__init__", spy)
    X, y = data((200, 8))
    for array in (X.astype(np.float32), (X * 255).astype(np.uint8)):
        MLPClassifier((8,), max_iter=1, dtype="float32").fit(array, y)
        assert seen[-1] is array or np.shares_memory(seen[-1], array)
    # a float64 X for a float32 model is converted, once
    MLPClassifier((8,), max_iter=1, dtype="float32").fit(X, y)
    assert seen[-1].dtype == np.float32 and not np.shares_memory(seen[-1], X)


def test_regressor_compiled_epochs_equal_the_per_batch_loop(dtype, monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.random((250, 6)).astype(dtype)
    Y = np.column_stack([X @ rng.random(6), np.sin(X[:, 0])]).astype(dtype)
    params = dict(solver="sgd", hidden_layer_sizes=(16,), learning_rate_init=0.01)
    a = fit(params, X, Y, "numba", dtype, estimator=MLPRegressor)
    b = fit(
        params,
        X,
        Y,
        "numba",
        dtype,
        compiled=False,
        monkeypatch=monkeypatch,
        estimator=MLPRegressor,
    )
    assert_same(a, b, rtol=0, atol=0)
