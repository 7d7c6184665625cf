"""Loaders of fastnn.datasets on small files the tests write, and fetch_mnist
against a local HTTP server (never the network)."""

import gzip
import hashlib
import time

import numpy as np
import pytest

from fastnn import datasets
from fastnn.datasets import DataError, fetch_mnist, load_csv, load_idx, load_npz
from tests.helpers import idx_bytes, serve, write_csv, write_idx_set

# -- IDX -----------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("subset", ["train", "test"])
def test_load_idx_reads_pixels_and_labels(tmp_path, gz, subset):
    images, labels = write_idx_set(tmp_path, subset, gz=gz)
    X, y = load_idx(tmp_path, subset, dtype="float64")
    assert X.shape == (7, 12) and X.dtype == np.float64 and X.flags.c_contiguous
    np.testing.assert_array_equal(X, images.reshape(7, 12) / 255.0)
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int64


def test_load_idx_float32_and_dotted_names(tmp_path):
    images, labels = write_idx_set(tmp_path)
    for name in datasets.IDX_FILES["train"]:
        (tmp_path / name).rename(tmp_path / name.replace("-idx", ".idx"))
    X, y = load_idx(tmp_path)
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, (images.reshape(7, 12) / 255.0).astype(np.float32))


def test_load_idx_missing_file_names_what_it_looked_for(tmp_path):
    write_idx_set(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        load_idx(tmp_path, "test")


def test_load_idx_truncated_file(tmp_path):
    write_idx_set(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated.*84 bytes.*79"):
        load_idx(tmp_path)


def test_load_idx_truncated_gzip_stream(tmp_path):
    write_idx_set(tmp_path, gz=True, n=200)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: cannot read"):
        load_idx(tmp_path)


def test_load_idx_wrong_magic(tmp_path):
    write_idx_set(tmp_path)
    # a label file where the image file should be: magic 0x801, not 0x803
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte: wrong magic number "
        r"0x00000801, expected 0x00000803",
    ):
        load_idx(tmp_path)


def test_load_idx_counts_must_match(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(6, np.uint8)))
    with pytest.raises(DataError, match="7 images but 6 labels"):
        load_idx(tmp_path)


# -- CSV -----------------------------------------------------------------------

KAGGLE_HEADER = ["label"] + [f"pixel{i}" for i in range(6)]


def test_load_csv_kaggle_train_and_test(tmp_path):
    rows = [[3, 0, 255, 17, 0, 0, 128], [7, 1, 2, 3, 4, 5, 6]]
    write_csv(tmp_path / "train.csv", KAGGLE_HEADER, rows)
    write_csv(tmp_path / "test.csv", KAGGLE_HEADER[1:], [row[1:] for row in rows])
    X, y = load_csv(tmp_path / "train.csv")
    expected = (np.array(rows)[:, 1:] / 255.0).astype(np.float32)
    np.testing.assert_array_equal(X, expected)
    np.testing.assert_array_equal(y, [3, 7])
    assert X.dtype == np.float32 and y.dtype == np.int64 and X.flags.c_contiguous
    X_test, y_test = load_csv(tmp_path / "test.csv", dtype="float64")
    assert y_test is None and X_test.dtype == np.float64
    np.testing.assert_array_equal(X_test, np.array(rows)[:, 1:] / 255.0)


def test_load_csv_generic_label_column_and_unit_values(tmp_path):
    # features already in [0, 1] are kept; the label may be any column
    write_csv(
        tmp_path / "data.csv",
        ["a", "target", "b"],
        [[0.25, 1, 0.5], [1.0, 0, 0.0], [0.0, 2, 0.75]],
    )
    X, y = load_csv(tmp_path / "data.csv", label="target", dtype="float64")
    np.testing.assert_array_equal(X, [[0.25, 0.5], [1.0, 0.0], [0.0, 0.75]])
    np.testing.assert_array_equal(y, [1, 0, 2])


def test_load_csv_gzip(tmp_path):
    text = "label,p0,p1\n1,0,255\n0,51,0\n"
    (tmp_path / "train.csv.gz").write_bytes(gzip.compress(text.encode()))
    X, y = load_csv(tmp_path / "train.csv.gz", dtype="float64")
    np.testing.assert_array_equal(X, [[0, 1], [0.2, 0]])
    np.testing.assert_array_equal(y, [1, 0])


