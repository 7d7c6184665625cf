"""Saving and loading fitted models as .npz files, without pickle.

A file holds the format version, the estimator's kind and parameters as JSON
(a `class_weight` dict as [label, weight] pairs, so that integer labels stay
integers), the classes and class weights (classifier), the weights, the loss
curve and history, and the training state
(`fastnn.engine.training_state.TrainingState`: optimizer arrays, learning
rate and step count, shuffling RNG, early-stopping counters), so that a saved
model is also a checkpoint that ``fit(..., resume=True)`` continues exactly.
A SHA-256 checksum over every stored array makes a truncated or altered file
fail to load with a clear error instead of yielding wrong weights. Writes are
atomic (temporary file, fsync, rename, fsync of the directory): an
interrupted save never leaves a half-written model in place of a good one.
"""

import hashlib
import json
import numbers
import os
import tempfile

import numpy as np

from fastnn.engine.training_state import TrainingState

FORMAT_VERSION = 3
# Version 2 (fastnn 0.1: classifiers only, per-layer optimizer arrays) still loads.
READABLE_VERSIONS = (2, 3)
MT19937_WORDS = 624
ESTIMATORS = ("MLPClassifier", "MLPRegressor")


def save_model(model, path):
    """Write fitted `model` (an MLPClassifier or MLPRegressor) to `path` (.npz) atomically."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "coefs_")
    kind = type(model).__name__
    if kind not in ESTIMATORS:
        raise TypeError(f"save_model saves {' and '.join(ESTIMATORS)}, got {kind}")
    params = model.get_params()
    params["hidden_layer_sizes"] = list(np.atleast_1d(params["hidden_layer_sizes"]).tolist())
    seed = params["random_state"]
    # a RandomState object is not portable; its current state is saved below
    params["random_state"] = int(seed) if isinstance(seed, numbers.Integral) else None
    if "class_weight" in params:
        params["class_weight"] = _class_weight_to_json(params["class_weight"])
    # numbers of any real type (numpy's float32 is no JSON number), one or per layer
    rates = params["dropout"]
    params["dropout"] = (
        float(rates) if isinstance(rates, numbers.Real) else [float(r) for r in rates]
    )
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "estimator": np.array(kind),
        "params": np.array(json.dumps(params)),
        "n_iter": np.array(model.n_iter_),
        "loss_curve": np.asarray(getattr(model, "loss_curve_", []), dtype=np.float64),
        # per-epoch records (`history_`) as a JSON string: lists of numbers by name
        "history": np.array(json.dumps(getattr(model, "history_", {}))),
    }
    if kind == "MLPClassifier":
        classes = model.classes_
        if classes.dtype == object:
            if not all(isinstance(c, str) for c in classes):
                raise TypeError("classes_ of mixed object types cannot be saved without pickle")
            classes = classes.astype(str)
        arrays["classes"] = classes
        arrays["multilabel"] = np.array(model._label_binarizer.y_type_.startswith("multilabel"))
        if hasattr(model, "class_weight_"):
            arrays["class_weight"] = np.asarray(model.class_weight_, np.float64)
    for i, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        arrays[f"coef_{i}"] = W
        arrays[f"intercept_{i}"] = b
    state = model.get_training_state()
    if state is not None:
        arrays.update(_state_arrays(state))
    arrays["checksum"] = np.array(_checksum(arrays))
    _atomic_savez(os.fspath(path), arrays)


def _class_weight_to_json(class_weight):
    """A dict's labels as they are: JSON object keys are strings, so [label, weight] pairs."""
    if isinstance(class_weight, dict):
        return {
            "pairs": [
                [label.item() if isinstance(label, np.generic) else label, float(weight)]
                for label, weight in class_weight.items()
            ]
        }
    if isinstance(class_weight, (list, tuple)):
        return [_class_weight_to_json(d) for d in class_weight]
    return class_weight


def _class_weight_from_json(stored):
    if isinstance(stored, dict):
        return {label: weight for label, weight in stored["pairs"]}
    if isinstance(stored, list):
        return [_class_weight_from_json(d) for d in stored]
    return stored


