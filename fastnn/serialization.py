"""Saving and loading fitted models as .npz files, without pickle.

A file holds the format version, the estimator's parameters as JSON, the
classes, the weights, the loss curve and history, and the training state
(optimizer arrays and step count, shuffling RNG, early-stopping counters), so
that a saved model is also a checkpoint that ``fit(..., resume=True)``
continues exactly. A SHA-256 checksum over every stored array makes a
truncated or altered file fail to load with a clear error instead of yielding
wrong weights. Writes are atomic (temporary file, fsync, rename, fsync of the
directory): an interrupted save never leaves a half-written model in place of
a good one.
"""

import hashlib
import json
import numbers
import os
import tempfile

import numpy as np

FORMAT_VERSION = 2
MT19937_WORDS = 624


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
    seed = params["random_state"]
    # a RandomState object is not portable; its current state is saved below
    params["random_state"] = int(seed) if isinstance(seed, numbers.Integral) else None
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
    if hasattr(model, "_optimizer"):
        arrays.update(_training_state(model))
    arrays["checksum"] = np.array(_checksum(arrays))
    _atomic_savez(os.fspath(path), arrays)


def _training_state(model):
    """What `fit(resume=True)` needs beyond the weights, as arrays."""
    _, keys, pos, has_gauss, cached_gaussian = model._rng.get_state()
    optimizer = model._optimizer.state()
    scalars = {k: v for k, v in optimizer.items() if not isinstance(v, list)}
    state = {
        "t_": int(model.t_),
        "best_loss_": float(model.best_loss_),
        "no_improvement_count": int(model._no_improvement_count),
        "validation_scores_": model.validation_scores_,
        "best_validation_score_": model.best_validation_score_,
        "optimizer": scalars,
        "optimizer_arrays": {k: len(v) for k, v in optimizer.items() if isinstance(v, list)},
        "rng": {"pos": int(pos), "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached_gaussian)},
    }
    arrays = {"state": np.array(json.dumps(state)), "rng_keys": np.asarray(keys, np.uint32)}
    for key, values in optimizer.items():
        if isinstance(values, list):
            for i, a in enumerate(values):
                arrays[f"optimizer_{key}_{i}"] = a
    return arrays


def _checksum(arrays):
    digest = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _atomic_savez(path, arrays):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path}: no directory {directory}")
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
    # the rename itself is durable only once the directory is synced
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(path):
    """Read a model written by `MLPClassifier.save` and return it.

    Raises ValueError, naming the file and the problem, for a file of another
    format version, a truncated or altered file, or inconsistent contents.
    """
    from .mlp import MLPClassifier

    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, ...
        raise ValueError(
            f"{path} is not a readable fastnn model file (truncated or damaged?): {exc}"
        ) from exc
    version = contents.get("format_version")
    if version is None:
        raise ValueError(f"{path} is not a fastnn model file (no format_version)")
    if version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
        raise ValueError(
            f"{path} has model format version {version}; this fastnn reads "
            f"version {FORMAT_VERSION} (re-save the model with the fastnn that wrote it "
            "or retrain)"
        )
    stored = contents.pop("checksum", None)
    if stored is None or stored.shape != () or str(stored) != _checksum(contents):
        raise ValueError(f"{path} is damaged or was altered: its checksum does not match")
    try:
        params = json.loads(str(contents["params"]))
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        model = MLPClassifier(**params)
        model._validate_params()
        n_layers = len(params["hidden_layer_sizes"]) + 1
        coefs = [contents[f"coef_{i}"] for i in range(n_layers)]
        intercepts = [contents[f"intercept_{i}"] for i in range(n_layers)]
        classes = contents["classes"]
        n_iter = int(contents["n_iter"])
        loss_curve = contents["loss_curve"].tolist()
        history = json.loads(str(contents["history"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is damaged: {exc!r}") from exc
    _check_weights(path, coefs, intercepts, classes, params)
    model.classes_ = classes
    model.coefs_ = [np.ascontiguousarray(W) for W in coefs]
    model.intercepts_ = [np.ascontiguousarray(b) for b in intercepts]
    model.n_features_in_ = coefs[0].shape[0]
    model.n_layers_ = n_layers + 1
    model.n_outputs_ = len(classes)
    model.out_activation_ = "softmax"
    model.n_iter_ = n_iter
    model.loss_curve_ = loss_curve
    model.history_ = history
    if "state" in contents:
        try:
            _restore_training_state(model, contents)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} has a damaged training state: {exc!r}") from exc
    return model


def _restore_training_state(model, contents):
    state = json.loads(str(contents["state"]))
    model.t_ = int(state["t_"])
    model.best_loss_ = float(state["best_loss_"])
    model._no_improvement_count = int(state["no_improvement_count"])
    model.validation_scores_ = state["validation_scores_"]
    model.best_validation_score_ = state["best_validation_score_"]
    model._optimizer = model._make_optimizer()
    for key, values in model._optimizer.state().items():
        if not isinstance(values, list):
            setattr(model._optimizer, key, type(values)(state["optimizer"][key]))
            continue
        if state["optimizer_arrays"][key] != len(values):
            raise ValueError(f"optimizer {key}: {state['optimizer_arrays'][key]} arrays "
                             f"for {len(values)} parameters")
        for i, a in enumerate(values):
            saved = contents[f"optimizer_{key}_{i}"]
            if saved.shape != a.shape or saved.dtype != a.dtype:
                raise ValueError(f"optimizer {key}[{i}] is {saved.dtype} {saved.shape}, "
                                 f"expected {a.dtype} {a.shape}")
            a[...] = saved
    keys, rng = contents["rng_keys"], state["rng"]
    if keys.shape != (MT19937_WORDS,) or keys.dtype != np.uint32:
        raise ValueError(f"rng_keys is {keys.dtype} {keys.shape}")
    model._rng = np.random.RandomState()
    model._rng.set_state(
        ("MT19937", keys, int(rng["pos"]), int(rng["has_gauss"]), float(rng["cached_gaussian"]))
    )


def _check_weights(path, coefs, intercepts, classes, params):
    expected = np.dtype(params["dtype"])
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        if W.dtype != expected or b.dtype != expected:
            raise ValueError(f"{path}: layer {i} is {W.dtype}/{b.dtype}, expected {expected}")
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ValueError(f"{path}: layer {i} has shapes {W.shape} and {b.shape}")
        if i > 0 and W.shape[0] != coefs[i - 1].shape[1]:
            raise ValueError(f"{path}: layer {i} does not follow layer {i - 1}")
        if i < len(coefs) - 1 and W.shape[1] != params["hidden_layer_sizes"][i]:
            raise ValueError(f"{path}: layer {i} has {W.shape[1]} units, hidden_layer_sizes "
                             f"says {params['hidden_layer_sizes'][i]}")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"{path}: layer {i} holds NaN or inf")
    if classes.ndim != 1 or classes.shape[0] != coefs[-1].shape[1]:
        raise ValueError(f"{path}: {classes.shape} classes for {coefs[-1].shape[1]} outputs")
