"""`fastnn convert`: CSV and IDX files streamed into X.npy and y.npy, in bounded memory."""

import gzip
import tracemalloc

import numpy as np
import pytest

from fastnn import cli
from fastnn.datasets import DataError, convert, load_csv, load_idx, load_npy_directory
from tests.helpers import idx_bytes, write_csv, write_idx_set

KAGGLE_HEADER = ["label"] + [f"pixel{i}" for i in range(6)]


def converted(directory):
    X = np.load(directory / "X.npy")
    y = np.load(directory / "y.npy") if (directory / "y.npy").exists() else None
    return X, y


@pytest.mark.parametrize("gz", [False, True], ids=["csv", "csv.gz"])
def test_a_kaggle_csv_becomes_the_bytes_and_labels_load_csv_reads(tmp_path, gz, monkeypatch):
    monkeypatch.setattr(convert, "CHUNK_ROWS", 3)  # several chunks, a short last one
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.integers(0, 10, 11), rng.integers(0, 256, (11, 6))])
    path = tmp_path / "train.csv"
    write_csv(path, KAGGLE_HEADER, rows.tolist())
    if gz:
        path = tmp_path / "train.csv.gz"
        path.write_bytes(gzip.compress((tmp_path / "train.csv").read_bytes()))
    assert cli.main(["convert", str(path), str(tmp_path / "out"), "--quiet"]) == 0
    X, y = converted(tmp_path / "out")
    assert X.dtype == np.uint8 and y.dtype == np.int64
    expected_X, expected_y = load_csv(path, keep_bytes=True)
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y, expected_y)


@pytest.mark.parametrize("gz", [False, True], ids=["csv", "csv.gz"])
def test_a_csv_saved_by_excel_keeps_its_label_column(tmp_path, gz):
    # Excel's "CSV UTF-8" starts with a byte-order mark and ends lines with CRLF: the
    # mark must not become part of the first column's name ("\ufefflabel")
    rng = np.random.default_rng(1)
    rows = np.column_stack([rng.integers(0, 10, 5), rng.integers(0, 256, (5, 6))])
    text = "\r\n".join([",".join(KAGGLE_HEADER)] + [",".join(map(str, r)) for r in rows])
    data = b"\xef\xbb\xbf" + (text + "\r\n").encode()
    path = tmp_path / ("excel.csv.gz" if gz else "excel.csv")
    path.write_bytes(gzip.compress(data) if gz else data)
    X, y = load_csv(path, keep_bytes=True)
    np.testing.assert_array_equal(X, rows[:, 1:])
    np.testing.assert_array_equal(y, rows[:, 0])
    assert cli.main(["convert", str(path), str(tmp_path / "out"), "--quiet"]) == 0
    X, y = converted(tmp_path / "out")
    np.testing.assert_array_equal(X, rows[:, 1:])
    np.testing.assert_array_equal(y, rows[:, 0])


@pytest.mark.parametrize(
    "rows",
    [
        [
            [3, 0, 255, 17, 0, 0, 128],
            [7, 1, 2, 3, 4, 5, 6],
            [1, 0.5, 0, 0, 0, 0, 200],
        ],  # a float late
        [[3, 0, 1, 1, 0, 0, 1], [7, 1, 0, 0, 1, 1, 0]],  # 0/1 features: not pixels
        [[3, 0.5, 0.25, 0, 0, 0, 1], [7, 1, 0, 0, 1, 1, 0]],  # values in [0, 1]
    ],
    ids=["floats-after-bytes", "zero-one", "unit-interval"],
)
def test_other_csv_values_are_scaled_as_load_csv_scales_them(tmp_path, rows, monkeypatch):
    monkeypatch.setattr(convert, "CHUNK_ROWS", 2)  # the float arrives in a later chunk
    write_csv(tmp_path / "d.csv", KAGGLE_HEADER, rows)
    convert.convert(tmp_path / "d.csv", tmp_path / "out", progress=False)
    X, y = converted(tmp_path / "out")
    expected_X, expected_y = load_csv(tmp_path / "d.csv", keep_bytes=True)
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y, expected_y)


