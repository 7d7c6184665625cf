"""`fastnn train`: checkpoints every N epochs, --resume, and saving on divergence."""

import shutil
import struct
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn import cli
from fastnn.estimators.mlp import MLPClassifier

TINY = ["--hidden", "8", "--batch-size", "64", "--quiet"]


def weights(model):
    return model.coefs_ + model.intercepts_


def assert_same_weights(a, b):
    assert a.n_iter_ == b.n_iter_
    for x, y in zip(weights(a), weights(b)):
        np.testing.assert_array_equal(x, y)


def test_a_run_resumed_from_a_checkpoint_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    whole = tmp_path / "whole.npz"
    assert cli.main(["train", "--epochs", "5", "--save", str(whole), *TINY]) == 0

    # keep a copy of every checkpoint, as a run killed after it would have left it
    save, kept = MLPClassifier.save, []

    def save_and_keep(model, path):
        save(model, path)
        kept.append(tmp_path / f"epoch{model.n_iter_}.npz")
        shutil.copy(path, kept[-1])

    monkeypatch.setattr(MLPClassifier, "save", save_and_keep)
    path = tmp_path / "run.npz"
    assert (
        cli.main(["train", "--epochs", "5", "--checkpoint-every", "2", "--save", str(path), *TINY])
        == 0
    )
    monkeypatch.undo()
    assert [p.name for p in kept] == ["epoch2.npz", "epoch4.npz", "epoch5.npz"]

    resumed = tmp_path / "resumed.npz"
    assert (
        cli.main(
            ["train", "--epochs", "5", "--resume", str(kept[0]), "--save", str(resumed), "--quiet"]
        )
        == 0
    )
    assert_same_weights(fastnn.load(resumed), fastnn.load(whole))


def test_divergence_saves_the_last_finite_weights_and_fails(tmp_path, capsys):
    path = tmp_path / "model.npz"
    # a step of 1e300 is inf in float32: the first update overflows
    code = cli.main(["train", "--epochs", "3", "--lr", "1e300", "--save", str(path), *TINY])
    assert code == 1
    err = capsys.readouterr().err
    assert "fastnn train: error: training diverged at epoch 1, batch" in err
    assert "learning rate 1e+300" in err
    model = fastnn.load(path)
    assert model.n_iter_ == 0
    assert all(np.isfinite(w).all() for w in weights(model))


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--checkpoint-every", "2"], "--checkpoint-every needs --save"),
        (["--resume", "{saved}", "--hidden", "4"], "drop --hidden"),
        (
            ["--resume", "{saved}", "--epochs", "2"],
            "trained 2 epochs already; pass --epochs above",
        ),
        (["--resume", "{damaged}"], "truncated or damaged"),
        (["--resume", "{absent}"], "No such file"),
    ],
)
def test_bad_checkpoint_flags_are_clear_errors(tmp_path, capsys, flags, message):
    saved = tmp_path / "saved.npz"
    assert cli.main(["train", "--epochs", "2", "--save", str(saved), *TINY]) == 0
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(saved.read_bytes()[:-50])
    capsys.readouterr()
    flags = [f.format(saved=saved, damaged=damaged, absent=tmp_path / "absent.npz") for f in flags]
    assert cli.main(["train", *flags]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "command", [["info"], ["evaluate", "--data", "digits"], ["predict", "--data", "digits"]]
)
def test_commands_refuse_a_damaged_model_with_a_message(tmp_path, capsys, command):
    saved = tmp_path / "saved.npz"
    assert cli.main(["train", "--epochs", "1", "--save", str(saved), *TINY]) == 0
    # a byte of the weights' data: the middle of the file may fall in a zip header
    # field that nothing reads (the local copy of a size), which damages nothing
    with zipfile.ZipFile(saved) as archive:
        member = archive.getinfo("coef_0.npy")
    data = bytearray(saved.read_bytes())
    start = member.header_offset  # the local header: 30 bytes, the name, an extra field
    name_length, extra_length = struct.unpack("<HH", data[start + 26 : start + 30])
    data[start + 30 + name_length + extra_length + member.compress_size // 2] ^= 0xFF
    saved.write_bytes(bytes(data))
    capsys.readouterr()
    assert cli.main([command[0], str(saved), *command[1:]]) == 1
    err = capsys.readouterr().err
    assert f"fastnn {command[0]}: error: {saved}" in err and "Traceback" not in err
