"""Every error a loader raises names the file and what is wrong, for any bytes.

The loaders (`load_csv`, `load_idx`, `load_npz`, `fastnn.load`) and `fastnn
convert` read files users bring; a damaged one must give a `ValueError` (a
`DataError` for data) whose message names the file, never a bare decoding or
parsing error from deep inside NumPy, zipfile or gzip.
"""

import gzip
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import cli, datasets
from fastnn.datasets import DataError
from fastnn.datasets import convert as convert_files
from tests.helpers import write_csv, write_idx_set

N_PIXELS = 784
HEADER = ["label"] + [f"pixel{i}" for i in range(N_PIXELS)]


def kaggle_csv(path, n_rows=600, bad_line=None, gz=False):
    """A Kaggle-style CSV; `bad_line` (1 = header) gets two bytes that are not UTF-8."""
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.integers(0, 10, n_rows), rng.integers(0, 256, (n_rows, N_PIXELS))])
    plain = path.with_suffix("") if gz else path
    write_csv(plain, HEADER, rows.tolist())
    data = plain.read_bytes()
    if bad_line is not None:
        lines = data.split(b"\n")
        lines[bad_line - 1] = lines[bad_line - 1][:3] + b"\xa9\xff" + lines[bad_line - 1][3:]
        data = b"\n".join(lines)
    if gz:
        plain.unlink()
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


# The bad bytes far enough in (line 300 of 601, the last line) that they are not
# in the first block read for the header; the fuzz of 1,600 files found these.
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("bad_line", [1, 300, 601], ids=["header", "row", "last-line"])
@pytest.mark.parametrize("reader", ["load_csv", "convert", "fastnn convert"])
def test_a_csv_that_is_not_utf8_is_named_with_its_line(tmp_path, reader, bad_line, gz):
    path = kaggle_csv(tmp_path / ("d.csv.gz" if gz else "d.csv"), bad_line=bad_line, gz=gz)
    expected = f"{path}, line {bad_line}: not UTF-8 text (byte 0xa9)"
    if reader == "fastnn convert":
        assert cli.main(["convert", str(path), str(tmp_path / "out"), "--quiet"]) == 1
        return
    with pytest.raises(DataError) as raised:
        if reader == "load_csv":
            datasets.load_csv(path)
        else:
            convert_files.convert(path, tmp_path / "out", progress=False)
    assert str(raised.value).startswith(expected)
    assert not (tmp_path / "out" / "X.npy").exists()  # nothing half-written is left


def test_the_cli_reports_the_file_and_line(tmp_path, capsys):
    path = kaggle_csv(tmp_path / "d.csv", bad_line=300)
    assert cli.main(["convert", str(path), str(tmp_path / "out"), "--quiet"]) == 1
    assert f"{path}, line 300: not UTF-8 text" in capsys.readouterr().err


# -- any bytes -------------------------------------------------------------------------


def mutations(data, rng, count):
    """`count` damaged copies of `data`: bytes flipped, cut short, junk inserted."""
    for i in range(count):
        damaged = bytearray(data)
        kind = i % 3
        if kind == 0:
            for at in rng.integers(0, len(damaged), rng.integers(1, 8)):
                damaged[at] = int(rng.integers(0, 256))
        elif kind == 1:
            damaged = damaged[: int(rng.integers(0, len(damaged)))]
        else:
            at = int(rng.integers(0, len(damaged)))
            damaged[at:at] = (
                rng.integers(128, 256, int(rng.integers(1, 16))).astype(np.uint8).tobytes()
            )
        yield bytes(damaged)


def saved_model(path):
    X, _, y, _ = datasets.load_digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fastnn.MLPClassifier((8,), max_iter=2, random_state=0).fit(X[:200], y[:200]).save(path)
    return path


def data_npz(path):
    rng = np.random.default_rng(1)
    np.savez(path, X=rng.integers(0, 256, (30, 12), dtype=np.uint8), y=rng.integers(0, 10, 30))
    return path


def idx_directory(path, gz):
    path.mkdir()
    write_idx_set(path, "train", n=30, gz=gz)
    return path / (datasets.IDX_FILES["train"][0] + (".gz" if gz else ""))


def small_csv(path, gz):
    return kaggle_csv(path, n_rows=40, gz=gz)


KINDS = {
    "model npz (fastnn.load)": (saved_model, "m.npz", fastnn.load),
    "data npz (load_npz)": (data_npz, "d.npz", datasets.load_npz),
    "idx (load_idx)": (lambda p: idx_directory(p, False), "idx", None),
    "idx.gz (load_idx)": (lambda p: idx_directory(p, True), "idxgz", None),
    "csv (load_csv)": (lambda p: small_csv(p, False), "d.csv", datasets.load_csv),
    "csv.gz (load_csv)": (lambda p: small_csv(p, True), "d.csv.gz", datasets.load_csv),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_damaged_files_give_an_error_that_names_them(tmp_path, kind):
    make, name, load = KINDS[kind]
    target = make(tmp_path / name)  # the file that gets damaged
    original = target.read_bytes()
    if load is None:  # IDX: the loader takes the directory
        directory = target.parent

        def load(_):
            return datasets.load_idx(directory)

    unnamed = []
    for i, data in enumerate(mutations(original, np.random.default_rng(7), 60)):
        target.write_bytes(data)
        try:
            load(target)
        except ValueError as exc:  # DataError is one
            if str(target) not in str(exc):
                unnamed.append((i, repr(exc)[:200]))
        except Exception as exc:
            unnamed.append((i, repr(exc)[:200]))
    assert not unnamed, unnamed[:5]


def test_a_damaged_idx_file_is_named_also_by_fastnn_convert(tmp_path):
    target = idx_directory(tmp_path / "idx", gz=True)
    target.write_bytes(target.read_bytes()[:40])  # a gzip stream cut short
    with pytest.raises(DataError, match=str(target)):
        convert_files.convert(target.parent, tmp_path / "out", progress=False)
