"""Saving and loading fitted models as .npz files, without pickle.

A file holds the format version, the estimator's parameters as JSON, the
classes, the weights and the loss curve. Writes are atomic (temporary file,
fsync, rename), so an interrupted save never leaves a half-written model in
place of a good one.
"""

import json
import os
import tempfile

import numpy as np

FORMAT_VERSION = 1


def save_model(model, path):
    """Write fitted `model` to `path` (a .npz file) atomically."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "coefs_")
    classes = model.classes_
    if classes.dtype == object:
        if not all(isinstance(c, str) for c in classes):
            raise TypeError("classes_ of mixed object types cannot be saved without pickle")
        classes = classes.astype(str)
    params = model.get_params()
    params["hidden_layer_sizes"] = list(np.atleast_1d(params["hidden_layer_sizes"]).tolist())
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None  # a RandomState object is not portable
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "params": np.array(json.dumps(params)),
        "classes": classes,
        "n_iter": np.array(model.n_iter_),
        "loss_curve": np.asarray(model.loss_curve_, dtype=np.float64),
        # per-epoch records (`history_`) as a JSON string: lists of numbers by name
        "history": np.array(json.dumps(getattr(model, "history_", {}))),
    }
    for i, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        arrays[f"coef_{i}"] = W
        arrays[f"intercept_{i}"] = b
    _atomic_savez(os.fspath(path), arrays)


def _atomic_savez(path, arrays):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastnn-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path):
    """Read a model written by `MLPClassifier.save` and return it."""
    from .mlp import MLPClassifier

    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, ...
        raise ValueError(f"{path} is not a readable fastnn model file: {exc}") from exc
    version = contents.get("format_version")
    if version is None:
        raise ValueError(f"{path} is not a fastnn model file (no format_version)")
    if int(version) != FORMAT_VERSION:
        raise ValueError(
            f"{path} has model format version {int(version)}; this fastnn reads "
            f"version {FORMAT_VERSION}"
        )
    try:
        params = json.loads(str(contents["params"]))
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        model = MLPClassifier(**params)
        n_layers = len(params["hidden_layer_sizes"]) + 1
        coefs = [contents[f"coef_{i}"] for i in range(n_layers)]
        intercepts = [contents[f"intercept_{i}"] for i in range(n_layers)]
        classes = contents["classes"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is damaged: {exc}") from exc
    _check_weights(path, coefs, intercepts, classes, params["dtype"])
    model.classes_ = classes
    model.coefs_ = [np.ascontiguousarray(W) for W in coefs]
    model.intercepts_ = [np.ascontiguousarray(b) for b in intercepts]
    model.n_features_in_ = coefs[0].shape[0]
    model.n_layers_ = n_layers + 1
    model.n_outputs_ = len(classes)
    model.out_activation_ = "softmax"
    model.n_iter_ = int(contents["n_iter"])
    model.loss_curve_ = contents["loss_curve"].tolist()
    # files written before the history was saved have none
    model.history_ = json.loads(str(contents["history"])) if "history" in contents else {}
    return model


def _check_weights(path, coefs, intercepts, classes, dtype):
    expected = np.dtype(dtype)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        if W.dtype != expected or b.dtype != expected:
            raise ValueError(f"{path}: layer {i} is {W.dtype}/{b.dtype}, expected {expected}")
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ValueError(f"{path}: layer {i} has shapes {W.shape} and {b.shape}")
        if i > 0 and W.shape[0] != coefs[i - 1].shape[1]:
            raise ValueError(f"{path}: layer {i} does not follow layer {i - 1}")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"{path}: layer {i} holds NaN or inf")
    if classes.ndim != 1 or classes.shape[0] != coefs[-1].shape[1]:
        raise ValueError(f"{path}: {classes.shape[0]} classes for {coefs[-1].shape[1]} outputs")
