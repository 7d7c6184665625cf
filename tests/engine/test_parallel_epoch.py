"""The GEMM path's parallel epoch (`engine/numba_parallel.py`) against the serial one.

The thread count is forced through `threads.gemm_threads` (the cost model picks
it from the batch size otherwise). Each weight's gradient is one thread's sum
over the whole batch, as the serial step's GEMM sums it; but the first layer's
output is the sum of the threads' partial products, the rows of phase 1's GEMMs
are split, and OpenBLAS's kernels for fewer rows may round differently, so
parallel and serial agree to rounding; at a given thread count the weights are
the same bit for bit.
"""

import os
import signal
import threading
import time

import numpy as np
import pytest

from fastnn import MLPClassifier, MLPRegressor
from fastnn.engine import epoch_loop, numba_parallel, threads

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def force(monkeypatch, n_threads):
    monkeypatch.setattr(threads, "gemm_threads", lambda batch, sizes: n_threads)


def data(n, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k))
    y = (X[:, :3].sum(axis=1) * 3).astype(int) % 4
    return X, y


# (estimator, parameters, targets): every activation, head and solver at least once
CASES = {
    "relu-softmax-adam": (MLPClassifier, dict(activation="relu", solver="adam"), "labels"),
    "tanh-logistic-nesterov": (
        MLPClassifier,
        dict(activation="tanh", solver="sgd", momentum=0.9, alpha=1e-2),
        "multilabel",
    ),
    "logistic-identity-sgd": (
        MLPRegressor,
        dict(activation="logistic", solver="sgd", momentum=0.0, alpha=0.0),
        "real",
    ),
    "identity-exp-adam": (
        MLPRegressor,
        dict(activation="identity", solver="adam", loss="poisson", alpha=1e-3),
        "counts",
    ),
}


