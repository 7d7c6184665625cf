"""Data-parallel training over MPI: one model, trained by N processes (docs/distributed.md).

Every rank holds the whole model and the whole data set (a memory map of it
costs nothing: a rank reads only the rows it trains on), and draws the same
epoch order from the same RNG, so each global batch is the one a single
process takes. Per batch:

1. each rank computes the gradients of its contiguous slice of the batch,
   scaled by 1 / (the global batch's row count or weight sum), which every
   rank knows up front (docs/design.md section 5): the slices' gradients add
   up to the batch's, whatever the slices' sizes, an empty slice included;
2. one in-place ``Allreduce`` (sum) over one buffer of the model's dtype
   holds the gradients, the loss, the correct count and a stop flag;
3. every rank applies the identical update: all ranks keep bit-identical
   weights, and every decision (divergence, Ctrl-C or SIGTERM on any rank,
   early stopping, the end of the data) is taken on identical numbers.

From Python::

    from fastnn.distributed import data_parallel

    with data_parallel() as group:       # MPI.COMM_WORLD, or pass a communicator
        model.fit(X, y)                  # every rank: the same X, y and parameters
        if group.is_root:
            model.save("model.npz")

and from the shell, ``mpiexec -n 4 fastnn train ...`` with a single process's
flags. mpi4py is imported only by `data_parallel` (importing it starts MPI),
or by the command line when an MPI launcher started it (`launched_by_mpi`).
Nothing here is stored in an estimator: it stays picklable and clone-able.
"""

import contextlib
import os
import sys
import time
import traceback
import zlib

import numpy as np

from fastnn.engine.interrupt import StoppedTogether
from fastnn.engine.params import FlatParameters

# Environment variables that MPI launchers set in the processes they start:
# MPICH/Intel MPI (Hydra, also Slurm's PMI-2), Open MPI, PMIx (Slurm, PRRTE), MVAPICH
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE")
# Variables by which a user fixes thread counts; set, they are respected
THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)
# Slots after the gradients in the per-batch Allreduce buffer
LOSS_SLOT, CORRECT_SLOT, STOP_SLOT = -3, -2, -1
EXTRA_SLOTS = 3

_active = []  # the DataParallel groups of the enclosing data_parallel blocks


class RanksDisagree(ValueError):
    """The ranks of a data-parallel fit were given different data or parameters
    (raised on every rank)."""


def launched_by_mpi(environ=None):
    """Whether an MPI launcher (mpiexec, mpirun, srun) started this process.

    Read from the environment only: nothing is imported.
    """
    environ = os.environ if environ is None else environ
    return any(name in environ for name in LAUNCHER_VARIABLES)


def current():
    """The `DataParallel` group of the innermost `data_parallel` block, or None."""
    return _active[-1] if _active else None


class DataParallel:
    """An MPI communicator as the trainer uses it.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        Intra-communicator of the ranks that train one model together.

    Attributes
    ----------
    rank, size : int
    is_root : bool
        Rank 0: the one that prints and writes files.
    """

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.is_root = self.rank == 0

    def part(self, start, stop):
        """This rank's contiguous slice [lo, hi) of rows [start, stop); may be empty."""
        m = stop - start
        return start + m * self.rank // self.size, start + m * (self.rank + 1) // self.size

    def any(self, flag):
        """True on every rank when `flag` is true on at least one (collective)."""
        from mpi4py import MPI

        return bool(self.comm.allreduce(int(bool(flag)), op=MPI.MAX))

    def from_root(self, compute):
        """Rank 0's ``compute()``, sent to every rank (collective; others do not compute)."""
        return self.comm.bcast(compute() if self.is_root else None, root=0)

    def batch_allreduce(self, layer_sizes, dtype):
        """A `BatchAllreduce` for a network of `layer_sizes` in `dtype`."""
        return BatchAllreduce(self, layer_sizes, dtype)

    def check_same(self, what, value):
        """Raise ValueError on every rank unless `value` (picklable) is equal on all ranks."""
        values = self.comm.allgather(value)
        differ = [r for r, v in enumerate(values) if v != values[0]]
        if differ:
            raise RanksDisagree(
                f"data_parallel: {what} differs between ranks 0 and {differ[0]} "
                f"({values[0]!r} and {values[differ[0]]!r}); every rank must "
                "pass the same data and parameters"
            )

    def share_training_start(self, model):
        """Give every rank rank 0's weights and training state (optimizer, RNG, counters).

        With ``random_state=None`` each rank would draw different initial weights.
        """
        self.comm.Bcast(model._params.data, root=0)
        state = self.from_root(model.get_training_state)
        if state is not None:
            model.set_training_state(state)

    def abort(self, code=1):
        """End every process of the job now (MPI_Abort)."""
        sys.stdout.flush()
        sys.stderr.flush()
        # mpiexec forwards each rank's output on its own schedule and drops what is
        # still in flight when the job is aborted: give it a moment, or the
        # message that says why the job ended arrives cut (seen: "Traceback" alone)
        time.sleep(0.5)
        self.comm.Abort(code)


