"""MLPClassifier.fit on digits, against the bare train steps that it runs."""

import warnings

import numpy as np

from fastnn import MLPClassifier, get_backend
from fastnn.datasets import load_digits
from fastnn.network import TrainStep
from fastnn.optim import AdamOptimizer

from .common import BACKENDS

HIDDEN = (128,)
BATCH = 200


def _model(backend, epochs):
    return MLPClassifier(HIDDEN, backend=backend, max_iter=epochs, batch_size=BATCH,
                         shuffle=False, random_state=0)


class FitEpoch:
    """One epoch of fit; `time_bare_steps` is the same epoch's steps without fit.

    Their ratio is the trainer's overhead (validation, shuffling, bookkeeping).
    """

    params = [BACKENDS]
    param_names = ["backend"]

    def setup(self, backend):
        X, _, y, _ = load_digits()
        self.X, self.y = X, y
        self.fit_epoch(backend)  # compiles
        ops = get_backend(backend).ops
        rng = np.random.default_rng(0)
        coefs = [(rng.standard_normal((k, m)) * 0.1).astype(np.float32)
                 for k, m in zip((X.shape[1], *HIDDEN), (*HIDDEN, 10))]
        intercepts = [np.zeros(W.shape[1], np.float32) for W in coefs]
        self.train = TrainStep(ops, coefs, intercepts, BATCH)
        self.optimizer = AdamOptimizer(self.train.params, ops)
        self.labels = y.astype(np.intp)
        self.time_bare_steps(backend)

    def fit_epoch(self, backend):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning after one epoch
            _model(backend, 1).fit(self.X, self.y)

    def time_fit_epoch(self, backend):
        self.fit_epoch(backend)

    def time_bare_steps(self, backend):
        X, y, train, optimizer = self.X, self.labels, self.train, self.optimizer
        params, grads = train.params, train.grads
        for start in range(0, X.shape[0], BATCH):
            train.loss_and_grads(X[start:start + BATCH], y[start:start + BATCH], 1e-4)
            optimizer.update_params(params, grads)

    def peakmem_fit(self, backend):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _model(backend, 5).fit(self.X, self.y)
