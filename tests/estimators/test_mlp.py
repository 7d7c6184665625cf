"""MLPClassifier: accuracy, scikit-learn compatibility, persistence, bad input."""

import inspect
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLP

import fastnn
from fastnn import MLPClassifier
from fastnn.datasets import load_digits

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    return load_digits(dtype="float32")


@pytest.fixture(scope="module")
def fitted(digits):
    X, _, y, _ = digits
    return MLPClassifier((64,), max_iter=30, batch_size=32, random_state=0).fit(X, y)


def test_digits_accuracy_numba(digits, fitted):
    _, X_test, _, y_test = digits
    assert fitted.score(X_test, y_test) >= 0.95


@pytest.mark.parametrize("solver,lr", [("sgd", 0.1), ("adam", 1e-3)])
def test_digits_accuracy_both_solvers_and_backends(digits, solver, lr):
    X, X_test, y, y_test = digits
    for backend in ("numpy", "numba"):
        model = MLPClassifier(
            (64,),
            solver=solver,
            learning_rate_init=lr,
            max_iter=30,
            batch_size=32,
            random_state=0,
            backend=backend,
        )
        assert model.fit(X, y) is model
        assert model.score(X_test, y_test) >= 0.95, (solver, backend)


def test_load_digits_is_scaled_split_and_typed():
    X_train, X_test, y_train, y_test = load_digits(dtype="float64")
    assert X_train.dtype == np.float64 and X_train.flags.c_contiguous
    assert X_train.min() >= 0 and X_train.max() == 1
    assert len(X_train) + len(X_test) == 1797
    # stratified: every class is in both parts in about the same proportion
    assert np.all(np.bincount(y_test) >= 30)
    again = load_digits(dtype="float64")
    np.testing.assert_array_equal(again[1], X_test)  # seeded


def test_parameter_names_follow_scikit_learn():
    ours = inspect.signature(MLPClassifier).parameters
    theirs = inspect.signature(SklearnMLP).parameters
    for name in ours:
        if name in ("backend", "dtype", "input_scale", "dropout", "skip_zeros", "class_weight"):
            continue
        assert name in theirs, name
        assert ours[name].default == theirs[name].default, name


