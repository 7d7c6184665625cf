"""Data-parallel fits from Python (`fastnn.distributed.data_parallel`) under mpiexec.

Each test starts MPI processes in a subprocess with a timeout; without mpi4py
or mpiexec the module is skipped.
"""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fastnn import distributed
from tests.helpers import REPO, mpiexec_path, run_mpiexec

pytestmark = pytest.mark.skipif(mpiexec_path() is None, reason="needs mpi4py and mpiexec")

SCRIPT = str(REPO / "tests" / "distributed" / "mpi_fits.py")
# the largest weight difference from the single process, relative to the largest
# weight: summation order only (the bounds)
BOUND = {"float64": 1e-12, "float32": 1e-5}


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    subprocess.run([sys.executable, SCRIPT, str(out)], check=True, timeout=600)
    return np.load(out / "weights.npz")


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_train_the_single_process_model_with_bit_identical_weights(
    ranks, single_process, tmp_path
):
    done = run_mpiexec(ranks, sys.executable, SCRIPT, str(tmp_path), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(tmp_path / "weights.npz")
    names = [k[len("weights_") :] for k in single_process.files if k.startswith("weights_")]
    assert len(names) == 9
    for name in names:
        assert got[f"identical_{name}"], f"{name}: the ranks' weights differ"
        if name.endswith("_unseeded"):
            continue  # random initial weights: only the ranks' agreement is checked
        expected, found = single_process[f"weights_{name}"], got[f"weights_{name}"]
        bound = BOUND[name.rsplit("_", 1)[1]] * np.abs(expected).max()
        assert np.abs(found - expected).max() <= bound, name
        np.testing.assert_allclose(
            got[f"loss_curve_{name}"], single_process[f"loss_curve_{name}"], rtol=1e-5
        )


def test_an_exception_on_one_rank_ends_the_job_within_seconds(tmp_path):
    # rank 1 fails after its second epoch; rank 0 saves a checkpoint every epoch
    script = tmp_path / "fail.py"
    script.write_text(
        textwrap.dedent(f"""
        import numpy as np
        from fastnn import MLPClassifier
        from fastnn.distributed import data_parallel

        X = np.random.default_rng(0).random((600, 20))
        y = np.arange(600) % 3
        with data_parallel() as group:
            def callback(model, record):
                if group.is_root:
                    model.save({str(tmp_path / "checkpoint.npz")!r})
                if group.rank == 1 and record["epoch"] == 2:
                    raise RuntimeError("rank 1 fails on purpose")
            MLPClassifier((8,), max_iter=10_000, dtype="float64", random_state=0).fit(
                X, y, epoch_callback=callback)
    """)
    )
    started = time.perf_counter()
    done = run_mpiexec(2, sys.executable, str(script), timeout=120)
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stderr
    # start-up and two epochs take a few seconds; a hang would run into the timeout
    assert time.perf_counter() - started < 60
    from fastnn import load

    assert load(tmp_path / "checkpoint.npz").n_iter_ in (1, 2)


def test_ranks_given_different_data_refuse_on_every_rank(tmp_path):
    script = tmp_path / "differ.py"
    script.write_text(
        textwrap.dedent("""
        import numpy as np
        from fastnn import MLPClassifier
        from fastnn.distributed import RanksDisagree, data_parallel

        with data_parallel() as group:
            y = np.arange(100) % 2
            y[0] = group.rank  # one label differs on rank 1
            try:
                MLPClassifier((4,), max_iter=2).fit(np.ones((100, 3)), y)
            except RanksDisagree as exc:
                print(f"rank {group.rank}: {exc}")
    """)
    )
    done = run_mpiexec(2, sys.executable, str(script), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0: data_parallel: the data" in done.stdout
    assert "rank 1: data_parallel: the data" in done.stdout


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: nothing to share")
@pytest.mark.parametrize("fixed", [False, True], ids=["default", "user's"])
def test_each_rank_takes_its_share_of_the_cores_unless_told(tmp_path, fixed):
    script = tmp_path / "threads.py"
    script.write_text(
        textwrap.dedent("""
        import os
        import numba
        from threadpoolctl import threadpool_info
        from fastnn.distributed import data_parallel

        with data_parallel() as group:
            blas = {pool["num_threads"] for pool in threadpool_info()
                    if pool["user_api"] == "blas"}
            print(f"rank {group.rank}: numba {numba.get_num_threads()} blas {sorted(blas)}")
    """)
    )
    env = {name: "" for name in distributed.THREAD_VARIABLES}
    cores = len(os.sched_getaffinity(0))
    if fixed:  # the user's choice stands, though two ranks then fight for the cores
        env["NUMBA_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = str(cores)
    environment = {k: v for k, v in {**os.environ, **env}.items() if v}
    done = subprocess.run(
        [mpiexec_path(), "-n", "2", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    share = cores if fixed else cores // 2
    for rank in (0, 1):
        assert f"rank {rank}: numba {share} blas [{share}]" in done.stdout, done.stdout


def test_slices_cover_every_batch_once_whatever_its_size():
    class Comm:  # what DataParallel reads of an mpi4py communicator
        def __init__(self, rank, size):
            self.Get_rank, self.Get_size = lambda: rank, lambda: size

    for size in (1, 2, 3, 7):
        for start, stop in ((0, 255), (510, 512), (3, 4), (5, 5)):
            parts = [
                distributed.DataParallel(Comm(r, size)).part(start, stop) for r in range(size)
            ]
            assert parts[0][0] == start and parts[-1][1] == stop
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            assert max(hi - lo for lo, hi in parts) - min(hi - lo for lo, hi in parts) <= 1


def test_launchers_are_recognised_by_their_environment():
    assert distributed.launched_by_mpi({"PMI_SIZE": "2", "PMI_RANK": "0"})
    assert distributed.launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "2"})
    assert not distributed.launched_by_mpi({"PATH": "/usr/bin"})
