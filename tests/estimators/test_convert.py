"""Fitted models to and from scikit-learn, and through it to ONNX (optional extra)."""

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.datasets import make_multilabel_classification, make_regression

import fastnn
from fastnn import MLPClassifier, MLPRegressor
from fastnn.datasets import load_digits

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, X_test, y, _ = load_digits(dtype="float64")
    return X[:300], y[:300], X_test


def problems():
    X, _, y, _ = load_digits(dtype="float64")
    X, y = X[:300], y[:300]
    Xm, Ym = make_multilabel_classification(60, 8, random_state=0)
    Xr, yr = make_regression(80, 6, n_targets=2, random_state=0)
    return {
        "multiclass": (MLPClassifier, X, y),
        "binary": (MLPClassifier, X, y % 2 == 0),
        "strings": (MLPClassifier, X, np.array(list("abcdefghij"))[y]),
        "multilabel": (MLPClassifier, Xm.astype(float), Ym),
        "regression": (MLPRegressor, Xr, yr / 100),
        "poisson": (MLPRegressor, Xr, np.exp(yr[:, 0] / 300)),
    }


PROBLEMS = problems()


def _predictions(model, X):
    out = {"predict": model.predict(X)}
    if hasattr(model, "predict_proba"):
        out["predict_proba"] = model.predict_proba(X)
    return out


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("name", PROBLEMS)
def test_to_sklearn_predicts_what_fastnn_predicts(name, dtype, rtol):
    cls, X, y = PROBLEMS[name]
    extra = {"loss": "poisson"} if name == "poisson" else {}
    ours = cls((12,), max_iter=20, random_state=0, dtype=dtype, **extra).fit(X, y)
    theirs = ours.to_sklearn()
    assert type(theirs).__name__ == cls.__name__
    assert theirs.get_params()["hidden_layer_sizes"] == (12,)
    mine, other = _predictions(ours, X), _predictions(theirs, X)
    for method in mine:
        if mine[method].dtype.kind == "f":
            np.testing.assert_allclose(other[method], mine[method], rtol=rtol, atol=rtol)
        else:
            np.testing.assert_array_equal(other[method], mine[method])
    assert theirs.n_iter_ == ours.n_iter_ and theirs.loss_curve_ == ours.loss_curve_


@pytest.mark.parametrize("name", PROBLEMS)
def test_from_sklearn_predicts_what_scikit_learn_predicts(name):
    cls, X, y = PROBLEMS[name]
    sk = getattr(neural_network, cls.__name__)
    extra = {"loss": "poisson"} if name == "poisson" else {}
    theirs = sk(hidden_layer_sizes=(12,), max_iter=20, random_state=0, **extra).fit(X, y)
    ours = fastnn.from_sklearn(theirs, backend="numpy")
    # dtype=None, as scikit-learn's: the weights keep theirs
    assert ours.dtype is None and ours.backend == "numpy"
    assert all(W.dtype == np.float64 for W in ours.coefs_ + ours.intercepts_)
    mine, other = _predictions(ours, X), _predictions(theirs, X)
    for method in mine:
        if mine[method].dtype.kind == "f":
            np.testing.assert_allclose(mine[method], other[method], rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(mine[method], other[method])
    ours.partial_fit(X, y)  # a converted model trains on
    assert ours.n_iter_ == theirs.n_iter_ + 1


def test_from_sklearn_casts_to_the_requested_dtype(digits):
    X, y, X_test = digits
    theirs = neural_network.MLPClassifier((8,), max_iter=30, random_state=0).fit(X, y)
    ours = fastnn.from_sklearn(theirs, dtype="float32")
    assert all(W.dtype == np.float32 for W in ours.coefs_ + ours.intercepts_)
    assert (ours.predict(X_test) == theirs.predict(X_test)).mean() > 0.99


def test_from_sklearn_keeps_float32_weights_and_trains_on_in_float32(digits):
    X, y, X_test = digits
    X = X.astype(np.float32)  # scikit-learn trains float32 X in float32
    theirs = neural_network.MLPClassifier((8,), max_iter=30, random_state=0).fit(X, y)
    ours = fastnn.from_sklearn(theirs)
    assert all(W.dtype == np.float32 for W in ours.coefs_ + ours.intercepts_)
    np.testing.assert_array_equal(ours.predict(X_test), theirs.predict(X_test))
    ours.partial_fit(X_test, theirs.predict(X_test))  # float64 X, read in float32
    assert ours.coefs_[0].dtype == np.float32


def test_onnx_export_through_scikit_learn(digits):
    skl2onnx = pytest.importorskip("skl2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    X, y, X_test = digits
    ours = MLPClassifier((16,), max_iter=30, random_state=0).fit(X, y)
    onnx_model = skl2onnx.to_onnx(ours.to_sklearn(), X[:1].astype(np.float32))
    session = onnxruntime.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    labels, probabilities = session.run(
        None, {session.get_inputs()[0].name: X_test.astype(np.float32)}
    )
    np.testing.assert_array_equal(labels, ours.predict(X_test))
    proba = np.array(
        [[row[c] for c in ours.classes_] for row in probabilities]
        if isinstance(probabilities, list)
        else probabilities
    )
    np.testing.assert_allclose(proba, ours.predict_proba(X_test), rtol=1e-4, atol=1e-5)
