"""Models saved by fastnn 0.1 (format version 2: classifiers only, He-normal
weights, a two-output softmax for binary y, per-layer optimizer arrays) still
load, predict as they did, and resume training.

tests/fixtures holds two such files, written by the fastnn of commit 02a0665
on digits (float64, 64-8-10 and 64-8-2, 3 epochs), with the probabilities that
fastnn gave for the first 20 test rows.
"""

import pathlib
import warnings

import numpy as np
import pytest

import fastnn
from fastnn.datasets import load_digits

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("name,solver,head", [("v2_adam_multiclass", "adam", "softmax"),
                                              ("v2_sgd_binary", "sgd", "softmax")])
def test_version_2_files_load_predict_and_resume(name, solver, head):
    model = fastnn.load(FIXTURES / f"{name}.npz")
    X, X_test, y, _ = load_digits(dtype="float64")
    expected = np.load(FIXTURES / f"{name}_proba.npy")
    np.testing.assert_allclose(model.predict_proba(X_test[:20]), expected, rtol=1e-12,
                               atol=1e-15)
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
