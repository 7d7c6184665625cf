"""A run's training state: reading and restoring it, warm starts, rollback.

`RunState` is a mixin of `fastnn.estimators.base.BaseMLP`. Rollback (Ctrl-C,
divergence), checkpoints, serialization, resume and warm starts all go
through `get_training_state()` / `set_training_state()` and
`fastnn.engine.training_state.TrainingState`, never through the optimizer's private attributes.
"""

import contextlib
import signal

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from fastnn import distributed
from fastnn.engine.interrupt import DeferredInterrupt
from fastnn.engine.optim import OPTIMIZERS
from fastnn.engine.training_state import TrainingState
from fastnn.errors import DivergenceError

# `_epoch_state` when the state to return to is the current one
_KEEP = object()


class RunState:
    """Training-state methods of `BaseMLP` (which provides `_start_optimizer`,
    `_ensure_flat`, `_reset_curves` and `_validate_params`)."""

    def get_training_state(self):
        """The run's `fastnn.engine.training_state.TrainingState` (a copy), or None before training
        (and after L-BFGS, which keeps no state between fits)."""
        if not hasattr(self, "_optimizer"):
            return None
        opt = self._optimizer.state()
        return TrainingState(
            solver=self.solver,
            learning_rate=opt["learning_rate"],
            adam_step=opt.get("t", 0),
            optimizer_arrays={k: v.copy() for k, v in opt["arrays"].items()},
            rng_state=self._rng.get_state(),
            n_iter=self.n_iter_,
            samples_seen=self.t_,
            best_loss=self.best_loss_,
            no_improvement_count=self._no_improvement_count,
            validation_scores=None
            if self.validation_scores_ is None
            else list(self.validation_scores_),
            best_validation_score=self.best_validation_score_,
            dropout_seed=self._dropout_seed,
            dropout_step=self._dropout_step,
        )

    def set_training_state(self, state):
        """Continue from `state` (a `TrainingState`): optimizer, RNG and counters."""
        check_is_fitted(self, "coefs_")
        self._validate_params()
        if state.solver != self.solver:
            raise ValueError(
                f"the state is of solver {state.solver!r}, this model's is {self.solver!r}"
            )
        self._ensure_flat()
        self._start_optimizer()
        self._optimizer.set_state(
            {
                "learning_rate": state.learning_rate,
                "t": state.adam_step,
                "arrays": state.optimizer_arrays,
            }
        )
        self._rng = np.random.RandomState()
        self._rng.set_state(state.rng_state)
        self.n_iter_ = int(state.n_iter)
        self.t_ = int(state.samples_seen)
        self.best_loss_ = None if state.best_loss is None else float(state.best_loss)
        self._no_improvement_count = int(state.no_improvement_count)
        self.validation_scores_ = (
            None if state.validation_scores is None else list(state.validation_scores)
        )
        self.best_validation_score_ = state.best_validation_score
        # states made before dropout existed lack them (pickled TrainingStates)
        seed = getattr(state, "dropout_seed", None)
        self._dropout_seed = None if seed is None else int(seed)
        self._dropout_step = int(getattr(state, "dropout_step", 0))

    def _restart_training_state(self):
        """warm_start: keep weights, samples seen and the early-stopping record; start a
        new run (fresh optimizer and shuffling RNG, epoch count 0), as scikit-learn does."""
        self._ensure_flat()
        self._rng = check_random_state(self.random_state)
        self.n_iter_ = 0
        if self.solver not in OPTIMIZERS:
            self.__dict__.pop("_optimizer", None)
            return
        if not hasattr(self, "loss_curve_"):  # the previous fit was L-BFGS
            self._reset_curves()
        if self.early_stopping and self.validation_scores_ is None:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self.best_loss_ = None
        self._start_optimizer()

    @contextlib.contextmanager
    def _rollback_on_interrupt(self):
        """On Ctrl-C or divergence, return to the end of the last finished epoch, re-raise.

        Weights, training state, `loss_curve_` and `history_` go back to what
        they were then: a half-done epoch is discarded whole. Yields the
        `DeferredInterrupt` that the loop checks (Ctrl-C stops after the
        current batch).
        """
        # data-parallel runs stop together on SIGTERM too (a batch scheduler's)
        group = distributed.current()
        sharded = group is not None and group.size > 1
        signals = (signal.SIGINT, signal.SIGTERM) if sharded else (signal.SIGINT,)
        try:
            with DeferredInterrupt(signals) as interrupt:
                yield interrupt
        except (KeyboardInterrupt, DivergenceError):
            self._restore_epoch_state()
            raise
        finally:
            self._epoch_state = None

    def _restore_epoch_state(self):
        saved = getattr(self, "_epoch_state", None)
        if saved is None or saved is _KEEP:  # nothing changed since, or nothing to undo
            return
        weights, state, lengths = saved
        np.copyto(self._params.data, weights)
        self.set_training_state(state)
        del self.loss_curve_[lengths["loss_curve_"] :]
        for key, values in self.history_.items():
            del values[lengths.get(key, 0) :]

    def _save_epoch_state(self):
        """Copy what `_rollback_on_interrupt` restores (weights into the same buffer)."""
        saved = getattr(self, "_epoch_state", None)
        if saved is None or saved is _KEEP:
            weights = self._params.data.copy()
        else:
            weights = saved[0]
            np.copyto(weights, self._params.data)
        lengths = {key: len(values) for key, values in self.history_.items()}
        lengths["loss_curve_"] = len(self.loss_curve_)
        self._epoch_state = (weights, self.get_training_state(), lengths)

    def _keep_epoch_state(self):
        """Mark the current state as the one an interrupt returns to (no copy)."""
        self._epoch_state = _KEEP
