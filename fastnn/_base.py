"""`BaseMLP`: what `MLPClassifier` and `MLPRegressor` share, as scikit-learn's
`BaseMultilayerPerceptron`: parameters and their validation, initialisation,
the solvers, the epoch loop, rollback, divergence and the training state.

A subclass says how targets become kernel targets (`_encode_targets`), which
output head it trains (`_head`) and how it scores rows (`_score_rows`). The
loop over batches is `fastnn.training.EpochRunner`'s; what happens between
epochs (history, early stopping, callbacks) is `fastnn._monitor.EpochMonitor`'s.
"""

import contextlib
import numbers
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted

from ._interrupt import DeferredInterrupt
from ._monitor import EpochMonitor
from ._tables import ACTIVATIONS, LOSS_NOT_FINITE
from .backend import get_backend
from .network import TrainStep, predict_logits
from .optim import SOLVERS
from .params import FlatParameters
from .state import TrainingState
from .training import EpochRunner

DTYPES = {"float32": np.float32, "float64": np.float64}
# Rows scored per chunk when validation rows are picked by index
_SCORE_CHUNK = 4096


class DivergenceError(FloatingPointError):
    """The training loss became NaN or inf; the model holds its last finite weights.

    Attributes `epoch` and `batch` (both from 1) say where, `learning_rate` at what step size.
    """

    def __init__(self, message, *, epoch, batch, learning_rate):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.learning_rate = learning_rate


