"""Optimizers: one `update_params(params, grads)` each, as in scikit-learn.

They hold their state arrays (velocities, moments) allocated once, and call
the backend's in-place update kernels, so a step allocates nothing.
"""

import numpy as np


class SGDOptimizer:
    """SGD with optional (Nesterov) momentum over a list of parameter arrays."""

    def __init__(self, params, ops, learning_rate_init=0.1, momentum=0.9, nesterov=True):
        self.ops = ops
        self.learning_rate = float(learning_rate_init)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.velocities = [np.zeros_like(p) for p in params] if self.momentum > 0 else None

    def update_params(self, params, grads):
        for i, (param, grad) in enumerate(zip(params, grads)):
            velocity = None if self.velocities is None else self.velocities[i]
            self.ops.sgd_update(
                param, grad, self.learning_rate, velocity, self.momentum, self.nesterov
            )

    def state(self):
        return {"velocities": self.velocities or []}


class AdamOptimizer:
    """Adam (Kingma & Ba) with scikit-learn's bias-corrected step size."""

    def __init__(self, params, ops, learning_rate_init=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8):
        self.ops = ops
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.t = 0
        self.ms = [np.zeros_like(p) for p in params]
        self.vs = [np.zeros_like(p) for p in params]

    def update_params(self, params, grads):
        self.t += 1
        for param, grad, m, v in zip(params, grads, self.ms, self.vs):
            self.ops.adam_update(
                param, grad, m, v, self.t, self.learning_rate,
                self.beta_1, self.beta_2, self.epsilon,
            )

    def state(self):
        return {"ms": self.ms, "vs": self.vs, "t": self.t}


SOLVERS = {"sgd": SGDOptimizer, "adam": AdamOptimizer}
