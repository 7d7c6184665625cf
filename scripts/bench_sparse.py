#!/usr/bin/env python
"""A one-epoch fit on a large sparse CSR X: fastnn against scikit-learn, per dtype.

The case of issue "[4 of 5] Skip the zeros": X is 10,000 x 50,000 CSR at 0.2 %
nonzero (values uniform in [0, 1), random positions; labels of 10 classes),
``MLPClassifier((128,), solver="adam", batch_size=200, max_iter=1)``, both
libraries in X's dtype (float32 and float64), the same `random_state`. Each
(library, dtype) runs in its own process, so that one library's BLAS threads
never share the cores with the other's; a warm-up fit first (fastnn compiles
its loop), then the median of `--repeats` timed fits, wall clock, input
checks and initialisation included (what a user waits for).

    python scripts/bench_sparse.py                 # about 3 minutes on 2 cores
    python scripts/bench_sparse.py --dtypes float32 --repeats 5
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

WORKER = """
import json, sys, time, warnings
import numpy as np
import scipy.sparse

library, dtype, rows, features, density, repeats = sys.argv[1:7]
rows, features, density, repeats = int(rows), int(features), float(density), int(repeats)
rng = np.random.default_rng(0)
X = scipy.sparse.random(rows, features, density=density, format="csr", dtype=dtype, rng=rng)
y = rng.integers(0, 10, rows)
if library == "fastnn":
    from fastnn import MLPClassifier
    extra = {"dtype": dtype}
else:
    from sklearn.neural_network import MLPClassifier
    extra = {}


def fit():
    model = MLPClassifier(
        (128,), solver="adam", batch_size=200, max_iter=1, random_state=0, **extra
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch: a ConvergenceWarning
        started = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - started


fit()
print(json.dumps({"seconds": [fit() for _ in range(repeats)], "nnz": int(X.nnz)}))
"""


def run(library, dtype, args):
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(WORKER),
            library,
            dtype,
            str(args.rows),
            str(args.features),
            str(args.density),
            str(args.repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=50_000)
    parser.add_argument("--density", type=float, default=0.002)
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{args.rows:,} x {args.features:,} CSR at {100 * args.density:g} %, (128,), adam, "
        f"batch 200, one-epoch fit, s (median of {args.repeats} after a warm-up fit); "
        f"{os.cpu_count()} CPUs"
    )
    print("| dtype | fastnn | scikit-learn | ratio |\n| --- | ---: | ---: | ---: |")
    for dtype in args.dtypes.split(","):
        fast = statistics.median(run("fastnn", dtype, args)["seconds"])
        peer = statistics.median(run("sklearn", dtype, args)["seconds"])
        print(f"| {dtype} | {fast:.3f} | {peer:.2f} | {peer / fast:.1f}x |")


if __name__ == "__main__":
    main()
