"""Optimizers over the flat parameter buffer: one `update_params(params, grads)` each.

As in scikit-learn, an optimizer holds its state (velocity, moments) and its
current learning rate, which SGD's schedule changes between epochs
(`iteration_ends`, `trigger_stopping`: scikit-learn's `_stochastic_optimizers`).
Its state arrays are flat like the parameters, so a step is one kernel call,
and the compiled epoch loop (`fastnn.engine.numba_epoch`) takes them as they are.
`state()` and `set_state()` are the one format serialization, rollback and
resume read and write.
"""

import numpy as np

from fastnn.contract.tables import ADAM, SGD
from fastnn.engine.params import aligned_zeros


class SGDOptimizer:
    """SGD with optional (Nesterov) momentum and scikit-learn's learning-rate schedules.

    `lr_schedule`: "constant"; "invscaling", ``learning_rate_init / (t + 1) ** power_t``
    with t the samples seen, set at the end of each epoch; "adaptive", divided by 5
    each time training stops improving (see `trigger_stopping`). The learning rate
    is constant within an epoch, so the compiled epoch loop takes a single one.
    """

    code = SGD

    def __init__(
        self,
        size,
        dtype,
        learning_rate_init=0.1,
        momentum=0.9,
        nesterov=True,
        lr_schedule="constant",
        power_t=0.5,
    ):
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.lr_schedule = lr_schedule
        self.power_t = float(power_t)
        self.velocity = aligned_zeros(size if self.momentum > 0 else 0, dtype)
        self._spare = np.zeros(0, dtype)

    def iteration_ends(self, time_step):
        """After an epoch, `time_step` samples seen in all: the invscaling step size."""
        if self.lr_schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """Training stopped improving: True to stop; "adaptive" divides the rate by 5 instead,
        until it is at most 1e-6."""
        if self.lr_schedule != "adaptive":
            return _stop(msg, verbose)
        if self.learning_rate <= 1e-6:
            return _stop(msg + " Learning rate too small.", verbose)
        self.learning_rate /= 5.0
        if verbose:
            print(f"{msg} Setting learning rate to {self.learning_rate:f}")
        return False

    def update_params(self, ops, params, grads):
        velocity = self.velocity if self.momentum > 0 else None
        ops.sgd_update(params, grads, self.learning_rate, velocity, self.momentum, self.nesterov)

    def compiled_args(self):
        """(solver, lr, momentum, nesterov, beta1, beta2, eps, state1, state2, t)."""
        return (
            SGD,
            self.learning_rate,
            self.momentum,
            self.nesterov,
            0.0,
            0.0,
            1.0,
            self.velocity,
            self._spare,
            0,
        )

    def set_step_count(self, t):
        """The compiled loop's step count after it ran (SGD keeps none)."""

    def state(self):
        return {"learning_rate": self.learning_rate, "arrays": {"velocity": self.velocity}}

    def set_state(self, state):
        self.learning_rate = float(state["learning_rate"])
        _copy_arrays(self, state["arrays"])


class AdamOptimizer:
    """Adam (Kingma & Ba) with scikit-learn's form: eps added to sqrt(v), the
    bias correction folded into the step size."""

    code = ADAM

    def __init__(
        self, size, dtype, learning_rate_init=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8
    ):
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.t = 0
        self.ms = aligned_zeros(size, dtype)
        self.vs = aligned_zeros(size, dtype)

    def iteration_ends(self, time_step):
        """Adam has no schedule: its step size adapts per parameter."""

    def trigger_stopping(self, msg, verbose):
        return _stop(msg, verbose)

    def update_params(self, ops, params, grads):
        self.t += 1
        ops.adam_update(
            params,
            grads,
            self.ms,
            self.vs,
            self.t,
            self.learning_rate,
            self.beta_1,
            self.beta_2,
            self.epsilon,
        )

    def compiled_args(self):
        return (
            ADAM,
            self.learning_rate,
            0.0,
            False,
            self.beta_1,
            self.beta_2,
            self.epsilon,
            self.ms,
            self.vs,
            self.t,
        )

    def set_step_count(self, t):
        self.t = int(t)

    def state(self):
        return {
            "learning_rate": self.learning_rate,
            "t": self.t,
            "arrays": {"ms": self.ms, "vs": self.vs},
        }

    def set_state(self, state):
        self.learning_rate = float(state["learning_rate"])
        self.t = int(state["t"])
        _copy_arrays(self, state["arrays"])


def own_arrays(optimizer):
    """Give `optimizer` writeable copies of read-only state arrays (a memory-mapped pickle's)."""
    for name, value in optimizer.state()["arrays"].items():
        if not value.flags.writeable:
            setattr(optimizer, name, value.copy())


def _stop(msg, verbose):
    if verbose:
        print(msg + " Stopping.")
    return True


def _copy_arrays(optimizer, arrays):
    for name, value in arrays.items():
        mine = getattr(optimizer, name)
        value = np.asarray(value)
        if value.shape != mine.shape or value.dtype != mine.dtype:
            raise ValueError(
                f"optimizer state {name!r} is {value.dtype} {value.shape}, "
                f"expected {mine.dtype} {mine.shape}"
            )
        np.copyto(mine, value)


# The stochastic solvers; "lbfgs" is scipy's (`fastnn.estimators.lbfgs`)
OPTIMIZERS = {"sgd": SGDOptimizer, "adam": AdamOptimizer}