class BaseMLP(BaseEstimator):
    """Shared base of the estimators; not for direct use."""

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
        input_scale=1 / 255,
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
        self.input_scale = input_scale

    # -- public API ---------------------------------------------------------

    def fit(self, X, y, sample_weight=None, *, validation_data=None, epoch_callback=None,
            resume=False):
        """Train from scratch on (X, y) for up to `max_iter` epochs. Returns self.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
            float, or uint8 (pixels 0..255), which is kept as it is and scaled
            by `input_scale` on the fly: no float copy of X is made. A
            C-contiguous array of the model's dtype (or a memory map) is not copied.
        y : array-like
            Targets (see the estimator).
        sample_weight : array-like (n_samples,), optional
            Weights of the rows' losses; each batch's normaliser is its weight sum.
        validation_data : (X_val, y_val), optional
            Scored after every epoch into `history_` ("val_accuracy" or
            "val_r2"); it does not steer training (`early_stopping` splits its own).
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
        X = self._validate_X(X)
        if resume:
            epochs = self._epochs_to_resume(X)
            targets = self._encode_targets(y, X.shape[0], first=False)
        else:
            targets = self._encode_targets(y, X.shape[0], first=True)
            self.n_features_in_ = X.shape[1]
            epochs = self.max_iter
        sw = self._validate_sample_weight(sample_weight, X)
        monitor_data = None
        if validation_data is not None:
            X_val, y_val = validation_data
            X_val = self._validate_X(X_val)
            self._check_n_features(X_val)
            monitor_data = (X_val, np.asarray(y_val))
        if not resume:
            self._initialize(X.shape[1])
        with self._rollback_on_interrupt() as interrupt:
            self._train(X, targets, sw, epochs, incremental=False, monitor_data=monitor_data,
                        epoch_callback=epoch_callback, interrupt=interrupt)
        return self

    def _partial_fit(self, X, y, sample_weight, classes):
        first = not hasattr(self, "coefs_")
        self._validate_params()
        X = self._validate_X(X)
        if first:
            targets = self._encode_targets(y, X.shape[0], first=True, classes=classes)
            self.n_features_in_ = X.shape[1]
            self._initialize(X.shape[1])
        else:
            self._check_n_features(X)
            targets = self._encode_targets(y, X.shape[0], first=False)
            if not hasattr(self, "_optimizer"):  # weights set from elsewhere
                self._ensure_flat()
                self._optimizer = self._make_optimizer()
        sw = self._validate_sample_weight(sample_weight, X)
        with self._rollback_on_interrupt() as interrupt:
            self._train(X, targets, sw, 1, incremental=True, interrupt=interrupt)
        return self

    def save(self, path):
        """Write the fitted model to `path` as a .npz file (no pickle)."""
        from .serialization import save_model

        save_model(self, path)

    def set_weights(self, coefs, intercepts, classes=None, multilabel=False):
        """Make this an untrained-state model with the given weights (a loaded or converted one).

        Parameters
        ----------
        coefs, intercepts : lists of ndarray
            (fan_in, fan_out) weights and (fan_out,) biases of every layer, of
            the model's dtype; copied into one flat buffer.
        classes : array-like, optional
            A classifier's `classes_` (required for one).
        multilabel : bool
            A classifier of multilabel indicator targets (logistic outputs).
        """
        self._validate_params()
        if len(coefs) != len(self._hidden) + 1 or len(intercepts) != len(coefs):
            raise ValueError(f"{len(coefs)} weight and {len(intercepts)} bias arrays for "
                             f"{len(self._hidden)} hidden layers")
        for i, (W, b) in enumerate(zip(coefs, intercepts)):
            if W.dtype != self._dtype or b.dtype != self._dtype:
                raise ValueError(f"layer {i} is {W.dtype}/{b.dtype}, expected {self._dtype}")
            if W.ndim != 2 or b.shape != (W.shape[1],):
                raise ValueError(f"layer {i} has shapes {W.shape} and {b.shape}")
            if i > 0 and W.shape[0] != coefs[i - 1].shape[1]:
                raise ValueError(f"layer {i} does not follow layer {i - 1}")
            if i < len(coefs) - 1 and W.shape[1] != self._hidden[i]:
                raise ValueError(f"layer {i} has {W.shape[1]} units, hidden_layer_sizes "
                                 f"says {self._hidden[i]}")
            if not (np.isfinite(W).all() and np.isfinite(b).all()):
                raise ValueError(f"layer {i} holds NaN or inf")
        self._params = FlatParameters.pack(coefs, intercepts, self._dtype)
        self.coefs_, self.intercepts_ = self._params.coefs, self._params.intercepts
        self.n_features_in_ = coefs[0].shape[0]
        self.n_layers_ = len(coefs) + 1
        self.n_outputs_ = coefs[-1].shape[1]
        self._set_output(classes, multilabel)
        self.out_activation_ = self._head
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.history_ = {}
        self.best_loss_ = np.inf
        self.validation_scores_ = None
        self.best_validation_score_ = None
        self._no_improvement_count = 0
        return self

    def get_training_state(self):
        """The run's `fastnn.state.TrainingState` (a copy), or None before training."""
        if not hasattr(self, "_optimizer"):
            return None
        opt = self._optimizer.state()
        return TrainingState(
            solver=self.solver, learning_rate=opt["learning_rate"],
            adam_step=opt.get("t", 0),
            optimizer_arrays={k: v.copy() for k, v in opt["arrays"].items()},
            rng_state=self._rng.get_state(), n_iter=self.n_iter_, samples_seen=self.t_,
            best_loss=self.best_loss_, no_improvement_count=self._no_improvement_count,
            validation_scores=None if self.validation_scores_ is None
            else list(self.validation_scores_),
            best_validation_score=self.best_validation_score_,
        )

    def set_training_state(self, state):
        """Continue from `state` (a `TrainingState`): optimizer, RNG and counters."""
        check_is_fitted(self, "coefs_")
        self._validate_params()
        if state.solver != self.solver:
            raise ValueError(f"the state is of solver {state.solver!r}, this model's is "
                             f"{self.solver!r}")
        self._ensure_flat()
        self._optimizer = self._make_optimizer()
        self._optimizer.set_state({"learning_rate": state.learning_rate, "t": state.adam_step,
                                   "arrays": state.optimizer_arrays})
        self._rng = np.random.RandomState()
        self._rng.set_state(state.rng_state)
        self.n_iter_ = int(state.n_iter)
        self.t_ = int(state.samples_seen)
        self.best_loss_ = float(state.best_loss)
        self._no_improvement_count = int(state.no_improvement_count)
        self.validation_scores_ = (None if state.validation_scores is None
                                   else list(state.validation_scores))
        self.best_validation_score_ = state.best_validation_score

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
        _positive("input_scale", self.input_scale)
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

    def _validate_X(self, X):
        """X as the kernels read it: uint8 kept, anything else as the model's dtype.

        A valid C-contiguous array (or memory map) of that dtype is not copied.
        scikit-learn's check_array refuses NaN/inf, empty and non-2-D input.
        """
        if isinstance(X, np.ndarray) and X.dtype == np.uint8:
            return check_array(np.asarray(X), dtype=None, order="C", ensure_all_finite=False)
        return check_array(np.asarray(X) if isinstance(X, np.memmap) else X,
                           dtype=self._dtype, order="C")

    def _validate_sample_weight(self, sample_weight, X):
        if sample_weight is None:
            return None
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if not np.isfinite(sw).all() or (sw < 0).any():
            raise ValueError("sample_weight must be finite and non-negative")
        return np.ascontiguousarray(sw)

    def _check_n_features(self, X):
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )

    def _validate_predict_input(self, X):
        check_is_fitted(self, "coefs_")
        if not hasattr(self, "_hidden"):
            self._validate_params()
        X = self._validate_X(X)
        self._check_n_features(X)
        return X

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

    # -- parameters ---------------------------------------------------------

    def _initialize(self, n_features):
        """scikit-learn's initialisation: Glorot uniform weights and biases
        (factor 2 instead of 6 for logistic), a fresh optimizer and curves."""
        rng = check_random_state(self.random_state)
        self._rng = rng
        sizes = [n_features, *self._hidden, self.n_outputs_]
        self._params = FlatParameters(sizes, self._dtype)
        factor = 2.0 if self.activation == "logistic" else 6.0
        for W, b in zip(self._params.coefs, self._params.intercepts):
            fan_in, fan_out = W.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            W[...] = rng.uniform(-bound, bound, W.shape)
            b[...] = rng.uniform(-bound, bound, b.shape)
        self.coefs_ = self._params.coefs
        self.intercepts_ = self._params.intercepts
        self.n_layers_ = len(sizes)
        self.out_activation_ = self._head
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.history_ = {}
        self.best_loss_ = np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self._no_improvement_count = 0
        self._optimizer = self._make_optimizer()

    def _ensure_flat(self):
        """Make coefs_/intercepts_ views of one flat buffer again.

        They stop being views when a user assigns new arrays, or a copy (pickle,
        deepcopy) has separated them; the arrays themselves are the truth.
        """
        params = getattr(self, "_params", None)
        if params is not None and params.views_of(self.coefs_, self.intercepts_):
            return
        self._params = FlatParameters.pack(self.coefs_, self.intercepts_, self._dtype)
        self.coefs_ = self._params.coefs
        self.intercepts_ = self._params.intercepts

    def _make_optimizer(self):
        """A fresh optimizer over the flat parameters (zero state)."""
        size, dtype = self._params.size, self._dtype
        if self.solver == "sgd":
            return SOLVERS["sgd"](size, dtype, self.learning_rate_init, self.momentum,
                                  self.nesterovs_momentum)
        return SOLVERS["adam"](size, dtype, self.learning_rate_init, self.beta_1, self.beta_2,
                               self.epsilon)

    def __setstate__(self, state):
        # a copy separates coefs_/intercepts_ from the flat buffer: rejoin them
        self.__dict__.update(state)
        params = state.get("_params")
        if params is not None and "coefs_" in state:
            params.__init__(params.layer_sizes, params.data.dtype, params.data)
            for mine, theirs in zip(params.coefs + params.intercepts,
                                    list(self.coefs_) + list(self.intercepts_)):
                mine[...] = theirs
            self.coefs_, self.intercepts_ = params.coefs, params.intercepts

    # -- training -----------------------------------------------------------

    def _train(self, X, targets, sw, epochs, incremental, monitor_data=None,
               epoch_callback=None, interrupt=None):
        self._ensure_flat()
        labels, Y = targets
        n = X.shape[0]
        train_rows = val_rows = None
        if self.early_stopping and not incremental:
            train_rows, val_rows = self._validation_split(n, labels, Y)
        n_train = n if train_rows is None else train_rows.shape[0]
        batch = min(200 if self.batch_size == "auto" else self.batch_size, n_train)
        grads = FlatParameters(self._params.layer_sizes, self._dtype)
        step = TrainStep(self.backend, self._params.coefs, self._params.intercepts, batch,
                         self.activation, self._head, grads.coefs, grads.intercepts)
        runner = EpochRunner(step, self._optimizer, self._params, grads, X, labels, Y, sw,
                             batch, self.alpha, self.input_scale)
        monitor = EpochMonitor(self, X, targets, val_rows, monitor_data, incremental,
                               epoch_callback)
        self._save_epoch_state()
        for _ in range(epochs):
            rows = self._epoch_rows(train_rows, n_train)
            started = time.perf_counter()
            result = runner.run_epoch(rows, interrupt)
            if result.status != 0:
                raise self._diverged(result, -(-n_train // batch))
            seconds = time.perf_counter() - started
            self.t_ += n_train
            self.n_iter_ += 1
            stop = monitor.end_epoch(result, seconds)
            self._save_epoch_state()
            if stop:
                break
            if interrupt is not None and interrupt.pending:
                # Ctrl-C during the epoch's last slice: stop here, at a whole epoch
                raise KeyboardInterrupt
        else:
            if not incremental:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({epochs}) reached and "
                    "the optimization hasn't converged yet.",
                    ConvergenceWarning,
                )
        monitor.restore_best()

    def _epoch_rows(self, train_rows, n):
        """The epoch's row order: an index array, or empty for rows 0..n-1 read in place."""
        if not self.shuffle:
            return np.empty(0, np.intp) if train_rows is None else train_rows
        # from the identity each epoch, so that the RNG state alone (what a
        # checkpoint holds) fixes the order of the epochs to come
        order = self._rng.permutation(n)
        return order if train_rows is None else train_rows[order]

    def _validation_split(self, n, labels, Y):
        """Training and validation row indices (no copy of X), as scikit-learn splits."""
        from sklearn.model_selection import train_test_split

        stratify = self._stratify(labels, Y)
        train, val = train_test_split(np.arange(n), random_state=self._rng,
                                      test_size=self.validation_fraction, stratify=stratify)
        return np.sort(train).astype(np.intp), np.sort(val).astype(np.intp)

    def _stratify(self, labels, Y):
        return None

    def _predict_output(self, X, rows=None):
        """Output pre-activations (logits) of X, or of X[rows] gathered chunk by chunk."""
        if rows is None:
            return predict_logits(self.backend, self.coefs_, self.intercepts_, X,
                                  self.activation, self.input_scale)
        parts = [predict_logits(self.backend, self.coefs_, self.intercepts_,
                                X[rows[i:i + _SCORE_CHUNK]], self.activation, self.input_scale)
                 for i in range(0, rows.shape[0], _SCORE_CHUNK)]
        return np.concatenate(parts)

    @contextlib.contextmanager
    def _rollback_on_interrupt(self):
        """On Ctrl-C or divergence, return to the end of the last finished epoch, re-raise.

        Weights, training state, `loss_curve_` and `history_` go back to what
        they were then: a half-done epoch is discarded whole. Yields the
        `DeferredInterrupt` that the loop checks (Ctrl-C stops after the
        current batch).
        """
        try:
            with DeferredInterrupt() as interrupt:
                yield interrupt
        except (KeyboardInterrupt, DivergenceError):
            saved = getattr(self, "_epoch_state", None)
            if saved is not None:  # else no batch has run yet: nothing changed
                weights, state = saved
                np.copyto(self._params.data, weights)
                self.set_training_state(state)
                del self.loss_curve_[state.n_iter:]
                for values in self.history_.values():
                    del values[state.n_iter:]
            raise
        finally:
            self._epoch_state = None

    def _save_epoch_state(self):
        """Copy what `_rollback_on_interrupt` restores (weights into the same buffer)."""
        saved = getattr(self, "_epoch_state", None)
        if saved is None:
            weights = self._params.data.copy()
        else:
            weights = saved[0]
            np.copyto(weights, self._params.data)
        self._epoch_state = (weights, self.get_training_state())

    def _diverged(self, result, n_batches):
        lr = self._optimizer.learning_rate
        batch = result.bad_batch + 1
        what = ("the loss became NaN or inf" if result.status == LOSS_NOT_FINITE
                else "the weights became NaN or inf")
        return DivergenceError(
            f"training diverged at epoch {self.n_iter_ + 1}, batch {batch} of {n_batches}: "
            f"{what} (learning rate {lr:g}). The weights are those of the last finished "
            f"epoch ({self.n_iter_}); try a smaller learning_rate_init or scaled inputs.",
            epoch=self.n_iter_ + 1, batch=batch, learning_rate=lr,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _positive(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _non_negative(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
