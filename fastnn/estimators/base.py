"""`BaseMLP`: what `MLPClassifier` and `MLPRegressor` share, as scikit-learn's
`BaseMultilayerPerceptron`: parameters, initialisation, the solvers, the epoch
loop, rollback, divergence and the training state.

A subclass says how targets become kernel targets (`_encode_targets`), which
output head it trains (`_head`) and how it scores rows (`_score_rows`). The
loop over batches is `fastnn.engine.epoch_loop.EpochRunner`'s; what happens between
epochs (history, early stopping, schedules, callbacks) is
`fastnn.estimators.monitor.EpochMonitor`'s; L-BFGS is `fastnn.estimators.lbfgs`'s; parameter and
data checks are `fastnn.estimators.validation`'s; the training state, warm starts and
rollback are `fastnn.estimators.run_state.RunState`'s; pickling is
`fastnn.estimators.pickling.PicklableParameters`'s.
"""

import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from fastnn import distributed
from fastnn.contract.tables import LOSS_NOT_FINITE, activation_code, head_code
from fastnn.engine import shuffling
from fastnn.engine.epoch_loop import EpochRunner
from fastnn.engine.interrupt import StoppedTogether
from fastnn.engine.numba_uniform import uniform_into
from fastnn.engine.optim import OPTIMIZERS
from fastnn.engine.params import FlatParameters
from fastnn.engine.sparse_step import SparseTrainStep, is_sparse, sparse_logits
from fastnn.engine.step import TrainStep, backend_name, predict_logits
from fastnn.errors import NON_FINITE_WEIGHTS, DivergenceError
from fastnn.estimators.monitor import EpochMonitor
from fastnn.estimators.pickling import PicklableParameters
from fastnn.estimators.run_state import RunState
from fastnn.estimators.validation import (
    data_dtype,
    is_memory_mapped,
    validate_layers,
    validate_params,
    validate_sample_weight,
    validate_X,
)

# Rows scored per chunk when validation rows are picked by index
_SCORE_CHUNK = 4096


def _sharding():
    """The `fastnn.distributed.DataParallel` group that trains the model, or None
    (none, or a group of one process: the single-process path)."""
    group = distributed.current()
    return group if group is not None and group.size > 1 else None


