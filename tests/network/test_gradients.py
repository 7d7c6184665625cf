"""Whole-network gradients by finite differences, and backends in lock-step."""

import numpy as np
import pytest

from fastnn import MLPClassifier, get_backend
from fastnn.datasets import load_digits
from fastnn.network import TrainStep
from fastnn.optim import AdamOptimizer, SGDOptimizer


def small_network(rng, sizes, dtype=np.float64):
    coefs = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)
             for a, b in zip(sizes[:-1], sizes[1:])]
    intercepts = [(0.1 * rng.standard_normal(b)).astype(dtype) for b in sizes[1:]]
    return coefs, intercepts


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_two_hidden_layer_gradients_match_finite_differences(backend, alpha):
    rng = np.random.default_rng(7)
    sizes = [5, 6, 4, 3]  # two hidden layers
    coefs, intercepts = small_network(rng, sizes)
    x = rng.standard_normal((9, sizes[0]))
    y = rng.integers(0, sizes[-1], 9)
    y[:3] = [0, 1, 2]
    step = TrainStep(get_backend(backend).ops, coefs, intercepts, max_batch=9)
    step.loss_and_grads(x, y, alpha)
    analytic = [g.copy() for g in step.grads]

    eps = 1e-6
    for param, grad in zip(step.params, analytic):
        numeric = np.empty_like(param)
        for idx in np.ndindex(param.shape):
            saved = param[idx]
            param[idx] = saved + eps
            up = step.loss_and_grads(x, y, alpha)
            param[idx] = saved - eps
            down = step.loss_and_grads(x, y, alpha)
            param[idx] = saved
            numeric[idx] = (up - down) / (2 * eps)
        # central differences: O(eps^2) truncation, O(1e-16 / eps) rounding
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_finite_difference_check_detects_a_wrong_gradient():
    # Guard against a vacuous check: perturb one analytic gradient entry by a
    # small amount and the same comparison fails.
    rng = np.random.default_rng(3)
    coefs, intercepts = small_network(rng, [4, 5, 3])
    x = rng.standard_normal((6, 4))
    y = rng.integers(0, 3, 6)
    step = TrainStep(get_backend("numba").ops, coefs, intercepts, max_batch=6)
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
    # 30 steps of minibatch training from identical weights: the two backends
    # differ only in summation order, so their losses stay within rounding
    # (float32 rounding compounds over the steps: hence 2e-4).
    X, _, y, _ = load_digits(dtype=dtype)
    rng = np.random.default_rng(0)
    coefs, intercepts = small_network(rng, [64, 32, 16, 10], dtype)
    losses = {}
    weights = {}
    for name in ("numpy", "numba"):
        ops = get_backend(name).ops
        cs = [c.copy() for c in coefs]
        bs = [b.copy() for b in intercepts]
        step = TrainStep(ops, cs, bs, max_batch=50)
        if solver == "sgd":
            opt = SGDOptimizer(step.params, ops, 0.05, momentum=0.9, nesterov=True)
        else:
            opt = AdamOptimizer(step.params, ops, 0.005)
        history = []
        for i in range(30):
            rows = slice(50 * i % 1400, 50 * i % 1400 + 50)
            history.append(step.loss_and_grads(X[rows], y[rows], 1e-3))
            opt.update_params(step.params, step.grads)
        losses[name] = np.array(history)
        weights[name] = step.params
    assert losses["numba"][-1] < 0.7 * losses["numba"][0]  # it actually trained
    np.testing.assert_allclose(losses["numba"], losses["numpy"], rtol=rtol)
    for a, b in zip(weights["numba"], weights["numpy"]):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimator_backends_agree_on_digits():
    X, X_test, y, _ = load_digits(dtype="float64")
    fits = [
        MLPClassifier((32,), max_iter=3, random_state=0, backend=b, dtype="float64").fit(X, y)
        for b in ("numpy", "numba")
    ]
    np.testing.assert_allclose(fits[0].loss_curve_, fits[1].loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(fits[0].predict_proba(X_test), fits[1].predict_proba(X_test),
                               rtol=1e-7, atol=1e-10)
