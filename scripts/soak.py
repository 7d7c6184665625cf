"""Soak test: many training steps in one process, watching memory and step time.

Runs config b of docs/design.md section 8 (784-128-10, batch 128, float32, Numba backend; a
step is forward, loss, backward and an SGD-with-momentum update) for --steps
steps over a fixed synthetic data set, and reports per window: resident
memory (RSS), Python object count, and the median and mean step time. A leak
shows as RSS or objects growing window after window; a slowdown as the
median step time rising. Not a test: run it by hand, e.g.

    python scripts/soak.py --steps 100000
"""

import argparse
import gc
import json
import statistics
import time

import numpy as np

from fastnn import get_backend
from fastnn.engine.optim import SGDOptimizer
from fastnn.engine.step import TrainStep


def rss_mib():
    """Current resident set size (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=10_000, help="steps per report line")
    parser.add_argument("--backend", choices=["numba", "numpy"], default="numba")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    sizes, batch, dtype = (784, 128, 10), 128, np.float32
    X = rng.random((64 * batch, sizes[0]), dtype=dtype)
    y = rng.integers(0, sizes[-1], X.shape[0]).astype(np.intp)
    coefs = [
        (rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(dtype)
        for a, b in zip(sizes[:-1], sizes[1:])
    ]
    intercepts = [np.zeros(b, dtype) for b in sizes[1:]]
    ops = get_backend(args.backend).ops
    step = TrainStep(ops, coefs, intercepts, batch)
    optimizer = SGDOptimizer(step.params, ops, learning_rate_init=0.01, momentum=0.9)
    n_batches = X.shape[0] // batch

    def train_step(i):
        start = (i % n_batches) * batch
        loss = step.loss_and_grads(X[start : start + batch], y[start : start + batch], 1e-4)
        optimizer.update_params(step.params, step.grads)
        return loss

    for i in range(n_batches):  # compile and touch every buffer before measuring
        train_step(i)
    gc.collect()
    start_rss, start_objects = rss_mib(), len(gc.get_objects())
    print(
        f"config b: 784-128-10, batch {batch}, float32, {args.backend}; "
        f"{args.steps:,} steps; RSS at start {start_rss:.1f} MiB, "
        f"{start_objects:,} Python objects"
    )
    print(
        f"{'steps':>8} {'median ms':>10} {'mean ms':>8} {'RSS MiB':>8} {'objects':>9} {'loss':>8}"
    )

    windows, times = [], np.empty(args.window)
    done, began = 0, time.perf_counter()
    while done < args.steps:
        count = min(args.window, args.steps - done)
        for j in range(count):
            t0 = time.perf_counter()
            loss = train_step(done + j)
            times[j] = time.perf_counter() - t0
        done += count
        row = {
            "steps": done,
            "median_ms": 1e3 * statistics.median(times[:count]),
            "mean_ms": 1e3 * float(times[:count].mean()),
            "rss_mib": rss_mib(),
            "objects": len(gc.get_objects()),
            "loss": float(loss),
        }
        windows.append(row)
        print(
            f"{row['steps']:>8,} {row['median_ms']:>10.4f} {row['mean_ms']:>8.4f} "
            f"{row['rss_mib']:>8.1f} {row['objects']:>9,} {row['loss']:>8.4f}"
        )

    first, last = windows[0], windows[-1]
    summary = {
        "steps": done,
        "seconds": time.perf_counter() - began,
        "rss_start_mib": start_rss,
        "rss_end_mib": last["rss_mib"],
        "objects_start": start_objects,
        "objects_end": last["objects"],
        "median_ms_first_window": first["median_ms"],
        "median_ms_last_window": last["median_ms"],
        "median_drift": last["median_ms"] / first["median_ms"] - 1,
        "loss_finite": bool(np.isfinite(last["loss"])),
        "windows": windows,
    }
    print(
        f"RSS {start_rss:.1f} -> {last['rss_mib']:.1f} MiB; objects {start_objects:,} -> "
        f"{last['objects']:,}; median step {first['median_ms']:.4f} -> "
        f"{last['median_ms']:.4f} ms ({100 * summary['median_drift']:+.1f} %); "
        f"{summary['seconds']:.1f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
