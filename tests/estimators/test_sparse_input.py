"""Sparse X (CSR, CSC) trains and predicts like its dense copy, without being densified."""

import numpy as np
import pytest
from scipy import sparse

from fastnn import MLPClassifier, MLPRegressor
from fastnn.datasets import load_digits

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, _, y, _ = load_digits(dtype="float64")
    return X[:300], y[:300]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("layout", [sparse.csr_matrix, sparse.csc_matrix, sparse.csr_array])
def test_sparse_x_trains_like_its_dense_copy(digits, backend, solver, layout):
    # float64: the two differ only in summation order, so the weights agree to rounding
    X, y = digits
    params = dict(
        hidden_layer_sizes=(15, 7),
        solver=solver,
        max_iter=15,
        random_state=1,
        batch_size=64,
        alpha=1e-3,
        backend=backend,
        dtype="float64",
    )
    dense = MLPClassifier(**params).fit(X, y)
    sparse_fit = MLPClassifier(**params).fit(layout(X), y)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse_fit.coefs_ + sparse_fit.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        sparse_fit.predict_proba(layout(X)), dense.predict_proba(X), atol=1e-12
    )


def test_sparse_regression_with_weights_and_early_stopping():
    rng = np.random.default_rng(0)
    X = sparse.random(400, 50, density=0.05, format="csr", random_state=0)
    y = X @ rng.standard_normal(50)
    sw = rng.random(400)
    params = dict(
        hidden_layer_sizes=(8,), max_iter=30, random_state=0, early_stopping=True, dtype="float64"
    )
    a = MLPRegressor(**params).fit(X, y, sample_weight=sw)
    b = MLPRegressor(**params).fit(X.toarray(), y, sample_weight=sw)
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=1e-9)
    np.testing.assert_allclose(a.predict(X), b.predict(X.toarray()), rtol=1e-9, atol=1e-12)


def test_a_wide_sparse_x_is_never_densified():
    # 2,000,000 columns: one dense float32 batch of 200 rows would take 1.6 GB
    rng = np.random.default_rng(0)
    n, k = 300, 2_000_000
    X = sparse.csr_matrix(
        (np.ones(n, np.float32), (np.arange(n), rng.integers(0, k, n))), shape=(n, k)
    )
    y = np.arange(n) % 2
    model = MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    assert model.coefs_[0].shape == (k, 4)
    assert model.predict(X).shape == (n,)
