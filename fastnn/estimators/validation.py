"""Checks of an estimator's parameters and data, run once per `fit` before any jitted code.

Parameters are checked as scikit-learn's `_parameter_constraints` check them
(same ranges, messages that name the parameter); X goes through scikit-learn's
`validate_data`, so `n_features_in_`, `feature_names_in_` and the messages
for a wrong feature count are scikit-learn's own.
"""

import mmap
import numbers
import sys
import warnings

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import _check_sample_weight, validate_data

from fastnn.backend import get_backend
from fastnn.contract.tables import ACTIVATIONS
from fastnn.engine.shuffling import SCHEMES
from fastnn.engine.sparse_step import as_csr, is_sparse

DTYPES = {"float32": np.float32, "float64": np.float64}
SOLVERS = ("lbfgs", "sgd", "adam")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
REGRESSION_LOSSES = ("squared_error", "poisson")


def validate_params(est):
    """Check `est`'s parameters; returns ``(hidden_layer_sizes as a tuple, the numpy
    dtype that `dtype` forces, or None to take X's, the dropout rate of each hidden
    layer as a tuple)``."""
    sizes = est.hidden_layer_sizes
    if isinstance(sizes, numbers.Integral):
        sizes = (sizes,)
    sizes = tuple(sizes)  # () is a network without hidden layers, as in scikit-learn
    if any(not isinstance(s, numbers.Integral) or isinstance(s, bool) or s < 1 for s in sizes):
        raise ValueError(
            f"hidden_layer_sizes must be positive integers, got {est.hidden_layer_sizes!r}"
        )
    _choice("activation", est.activation, ACTIVATIONS)
    _choice("solver", est.solver, SOLVERS)
    _choice("learning_rate", est.learning_rate, LEARNING_RATES)
    if hasattr(est, "loss"):
        _choice("loss", est.loss, REGRESSION_LOSSES)
    if hasattr(est, "class_weight"):
        _class_weight(est.class_weight)
    forced = None if est.dtype is None else _forced_dtype(est.dtype)
    get_backend(est.backend)  # raises for an unknown name
    for name in ("learning_rate_init", "epsilon", "input_scale"):
        _real(name, getattr(est, name), low=0, low_closed=False)
    for name in ("alpha", "tol", "power_t"):
        _real(name, getattr(est, name), low=0)
    _real("momentum", est.momentum, low=0, high=1, high_closed=True)
    for name in ("beta_1", "beta_2", "validation_fraction"):
        _real(name, getattr(est, name), low=0, high=1)
    for name in ("max_iter", "max_fun"):
        _positive_int(name, getattr(est, name))
    if est.n_iter_no_change != np.inf:  # scikit-learn's "never stop early"
        _positive_int("n_iter_no_change", est.n_iter_no_change, "or numpy.inf")
    if est.batch_size != "auto":
        _positive_int("batch_size", est.batch_size, "or 'auto'")
    # besides True (the scheme by the data: fastnn.engine.shuffling.resolve) and False
    if not isinstance(est.shuffle, (bool, np.bool_)) and est.shuffle not in SCHEMES:
        raise ValueError(f"shuffle must be a bool or one of {SCHEMES}, got {est.shuffle!r}")
    skip = est.skip_zeros
    if not (isinstance(skip, (bool, np.bool_)) or (isinstance(skip, str) and skip == "auto")):
        raise ValueError(f"skip_zeros must be 'auto', True or False, got {skip!r}")
    for name in ("warm_start", "nesterovs_momentum", "early_stopping"):
        if not isinstance(getattr(est, name), (bool, np.bool_)):
            raise ValueError(f"{name} must be a bool, got {getattr(est, name)!r}")
    if est.early_stopping and est.validation_fraction == 0:
        raise ValueError("validation_fraction must be above 0 with early_stopping=True")
    rates = dropout_rates(est.dropout, len(sizes))
    if est.solver == "lbfgs" and any(r > 0 for r in rates):
        raise ValueError(
            "dropout needs solver='sgd' or 'adam': with dropout the loss changes at "
            "every step (new masks), and L-BFGS needs one fixed objective; got "
            f"dropout={est.dropout!r} with solver='lbfgs'"
        )
    return sizes, forced, rates


def dropout_rates(dropout, n_hidden):
    """`dropout` (one rate for every hidden layer, or one per layer) as a tuple of
    n_hidden floats in [0, 1)."""
    one = isinstance(dropout, numbers.Real) and not isinstance(dropout, bool)
    rates = [dropout] * n_hidden if one else dropout
    try:
        rates = list(rates)
    except TypeError:
        rates = None
    if rates is None or (not one and len(rates) != n_hidden):
        raise ValueError(
            "dropout must be a number in [0, 1) or a list of one such number per "
            f"hidden layer ({n_hidden} here), got {dropout!r}"
        )
    for rate in rates:
        ok = isinstance(rate, numbers.Real) and not isinstance(rate, bool)
        if not (ok and 0 <= rate < 1):
            raise ValueError(
                f"dropout rates must be numbers in [0, 1) (the probability that a unit "
                f"is dropped), got {dropout!r}"
            )
    return tuple(float(r) for r in rates)


