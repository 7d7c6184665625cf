"""`MLPClassifier`: a scikit-learn compatible estimator over fastnn's kernels.

Parameter names and defaults follow `sklearn.neural_network.MLPClassifier`
wherever the concept is the same, so that swapping the import is a drop-in
change. The training loop is thin Python: buffers are allocated once per fit
and every step is a handful of kernel calls (see `fastnn.network`).
"""

import contextlib
import math
import numbers
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted

from ._interrupt import DeferredInterrupt
from .backend import get_backend
from .network import ForwardPass, TrainStep, predict_logits
from .optim import SOLVERS

ACTIVATIONS = ("relu",)
DTYPES = {"float32": np.float32, "float64": np.float64}


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier: ReLU hidden layers, softmax output.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
    activation : {"relu"}, default="relu"
    solver : {"adam", "sgd"}, default="adam"
    alpha : float, default=1e-4
        L2 penalty, scaled by the batch size as in scikit-learn.
    batch_size : int or "auto", default="auto"
        "auto" is ``min(200, n_samples)``; an int >= n_samples is full-batch
        gradient descent.
    learning_rate_init : float, default=1e-3
    max_iter : int, default=200
        Number of epochs.
    shuffle : bool, default=True
    random_state : int, RandomState or None
        Seeds the He initialisation, the shuffling and the validation split.
    tol : float, default=1e-4
    verbose : bool, default=False
        Prints scikit-learn's ``Iteration %d, loss = %.8f`` lines.
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float
        Adam's parameters.
    n_iter_no_change : int, default=10
    backend : {"numba", "numpy"}, default="numba"
    dtype : {"float32", "float64"}, default="float32"

    Attributes
    ----------
    classes_, coefs_, intercepts_, loss_curve_, n_iter_, n_features_in_,
    n_layers_, n_outputs_, t_, best_loss_, validation_scores_,
    best_validation_score_ (with early stopping).
    history_ : dict of lists, one entry per epoch (like Keras' ``History.history``)
        "epoch", "loss", "seconds" and "samples_per_second" of the training
        pass; "train_accuracy" of the epoch's final weights on (at most ~2,000
        evenly spaced) training rows; "val_accuracy" with `validation_data`.

    Pressing Ctrl-C during `fit` or `partial_fit` stops training after the
    current batch, returns the model to the end of its last finished epoch
    (weights, optimizer state, counters, history) and then raises the
    KeyboardInterrupt; a second Ctrl-C interrupts at once. A NaN or inf loss (or weights) does
    the same and raises `DivergenceError`, naming the epoch, the batch and the
    learning rate. A saved model is a checkpoint: ``fastnn.load(path).fit(X,
    y, resume=True)`` continues its run exactly.
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate_init=0.001,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        backend="numba",
        dtype="float32",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.dtype = dtype

    # -- public API ---------------------------------------------------------

    def fit(self, X, y, *, validation_data=None, epoch_callback=None, resume=False):
        """Train from scratch on (X, y) for up to `max_iter` epochs. Returns self.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like (n_samples,)
        validation_data : (X_val, y_val), optional
            Scored after every epoch into ``history_["val_accuracy"]``; it
            does not steer training (`early_stopping` splits its own).
        epoch_callback : callable, optional
            Called as ``epoch_callback(model, record)`` after every epoch, with
            that epoch's entries of `history_` as a dict.
        resume : bool, default=False
            Continue this model's run instead of starting over: from its weights,
            optimizer state, epoch count and shuffling RNG (all restored by
            `fastnn.load` of a file saved mid-run), up to `max_iter` epochs in
            all. On the same data, the weights then equal an uninterrupted run's.
        """
        self._validate_params()
        X, y = self._check_X_y(X, y, self._dtype)
        if resume:
            epochs = self._epochs_to_resume(X)
        else:
            self.classes_ = _unique_classes(y, "y")
            self.n_features_in_ = X.shape[1]
            epochs = self.max_iter
        monitor = None
        if validation_data is not None:
            X_val, y_val = self._check_X_y(*validation_data, self._dtype)
            self._check_n_features(X_val)
            monitor = (X_val, y_val)
        if not resume:
            self._initialize(X.shape[1], len(self.classes_))
        with self._rollback_on_interrupt() as interrupt:
            self._fit_epochs(X, self._encode(y), epochs, incremental=False,
                             monitor=monitor, epoch_callback=epoch_callback,
                             interrupt=interrupt)
        return self

    def _epochs_to_resume(self, X):
        if not hasattr(self, "_optimizer"):
            raise ValueError(
                "resume=True needs a model that has trained: fit it, or load a file it saved"
            )
        if self.early_stopping:
            raise ValueError("resume=True does not support early_stopping=True")
        if self.coefs_[0].dtype != self._dtype or self._hidden != tuple(
            W.shape[1] for W in self.coefs_[:-1]
        ):
            raise ValueError("resume=True: dtype and hidden_layer_sizes must not change")
        self._check_n_features(X)
        if self.n_iter_ >= self.max_iter:
            raise ValueError(
                f"resume=True: this run has trained {self.n_iter_} epochs, max_iter is "
                f"{self.max_iter}; raise max_iter to continue"
            )
        return self.max_iter - self.n_iter_

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current weights.

        `classes` (every label that will ever be seen) is required on the
        first call, as in scikit-learn. Returns self.
        """
        if not hasattr(self, "coefs_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self._validate_params()
            X, y = self._check_X_y(X, y, self._dtype)
            self.classes_ = _unique_classes(np.asarray(classes), "classes")
            self.n_features_in_ = X.shape[1]
            self._initialize(X.shape[1], len(self.classes_))
        else:
            X, y = self._check_X_y(X, y, self.coefs_[0].dtype)
            self._check_n_features(X)
        with self._rollback_on_interrupt() as interrupt:
            self._fit_epochs(X, self._encode(y), 1, incremental=True, interrupt=interrupt)
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in `classes_` order."""
        X = self._validate_predict_input(X)
        ops = get_backend(self.backend).ops
        logits = predict_logits(ops, self.coefs_, self.intercepts_, X)
        return ops.softmax(logits, logits)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class label of each row of X."""
        X = self._validate_predict_input(X)
        ops = get_backend(self.backend).ops
        logits = predict_logits(ops, self.coefs_, self.intercepts_, X)
        return self.classes_[np.argmax(logits, axis=1)]

    def save(self, path):
        """Write the fitted model to `path` as a .npz file (no pickle)."""
        from .serialization import save_model

        save_model(self, path)

    # -- validation ---------------------------------------------------------

    def _validate_params(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        sizes = tuple(sizes)
        if not sizes or any(
            not isinstance(s, numbers.Integral) or isinstance(s, bool) or s < 1 for s in sizes
        ):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {self.solver!r}")
        if self.dtype not in DTYPES and np.dtype(self.dtype).name not in DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        get_backend(self.backend)  # raises for an unknown name
        _positive("learning_rate_init", self.learning_rate_init)
        _positive("epsilon", self.epsilon)
        _non_negative("alpha", self.alpha)
        _non_negative("tol", self.tol)
        for name in ("max_iter", "n_iter_no_change"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        bs = self.batch_size
        if bs != "auto" and (
            not isinstance(bs, numbers.Integral) or isinstance(bs, bool) or bs < 1
        ):
            raise ValueError(f"batch_size must be 'auto' or a positive integer, got {bs!r}")
        for name in ("momentum", "beta_1", "beta_2"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        vf = self.validation_fraction
        if not isinstance(vf, numbers.Real) or not 0 < vf < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {vf!r}")
        self._hidden = sizes
        self._dtype = np.dtype(DTYPES.get(self.dtype, self.dtype))

    @staticmethod
    def _check_X_y(X, y, dtype):
        # scikit-learn's check_array: 2-D, non-empty, finite (NaN/inf rejected)
        X = check_array(X, dtype=dtype, order="C")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y.shape}")
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have different numbers of samples: {X.shape[0]} and {y.shape[0]}"
            )
        check_classification_targets(y)
        return X, y

    def _encode(self, y):
        """Labels as indices into classes_ (intp, what the kernels take)."""
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y holds labels not in classes_: {unseen[:5].tolist()}")
        return np.searchsorted(self.classes_, y).astype(np.intp)

    def _check_n_features(self, X):
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but this model was fitted with "
                f"{self.n_features_in_}"
            )

    def _validate_predict_input(self, X):
        check_is_fitted(self, "coefs_")
        X = check_array(X, dtype=self.coefs_[0].dtype, order="C")
        self._check_n_features(X)
        return X

    # -- training -----------------------------------------------------------

    def _initialize(self, n_features, n_classes):
        """He-initialised weights, zero biases, fresh optimizer and curves."""
        rng = check_random_state(self.random_state)
        self._rng = rng
        sizes = [n_features, *self._hidden, n_classes]
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            std = np.sqrt(2.0 / fan_in)
            self.coefs_.append(rng.normal(0.0, std, (fan_in, fan_out)).astype(self._dtype))
            self.intercepts_.append(np.zeros(fan_out, dtype=self._dtype))
        self.n_layers_ = len(sizes)
        self.n_outputs_ = n_classes
        self.out_activation_ = "softmax"
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.history_ = {}
        self.best_loss_ = np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self._no_improvement_count = 0
        self._optimizer = self._make_optimizer()

    def _make_optimizer(self):
        """A fresh optimizer over coefs_ and intercepts_ (zero state)."""
        ops = get_backend(self.backend).ops
        params = self.coefs_ + self.intercepts_
        if self.solver == "sgd":
            return SOLVERS["sgd"](
                params, ops, self.learning_rate_init, self.momentum, self.nesterovs_momentum
            )
        return SOLVERS["adam"](
            params, ops, self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon
        )

    def _fit_epochs(self, X, y, epochs, incremental, monitor=None, epoch_callback=None,
                    interrupt=None):
        rng = self._rng
        X_val = y_val = None
        if self.early_stopping and not incremental:
            stratify = y if np.bincount(y).min() >= 2 else None
            X, X_val, y, y_val = train_test_split(
                X, y, random_state=rng, test_size=self.validation_fraction, stratify=stratify
            )
            X, y = np.ascontiguousarray(X), np.ascontiguousarray(y)
        n = X.shape[0]
        batch = min(200 if self.batch_size == "auto" else self.batch_size, n)
        ops = get_backend(self.backend).ops
        step = TrainStep(ops, self.coefs_, self.intercepts_, batch)
        self._optimizer.ops = ops
        # With shuffling, each batch is gathered into one reused buffer.
        x_batch = np.empty((batch, X.shape[1]), dtype=X.dtype) if self.shuffle else None
        y_batch = np.empty(batch, dtype=np.intp) if self.shuffle else None
        best_params = None
        # Training accuracy of each epoch's final weights, like val_accuracy, on
        # at most ~2,000 evenly spaced rows (+-1 % at 90 %): a forward pass over
        # all of X would cost a third of an epoch.
        every = -(-n // 2000)
        train_accuracy = _AccuracyProbe(step, X[::every], self.classes_[y[::every]],
                                        self.classes_)
        val_accuracy = None if monitor is None else _AccuracyProbe(step, *monitor,
                                                                   self.classes_)
        self._save_epoch_state()

        for _ in range(epochs):
            started = time.perf_counter()
            if self.shuffle:
                # from the identity each epoch, so that the RNG state alone (what
                # a checkpoint holds) fixes the order of the epochs to come
                order = rng.permutation(n)
            total = 0.0
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                if self.shuffle:
                    rows = order[start:stop]
                    xb = np.take(X, rows, axis=0, out=x_batch[: stop - start])
                    yb = np.take(y, rows, out=y_batch[: stop - start])
                else:
                    xb, yb = X[start:stop], y[start:stop]
                loss = step.loss_and_grads(xb, yb, self.alpha)
                if not math.isfinite(loss):  # a Python float: cheaper than np.isfinite
                    raise self._diverged(loss, start // batch + 1, -(-n // batch))
                self._optimizer.update_params(step.params, step.grads)
                total += loss * (stop - start)
                if interrupt is not None and interrupt.pending:
                    raise KeyboardInterrupt
            # the last batch's update is checked here: no next loss will see it
            if not all(np.isfinite(p).all() for p in step.params):
                raise self._diverged("finite", -(-n // batch), -(-n // batch))
            self.t_ += n
            self.n_iter_ += 1
            epoch_loss = total / n
            self.loss_curve_.append(epoch_loss)
            seconds = time.perf_counter() - started
            record = {"epoch": self.n_iter_, "loss": epoch_loss, "seconds": seconds,
                      "samples_per_second": n / seconds if seconds > 0 else float("inf")}
            record["train_accuracy"] = train_accuracy()
            if val_accuracy is not None:
                record["val_accuracy"] = val_accuracy()
            for key, value in record.items():
                self.history_.setdefault(key, []).append(value)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {epoch_loss:.8f}")
            if X_val is not None:
                score = float(np.mean(self.predict(X_val) == self.classes_[y_val]))
                self.validation_scores_.append(score)
                improved = score > self.best_validation_score_ + self.tol
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_params = [p.copy() for p in step.params]
            else:
                improved = epoch_loss < self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, epoch_loss)
            self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
            # after the bookkeeping: a checkpoint saved by the callback is a whole epoch
            if epoch_callback is not None:
                epoch_callback(self, record)
            self._save_epoch_state()
            if not incremental and self._no_improvement_count > self.n_iter_no_change:
                if self.verbose:
                    what = "Validation score" if X_val is not None else "Training loss"
                    print(f"{what} did not improve more than tol={self.tol} for "
                          f"{self.n_iter_no_change} consecutive epochs. Stopping.")
                break
        else:
            if not incremental:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({epochs}) reached and "
                    "the optimization hasn't converged yet.",
                    ConvergenceWarning,
                )
        if best_params is not None:
            for param, best in zip(step.params, best_params):
                param[...] = best

    @contextlib.contextmanager
    def _rollback_on_interrupt(self):
        """On Ctrl-C or divergence, return to the end of the last finished epoch, re-raise.

        Weights, optimizer state, shuffling RNG, `n_iter_`, `t_`, `loss_curve_`
        and `history_` go back to what they were then: a half-done epoch is
        discarded whole. Yields the `DeferredInterrupt` that the loop checks
        after each batch (Ctrl-C stops after the current batch).
        """
        try:
            with DeferredInterrupt() as interrupt:
                yield interrupt
        except (KeyboardInterrupt, DivergenceError):
            saved = getattr(self, "_epoch_state", None)
            if saved is not None:  # else no batch has run yet: nothing changed
                arrays, optimizer_scalars, n_iter, t, rng_state = saved
                for dst, src in zip(self._state_arrays(), arrays):
                    np.copyto(dst, src)
                self._rng.set_state(rng_state)
                for name, value in optimizer_scalars.items():
                    setattr(self._optimizer, name, value)
                self.n_iter_, self.t_ = n_iter, t
                del self.loss_curve_[n_iter:]
                for values in self.history_.values():
                    del values[n_iter:]
            raise
        finally:
            self._epoch_state = None

    def _state_arrays(self):
        state = self._optimizer.state()
        return self.coefs_ + self.intercepts_ + [
            a for value in state.values() if isinstance(value, list) for a in value
        ]

    def _save_epoch_state(self):
        """Copy what `_rollback_on_interrupt` restores (into the same arrays each epoch)."""
        optimizer_scalars = {
            k: v for k, v in self._optimizer.state().items() if not isinstance(v, list)
        }
        saved = getattr(self, "_epoch_state", None)
        if saved is None:
            arrays = [a.copy() for a in self._state_arrays()]
        else:
            arrays = saved[0]
            for dst, src in zip(arrays, self._state_arrays()):
                np.copyto(dst, src)
        self._epoch_state = (arrays, optimizer_scalars, self.n_iter_, self.t_,
                             self._rng.get_state())

    def _diverged(self, loss, batch, n_batches):
        what = "the weights became NaN or inf" if loss == "finite" else f"the loss became {loss}"
        return DivergenceError(
            f"training diverged at epoch {self.n_iter_ + 1}, batch {batch} of {n_batches}: "
            f"{what} (learning rate {self._optimizer.learning_rate:g}). The weights "
            f"are those of the last finished epoch ({self.n_iter_}); try a smaller "
            "learning_rate_init or scaled inputs.",
            epoch=self.n_iter_ + 1, batch=batch, learning_rate=self._optimizer.learning_rate,
        )


class _AccuracyProbe:
    """Accuracy of a training step's current weights on fixed rows (X, labels).

    Its forward buffers are allocated once per fit, not per epoch as `predict`
    would, which matters when an epoch is one full-batch step.
    """

    def __init__(self, step, X, labels, classes):
        self.X = np.ascontiguousarray(X)
        self.labels = labels
        self.classes = classes
        self.forward = ForwardPass(step.ops, step.coefs, step.intercepts,
                                   self.X.shape[0]).forward

    def __call__(self):
        predicted = self.classes[np.argmax(self.forward(self.X), axis=1)]
        return float(np.mean(predicted == self.labels))


class DivergenceError(FloatingPointError):
    """The training loss became NaN or inf; the model holds its last finite weights.

    Attributes `epoch` and `batch` (both from 1) say where, `learning_rate` at what step size.
    """

    def __init__(self, message, *, epoch, batch, learning_rate):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.learning_rate = learning_rate


def _unique_classes(labels, name):
    classes = np.unique(labels)
    if classes.size < 2:
        raise ValueError(
            f"{name} has {classes.size} class(es); a classifier needs at least 2"
        )
    return classes


def _positive(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _non_negative(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
