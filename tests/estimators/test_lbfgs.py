"""solver="lbfgs": the chunked objective, verbose output and what L-BFGS does not offer."""

import numpy as np
import pytest

from fastnn import DivergenceError, MLPClassifier, MLPRegressor
from fastnn.datasets import load_digits
from fastnn.estimators import lbfgs

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, _, y, _ = load_digits(dtype="float64")
    return X[:250], y[:250]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_the_objective_over_row_chunks_equals_one_pass(digits, backend, monkeypatch):
    # memory does not grow with n: chunks of 7 rows give the whole set's loss and gradient
    X, y = digits
    sw = np.random.default_rng(0).random(len(y))
    model = MLPClassifier(
        (9,),
        solver="lbfgs",
        alpha=0.3,
        random_state=0,
        backend=backend,
        dtype="float64",
        max_iter=1,
    ).fit(X, y)
    theta = model._params.data.copy()
    whole = lbfgs.LbfgsObjective(model, X, np.searchsorted(model.classes_, y), None, sw)
    monkeypatch.setattr(lbfgs, "CHUNK_ROWS", 7)
    chunked = lbfgs.LbfgsObjective(model, X, np.searchsorted(model.classes_, y), None, sw)
    assert chunked.chunk == 7 and whole.chunk == 250
    loss, grad = whole(theta)
    loss7, grad7 = chunked(theta)
    assert loss7 == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(grad7, grad, rtol=1e-11, atol=1e-14)
    # the gradient is the loss's: a central difference along a random direction
    direction = np.random.default_rng(1).standard_normal(theta.size)
    h = 1e-6
    slope = (whole(theta + h * direction)[0] - whole(theta - h * direction)[0]) / (2 * h)
    assert slope == pytest.approx(float(grad @ direction), rel=1e-6)


def test_verbose_prints_one_line_per_iteration(digits, capsys):
    X, y = digits
    model = MLPClassifier((8,), solver="lbfgs", max_iter=5, verbose=True, random_state=0)
    model.fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Iter")]
    assert len(lines) == model.n_iter_ == 5
    assert lines[-1].startswith("Iteration 5, loss = ")


def test_no_partial_fit_and_no_resume(digits):
    X, y = digits
    model = MLPClassifier((8,), solver="lbfgs", max_iter=5, random_state=0).fit(X, y)
    assert not hasattr(model, "partial_fit")  # scikit-learn's available_if
    assert model.get_training_state() is None and not hasattr(model, "loss_curve_")
    with pytest.raises(ValueError, match="L-BFGS keeps no state: use warm_start=True"):
        model.set_params(max_iter=10).fit(X, y, resume=True)


def test_divergence_restores_the_starting_weights():
    rng = np.random.default_rng(0)
    X = 1e300 * rng.random((20, 3))
    y = rng.standard_normal(20)
    model = MLPRegressor((4,), solver="lbfgs", dtype="float64", random_state=0)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights") as err:
        with np.errstate(all="ignore"):
            model.fit(X, y)
    assert isinstance(err.value, DivergenceError)
    start = MLPRegressor((4,), solver="lbfgs", dtype="float64", random_state=0, max_iter=1)
    start._validate_params()
    start.n_outputs_ = 1
    start._initialize(3)
    for a, b in zip(model.coefs_, start.coefs_):
        np.testing.assert_array_equal(a, b)