def _forced_dtype(dtype):
    try:
        resolved = np.dtype(DTYPES.get(dtype, dtype))
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
    return resolved


def data_dtype(X):
    """The dtype scikit-learn trains X in: float32 X (dense or sparse) in float32,
    any other (integers, bools, uint8, float16, float64) in float64."""
    return np.dtype(np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64)


def validate_X(est, X, reset):
    """X as the kernels read it: uint8 kept, anything else as the model's dtype.

    A valid C-contiguous array (or memory map) of that dtype is not copied.
    Sparse X (CSR, CSC) stays sparse, as CSR (`fastnn.engine.sparse_step`).
    `reset` records `n_features_in_` and `feature_names_in_` (fit); otherwise
    they are checked, with scikit-learn's messages. With `reset` and
    ``dtype=None``, it also sets the model's dtype (`est._dtype`) from X's, as
    scikit-learn does (`data_dtype`; lists and dataframes through
    scikit-learn's own choice).

    A C-contiguous memory-mapped X (`is_memory_mapped`) of the model's dtype
    is neither copied nor read here: it is not scanned for NaN or inf (a pass
    over a file that may be larger than memory); non-finite values show up as
    a `DivergenceError` instead. Of another float dtype, it is converted (a
    copy in memory), as any array is.
    """
    if not reset:
        checked = _plain_array_checked(est, X)
        if checked is not None:
            return checked
    elif est.dtype is None:
        if not (isinstance(X, np.ndarray) or is_sparse(X)):
            # lists, dataframes: float32 kept, anything else float64, as check_array picks
            X = validate_data(est, X, reset=True, dtype=(np.float64, np.float32), order="C")
            est._dtype = X.dtype
            return X
        est._dtype = data_dtype(X)
    if isinstance(X, np.ndarray) and is_memory_mapped(X):
        _warn_if_copied(X, est._dtype)
    if (
        isinstance(X, np.ndarray)
        and X.dtype == est._dtype
        and X.flags.c_contiguous
        and is_memory_mapped(X)
    ):
        return validate_data(
            est, np.asarray(X), reset=reset, dtype=None, order="C", ensure_all_finite=False
        )
    if isinstance(X, np.ndarray) and X.dtype == np.uint8:
        return validate_data(
            est, np.asarray(X), reset=reset, dtype=None, order="C", ensure_all_finite=False
        )
    X = validate_data(
        est,
        np.asarray(X) if isinstance(X, np.memmap) else X,
        reset=reset,
        dtype=est._dtype,
        order="C",
        accept_sparse=("csr", "csc"),
    )
    return as_csr(X) if is_sparse(X) else X


def _plain_array_checked(est, X):
    """X checked as scikit-learn's validate_data would, for the common case of a
    plain 2-D numeric ndarray after fit (partial_fit, predict); None otherwise.

    validate_data costs a few hundred microseconds a call (dataframe probes,
    feature-name checks): as much as a partial_fit step of 64 rows. Every case
    this does not take, and every error, goes through validate_data, so the
    messages stay scikit-learn's.
    """
    if (
        type(X) is not np.ndarray
        or X.ndim != 2
        or X.shape[0] < 1
        or X.dtype.kind not in "fiub"
        or hasattr(est, "feature_names_in_")
        or X.shape[1] != getattr(est, "n_features_in_", -1)
    ):
        return None
    if X.dtype == np.uint8:
        return np.ascontiguousarray(X)
    out = np.asarray(X, dtype=est._dtype, order="C")
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        return None  # validate_data says where (NaN, or too large for the dtype)
    return out


# A memory-mapped X that must be copied whole into memory warns from this size of
# copy on: out-of-core data should not be copied silently, while joblib hands
# GridSearchCV's workers every X over 1 MB as a memory map, which small data
# copy harmlessly.
MAPPED_COPY_WARNING_BYTES = 256 * 2**20