def targets(kind, X, y):
    if kind == "labels":
        return y
    if kind == "multilabel":
        return np.stack([y % 2, y // 2], axis=1)
    if kind == "real":
        return X[:, :2] @ np.array([1.0, -2.0])
    return np.floor(X[:, 0] * 4)  # counts


def fit(monkeypatch, case, n_threads, dtype, uint8=False, weights=False, zeros=None, **extra):
    estimator, params, kind = CASES[case]
    force(monkeypatch, n_threads)
    X, y = data(203, 11)
    t = targets(kind, X, y)
    if zeros is not None:  # mostly zeros: dense with skip_zeros, or a CSR matrix
        X = np.where(X < 0.6, 0.0, X)
        X[5] = 0  # an all-zero row
    if uint8:
        X = (X * 255).astype(np.uint8)
    if zeros == "csr":
        from scipy import sparse

        X = sparse.csr_matrix(X.astype(dtype))
    elif zeros == "dense":
        extra.setdefault("skip_zeros", True)
    elif zeros is not None:
        extra.setdefault("skip_zeros", False)
    sw = np.random.default_rng(1).random(len(X)) + 0.5 if weights else None
    settings = dict(
        hidden_layer_sizes=(17, 9), batch_size=40, max_iter=1, random_state=0, dtype=dtype
    )
    settings.update(params, **extra)
    model = estimator(**settings)
    model.fit(X, t, sample_weight=sw) if weights else model.fit(X, t)
    return model.coefs_ + model.intercepts_


def assert_close(got, want, dtype):
    # float64 to 1e-12 of the largest weight, float32 to 1e-5
    tol = (1e-12 if dtype == "float64" else 1e-5) * max(np.abs(w).max() for w in want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_parallel_equals_serial(monkeypatch, case, dtype):
    serial = fit(monkeypatch, case, 1, dtype)
    assert_close(fit(monkeypatch, case, 2, dtype), serial, dtype)
    # an odd thread count: 40-row batches of 13, 13 and 14 rows; 17 and 9 units split unevenly
    assert_close(fit(monkeypatch, case, 3, dtype), serial, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_compact_first_layer_on_threads_equals_the_dense_serial_fit(monkeypatch, case, dtype):
    # X's nonzeros, split by the threads' inputs: dense X with skip_zeros and CSR X
    serial = fit(monkeypatch, case, 1, dtype, zeros="none")
    for kind in ("dense", "csr"):
        assert_close(fit(monkeypatch, case, 2, dtype, zeros=kind), serial, dtype)
        # 3 threads: a thread with no inputs of its own (11 over cache lines of 8 or 16)
        assert_close(fit(monkeypatch, case, 3, dtype, zeros=kind), serial, dtype)


def test_compact_first_layer_on_threads_with_uint8_and_row_weights(monkeypatch):
    case = "relu-softmax-adam"
    for uint8, weights in [(True, False), (True, True)]:
        serial = fit(monkeypatch, case, 1, "float32", uint8, weights, zeros="none")
        got = fit(monkeypatch, case, 2, "float32", uint8, weights, zeros="dense")
        assert_close(got, serial, "float32")


def test_compact_first_layer_on_threads_without_hidden_layers(monkeypatch):
    # the first layer is the only one: Adam's step count still advances
    case = "relu-softmax-adam"
    serial = fit(monkeypatch, case, 1, "float64", zeros="none", hidden_layer_sizes=(), max_iter=3)
    got = fit(monkeypatch, case, 2, "float64", zeros="dense", hidden_layer_sizes=(), max_iter=3)
    assert_close(got, serial, "float64")


def test_split_by_columns_keeps_every_entry():
    from scipy import sparse

    from fastnn.engine import compact

    rng = np.random.default_rng(4)
    X = np.where(rng.random((30, 20)) < 0.7, 0, rng.integers(1, 256, (30, 20))).astype(np.uint8)
    X[3] = 0  # an all-zero row
    X[4] = 9  # a row of only nonzeros
    X[:, 7] = 0  # an all-zero column
    parts = compact.compact_dense(X)
    for cuts in ([0, 20], [0, 8, 20], [0, 0, 16, 20], [0, 4, 8, 12, 20]):
        split = compact.split_by_columns(parts, np.array(cuts))
        total = np.zeros(X.shape, np.int64)
        for (lo, hi), (indptr, indices, data) in zip(zip(cuts[:-1], cuts[1:]), split):
            assert indptr.dtype == np.int64 and indices.dtype == parts[1].dtype
            assert ((lo <= indices) & (indices < hi)).all()
            total += sparse.csr_matrix((data, indices, indptr), shape=X.shape).toarray()
        np.testing.assert_array_equal(total, X)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_row_weights_and_uint8_pixels(monkeypatch, dtype):
    case = "relu-softmax-adam"
    for uint8, weights in [(True, False), (False, True), (True, True)]:
        serial = fit(monkeypatch, case, 1, dtype, uint8=uint8, weights=weights)
        got = fit(monkeypatch, case, 3, dtype, uint8=uint8, weights=weights)
        assert_close(got, serial, dtype)


def test_rows_read_in_place(monkeypatch):
    # no shuffling and float X of the weights' dtype: phase 2 reads X's rows in place
    case = "tanh-logistic-nesterov"
    serial = fit(monkeypatch, case, 1, "float64", shuffle=False)
    assert_close(fit(monkeypatch, case, 2, "float64", shuffle=False), serial, "float64")


def test_batches_smaller_than_the_thread_count(monkeypatch):
    # 3-row batches over 4 threads: a thread has no rows; 9 units over 4 threads
    case = "tanh-logistic-nesterov"
    serial = fit(monkeypatch, case, 1, "float64", batch_size=3)
    assert_close(fit(monkeypatch, case, 4, "float64", batch_size=3), serial, "float64")


def test_the_same_thread_count_gives_the_same_weights_bit_for_bit(monkeypatch):
    case = "relu-softmax-adam"
    first = fit(monkeypatch, case, 3, "float32", max_iter=3)
    again = fit(monkeypatch, case, 3, "float32", max_iter=3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_divergence_stops_every_thread_at_the_same_batch(monkeypatch):
    # as tests/reliability/test_divergence.py: a huge learning rate, NaN loss
    force(monkeypatch, 2)
    X, y = data(203, 11)
    model = MLPRegressor(
        (17,), solver="sgd", learning_rate_init=1e6, max_iter=3, batch_size=20, random_state=0
    )
    with pytest.raises(ValueError, match="diverged|finite|NaN"):
        model.fit(X, X[:, 0] * 1e6)


def blas_threads():
    from threadpoolctl import threadpool_info

    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info())


def test_blas_is_single_threaded_while_it_runs_and_restored_after(monkeypatch):
    import scipy.linalg  # noqa: F401  the BLAS that Numba calls
    from threadpoolctl import threadpool_info, threadpool_limits

    seen = []
    together = threads.run_together

    def spy(calls, sync):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return together(calls, sync)

    monkeypatch.setattr(threads, "run_together", spy)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        fit(monkeypatch, "relu-softmax-adam", 2, "float32")
        assert blas_threads() == before
    assert seen and all(s == {1} for s in seen)


def test_what_each_thread_alone_writes_shares_no_page_with_another_thread(monkeypatch):
    # its accumulators, bias row, loss parts, partial product and columns of X:
    # a prefetcher pulls in lines near those a core writes, within a page
    # (params.PAGE), away from the core that writes them
    from fastnn.engine.params import PAGE

    seen = []
    run = epoch_loop.ParallelEpoch.run

    def spy(self, *args):
        seen.append(self)
        return run(self, *args)

    monkeypatch.setattr(epoch_loop.ParallelEpoch, "run", spy)
    fit(monkeypatch, "relu-softmax-adam", 3, "float32", skip_zeros=False)
    epoch, width = seen[0], 17  # the widest layer of (11, 17, 9, 4)

    def pages(a):
        return set(range(a.ctypes.data // PAGE, (a.ctypes.data + a.nbytes - 1) // PAGE + 1))

    owned = []
    for t in range(epoch.threads):
        views = [epoch.acc[t][:width], epoch.db[t][:width], epoch._partials[t][:40]]
        views += [epoch.parts[t][: numba_parallel.PART_WIDTH], epoch._xb[t]]
        owned.append(set().union(*(pages(v) for v in views if v.nbytes)))
    for t in range(epoch.threads):
        for u in range(t):
            assert not owned[t] & owned[u], (t, u)


def test_a_failing_thread_raises_and_hangs_no_other(monkeypatch):
    force(monkeypatch, 2)
    together = threads.run_together

    def one_fails(calls, sync):
        def fail():
            raise RuntimeError("worker failed")

        return together([calls[0], fail], sync)

    monkeypatch.setattr(threads, "run_together", one_fails)
    X, y = data(203, 11)
    with pytest.raises(RuntimeError, match="worker failed"):
        # 40 hidden units: the GEMM path (narrow networks take the single pass)
        MLPClassifier((40,), batch_size=40, max_iter=2, random_state=0).fit(X, y)


def test_a_barrier_gives_up_when_the_abort_flag_is_set():
    import numba

    # the barrier has no Python entry point: called from jitted code
    wait = numba.njit(lambda sync, slot, target: numba_parallel.barrier(sync, slot, target))
    sync = np.zeros(numba_parallel.SYNC_SIZE, np.int64)
    # the last arrival passes at once (and compiles the barrier before the clock
    # starts: a cold compile took 4.6 s on a loaded CI machine)
    sync[numba_parallel.ARRIVED_1] = 9
    assert wait(sync, numba_parallel.ARRIVED_1, 10)
    sync[numba_parallel.ARRIVED_1] = 0
    sync[numba_parallel.ABORT] = 1
    started = time.perf_counter()
    assert not wait(sync, numba_parallel.ARRIVED_1, 10)
    assert time.perf_counter() - started < 1.0


def test_ctrl_c_stops_a_parallel_epoch_within_half_a_second(monkeypatch):
    # as tests/estimators/test_history.py's test for the serial loop
    force(monkeypatch, 2)
    rng = np.random.default_rng(0)
    X = rng.random((300_000, 64), dtype=np.float32)
    y = rng.integers(0, 10, len(X))
    # an epoch of ~1.6 s on 2 threads (AMD EPYC Zen 5), so Ctrl-C comes mid-epoch
    model = MLPClassifier(
        (1024,), max_iter=1, batch_size=32, dtype="float32", random_state=0, tol=0
    )
    model.partial_fit(X[:1000], y[:1000], classes=np.arange(10))
    before = [W.copy() for W in model.coefs_]
    sent = []

    def ctrl_c():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.5, ctrl_c)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.partial_fit(X, y)
        raised = time.perf_counter()
    finally:
        timer.cancel()
    assert sent, "the epoch ended before Ctrl-C was sent: make it longer"
    assert raised - sent[0] < 0.5
    for got, expected in zip(model.coefs_, before):
        np.testing.assert_array_equal(got, expected)


# The kernels of phase 2 against their NumPy references, on awkward shapes and extreme values

SHAPES = [(1, 1, 1), (3, 7, 5), (40, 17, 9), (64, 784, 128), (7, 33, 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_weight_grad_rows_against_numpy(dtype, shape):
    import numba

    n, k, m = shape
    rng = np.random.default_rng(n + k + m)
    a = rng.standard_normal((n, k)).astype(dtype)
    delta = rng.standard_normal((n, m)).astype(dtype)
    a[0, 0] = np.finfo(dtype).max / 4  # extreme values pass through: inf, not a crash
    delta[-1, -1] = np.finfo(dtype).tiny
    jitted = numba.njit(
        lambda a, k0, k1, d, out, t: numba_parallel.weight_grad_rows(a, k0, k1, d, out, t)
    )
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for k0, k1 in [(0, k), (0, k // 2), (k // 2, k), (k - 1, k), (1, 1)]:
        for tile in (0, 1, 3, 32, 1000):  # one call, or tiles of rows (the last narrower)
            got = np.full((k, m), 7, dtype)
            want = np.full((k, m), 7, dtype)
            jitted(a, k0, k1, delta, got, tile)
            numba_parallel.weight_grad_rows(a, k0, k1, delta, want, tile)
            for g, w in zip(got, want):  # row by row: an extreme row sets no other's tolerance
                assert_near(g, w, tol)
            # rows outside [k0, k1) are left alone
            assert (got[:k0] == 7).all() and (got[k1:] == 7).all()


def test_even_tiles_fit_the_small_kernels():
    tile = numba_parallel.even_tile.py_func
    # 32 rows a thread of a 256 x 128 layer: two tiles of 64 columns, 32 x 256 x 64 <= 1e6
    assert tile(128, 32 * 256, 1_000_000, 16) == 64
    assert tile(256, 32 * 128, 1_000_000, 16) == 128
    assert tile(128, 100 * 256, 1_000_000, 16) == 32
    for count, other in [(128, 32 * 256), (256, 32 * 128), (300, 4000), (1000, 999)]:
        t = tile(count, other, 1_000_000, 16)
        tiles = -(-count // t)
        assert t % 16 == 0 and t * other <= 1_000_000 and (tiles - 1) * t < count
    assert tile(128, 32 * 256, 0, 16) == 0  # no small-matrix kernels
    assert tile(128, 16 * 256, 1_000_000, 16) == 0  # within the kernels' limit already
    assert tile(128, 200 * 256, 1_000_000, 16) == 0  # tiles under MIN_TILE
    assert tile(128, 0, 1_000_000, 16) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_grad_columns_sums_as_the_heads_do(dtype):
    import numba

    rng = np.random.default_rng(0)
    delta = (rng.standard_normal((33, 9)) * 10.0 ** rng.integers(-30, 30, (33, 9))).astype(dtype)
    acc = np.zeros(9)
    db = np.zeros(9, dtype)
    columns = numba.njit(
        lambda d, c0, c1, db, acc: numba_parallel.bias_grad_columns(d, c0, c1, db, acc)
    )
    columns(delta, 0, 4, db, acc)
    columns(delta, 4, 9, db, acc)
    # float64 sums in row order, rounded once: as `numba_math`'s heads accumulate them
    want = np.zeros(9)
    for r in range(delta.shape[0]):
        want += delta[r].astype(np.float64)
    np.testing.assert_array_equal(db, want.astype(dtype))


def test_the_parallel_epoch_is_on_by_default_and_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(threads, "threads_available", lambda: 2)
    monkeypatch.delenv(threads.SWITCH, raising=False)
    assert threads.gemm_threads(200, (784, 256, 128, 10)) == 2
    monkeypatch.setenv(threads.SWITCH, "")
    assert threads.gemm_threads(200, (784, 256, 128, 10)) == 2
    monkeypatch.setenv(threads.SWITCH, "0")
    assert threads.gemm_threads(200, (784, 256, 128, 10)) == 1
    monkeypatch.setenv(threads.SWITCH, "yes")
    with pytest.raises(ValueError, match=threads.SWITCH):
        threads.gemm_threads(200, (784, 256, 128, 10))


def test_blas_held_at_one_thread_keeps_the_serial_loop(monkeypatch):
    # the parallel epoch replaces BLAS's threads: a user who limited them to 1
    # (OPENBLAS_NUM_THREADS=1, threadpoolctl, a joblib worker) runs one thread
    import numba
    from threadpoolctl import threadpool_limits

    monkeypatch.delenv(threads.SWITCH, raising=False)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with threadpool_limits(2, user_api="blas"):
        assert threads.threads_available() == 2
        assert threads.gemm_threads(200, (784, 256, 128, 10)) == 2
    with threadpool_limits(1, user_api="blas"):
        assert threads.blas_threads() == 1
        assert threads.gemm_threads(200, (784, 256, 128, 10)) == 1


def test_the_cost_model_keeps_small_steps_serial_and_caps_the_threads(monkeypatch):
    monkeypatch.setenv(threads.SWITCH, "1")
    monkeypatch.setattr(threads, "threads_available", lambda: 64)
    # batch 32 on 64 cores: never 64 threads, nor fewer than 8 rows a thread
    assert 1 < threads.gemm_threads(32, (784, 128, 10)) <= 4
    assert threads.gemm_threads(2, (784, 128, 10)) == 1
    # a tiny network's step is all waiting: serial
    assert threads.gemm_threads(64, (4, 3, 2)) == 1
    monkeypatch.setattr(threads, "threads_available", lambda: 2)
    for sizes in [(784, 128, 10), (784, 256, 128, 10)]:
        for batch in (32, 64, 200):
            assert threads.gemm_threads(batch, sizes) == 2
    # small steps that measured slower on 2 threads (digits' 64-128-10, ...)
    for sizes, batch in [((64, 128, 10), 32), ((64, 128, 10), 200), ((256, 128, 10), 64)]:
        assert threads.step_seconds(batch, sizes, 1) < threads.MIN_PARALLEL_SECONDS
        assert threads.gemm_threads(batch, sizes) == 1
    # ... and ones that measured faster
    for sizes, batch in [((784, 64, 10), 64), ((64, 512, 10), 200), ((128, 256, 256, 10), 64)]:
        assert threads.gemm_threads(batch, sizes) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 784, 128), (40, 17, 9), (200, 256, 128), (3, 7, 5)])
def test_split_weight_gradient_is_the_serial_one(dtype, shape):
    # phase 2 makes the serial step's BLAS call on a block of dW's rows: the same sums,
    # to rounding (bit for bit with OpenBLAS's SkylakeX kernels, not with its Haswell ones)
    import numba

    n, k, m = shape
    rng = np.random.default_rng(k)
    a = rng.standard_normal((n, k)).astype(dtype)
    delta = rng.standard_normal((n, m)).astype(dtype)
    serial = np.zeros((k, m), dtype)
    numba.njit(lambda a, d, out: np.dot(a.T, d, out))(a, delta, serial)
    rows = numba.njit(
        lambda a, k0, k1, d, out, t: numba_parallel.weight_grad_rows(a, k0, k1, d, out, t)
    )
    for parts, tile in [(2, 0), (3, 0), (7, 0), (2, 32), (3, 48)]:
        split = np.zeros((k, m), dtype)
        for p in range(parts):
            rows(a, k * p // parts, k * (p + 1) // parts, delta, split, tile)
        assert_near(split, serial, 1e-6 if dtype == np.float32 else 1e-14)


def assert_near(got, want, tol):
    finite = np.abs(want[np.isfinite(want)])
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_allclose(
            got, want, rtol=tol, atol=tol * (finite.max() if finite.size else 1)
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_dtype", ["same", "uint8"])
def test_fetch_columns_against_numpy(dtype, x_dtype):
    # phase 0 reads a thread's columns of the batch's rows, in epoch order or in place
    import numba

    rng = np.random.default_rng(3)
    if x_dtype == "uint8":
        X, xs = rng.integers(0, 256, (23, 13), dtype=np.uint8), 1 / 255
    else:
        X, xs = rng.standard_normal((23, 13)).astype(dtype), 1.0
        X[0, 0], X[1, 1] = np.finfo(dtype).max, np.finfo(dtype).tiny  # passed as they are
    jitted = numba.njit(
        lambda X, rows, a, b, xs, k0, xb: numba_parallel.fetch_columns(X, rows, a, b, xs, k0, xb)
    )
    for rows in (np.zeros(0, np.int64), rng.permutation(23).astype(np.int64)):
        for start, stop in [(0, 23), (5, 6), (20, 23)]:
            for k0, w in [(0, 13), (0, 8), (8, 5), (12, 1), (4, 0)]:
                got = np.full((7 if stop - start < 7 else 23, w), 7, dtype)
                want = got.copy()
                g = jitted(X, rows, start, stop, xs, k0, got)
                numba_parallel.fetch_columns(X, rows, start, stop, xs, k0, want)
                pick = rows[start:stop] if rows.size else np.arange(start, stop)
                exact = X[pick, k0 : k0 + w].astype(dtype) * dtype(xs)
                np.testing.assert_array_equal(g, exact)
                np.testing.assert_array_equal(got, want)
                assert (got[stop - start :] == 7).all()  # rows past the batch left alone
                # unshuffled rows of X in the weights' dtype: X's own block, no copy
                in_place = x_dtype == "same" and rows.size == 0 and w > 0
                assert np.shares_memory(g, X) == in_place
                if in_place:
                    assert (got == 7).all()
    # columns not contiguous in memory (Fortran order): copied, never read in place
    F = np.asfortranarray(X)
    g = jitted(F, np.zeros(0, np.int64), 2, 9, xs, 3, np.zeros((23, 5), dtype))
    np.testing.assert_array_equal(g, F[2:9, 3:8].astype(dtype) * dtype(xs))
    assert not np.shares_memory(g, F)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 5), (40, 17, 9), (64, 392, 128), (7, 33, 1)])
@pytest.mark.parametrize("x_kind", ["gathered", "block of X"])
def test_first_layer_kernels_against_numpy(dtype, shape, x_kind):
    # phase 0's partial product and phase 2's gradient of a thread's rows of W0,
    # in one call and in tiles (the last one narrower), on extreme values; x
    # gathered (contiguous) or a block of a wider X, read in place
    import numba

    n, kt, m = shape
    k, k0 = kt + 5, 3
    rng = np.random.default_rng(n + kt + m)
    x = rng.standard_normal((n, kt)).astype(dtype)
    if x_kind == "block of X":
        X = rng.standard_normal((n + 3, kt + 9)).astype(dtype)
        X[1 : n + 1, 4 : kt + 4] = x
        x = X[1 : n + 1, 4 : kt + 4]
    W = rng.standard_normal((k, m)).astype(dtype)
    delta = rng.standard_normal((n, m)).astype(dtype)
    product = numba.njit(lambda x, W, k0, o, t: numba_parallel.partial_product(x, W, k0, o, t))
    grad = numba.njit(lambda x, d, k0, dW, t: numba_parallel.input_rows_grad(x, d, k0, dW, t))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for extreme in (False, True):
        if extreme:  # extreme values pass through: inf, not a crash
            x[0, 0] = np.finfo(dtype).max / 4
            delta[-1, -1] = np.finfo(dtype).tiny
        for tile in (0, 1, 3, 32, 1000):
            # row by row: an extreme row sets no other row's tolerance
            got, want = np.full((n, m), 7, dtype), np.full((n, m), 7, dtype)
            product(x, W, k0, got, tile)
            numba_parallel.partial_product(x, W, k0, want, tile)
            for g, w in zip(got, want):
                assert_near(g, w, tol)
            got, want = np.full((k, m), 7, dtype), np.full((k, m), 7, dtype)
            grad(x, delta, k0, got, tile)
            numba_parallel.input_rows_grad(x, delta, k0, want, tile)
            for g, w in zip(got, want):
                assert_near(g, w, tol)
            # the rows of other threads are left alone
            assert (got[:k0] == 7).all() and (got[k0 + kt :] == 7).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 784, 128), (40, 17, 9), (200, 784, 256), (3, 7, 5)])
def test_first_layer_by_inputs_gives_the_serial_products(dtype, shape):
    # phase 2's gradient of a thread's rows of W0 (from its columns of the batch)
    # and phase 0's partial products, summed in thread order, are the serial
    # step's products to rounding, whatever the split and the tiles
    import numba

    n, k, m = shape
    rng = np.random.default_rng(k)
    a = rng.standard_normal((n, k)).astype(dtype)
    W = rng.standard_normal((k, m)).astype(dtype)
    delta = rng.standard_normal((n, m)).astype(dtype)
    z, dW = np.zeros((n, m), dtype), np.zeros((k, m), dtype)
    numba.njit(lambda a, W, z, d, dW: (np.dot(a, W, z), np.dot(a.T, d, dW)))(a, W, z, delta, dW)
    product = numba.njit(lambda x, W, k0, o, t: numba_parallel.partial_product(x, W, k0, o, t))
    grad = numba.njit(lambda x, d, k0, dW, t: numba_parallel.input_rows_grad(x, d, k0, dW, t))
    for parts, tile in [(2, 0), (3, 0), (7, 0), (2, 32), (3, 40)]:
        ks = epoch_loop.first_layer_inputs(k, m, parts, a.itemsize)
        total, split = np.zeros((n, m), dtype), np.full((k, m), 7, dtype)
        for k0, k1 in zip(ks[:-1], ks[1:]):
            if k1 == k0:
                continue
            x = np.ascontiguousarray(a[:, k0:k1])
            partial = np.zeros((n, m), dtype)
            product(x, W, k0, partial, tile)
            total += partial
            grad(x, delta, k0, split, tile)
        assert_near(split, dW, 1e-6 if dtype == np.float32 else 1e-14)
        assert_near(total, z, 1e-5 if dtype == np.float32 else 1e-12)


def test_small_tiles_fit_the_small_kernels():
    tiles = numba_parallel.small_tiles.py_func
    assert tiles(64, 392, 128, 0, 16) == (0, 0)  # no small-matrix kernels: one call each
    tw, tk = tiles(64, 392, 128, 1_000_000, 16)
    assert (tw, tk) == (32, 122)
    assert 64 * 392 * tw <= 1_000_000 and 64 * 128 * tk <= 1_000_000 and tw % 16 == 0
    # tiles narrower than MIN_TILE lose to one call; a layer within one tile needs none
    assert tiles(200, 784, 256, 1_000_000, 16) == (0, 0)
    assert tiles(8, 50, 20, 1_000_000, 8) == (0, 0)
    assert tiles(64, 0, 128, 1_000_000, 16) == (0, 0)


def tiled_fit_equals_serial(monkeypatch, small_mnk, hidden):
    # small-matrix tiles forced at `small_mnk` (this machine's BLAS may have no such kernels)
    monkeypatch.setattr(threads, "small_gemm_mnk", lambda: small_mnk)
    rng = np.random.default_rng(0)
    X = rng.random((203, 100))
    y = (X[:, :3].sum(axis=1) * 3).astype(int) % 4
    settings = dict(hidden_layer_sizes=hidden, batch_size=40, max_iter=2, random_state=0)
    for dtype in ("float64", "float32"):
        force(monkeypatch, 1)
        serial = MLPClassifier(dtype=dtype, **settings).fit(X, y)
        force(monkeypatch, 2)
        tiled = MLPClassifier(dtype=dtype, **settings).fit(X, y)
        assert_close(tiled.coefs_ + tiled.intercepts_, serial.coefs_ + serial.intercepts_, dtype)


def test_tiled_first_layer_equals_serial(monkeypatch):
    # 128 units over tiles of 96 and 32 columns, each thread's ~52 rows of W0 over 39 and 13
    tiled_fit_equals_serial(monkeypatch, 200_000, (128,))


def test_tiled_later_layers_equal_serial(monkeypatch):
    # tiles in phase 1's products and phase 2's gradients: 20 rows a thread,
    # W1 128 x 64: its product in 2 tiles of 32 columns, each thread's dW1 in 2
    # of 32 rows
    assert numba_parallel.even_tile.py_func(64, 20 * 128, 100_000, 8) == 32
    tiled_fit_equals_serial(monkeypatch, 100_000, (128, 64))


@pytest.mark.parametrize("itemsize", [4, 8])
def test_first_layer_inputs_cover_the_layer_on_cache_lines(itemsize):
    for inputs in (1, 7, 11, 64, 784, 1000):
        for width in (1, 5, 9, 16, 17, 128):
            for threads_ in (1, 2, 3, 4, 64):
                ks = epoch_loop.first_layer_inputs(inputs, width, threads_, itemsize)
                assert ks[0] == 0 and ks[-1] == inputs and len(ks) == threads_ + 1
                assert (np.diff(ks) >= 0).all()
                # each thread's rows of W0 start on a cache line
                assert all(c * width * itemsize % 64 == 0 or c == inputs for c in ks[1:-1])
                if inputs >= 8 * 16 * threads_:  # many inputs split about evenly
                    assert np.diff(ks).max() - np.diff(ks).min() <= 2 * 16


@pytest.mark.parametrize("itemsize", [4, 8])
def test_first_layer_inputs_split_the_work_evenly(itemsize):
    # with a cost per input, each thread gets an equal share of the work, to
    # within the inputs that the rounding to cache lines moves; even costs
    # give the even split, and work piled on the last inputs moves the cuts there
    rng = np.random.default_rng(5)
    for inputs, width, threads_ in [(784, 128, 2), (784, 256, 3), (1000, 17, 4), (50, 5, 2)]:
        step = 64 // np.gcd(64, width * itemsize)
        for work in (rng.integers(0, 100, inputs) + 1.0, np.linspace(1, 30, inputs) ** 2):
            ks = epoch_loop.first_layer_inputs(inputs, width, threads_, itemsize, work)
            assert ks[0] == 0 and ks[-1] == inputs and (np.diff(ks) >= 0).all()
            assert all(c * width * itemsize % 64 == 0 or c == inputs for c in ks[1:-1])
            shares = [work[a:b].sum() for a, b in zip(ks[:-1], ks[1:])]
            slack = (step / 2 + 1) * work.max()  # half a rounding step and the input cut
            assert max(shares) - min(shares) <= 2 * slack
        even = epoch_loop.first_layer_inputs(inputs, width, threads_, itemsize)
        same = epoch_loop.first_layer_inputs(inputs, width, threads_, itemsize, np.ones(inputs))
        np.testing.assert_array_equal(same, even)
    late = np.r_[np.ones(500), 100 * np.ones(284)]
    assert epoch_loop.first_layer_inputs(784, 128, 2, 4, late)[1] > 600


def test_compact_input_work_counts_each_inputs_nonzeros():
    indices = np.array([0, 3, 3, 1, 3, 0], np.uint16)
    work = epoch_loop.compact_input_work(indices, 5, n_batches=2)
    np.testing.assert_allclose(work, np.array([2, 1, 0, 3, 0]) + 2 * epoch_loop.UPDATE_NONZEROS)


def test_threads_split_the_compact_first_layer_by_its_nonzeros(monkeypatch):
    # nonzeros piled in the last inputs: the threads' cuts follow them, and
    # the fit still equals the dense serial fit
    import fastnn.engine.compact as compact_module

    rng = np.random.default_rng(3)
    X = np.zeros((300, 64), np.float32)
    X[:, 40:] = rng.random((300, 24)) * (rng.random((300, 24)) < 0.5)
    X[:, :40] = rng.random((300, 40)) * (rng.random((300, 40)) < 0.03)
    y = rng.integers(0, 3, 300)
    cuts = []
    split = compact_module.split_by_columns

    def spy(parts, ks):
        cuts.append(list(ks))
        return split(parts, ks)

    monkeypatch.setattr(compact_module, "split_by_columns", spy)
    settings = dict(hidden_layer_sizes=(40,), batch_size=64, max_iter=3, random_state=0)
    force(monkeypatch, 2)
    threaded = MLPClassifier(dtype=np.float64, skip_zeros=True, **settings).fit(X, y)
    assert cuts and all(ks[1] > 40 for ks in cuts)
    force(monkeypatch, 1)
    serial = MLPClassifier(dtype=np.float64, skip_zeros=False, **settings).fit(X, y)
    assert_close(
        threaded.coefs_ + threaded.intercepts_, serial.coefs_ + serial.intercepts_, np.float64
    )


def test_flat_buffers_start_on_a_cache_line():
    from fastnn.engine.optim import AdamOptimizer, SGDOptimizer
    from fastnn.engine.params import CACHE_LINE, FlatParameters, aligned_zeros

    for dtype in (np.float32, np.float64):
        for size in (1, 7, 100_480):
            a = aligned_zeros(size, dtype)
            assert a.ctypes.data % CACHE_LINE == 0 and a.shape == (size,) and not a.any()
        assert aligned_zeros((3, 5), dtype).shape == (3, 5)
        flat = FlatParameters((784, 128, 10), dtype)
        adam = AdamOptimizer(flat.size, dtype)
        sgd = SGDOptimizer(flat.size, dtype, momentum=0.9)
        for buffer in (flat.data, adam.ms, adam.vs, sgd.velocity):
            assert buffer.ctypes.data % CACHE_LINE == 0