def test_an_unlabelled_csv_gives_X_alone(tmp_path):
    (tmp_path / "out").mkdir()
    np.save(tmp_path / "out" / "y.npy", np.arange(2))  # from an earlier conversion
    write_csv(tmp_path / "test.csv", KAGGLE_HEADER[1:], [[0, 9, 255, 1, 2, 3]] * 2)
    convert.convert(tmp_path / "test.csv", tmp_path / "out", progress=False)
    X, y = load_npy_directory(tmp_path / "out")
    assert y is None and X.shape == (2, 6)


@pytest.mark.parametrize(
    "body, message",
    [
        ("1,2,3\n1,2,3\n2,3\n", "d.csv, line 4: 2 fields, the header has 3"),
        ("1,2,3\n1,2,3\n\n2,x,3\n", "d.csv, line 5, column a: 'x' is not a number"),
        ("1,2,3\n1,2,3\n1.5,2,3\n", "d.csv, line 4: label 1.5 is not an integer"),
        ("1,2,3\n1,2,3\n\n2,nan,3\n", "d.csv, line 5: NaN or inf"),
        ("1,2,3\n1,2,-3\n", "feature values must lie in"),
        ("\n", "no data rows after the header"),
    ],
    ids=["fields", "not-a-number", "label", "nan", "range", "empty"],
)
def test_malformed_csv_is_refused_by_line_and_leaves_nothing(tmp_path, body, message, monkeypatch):
    monkeypatch.setattr(convert, "CHUNK_ROWS", 2)  # the bad line is in a later chunk
    (tmp_path / "d.csv").write_text("label,a,b\n" + body)
    with pytest.raises(DataError, match=message):
        convert.convert(tmp_path / "d.csv", tmp_path / "out", progress=False)
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_idx_files_become_the_bytes_and_labels_load_idx_reads(tmp_path, gz, monkeypatch):
    monkeypatch.setattr(convert, "CHUNK_ROWS", 4)
    (tmp_path / "idx").mkdir()
    write_idx_set(tmp_path / "idx", "test", n=11, gz=gz)
    assert (
        cli.main(
            [
                "convert",
                str(tmp_path / "idx"),
                str(tmp_path / "out"),
                "--subset",
                "test",
                "--quiet",
            ]
        )
        == 0
    )
    X, y = converted(tmp_path / "out")
    expected_X, expected_y = load_idx(tmp_path / "idx", "test", keep_bytes=True)
    assert X.dtype == np.uint8
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y, expected_y)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_a_truncated_idx_file_is_refused_and_leaves_nothing(tmp_path, gz):
    images = np.zeros((9, 2, 2), np.uint8)
    data = idx_bytes(images)[:-5]
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    (tmp_path / name).write_bytes(gzip.compress(data) if gz else data)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(9, np.uint8)))
    with pytest.raises(DataError, match="truncated"):
        convert.convert(tmp_path, tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_memory_stays_bounded_by_the_chunk_not_the_file(tmp_path, monkeypatch):
    # 20,000 rows of 100 pixels: 2 MB as bytes, 16 MB as the float64 a whole parse takes
    monkeypatch.setattr(convert, "CHUNK_ROWS", 500)
    rng = np.random.default_rng(1)
    rows = np.column_stack([rng.integers(0, 10, 20_000), rng.integers(0, 256, (20_000, 100))])
    header = ["label"] + [f"p{i}" for i in range(100)]
    write_csv(tmp_path / "big.csv", header, rows.tolist())
    tracemalloc.start()
    try:
        convert.convert(tmp_path / "big.csv", tmp_path / "out", progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # a chunk is 500 x 101 float64 = 0.4 MB, parsed from 0.2 MB text
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "X.npy"), rows[:, 1:])
