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
    for name in (
        "t_",
        "loss_",
        "best_loss_",
        "validation_scores_",
        "best_validation_score_",
        "_no_improvement_count",
    ):
        if getattr(theirs, name, None) is None:
            assert getattr(ours, name, None) is None, name
        else:
            np.testing.assert_allclose(
                getattr(ours, name), getattr(theirs, name), rtol=1e-9, err_msg=name
            )
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


def pair(estimator, **params):
    ours = {"classifier": MLPClassifier, "regressor": MLPRegressor}[estimator]
    theirs = {
        "classifier": neural_network.MLPClassifier,
        "regressor": neural_network.MLPRegressor,
    }[estimator]
    return ours(dtype="float64", **params), theirs(**params)


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_sgd_learning_rate_schedules(learning_rate):
    ours, theirs = pair(
        "classifier",
        solver="sgd",
        learning_rate=learning_rate,
        learning_rate_init=0.5,
        power_t=0.3,
        tol=1e-3,
        n_iter_no_change=3,
        max_iter=40,
        **FULL_BATCHES,
    )
    assert_same_fit(ours, theirs, X_DIGITS, Y_DIGITS)
    assert ours._optimizer.learning_rate == pytest.approx(
        theirs._optimizer.learning_rate, rel=1e-12
    )


@pytest.mark.parametrize("y", [Y_DIGITS, Y_DIGITS == 1], ids=["multiclass", "binary"])
@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs(y, weighted):
    sw = np.random.default_rng(0).random(len(y)) if weighted else None
    ours, theirs = pair(
        "classifier",
        solver="lbfgs",
        max_iter=30,
        alpha=1e-3,
        hidden_layer_sizes=(8,),
        random_state=0,
    )
    assert_same_fit(ours, theirs, X_DIGITS, y, sample_weight=sw)


def test_lbfgs_stops_at_max_fun():
    ours, theirs = pair(
        "classifier", solver="lbfgs", max_fun=7, hidden_layer_sizes=(8,), random_state=0
    )
    with pytest.warns(Warning, match="lbfgs failed to converge"):
        ours.fit(X_DIGITS, Y_DIGITS)
    assert_same_fit(ours, theirs, X_DIGITS, Y_DIGITS)


def test_poisson_loss():
    X, y = make_regression(100, 5, random_state=0)
    ours, theirs = pair(
        "regressor",
        loss="poisson",
        solver="lbfgs",
        max_iter=30,
        hidden_layer_sizes=(8,),
        random_state=0,
    )
    assert_same_fit(ours, theirs, X, np.exp(y / 200))
    assert ours.out_activation_ == theirs.out_activation_ == "exp"


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_early_stopping(estimator, weighted):
    # tol above one validation row's worth of accuracy (1/20): a small gain is
    # no improvement, and the count of epochs without one decides when to stop
    sw = np.random.default_rng(1).random(len(Y_DIGITS)) * 2 if weighted else None
    ours, theirs = pair(
        estimator,
        solver="adam",
        learning_rate_init=0.01,
        max_iter=60,
        early_stopping=True,
        tol=0.07,
        n_iter_no_change=4,
        **FULL_BATCHES,
    )
    assert_same_fit(ours, theirs, X_DIGITS, Y_DIGITS, sample_weight=sw)
    assert ours.best_loss_ is None and len(ours.validation_scores_) == ours.n_iter_ < 60


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start(solver):
    ours, theirs = pair(
        "classifier",
        solver=solver,
        learning_rate="invscaling",
        learning_rate_init=0.5 if solver == "sgd" else 0.01,
        warm_start=True,
        max_iter=5,
        **FULL_BATCHES,
    )
    for _ in range(3):
        assert_same_fit(ours, theirs, X_DIGITS, Y_DIGITS)


