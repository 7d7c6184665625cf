"""Training on memory-mapped data: no copy, no scan, and the block shuffle.

`fit` takes np.load(mmap_mode="r") arrays as they are (uint8 or the model's
dtype): the process's anonymous memory does not grow with the data, and the
default epoch order over a memory map is the block shuffle of fastnn.engine.shuffling.
"""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.exceptions import DataConversionWarning

from fastnn import DivergenceError, MLPClassifier
from fastnn.engine import shuffling

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def mapped(tmp_path, name, array):
    np.save(tmp_path / name, array)
    return np.load(tmp_path / name, mmap_mode="r")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (700, 30), dtype=np.uint8), rng.integers(0, 4, 700)


def model(**params):
    # float32 weights and pixels read times 1/255, as fastnn train trains on such files
    params = {"dtype": "float32", "input_scale": 1 / 255, **params}
    return MLPClassifier((16,), batch_size=64, max_iter=3, random_state=0, **params)


@pytest.mark.parametrize("as_float", [False, True], ids=["uint8", "float32"])
def test_a_memory_map_trains_as_the_same_array_in_memory(tmp_path, data, as_float, monkeypatch):
    # blocks of 50 rows, windows of 4 blocks: the two orders differ on 700 rows
    monkeypatch.setattr(shuffling, "BLOCK_BYTES", 50 * 30 * (4 if as_float else 1))
    monkeypatch.setattr(shuffling, "WINDOW_BLOCKS", 4)
    X, y = data
    if as_float:
        X = X.astype(np.float32) / 255
    X_mapped = mapped(tmp_path, "X.npy", X)
    for shuffle in ("rows", "blocks"):
        in_memory = model(shuffle=shuffle).fit(X, y)
        from_disk = model(shuffle=shuffle).fit(X_mapped, y)
        np.testing.assert_array_equal(from_disk._params.data, in_memory._params.data)
    assert not np.array_equal(
        model(shuffle="rows").fit(X, y)._params.data,
        model(shuffle="blocks").fit(X, y)._params.data,
    )
    # shuffle=True picks the block shuffle for a memory map, rows for an array
    np.testing.assert_array_equal(
        model(shuffle=True).fit(X_mapped, y)._params.data,
        model(shuffle="blocks").fit(X, y)._params.data,
    )
    np.testing.assert_array_equal(
        model(shuffle=True).fit(X, y)._params.data, model(shuffle="rows").fit(X, y)._params.data
    )


