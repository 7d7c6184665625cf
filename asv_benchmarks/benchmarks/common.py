"""Shared set-up: the four configurations of docs/design.md section 8, and a train step."""

import numpy as np

from fastnn import get_backend
from fastnn.network import TrainStep
from fastnn.optim import SGDOptimizer

BACKENDS = ["numpy", "numba"]
DTYPES = ["float32", "float64"]
# name: (layer sizes, batch)
CONFIGS = {
    "a": ((784, 10, 10), 42000),  # the seed recipe, full batch
    "b": ((784, 128, 10), 128),
    "c": ((784, 256, 128, 10), 256),
    "d": ((784, 1024, 1024, 10), 512),
}


def network(sizes, n, dtype, seed=0):
    """Synthetic digits-shaped data (pixels in [0, 1)) and a network for it."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n).astype(np.intp)
    coefs = [(rng.uniform(-1, 1, (k, m)) * np.sqrt(1.0 / k)).astype(dtype)
             for k, m in zip(sizes[:-1], sizes[1:])]
    intercepts = [np.zeros(m, dtype) for m in sizes[1:]]
    return X, y, coefs, intercepts


def train_step(backend, config, dtype):
    """A zero-argument callable running one step (forward, loss, backward, SGD)."""
    sizes, n = CONFIGS[config]
    X, y, coefs, intercepts = network(sizes, n, dtype)
    ops = get_backend(backend).ops
    step = TrainStep(ops, coefs, intercepts, n)
    optimizer = SGDOptimizer(step.params, ops, 0.1, momentum=0.0)
    params, grads = step.params, step.grads

    def run():
        step.loss_and_grads(X, y, 0.0)
        optimizer.update_params(params, grads)

    return run
