"""The output head follows the targets: binary, multiclass, multilabel, regression
(1-D and multi-output). Each on both backends, saved and loaded, resumed."""

import numpy as np
import pytest

import fastnn
from fastnn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6))
    return X, rng


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_binary_y_gets_one_logistic_output(backend):
    X, _ = blobs()
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    model = MLPClassifier(
        (8,),
        max_iter=100,
        learning_rate_init=0.01,
        random_state=0,
        backend=backend,
        dtype="float64",
    ).fit(X, y)
    assert model.out_activation_ == "logistic" and model.n_outputs_ == 1
    assert model.coefs_[-1].shape == (8, 1)
    proba = model.predict_proba(X)
    assert proba.shape == (300, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # the column order is classes_; predict takes the larger one
    assert list(model.classes_) == ["no", "yes"]
    np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(proba, axis=1)])
    assert model.score(X, y) > 0.9
    # the second column is the logistic of the single output
    h = np.maximum(X @ model.coefs_[0] + model.intercepts_[0], 0)
    z = h @ model.coefs_[1] + model.intercepts_[1]
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-z[:, 0])), rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_multilabel_indicator_gets_logistic_outputs(backend):
    X, _ = blobs()
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.5, X[:, 0] + X[:, 2] > 0]).astype(int)
    model = MLPClassifier(
        (16,), max_iter=100, learning_rate_init=0.01, random_state=0, backend=backend
    ).fit(X, Y)
    assert model.out_activation_ == "logistic" and model.n_outputs_ == 3
    predicted = model.predict(X)
    assert predicted.shape == Y.shape and set(np.unique(predicted)) <= {0, 1}
    assert model.predict_proba(X).shape == (300, 3)
    assert model.score(X, Y) > 0.8  # exact-match accuracy, as scikit-learn's
    assert 0 < model.history_["train_accuracy"][-1] <= 1


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("outputs", [1, 3])
def test_regressor_one_and_several_outputs(backend, outputs):
    X, rng = blobs(400)
    Y = np.column_stack([np.sin(X[:, 0]) + X[:, j] * 0.5 for j in range(outputs)])
    y = Y[:, 0] if outputs == 1 else Y
    model = MLPRegressor(
        (32,), max_iter=200, learning_rate_init=0.01, random_state=0, backend=backend
    ).fit(X, y)
    assert model.out_activation_ == "identity" and model.n_outputs_ == outputs
    assert model.predict(X).shape == y.shape
    assert model.score(X, y) > 0.9  # R^2
    assert "val_r2" not in model.history_ and "train_accuracy" not in model.history_
    model.fit(X, y, validation_data=(X[:50], y[:50]))
    assert len(model.history_["val_r2"]) == model.n_iter_


@pytest.mark.parametrize("make", ["binary", "multilabel", "regressor"])
def test_every_head_saves_loads_and_resumes(make, tmp_path):
    X, _ = blobs()
    if make == "regressor":
        y, cls = X[:, 0] * 2 + 1, MLPRegressor
    elif make == "binary":
        y, cls = (X[:, 0] > 0).astype(int), MLPClassifier
    else:
        y, cls = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int), MLPClassifier
    params = dict(hidden_layer_sizes=(8,), activation="tanh", random_state=0, batch_size=50)
    full = cls(max_iter=6, **params).fit(X, y)
    half = cls(max_iter=3, **params).fit(X, y)
    half.save(tmp_path / "half.npz")
    loaded = fastnn.load(tmp_path / "half.npz")
    assert type(loaded) is cls and loaded.out_activation_ == full.out_activation_
    np.testing.assert_array_equal(loaded.predict(X), half.predict(X))
    loaded.set_params(max_iter=6)
    loaded.fit(X, y, resume=True)
    for a, b in zip(loaded.coefs_ + loaded.intercepts_, full.coefs_ + full.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_regressor_rejects_classification_only_arguments():
    X, _ = blobs(20)
    with pytest.raises(TypeError):
        MLPRegressor().partial_fit(X, X[:, 0], classes=[0, 1])
    with pytest.raises(ValueError, match="requires y to be passed"):
        MLPRegressor().fit(X, None)