@pytest.mark.parametrize(
    "text, message",
    [
        ("label,p0,p1\n1,0,255\n0,51\n", "line 3: 2 fields, the header has 3"),
        ("label,p0,p1\n1,0,2\n1,0,x\n", "line 3, column p1: 'x' is not a number"),
        ("label,p0,p1\n", "no data rows"),
        ("", "empty file"),
        ("1,0,255\n0,51,0\n", "first line must be a header"),
        ("label,p0,p1\n1,0,300\n", r"values must lie in \[0, 1\] or \[0, 255\].*300"),
        ("label,p0,p1\n1,0,-2\n", r"values must lie in.*-2"),
        ("label,p0,p1\n1.5,0,2\n", "'label' must hold integer labels"),
        ("label,p0,p1,p2\n1,0,2\n", "header names 4 columns but the rows have 3"),
        ("label\n1\n", "no feature columns"),
    ],
    ids=[
        "truncated-row",
        "not-a-number",
        "header-only",
        "empty",
        "no-header",
        "out-of-range",
        "negative",
        "fractional-label",
        "header-mismatch",
        "no-features",
    ],
)
def test_load_csv_errors_name_file_and_problem(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        load_csv(path)
    assert str(path) in str(info.value)


def test_load_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_csv(tmp_path / "nope.csv")


def test_load_csv_binary_file(tmp_path):
    path = tmp_path / "junk.csv.gz"
    path.write_bytes(b"\x00\xff not gzip at all")
    with pytest.raises(DataError, match="junk.csv.gz: cannot read"):
        load_csv(path)


# -- .npz ----------------------------------------------------------------------


def test_load_npz_pixels_images_and_no_labels(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 2, 3), dtype=np.uint8)
    np.savez(tmp_path / "images.npz", X=images, y=np.arange(5))
    X, y = load_npz(tmp_path / "images.npz", dtype="float64")
    np.testing.assert_array_equal(X, images.reshape(5, 6) / 255.0)
    np.testing.assert_array_equal(y, np.arange(5))
    np.savez(tmp_path / "unlabelled.npz", X=np.full((2, 3), 0.5))
    X, y = load_npz(tmp_path / "unlabelled.npz")
    assert y is None and X.dtype == np.float32
    np.testing.assert_array_equal(X, np.full((2, 3), 0.5, np.float32))


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((2, 2))}, r"no array named 'X' \(found \['x'\]\)"),
        ({"X": np.zeros((2, 2)), "y": np.zeros(3)}, r"y has shape \(3,\), expected \(2,\)"),
        ({"X": np.zeros(4)}, "X must be a non-empty 2-D array"),
        ({"X": np.zeros((2, 2)), "y": np.array([0.5, 1])}, "y must hold integer labels"),
        ({"X": np.full((2, 2), 1e3)}, "values must lie in"),
    ],
    ids=["no-X", "y-length", "X-1d", "fractional-y", "out-of-range"],
)
def test_load_npz_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_npz(path)
    assert str(path) in str(info.value)


def test_load_npz_not_an_npz(tmp_path):
    path = tmp_path / "fake.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="fake.npz: not a readable .npz file"):
        load_npz(path)
    path = tmp_path / "array.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((2, 2)))
    with pytest.raises(DataError, match="array.npz: a single .npy array"):
        load_npz(path)
    np.savez(path, X=np.zeros((20, 20)))
    path.write_bytes(path.read_bytes()[:-30])  # cut short
    with pytest.raises(DataError, match="array.npz: not a readable .npz file"):
        load_npz(path)


def test_dtype_is_checked(tmp_path):
    write_idx_set(tmp_path)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        load_idx(tmp_path, dtype="int32")


# -- fetch_mnist over a local server -------------------------------------------


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """Small gzipped MNIST-format files under <site>/mnist, their checksums patched in."""
    site = tmp_path / "site"
    (site / "mnist").mkdir(parents=True)
    data = {}
    for subset in ("train", "test"):
        data[subset] = write_idx_set(
            site / "mnist", subset, gz=True, rng=np.random.default_rng(len(subset))
        )
    checksums = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (site / "mnist").iterdir()
    }
    monkeypatch.setattr(datasets, "MNIST_SHA256", checksums)
    return site, data


def test_fetch_mnist_downloads_once_then_reuses(tmp_path, mirror):
    site, data = mirror
    home = tmp_path / "home"
    with serve(site) as (base, requests):
        X, y = fetch_mnist(home, mirrors=[base], dtype="float64")
        assert sorted(requests) == [
            "/mnist/train-images-idx3-ubyte.gz",
            "/mnist/train-labels-idx1-ubyte.gz",
        ]
        X_test, y_test = fetch_mnist(home, "test", mirrors=[base])
        assert len(requests) == 4
    images, labels = data["train"]
    np.testing.assert_array_equal(X, images.reshape(len(images), -1) / 255.0)
    np.testing.assert_array_equal(y, labels)
    assert X_test.shape == (7, 12)
    # the server is gone: the cached, verified files are used
    X_again, _ = fetch_mnist(home, mirrors=[base], dtype="float64")
    np.testing.assert_array_equal(X_again, X)
    assert sorted(p.name for p in (home / "mnist").iterdir()) == sorted(datasets.MNIST_SHA256)


