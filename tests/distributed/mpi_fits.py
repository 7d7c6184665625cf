"""Fits that tests/distributed/test_data_parallel.py runs alone and under mpiexec.

``python mpi_fits.py OUT`` fits each scenario in one process; under mpiexec
(``mpiexec -n N python mpi_fits.py OUT``) each fit runs inside
`fastnn.distributed.data_parallel`. Rank 0 writes OUT/weights.npz: every
scenario's flat weights and loss curve, and whether all ranks ended with
bit-identical weights. Each fitted model is also pickled and cloned on every
rank: training data-parallel stores nothing of MPI in it.

The data are 767 digits rows in batches of 255: 255, 255, 255, then 2 rows,
so that over 2 ranks the slices are uneven (127/128) and over 3 ranks one rank
holds no row of the last batch.
"""

import pickle
import sys
import warnings

import numpy as np
from scipy import sparse
from sklearn.base import clone

from fastnn import MLPClassifier, MLPRegressor, distributed
from fastnn.datasets import load_digits

ROWS, BATCH = 767, 255


def scenarios():
    """name -> (estimator, X, y, sample_weight)."""
    X64, _, y, _ = load_digits("float64")
    X64, y = X64[:ROWS], y[:ROWS]
    X32 = X64.astype(np.float32)
    pixels = np.round(X64 * 16).astype(np.uint8)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, ROWS)
    common = dict(batch_size=BATCH, max_iter=4, random_state=0)
    return {
        # GEMM path, SGD with Nesterov momentum, row weights: the global weight sum
        # normalises every rank's slice
        "sgd_weighted_float64": (
            MLPClassifier(
                (24, 16), solver="sgd", learning_rate_init=0.1, dtype="float64", **common
            ),
            X64,
            y,
            weights,
        ),
        # the single pass (one hidden ReLU layer of at most 32 units)
        "adam_narrow_float32": (
            MLPClassifier((32,), dtype="float32", learning_rate_init=0.01, **common),
            X32,
            y,
            None,
        ),
        # GEMM path in float32 with L2, uint8 pixels scaled on the fly
        "adam_uint8_float32": (
            MLPClassifier(
                (48,),
                alpha=0.01,
                input_scale=1 / 16,
                learning_rate_init=0.001,
                dtype="float32",
                **common,
            ),
            pixels,
            y,
            None,
        ),
        # class_weight="balanced" times row weights: the class weights come from
        # every rank's whole y, the row weights' global sum normalises each slice
        "balanced_weighted_float32": (
            MLPClassifier(
                (16,), class_weight="balanced", dtype="float32", learning_rate_init=0.01, **common
            ),
            X32,
            np.where(y == 3, 3, 0),
            weights,
        ),
        # the NumPy backend, a regression head
        "regressor_numpy_float64": (
            MLPRegressor(
                (16,), backend="numpy", dtype="float64", learning_rate_init=0.01, **common
            ),
            X64,
            y.astype(np.float64),
            None,
        ),
        # dropout: each rank keys its slice's masks by the rows' indices in X, so the
        # ranks draw the single process's masks (two layers, one rate each)
        "dropout_float64": (
            MLPClassifier(
                (24, 16), dropout=[0.5, 0.25], dtype="float64", learning_rate_init=0.01, **common
            ),
            X64,
            y,
            None,
        ),
        # dropout on the single pass's network (it falls back to the GEMM path)
        # without a seed: the masks' seed comes from rank 0's shared RNG
        "dropout_early_stopping_unseeded": (
            MLPClassifier(
                (32,),
                dropout=0.3,
                early_stopping=True,
                dtype="float64",
                batch_size=BATCH,
                max_iter=4,
                random_state=None,
            ),
            X64,
            y,
            None,
        ),
        # sparse X: the compiled loop on its nonzeros in one process, the Python
        # loop over CSR batches (sparse_step) on the ranks
        "sparse_adam_float64": (
            MLPClassifier((24,), alpha=0.01, dtype="float64", learning_rate_init=0.01, **common),
            sparse.csr_matrix(X64),
            y,
            weights,
        ),
        # early stopping (validation scores from rank 0) without a seed: rank 0's
        # initial weights and RNG are shared; compared across ranks only
        "early_stopping_unseeded": (
            MLPClassifier(
                (24,),
                early_stopping=True,
                dtype="float64",
                batch_size=BATCH,
                max_iter=4,
                random_state=None,
            ),
            X64,
            y,
            None,
        ),
    }


def main(out):
    warnings.simplefilter("ignore")  # ConvergenceWarning: 4 epochs are what was asked
    results = {}
    if distributed.launched_by_mpi():
        with distributed.data_parallel() as group:
            for name, (model, X, y, sw) in scenarios().items():
                model.fit(X, y, sample_weight=sw)
                assert not any(
                    type(v).__module__.startswith("mpi4py") for v in vars(model).values()
                )
                pickle.loads(pickle.dumps(model))
                clone(model)
                every = group.comm.gather(model._params.data.copy())
                results[name] = model
                results[f"identical_{name}"] = group.is_root and all(
                    np.array_equal(every[0], w) for w in every
                )
            root = group.is_root
    else:
        for name, (model, X, y, sw) in scenarios().items():
            results[name] = model.fit(X, y, sample_weight=sw)
            results[f"identical_{name}"] = True
        root = True
    if root:
        arrays = {}
        for name, value in results.items():
            if isinstance(value, bool):
                arrays[name] = np.array(value)
            else:
                arrays[f"weights_{name}"] = value._params.data
                arrays[f"loss_curve_{name}"] = np.array(value.loss_curve_)
        np.savez(f"{out}/weights.npz", **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
