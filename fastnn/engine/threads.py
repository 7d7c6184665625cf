"""Threads for the GEMM path's parallel epoch: a persistent pool, the thread count, BLAS at 1.

The parallel epoch is the GEMM path's default wherever the cost model
(`gemm_threads`) predicts a gain; ``FASTNN_PARALLEL_EPOCH=0`` turns it off
(the serial loop, OpenBLAS's own threads). Measured on 2 cores (real MNIST,
AMD EPYC Zen 5, AVX-512), an epoch of fit was 1.2-2.1x one thread's at batch
32-200 on a quiet machine, and 1.6-4.6x the serial loop with OpenBLAS at 2
threads (by medians) with another process busy on one core, where OpenBLAS's
split of each GEMM waits for the busy core (docs/design.md section 7).

The jitted loop each thread runs, and its barriers, are
`fastnn.engine.numba_parallel`'s. While it runs, OpenBLAS is held at 1 thread
(each thread's GEMMs are its own), and the user's setting is restored after.
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor

from fastnn.engine.numba_parallel import ABORT

SWITCH = "FASTNN_PARALLEL_EPOCH"


def parallel_epoch_enabled():
    """Whether the parallel epoch may run: SWITCH unset, empty or 1 (yes), or 0 (no)."""
    value = os.environ.get(SWITCH, "1").strip()
    if value not in ("0", "1", ""):
        raise ValueError(f"{SWITCH} must be 0 or 1, got {value!r}")
    return value != "0"


def threads_available():
    """Threads a step may use: Numba's current thread count (NUMBA_NUM_THREADS by
    default), and no more than BLAS's (`blas_threads`), whose threads the parallel
    epoch replaces: a user who held OpenBLAS at 1 thread (OPENBLAS_NUM_THREADS=1,
    threadpoolctl, a joblib worker) gets the serial loop, as before.

    Capped at the core count; 1 where the barriers cannot run (no sched_yield: Windows).
    """
    if sys.platform == "win32":
        return 1
    import numba

    return max(1, min(numba.get_num_threads(), blas_threads(), os.cpu_count() or 1))


def blas_threads():
    """The fewest threads any BLAS threadpoolctl sees is set to use now (a large
    number where it sees none)."""
    infos = _blas_controller().select(user_api="blas").info()
    return min((int(i.get("num_threads") or 1) for i in infos), default=1 << 20)


_POOL = {}
# A forked child inherits the pool but not its threads: work submitted there
# would wait forever. The child starts a pool of its own on first use.
os.register_at_fork(after_in_child=_POOL.clear)


def pool(threads):
    """The persistent pool of `threads` threads, created on first use."""
    if threads not in _POOL:
        _POOL[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fastnn")
    return _POOL[threads]


def run_together(calls, sync):
    """Run `calls` (functions of no argument) at once, the first on this thread.

    They meet at barriers on `sync`. When one raises, the abort flag releases
    the others; the first exception is raised once all have returned.
    Returns the first call's result.
    """
    sync[:] = 0

    def guarded(call):
        try:
            return call()
        except BaseException:
            sync[ABORT] = 1
            raise

    futures = [pool(len(calls) - 1).submit(guarded, c) for c in calls[1:]]
    error = None
    try:
        result = guarded(calls[0])
    except BaseException as exc:
        error = exc
    for future in futures:
        while True:
            try:
                future.result()
                break
            except BaseException as exc:
                error = error or exc
                if future.done():
                    break
                # interrupted while waiting (a second Ctrl-C): stop the others, and
                # still wait for them, so that no thread writes the weights afterwards
                sync[ABORT] = 1
    if error is not None:
        raise error
    return result


class BlasLimit:
    """OpenBLAS (every BLAS threadpoolctl sees) at 1 thread while a parallel epoch runs.

    `limit()` is a context that restores the user's setting on exit. The
    libraries are found once per process (~4 ms: threadpoolctl reads the
    process's memory map), a limit from them costs ~40 us.
    """

    def limit(self):
        return _blas_controller().limit(limits=1, user_api="blas")


_CONTROLLER = []
# OpenBLAS's cores whose sgemm/dgemm multiply small matrices (M N K <= 1e6)
# without packing (its AVX-512 "small matrix" kernels), as threadpoolctl names them
SMALL_GEMM_CORES = {"skylakex", "cooperlake", "sapphirerapids"}
SMALL_GEMM_MNK = 1_000_000


def small_gemm_mnk():
    """SMALL_GEMM_MNK if every BLAS threadpoolctl sees is an OpenBLAS with small-matrix
    kernels for this CPU (e.g. on AVX-512 with OPENBLAS_CORETYPE unset), else 0."""
    infos = _blas_controller().select(user_api="blas").info()
    cores = {str(i.get("architecture", "")).lower() for i in infos}
    apis = {i.get("internal_api") for i in infos}
    return SMALL_GEMM_MNK if infos and apis == {"openblas"} and cores <= SMALL_GEMM_CORES else 0


def _blas_controller():
    if not _CONTROLLER:
        import scipy.linalg  # noqa: F401  loads the BLAS that Numba's np.dot calls
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


# The cost model of a step of m rows (docs/design.md section 7). Serial:
# FLOP_SECONDS * 6 m W (the three GEMMs over the W weights) + PARAM_SECONDS * P
# (the passes over the P parameters: L2, update). On T threads the work is
# split T ways, but each thread writes a whole m x m0 partial product of the
# first layer and the sums read T of them for its m / T rows (SUM_SECONDS per
# output value of the first layer), and reads (packs) all of the other
# layers' weights in its rows' GEMMs (PACK_SECONDS per weight); neither is
# divided. Each thread adds WAIT_SECONDS to a step's barriers. FLOP, PARAM
# and PACK were measured on 784-128-10 and 784-256-128-10, float32, Intel Xeon
# AVX-512, OpenBLAS at 1 thread, CPU time of one thread; SUM_SECONDS is the
# cost of a write and a read of a value (docs/design.md section 7).
FLOP_SECONDS = 10e-12
PARAM_SECONDS = 1.05e-9
PACK_SECONDS = 0.4e-9
SUM_SECONDS = 1e-9
WAIT_SECONDS = 2e-6
# Rows below which a thread's GEMMs lose most of their speed
MIN_ROWS_PER_THREAD = 8
# Predicted speed-up below which a step stays serial: the model is a model
MIN_GAIN = 1.15
# Predicted serial step below which a step stays serial, whatever the gain:
# the parallel epoch pays 5-25 us a step (barriers, waking a thread, uneven
# halves) that the model's WAIT_SECONDS undercounts on small steps. Measured
# on AMD EPYC Zen 5, 2 threads (docs/design.md section 7): steps the model
# puts at 28-167 us (64-128-10, 100-128-10, 256-128-10, 32-64-64-4) were
# 0.6-1.0x one thread's by medians, those at 249-889 us 1.13-1.67x.
MIN_PARALLEL_SECONDS = 200e-6
# ... and the least gain of each further thread (a core others could use)
THREAD_GAIN = 0.05


def step_seconds(batch_size, layer_sizes, threads):
    """The model's time of one step of `batch_size` rows on `threads` threads."""
    pairs = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    weights = sum(k * m for k, m in pairs)
    params = weights + sum(m for _, m in pairs)
    serial = FLOP_SECONDS * 6 * batch_size * weights + PARAM_SECONDS * params
    if threads == 1:
        return serial
    k0, m0 = pairs[0]
    repeated = SUM_SECONDS * batch_size * m0 + PACK_SECONDS * (weights - k0 * m0)
    return (serial - repeated) / threads + repeated + WAIT_SECONDS * threads


def gemm_threads(batch_size, layer_sizes):
    """Threads for the GEMM path's steps of `batch_size` rows (1: the serial loop).

    1 where the user turned the parallel epoch off (`parallel_epoch_enabled`)
    or the model's serial step is under MIN_PARALLEL_SECONDS. Else two if the
    model has them beat one by MIN_GAIN, then each further
    thread while it saves THREAD_GAIN, with at least MIN_ROWS_PER_THREAD rows each.
    """
    if not parallel_epoch_enabled() or batch_size < 2 * MIN_ROWS_PER_THREAD:
        return 1
    serial = step_seconds(batch_size, layer_sizes, 1)
    if serial < MIN_PARALLEL_SECONDS:
        return 1
    best, best_seconds = 1, serial / MIN_GAIN
    most = min(threads_available(), batch_size // MIN_ROWS_PER_THREAD)
    for threads in range(2, most + 1):
        seconds = step_seconds(batch_size, layer_sizes, threads)
        if seconds < best_seconds / (1 + THREAD_GAIN * (best > 1)):
            best, best_seconds = threads, seconds
    return best
