"""fastnn's estimators against scikit-learn's, trained with the same parameters:
the same initial weights, and accuracy / R^2 within the issue's bounds."""

import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer, StandardScaler

from fastnn import MLPClassifier, MLPRegressor
from fastnn.datasets import load_digits
from fastnn.engine import numba_uniform

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    return load_digits(dtype="float64")


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_same_random_state_gives_scikit_learns_initial_weights(activation, digits):
    # Glorot uniform with scikit-learn's factor for logistic, drawn in the same
    # order (each layer's weights, then its biases) from the same RNG.
    # scikit-learn's _initialize is private: this reaches into it on purpose.
    y = digits[2]
    theirs = neural_network.MLPClassifier((16, 8), activation=activation, random_state=3)
    theirs._random_state = np.random.RandomState(3)
    theirs._label_binarizer = LabelBinarizer().fit(y)
    theirs.n_outputs_ = 10
    theirs._initialize(np.eye(10)[y], [64, 16, 8, 10], np.float64)
    ours = MLPClassifier((16, 8), activation=activation, random_state=3, dtype="float64")
    ours._validate_params()
    ours.n_outputs_, ours._head = 10, "softmax"
    ours._initialize(64)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_layers_drawn_in_compiled_code_give_scikit_learns_weights(dtype):
    # 2,100 x 128 weights: over numba_uniform.COMPILED_MIN, drawn by fastnn's
    # own MT19937; the layers after it by NumPy, from the state it left
    sizes = [2100, 128, 130, 3]
    assert sizes[0] * sizes[1] >= numba_uniform.COMPILED_MIN
    theirs = neural_network.MLPClassifier(sizes[1:3], random_state=5)
    theirs._random_state = np.random.RandomState(5)
    theirs._label_binarizer = LabelBinarizer().fit([0, 1, 2])
    theirs.n_outputs_ = 3
    theirs._initialize(np.eye(3), sizes, dtype)
    ours = MLPClassifier(sizes[1:3], random_state=5, dtype=np.dtype(dtype).name)
    ours._validate_params()
    ours.n_outputs_, ours._head = 3, "softmax"
    ours._initialize(sizes[0])
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert ours._rng.uniform() == theirs._random_state.uniform()  # the same state left


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_digits_accuracy_within_a_point_of_scikit_learn(activation, digits):
    X, X_test, y, y_test = digits
    params = dict(hidden_layer_sizes=(64,), activation=activation, max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = neural_network.MLPClassifier(**params).fit(X, y).score(X_test, y_test)
    ours = MLPClassifier(**params).fit(X, y).score(X_test, y_test)
    assert ours >= theirs - 0.01, (ours, theirs)


def test_diabetes_r2_within_0_02_of_scikit_learn():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        StandardScaler().fit_transform(X), y, random_state=0
    )
    params = dict(hidden_layer_sizes=(64,), max_iter=500, learning_rate_init=0.01, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = neural_network.MLPRegressor(**params).fit(X_train, y_train)
    ours = MLPRegressor(**params).fit(X_train, y_train)
    assert ours.score(X_test, y_test) >= theirs.score(X_test, y_test) - 0.02
    assert ours.predict(X_test).shape == (len(X_test),)
