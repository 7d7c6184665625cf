"""What happens between epochs: history, validation, early stopping, schedules, callbacks.

The epoch loop (`fastnn.estimators.base.BaseMLP._train`) calls `EpochMonitor.end_epoch`
after every finished epoch; the monitor writes the estimator's public
attributes as scikit-learn names them (`loss_`, `loss_curve_`, `best_loss_`,
`validation_scores_`, `best_validation_score_`) and `history_`, applies the
optimizer's learning-rate schedule, and says whether to stop. The rules are
scikit-learn's `_update_no_improvement_count` and `_fit_stochastic`.
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning


class EpochMonitor:
    """Per-epoch bookkeeping of one `fit` or `partial_fit` call.

    Parameters
    ----------
    model : BaseMLP
    X, targets : the training data (rows picked by `val_rows` are the
        early-stopping split's validation rows)
    sample_weight : float64 ndarray or None
        Weights of the rows, the validation rows' included.
    val_rows : intp ndarray or None
    monitor_data : (X_val, y_val) or None
        Scored into history only.
    incremental : bool
        partial_fit.
    epoch_callback : callable or None
    group : fastnn.distributed.DataParallel or None
        Data-parallel training: rank 0 scores validation data and sends the
        scores to the others, so that every rank takes the same early-stopping
        decisions on the same numbers; only rank 0 prints.
    """

    def __init__(
        self,
        model,
        X,
        targets,
        sample_weight,
        val_rows,
        monitor_data,
        incremental,
        epoch_callback,
        group=None,
    ):
        self.model = model
        self.group = group
        self.verbose = model.verbose and (group is None or group.is_root)
        self.X = X
        self.targets = targets
        self.sample_weight = sample_weight
        self.val_rows = val_rows
        self.monitor_data = monitor_data
        # whether monitor_data's targets passed the metric's checks (the first epoch)
        self.monitor_checked = False
        self.incremental = incremental
        self.epoch_callback = epoch_callback
        self.best_weights = None
        if val_rows is not None and np.isfinite(model.best_validation_score_):
            # warm_start: the weights a previous fit restored are the best so far
            self.best_weights = model._params.data.copy()

    def end_epoch(self, result, seconds):
        """Record a finished epoch (`fastnn.engine.epoch_loop.EpochResult`); True to stop."""
        model = self.model
        record = self._record(result.loss, seconds, result.weight)
        record.update(model._training_metrics(result))
        if self.monitor_data is not None:
            checked = self.monitor_checked
            record.update(
                self._on_root(lambda: model._validation_metrics(*self.monitor_data, checked))
            )
            self.monitor_checked = True
        self._append(record)
        if self.val_rows is not None:
            self._score_validation_rows()
        else:
            # None: the previous fit stopped early on validation scores, and
            # this one (early_stopping switched off) starts the loss's record
            best = np.inf if model.best_loss_ is None else model.best_loss_
            if result.loss > best - model.tol:
                model._no_improvement_count += 1
            else:
                model._no_improvement_count = 0
            model.best_loss_ = min(best, result.loss)
        model._optimizer.iteration_ends(model.t_)
        stop = False
        if model._no_improvement_count > model.n_iter_no_change:
            what = "Validation score" if self.val_rows is not None else "Training loss"
            msg = (
                f"{what} did not improve more than tol={model.tol:f} for "
                f"{model.n_iter_no_change} consecutive epochs."
            )
            stop = model._optimizer.trigger_stopping(msg, self.verbose)
            if not stop:
                model._no_improvement_count = 0
        # after the bookkeeping and the schedule: a checkpoint saved by the
        # callback is a whole epoch
        if self.epoch_callback is not None:
            self.epoch_callback(model, record)
        return stop

    def has_best_weights(self):
        """Whether early stopping holds weights to fall back on (a divergence is outlived)."""
        return self.best_weights is not None

    def end_diverged_epoch(self, seconds, message):
        """An epoch that diverged under early stopping: recorded with a NaN loss and score,
        as scikit-learn records it; training then stops on the best weights."""
        model = self.model
        record = self._record(float("nan"), seconds, 0.0)
        for key in model.history_:
            record.setdefault(key, float("nan"))
        self._append(record)
        model.validation_scores_.append(float("nan"))
        model._no_improvement_count += 1
        warnings.warn(
            f"{message} Early stopping keeps the weights of the best validation "
            f"score ({model.best_validation_score_:g}).",
            ConvergenceWarning,
            stacklevel=4,
        )

    def restore_best(self):
        """With early stopping, the weights of the best validation score."""
        if self.best_weights is not None:
            np.copyto(self.model._params.data, self.best_weights)

    def _record(self, loss, seconds, weight):
        return {
            "epoch": self.model.n_iter_,
            "loss": loss,
            "seconds": seconds,
            "samples_per_second": weight / seconds if seconds > 0 else float("inf"),
        }

    def _append(self, record):
        model = self.model
        model.loss_ = record["loss"]
        model.loss_curve_.append(record["loss"])
        for key, value in record.items():
            model.history_.setdefault(key, []).append(value)
        if self.verbose:
            print(f"Iteration {model.n_iter_}, loss = {record['loss']:.8f}")

    def _score_validation_rows(self):
        model = self.model
        score = self._on_root(
            lambda: model._score_rows(self.X, self.targets, self.val_rows, self.sample_weight)
        )
        model.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < model.best_validation_score_ + model.tol:
            model._no_improvement_count += 1
        else:
            model._no_improvement_count = 0
        if score > model.best_validation_score_:
            model.best_validation_score_ = score
            if self.best_weights is None:
                self.best_weights = model._params.data.copy()
            else:
                np.copyto(self.best_weights, model._params.data)

    def _on_root(self, compute):
        """compute(), or, training data-parallel, rank 0's result of it."""
        return compute() if self.group is None else self.group.from_root(compute)