def test_fetch_mnist_tries_the_next_mirror(tmp_path, mirror):
    site, _ = mirror
    (tmp_path / "empty-site").mkdir()
    with serve(tmp_path / "empty-site") as (dead, _), serve(site) as (good, requests):
        fetch_mnist(tmp_path / "home", mirrors=[dead, good])
    assert len(requests) == 2


def test_fetch_mnist_rejects_a_wrong_checksum(tmp_path, mirror, monkeypatch):
    site, _ = mirror
    bad = dict(datasets.MNIST_SHA256, **{"train-images-idx3-ubyte.gz": "0" * 64})
    monkeypatch.setattr(datasets, "MNIST_SHA256", bad)
    home = tmp_path / "home"
    with (
        serve(site) as (base, _),
        pytest.raises(DataError, match="sha256 is [0-9a-f]{64}, expected 0000"),
    ):
        fetch_mnist(home, mirrors=[base])
    # nothing unverified is kept, not even a partial file
    assert not (home / "mnist" / "train-images-idx3-ubyte.gz").exists()
    assert not list((home / "mnist").glob(".fastnn-*"))


def test_fetch_mnist_offline_fails_fast_and_says_what_to_place_where(tmp_path, mirror):
    with serve(tmp_path) as (base, _):
        pass  # the port is closed again: connections are refused
    started = time.perf_counter()
    with pytest.raises(DataError) as info:
        fetch_mnist(tmp_path / "home", mirrors=[base], timeout=2)
    assert time.perf_counter() - started < 5
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert f"place them in {tmp_path / 'home' / 'mnist'}" in message
    for name in datasets.MNIST_SHA256:
        assert name in message


def test_fetch_mnist_refuses_a_damaged_cached_file(tmp_path, mirror):
    cache = tmp_path / "home" / "mnist"
    cache.mkdir(parents=True)
    (cache / "train-images-idx3-ubyte.gz").write_bytes(b"damaged")
    with pytest.raises(DataError, match="damaged or not the official one: delete it"):
        fetch_mnist(tmp_path / "home", mirrors=["http://127.0.0.1:9/"])


def test_mnist_home_uses_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    assert datasets.mnist_home() == str(tmp_path / "mnist")
    assert datasets.mnist_home(tmp_path / "x") == str(tmp_path / "x" / "mnist")


# -- pixels kept as bytes, regression targets ------------------------------------


def test_keep_bytes_returns_the_pixels_unscaled(tmp_path):
    images, labels = write_idx_set(tmp_path, "train")
    X, y = load_idx(tmp_path, "train", keep_bytes=True)
    assert X.dtype == np.uint8 and X.flags.c_contiguous
    np.testing.assert_array_equal(X, images.reshape(7, 12))
    # the float loader's values are exactly these bytes / 255
    np.testing.assert_array_equal(load_idx(tmp_path, "train", dtype="float64")[0], X / 255.0)

    rows = [[3, 0, 255, 17, 0, 0, 128], [7, 1, 2, 3, 4, 5, 6]]
    write_csv(tmp_path / "train.csv", KAGGLE_HEADER, rows)
    X, y = load_csv(tmp_path / "train.csv", keep_bytes=True)
    assert X.dtype == np.uint8
    np.testing.assert_array_equal(X, np.array(rows)[:, 1:])
    np.savez(tmp_path / "px.npz", X=np.array(rows)[:, 1:], y=[3, 7])
    X, _ = load_npz(tmp_path / "px.npz", keep_bytes=True)
    assert X.dtype == np.uint8


@pytest.mark.parametrize("rows", [[[1, 0, 1], [0, 1, 0]], [[0.5, 0.25, 1.0], [0, 1, 0]]])
def test_keep_bytes_leaves_values_in_0_1_as_floats(tmp_path, rows):
    # 0/1 features are not pixel intensities: /255 would be wrong for them
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], [r + [i] for i, r in enumerate(rows)])
    X, _ = load_csv(tmp_path / "d.csv", keep_bytes=True, dtype="float64")
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, np.array(rows, dtype=np.float64))


def test_load_csv_regression_targets_and_raw_features(tmp_path):
    write_csv(tmp_path / "r.csv", ["a", "y", "b", "z"], [[-3.5, 0.25, 1000, 1], [2, -1.5, 7, 2]])
    X, y = load_csv(tmp_path / "r.csv", label="y", task="regression", dtype="float64")
    np.testing.assert_array_equal(X, [[-3.5, 1000, 1], [2, 7, 2]])  # not scaled
    np.testing.assert_array_equal(y, [0.25, -1.5])
    X, Y = load_csv(tmp_path / "r.csv", label="y,z", task="regression", dtype="float32")
    assert Y.shape == (2, 2) and Y.dtype == np.float32 and X.shape == (2, 2)
    with pytest.raises(DataError, match="no column 'q'"):
        load_csv(tmp_path / "r.csv", label="y,q", task="regression")
    with pytest.raises(ValueError, match="task must be"):
        load_csv(tmp_path / "r.csv", task="ranking")
