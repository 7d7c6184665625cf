"""`fastnn convert`: CSV or IDX files streamed into a directory of X.npy and y.npy.

The result is what `fastnn.datasets.load_npy_directory` memory-maps (``fastnn
train --data DIR``), so data larger than memory train without being loaded.
The source is read in chunks of `CHUNK_ROWS` rows and written as it is read:
memory stays bounded (a few tens of MB) whatever the file's size.

- **CSV** (Kaggle's digit-recognizer ``train.csv``, or any CSV whose header
  names a label column; ``.csv.gz`` too): integer labels go to y.npy (int64);
  the other columns to X.npy, as uint8 when every value is an integer in
  0..255 and some are above 1 (pixels: a quarter of float32's size, scaled by
  the model's `input_scale`), otherwise float32, scaled as `fastnn.datasets`
  scales every format (values in [0, 1] kept, in [0, 255] divided by 255,
  others refused): X.npy holds what `fastnn.datasets.load_csv(...,
  keep_bytes=True)` returns.
  A file without the label column (Kaggle's ``test.csv``) gives X.npy alone.
  A malformed line is refused with its line number.
- **IDX** (a directory of MNIST's files, gzipped or not): images as uint8,
  labels as int64.

Each .npy file is written under a temporary name with a fixed-size header
whose row count is filled in at the end, then renamed: a failed or interrupted
conversion leaves no half-written file behind.
"""

import contextlib
import gzip
import io
import os
import struct
import sys
import tempfile

import numpy as np

from fastnn import datasets
from fastnn.datasets import DataError

CHUNK_ROWS = 4096
_HEADER_BYTES = 128  # an .npy version 1.0 header, padded: room for any shape


class _NpyAppender:
    """Rows appended to a new .npy file, which exists under `path` once `close` ran."""

    def __init__(self, path, dtype, row_shape):
        self.path, self.dtype, self.row_shape = path, np.dtype(dtype), tuple(row_shape)
        self.rows = 0
        fd, self.tmp = tempfile.mkstemp(
            prefix=".fastnn-", suffix=".npy.tmp", dir=os.path.dirname(path) or "."
        )
        self.file = os.fdopen(fd, "w+b")
        self.file.write(b"\0" * _HEADER_BYTES)  # replaced by the header in close()

    def append(self, rows):
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        self.file.write(rows.data)
        self.rows += rows.shape[0]

    def close(self):
        header = repr(
            {
                "descr": np.lib.format.dtype_to_descr(self.dtype),
                "fortran_order": False,
                "shape": (self.rows, *self.row_shape),
            }
        )
        prefix = np.lib.format.magic(1, 0)
        text = header.ljust(_HEADER_BYTES - len(prefix) - 2 - 1) + "\n"
        self.file.seek(0)
        self.file.write(prefix + struct.pack("<H", len(text)) + text.encode("latin1"))
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)

    def discard(self):
        self.file.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def convert(source, directory, *, label="label", subset="train", progress=True):
    """Stream `source` into `directory`/X.npy and `directory`/y.npy.

    Parameters
    ----------
    source : path
        A .csv or .csv.gz file with a header line, or a directory of MNIST
        IDX files (gzipped or not).
    directory : path
        Created if missing; its X.npy and y.npy are replaced.
    label : str, default="label"
        The CSV's label column.
    subset : {"train", "test"}
        Which IDX files: train-* or t10k-*.
    progress : bool
        Show a progress bar (on standard error) of the bytes read.

    Returns
    -------
    (rows, X dtype) : (int, numpy dtype)
    """
    source, directory = os.fspath(source), os.fspath(directory)
    if not os.path.exists(source):
        raise FileNotFoundError(f"{source}: no such file or directory")
    os.makedirs(directory, exist_ok=True)
    if os.path.isdir(source):
        if subset not in datasets.IDX_FILES:
            raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
        return _convert_idx(source, directory, subset, progress)
    if not source.lower().endswith((".csv", ".csv.gz")):
        raise ValueError(f"{source}: expected a .csv or .csv.gz file, or a directory of IDX files")
    return _convert_csv(source, directory, label, progress)


