"""Pickle, copy, clone and joblib: unfitted, fitted and mid-run estimators.

A loaded copy predicts identically, a mid-run copy resumes exactly, and a
pickle holds arrays and plain objects only (nothing compiled, no module).
"""

import copy
import pickle
import types

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from fastnn import MLPClassifier, MLPRegressor
from fastnn.datasets import load_digits

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, _, y, _ = load_digits()
    return X[:400], y[:400]


def weights(model):
    return model.coefs_ + model.intercepts_


def assert_same_model(a, b, X):
    for wa, wb in zip(weights(a), weights(b)):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    if hasattr(a, "predict_proba"):
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def round_trips(tmp_path):
    return {
        "pickle": lambda m: pickle.loads(pickle.dumps(m)),
        "deepcopy": copy.deepcopy,
        "joblib": lambda m: (
            joblib.dump(m, tmp_path / "m.joblib"),
            joblib.load(tmp_path / "m.joblib"),
        )[1],
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda: MLPClassifier((16,), max_iter=5, random_state=0),
        lambda: MLPClassifier((16,), solver="lbfgs", max_iter=20, random_state=0),
        lambda: MLPRegressor(
            (16,),
            solver="sgd",
            learning_rate="adaptive",
            max_iter=5,
            random_state=0,
            dtype="float64",
        ),
    ],
    ids=["adam", "lbfgs", "regressor-sgd"],
)
def test_fitted_copies_predict_identically(tmp_path, digits, make):
    X, y = digits
    model = make().fit(X, y)
    for name, trip in round_trips(tmp_path).items():
        loaded = trip(model)
        assert loaded.get_params() == model.get_params(), name
        assert_same_model(loaded, model, X)
        # the weights are again views of one flat buffer (one optimizer call updates all)
        assert loaded._params.views_of(loaded.coefs_, loaded.intercepts_), name
    fresh = clone(model)
    assert fresh.get_params() == model.get_params() and not hasattr(fresh, "coefs_")


def test_unfitted_copies_fit_like_the_original(tmp_path, digits):
    X, y = digits
    model = MLPClassifier((8,), max_iter=3, random_state=0)
    reference = clone(model).fit(X, y)
    for trip in [*round_trips(tmp_path).values(), clone]:
        assert_same_model(trip(model).fit(X, y), reference, X)


def test_a_pickle_holds_no_module_or_compiled_function(digits):
    X, y = digits
    model = MLPClassifier((16,), max_iter=3, random_state=0).fit(X, y)
    model.predict(X)  # predicting must not leave a step or a backend behind either
    seen = set()

    def walk(value, path):
        if id(value) in seen:
            return
        seen.add(id(value))
        assert not isinstance(value, (types.ModuleType, types.FunctionType)), path
        assert "numba" not in type(value).__module__, path
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}[{key!r}]")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            walk(vars(value), path)

    walk(model.__getstate__(), "model")


def test_a_pickle_stores_the_weights_once(digits):
    X, y = digits
    model = MLPClassifier((256,), max_iter=1, random_state=0, solver="sgd", momentum=0.0).fit(X, y)
    n_bytes = model._params.data.nbytes
    assert len(pickle.dumps(model)) < 1.5 * n_bytes


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_a_mid_run_pickle_resumes_exactly(digits, solver):
    X, y = digits
    kwargs = dict(
        hidden_layer_sizes=(16,),
        solver=solver,
        learning_rate="invscaling",
        learning_rate_init=0.05,
        batch_size=64,
        random_state=3,
    )
    whole = MLPClassifier(max_iter=6, **kwargs).fit(X, y)
    snapshots = {}

    def keep_epoch_3(model, record):
        if record["epoch"] == 3:
            snapshots["pickle"] = pickle.dumps(model)

    MLPClassifier(max_iter=6, **kwargs).fit(X, y, epoch_callback=keep_epoch_3)
    resumed = pickle.loads(snapshots["pickle"])
    assert resumed.n_iter_ == 3
    resumed.fit(X, y, resume=True)
    assert resumed.n_iter_ == 6 and resumed.loss_curve_ == whole.loss_curve_
    assert resumed._optimizer.learning_rate == whole._optimizer.learning_rate
    for a, b in zip(weights(resumed), weights(whole)):
        np.testing.assert_array_equal(a, b)  # bit-identical


def test_a_memory_mapped_model_predicts_and_trains_on(tmp_path, digits):
    X, y = digits
    model = MLPClassifier((16,), max_iter=3, random_state=0).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    mapped = joblib.load(tmp_path / "m.joblib", mmap_mode="r")
    assert_same_model(mapped, model, X)
    mapped.partial_fit(X, y)  # the read-only buffer is copied, not written
    model.partial_fit(X, y)
    assert_same_model(mapped, model, X)


def test_grid_search_in_two_processes_picks_the_serial_model(digits):
    X, y = digits
    grid = {"hidden_layer_sizes": [(8,), (24,)], "alpha": [1e-4, 1.0]}
    base = MLPClassifier(max_iter=15, random_state=0)
    serial = GridSearchCV(base, grid, cv=3, n_jobs=1).fit(X, y)
    parallel = GridSearchCV(base, grid, cv=3, n_jobs=2).fit(X, y)
    assert parallel.best_params_ == serial.best_params_
    np.testing.assert_array_equal(
        parallel.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    assert_same_model(parallel.best_estimator_, serial.best_estimator_, X)
