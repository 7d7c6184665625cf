"""`MLPClassifier` and `MLPRegressor`: scikit-learn compatible estimators over fastnn's kernels.

Parameter names and defaults follow `sklearn.neural_network` wherever the
concept is the same, so that swapping the import is a drop-in change. Both are
thin: what they share (parameters, the epoch loop, solvers, rollback,
checkpoints) is `fastnn.estimators.base.BaseMLP`'s; each says how its targets reach the
kernels, which output head it trains and how it predicts and scores.
"""

import warnings

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_array

from fastnn.backend import get_backend
from fastnn.estimators import serialization, sklearn_interop
from fastnn.estimators.base import BaseMLP, DivergenceError

__all__ = ["DivergenceError", "MLPClassifier", "MLPRegressor", "from_sklearn", "load"]

_PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Units of each hidden layer; ``()`` for none (a linear or logistic
        model trained the same way), as in scikit-learn.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Hidden-layer activation.
    solver : {"adam", "sgd", "lbfgs"}, default="adam"
        "lbfgs" is scipy's L-BFGS-B over the flat parameter buffer, with the
        loss and gradient of the whole data set from the fused kernels (row
        chunks, so memory does not grow with n).
    alpha : float, default=1e-4
        L2 penalty; each batch adds ``alpha / (2 n_batch) * sum ||W||^2`` to its
        loss (``n_batch`` is the batch's weight sum with `sample_weight`), as
        scikit-learn does.
    batch_size : int or "auto", default="auto"
        "auto" is ``min(200, n_samples)``; an int >= n_samples is full-batch
        gradient descent.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        SGD's schedule, as scikit-learn's: "invscaling" is
        ``learning_rate_init / (t + 1) ** power_t`` after each epoch, t the
        samples seen; "adaptive" divides the rate by 5 whenever training stops
        improving for `n_iter_no_change` epochs, down to 1e-6.
    learning_rate_init : float, default=1e-3
    power_t : float, default=0.5
    max_iter : int, default=200
        Number of epochs (L-BFGS: iterations).
    shuffle : bool, default=True
    random_state : int, RandomState or None
        Seeds the initialisation, the shuffling and the validation split.
    tol : float, default=1e-4
    verbose : bool, default=False
        Prints scikit-learn's ``Iteration %d, loss = %.8f`` lines.
    warm_start : bool, default=False
        `fit` starts from the current weights, as in scikit-learn: a new run of
        `max_iter` epochs with a fresh optimizer (`fit(resume=True)` instead
        continues the same run, optimizer state and shuffling included).
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float
        Adam's parameters (scikit-learn's form: eps is added to sqrt(v)).
    n_iter_no_change : int or numpy.inf, default=10
    max_fun : int, default=15000
        L-BFGS's limit on loss evaluations.
    backend : {"numba", "numpy"}, default="numba"
    dtype : {None, "float32", "float64"}, default=None
        The weights' dtype. None takes X's as scikit-learn does: float32 X
        trains in float32, any other X (float64, integers, bools, uint8,
        most dataframes) in float64. "float32" forces float32 whatever X is:
        half the bytes per step and twice the SIMD width, so fastnn's fastest
        setting. X is converted to the weights' dtype (not copied when it
        already is, C-contiguous); predictions read X in it too.
    input_scale : float, default=1.0
        uint8 X is kept as bytes and multiplied by this on the fly (no float
        copy): the default reads its values 0..255 as scikit-learn does, 1/255
        reads pixels as [0, 1] (what `fastnn train` passes). It does not apply
        to other X.
    dropout : float or sequence of float, default=0.0
        Inverted dropout of the hidden layers while training (`fit`,
        `partial_fit`): each hidden unit's output is set to 0 with this
        probability and the others are multiplied by ``1 / (1 - dropout)``, so
        the expected activation is unchanged; predictions use every unit, as
        they are. One rate for every hidden layer, or one per hidden layer, each
        in [0, 1). The masks are not drawn from a stream: unit j of hidden
        layer i in row r of X is kept at training step s (the model's batch
        counter) when a SplitMix64 hash of ``(seed + i, s, r, j)`` is at least
        the rate, the seed coming from `random_state`. So the same
        `random_state` gives bit-identical weights, both backends, any thread
        count and any number of MPI ranks draw the same masks, and
        ``fit(resume=True)`` continues a run exactly. Needs solver "sgd" or
        "adam" (L-BFGS needs a fixed objective). A narrow single-pass network
        (one ReLU layer of at most 32 units, softmax head) trains on the GEMM
        path with dropout.
    skip_zeros : {"auto", True, False}, default="auto"
        Whether the first layer works on X's nonzeros only (Numba backend,
        the GEMM path and the single pass; `fastnn.engine.compact`): True
        converts dense X to a compact form of its nonzeros once per fit (at
        most ``8 (n + 1) + nnz (2 + itemsize)`` bytes), False never does;
        "auto" does when X's density is under the measured crossover of the
        path that trains the network and the form is no larger than X. The
        weights equal the dense path's up to the order of summation. Sparse
        (CSR, CSC) X always skips zeros (on the GEMM path); a memory-mapped X
        never does. Data-parallel training reads dense rows.

    Pressing Ctrl-C during `fit` or `partial_fit` stops training after the
    current batch, returns the model to the end of its last finished epoch
    (weights, optimizer state, counters, history) and then raises the
    KeyboardInterrupt; a second Ctrl-C interrupts at once. A NaN or inf loss (or
    weights) does the same and raises `DivergenceError`, naming the epoch, the
    batch and the learning rate. A saved model is a checkpoint:
    ``fastnn.load(path).fit(X, y, resume=True)`` continues its run exactly.