def _progress_bar(path, progress):
    from tqdm import tqdm

    return tqdm(
        total=os.path.getsize(path),
        unit="B",
        unit_scale=True,
        file=sys.stderr,
        desc=os.path.basename(path),
        disable=not progress,
        dynamic_ncols=True,
    )


def _open_binary(raw, path):
    return gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw


# -- CSV ------------------------------------------------------------------------------


def _convert_csv(path, directory, label, progress):
    names = datasets.csv_header(path)
    label_column = names.index(label) if label in names else None
    n_features = len(names) - (label_column is not None)
    if n_features == 0:
        raise DataError(f"{path}: no feature columns besides {label!r}")
    writers = {"X": _NpyAppender(os.path.join(directory, "X.npy"), np.uint8, (n_features,))}
    if label_column is not None:
        writers["y"] = _NpyAppender(os.path.join(directory, "y.npy"), np.int64, ())
    try:
        try:
            with open(path, "rb") as raw, _progress_bar(path, progress) as bar:
                text = io.TextIOWrapper(_open_binary(raw, path), encoding="utf-8-sig")
                text.readline()  # the header
                lineno, low, high = 2, np.inf, -np.inf
                while True:
                    lines = [line for line in (text.readline() for _ in range(CHUNK_ROWS)) if line]
                    if not lines:
                        break
                    if not any(line.strip() for line in lines):
                        lineno += len(lines)  # blank lines, as numpy skips them
                        continue
                    values = _parse_lines(path, lines, lineno, names)
                    if label_column is not None:
                        writers["y"].append(_labels(path, values[:, label_column], lines, lineno))
                        values = np.delete(values, label_column, axis=1)
                    if values.size:
                        low, high = min(low, values.min()), max(high, values.max())
                    if writers["X"].dtype == np.uint8 and not _bytes(values):
                        writers["X"] = _widen(writers["X"], np.float32)
                    writers["X"].append(values)
                    lineno += len(lines)
                    bar.update(raw.tell() - bar.n)
        except UnicodeDecodeError as exc:
            raise datasets.not_utf8(path, exc) from exc
        except datasets.DAMAGED_FILE_ERRORS as exc:
            raise DataError(f"{path}: cannot read: {exc}") from exc
        if writers["X"].rows == 0:
            raise DataError(f"{path}: no data rows after the header")
        if writers["X"].dtype == np.uint8 and high <= 1:
            writers["X"] = _widen(writers["X"], np.float32)  # 0/1 features are not pixels
        if writers["X"].dtype != np.uint8:
            _scale_floats(writers["X"], path, low, high)
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.discard()
        raise
    if label_column is None:
        _remove_stale(os.path.join(directory, "y.npy"))
    return writers["X"].rows, writers["X"].dtype


def _parse_lines(path, lines, first_lineno, names):
    """float64 (rows, columns) of CSV `lines`; DataError naming the first bad line."""
    try:
        values = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        values = None
    if values is None or values.shape[1] != len(names):
        raise DataError(
            datasets.find_bad_csv_line(path, lines, first_lineno, names)
            or f"{path}, lines {first_lineno}-{first_lineno + len(lines) - 1}: cannot be parsed"
        )
    if not np.isfinite(values).all():
        row = int(np.nonzero(~np.isfinite(values).all(axis=1))[0][0])
        raise DataError(f"{path}, line {_line_of(lines, row, first_lineno)}: NaN or inf")
    return values


def _line_of(lines, row, first_lineno):
    """The line number of data row `row` among `lines` (blank lines hold no row)."""
    seen = -1
    for offset, line in enumerate(lines):
        seen += bool(line.strip())
        if seen == row:
            return first_lineno + offset
    return first_lineno


def _labels(path, column, lines, first_lineno):
    bad = np.nonzero(column != np.round(column))[0]
    if bad.size:
        raise DataError(
            f"{path}, line {_line_of(lines, int(bad[0]), first_lineno)}: "
            f"label {float(column[bad[0]]):g} is not an integer"
        )
    return column.astype(np.int64)