def test_a_memory_map_is_not_scanned_for_nan(tmp_path, data):
    X, y = data
    X = X.astype(np.float32)
    X[500, 3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model().fit(X, y)  # in memory: scikit-learn's check reads every value
    # memory-mapped, only training reads the rows: the NaN shows as a divergence
    with pytest.raises(DivergenceError):
        model().fit(mapped(tmp_path, "X.npy", X), y)


COPIED = {  # a memory map that fit must copy whole, and why
    "fortran uint8": (lambda X: np.asfortranarray(X), "Fortran order"),
    "float64": (lambda X: X.astype(np.float64), "float64, not uint8 or float32"),
    "fortran float32": (lambda X: np.asfortranarray(X, dtype=np.float32), "Fortran order"),
}


@pytest.mark.parametrize("case", sorted(COPIED))
def test_a_memory_map_that_must_be_copied_says_so_at_the_users_line(
    tmp_path, data, case, monkeypatch
):
    from fastnn.estimators import validation

    monkeypatch.setattr(validation, "MAPPED_COPY_WARNING_BYTES", 0)
    make, why = COPIED[case]
    X = mapped(tmp_path, "X.npy", make(data[0]))

    with pytest.warns(DataConversionWarning, match="copied whole into memory") as caught:
        fitted = model().fit(X, data[1])
    assert why in str(caught[0].message)
    assert caught[0].filename == __file__  # the user's call, not fastnn's insides
    for call in (lambda: fitted.predict(X), lambda: fitted.partial_fit(X, data[1])):
        with pytest.warns(DataConversionWarning, match="copied whole into memory"):
            call()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_with_dtype_none_a_float_memory_map_is_trained_in_its_own_dtype_without_a_copy(
    tmp_path, data, dtype, monkeypatch
):
    from fastnn.estimators import validation

    monkeypatch.setattr(validation, "MAPPED_COPY_WARNING_BYTES", 0)
    X = mapped(tmp_path, "X.npy", data[0].astype(dtype) / 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataConversionWarning)
        fitted = model(dtype=None).fit(X, data[1])
        fitted.predict(X)
    assert fitted.coefs_[0].dtype == dtype


@pytest.mark.parametrize("as_float", [False, True], ids=["uint8", "float32"])
def test_no_warning_for_a_memory_map_used_in_place_or_small(tmp_path, data, as_float, monkeypatch):
    from fastnn.estimators import validation

    X = mapped(tmp_path, "X.npy", data[0].astype(np.float32) if as_float else data[0])
    small = mapped(tmp_path, "X64.npy", data[0].astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataConversionWarning)
        model().fit(small, data[1])  # under the size that warns
        monkeypatch.setattr(validation, "MAPPED_COPY_WARNING_BYTES", 0)
        model().fit(X, data[1]).predict(X)  # read in place: nothing to say
        model().fit(data[0].astype(np.float64), data[1])  # not a map


def test_the_block_shuffle_reads_whole_blocks_within_windows(monkeypatch):
    monkeypatch.setattr(shuffling, "WINDOW_BLOCKS", 4)
    n, row_bytes = 1003, shuffling.BLOCK_BYTES // 10  # blocks of 10 rows, the last of 3
    order = shuffling.epoch_order(np.random.RandomState(0), n, "blocks", row_bytes)
    assert order.dtype == np.intp and np.array_equal(np.sort(order), np.arange(n))
    blocks = order // 10
    # a window ends where every block begun so far has been read whole
    rows_of = np.bincount(blocks)
    seen, unfinished, ends = np.zeros_like(rows_of), 0, [0]
    for position, b in enumerate(blocks):
        unfinished += seen[b] == 0
        seen[b] += 1
        unfinished -= seen[b] == rows_of[b]
        if unfinished == 0:
            ends.append(position + 1)
    per_window = [len(set(blocks[a:b])) for a, b in zip(ends, ends[1:])]
    assert per_window == [4] * 25 + [1]  # 101 blocks, 4 whole ones a window
    # ... in a random order, rows mixed within the window
    assert not np.array_equal(blocks, np.sort(blocks))
    assert not np.array_equal(order[:40], np.sort(order[:40]))
    again = shuffling.epoch_order(np.random.RandomState(0), n, "blocks", row_bytes)
    np.testing.assert_array_equal(order, again)


def test_training_on_a_memory_map_keeps_anonymous_memory_flat(tmp_path):
    # The small version of docs/distributed.md's out-of-core measurement: config b
    # over 200 MB of uint8 rows; the data stay in the page cache (file-backed
    # pages), so RssAnon grows by the epoch's order and labels, not by X.
    rows = 256_000
    X = np.lib.format.open_memmap(tmp_path / "X.npy", "w+", np.uint8, (rows, 784))
    for start in range(0, rows, 32_000):
        X[start : start + 32_000] = np.random.default_rng(start).integers(
            0, 256, (32_000, 784), dtype=np.uint8
        )
    X.flush()
    del X
    np.save(tmp_path / "y.npy", np.random.default_rng(1).integers(0, 10, rows))
    script = textwrap.dedent(f"""
        import threading, time
        import numpy as np
        from fastnn import MLPClassifier

        def anon_mib():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("RssAnon")) / 1024

        def fit(X, y, epochs):
            MLPClassifier((128,), batch_size=128, solver="sgd", max_iter=epochs,
                          random_state=0).fit(X, y)

        rng = np.random.default_rng(0)  # compile first: its memory is not the data's
        fit(rng.integers(0, 256, (512, 784), dtype=np.uint8), np.arange(512) % 10, 1)
        X = np.load({str(tmp_path / "X.npy")!r}, mmap_mode="r")
        y = np.load({str(tmp_path / "y.npy")!r}, mmap_mode="r")
        before, peak, done = anon_mib(), [0.0], threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], anon_mib())
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        fit(X, y, 1)
        done.set()
        watcher.join()
        print(peak[0] - before)
    """)
    # one thread: two OpenBLAS threads crawl when another process holds a core
    one_thread = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=one_thread
    )
    assert done.returncode == 0, done.stderr[-3000:]
    growth_mib = float(done.stdout.split()[-1])
    # X is 191 MiB; the order (intp), the labels and their encodings are about 8 MiB
    assert growth_mib < 48, growth_mib
