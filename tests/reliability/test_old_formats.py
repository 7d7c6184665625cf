"""Models saved by fastnn 0.1 (format version 2: classifiers only, He-normal
weights, a two-output softmax for binary y, per-layer optimizer arrays) still
load, predict as they did, and resume training.

tests/fixtures holds two such files, written by the fastnn of commit 02a0665
on digits (float64, 64-8-10 and 64-8-2, 3 epochs), with the probabilities that
fastnn gave for the first 20 test rows.
"""

import pathlib
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone

import fastnn
from fastnn.datasets import load_digits

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"


def assert_predicts_as_it_did(out, expected):
    """float64: bit for bit; float32: to the last bits, which BLAS kernels round
    differently from one CPU to another (the fixtures were written on an Intel
    AVX-512 machine; on an AMD Zen 5 up to 40 % of the entries differ, by up to
    2.2e-7 relative)."""
    assert out.dtype == expected.dtype
    if out.dtype == np.float64:
        np.testing.assert_array_equal(out, expected)
    else:
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize(
    "name,solver,head",
    [("v2_adam_multiclass", "adam", "softmax"), ("v2_sgd_binary", "sgd", "softmax")],
)
def test_version_2_files_load_predict_and_resume(name, solver, head):
    model = fastnn.load(FIXTURES / f"{name}.npz")
    X, X_test, y, _ = load_digits(dtype="float64")
    expected = np.load(FIXTURES / f"{name}_proba.npy")
    np.testing.assert_allclose(model.predict_proba(X_test[:20]), expected, rtol=1e-12, atol=1e-15)
    assert model.solver == solver and model.out_activation_ == head
    assert model.n_iter_ == 3
    # its optimizer state was read (per-layer arrays packed into the flat buffer)
    state = model.get_training_state()
    assert all(np.any(a != 0) for a in state.optimizer_arrays.values())
    model.set_params(max_iter=5)
    if name.endswith("binary"):
        y = (y > 4).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y, resume=True)
    assert model.n_iter_ == 5 and np.isfinite(model.coefs_[0]).all()


V3_MODELS = ["v3_adam_multiclass_float32", "v3_sgd_binary_float64", "v3_adam_regressor_float64"]


@pytest.mark.parametrize("fmt", ["npz", "pkl", "joblib"])
@pytest.mark.parametrize("name", V3_MODELS)
def test_models_saved_before_the_layer_folders_load_and_predict_as_they_did(name, fmt):
    # written by tests/fixtures/make_v3_fixtures.py at commit 1667de5, when the
    # estimators lived in fastnn.mlp: a pickle names that module and fastnn.optim
    import joblib

    path = FIXTURES / f"{name}.{fmt}"
    if fmt == "npz":
        model = fastnn.load(path)
    elif fmt == "pkl":
        with open(path, "rb") as f:
            model = pickle.load(f)
    else:
        model = joblib.load(path)
    _, X_test, _, _ = load_digits(dtype="float64")
    out = (
        model.predict_proba(X_test[:20])
        if hasattr(model, "classes_")
        else model.predict(X_test[:20])
    )
    assert_predicts_as_it_did(out, np.load(FIXTURES / f"{name}_out.npy"))
    # parameters added since (class_weight) take their defaults: get_params, clone work
    if hasattr(model, "classes_"):
        assert model.get_params()["class_weight"] is None
    clone(model)
    model.partial_fit(X_test[:40], model.predict(X_test[:40]))  # and trains on
    assert np.isfinite(model.coefs_[0]).all()


def test_module_names_from_before_the_layer_folders_import_as_the_moved_modules():
    import importlib

    from fastnn._moved import MOVED

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new)


def _load(path, fmt):
    import joblib

    if fmt == "npz":
        return fastnn.load(path)
    if fmt == "pkl":
        with open(path, "rb") as f:
            return pickle.load(f)
    return joblib.load(path)


@pytest.mark.parametrize("fmt", ["npz", "pkl", "joblib"])
@pytest.mark.parametrize("name", ["v3_default_uint8_pixels", "v3_default_lbfgs_regressor"])
def test_models_of_the_float32_defaults_load_and_predict_as_they_did(name, fmt):
    # written by tests/fixtures/make_v3_default_fixtures.py at commit a771a34, when
    # dtype defaulted to float32 and input_scale to 1/255: the models keep both
    model = _load(FIXTURES / f"{name}.{fmt}", fmt)
    assert model.dtype == "float32" and model.input_scale == 1 / 255
    assert model.coefs_[0].dtype == np.float32
    _, X_test, _, y_test = load_digits(dtype="float64")
    if name.endswith("pixels"):
        rows = np.round(X_test[:40] * 255).astype(np.uint8)
        assert_predicts_as_it_did(
            model.predict_proba(rows[:20]), np.load(FIXTURES / f"{name}_out.npy")
        )
        model.partial_fit(rows, y_test[:40])  # and trains on
    else:
        rows = X_test[:40]
        assert_predicts_as_it_did(model.predict(rows[:20]), np.load(FIXTURES / f"{name}_out.npy"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.set_params(warm_start=True, max_iter=2).fit(rows, y_test[:40].astype(float))
    assert model.coefs_[0].dtype == np.float32 and np.isfinite(model.coefs_[0]).all()