class BaseMLP(RunState, PicklableParameters, BaseEstimator):
    """Shared base of the estimators; not for direct use."""

    # dropout's mask seed (drawn by the first run that uses it) and batch counter;
    # class defaults for models pickled before dropout existed
    _dropout_seed = None
    _dropout_step = 0

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend="numba",
        dtype=None,
        input_scale=1.0,
        dropout=0.0,
        skip_zeros="auto",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype
        self.input_scale = input_scale
        self.dropout = dropout
        self.skip_zeros = skip_zeros

    # -- public API ---------------------------------------------------------

    def fit(
        self, X, y, sample_weight=None, *, validation_data=None, epoch_callback=None, resume=False
    ):
        """Train on (X, y): from scratch, or from the current weights. Returns self.

        Parameters
        ----------
        X : array-like or sparse matrix (n_samples, n_features)
            With ``dtype=None`` a fresh fit trains in X's dtype as scikit-learn
            does (float32 X in float32, any other in float64). uint8 X (pixels
            0..255, say) is kept as it is and multiplied by `input_scale` on the
            fly: no float copy of X is made. A C-contiguous array of the model's
            dtype (or a memory map) is not copied.
            CSR and CSC matrices stay sparse (`fastnn.engine.sparse_step`).
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
            `fastnn.load` of a file saved mid-run, or by unpickling), up to
            `max_iter` epochs in all. On the same data, the weights then equal an
            uninterrupted run's. (`warm_start=True` is a resume from a fresh
            training state: same weights, new optimizer, `max_iter` more epochs.)
        """
        self._validate_params()
        warm = self.warm_start and hasattr(self, "coefs_")
        if resume:
            self._check_resumable()
        elif warm:
            self._check_same_architecture("warm_start=True")
        continuing = resume or warm
        X = validate_X(self, X, reset=not continuing)
        targets = self._encode_targets(
            y, X.shape[0], first=not continuing, same_classes=warm and not resume
        )
        sw = validate_sample_weight(sample_weight, X)
        rows_sw = self._row_weights(targets, sw, recompute=not resume)
        monitor_data = None
        if validation_data is not None:
            X_val, y_val = validation_data
            monitor_data = (validate_X(self, X_val, reset=False), np.asarray(y_val))
        if not continuing:
            self._initialize(X.shape[1])
        elif warm:
            self._restart_training_state()
        if self.solver == "lbfgs":
            if _sharding() is not None:
                raise ValueError(
                    "solver='lbfgs' does not train data-parallel: use 'sgd' or "
                    "'adam', or fit outside fastnn.distributed.data_parallel"
                )
            from fastnn.estimators.lbfgs import fit_lbfgs

            fit_lbfgs(self, X, targets, rows_sw)
            return self
        epochs = self.max_iter - self.n_iter_
        with self._rollback_on_interrupt() as interrupt:
            self._train(
                X,
                targets,
                rows_sw,
                epochs,
                incremental=False,
                monitor_data=monitor_data,
                epoch_callback=epoch_callback,
                interrupt=interrupt,
                score_weight=sw,
            )
        return self

    def _partial_fit(self, X, y, sample_weight, classes):
        self._validate_params()
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "coefs_")
        X = validate_X(self, X, reset=first)
        # weights assigned by the user (as scikit-learn allows) before the targets
        # are known: `classes` or a missing n_outputs_ says the targets are new
        new_targets = first or classes is not None or not hasattr(self, "n_outputs_")
        targets = self._encode_targets(y, X.shape[0], first=new_targets, classes=classes)
        if first:
            self._initialize(X.shape[1])
        elif not hasattr(self, "_optimizer"):  # weights set or trained (L-BFGS) elsewhere
            self._ensure_flat()
            self.n_features_in_ = self.coefs_[0].shape[0]
            self.n_layers_ = len(self.coefs_) + 1
            self.out_activation_ = self._head
            for name in ("n_iter_", "t_"):
                if not hasattr(self, name):
                    setattr(self, name, 0)
            if not hasattr(self, "_rng"):
                self._rng = check_random_state(self.random_state)
            if not hasattr(self, "history_"):  # none after L-BFGS; a user may set a few
                self._reset_curves()
            self._start_optimizer()
        sw = self._row_weights(
            targets, validate_sample_weight(sample_weight, X), recompute=new_targets
        )
        with self._rollback_on_interrupt() as interrupt:
            self._train(X, targets, sw, 1, incremental=True, interrupt=interrupt)
        return self

    def _check_solver(self):
        # scikit-learn's test for partial_fit's availability (`available_if`)
        if self.solver not in OPTIMIZERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    def save(self, path):
        """Write the fitted model to `path` as a .npz file (no pickle)."""
        from fastnn.estimators.serialization import save_model

        save_model(self, path)

    def to_sklearn(self):
        """This fitted model as scikit-learn's estimator (`sklearn_interop.to_sklearn`)."""
        from fastnn.estimators.sklearn_interop import to_sklearn

        return to_sklearn(self)

    def set_weights(self, coefs, intercepts, classes=None, multilabel=False):
        """Make this an untrained-state model with the given weights (a loaded or converted one).

        Parameters
        ----------
        coefs, intercepts : lists of ndarray
            (fan_in, fan_out) weights and (fan_out,) biases of every layer, of
            the model's dtype (with ``dtype=None``, float32 or float64: the
            model takes theirs); copied into one flat buffer.
        classes : array-like, optional
            A classifier's `classes_` (required for one).
        multilabel : bool
            A classifier of multilabel indicator targets (logistic outputs).
        """
        self._validate_params()
        if self.dtype is None and len(coefs):
            # the weights' own; float64 for any other, which validate_layers refuses
            self._dtype = data_dtype(coefs[0])
        coefs, intercepts = validate_layers(coefs, intercepts, self._hidden, self._dtype)
        self._params = FlatParameters.pack(coefs, intercepts, self._dtype)
        self.coefs_, self.intercepts_ = self._params.coefs, self._params.intercepts
        self.n_features_in_ = coefs[0].shape[0]
        self.n_layers_ = len(coefs) + 1
        self.n_outputs_ = coefs[-1].shape[1]
        self._set_output(classes, multilabel)
        self.out_activation_ = self._head
        self.n_iter_ = 0
        self.t_ = 0
        self._dropout_seed, self._dropout_step = None, 0
        self._reset_curves()
        self.__dict__.pop("class_weight_", None)  # a trained model's; `load` sets it again
        return self

    # -- checks ---------------------------------------------------------------

    def _validate_params(self):
        self._hidden, forced, self._dropout_rates = validate_params(self)
        self._dtype = forced if forced is not None else self._trained_dtype()

    def _trained_dtype(self):
        """With ``dtype=None``: the dtype the model trains and predicts in once it has
        weights (its flat buffer's, or float32 weights assigned by the user), else
        float64 until a fit takes X's (`validate_X`)."""
        params = getattr(self, "_params", None)
        if params is not None:
            return params.data.dtype
        coefs = getattr(self, "coefs_", None)
        return data_dtype(coefs[0] if coefs else None)

    def _validate_predict_input(self, X):
        check_is_fitted(self, "coefs_")
        if not hasattr(self, "_hidden"):
            self._validate_params()
        return self._check_width(validate_X(self, X, reset=False))

    def _check_width(self, X):
        # n_features_in_ checks X unless the weights were assigned without it
        if X.shape[1] != self.coefs_[0].shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.coefs_[0].shape[0]} features as input "
                "(the rows of coefs_[0])"
            )
        return X

    def _check_resumable(self):
        if not hasattr(self, "_optimizer"):
            raise ValueError(
                "resume=True needs a model that has trained with solver 'sgd' or 'adam': fit "
                "it, or load a file it saved (L-BFGS keeps no state: use warm_start=True)"
            )
        if self.early_stopping:
            raise ValueError("resume=True does not support early_stopping=True")
        self._check_same_architecture("resume=True")
        if self.n_iter_ >= self.max_iter:
            raise ValueError(
                f"resume=True: this run has trained {self.n_iter_} epochs, max_iter is "
                f"{self.max_iter}; raise max_iter to continue"
            )

    def _check_same_architecture(self, how):
        if self.coefs_[0].dtype != self._dtype or self._hidden != tuple(
            W.shape[1] for W in self.coefs_[:-1]
        ):
            raise ValueError(f"{how}: dtype and hidden_layer_sizes must not change")

    # -- parameters and training state -----------------------------------------

    def _initialize(self, n_features):
        """scikit-learn's initialisation: Glorot uniform weights and biases
        (factor 2 instead of 6 for logistic), a fresh optimizer and curves."""
        rng = check_random_state(self.random_state)
        self._rng = rng
        sizes = [n_features, *self._hidden, self.n_outputs_]
        self._params = FlatParameters(sizes, self._dtype)
        factor = 2.0 if self.activation == "logistic" else 6.0
        # the same draws in compiled code (wide layers), bit for bit
        compiled = backend_name(self.backend) == "numba"
        for W, b in zip(self._params.coefs, self._params.intercepts):
            fan_in, fan_out = W.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            if compiled:
                uniform_into(rng, -bound, bound, W)
            else:
                W[...] = rng.uniform(-bound, bound, W.shape)
            b[...] = rng.uniform(-bound, bound, b.shape)
        self.coefs_ = self._params.coefs
        self.intercepts_ = self._params.intercepts
        self.n_layers_ = len(sizes)
        self.out_activation_ = self._head
        self.n_iter_ = 0
        self.t_ = 0
        self._dropout_seed, self._dropout_step = None, 0
        for name in (
            "loss_curve_",
            "history_",
            "best_loss_",
            "validation_scores_",
            "best_validation_score_",
            "_optimizer",
        ):
            self.__dict__.pop(name, None)  # L-BFGS sets none of them, as in scikit-learn
        if self.solver in OPTIMIZERS:
            self._reset_curves()
            self._start_optimizer()

    def _reset_curves(self):
        self.loss_curve_ = []
        self.history_ = {}
        self.best_loss_ = None if self.early_stopping else np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self._no_improvement_count = 0

    def _start_optimizer(self):
        """A fresh optimizer over the flat parameters (zero state)."""
        size, dtype = self._params.size, self._dtype
        if self.solver == "sgd":
            self._optimizer = OPTIMIZERS["sgd"](
                size,
                dtype,
                self.learning_rate_init,
                self.momentum,
                self.nesterovs_momentum,
                self.learning_rate,
                self.power_t,
            )
        else:
            self._optimizer = OPTIMIZERS["adam"](
                size, dtype, self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon
            )

    # -- training -----------------------------------------------------------

    def _train(
        self,
        X,
        targets,
        sw,
        epochs,
        incremental,
        monitor_data=None,
        epoch_callback=None,
        interrupt=None,
        score_weight=None,
    ):
        """Train `epochs` epochs on rows weighted by `sw`; the early-stopping
        validation rows are scored with `score_weight` (the user's sample_weight,
        without class weights)."""
        self._ensure_flat()
        self._check_width(X)
        labels, Y = targets
        n = X.shape[0]
        group = _sharding()
        if group is not None:
            # before anything draws from the RNG (the early-stopping split): with
            # random_state=None each rank would draw its own
            params = {
                k: v for k, v in self.get_params().items() if k not in ("random_state", "verbose")
            }
            group.check_same(
                "the data (shape, dtype, targets, row weights) or the parameters",
                (
                    X.shape,
                    X.dtype.str,
                    repr(sorted(params.items())),
                    distributed.fingerprint(labels, Y, sw),
                ),
            )
            group.share_training_start(self)
        train_rows = val_rows = None
        if self.early_stopping and not incremental:
            train_rows, val_rows = self._validation_split(n, targets)
        n_train = n if train_rows is None else train_rows.shape[0]
        masks = self._dropout_masks()
        if self.batch_size == "auto":
            batch = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is "
                    "going to be clipped",
                    stacklevel=3,
                )
            batch = min(self.batch_size, n_train)
        shard = None
        if group is None:
            grads = FlatParameters(self._params.layer_sizes, self._dtype)
        else:
            shard = group.batch_allreduce(self._params.layer_sizes, self._dtype)
            grads = shard.grads
        compact = self._compact_X(X, shard is None, sw, batch)
        # sparse X outside the compiled loop (MPI, NumPy backend): the per-batch
        # Python loop over a step whose first layer reads CSR rows
        python_sparse = is_sparse(X) and compact is None
        step = (SparseTrainStep if python_sparse else TrainStep)(
            self.backend,
            self._params.coefs,
            self._params.intercepts,
            batch,
            self.activation,
            self._head,
            grads.coefs,
            grads.intercepts,
            *masks,
        )
        runner = EpochRunner(
            step,
            self._optimizer,
            self._params,
            grads,
            X,
            labels,
            Y,
            sw,
            batch,
            self.alpha,
            self.input_scale,
            compiled=not python_sparse,
            shard=shard,
            compact=compact,
        )
        monitor = EpochMonitor(
            self,
            X,
            targets,
            score_weight,
            val_rows,
            monitor_data,
            incremental,
            epoch_callback,
            group,
        )
        scheme = shuffling.resolve(self.shuffle, is_memory_mapped(X))
        self._save_epoch_state()
        for epoch in range(epochs):
            rows = self._epoch_rows(train_rows, n_train, scheme, X.shape[1] * X.dtype.itemsize)
            started = time.perf_counter()
            runner.dropout_step = self._dropout_step
            result = runner.run_epoch(rows, interrupt)
            seconds = time.perf_counter() - started
            self._dropout_step += -(-n_train // batch)  # the batch counter of the run
            if result.status != 0:
                error = self._diverged(result, -(-n_train // batch))
                if not monitor.has_best_weights():
                    raise error
                # early stopping outlives it, as in scikit-learn: a NaN score, the best weights
                self._restore_epoch_state()
                self.t_ += n_train
                self.n_iter_ += 1
                monitor.end_diverged_epoch(seconds, str(error))
                break
            self.t_ += n_train
            self.n_iter_ += 1
            stop = monitor.end_epoch(result, seconds)
            if stop or incremental or epoch == epochs - 1:
                # the run ends with this epoch: an interrupt now keeps it as it is,
                # so there is nothing to copy (a partial_fit call saves 0.15 ms, a
                # one-epoch fit of a 50,000 x 128 layer with Adam 6 ms)
                self._keep_epoch_state()
            else:
                self._save_epoch_state()
            if stop:
                break
            if interrupt is not None and group is not None:
                # a rank saw a signal after the epoch's last Allreduce (a later one
                # travels with the next batch)
                if group.any(interrupt.pending):
                    raise StoppedTogether
            elif interrupt is not None and interrupt.pending:
                # Ctrl-C during the epoch's last slice: stop here, at a whole epoch
                raise KeyboardInterrupt
            if incremental:
                break
        else:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                "the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,  # the user's fit or partial_fit call
            )
        monitor.restore_best()

    def _dropout_masks(self):
        """`TrainStep`'s dropout arguments: () without dropout, else (rates, seed).

        The seed is drawn from the run's RNG (`random_state`) the first time a
        run trains with dropout, and kept, with the batch counter, in the
        training state: a resumed run, a warm start and `partial_fit` continue
        both, so no two steps of a model's training reuse a mask.
        """
        if not any(r > 0 for r in self._dropout_rates):
            return ()
        if self._dropout_seed is None:
            self._dropout_seed = int(self._rng.randint(0, 2**63, dtype=np.int64))
        return (self._dropout_rates, self._dropout_seed)

    def _epoch_rows(self, train_rows, n, scheme, row_bytes):
        """The epoch's row order: an index array, or empty for rows 0..n-1 read in place."""
        if scheme is None:
            return np.empty(0, np.intp) if train_rows is None else train_rows
        # from the identity each epoch, so that the RNG state alone (what a
        # checkpoint holds) fixes the order of the epochs to come
        order = shuffling.epoch_order(self._rng, n, scheme, row_bytes)
        return order if train_rows is None else train_rows[order]

    def _validation_split(self, n, targets):
        """Training and validation row indices (no copy of X), as scikit-learn splits."""
        from sklearn.model_selection import train_test_split

        train, val = train_test_split(
            np.arange(n),
            random_state=self._rng,
            test_size=self.validation_fraction,
            stratify=self._stratify(targets),
        )
        if val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        return np.sort(train).astype(np.intp), np.sort(val).astype(np.intp)

    def _stratify(self, targets):
        return None

    def _row_weights(self, targets, sample_weight, recompute):
        """The rows' training weights (MLPClassifier multiplies in `class_weight`)."""
        return sample_weight

    def _compact_X(self, X, compiled, sw, batch):
        """X's nonzeros by row for the compiled loop (`fastnn.engine.compact`), or None.

        Sparse X always (on the compiled loop); dense X as `skip_zeros` and its
        density say, against the single pass's crossover when the single pass
        runs the network, else the GEMM path's: the one of GEMMs on one BLAS
        thread when the parallel epoch will run on more than one thread
        (`threads.gemm_threads`) or BLAS is held at one thread, else the one of
        GEMMs on BLAS's threads.
        """
        if backend_name(self.backend) != "numba" or not compiled:
            return None
        from fastnn.engine import compact
        from fastnn.engine.numba_step import narrow_applies
        from fastnn.engine.threads import blas_threads, gemm_threads

        if is_sparse(X):
            return compact.with_flags(compact.csr_parts(X), X.shape[1])
        widths = self._params.layer_sizes[1:]
        dropout = any(r > 0 for r in self._dropout_rates)
        narrow = narrow_applies(
            len(widths) - 1,
            widths,
            activation_code(self.activation),
            head_code(self._head),
            sw is not None,
            dropout,
        )
        if narrow:
            crossover = compact.NARROW_CROSSOVER
        elif blas_threads() == 1 or (
            not dropout and gemm_threads(batch, self._params.layer_sizes) > 1
        ):
            crossover = compact.ONE_BLAS_THREAD_CROSSOVER
        else:
            crossover = compact.CROSSOVER
        parts = compact.use_compact(self.skip_zeros, X, is_memory_mapped(X), crossover)
        return None if parts is None else compact.with_flags(parts, X.shape[1])

    def _predict_output(self, X, rows=None):
        """Output pre-activations (logits) of X, or of X[rows] gathered chunk by chunk."""
        if is_sparse(X):
            return sparse_logits(
                self.backend,
                self.coefs_,
                self.intercepts_,
                X if rows is None else X[rows],
                self.activation,
            )
        if rows is None:
            return predict_logits(
                self.backend,
                self.coefs_,
                self.intercepts_,
                X,
                self.activation,
                self.input_scale,
                skip_zeros=self.skip_zeros,
            )
        parts = [
            predict_logits(
                self.backend,
                self.coefs_,
                self.intercepts_,
                X[rows[i : i + _SCORE_CHUNK]],
                self.activation,
                self.input_scale,
                skip_zeros=self.skip_zeros,
            )
            for i in range(0, rows.shape[0], _SCORE_CHUNK)
        ]
        return np.concatenate(parts)

    def _diverged(self, result, n_batches):
        lr = self._optimizer.learning_rate
        batch = result.bad_batch + 1
        what = (
            "the loss became NaN or inf"
            if result.status == LOSS_NOT_FINITE
            else "the weights became NaN or inf"
        )
        return DivergenceError(
            f"training diverged at epoch {self.n_iter_ + 1}, batch {batch} of {n_batches}: "
            f"{what} (learning rate {lr:g}). The weights are those of the last finished "
            f"epoch ({self.n_iter_}); try a smaller learning_rate_init or scaled inputs. "
            f"{NON_FINITE_WEIGHTS}",
            epoch=self.n_iter_ + 1,
            batch=batch,
            learning_rate=lr,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        return tags
