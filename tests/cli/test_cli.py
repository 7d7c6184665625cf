"""`fastnn train` end to end, as a user runs it."""

import subprocess
import sys

import pytest

from tests.helpers import run_fastnn as run


def test_train_end_to_end(tmp_path):
    path = tmp_path / "model.npz"
    result = run("train", "--epochs", "2", "--quiet", "--save", str(path))
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("test accuracy: ")
    assert 0.5 < float(last.split(": ")[1]) <= 1.0
    assert path.exists()


def test_train_prints_one_line_per_epoch():
    result = run(
        "train", "--epochs", "3", "--hidden", "16", "--backend", "numpy", "--dtype", "float64"
    )
    assert result.returncode == 0, result.stderr
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 3
    assert "loss" in epoch_lines[0] and "samples/s" in epoch_lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--epochs", "0"],
        ["train", "--hidden", "12,x"],
        ["train", "--backend", "cuda"],
        ["train", "--no-such-flag"],
        ["bogus"],
    ],
)
def test_bad_flags_exit_2(args):
    result = run(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_saves_the_last_finished_epoch(tmp_path):
    import os
    import signal

    import fastnn

    path = tmp_path / "model.npz"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fastnn",
            "train",
            "--epochs",
            "100000",
            "--hidden",
            "16",
            "--save",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        epochs_seen = 0
        for line in proc.stdout:
            epochs_seen += line.startswith("epoch")
            if epochs_seen == 3:
                break
        assert epochs_seen == 3, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "Traceback" not in err
    model = fastnn.load(path)
    assert model.n_iter_ >= 3
    assert len(model.loss_curve_) == model.n_iter_