def _state_arrays(state):
    """A `TrainingState` as arrays: scalars in JSON, arrays as they are."""
    _, keys, pos, has_gauss, cached_gaussian = state.rng_state
    scalars = {
        "solver": state.solver,
        "learning_rate": state.learning_rate,
        "adam_step": state.adam_step,
        "n_iter": state.n_iter,
        "samples_seen": state.samples_seen,
        "best_loss": state.best_loss,
        "no_improvement_count": state.no_improvement_count,
        "validation_scores": state.validation_scores,
        "best_validation_score": state.best_validation_score,
        "optimizer_arrays": sorted(state.optimizer_arrays),
        "dropout_seed": state.dropout_seed,
        "dropout_step": state.dropout_step,
        "rng": {
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
    }
    arrays = {"state": np.array(json.dumps(scalars)), "rng_keys": np.asarray(keys, np.uint32)}
    for name, a in state.optimizer_arrays.items():
        arrays[f"optimizer_{name}"] = a
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


def read_model(path, estimators):
    """Read a model written by `save`, as an instance of `estimators[its class name]`.

    `estimators` maps "MLPClassifier" and "MLPRegressor" to the classes
    (`fastnn.load` passes them in, so that this module, which their `save`
    uses, does not import them).
    """
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
    if (
        version.shape != ()
        or version.dtype.kind not in "iu"
        or int(version) not in READABLE_VERSIONS
    ):
        raise ValueError(
            f"{path} has model format version {version}; this fastnn reads "
            f"version {FORMAT_VERSION} (and 2) (re-save the model with the fastnn that wrote "
            "it or retrain)"
        )
    version = int(version)
    stored = contents.pop("checksum", None)
    if stored is None or stored.shape != () or str(stored) != _checksum(contents):
        raise ValueError(f"{path} is damaged or was altered: its checksum does not match")
    try:
        kind = str(contents["estimator"]) if version >= 3 else "MLPClassifier"
        if kind not in ESTIMATORS:
            raise ValueError(f"unknown estimator {kind!r}")
        params = json.loads(str(contents["params"]))
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        if "class_weight" in params:
            params["class_weight"] = _class_weight_from_json(params["class_weight"])
        model = estimators[kind](**params)
        n_layers = len(params["hidden_layer_sizes"]) + 1
        coefs = [contents[f"coef_{i}"] for i in range(n_layers)]
        intercepts = [contents[f"intercept_{i}"] for i in range(n_layers)]
        classes = contents["classes"] if kind == "MLPClassifier" else None
        multilabel = bool(contents["multilabel"]) if "multilabel" in contents else False
        model.set_weights(coefs, intercepts, classes, multilabel)
        if "class_weight" in contents:
            model.class_weight_ = contents["class_weight"]
        model.n_iter_ = int(contents["n_iter"])
        model.loss_curve_ = contents["loss_curve"].tolist()
        model.history_ = json.loads(str(contents["history"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is damaged: {exc!r}") from exc
    if "state" in contents:
        try:
            read = _read_state if version >= 3 else _read_state_v2
            model.set_training_state(read(contents, model))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} has a damaged training state: {exc!r}") from exc
    return model


def _rng_state(contents, rng):
    keys = contents["rng_keys"]
    if keys.shape != (MT19937_WORDS,) or keys.dtype != np.uint32:
        raise ValueError(f"rng_keys is {keys.dtype} {keys.shape}")
    return ("MT19937", keys, int(rng["pos"]), int(rng["has_gauss"]), float(rng["cached_gaussian"]))


def _read_state(contents, model):
    state = json.loads(str(contents["state"]))
    return TrainingState(
        solver=state["solver"],
        learning_rate=float(state["learning_rate"]),
        adam_step=int(state["adam_step"]),
        optimizer_arrays={
            name: contents[f"optimizer_{name}"] for name in state["optimizer_arrays"]
        },
        rng_state=_rng_state(contents, state["rng"]),
        n_iter=int(state["n_iter"]),
        samples_seen=int(state["samples_seen"]),
        best_loss=None if state["best_loss"] is None else float(state["best_loss"]),
        no_improvement_count=int(state["no_improvement_count"]),
        validation_scores=state["validation_scores"],
        best_validation_score=state["best_validation_score"],
        # files written before dropout have neither
        dropout_seed=state.get("dropout_seed"),
        dropout_step=int(state.get("dropout_step", 0)),
    )


def _read_state_v2(contents, model):
    """fastnn 0.1's state: per-parameter optimizer arrays, packed here as one flat array."""
    state = json.loads(str(contents["state"]))
    arrays = {}
    for key, count in state["optimizer_arrays"].items():
        name = {"velocities": "velocity"}.get(key, key)
        parts = [contents[f"optimizer_{key}_{i}"].ravel() for i in range(count)]
        if parts:  # v2 kept no velocity without momentum
            arrays[name] = np.concatenate(parts)
    return TrainingState(
        solver=model.solver,
        learning_rate=float(model.learning_rate_init),
        adam_step=int(state["optimizer"].get("t", 0)),
        optimizer_arrays=arrays,
        rng_state=_rng_state(contents, state["rng"]),
        n_iter=model.n_iter_,
        samples_seen=int(state["t_"]),
        best_loss=float(state["best_loss_"]),
        no_improvement_count=int(state["no_improvement_count"]),
        validation_scores=state["validation_scores_"],
        best_validation_score=state["best_validation_score_"],
    )
