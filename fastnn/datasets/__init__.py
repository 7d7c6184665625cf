"""Data sets: digits (the default), MNIST IDX files, CSV, .npz and .npy files, MNIST download.

Every file loader returns ``(X, y)``: X C-contiguous in the requested dtype
with values in [0, 1], y int64 labels, or None for a file without labels (such
as Kaggle's ``test.csv``). A missing file raises `FileNotFoundError`; a file
that cannot be used raises `DataError`, naming the file and what is wrong.

Feature values are scaled the same way in every format: values already within
[0, 1] are kept, values within [0, 255] (pixel intensities) are divided by
255, anything else is an error (scale such data before saving it). With
``keep_bytes=True`` pixel intensities (integers in 0..255) stay uint8 bytes,
unscaled: a quarter of float32's memory, and fastnn's estimators scale them by
their `input_scale` on the fly, with no float copy of the data (pass
``input_scale=1/255``, as ``fastnn train`` does; the default, 1, reads 0..255).
A regression file (``task="regression"``) keeps its feature values and reads
float targets.

Data larger than memory live in a directory of two ``.npy`` files, X.npy and
y.npy (`load_npy_directory`, written by ``fastnn convert``), which are
memory-mapped: nothing is read until training reads the rows of a batch.
Uncompressed IDX files are memory-mapped as well when their bytes are kept.
"""

import contextlib
import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib

import numpy as np

# The mirrors TensorFlow and PyTorch download from; yann.lecun.com often refuses.
MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",  # noqa: E501
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",  # noqa: E501
}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_UBYTE = 0x08  # IDX type code of unsigned bytes, the only one MNIST uses


# What reading a damaged file raises from gzip, zlib and zipfile (a bad or cut
# gzip stream, an unknown zip compression method): the loaders name the file.
DAMAGED_FILE_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, NotImplementedError)


class DataError(ValueError):
    """A data file exists but cannot be used; the message names the file."""


def load_digits(dtype="float32", test_size=0.2, random_state=0):
    """scikit-learn's 8x8 digits (1,797 images), pixels scaled to [0, 1].

    Returns ``X_train, X_test, y_train, y_test`` from a seeded stratified split;
    X is C-contiguous in `dtype`, y is int64.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    X = (digits.data / 16.0).astype(dtype)
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    return (np.ascontiguousarray(X_train), np.ascontiguousarray(X_test), y_train, y_test)


# -- MNIST IDX files -----------------------------------------------------------


def load_idx(directory, subset="train", dtype="float32", *, keep_bytes=False):
    """MNIST images and labels from the IDX files in `directory`.

    Parameters
    ----------
    directory : path
        Holds ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``
        (subset "train") or ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte`` (subset "test"), each optionally gzipped
        (``.gz``); the dotted spelling ``train-images.idx3-ubyte`` also works.
    subset : {"train", "test"}
    dtype : {"float32", "float64"}
    keep_bytes : bool, default=False
        Return the pixels as the file's uint8 bytes (0..255), unscaled.

    Returns
    -------
    X : ndarray (n_images, rows * cols), pixels divided by 255 (or uint8)
    y : ndarray (n_images,) int64
    """
    dtype = _float_dtype(dtype)
    if subset not in IDX_FILES:
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    images_name, labels_name = IDX_FILES[subset]
    images_path = find_idx_file(directory, images_name)
    # kept as bytes, an uncompressed file is mapped, not read: each rank of a
    # data-parallel run then reads only the rows it trains on
    images = (
        _map_idx(images_path, ndim=3)
        if keep_bytes and not images_path.endswith(".gz")
        else read_idx(images_path, ndim=3)
    )
    labels = read_idx(find_idx_file(directory, labels_name), ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{directory}: {images.shape[0]} images but {labels.shape[0]} labels")
    X = images.reshape(images.shape[0], -1)
    if keep_bytes:
        return X, labels.astype(np.int64)
    X = X.astype(dtype)
    X /= dtype.type(255)
    return X, labels.astype(np.int64)


def find_idx_file(directory, name):
    """Path of IDX file `name` in `directory`, gzipped or not.

    Raises `FileNotFoundError` naming every spelling it looked for.
    """
    directory = os.fspath(directory)
    dotted = name.replace("-idx", ".idx")
    candidates = [name, name + ".gz", dotted, dotted + ".gz"]
    for candidate in candidates:
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{directory}: no {name} file (looked for {', '.join(candidates)})")


def read_idx(path, ndim):
    """An IDX file of unsigned bytes (gzipped or not) as an ndarray with `ndim` dimensions."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except DAMAGED_FILE_ERRORS as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    shape, header = idx_shape(path, data, ndim, len(data))
    return np.frombuffer(data, dtype=np.uint8, count=int(np.prod(shape)), offset=header).reshape(
        shape
    )