def _assigned_weights(n_in, hidden, n_out, seed):
    rng = np.random.default_rng(seed)
    sizes = [n_in, *hidden, n_out]
    coefs = [rng.normal(0, 0.3, (a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    intercepts = [rng.normal(0, 0.1, b) for b in sizes[1:]]
    return coefs, intercepts


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_partial_fit_trains_weights_assigned_to_an_unfitted_model(estimator, solver):
    # scikit-learn's test_fit does this: set coefs_/intercepts_, then partial_fit
    X, y = X_DIGITS, Y_DIGITS
    n_out = 3
    if estimator == "regressor":
        y = np.column_stack([y, y**2]).astype(float)
        n_out = 2
    ours, theirs = pair(estimator, solver=solver, **FULL_BATCHES)
    for model in (ours, theirs):
        coefs, intercepts = _assigned_weights(X.shape[1], (8,), n_out, seed=1)
        model.coefs_, model.intercepts_ = coefs, intercepts
        if model is theirs:  # scikit-learn needs these set by hand as well (as test_fit does)
            model.n_outputs_, model.n_layers_, model.n_iter_, model.t_ = n_out, 3, 0, 0
            model.out_activation_ = "softmax" if estimator == "classifier" else "identity"
            model.loss_curve_, model.best_loss_, model._no_improvement_count = [], np.inf, 0
    for _ in range(3):
        if estimator == "classifier":
            ours.partial_fit(X, y, classes=[0, 1, 2])
            theirs.partial_fit(X, y, classes=[0, 1, 2])
        else:
            ours.partial_fit(X, y)
            theirs.partial_fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    if estimator == "classifier":  # 2 outputs: README, "Multi-output squared error is summed"
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(
        ours.predict_proba(X) if estimator == "classifier" else ours.predict(X),
        theirs.predict_proba(X) if estimator == "classifier" else theirs.predict(X),
        rtol=1e-10,
    )


@pytest.mark.parametrize("how", ["new lists", "one array in place of another"])
def test_partial_fit_continues_from_weights_replaced_after_fit(how):
    # plain SGD keeps no state: the step from the replaced weights is the step a
    # fresh model with those weights takes
    settings = dict(dtype="float64", solver="sgd", momentum=0.0, **FULL_BATCHES)
    ours = MLPClassifier(max_iter=2, **settings).fit(X_DIGITS, Y_DIGITS)
    coefs, intercepts = _assigned_weights(64, (8,), 3, seed=2)
    if how == "new lists":
        ours.coefs_ = [W.copy() for W in coefs]
        ours.intercepts_ = [b.copy() for b in intercepts]
    else:  # the list stays; what it holds changes
        coefs[1], intercepts[1] = ours.coefs_[1].copy(), ours.intercepts_[1].copy()
        intercepts[0] = ours.intercepts_[0].copy()
        ours.coefs_[0] = coefs[0].copy()
    ours.partial_fit(X_DIGITS, Y_DIGITS)
    fresh = MLPClassifier(**settings).set_weights(coefs, intercepts, classes=[0, 1, 2])
    fresh.partial_fit(X_DIGITS, Y_DIGITS)
    for a, b in zip(ours.coefs_ + ours.intercepts_, fresh.coefs_ + fresh.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


BAD_ASSIGNMENTS = {
    "a bias of the wrong length": (lambda c, b: (c, [b[0][:1], b[1]]), "shapes"),
    "NaN in a weight": (lambda c, b: ([np.where(c[0] > 0, np.nan, c[0]), c[1]], b), "NaN or inf"),
    "other hidden sizes": (
        lambda c, b: ([c[0][:, :4], c[1][:4]], [b[0][:4], b[1]]),
        "hidden_layer_sizes",
    ),
    "another input width": (lambda c, b: ([c[0][:10], c[1]], b), "n_features_in_"),
    "another output count": (lambda c, b: ([c[0], c[1][:, :2]], [b[0], b[1][:2]]), "n_outputs_"),
    "strings": (lambda c, b: ([c[0].astype(str), c[1]], b), "real numbers"),
    "a missing layer": (lambda c, b: (c[:1], b[:1]), "hidden layers"),
}


@pytest.mark.parametrize("case", sorted(BAD_ASSIGNMENTS))
def test_bad_assigned_weights_are_refused_by_name_and_nothing_changes(case):
    make_bad, message = BAD_ASSIGNMENTS[case]
    model = MLPClassifier(dtype="float64", solver="sgd", max_iter=2, **FULL_BATCHES)
    model.fit(X_DIGITS, Y_DIGITS)
    before = model.predict_proba(X_DIGITS)
    good = [W.copy() for W in model.coefs_], [b.copy() for b in model.intercepts_]
    model.coefs_, model.intercepts_ = make_bad(*good)
    with pytest.raises(ValueError, match=r"coefs_, intercepts_|coefs_:") as caught:
        model.partial_fit(X_DIGITS, Y_DIGITS)
    assert message in str(caught.value)
    model.coefs_, model.intercepts_ = good
    np.testing.assert_array_equal(model.predict_proba(X_DIGITS), before)
    # fit starts afresh, as scikit-learn's does: whatever was assigned is replaced
    model.coefs_, model.intercepts_ = make_bad(*good)
    model.fit(X_DIGITS, Y_DIGITS)
    np.testing.assert_array_equal(model.predict_proba(X_DIGITS), before)


TARGETS = {  # estimator, y of each head
    "softmax": ("classifier", Y_DIGITS),
    "logistic": ("classifier", Y_DIGITS == 1),
    "multilabel": ("classifier", np.column_stack([Y_DIGITS == 1, Y_DIGITS == 2])),
    "identity": ("regressor", Y_DIGITS.astype(float)),
}


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("head", sorted(TARGETS))
def test_no_hidden_layer(head, solver, backend):
    # hidden_layer_sizes=(): a linear model of each head, as scikit-learn allows
    estimator, y = TARGETS[head]
    params = dict(FULL_BATCHES, hidden_layer_sizes=(), solver=solver, max_iter=5)
    ours, theirs = pair(estimator, **params)
    ours.set_params(backend=backend)
    assert_same_fit(ours, theirs, X_DIGITS, y)
    assert ours.n_layers_ == theirs.n_layers_ == 2
    if estimator == "classifier":
        np.testing.assert_array_equal(ours.predict(X_DIGITS), theirs.predict(X_DIGITS))
    else:
        np.testing.assert_allclose(ours.predict(X_DIGITS), theirs.predict(X_DIGITS), rtol=1e-9)


def test_weights_assigned_to_an_unfitted_model_must_fit_X():
    # no n_features_in_ to check X against: the rows of coefs_[0] are what X must match
    model = MLPClassifier(dtype="float64", solver="sgd", **FULL_BATCHES)
    model.coefs_, model.intercepts_ = _assigned_weights(10, (8,), 3, seed=3)
    with pytest.raises(ValueError, match="X has 64 features, but MLPClassifier is expecting 10"):
        model.partial_fit(X_DIGITS, Y_DIGITS, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="X has 64 features, but MLPClassifier is expecting 10"):
        model.predict(X_DIGITS)