def test_fitted_attributes(digits, fitted):
    X, _, y, _ = digits
    assert list(fitted.classes_) == list(range(10))
    assert fitted.n_features_in_ == 64
    assert [W.shape for W in fitted.coefs_] == [(64, 64), (64, 10)]
    assert [b.shape for b in fitted.intercepts_] == [(64,), (10,)]
    assert all(W.dtype == np.float32 for W in fitted.coefs_ + fitted.intercepts_)
    assert fitted.n_iter_ == len(fitted.loss_curve_) <= 30
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    proba = fitted.predict_proba(X[:7])
    assert proba.shape == (7, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(fitted.classes_[proba.argmax(1)], fitted.predict(X[:7]))


def test_clone_and_get_params_round_trip():
    model = MLPClassifier((5, 3), solver="sgd", backend="numpy", dtype="float64")
    twin = clone(model)
    assert twin.get_params() == model.get_params()


def test_string_labels_and_batch_of_one(digits):
    X, _, y, _ = digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    model = MLPClassifier((16,), max_iter=2, batch_size=1, random_state=0)
    model.fit(X[:200], names[y[:200]])
    assert set(model.predict(X[:20])) <= set(names)
    assert list(model.classes_) == sorted(names)


def test_full_batch_gradient_descent(digits):
    X, _, y, _ = digits
    model = MLPClassifier(
        (16,),
        solver="sgd",
        momentum=0.0,
        batch_size=10**6,
        learning_rate_init=0.5,
        max_iter=20,
        random_state=0,
        tol=0,
    )
    model.fit(X, y)
    # deterministic full-batch descent with a modest step lowers the loss every epoch
    assert np.all(np.diff(model.loss_curve_) < 0)


def test_same_seed_same_weights(digits):
    X, _, y, _ = digits
    a = MLPClassifier((16,), max_iter=2, random_state=3).fit(X, y)
    b = MLPClassifier((16,), max_iter=2, random_state=3).fit(X, y)
    c = MLPClassifier((16,), max_iter=2, random_state=4).fit(X, y)
    for wa, wb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_partial_fit_continues_training(digits):
    X, X_test, y, y_test = digits
    model = MLPClassifier((32,), random_state=0)
    with pytest.raises(ValueError, match="classes"):
        model.partial_fit(X, y)
    model.partial_fit(X, y, classes=np.arange(10))
    first = model.score(X_test, y_test)
    for _ in range(10):
        model.partial_fit(X, y)
    assert model.n_iter_ == 11
    assert model.score(X_test, y_test) > first
    with pytest.raises(ValueError, match="not in classes_"):
        model.partial_fit(X[:5], np.array([0, 1, 2, 3, 11]))


def test_early_stopping_records_validation_scores(digits):
    X, _, y, _ = digits
    model = MLPClassifier(
        (32,),
        early_stopping=True,
        max_iter=15,
        n_iter_no_change=3,
        learning_rate_init=0.01,
        random_state=0,
    ).fit(X, y)
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.best_validation_score_ > 0.9


def test_convergence_warning_when_max_iter_reached(digits):
    X, _, y, _ = digits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MLPClassifier((8,), max_iter=1, random_state=0).fit(X[:100], y[:100])
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip(tmp_path, digits, dtype):
    X, X_test, y, _ = digits
    names = np.array(list("abcdefghij"))
    model = MLPClassifier((12, 7), max_iter=3, random_state=0, dtype=dtype, backend="numpy").fit(
        X, names[y]
    )
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastnn.load(path)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    np.testing.assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    for a, b in zip(loaded.coefs_ + loaded.intercepts_, model.coefs_ + model.intercepts_):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert loaded.loss_curve_ == model.loss_curve_
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


# -- bad input: clear errors naming the argument -----------------------------


@pytest.mark.parametrize(
    "params,match",
    [
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": (8, 2.5)}, "hidden_layer_sizes"),
        ({"activation": "softplus"}, "activation"),
        ({"solver": "newton"}, "solver"),
        ({"learning_rate": "optimal"}, "learning_rate"),
        ({"power_t": -0.5}, "power_t"),
        ({"n_iter_no_change": 0}, "n_iter_no_change"),
        ({"max_fun": 0}, "max_fun"),
        ({"warm_start": "yes"}, "warm_start"),
        ({"backend": "cuda"}, "backend"),
        ({"dtype": "float16"}, "dtype"),
        ({"dtype": "floaty"}, "dtype"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate_init": 0.0}, "learning_rate_init"),
        ({"max_iter": 0}, "max_iter"),
        ({"alpha": -1.0}, "alpha"),
        ({"momentum": 1.5}, "momentum"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_bad_parameters_are_named(params, match):
    X = np.random.default_rng(0).random((20, 4))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**params).fit(X, y)


def _x_kinds():
    X = np.random.default_rng(0).random((40, 4))
    return {
        "float64": X,
        "float32": X.astype(np.float32),
        "float16": X.astype(np.float16),
        "uint8": (X * 255).astype(np.uint8),
        "int64": (X * 10).astype(np.int64),
        "bool": X > 0.5,
        "list": X.tolist(),
        "frame float64": pd.DataFrame(X, columns=list("abcd")),
        "frame float32": pd.DataFrame(X.astype(np.float32), columns=list("abcd")),
        "frame mixed": pd.DataFrame({"a": X[:, 0], "b": X[:, 1].astype(np.float32)}),
        "csr float32": sp.csr_matrix(X.astype(np.float32)),
        "csr float64": sp.csr_matrix(X),
    }


X_KINDS = _x_kinds()


@pytest.mark.parametrize("kind", sorted(X_KINDS))
def test_dtype_none_trains_in_the_dtype_scikit_learn_picks_for_x(kind):
    X = X_KINDS[kind]
    y = np.arange(40) % 3
    theirs = SklearnMLP((3,), max_iter=2).fit(X, y)
    ours = MLPClassifier((3,), max_iter=2).fit(X, y)
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype, kind
    assert ours.predict_proba(X).dtype == theirs.predict_proba(X).dtype
    # a forced dtype wins over X's
    for forced in ("float32", "float64"):
        model = MLPClassifier((3,), max_iter=2, dtype=forced).fit(X, y)
        assert all(a.dtype == forced for a in model.coefs_ + model.intercepts_)


def test_dtype_none_follows_each_fit_and_keeps_the_weights_dtype_when_continuing():
    X = np.random.default_rng(0).random((40, 4))
    y = np.arange(40) % 3
    model = MLPClassifier((3,), max_iter=2, random_state=0)
    assert model.fit(X.astype(np.float32), y).coefs_[0].dtype == np.float32
    assert model.fit(X, y).coefs_[0].dtype == np.float64  # a new fit takes the new X's
    model = MLPClassifier((3,), max_iter=2).partial_fit(X.astype(np.float32), y, classes=[0, 1, 2])
    model.partial_fit(X, y)  # float64 X read into the float32 model
    model.set_params(warm_start=True).fit(X, y)
    assert all(a.dtype == np.float32 for a in model.coefs_ + model.intercepts_)
    assert model.predict_proba(X).dtype == np.float32


def test_bad_data_is_rejected():
    rng = np.random.default_rng(0)
    X = rng.random((20, 4))
    y = np.arange(20) % 2
    model = MLPClassifier((3,), max_iter=1)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(X_nan, y)
    with pytest.raises(ValueError, match="different numbers of samples"):
        model.fit(X, y[:-1])
    # one class trains, as in scikit-learn, and predicts that class
    np.testing.assert_array_equal(model.fit(X, np.full(20, 7)).predict(X[:3]), [7, 7, 7])
    with pytest.raises(ValueError):
        model.fit(X, rng.random(20))  # continuous targets
    with pytest.raises(ValueError):
        model.fit(np.empty((0, 4)), np.empty(0))
    model.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])


def _after_fit_inputs(rng):
    X = rng.random((6, 4)) * 3
    return {
        "float64": X,
        "float32": X.astype(np.float32),
        "fortran": np.asfortranarray(X),
        "int": (X * 10).astype(np.int64),
        "bool": X > 1,
        "uint8": (X * 80).astype(np.uint8),
        "uint8 fortran": np.asfortranarray((X * 80).astype(np.uint8)),
        "strided": X[::2],
        "float16": X.astype(np.float16),
        "list": X.tolist(),
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inputs_after_fit_are_checked_as_scikit_learn_checks_them(dtype):
    # partial_fit and predict take a quick path for plain arrays (validate_X):
    # the same array, dtype and layout as scikit-learn's validate_data gives
    from sklearn.utils.validation import validate_data

    from fastnn.estimators.validation import validate_X

    rng = np.random.default_rng(0)
    model = MLPClassifier((3,), max_iter=1, dtype=dtype).fit(
        rng.random((20, 4)), np.arange(20) % 3
    )
    for name, X in _after_fit_inputs(rng).items():
        ours = validate_X(model, X, reset=False)
        keep = isinstance(X, np.ndarray) and X.dtype == np.uint8
        theirs = validate_data(
            model, X, reset=False, order="C", dtype=None if keep else model._dtype
        )
        assert ours.dtype == theirs.dtype and ours.flags.c_contiguous, name
        np.testing.assert_array_equal(ours, theirs, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bad_inputs_after_fit_get_scikit_learn_messages(dtype):
    rng = np.random.default_rng(0)
    X, y = rng.random((20, 4)), np.arange(20) % 3
    model = MLPClassifier((3,), max_iter=1, dtype=dtype).fit(X, y)
    bad = {
        "Input X contains NaN": np.where(X > 0.9, np.nan, X),
        "Input X contains infinity": np.where(X > 0.9, np.inf, X),
        "X has 3 features, but MLPClassifier is expecting 4": X[:, :3],
        "Expected 2D array, got 1D array": X[0],
        "Found array with 0 sample": X[:0],
        "Complex data not supported": X + 1j,
    }
    if dtype == "float32":
        bad["Input X contains infinity or a value too large for dtype('float32')"] = X * 1e300
    for message, X_bad in bad.items():
        for call in (model.predict, lambda X_: model.partial_fit(X_, y[: len(X_)])):
            with pytest.raises(ValueError, match=re.escape(message)):
                call(X_bad)
    with pytest.raises(ValueError, match=re.escape("y holds labels not in classes_: [7]")):
        model.partial_fit(X, np.where(y == 2, 7, y))
    with pytest.raises(ValueError, match="Unknown label type"):
        model.partial_fit(X, rng.random(20))  # continuous floats: the full check
    frame = pd.DataFrame(X, columns=list("abcd"))
    named = MLPClassifier((3,), max_iter=1, dtype=dtype).fit(frame, y)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        named.predict(X)


def test_predict_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MLPClassifier().predict(np.zeros((1, 3)))


def test_get_backend():
    assert fastnn.get_backend("numba") is fastnn.kernels
    assert fastnn.get_backend("numpy") is fastnn.reference
    with pytest.raises(ValueError, match="backend"):
        fastnn.get_backend("torch")


def test_ctrl_c_stops_after_the_current_batch(digits):
    import os
    import signal

    X, _, y, _ = digits

    def press_ctrl_c(model, record):
        if record["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # handled as a flag, not raised here

    model = MLPClassifier((16,), max_iter=10, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epoch_callback=press_ctrl_c)
    # the epoch the interrupt fell into is discarded: the model is that of epoch 2
    reference = MLPClassifier((16,), max_iter=2, random_state=0).fit(X, y)
    assert model.n_iter_ == 2
    for a, b in zip(model.coefs_, reference.coefs_):
        np.testing.assert_array_equal(a, b)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_public_names():
    assert set(fastnn.__all__) <= set(dir(fastnn))
    from fastnn import errors
    from fastnn.estimators import mlp

    assert fastnn.DivergenceError is mlp.DivergenceError is errors.DivergenceError
    assert issubclass(fastnn.DivergenceError, FloatingPointError)
    # what scikit-learn raises for non-finite weights
    assert issubclass(fastnn.DivergenceError, ValueError)
    assert fastnn.from_sklearn is mlp.from_sklearn and fastnn.load is mlp.load


@pytest.mark.parametrize("method", ["partial_fit", "fit"])
def test_training_on_after_early_stopping_is_switched_off(method):
    # the early-stopped fit leaves best_loss_ None (as scikit-learn's); the next
    # one, without early stopping, starts the training loss's record
    rng = np.random.default_rng(0)
    X, y = rng.random((300, 6)), rng.integers(0, 3, 300)
    model = MLPClassifier((8,), early_stopping=True, max_iter=5, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
        assert model.best_loss_ is None
        model.set_params(early_stopping=False)
        getattr(model, method)(X, y)
    assert np.isfinite(model.best_loss_)
