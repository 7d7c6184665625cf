"""Divergence: a NaN/inf loss stops fit with a clear error and the last finite weights."""

import numpy as np
import pytest

from fastnn import MLPClassifier
from fastnn.datasets import load_digits
from fastnn.estimators.mlp import DivergenceError


@pytest.fixture(scope="module")
def digits():
    X, _, y, _ = load_digits()
    return X[:200], y[:200]


def snapshot(model):
    return [a.copy() for a in model.coefs_ + model.intercepts_]


def assert_weights_equal(model, expected):
    for a, b in zip(model.coefs_ + model.intercepts_, expected):
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)


# NumPy warns of the overflow on its way to NaN; the error is what matters here
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_divergence_names_epoch_batch_and_rate_and_restores_the_last_epoch(digits, backend):
    X, y = digits
    ends = {}

    def blow_up_after_epoch_2(model, record):
        ends[record["epoch"]] = snapshot(model)
        if record["epoch"] == 2:
            model._optimizer.learning_rate = 1e30

    model = MLPClassifier(
        (16,),
        solver="sgd",
        learning_rate_init=0.1,
        batch_size=100,
        max_iter=5,
        random_state=0,
        backend=backend,
    )
    with pytest.raises(
        DivergenceError,
        match=r"epoch 3, batch 2 of 2: the loss became NaN or inf "
        r"\(learning rate 1e\+30\)",
    ) as caught:
        model.fit(X, y, epoch_callback=blow_up_after_epoch_2)
    assert (caught.value.epoch, caught.value.batch, caught.value.learning_rate) == (3, 2, 1e30)
    assert_weights_equal(model, ends[2])
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    assert all(len(values) == 2 for values in model.history_.values())
    assert np.isfinite(model.predict_proba(X)).all()


def test_a_run_that_diverges_at_once_keeps_its_initial_weights(digits):
    X, y = digits
    # a step of 1e300 is inf in float32: the first update overflows
    model = MLPClassifier(
        (16,),
        solver="sgd",
        learning_rate_init=1e300,
        momentum=0.0,
        batch_size=50,
        max_iter=3,
        random_state=0,
        dtype="float32",
    )
    initial = MLPClassifier((16,), max_iter=1, random_state=0, dtype="float32")
    initial._validate_params()
    initial.n_outputs_, initial._head = 10, "softmax"
    initial._initialize(X.shape[1])
    with pytest.raises(DivergenceError, match="epoch 1, batch") as caught:
        model.fit(X, y)
    assert caught.value.epoch == 1
    assert model.n_iter_ == 0
    assert_weights_equal(model, snapshot(initial))


def test_weights_that_overflow_on_the_last_batch_are_caught(digits):
    # The loss of the last batch is computed before its update: only the
    # end-of-epoch check sees weights the final update made non-finite.
    # Full batch: epoch 2's one update, at a step of 1e300 (inf in float32),
    # makes the weights inf after a finite loss.
    X, y = digits
    ends = {}

    def overflow_the_next_update(model, record):
        ends[record["epoch"]] = snapshot(model)
        model._optimizer.learning_rate = 1e300

    for backend in ("numpy", "numba"):
        model = MLPClassifier(
            (8,),
            solver="sgd",
            momentum=0.0,
            batch_size=len(X),
            max_iter=3,
            random_state=0,
            backend=backend,
        )
        with pytest.raises(DivergenceError, match="epoch 2, batch 1 of 1: the weights became"):
            model.fit(X, y, epoch_callback=overflow_the_next_update)
        assert_weights_equal(model, ends[1])


def test_partial_fit_divergence_rolls_back_too(digits):
    X, y = digits
    model = MLPClassifier((8,), solver="sgd", learning_rate_init=0.1, random_state=0)
    model.partial_fit(X, y, classes=np.arange(10))
    before = snapshot(model)
    model._optimizer.learning_rate = 1e300
    with pytest.raises(DivergenceError, match="epoch 2"):
        model.partial_fit(X, y)
    assert_weights_equal(model, before)
    assert model.n_iter_ == 1