"""


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = (
        """Multi-layer perceptron classifier.

    The output head follows the targets, as in scikit-learn: softmax and
    cross-entropy for multiclass y, one logistic output and binary
    cross-entropy for binary y (`predict_proba` still returns two columns),
    logistic outputs for a multilabel indicator matrix.
    """
        + _PARAMETERS_DOC
        + """
    class_weight : None, "balanced", dict or list of dicts, default=None
        Weights of the classes, as scikit-learn's other classifiers take it:
        each row's loss is multiplied by its class's weight (and by its
        `sample_weight`). A dict maps class labels to weights; "balanced" is
        ``n_samples / (n_classes * bincount(y))`` (`compute_class_weight`).
        They are computed by every `fit` (a warm start's too) and by the
        first `partial_fit` (every class of `classes` must be in its y with
        "balanced"), then kept while the run continues (`partial_fit`,
        ``fit(resume=True)``), in `class_weight_`. For multilabel y:
        "balanced" per label, or a list of one dict ``{0: w0, 1: w1}`` per
        label; a row's weight is the product over the labels, as
        `compute_sample_weight` makes it. The early-stopping validation score
        is weighted by `sample_weight` alone, as `SGDClassifier` scores it.

    Attributes
    ----------
    class_weight_ : ndarray (n_classes,), or (n_labels, 2) for multilabel y
        The weights `class_weight` gave each class (`classes_` order; for
        multilabel y the weights of 0 and 1 of each label); absent without
        `class_weight`.
    classes_, coefs_, intercepts_, loss_, n_iter_, n_features_in_,
    feature_names_in_, n_layers_, n_outputs_, out_activation_, t_, as
    scikit-learn's; with the stochastic solvers also loss_curve_, best_loss_
    (None with early stopping), validation_scores_ and best_validation_score_
    (None without).
    history_ : dict of lists, one entry per epoch (like Keras' ``History.history``)
        "epoch", "loss", "seconds", "samples_per_second" and "train_accuracy"
        of the training pass (counted during the epoch's steps, as Keras
        reports it); "val_accuracy" with `validation_data`.
    """
    )

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
        class_weight=None,
    ):
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            backend=backend,
            dtype=dtype,
            input_scale=input_scale,
            dropout=dropout,
            skip_zeros=skip_zeros,
        )
        self.class_weight = class_weight

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights.

        `classes` (every label that will ever be seen) is required on the
        first call, as in scikit-learn; later calls may repeat it. Returns self.
        """
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if (
            not first
            and classes is not None
            and not np.array_equal(self.classes_, unique_labels(classes))
        ):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to "
                f"partial_fit, was: {self.classes_!r}"
            )
        return self._partial_fit(X, y, sample_weight, classes if first else None)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in `classes_` order."""
        X = self._validate_predict_input(X)
        logits = self._predict_output(X)
        if self.out_activation_ == "softmax":
            return get_backend(self.backend).ops.softmax(logits, logits)
        p = _logistic(logits)
        if self._label_binarizer.y_type_ == "binary":
            return np.hstack([1 - p, p])
        return p

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class label of each row of X (an indicator matrix for multilabel)."""
        X = self._validate_predict_input(X)
        return self._labels_of(self._predict_output(X))

    # -- the subclass hooks -------------------------------------------------

    def _labels_of(self, logits):
        if self.out_activation_ == "softmax":
            return self.classes_[np.argmax(logits, axis=1)]
        on = logits > 0
        if self._label_binarizer.y_type_ == "binary":
            if len(self.classes_) == 1:
                return np.repeat(self.classes_, logits.shape[0])
            return self.classes_[on[:, 0].astype(np.intp)]
        return on.astype(
            self._label_binarizer.classes_.dtype if self.classes_.dtype.kind in "iu" else int
        )

    def _encode_targets(self, y, n, first, classes=None, same_classes=False):
        """(labels, None) for the softmax head, (None, Y) for the logistic one.

        `same_classes` (warm_start): y must hold exactly the classes of the last fit.
        """
        y = _check_targets_length(y, n)
        # integer or string labels of a fitted single-label model are classes by
        # type: type_of_target (a few hundred microseconds) is needed only otherwise
        known = (
            not first
            and self._label_binarizer.y_type_ != "multilabel-indicator"
            and isinstance(y, np.ndarray)
            and y.ndim == 1
            and y.dtype.kind in "iuU"
        )
        if not known:
            check_classification_targets(y)
        if first:
            binarizer = LabelBinarizer()
            # partial_fit's classes name the labels; a multilabel y names its own columns
            multilabel = type_of_target(y).startswith("multilabel")
            binarizer.fit(y if classes is None or multilabel else np.asarray(classes))
            # one class trains too, as in scikit-learn: one logistic output, always 0
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
            multiclass = binarizer.y_type_ == "multiclass"
            self._head = "softmax" if multiclass else "logistic"
            self.n_outputs_ = 1 if binarizer.y_type_ == "binary" else len(self.classes_)
        if same_classes:
            seen = unique_labels(y)
            if set(seen) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes "
                    f"as in the previous call to fit. Previously got "
                    f"{self.classes_}, `y` has {seen}"
                )
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            if y.ndim != 2 or y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y must be a multilabel indicator matrix of "
                    f"{len(self.classes_)} columns, got shape {y.shape}"
                )
            return None, np.ascontiguousarray(y, dtype=self._dtype)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y.shape}")
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y holds labels not in classes_: {unseen[:5].tolist()}")
        labels = np.searchsorted(self.classes_, y).astype(np.intp)
        if self._head == "softmax":
            return labels, None
        return None, labels.astype(self._dtype).reshape(-1, 1)

    def _set_output(self, classes, multilabel):
        # the head of a model whose weights come from elsewhere: a 2-output binary
        # model (softmax, as fastnn < 0.2 trained it) keeps its softmax head
        if classes is None:
            raise ValueError("a classifier's weights need its classes")
        classes = np.asarray(classes)
        binarizer = LabelBinarizer().fit(
            np.eye(len(classes), dtype=int) if multilabel else classes
        )
        self._label_binarizer = binarizer
        self.classes_ = binarizer.classes_
        n_classes = len(self.classes_)
        if (self.n_outputs_ == 1 and n_classes == 2) or multilabel:
            self._head = "logistic"
        elif self.n_outputs_ == n_classes:
            self._head = "softmax" if n_classes > 1 else "logistic"
        else:
            raise ValueError(f"{self.n_outputs_} outputs for {n_classes} classes")

    def _row_weights(self, targets, sample_weight, recompute):
        """`sample_weight` times each row's class weight (`class_weight_`, computed
        from these targets when `recompute`)."""
        if recompute:
            self.__dict__.pop("class_weight_", None)
            if self.class_weight is not None:
                self.class_weight_ = self._class_weights(targets)
        table = getattr(self, "class_weight_", None)
        if table is None:
            return sample_weight
        labels, Y = targets
        if labels is not None:
            weights = table[labels]
        elif table.ndim == 1:  # binary: one 0/1 column
            weights = table[Y[:, 0].astype(np.intp)]
        else:  # multilabel: the product of every label's weight
            weights = table[np.arange(Y.shape[1]), Y.astype(np.intp)].prod(axis=1)
        if sample_weight is not None:
            weights = weights * sample_weight
        return np.ascontiguousarray(weights, dtype=np.float64)

    def _class_weights(self, targets):
        """`class_weight` as an array over `classes_` (multilabel: (n_labels, 2))."""
        from sklearn.utils.class_weight import compute_class_weight

        labels, Y = targets
        cw = self.class_weight
        multilabel = self._label_binarizer.y_type_ == "multilabel-indicator"
        try:
            if not multilabel:
                if isinstance(cw, (list, tuple)):
                    raise ValueError(
                        "a list of dicts is for multilabel y; this y is "
                        f"{self._label_binarizer.y_type_}: pass one dict or 'balanced'"
                    )
                index = labels if labels is not None else Y[:, 0].astype(np.intp)
                missing = np.setdiff1d(np.arange(len(self.classes_)), index)
                if cw == "balanced" and missing.size:
                    raise ValueError(
                        f"'balanced' needs every class in y, which lacks "
                        f"{self.classes_[missing].tolist()}: the first partial_fit computes "
                        "the weights, so give it every class, or pass a dict"
                    )
                return compute_class_weight(cw, classes=self.classes_, y=self.classes_[index])
            n_labels = Y.shape[1]
            per_label = [cw] * n_labels if cw == "balanced" else cw
            if isinstance(cw, dict) or len(per_label) != n_labels:
                raise ValueError(
                    f"multilabel y of {n_labels} labels needs 'balanced' or a list of "
                    f"{n_labels} dicts {{0: weight, 1: weight}}, one per label"
                )
            table = np.ones((n_labels, 2))
            for j, label_weight in enumerate(per_label):
                column = Y[:, j].astype(np.intp)
                present = np.unique(column)  # as compute_sample_weight: the values seen
                table[j, present] = compute_class_weight(label_weight, classes=present, y=column)
            return table
        except ValueError as exc:
            raise ValueError(f"class_weight={cw!r}: {exc}") from None

    def _training_metrics(self, result):
        return {"train_accuracy": result.correct / result.rows if result.rows else 0.0}

    def _validation_metrics(self, X_val, y_val, checked):
        # X_val was validated when fit began. scikit-learn's accuracy_score checks
        # y_val against the predictions on the first epoch (checked False); they
        # keep their types and shapes after it, so later epochs only compare.
        predicted = self._labels_of(self._predict_output(X_val))
        if not checked:
            return {"val_accuracy": float(accuracy_score(y_val, predicted))}
        if predicted.ndim == 1:
            right = predicted == y_val.ravel()
        else:  # multilabel: a row is right when all its labels are
            right = np.all(predicted == y_val, axis=1)
        return {"val_accuracy": float(np.mean(right))}

    def _score_rows(self, X, targets, rows, sample_weight=None):
        """Accuracy on X[rows] (exact match for multilabel), weighted as scikit-learn's score."""
        predicted = self._labels_of(self._predict_output(X, rows))
        labels, Y = targets
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            right = np.all(predicted == Y[rows], axis=1)
        else:
            truth = (
                self.classes_[labels[rows]]
                if labels is not None
                else (self.classes_[Y[rows, 0].astype(np.intp)])
            )
            right = predicted == truth
        weights = None if sample_weight is None else sample_weight[rows]
        if weights is not None and not weights.sum() > 0:
            return float("nan")
        return float(np.average(right, weights=weights))

    def _stratify(self, targets):
        # scikit-learn stratifies the early-stopping split of binary targets only
        # (one output), on the 0/1 column as bools
        labels, Y = targets
        if labels is None and self.n_outputs_ == 1:
            return Y != 0
        return None


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = (
        """Multi-layer perceptron regressor: squared error or Poisson deviance.

    y may be 1-D or have several outputs. With ``loss="squared_error"`` the
    output is the identity and the loss scikit-learn's ``0.5 * mean squared
    error`` for one output (with several, the squares of a row are summed, so
    the loss is consistent with its gradient). With ``loss="poisson"`` the
    output is ``exp`` and the loss half the Poisson deviance, summed over
    outputs (y >= 0). `score` is R^2.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default="squared_error"
        Keyword-only here: ``MLPRegressor((64,))`` sets hidden_layer_sizes,
        as ``MLPClassifier((64,))`` does.
    """
        + _PARAMETERS_DOC.split("----------", 1)[1]
        + """
    Attributes
    ----------
    coefs_, intercepts_, loss_, n_iter_, n_features_in_, feature_names_in_,
    n_layers_, n_outputs_, out_activation_ ("identity" or "exp"), t_, as
    scikit-learn's; with the stochastic solvers also loss_curve_, best_loss_
    (None with early stopping), validation_scores_ and best_validation_score_
    (None without).
    history_ : dict of lists, one entry per epoch
        "epoch", "loss", "seconds", "samples_per_second"; "val_r2" with
        `validation_data`.
    """
    )

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        loss="squared_error",
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
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            backend=backend,
            dtype=dtype,
            input_scale=input_scale,
            dropout=dropout,
            skip_zeros=skip_zeros,
        )
        self.loss = loss

    @property
    def _head(self):
        # scikit-learn's out_activation_ for each loss
        return "exp" if self.loss == "poisson" else "identity"

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights. Returns self."""
        return self._partial_fit(X, y, sample_weight, None)

    def predict(self, X):
        """Predicted targets, (n_samples,) for one output, else (n_samples, n_outputs)."""
        X = self._validate_predict_input(X)
        out = self._outputs(self._predict_output(X))
        return out.ravel() if out.shape[1] == 1 else out

    def _outputs(self, logits):
        return np.exp(logits, out=logits) if self.out_activation_ == "exp" else logits

    def _encode_targets(self, y, n, first, classes=None, same_classes=False):
        y = _check_targets_length(y, n)
        Y = check_array(
            y.reshape(-1, 1) if y.ndim == 1 else y, dtype=self._dtype, order="C", input_name="y"
        )
        if self.loss == "poisson" and (Y < 0).any():
            raise ValueError("loss='poisson' needs y >= 0 (counts or rates)")
        if first:
            self.n_outputs_ = Y.shape[1]
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {Y.shape[1]} outputs, but this model was fitted with {self.n_outputs_}"
            )
        return None, Y

    def _set_output(self, classes, multilabel):
        if classes is not None or multilabel:
            raise ValueError("a regressor has no classes")

    def _training_metrics(self, result):
        return {}

    def _validation_metrics(self, X_val, y_val, checked):
        # X_val was validated when fit began; r2_score checks y_val every epoch
        out = self._outputs(self._predict_output(X_val))
        return {"val_r2": _r2(np.asarray(y_val), out, None)}

    def _score_rows(self, X, targets, rows, sample_weight=None):
        out = self._outputs(self._predict_output(X, rows))
        return _r2(targets[1][rows], out, None if sample_weight is None else sample_weight[rows])


def load(path):
    """Read a model written by `save` (MLPClassifier or MLPRegressor) and return it.

    Raises ValueError, naming the file and the problem, for a file of another
    format version, a truncated or altered file, or inconsistent contents.
    """
    return serialization.read_model(
        path, {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
    )


def from_sklearn(estimator, **params):
    """A fastnn estimator with a fitted scikit-learn MLP's parameters and weights (copied).

    See `fastnn.estimators.sklearn_interop.from_sklearn` for the parameters.
    """
    cls = MLPClassifier if is_classifier(estimator) else MLPRegressor
    return sklearn_interop.from_sklearn(estimator, cls, **params)


def _r2(y, out, sample_weight):
    """R^2 as scikit-learn's early stopping scores it: NaN for non-finite predictions."""
    if not np.isfinite(out).all():
        return float("nan")
    return float(r2_score(y.reshape(out.shape), out, sample_weight=sample_weight))


def _check_targets_length(y, n):
    """y as an array of n rows; a column vector is raveled with scikit-learn's warning."""
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.shape[:1] != (n,):
        raise ValueError(
            f"X and y have different numbers of samples: {n} and {y.shape[0] if y.ndim else 0}"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        # stacklevel: this helper, _encode_targets, the fit method, the user's call
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. "
            "Please change the shape of y to (n_samples, ), for example "
            "using ravel().",
            DataConversionWarning,
            stacklevel=4,
        )
        y = y.ravel()
    return y


def _logistic(z):
    from scipy.special import expit

    return expit(z)