class BatchAllreduce:
    """The one per-batch Allreduce: the gradient buffer, then loss, correct count, stop flag.

    `grads` is a `FlatParameters` over the head of `buffer`: the training step
    writes the rank's gradients straight into what is reduced, so a batch costs
    one in-place Allreduce and no copy.
    """

    def __init__(self, group, layer_sizes, dtype):
        self.group = group
        size = FlatParameters(layer_sizes, dtype).size
        self.buffer = np.zeros(size + EXTRA_SLOTS, dtype)
        self.grads = FlatParameters(layer_sizes, dtype, self.buffer[:size])

    def part(self, start, stop):
        return self.group.part(start, stop)

    def __call__(self, loss, correct, stop):
        """Sum every rank's gradients, loss and correct count; returns
        ``(loss, correct, stop)`` of the whole batch (stop: any rank's)."""
        from mpi4py import MPI

        buf = self.buffer
        buf[LOSS_SLOT], buf[CORRECT_SLOT], buf[STOP_SLOT] = loss, correct, bool(stop)
        self.group.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        # correct counts are integers, exact in float32 up to 2**24 rows per batch
        return float(buf[LOSS_SLOT]), int(round(float(buf[CORRECT_SLOT]))), buf[STOP_SLOT] > 0


def fingerprint(*arrays):
    """A cheap, order-sensitive checksum of arrays (None allowed), to compare across ranks."""
    crc = 0
    for a in arrays:
        if a is not None:
            a = np.ascontiguousarray(a)
            crc = zlib.crc32(str((a.shape, a.dtype.str)).encode(), crc)
            crc = zlib.crc32(a.view(np.uint8).reshape(-1), crc)
    return crc


@contextlib.contextmanager
def data_parallel(comm=None, threads=None):
    """Train every fastnn estimator's `fit` / `partial_fit` in this block over `comm`.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        Default ``MPI.COMM_WORLD`` (imports mpi4py, which starts MPI).
    threads : int, optional
        Numba and BLAS threads per rank. Default: the usable cores divided by
        the ranks on this node, unless the user fixed them
        (NUMBA_NUM_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS or
        MKL_NUM_THREADS is set).

    Yields
    ------
    DataParallel
        `.rank`, `.size`, `.is_root` (print and save on the root only).

    Notes
    -----
    Every rank must call `fit` with the same data and parameters; a
    mismatch is a `RanksDisagree` error on every rank. An exception that
    leaves the block on one rank ends the whole job (MPI_Abort) instead of
    leaving the other ranks waiting, unless every rank raised it at the same
    point (`raised_on_every_rank`: a divergence, a stop on Ctrl-C or SIGTERM,
    `RanksDisagree`); an exception that your code catches inside the block is
    yours to make collective. ``epoch_callback`` runs on every rank. L-BFGS
    does not train data-parallel.
    """
    if comm is None:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    group = DataParallel(comm)
    restore_threads = _limit_threads(comm, threads)
    _active.append(group)
    try:
        yield group
    except BaseException as exc:
        if group.size > 1 and not raised_on_every_rank(exc):
            # one write, so that the launcher cannot forward half of it
            sys.stderr.write(
                f"rank {group.rank} of {group.size}: " + "".join(traceback.format_exception(exc))
            )
            group.abort(1)
        raise
    finally:
        _active.remove(group)
        restore_threads()


def raised_on_every_rank(exc):
    """Whether `exc` is one that data-parallel training raises on every rank at once."""
    from fastnn.errors import DivergenceError

    return isinstance(exc, (StoppedTogether, DivergenceError, RanksDisagree))


def default_threads(comm):
    """Usable cores divided by the ranks of `comm` on this node (at least 1)."""
    from mpi4py import MPI

    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        ranks_here = local.Get_size()
    finally:
        local.Free()
    return max(1, len(os.sched_getaffinity(0)) // ranks_here)


def _limit_threads(comm, threads):
    """Set Numba's and BLAS's thread counts; returns a function that restores them."""
    if threads is None:
        if any(name in os.environ for name in THREAD_VARIABLES):
            return lambda: None
        threads = default_threads(comm)
    import numba
    import scipy.linalg  # noqa: F401  loads the BLAS that Numba's np.dot calls
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    blas = threadpool_limits(limits=threads, user_api="blas")

    def restore():
        numba.set_num_threads(before)
        blas.restore_original_limits()

    return restore
