"""What happens between epochs: history, validation, early stopping, callbacks.

The epoch loop (`fastnn._base.BaseMLP._train`) calls `EpochMonitor.end_epoch`
after every finished epoch; the monitor writes the estimator's public
attributes as scikit-learn names them (`loss_curve_`, `best_loss_`,
`validation_scores_`, `best_validation_score_`) and `history_`, and says
whether to stop.
"""

import numpy as np


class EpochMonitor:
    """Per-epoch bookkeeping of one `fit` or `partial_fit` call.

    Parameters
    ----------
    model : BaseMLP
    X, targets : the training data (rows picked by `val_rows` are the
        early-stopping split's validation rows)
    val_rows : intp ndarray or None
    monitor_data : (X_val, y_val) or None
        Scored into history only.
    incremental : bool
        partial_fit: no early stopping.
    epoch_callback : callable or None
    """

    def __init__(self, model, X, targets, val_rows, monitor_data, incremental, epoch_callback):
        self.model = model
        self.X = X
        self.targets = targets
        self.val_rows = val_rows
        self.monitor_data = monitor_data
        self.incremental = incremental
        self.epoch_callback = epoch_callback
        self.best_weights = None

    def end_epoch(self, result, seconds):
        """Record a finished epoch (`fastnn.training.EpochResult`); True to stop."""
        model = self.model
        loss = result.loss
        model.loss_curve_.append(loss)
        record = {"epoch": model.n_iter_, "loss": loss, "seconds": seconds,
                  "samples_per_second": result.weight / seconds if seconds > 0 else float("inf")}
        record.update(model._training_metrics(result))
        if self.monitor_data is not None:
            record.update(model._validation_metrics(*self.monitor_data))
        for key, value in record.items():
            model.history_.setdefault(key, []).append(value)
        if model.verbose:
            print(f"Iteration {model.n_iter_}, loss = {loss:.8f}")
        if self.val_rows is not None:
            score = model._score_rows(self.X, self.targets, self.val_rows)
            model.validation_scores_.append(score)
            improved = score > model.best_validation_score_ + model.tol
            if score > model.best_validation_score_:
                model.best_validation_score_ = score
                if self.best_weights is None:
                    self.best_weights = model._params.data.copy()
                else:
                    np.copyto(self.best_weights, model._params.data)
        else:
            improved = loss < model.best_loss_ - model.tol
        model.best_loss_ = min(model.best_loss_, loss)
        model._no_improvement_count = 0 if improved else model._no_improvement_count + 1
        # after the bookkeeping: a checkpoint saved by the callback is a whole epoch
        if self.epoch_callback is not None:
            self.epoch_callback(model, record)
        if not self.incremental and model._no_improvement_count > model.n_iter_no_change:
            if model.verbose:
                what = "Validation score" if self.val_rows is not None else "Training loss"
                print(f"{what} did not improve more than tol={model.tol} for "
                      f"{model.n_iter_no_change} consecutive epochs. Stopping.")
            return True
        return False

    def restore_best(self):
        """With early stopping, the weights of the best validation score."""
        if self.best_weights is not None:
            np.copyto(self.model._params.data, self.best_weights)
