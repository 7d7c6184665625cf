"""fastnn follows scikit-learn's training step for step, where both are deterministic.

In float64, with the same random_state (the same initial weights), full
batches in order (no shuffling), the two libraries compute the same
quantities in a different order, so their weights agree to rounding (1e-15 to
1e-11; Poisson's exp amplifies it most):
for every learning-rate schedule, L-BFGS (with sample weights too), the
Poisson loss, early stopping and warm starts. A schedule or stopping rule
that differs by one epoch, one factor or one count is off by far more.
"""

import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.datasets import load_digits, make_regression

from fastnn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_DIGITS, Y_DIGITS = load_digits(n_class=3, return_X_y=True)
X_DIGITS, Y_DIGITS = X_DIGITS[:200] / 16, Y_DIGITS[:200]
FULL_BATCHES = dict(hidden_layer_sizes=(8,), random_state=0, shuffle=False, batch_size=200)


def assert_same_fit(ours, theirs, X, y, **fit_params):
    ours.fit(X, y, **fit_params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.fit(X, y, **fit_params)
    assert ours.n_iter_ == theirs.n_iter_
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    for name in ("t_", "loss_", "best_loss_", "validation_scores_", "best_validation_score_",
                 "_no_improvement_count"):
        if getattr(theirs, name, None) is None:
            assert getattr(ours, name, None) is None, name
        else:
            np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-9,
                                       err_msg=name)
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


def pair(estimator, **params):
    ours = {"classifier": MLPClassifier, "regressor": MLPRegressor}[estimator]
    theirs = {"classifier": neural_network.MLPClassifier,
              "regressor": neural_network.MLPRegressor}[estimator]
    return ours(dtype="float64", **params), theirs(**params)


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_sgd_learning_rate_schedules(learning_rate):
    ours, theirs = pair("classifier", solver="sgd", learning_rate=learning_rate,
                        learning_rate_init=0.5, power_t=0.3, tol=1e-3, n_iter_no_change=3,
                        max_iter=40, **FULL_BATCHES)
    assert_same_fit(ours, theirs, X_DIGITS, Y_DIGITS)
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate,
                                                          rel=1e-12)


@pytest.mark.parametrize("y", [Y_DIGITS, Y_DIGITS == 1], ids=["multiclass", "binary"])
@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs(y, weighted):
    sw = np.random.default_rng(0).random(len(y)) if weighted else None
    ours, theirs = pair("classifier", solver="lbfgs", max_iter=30, alpha=1e-3,
                        hidden_layer_sizes=(8,), random_state=0)
    assert_same_fit(ours, theirs, X_DIGITS, y, sample_weight=sw)


def test_lbfgs_stops_at_max_fun():
    ours, theirs = pair("classifier", solver="lbfgs", max_fun=7, hidden_layer_sizes=(8,),
                        random_state=0)
    with pytest.warns(Warning, match="lbfgs failed to converge"):
        ours.fit(X_DIGITS, Y_DIGITS)
    assert_same_fit(ours, theirs, X_DIGITS, Y_DIGITS)


def test_poisson_loss():
    X, y = make_regression(100, 5, random_state=0)
    ours, theirs = pair("regressor", loss="poisson", solver="lbfgs", max_iter=30,
                        hidden_layer_sizes=(8,), random_state=0)
    assert_same_fit(ours, theirs, X, np.exp(y / 200))
    assert ours.out_activation_ == theirs.out_activation_ == "exp"


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_early_stopping(estimator, weighted):
    # tol above one validation row's worth of accuracy (1/20): a small gain is
    # no improvement, and the count of epochs without one decides when to stop
    sw = np.random.default_rng(1).random(len(Y_DIGITS)) * 2 if weighted else None
    ours, theirs = pair(estimator, solver="adam", learning_rate_init=0.01, max_iter=60,
                        early_stopping=True, tol=0.07, n_iter_no_change=4, **FULL_BATCHES)
    assert_same_fit(ours, theirs, X_DIGITS, Y_DIGITS, sample_weight=sw)
    assert ours.best_loss_ is None and len(ours.validation_scores_) == ours.n_iter_ < 60


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start(solver):
    ours, theirs = pair("classifier", solver=solver, learning_rate="invscaling",
                        learning_rate_init=0.5 if solver == "sgd" else 0.01, warm_start=True,
                        max_iter=5, **FULL_BATCHES)
    for _ in range(3):
        assert_same_fit(ours, theirs, X_DIGITS, Y_DIGITS)
