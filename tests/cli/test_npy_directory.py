"""`fastnn train --data DIR` with DIR/X.npy and DIR/y.npy: memory-mapped, split by index range."""

import numpy as np
import pytest

import fastnn
from fastnn import cli
from fastnn.engine import shuffling
from fastnn.estimators.mlp import MLPClassifier


@pytest.fixture
def npy_directory(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.integers(0, 256, (600, 20), dtype=np.uint8))
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 600))
    return tmp_path


@pytest.mark.parametrize("shuffle", [None, "rows"])
def test_train_maps_the_files_and_holds_out_the_first_rows(
    npy_directory, tmp_path, monkeypatch, shuffle
):
    monkeypatch.setattr(shuffling, "BLOCK_BYTES", 20 * 25)  # several blocks in 600 rows
    saved = tmp_path / "model.npz"
    flags = ["--shuffle", shuffle] if shuffle else []
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(npy_directory),
                "--epochs",
                "2",
                "--hidden",
                "8",
                "--save",
                str(saved),
                "--quiet",
                *flags,
            ]
        )
        == 0
    )
    model = fastnn.load(saved)
    assert model.shuffle == (shuffle or True)
    # the same fit by hand: the first ceil(0.1 * 600) rows are the validation rows
    X = np.load(npy_directory / "X.npy", mmap_mode="r")
    y = np.load(npy_directory / "y.npy", mmap_mode="r")
    expected = MLPClassifier(**model.get_params()).fit(
        X[60:], y[60:], validation_data=(X[:60], y[:60])
    )
    np.testing.assert_array_equal(model._params.data, expected._params.data)
    assert model.history_["val_accuracy"] == expected.history_["val_accuracy"]


def test_a_directory_without_labels_cannot_train(npy_directory, capsys):
    (npy_directory / "y.npy").unlink()
    assert cli.main(["train", "--data", str(npy_directory), "--epochs", "1", "--quiet"]) == 1
    assert "has no labels" in capsys.readouterr().err
