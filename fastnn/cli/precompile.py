"""`fastnn compile`: compile a new user's first fits ahead of time, into Numba's cache.

A first fit compiles the epoch loop of its activation, head, solver, X dtype
and path, seconds of work (docs/design.md, "Compile time"). `pip install .`
runs this module once while it builds the package (setup.py), so the installed
package carries, in its `__pycache__` folders, the compiled code of the fits a
new user runs first (`FIRST_FITS`), and that user's first fit loads it instead
of compiling. `fastnn compile` does the same into the cache in use
(NUMBA_CACHE_DIR if set, else `__pycache__`): for a container image, or a
cluster's shared install before many jobs start at once.

Numba keys a cache entry by the source file's content, the function's
bytecode, the signature, the CPU (name and features) and Numba's version: an
entry written for another CPU or another Numba is ignored, and that fit
compiles as it would without one.
"""

import contextlib
import os
import subprocess
import sys
import time
import warnings

# What a new user runs first: scikit-learn's defaults (relu, adam) with each
# head, on float64 X (scikit-learn's dtype) and float32 X (fastnn train's, the
# README quickstart's), on the GEMM path (its serial loop and its parallel
# epoch) and the single pass. Each also predicts, which reuses the fit's
# forward pass, and draws a wide layer's initial weights (engine/numba_uniform.py).
FIRST_FITS = (
    "softmax-float64",
    "softmax-float32",
    "logistic-float64",
    "logistic-float32",
    "identity-float64",
    "identity-float32",
    "single-pass-float64",
    "single-pass-float32",
)


# a worker process: compiles its share of the first fits
_WORKER = "import sys; from fastnn.cli.precompile import compiled_by; compiled_by(sys.argv[1:])"


def run_first_fit(name):
    """Fit (one epoch) and predict as in first fit `name`, compiling what it runs."""
    import numpy as np

    from fastnn.engine.numba_uniform import COMPILED_MIN, uniform_into
    from fastnn.estimators.mlp import MLPClassifier, MLPRegressor

    kind, dtype = name.rsplit("-", 1)
    rng = np.random.default_rng(0)
    X = rng.random((64, 8)).astype(dtype)
    y = np.arange(64) % 3
    # the GEMM path's two loops, whatever this machine's cores: the serial one
    # (1 thread) and the parallel epoch (compiled once for any thread count)
    for threads in (1,) if kind == "single-pass" else (1, 2):
        with _epoch_threads(threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the ConvergenceWarning of one epoch
            if kind == "identity":
                model = MLPRegressor((128,), max_iter=1, random_state=0).fit(X, y / 2.0)
            else:
                hidden = (10,) if kind == "single-pass" else (128,)
                target = y % 2 if kind == "logistic" else y
                model = MLPClassifier(hidden, max_iter=1, random_state=0).fit(X, target)
                model.predict_proba(X)
            model.predict(X)
    # a wide first layer's initial weights, drawn in compiled code
    uniform_into(np.random.RandomState(0), -1.0, 1.0, np.empty(COMPILED_MIN, dtype))


@contextlib.contextmanager
def _epoch_threads(threads):
    """The GEMM path's epochs on `threads` threads (1: the serial loop), whatever
    the cost model (`threads.gemm_threads`) would pick on this machine."""
    from fastnn.engine import threads as threads_module

    chosen = threads_module.gemm_threads
    threads_module.gemm_threads = lambda batch_size, layer_sizes: threads
    try:
        yield
    finally:
        threads_module.gemm_threads = chosen


def compiled_by(names):
    """Run first fits `names` in this process; the qualified names Numba compiled."""
    from numba.core.event import install_recorder

    with install_recorder("numba:compile") as recorder:
        for name in names:
            run_first_fit(name)
    return sorted({e.data["dispatcher"].py_func.__qualname__ for _, e in recorder.buffer})


def precompile(names=FIRST_FITS, jobs=2, log=print):
    """Compile first fits `names` into the cache, `jobs` processes at once.

    Then runs them all once more in one process: two processes that compile
    two signatures of one function at the same moment can each rewrite its
    cache index without the other's entry (a lost entry, never a broken
    one), and this pass writes what was lost. Returns what that pass compiled.
    """
    started = time.perf_counter()
    names = list(names)
    groups = [names[i::jobs] for i in range(max(1, jobs))]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, *group],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for group in groups
        if group
    ]
    for worker in workers:
        _, stderr = worker.communicate()
        if worker.returncode:
            raise RuntimeError(f"fastnn compile: a worker failed:\n{stderr}")
    recompiled = compiled_by(names)
    log(
        f"fastnn compile: {len(names)} first fits compiled in "
        f"{time.perf_counter() - started:.1f} s into {cache_location()}"
    )
    return recompiled


def cache_location():
    """Where Numba writes fastnn's cache: NUMBA_CACHE_DIR, else the package's folders."""
    import numba

    return numba.config.CACHE_DIR or "__pycache__ beside fastnn's modules"


def compile_command(args):
    """`fastnn compile`: the exit status."""
    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        print("fastnn compile: error: NUMBA_DISABLE_JIT=1, nothing to compile", file=sys.stderr)
        return 1
    if args.jobs < 1:
        print(f"fastnn compile: error: --jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    precompile(jobs=args.jobs, log=(lambda line: None) if args.quiet else print)
    return 0