def _map_idx(path, ndim):
    """An uncompressed IDX file of unsigned bytes, memory-mapped read-only."""
    with open(path, "rb") as f:
        start = f.read(4 + 4 * ndim)
    shape, header = idx_shape(path, start, ndim, os.path.getsize(path))
    return np.memmap(path, dtype=np.uint8, mode="r", offset=header, shape=shape)


def idx_shape(path, start, ndim, file_size):
    """``(shape, header bytes)`` of an IDX file of unsigned bytes whose first bytes are
    `start`; DataError unless it holds exactly that many bytes of data."""
    header = 4 + 4 * ndim
    if len(start) >= 4:
        magic = struct.unpack(">I", start[:4])[0]
        expected = (_IDX_UBYTE << 8) | ndim
        if magic != expected:
            kind = "image" if ndim == 3 else "label"
            raise DataError(
                f"{path}: wrong magic number {magic:#010x}, expected {expected:#010x} "
                f"(an IDX {kind} file of unsigned bytes)"
            )
    if len(start) < header:
        raise DataError(f"{path}: truncated: {len(start)} bytes, shorter than the IDX header")
    shape = struct.unpack(f">{ndim}I", start[4:header])
    size = int(np.prod(shape))
    found = file_size - header
    if found != size:
        what = "truncated" if found < size else "too long"
        raise DataError(
            f"{path}: {what}: the header promises {size} bytes of data "
            f"(shape {shape}), the file holds {found}"
        )
    return shape, header


# -- CSV and .npz files --------------------------------------------------------


def load_csv(path, label="label", dtype="float32", *, keep_bytes=False, task="classification"):
    """Features and labels from a CSV file with a header line.

    Reads Kaggle's digit-recognizer files (``train.csv``: ``label``,
    ``pixel0`` .. ``pixel783``; ``test.csv``: the pixels only) and any CSV
    whose header names a label column. ``.csv.gz`` files are decompressed.

    Parameters
    ----------
    path : path
    label : str, default="label"
        Name of the label column; every other column is a feature. A file
        without that column gives ``y = None``. For regression, several
        comma-separated names give a multi-output y.
    dtype : {"float32", "float64"}
    keep_bytes : bool, default=False
        Pixel files (every value an integer in 0..255) keep their uint8 bytes.
    task : {"classification", "regression"}
        Integer class labels, or float targets (and features as they are).

    Returns
    -------
    X : ndarray (n_rows, n_features), scaled to [0, 1] (or uint8 bytes)
    y : ndarray (n_rows,) int64; (n_rows,) or (n_rows, n_targets) of `dtype`
        for regression; or None
    """
    dtype = _float_dtype(dtype)
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    path = os.fspath(path)
    columns = csv_header(path)
    names = label.split(",") if task == "regression" else [label]
    missing = [name for name in names if name not in columns]
    if task == "regression" and names and missing and len(missing) < len(names):
        raise DataError(f"{path}: no column {missing[0]!r} (columns: {columns[:10]}...)")
    label_columns = [] if missing else [columns.index(name) for name in names]
    raw = _parse_csv(path, len(columns), dtype)
    y = None
    if label_columns:
        if task == "regression":
            y = np.ascontiguousarray(raw[:, label_columns], dtype=dtype)
            y = y[:, 0] if len(label_columns) == 1 else y
            if not np.isfinite(y).all():
                raise DataError(f"{path}: the targets {names} hold NaN or inf")
        else:
            y = _integer_labels(raw[:, label_columns[0]], path, f"column {label!r}")
        # a view for the usual first column; else a copy (small for uint8 pixels)
        raw = raw[:, 1:] if label_columns == [0] else np.delete(raw, label_columns, axis=1)
    if raw.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides {label!r}")
    if task == "regression":
        X = np.ascontiguousarray(raw, dtype=dtype)
        if not np.isfinite(X).all():
            raise DataError(f"{path}: the features hold NaN or inf")
        return X, y
    return _scaled(raw, dtype, path, keep_bytes), y


