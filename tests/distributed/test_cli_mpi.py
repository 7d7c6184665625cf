"""`mpiexec -n N fastnn train`: one model over N processes, equal to a single
process's; checkpoints that resume under any number of ranks; a rank that
dies or is told to stop.

The digits' 1,293 training rows in batches of 255 give slices of 127 and 128
rows over 2 ranks, 85 over 3, and a last batch of 18.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import cli
from tests.helpers import launcher_children, mpiexec_path, run_mpiexec

pytestmark = pytest.mark.skipif(mpiexec_path() is None, reason="needs mpi4py and mpiexec")

FLAGS = ["--hidden", "32,16", "--batch-size", "255", "--seed", "1", "--quiet"]
BOUND = {"float64": 1e-12, "float32": 1e-5}
FASTNN = [sys.executable, "-m", "fastnn"]


def flat_weights(path):
    return fastnn.load(path)._params.data


def assert_close_to(found, expected, dtype):
    assert np.abs(found - expected).max() <= BOUND[dtype] * np.abs(expected).max()


# the two ways the issue names: mpi4py's runner, and the installed `fastnn` program
MPI4PY_RUNNER = [sys.executable, "-m", "mpi4py", "-m", "fastnn"]
SCRIPT = Path(sys.executable).with_name("fastnn")


@pytest.mark.parametrize(
    "ranks, dtype, program",
    [
        (2, "float64", MPI4PY_RUNNER),
        (3, "float32", [str(SCRIPT)] if SCRIPT.exists() else FASTNN),
    ],
    ids=["2-float64-mpi4py", "3-float32-fastnn"],
)
def test_mpiexec_train_saves_the_single_process_model(ranks, dtype, program, tmp_path):
    single, parallel = tmp_path / "single.npz", tmp_path / "parallel.npz"
    assert (
        cli.main(["train", "--epochs", "3", "--dtype", dtype, "--save", str(single), *FLAGS]) == 0
    )
    done = run_mpiexec(
        ranks,
        *program,
        "train",
        "--epochs",
        "3",
        "--dtype",
        dtype,
        "--save",
        str(parallel),
        *FLAGS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # rank 0 alone prints: one accuracy line, not one per rank
    assert done.stdout.count("test accuracy") == 1
    assert_close_to(flat_weights(parallel), flat_weights(single), dtype)


def test_checkpoints_resume_under_any_number_of_ranks(tmp_path):
    whole = tmp_path / "whole.npz"
    assert (
        cli.main(["train", "--epochs", "4", "--dtype", "float64", "--save", str(whole), *FLAGS])
        == 0
    )
    # two ranks train 2 epochs, one process finishes the run ...
    half = tmp_path / "half_by_2.npz"
    done = run_mpiexec(
        2, *FASTNN, "train", "--epochs", "2", "--dtype", "float64", "--save", str(half), *FLAGS
    )
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = tmp_path / "resumed_by_1.npz"
    assert (
        cli.main(
            ["train", "--epochs", "4", "--resume", str(half), "--save", str(resumed), "--quiet"]
        )
        == 0
    )
    # ... and the other way round: one process starts, three ranks finish
    half_single = tmp_path / "half_by_1.npz"
    assert (
        cli.main(
            ["train", "--epochs", "2", "--dtype", "float64", "--save", str(half_single), *FLAGS]
        )
        == 0
    )
    resumed_3 = tmp_path / "resumed_by_3.npz"
    done = run_mpiexec(
        3,
        *FASTNN,
        "train",
        "--epochs",
        "4",
        "--resume",
        str(half_single),
        "--save",
        str(resumed_3),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for path in (resumed, resumed_3):
        assert fastnn.load(path).n_iter_ == 4
        assert_close_to(flat_weights(path), flat_weights(whole), "float64")


def _start_long_run(tmp_path):
    checkpoint = tmp_path / "checkpoint.npz"
    process = subprocess.Popen(
        [
            mpiexec_path(),
            "-n",
            "2",
            *FASTNN,
            "train",
            "--epochs",
            "100000",
            "--checkpoint-every",
            "1",
            "--save",
            str(checkpoint),
            *FLAGS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.1)
    ranks = {
        env.get("PMI_RANK"): pid
        for pid, env in launcher_children(process.pid).items()
        if "PMI_RANK" in env
    }
    assert set(ranks) == {"0", "1"}, ranks
    return process, ranks, checkpoint


def test_a_killed_rank_ends_the_job_and_the_last_checkpoint_loads(tmp_path):
    process, ranks, checkpoint = _start_long_run(tmp_path)
    os.kill(ranks["1"], signal.SIGKILL)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert time.monotonic() - started < 30, "the surviving rank hung"
    assert fastnn.load(checkpoint).n_iter_ >= 1


def test_sigterm_to_one_rank_stops_every_rank_at_the_same_batch(tmp_path):
    process, ranks, checkpoint = _start_long_run(tmp_path)
    os.kill(ranks["1"], signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-3000:]
    assert "interrupted after" in stderr
    # rank 0 saved the last finished epoch: a whole epoch, and a run that resumes
    model = fastnn.load(checkpoint)
    assert model.n_iter_ >= 1 and len(model.loss_curve_) == model.n_iter_


def test_divergence_stops_every_rank_and_rank_0_saves_the_last_finite_weights(tmp_path):
    # a step of 1e300 is inf in float32: every rank sees the reduced loss turn
    # non-finite at the same batch, rolls back and fails; none waits for another
    saved = tmp_path / "model.npz"
    done = run_mpiexec(
        2,
        *FASTNN,
        "train",
        "--epochs",
        "3",
        "--lr",
        "1e300",
        "--save",
        str(saved),
        *FLAGS,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stderr.count("training diverged at epoch 1, batch") == 1  # rank 0 alone
    assert "MPI_Abort" not in done.stderr
    model = fastnn.load(saved)
    assert model.n_iter_ == 0 and np.isfinite(model._params.data).all()