def _bytes(values):
    """Whether every value is an integer in 0..255 (a pixel byte)."""
    return bool(((values >= 0) & (values <= 255) & (values == np.round(values))).all())


def _widen(writer, dtype):
    """A writer of `dtype` holding the rows `writer` wrote so far (copied in chunks)."""
    wider = _NpyAppender(writer.path, dtype, writer.row_shape)
    try:
        writer.file.flush()
        written = (
            np.memmap(
                writer.tmp,
                np.uint8,
                "r",
                offset=_HEADER_BYTES,
                shape=(writer.rows, *writer.row_shape),
            )
            if writer.rows
            else None
        )
        for start in range(0, writer.rows, CHUNK_ROWS):
            wider.append(written[start : start + CHUNK_ROWS])
        del written
    except BaseException:
        wider.discard()
        raise
    writer.discard()
    return wider


def _scale_floats(writer, path, low, high):
    """`fastnn.datasets`' rule for float features: [0, 1] kept, [0, 255] divided by 255."""
    if not datasets.pixel_range(path, low, high):
        return
    writer.file.flush()
    data = np.memmap(
        writer.tmp,
        writer.dtype,
        "r+",
        offset=_HEADER_BYTES,
        shape=(writer.rows, *writer.row_shape),
    )
    for start in range(0, writer.rows, CHUNK_ROWS):
        data[start : start + CHUNK_ROWS] /= writer.dtype.type(255)
    data.flush()
    del data


def _remove_stale(path):
    if os.path.exists(path):
        os.unlink(path)  # from an earlier conversion into the same directory


# -- IDX ------------------------------------------------------------------------------


def _convert_idx(source, directory, subset, progress):
    images_path, labels_path = (
        datasets.find_idx_file(source, name) for name in datasets.IDX_FILES[subset]
    )
    labels = datasets.read_idx(labels_path, ndim=1).astype(np.int64)
    X = None
    try:
        with (
            open(images_path, "rb") as raw,
            _progress_bar(images_path, progress) as bar,
            _named_read_errors(images_path),
        ):
            stream = _open_binary(raw, images_path)
            start = stream.read(16)
            # a gzip stream's length shows only at its end: checked while reading
            size = (
                16 + _promised(start)
                if images_path.endswith(".gz")
                else os.path.getsize(images_path)
            )
            (n, rows, cols), _ = datasets.idx_shape(images_path, start, 3, size)
            if n != labels.shape[0]:
                raise DataError(f"{source}: {n} images but {labels.shape[0]} labels")
            X = _NpyAppender(os.path.join(directory, "X.npy"), np.uint8, (rows * cols,))
            while X.rows < n:
                want = min(CHUNK_ROWS, n - X.rows)
                chunk = stream.read(want * rows * cols)
                if len(chunk) < want * rows * cols:
                    held = X.rows + len(chunk) // (rows * cols)
                    raise DataError(
                        f"{images_path}: truncated: the header promises {n} "
                        f"images, the file holds {held}"
                    )
                X.append(np.frombuffer(chunk, np.uint8).reshape(want, rows * cols))
                bar.update(raw.tell() - bar.n)
            if stream.read(1):
                raise DataError(
                    f"{images_path}: too long: data after the {n} images the header promises"
                )
        y = _NpyAppender(os.path.join(directory, "y.npy"), np.int64, ())
        y.append(labels)
        X.close()
        y.close()
    except BaseException:
        if X is not None:
            X.discard()
        raise
    return n, np.dtype(np.uint8)


@contextlib.contextmanager
def _named_read_errors(path):
    try:
        yield
    except datasets.DAMAGED_FILE_ERRORS as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


def _promised(start):
    """Bytes of image data an IDX image header promises (a gzipped file's size is unknown)."""
    if len(start) < 16:
        return 0
    n, rows, cols = struct.unpack(">3I", start[4:16])
    return n * rows * cols