def load_npz(path, dtype="float32", *, keep_bytes=False):
    """Features ``X`` and labels ``y`` from a NumPy ``.npz`` file.

    Parameters
    ----------
    path : path
        An .npz file (``np.savez``) with an array ``X`` (n, features), or
        (n, rows, cols) images that are flattened, and optionally ``y`` (n,)
        integer labels.
    dtype : {"float32", "float64"}
    keep_bytes : bool, default=False
        Pixel values (integers in 0..255) are returned as uint8 bytes, unscaled.

    Returns
    -------
    X : ndarray (n, features), scaled to [0, 1] (or uint8 bytes)
    y : ndarray (n,) int64, or None when the file has no ``y``
    """
    dtype = _float_dtype(dtype)
    path = os.fspath(path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: a single .npy array, not an .npz archive of X and y")
        with data:
            if "X" not in data.files:
                raise DataError(f"{path}: no array named 'X' (found {sorted(data.files)})")
            X = data["X"]
            y = data["y"] if "y" in data.files else None
    except (FileNotFoundError, DataError):
        raise
    except (ValueError, *DAMAGED_FILE_ERRORS) as exc:
        raise DataError(f"{path}: not a readable .npz file: {exc}") from exc
    if X.ndim == 3:
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{path}: X must be a non-empty 2-D array, got shape {X.shape}")
    if X.dtype.kind not in "uif" and X.dtype != np.bool_:
        raise DataError(f"{path}: X must hold numbers, got dtype {X.dtype}")
    if y is not None:
        if y.shape != (X.shape[0],):
            raise DataError(f"{path}: y has shape {y.shape}, expected ({X.shape[0]},)")
        y = _integer_labels(y, path, "y")
    return _scaled(X, dtype, path, keep_bytes), y


def load_npy_directory(directory, *, task="classification"):
    """X and y of `directory`'s X.npy and y.npy, memory-mapped read-only.

    Nothing is read (or copied) but the files' headers: training then reads
    the rows of each batch from the page cache or the disk, so the data may
    be larger than memory (``fastnn convert`` writes such a directory).

    Parameters
    ----------
    directory : path
        Holds X.npy, (n, features) or (n, rows, cols) images (flattened as a
        view), of uint8 (pixels 0..255, scaled by the model's `input_scale`, 1/255
        in ``fastnn train``)
        or float32/float64 (used as they are); and y.npy, (n,) integer labels,
        or float targets for regression (unlabelled data have no y.npy).
    task : {"classification", "regression"}

    Returns
    -------
    X : numpy.memmap (n, features)
    y : numpy.memmap (n,) or (n, targets), or None without y.npy
    """
    directory = os.fspath(directory)
    arrays = []
    for name in ("X.npy", "y.npy"):
        path = os.path.join(directory, name)
        if name == "y.npy" and not os.path.exists(path):
            arrays.append(None)
            continue
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{directory}: no {name} (a directory of X.npy and y.npy "
                "holds data that are memory-mapped)"
            )
        try:
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        except ValueError as exc:
            raise DataError(f"{path}: not a readable .npy file: {exc}") from exc
    X, y = arrays
    if X.ndim == 3:
        X = X.reshape(X.shape[0], -1)  # a view: C-contiguous images flatten without a copy
    path = os.path.join(directory, "X.npy")
    if X.ndim != 2 or 0 in X.shape:
        raise DataError(f"{path}: X must be a non-empty 2-D array, got shape {X.shape}")
    if X.dtype not in (np.uint8, np.float32, np.float64) or not X.flags.c_contiguous:
        raise DataError(
            f"{path}: X must be C-contiguous uint8, float32 or float64, got "
            f"{X.dtype}{'' if X.flags.c_contiguous else ' in Fortran order'}"
        )
    path = os.path.join(directory, "y.npy")
    if y is None:
        return X, None
    if y.shape[0] != X.shape[0] or y.ndim > (2 if task == "regression" else 1):
        raise DataError(f"{path}: y has shape {y.shape}, expected ({X.shape[0]},)")
    if task == "classification" and y.dtype.kind not in "iu":
        raise DataError(f"{path}: y must hold integer labels, got dtype {y.dtype}")
    return X, y


def csv_header(path):
    """The column names of a CSV file's header line; DataError if it has none."""
    try:
        with _open_text(path) as f:
            line = f.readline()
    except FileNotFoundError:
        raise
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from exc
    except DAMAGED_FILE_ERRORS as exc:
        raise DataError(f"{path}: cannot read as CSV text: {exc}") from exc
    if not line.strip():
        raise DataError(f"{path}: empty file")
    columns = [name.strip().strip('"') for name in line.strip().split(",")]
    if all(_is_number(name) for name in columns):
        raise DataError(
            f"{path}: the first line must be a header naming the columns "
            "(e.g. label,pixel0,...,pixel783), found numbers"
        )
    return columns


def _parse_csv(path, n_columns, dtype):
    """All data rows as uint8 when they are all integers in 0..255, else `dtype`.

    uint8 keeps the parse at a quarter of float32's memory for pixel files;
    anything else (decimals, negatives) is parsed again as floats.
    """
    error = None
    for parse_as in (np.uint8, dtype):
        try:
            with _open_text(path) as f, warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                f.readline()  # the header
                raw = np.loadtxt(f, delimiter=",", dtype=parse_as, ndmin=2)
            break
        except UnicodeDecodeError as exc:  # a ValueError, but no parse can mend it
            raise not_utf8(path, exc) from exc
        except ValueError as exc:
            error = exc
        except DAMAGED_FILE_ERRORS as exc:
            raise DataError(f"{path}: cannot read: {exc}") from exc
    else:
        raise DataError(_locate_csv_error(path, n_columns) or f"{path}: {error}") from error
    if raw.shape[0] == 0:
        raise DataError(f"{path}: no data rows after the header")
    if raw.shape[1] != n_columns:
        raise DataError(
            f"{path}: the header names {n_columns} columns but the rows have {raw.shape[1]}"
        )
    return raw


def _locate_csv_error(path, n_columns):
    """The first bad line of a CSV file, described by line number (1 = header).

    Run only after numpy's fast parser failed, whose messages count rows
    inconsistently.
    """
    with _open_text(path) as f:
        names = [name.strip() for name in f.readline().split(",")]
        return find_bad_csv_line(path, f, 2, names)


def find_bad_csv_line(path, lines, first_lineno, names):
    """ "PATH, line N: what is wrong" for the first of `lines` (numbered from
    `first_lineno`) that has not len(`names`) numeric fields; None if none."""
    for lineno, line in enumerate(lines, start=first_lineno):
        if not line.strip():
            continue  # numpy skips blank lines too
        fields = line.strip().split(",")
        if len(fields) != len(names):
            return f"{path}, line {lineno}: {len(fields)} fields, the header has {len(names)}"
        for name, field in zip(names, fields):
            if not _is_number(field):
                return f"{path}, line {lineno}, column {name}: {field!r} is not a number"
    return None


def not_utf8(path, exc):
    """The DataError for a text file holding bytes that are not UTF-8 (`exc`
    from decoding it): it names the file, the line and the byte."""
    line = _first_line_not_utf8(path)
    where = f"{path}, line {line}" if line else f"{path}"
    byte = exc.object[exc.start : exc.start + 1].hex()
    return DataError(
        f"{where}: not UTF-8 text (byte 0x{byte}); save the file as UTF-8 (in Excel: CSV UTF-8)"
    )


def _first_line_not_utf8(path):
    """The number (1 = header) of the first line of `path` that is not UTF-8, or None."""
    try:
        with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
            for lineno, line in enumerate(f, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return lineno
    except DAMAGED_FILE_ERRORS:
        pass
    return None


def _open_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _integer_labels(values, path, what):
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
            raise DataError(f"{path}: {what} must hold integer labels")
    elif values.dtype.kind not in "iu":
        raise DataError(f"{path}: {what} must hold integer labels, got dtype {values.dtype}")
    return values.astype(np.int64)


def _scaled(raw, dtype, path, keep_bytes=False):
    """`raw` in `dtype`, C-contiguous, scaled to [0, 1] (see the module docstring).

    Converts first and scales in place: one array of the final size, and
    min/max over contiguous memory. With `keep_bytes`, integer pixel values
    (above 1, at most 255) come back as uint8 bytes instead, unscaled.
    """
    if keep_bytes and raw.dtype.kind in "ui" and raw.size:
        low, high = raw.min(), raw.max()
        if 0 <= low and 1 < high <= 255:
            return np.ascontiguousarray(raw, dtype=np.uint8)
    X = np.ascontiguousarray(raw, dtype=dtype)  # no copy when raw already is
    if pixel_range(path, X.min(), X.max()):
        X /= dtype.type(255)  # exact-integer / 255 is correctly rounded in either dtype
    return X


def pixel_range(path, low, high):
    """Whether features from `low` to `high` are pixels to divide by 255 (False: [0, 1],
    kept); DataError for anything else (see the module docstring)."""
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > 255:
        raise DataError(
            f"{path}: feature values must lie in [0, 1] or [0, 255] (pixels), "
            f"found {low} to {high}"
        )
    return bool(high > 1)


def _float_dtype(dtype):
    resolved = np.dtype(dtype)
    if resolved not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


# -- MNIST download ------------------------------------------------------------


def mnist_home(data_home=None):
    """The directory `fetch_mnist` caches MNIST in.

    `data_home`, else the ``FASTNN_DATA`` environment variable, else
    ``$XDG_CACHE_HOME/fastnn`` (``~/.cache/fastnn``); MNIST goes in its
    ``mnist`` subdirectory.
    """
    if data_home is None:
        data_home = os.environ.get("FASTNN_DATA") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fastnn"
        )
    return os.path.join(os.fspath(data_home), "mnist")


def fetch_mnist(
    data_home=None,
    subset="train",
    dtype="float32",
    *,
    mirrors=None,
    timeout=10.0,
    keep_bytes=False,
):
    """MNIST, downloaded once into a cache directory and read from there after.

    Each file is checked against its SHA-256 after download and on every
    later use. Without a network it fails fast, saying which files to place
    where.

    Parameters
    ----------
    data_home : path, optional
        See `mnist_home`.
    subset : {"train", "test"}
        The 60,000 training images or the 10,000 test images.
    dtype : {"float32", "float64"}
    mirrors : sequence of str, optional
        Base URLs tried in order; default `MNIST_MIRRORS`.
    timeout : float, default=10.0
        Seconds to wait on a silent connection.
    keep_bytes : bool, default=False
        Return the pixels as uint8 bytes (47 MB for the 60,000 training
        images instead of 188 MB as float32), unscaled.

    Returns
    -------
    X : ndarray (n, 784), pixels divided by 255 (or uint8)
    y : ndarray (n,) int64
    """
    if subset not in IDX_FILES:
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    directory = mnist_home(data_home)
    os.makedirs(directory, exist_ok=True)
    for name in IDX_FILES[subset]:
        _fetch_file(directory, name + ".gz", mirrors or MNIST_MIRRORS, timeout)
    return load_idx(directory, subset, dtype, keep_bytes=keep_bytes)


def _fetch_file(directory, name, mirrors, timeout):
    path = os.path.join(directory, name)
    expected = MNIST_SHA256[name]
    if os.path.exists(path):
        found = _sha256(path)
        if found != expected:
            raise DataError(
                f"{path}: sha256 is {found}, expected {expected}; the file is damaged "
                "or not the official one: delete it and fetch again"
            )
        return
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        try:
            found = _download(url, path, expected, timeout)
        except (urllib.error.URLError, OSError) as exc:  # offline, refused, timed out
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        if found == expected:
            return
        failures.append(f"{url}: sha256 is {found}, expected {expected}")
    listing = "\n".join(f"  {file}  (sha256 {MNIST_SHA256[file]})" for file in MNIST_SHA256)
    raise DataError(
        f"could not download {name}:\n  " + "\n  ".join(failures) + "\n"
        f"To work offline, download the MNIST files elsewhere and place them in "
        f"{directory}:\n{listing}\n"
        "or pass a directory holding them as --data (fastnn.datasets.load_idx)."
    )


def _download(url, path, expected, timeout):
    """Stream `url` to `path` and return its sha256; keep it only if that is `expected`."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=".fastnn-", suffix=".part", dir=os.path.dirname(path))
    try:
        with (
            os.fdopen(fd, "wb") as out,
            contextlib.closing(urllib.request.urlopen(url, timeout=timeout)) as response,
        ):
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() == expected:
            os.replace(tmp, path)  # atomic: a concurrent or cut download never shows
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest.hexdigest()


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