def _warn_if_copied(X, dtype):
    """Say so when a large memory-mapped X is about to be read whole into memory."""
    kept = X.dtype in (np.uint8, dtype)
    if X.flags.c_contiguous and kept:
        return
    copy_bytes = X.size * (X.dtype.itemsize if kept else np.dtype(dtype).itemsize)
    if copy_bytes < MAPPED_COPY_WARNING_BYTES:
        return
    why = (
        f"{X.dtype}, not uint8 or {np.dtype(dtype)}"
        if not kept
        else "in Fortran order (column-major), not C order"
    )
    warnings.warn(
        f"X is a memory-mapped file that is copied whole into memory ({copy_bytes / 2**20:,.0f} "
        f"MiB), because it is {why}. Write it once as a C-ordered array of uint8 or "
        f"{np.dtype(dtype)} (np.save(path, np.ascontiguousarray(X, dtype)), or fastnn "
        "convert) to train and predict from the file.",
        DataConversionWarning,
        stacklevel=_outside_fastnn(),
    )


def _outside_fastnn():
    """The `stacklevel` of the first caller outside fastnn (warnings point at the user's line)."""
    frame, level = sys._getframe(2), 2  # 1: the function that warns
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "fastnn":
        frame, level = frame.f_back, level + 1
    return level


def is_memory_mapped(X):
    """Whether array X views a memory-mapped file (np.memmap, np.load(mmap_mode=...),
    or a view of either)."""
    while isinstance(X, np.ndarray):
        if isinstance(X, np.memmap):
            return True
        X = X.base
    return isinstance(X, mmap.mmap)


def validate_sample_weight(sample_weight, X):
    """Row weights as a float64 array (None stays None): finite, non-negative."""
    if sample_weight is None:
        return None
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not np.isfinite(sw).all():
        raise ValueError("sample_weight must be finite")
    return np.ascontiguousarray(sw)


def validate_layers(coefs, intercepts, hidden, dtype=None, where="weights"):
    """Check weight and bias arrays of every layer before they go into the flat buffer.

    With `dtype`, arrays must be of it exactly (`set_weights`); without, any
    real array is cast to the model's dtype (arrays assigned to `coefs_` and
    `intercepts_`, as scikit-learn's users do). Shapes must chain and match
    `hidden` (hidden_layer_sizes); nothing may be NaN or inf. Returns the
    arrays as ndarrays.
    """
    coefs, intercepts = list(coefs), list(intercepts)
    if len(coefs) != len(hidden) + 1 or len(intercepts) != len(coefs):
        raise ValueError(
            f"{where}: {len(coefs)} weight and {len(intercepts)} bias arrays "
            f"for {len(hidden)} hidden layers"
        )
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        W, b = coefs[i], intercepts[i] = np.asarray(W), np.asarray(b)
        if dtype is not None and (W.dtype != dtype or b.dtype != dtype):
            raise ValueError(f"{where}: layer {i} is {W.dtype}/{b.dtype}, expected {dtype}")
        if W.dtype.kind not in "fiu" or b.dtype.kind not in "fiu":
            raise ValueError(f"{where}: layer {i} is {W.dtype}/{b.dtype}, expected real numbers")
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ValueError(
                f"{where}: layer {i} has shapes {W.shape} and {b.shape}, "
                "expected (fan_in, fan_out) and (fan_out,)"
            )
        if i > 0 and W.shape[0] != coefs[i - 1].shape[1]:
            raise ValueError(f"{where}: layer {i} does not follow layer {i - 1}")
        if i < len(coefs) - 1 and W.shape[1] != hidden[i]:
            raise ValueError(
                f"{where}: layer {i} has {W.shape[1]} units, hidden_layer_sizes says {hidden[i]}"
            )
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"{where}: layer {i} holds NaN or inf")
    return coefs, intercepts


def _class_weight(value):
    """None, "balanced", a dict {label: weight}, or (multilabel y) a list of such dicts."""
    if value is None or (isinstance(value, str) and value == "balanced"):
        return
    dicts = list(value) if isinstance(value, (list, tuple)) else [value]
    if not dicts or not all(isinstance(d, dict) for d in dicts):
        raise ValueError(
            "class_weight must be None, 'balanced', a dict {class label: weight} or, for "
            f"multilabel y, a list of one such dict per label; got {value!r}"
        )
    for d in dicts:
        for label, weight in d.items():
            ok = isinstance(weight, numbers.Real) and not isinstance(weight, bool)
            if not (ok and np.isfinite(weight) and weight >= 0):
                raise ValueError(
                    f"class_weight: the weight of class {label!r} must be a finite "
                    f"number >= 0, got {weight!r}"
                )


def _choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _real(name, value, low, high=None, low_closed=True, high_closed=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        ok = value >= low if low_closed else value > low
        if ok and high is not None:
            ok = value <= high if high_closed else value < high
    if not ok:
        left = "[" if low_closed else "("
        right = ("]" if high_closed else ")") if high is not None else ")"
        raise ValueError(
            f"{name} must be a number in {left}{low}, "
            f"{'inf' if high is None else high}{right}, got {value!r}"
        )


def _positive_int(name, value, alternative=""):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"{name} must be a positive integer{' ' + alternative if alternative else ''}"
            f", got {value!r}"
        )
