"""Many fits on a cluster: scripts/grid_search_dask.py's search over a Dask
LocalCluster picks what the same search picks serially, with the same scores."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastnn.datasets import load_digits
from tests.helpers import load_script

pytest.importorskip("dask.distributed")


def test_a_search_on_a_dask_cluster_equals_the_serial_search():
    script = load_script("grid_search_dask")
    X, _, y, _ = load_digits(dtype="float64")
    X, y = X[:600], y[:600]
    grid = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1.0]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        on_dask = script.on_dask(X, y, grid=grid, max_iter=5)
        serial = script.serial(X, y, grid=grid, max_iter=5)
    assert on_dask.best_params_ == serial.best_params_
    np.testing.assert_array_equal(
        on_dask.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    # the two fits of each candidate's folds really ran, and differ between candidates
    assert len(set(serial.cv_results_["mean_test_score"])) > 1
