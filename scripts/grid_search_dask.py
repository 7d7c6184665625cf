"""Many fits on a cluster: a GridSearchCV of fastnn models over Dask.

fastnn estimators are scikit-learn estimators, so joblib's Dask backend spreads
a search's fits over a Dask cluster's workers unchanged; each worker process
compiles (or loads from Numba's cache) fastnn's kernels once. Here the cluster
is a LocalCluster of two single-threaded worker processes; on a real cluster,
pass the scheduler's address: `python scripts/grid_search_dask.py tcp://host:8786`.
The search is run serially too, and the two must pick the same parameters with
the same scores.

Needs `pip install "dask[distributed]"` (not a fastnn dependency).
"""

import argparse
import time
import warnings

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from fastnn import MLPClassifier
from fastnn.datasets import load_digits

GRID = {
    "hidden_layer_sizes": [(32,), (64,)],
    "alpha": [1e-4, 1e-2],
    "learning_rate_init": [1e-3, 1e-2],
}


def search(X, y, grid=GRID, max_iter=10):
    # float64 and one thread per fit: the same fit gives the same weights on any worker
    model = MLPClassifier(max_iter=max_iter, random_state=0, dtype="float64")
    return GridSearchCV(model, grid, cv=3, n_jobs=-1)


def on_dask(X, y, address=None, **kwargs):
    """The search run through joblib's Dask backend on `address` (None: a LocalCluster)."""
    from dask.distributed import Client, LocalCluster

    cluster = (
        None
        if address
        else LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
    )
    with Client(address or cluster) as client, joblib.parallel_backend("dask"):
        client.run(_one_thread)
        result = search(X, y, **kwargs).fit(X, y)
    if cluster is not None:
        cluster.close()
    return result


def _one_thread():
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def serial(X, y, **kwargs):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1), joblib.parallel_backend("sequential"):
        return search(X, y, **kwargs).fit(X, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", nargs="?", help="a Dask scheduler (default: a LocalCluster)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)  # 10 epochs: short on purpose
    X, _, y, _ = load_digits(dtype="float64")
    results = {}
    for name, run in (
        ("dask", lambda: on_dask(X, y, args.address)),
        ("serial", lambda: serial(X, y)),
    ):
        started = time.perf_counter()
        results[name] = result = run()
        print(
            f"{name}: {len(result.cv_results_['params'])} candidates x 3 folds in "
            f"{time.perf_counter() - started:.1f} s; best {result.best_params_}, "
            f"score {result.best_score_:.4f}"
        )
    same = np.array_equal(*(r.cv_results_["mean_test_score"] for r in results.values()))
    print("the same scores for every candidate:", same)


if __name__ == "__main__":
    main()
