"""`fastnn train` end to end, as a user runs it."""

import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "fastnn", *args], capture_output=True,
                          text=True, timeout=300)


def test_train_end_to_end(tmp_path):
    path = tmp_path / "model.npz"
    result = run("train", "--epochs", "2", "--quiet", "--save", str(path))
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("test accuracy: ")
    assert 0.5 < float(last.split(": ")[1]) <= 1.0
    assert path.exists()


def test_train_prints_one_line_per_epoch():
    result = run("train", "--epochs", "3", "--hidden", "16", "--backend", "numpy",
                 "--dtype", "float64")
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
