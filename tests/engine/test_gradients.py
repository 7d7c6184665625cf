"""Whole-network gradients by finite differences, and backends in lock-step."""

import itertools

import numpy as np
import pytest

from fastnn import MLPClassifier, get_backend
from fastnn.contract.tables import ACTIVATIONS, HEADS
from fastnn.datasets import load_digits
from fastnn.engine.optim import AdamOptimizer, SGDOptimizer
from fastnn.engine.params import FlatParameters
from fastnn.engine.step import TrainStep
from tests.helpers import head_targets, small_network


def _loss_fn(step, x, targets, alpha, sw):
    def loss():
        if sw is None:
            return step.loss_and_grads(x, targets, alpha)
        labels, Y = (targets, None) if step.head == 0 else (None, targets)
        value, _ = step.batch_grads(x, labels, Y, sw)
        return value

    return loss


def _numeric_gradient(step, loss):
    numeric = []
    eps = 1e-6
    for param in step.params:
        g = np.empty_like(param)
        for idx in np.ndindex(param.shape):
            saved = param[idx]
            param[idx] = saved + eps
            up = loss()
            param[idx] = saved - eps
            down = loss()
            param[idx] = saved
            g[idx] = (up - down) / (2 * eps)
        numeric.append(g)
    return numeric


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("activation,head", list(itertools.product(ACTIVATIONS, HEADS)))
def test_gradients_match_finite_differences(backend, activation, head):
    # every activation x head, two hidden layers, with L2; float64 central
    # differences: O(eps^2) truncation, O(1e-16 / eps) rounding
    rng = np.random.default_rng(7)
    sizes = [5, 6, 4, 3]
    coefs, intercepts = small_network(rng, sizes)
    x = rng.standard_normal((9, sizes[0]))
    targets = head_targets(head, rng, 9, sizes[-1])
    step = TrainStep(backend, coefs, intercepts, 9, activation, head)
    loss = _loss_fn(step, x, targets, 0.3, None)
    loss()
    analytic = [g.copy() for g in step.grads]
    for grad, numeric in zip(analytic, _numeric_gradient(step, loss)):
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("head", HEADS)
def test_weighted_gradients_match_finite_differences(backend, head):
    # row weights, normalised by their sum (scikit-learn's sample_weight)
    rng = np.random.default_rng(8)
    sizes = [4, 5, 3]
    coefs, intercepts = small_network(rng, sizes)
    x = rng.standard_normal((7, sizes[0]))
    targets = head_targets(head, rng, 7, sizes[-1])
    sw = rng.random(7) * 3
    sw[2] = 0.0
    step = TrainStep(backend, coefs, intercepts, 7, "tanh", head)
    loss = _loss_fn(step, x, targets, 0.0, sw)
    loss()
    analytic = [g.copy() for g in step.grads]
    for grad, numeric in zip(analytic, _numeric_gradient(step, loss)):
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_finite_difference_check_detects_a_wrong_gradient():
    # Guard against a vacuous check: perturb one analytic gradient entry by a
    # small amount and the same comparison fails.
    rng = np.random.default_rng(3)
    coefs, intercepts = small_network(rng, [4, 5, 3])
    x = rng.standard_normal((6, 4))
    y = rng.integers(0, 3, 6)
    step = TrainStep("numba", coefs, intercepts, 6)
    step.loss_and_grads(x, y, 0.0)
    wrong = step.grads[0].copy()
    wrong[1, 2] *= 1.001
    param = step.params[0]
    saved = param[1, 2]
    param[1, 2] = saved + 1e-6
    up = step.loss_and_grads(x, y, 0.0)
    param[1, 2] = saved - 1e-6
    down = step.loss_and_grads(x, y, 0.0)
    numeric = (up - down) / 2e-6
    assert not np.isclose(wrong[1, 2], numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-9), (np.float32, 2e-4)])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_backends_follow_the_same_trajectory(dtype, rtol, solver):
    # 30 steps of minibatch training from identical weights, each optimizer
    # updating the flat parameter buffer: the two backends differ only in
    # summation order, so their losses stay within rounding (float32 rounding
    # compounds over the steps: hence 2e-4).
    X, _, y, _ = load_digits(dtype=dtype)
    rng = np.random.default_rng(0)
    coefs, intercepts = small_network(rng, [64, 32, 16, 10], dtype)
    losses = {}
    weights = {}
    for name in ("numpy", "numba"):
        params = FlatParameters.pack(coefs, intercepts)
        grads = FlatParameters(params.layer_sizes, dtype)
        step = TrainStep(
            name,
            params.coefs,
            params.intercepts,
            50,
            coef_grads=grads.coefs,
            intercept_grads=grads.intercepts,
        )
        if solver == "sgd":
            opt = SGDOptimizer(params.size, dtype, 0.05, momentum=0.9, nesterov=True)
        else:
            opt = AdamOptimizer(params.size, dtype, 0.005)
        ops = get_backend(name).ops
        history = []
        for i in range(30):
            rows = slice(50 * i % 1400, 50 * i % 1400 + 50)
            history.append(step.loss_and_grads(X[rows], y[rows], 1e-3))
            opt.update_params(ops, params.data, grads.data)
        losses[name] = np.array(history)
        weights[name] = params.data
    assert losses["numba"][-1] < 0.7 * losses["numba"][0]  # it actually trained
    np.testing.assert_allclose(losses["numba"], losses["numpy"], rtol=rtol)
    np.testing.assert_allclose(weights["numba"], weights["numpy"], rtol=rtol, atol=rtol)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_estimator_backends_agree_on_digits(activation):
    X, X_test, y, _ = load_digits(dtype="float64")
    fits = [
        MLPClassifier(
            (32,), activation=activation, max_iter=3, random_state=0, backend=b, dtype="float64"
        ).fit(X, y)
        for b in ("numpy", "numba")
    ]
    np.testing.assert_allclose(fits[0].loss_curve_, fits[1].loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(
        fits[0].predict_proba(X_test), fits[1].predict_proba(X_test), rtol=1e-7, atol=1e-10
    )
