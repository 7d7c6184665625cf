"""Checkpoints: atomic saves, loads that refuse damaged files, exact resumes."""

import json
import os
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastnn
from fastnn import MLPClassifier
from fastnn.datasets import load_digits
from fastnn.estimators import serialization
from tests.helpers import assert_same_training_state


@pytest.fixture(scope="module")
def digits():
    X, _, y, _ = load_digits(dtype="float64")
    return X[:240], y[:240]


def fit(model, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **kwargs)


def params(model):
    return model.coefs_ + model.intercepts_


@pytest.fixture(scope="module")
def saved(tmp_path_factory, digits):
    X, y = digits
    model = fit(
        MLPClassifier(
            (8,), max_iter=2, random_state=0, batch_size=64, backend="numpy", dtype="float64"
        ),
        X,
        y,
    )
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    model.save(path)
    return model, path


# -- atomic save -------------------------------------------------------------


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, saved, monkeypatch):
    model, original = saved
    path = tmp_path / "model.npz"
    path.write_bytes(original.read_bytes())

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == original.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_saving_into_a_missing_directory_names_it(tmp_path, saved):
    model, _ = saved
    with pytest.raises(FileNotFoundError, match="no directory .*absent"):
        model.save(tmp_path / "absent" / "model.npz")


def test_saved_file_holds_no_pickle(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as data:
        assert all(data[key].dtype != object for key in data.files)


# -- refusing damaged files --------------------------------------------------


def assert_refused_or_intact(path, model):
    """Loading either raises a ValueError naming the file or gives the same weights."""
    try:
        loaded = fastnn.load(path)
    except ValueError as exc:
        assert str(path) in str(exc)
        return "refused"
    for a, b in zip(params(loaded), params(model)):
        np.testing.assert_array_equal(a, b)
    return "intact"


def test_truncated_files_are_refused(tmp_path, saved):
    model, original = saved
    data = original.read_bytes()
    path = tmp_path / "cut.npz"
    for size in [0, 1, 10, 100, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 1]:
        path.write_bytes(data[:size])
        with pytest.raises(ValueError, match="truncated or damaged"):
            fastnn.load(path)


def test_flipped_bytes_are_refused_or_harmless(tmp_path, saved):
    # Every byte of the zip headers and directory, and a sample of the data:
    # a flip either fails to load with a clear error or touched a field that
    # does not change the contents (e.g. a timestamp).
    model, original = saved
    data = original.read_bytes()
    rng = np.random.default_rng(0)
    positions = set(range(300)) | set(range(len(data) - 600, len(data)))
    # where each member's bytes (.npy header and array data) lie in the file
    with zipfile.ZipFile(original) as archive:
        payload = set()
        for info in archive.infolist():
            local = data[info.header_offset : info.header_offset + 30]
            start = (
                info.header_offset
                + 30
                + int.from_bytes(local[26:28], "little")
                + int.from_bytes(local[28:30], "little")
            )
            payload |= set(range(start, start + info.compress_size))
    positions |= set(rng.choice(sorted(payload), 300, replace=False).tolist())
    path = tmp_path / "flipped.npz"
    for pos in sorted(positions):
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF
        path.write_bytes(bytes(damaged))
        outcome = assert_refused_or_intact(path, model)
        assert pos not in payload or outcome == "refused", f"byte {pos} altered silently"


def rewrite(src, dst, **changes):
    """Copy an .npz member by member, with some members replaced."""
    with np.load(src, allow_pickle=False) as data:
        contents = {key: data[key] for key in data.files}
    contents.update(changes)
    np.savez(dst, **{k: v for k, v in contents.items() if v is not None})
    return contents


def test_another_format_version_is_refused(tmp_path, saved):
    _, original = saved
    path = tmp_path / "v.npz"
    for version in [1, serialization.FORMAT_VERSION + 1]:
        rewrite(original, path, format_version=np.array(version))
        with pytest.raises(
            ValueError,
            match=f"format version {version}; this fastnn reads "
            f"version {serialization.FORMAT_VERSION}",
        ):
            fastnn.load(path)
    rewrite(original, path, format_version=None)
    with pytest.raises(ValueError, match="no format_version"):
        fastnn.load(path)


def test_altered_contents_fail_the_checksum(tmp_path, saved):
    _, original = saved
    path = tmp_path / "altered.npz"
    with np.load(original) as data:
        coef = data["coef_0"].copy()
    coef[0, 0] += 1e-9
    rewrite(original, path, coef_0=coef)
    with pytest.raises(ValueError, match="checksum does not match"):
        fastnn.load(path)
    rewrite(original, path, checksum=None)
    with pytest.raises(ValueError, match="checksum does not match"):
        fastnn.load(path)


def resealed(src, dst, **changes):
    """A consistent-checksum file with altered contents: the structural checks' turn."""
    contents = {k: v for k, v in rewrite(src, dst, **changes).items() if v is not None}
    contents.pop("checksum")
    contents["checksum"] = np.array(serialization._checksum(contents))
    np.savez(dst, **{k: v for k, v in contents.items() if v is not None})


def test_inconsistent_shapes_and_dtypes_are_refused(tmp_path, saved):
    _, original = saved
    path = tmp_path / "bad.npz"
    with np.load(original) as data:
        coef, state, ms = data["coef_1"], str(data["state"]), data["optimizer_ms"]
        params_json = json.loads(str(data["params"]))
    cases = [
        ({"coef_1": coef[:-1]}, "layer 1 does not follow layer 0"),
        ({"coef_1": coef.astype(np.float32)}, "layer 1 is float32"),
        ({"optimizer_ms": ms[:-1]}, r"optimizer state 'ms' is float64 \(\d+,\)"),
        ({"optimizer_ms": ms.astype(np.float32)}, r"optimizer state 'ms' is float32"),
        ({"rng_keys": np.zeros(3, np.uint32)}, "rng_keys"),
        ({"state": np.array(state.replace('"adam_step": ', '"adam_step": "x'))}, "damaged"),
        ({"params": np.array(json.dumps({**params_json, "solver": "lbfgs"}))}, "solver"),
        (
            {"params": np.array(json.dumps({**params_json, "hidden_layer_sizes": [9]}))},
            "layer 0 has 8 units, hidden_layer_sizes says 9",
        ),
        ({"intercept_0": None}, "intercept_0"),
    ]
    for changes, message in cases:
        resealed(original, path, **changes)
        with pytest.raises(ValueError, match=message):
            fastnn.load(path)


def test_not_a_zip_and_missing_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_text("hello")
    with pytest.raises(ValueError, match="not a readable fastnn model file"):
        fastnn.load(path)
    with pytest.raises(FileNotFoundError):
        fastnn.load(tmp_path / "absent.npz")


# -- resuming ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("solver,lr", [("adam", 0.01), ("sgd", 0.1)])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, digits, backend, solver, lr):
    X, y = digits
    kwargs = dict(
        hidden_layer_sizes=(8,),
        solver=solver,
        learning_rate_init=lr,
        batch_size=50,
        random_state=7,
        backend=backend,
        dtype="float32",
    )
    whole = fit(MLPClassifier(max_iter=5, **kwargs), X, y)

    path = tmp_path / "checkpoint.npz"

    def checkpoint(model, record):
        if record["epoch"] == 2:
            model.save(path)

    fit(MLPClassifier(max_iter=5, **kwargs), X, y, epoch_callback=checkpoint)
    resumed = fastnn.load(path)
    assert resumed.n_iter_ == 2
    fit(resumed.set_params(max_iter=5), X, y, resume=True)
    assert resumed.n_iter_ == 5 and resumed.t_ == whole.t_
    # the optimizer ends where the uninterrupted one does: moments or velocity,
    # Adam's step count, learning rate, shuffling RNG and counters
    state = whole.get_training_state()
    assert state.optimizer_arrays and all(np.any(a != 0) for a in state.optimizer_arrays.values())
    assert_same_training_state(resumed.get_training_state(), state)
    assert resumed.loss_curve_ == whole.loss_curve_
    for a, b in zip(params(resumed), params(whole)):
        np.testing.assert_array_equal(a, b)  # bit-identical: same arithmetic in the same order


def test_resume_needs_a_trained_model_and_more_epochs(digits, saved):
    X, y = digits
    with pytest.raises(ValueError, match="needs a model that has trained"):
        MLPClassifier((8,)).fit(X, y, resume=True)
    model, path = saved
    with pytest.raises(ValueError, match="raise max_iter"):
        fastnn.load(path).fit(X, y, resume=True)
    with pytest.raises(ValueError, match="early_stopping"):
        fastnn.load(path).set_params(max_iter=5, early_stopping=True).fit(X, y, resume=True)
    with pytest.raises(ValueError, match="hidden_layer_sizes must not change"):
        fastnn.load(path).set_params(max_iter=5, hidden_layer_sizes=(9,)).fit(X, y, resume=True)
    with pytest.raises(ValueError, match="features"):
        fastnn.load(path).set_params(max_iter=5).fit(X[:, :10], y, resume=True)


def test_a_loaded_model_continues_with_partial_fit(digits, saved):
    X, y = digits
    model, path = saved
    loaded = fastnn.load(path)
    loaded.partial_fit(X, y)
    model_copy = fastnn.load(path)
    model_copy.partial_fit(X, y)
    assert loaded.n_iter_ == model.n_iter_ + 1
    for a, b in zip(params(loaded), params(model_copy)):
        np.testing.assert_array_equal(a, b)
