"""Skipping zeros: the first layer on X's nonzeros (`fastnn.engine.compact`) trains as the
dense path does, for every activation, head and solver.

The compact form changes only the order of the first layer's sums, so the
weights agree with the dense path's to rounding: float64 within 1e-12 and
float32 within 1e-5 of the largest weight.
"""

import numpy as np
import pytest
from scipy import sparse

from fastnn import MLPClassifier, MLPRegressor
from fastnn.contract.tables import ACTIVATIONS, COMPACT_INPUT, DENSE_INPUT
from fastnn.engine import compact, numba_epoch, step

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TOLERANCE = {"float64": 1e-12, "float32": 1e-5}
SOLVERS = {
    "adam-l2": dict(solver="adam", alpha=1e-2),
    "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, alpha=1e-3),
    "momentum": dict(solver="sgd", momentum=0.5, nesterovs_momentum=False, alpha=0.0),
    "sgd-plain": dict(solver="sgd", momentum=0.0, alpha=0.0, learning_rate_init=0.05),
}
# head: (estimator, extra parameters, targets from the data)
HEADS = {
    "softmax": (MLPClassifier, {}, lambda s: s.astype(int) % 3),
    "logistic": (MLPClassifier, {}, lambda s: s.astype(int) % 2),
    "identity": (MLPRegressor, {}, lambda s: s),
    "exp": (MLPRegressor, {"loss": "poisson"}, lambda s: np.abs(s) / 4),
}


def sparse_data(n=160, k=50, density=0.06, seed=0, uint8=False):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) * (rng.random((n, k)) < density)
    X[3] = 0  # an all-zero row
    X[:-1, 7] = 0  # a column of zeros but in the last row
    X[-1] = rng.random(k) + 0.1  # a row of only nonzeros
    if uint8:
        X = (X * 255).astype(np.uint8)
    return X, X[:, :6].sum(axis=1) * (3 / (255 if uint8 else 1))


def fit(X, y, skip_zeros, estimator=MLPClassifier, sample_weight=None, **params):
    model = estimator(
        **{
            "hidden_layer_sizes": (9, 5),
            "batch_size": 32,
            "max_iter": 4,
            "random_state": 0,
            "tol": 0.0,
            "n_iter_no_change": 100,
            **params,
        },
        skip_zeros=skip_zeros,
    )
    return model.fit(X, y, sample_weight=sample_weight)


def assert_close(a, b, dtype):
    params_a, params_b = a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_
    largest = max(np.abs(w).max() for w in params_b)
    for got, want in zip(params_a, params_b):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE[dtype] * largest)


@pytest.fixture
def sources(monkeypatch):
    """The input kinds of the compiled loops the fits run."""
    seen = []
    real = numba_epoch.gemm_epoch

    def spy(act, head, solver, src, dropout):
        seen.append(src)
        return real(act, head, solver, src, dropout)

    monkeypatch.setattr(numba_epoch, "gemm_epoch", spy)
    return seen


@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_compact_fits_equal_dense_fits(activation, head, solver, sources):
    estimator, extra, targets = HEADS[head]
    X, s = sparse_data()
    y = targets(s)
    if head == "logistic":  # multilabel: one logistic output per label
        y = np.stack([y, 1 - y, (s > 1).astype(int)], axis=1)
    params = dict(activation=activation, dtype="float64", **SOLVERS[solver], **extra)
    dense = fit(X, y, False, estimator, **params)
    assert set(sources) == {DENSE_INPUT}
    sources.clear()
    skipped = fit(X, y, True, estimator, **params)
    assert set(sources) == {COMPACT_INPUT}
    assert_close(skipped, dense, "float64")
    np.testing.assert_allclose(skipped.loss_curve_, dense.loss_curve_, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("uint8", [False, True], ids=["float", "uint8"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_uint8_weights_shuffling_and_both_dtypes(dtype, uint8, shuffle, weighted, sources):
    X, s = sparse_data(uint8=uint8)
    y = s.astype(int) % 3
    sw = np.random.default_rng(1).random(X.shape[0]) if weighted else None
    params = dict(dtype=dtype, shuffle=shuffle, input_scale=1 / 255 if uint8 else 1.0)
    dense = fit(X, y, False, sample_weight=sw, **params)
    skipped = fit(X, y, True, sample_weight=sw, **params)
    assert COMPACT_INPUT in sources
    assert_close(skipped, dense, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layout", [sparse.csr_matrix, sparse.csc_matrix])
def test_sparse_x_runs_the_compiled_loop(dtype, layout, sources):
    X, s = sparse_data()
    y = s.astype(int) % 3
    X = X.astype(dtype)
    dense = fit(X, y, False, dtype=dtype, activation="tanh")
    skipped = fit(layout(X), y, "auto", dtype=dtype, activation="tanh")
    assert sources[-1] == COMPACT_INPUT
    assert_close(skipped, dense, dtype)
    np.testing.assert_allclose(
        skipped.predict_proba(layout(X)), dense.predict_proba(X), atol=TOLERANCE[dtype]
    )


def test_a_network_without_hidden_layers(sources):
    X, s = sparse_data()
    y = s.astype(int) % 3
    dense = fit(X, y, False, hidden_layer_sizes=(), dtype="float64")
    skipped = fit(X, y, True, hidden_layer_sizes=(), dtype="float64")
    assert sources[-1] == COMPACT_INPUT
    assert_close(skipped, dense, "float64")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_the_compact_form_of_edge_cases(dtype):
    X, _ = sparse_data(uint8=dtype == np.uint8)
    X = X.astype(dtype)
    assert np.all(X[-1] != 0)
    indptr, indices, data = compact.compact_dense(X)
    want = sparse.csr_matrix(X)
    assert indptr.dtype == np.int64 and indices.dtype == np.uint16 and data.dtype == dtype
    np.testing.assert_array_equal(indptr, want.indptr)
    np.testing.assert_array_equal(indices, want.indices)
    np.testing.assert_array_equal(data, want.data)
    assert indptr[4] == indptr[3]  # the all-zero row
    assert indptr[-1] - indptr[-2] == X.shape[1]  # the full row
    assert 7 not in indices[: indptr[-2]]  # the column of zeros


def test_wide_x_takes_int32_columns():
    X = np.zeros((3, 70_000), np.float32)
    X[1, 69_999] = 2.0
    X[2, 0] = 1.0
    indptr, indices, data = compact.compact_dense(X)
    assert indices.dtype == np.int32
    np.testing.assert_array_equal(indptr, [0, 0, 1, 2])
    np.testing.assert_array_equal(indices, [69_999, 0])
    np.testing.assert_array_equal(data, [2.0, 1.0])


def test_auto_picks_dense_on_dense_data_and_compact_on_sparse_data():
    rng = np.random.default_rng(0)
    dense = rng.random((200, 30))
    assert compact.use_compact("auto", dense, memory_mapped=False) is None
    assert compact.use_compact(True, dense, memory_mapped=False) is not None
    X, _ = sparse_data()
    assert compact.use_compact("auto", X, memory_mapped=False) is not None
    assert compact.use_compact(False, X, memory_mapped=False) is None
    # a memory-mapped X keeps the dense path: it may be larger than memory
    assert compact.use_compact(True, X, memory_mapped=True) is None


def test_auto_on_the_gemm_path_switches_at_its_crossover():
    rng = np.random.default_rng(1)

    def picked(density):
        X = ((rng.random((300, 784)) < density) * rng.integers(1, 256, (300, 784))).astype(
            np.uint8
        )
        return compact.use_compact("auto", X, memory_mapped=False) is not None

    assert picked(compact.CROSSOVER * 0.8)
    assert not picked(compact.CROSSOVER * 1.2)


def test_auto_uses_the_one_blas_thread_crossover_on_threads_and_on_one_thread(monkeypatch):
    # a fit's choice (MLPClassifier._compact_X): 784-128-10, GEMM path
    from threadpoolctl import threadpool_limits

    from fastnn.engine import threads

    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    middle = (compact.CROSSOVER + compact.ONE_BLAS_THREAD_CROSSOVER) / 2
    X = ((rng.random((300, 784)) < middle) * rng.integers(1, 256, (300, 784))).astype(np.uint8)
    model = MLPClassifier((128,), max_iter=1, batch_size=64, random_state=0).fit(X[:50], y[:50])
    with threadpool_limits(2, user_api="blas"):
        for n_threads, picked in [(1, False), (2, True)]:
            monkeypatch.setattr(threads, "gemm_threads", lambda batch, sizes, n=n_threads: n)
            assert (model._compact_X(X, True, None, 64) is not None) is picked
    # the serial loop with BLAS at one thread: that crossover too
    monkeypatch.setattr(threads, "gemm_threads", lambda batch, sizes: 1)
    with threadpool_limits(1, user_api="blas"):
        assert model._compact_X(X, True, None, 64) is not None
    # dense data stays dense on threads too
    assert model._compact_X(rng.random((300, 784)), True, None, 64) is None


@pytest.mark.parametrize("bad", ["yes", None, 1, "Auto"])
def test_skip_zeros_is_validated(bad):
    X, s = sparse_data()
    with pytest.raises(ValueError, match="skip_zeros must be 'auto', True or False"):
        MLPClassifier(skip_zeros=bad).fit(X, s.astype(int) % 3)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_x_is_refused_as_before(value):
    X, s = sparse_data()
    X[2, 4] = value
    with pytest.raises(ValueError, match="NaN|infinity"):
        MLPClassifier(skip_zeros=True).fit(X, s.astype(int) % 3)


@pytest.mark.parametrize("layout", [np.asarray, sparse.csr_matrix])
def test_input_scale_does_not_apply_to_float_x(layout, sources):
    # the compact kernels scale every value by xs: the loop passes 1 for float values
    X, s = sparse_data()
    y = s.astype(int) % 3
    dense = fit(X, y, False, dtype="float64", input_scale=0.5)
    skipped = fit(layout(X), y, True, dtype="float64", input_scale=0.5)
    assert sources[-1] == COMPACT_INPUT
    assert_close(skipped, dense, "float64")


LOGIT_TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.fixture
def compact_chunks(monkeypatch):
    """The number of rows each prediction read through the compact form."""
    seen = []
    real = step.ForwardPass.forward_compact

    def spy(self, parts, input_scale=1.0):
        seen.append(parts[0].shape[0] - 1)
        return real(self, parts, input_scale)

    monkeypatch.setattr(step.ForwardPass, "forward_compact", spy)
    return seen


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("uint8", [False, True], ids=["float", "uint8"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("widths", [(9, 5), (10,), ()], ids=["deep", "narrow", "linear"])
def test_compact_predictions_equal_dense_ones(dtype, uint8, activation, widths, compact_chunks):
    X, s = sparse_data(n=300, density=0.01, uint8=uint8)
    X[150:200] = 7  # a dense stretch: its chunk stays on the dense path under "auto"
    rng = np.random.default_rng(2)
    sizes = [X.shape[1], *widths, 4]
    coefs = [rng.standard_normal((a, b)).astype(dtype) for a, b in zip(sizes, sizes[1:])]
    intercepts = [rng.standard_normal(b).astype(dtype) for b in sizes[1:]]
    X = X if uint8 else X.astype(dtype)
    args = ("numba", coefs, intercepts, X, activation, 1 / 255 if uint8 else 1.0)
    dense = step.predict_logits(*args, chunk=50, skip_zeros=False)
    assert compact_chunks == []
    skipped = step.predict_logits(*args, chunk=50, skip_zeros="auto")
    sparse_chunks = [
        i
        for i in range(0, 300, 50)
        if np.count_nonzero(X[i : i + 50]) <= compact.PREDICT_CROSSOVER * X[i : i + 50].size
    ]
    assert 150 not in sparse_chunks and len(sparse_chunks) >= 3
    narrow = activation == "relu" and len(widths) == 1  # the single pass's networks
    assert compact_chunks == ([] if narrow else [50] * len(sparse_chunks))
    largest = np.abs(dense).max()
    np.testing.assert_allclose(skipped, dense, rtol=0, atol=LOGIT_TOLERANCE[dtype] * largest)
    compact_chunks.clear()
    np.testing.assert_allclose(
        step.predict_logits(*args, chunk=128, skip_zeros=True),
        dense,
        rtol=0,
        atol=LOGIT_TOLERANCE[dtype] * largest,
    )
    assert compact_chunks == [128, 128, 44]


def test_estimators_predict_through_the_compact_form(compact_chunks):
    X, s = sparse_data(n=300, density=0.01)
    X[-1] = 0  # under the predictions' crossover density
    y = s.astype(int) % 3
    model = fit(X, y, True, dtype="float64")
    proba = model.predict_proba(X)
    assert compact_chunks == [300]
    model.set_params(skip_zeros=False)
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-12)
    assert compact_chunks == [300]
    np.testing.assert_array_equal(model.predict(X), model.set_params(skip_zeros="auto").predict(X))
    assert compact_chunks == [300, 300]


# -- the single pass (one hidden ReLU layer <= 32 wide, softmax head) on the compact form


def narrow_data(n, k=40, density=0.15, seed=0, uint8=False, dtype="float64"):
    """X with an all-zero row, an all-zero column, a row of only nonzeros; labels of 4 classes."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) * (rng.random((n, k)) < density)
    X[min(2, n - 1)] = 0
    X[:, 5] = 0
    X[-1] = rng.random(k) + 0.1
    X[-1, 5] = 0  # the zero column stays zero
    y = rng.integers(0, 4, n).astype(np.intp)
    if uint8:
        return (X * 255).astype(np.uint8), y
    return X.astype(dtype), y


def narrow_step(k, nh, dtype, threads=1, seed=1):
    from fastnn.engine.numba_step import NarrowStep

    rng = np.random.default_rng(seed)
    coefs = [rng.uniform(-1, 1, (k, nh)).astype(dtype), rng.uniform(-1, 1, (nh, 4)).astype(dtype)]
    intercepts = [rng.uniform(-0.1, 0.1, nh).astype(dtype), np.zeros(4, dtype)]
    grads = [np.empty_like(w) for w in coefs]
    igrads = [np.empty_like(b) for b in intercepts]
    return NarrowStep(coefs, intercepts, grads, igrads, threads=threads)


def step_close(got, want, dtype):
    (loss_a, correct_a), grads_a = got
    (loss_b, correct_b), grads_b = want
    tol = TOLERANCE[np.dtype(dtype).name]
    assert correct_a == correct_b
    assert loss_a == pytest.approx(loss_b, rel=tol)
    largest = max(np.abs(g).max() for g in grads_b)
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * largest)


def run_dense(step, X, y, rows, xs):
    x = X if rows.shape[0] == 0 else X[rows]
    yy = y if rows.shape[0] == 0 else y[rows]
    out = step(x, yy, 1 / x.shape[0], xs)
    return out, [g.copy() for g in step.coef_grads + step.intercept_grads]


def run_compact(step, X, y, rows, xs):
    n = X.shape[0] if rows.shape[0] == 0 else rows.shape[0]
    yy = y if rows.shape[0] == 0 else y[rows]
    out = step.compact(compact.compact_dense(X), rows, 0, n, yy, 1 / n, xs)
    return out, [g.copy() for g in step.coef_grads + step.intercept_grads]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("uint8", [False, True], ids=["float", "uint8"])
@pytest.mark.parametrize("n", [1, 3, 6, 37])
@pytest.mark.parametrize("nh", [1, 8, 10, 17, 32])
def test_compact_single_pass_equals_the_dense_one(dtype, uint8, n, nh):
    # rows fewer than 4 and not a multiple of 4; widths under, at and past a block of 8
    X, y = narrow_data(n, uint8=uint8, dtype=dtype)
    xs = 1 / 255 if uint8 else 1.0
    rows = np.empty(0, np.intp)
    dense = run_dense(narrow_step(X.shape[1], nh, dtype), X, y, rows, xs)
    skipped = run_compact(narrow_step(X.shape[1], nh, dtype), X, y, rows, xs)
    step_close(skipped, dense, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compact_single_pass_against_the_numpy_reference(dtype):
    from fastnn.engine.step import TrainStep

    X, y = narrow_data(41, uint8=True)
    step = narrow_step(X.shape[1], 10, dtype)
    got = run_compact(step, X, y, np.empty(0, np.intp), 1 / 255)
    ref = TrainStep(
        "numpy",
        [w.copy() for w in step.coefs],
        [b.copy() for b in step.intercepts],
        X.shape[0],
    )
    loss = ref.batch_grads(X, y, input_scale=1 / 255)
    step_close(got, (loss, [g.copy() for g in ref.grads]), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("threads", [1, 2])
def test_compact_single_pass_through_a_row_order_and_in_chunks(dtype, threads):
    from fastnn.engine.numba_step import MIN_ROWS_PER_THREAD

    n = 2 * MIN_ROWS_PER_THREAD + 3
    X, y = narrow_data(n, uint8=True)
    rows = np.random.default_rng(5).permutation(n).astype(np.intp)
    step = narrow_step(X.shape[1], 10, dtype, threads=threads)
    assert step.chunks(n) == threads
    dense = run_dense(narrow_step(X.shape[1], 10, dtype, threads=threads), X, y, rows, 1 / 255)
    skipped = run_compact(step, X, y, rows, 1 / 255)
    step_close(skipped, dense, dtype)
    # a rerun gives the same bits
    again = run_compact(step, X, y, rows, 1 / 255)
    assert again[0] == skipped[0]
    for a, b in zip(again[1], skipped[1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("uint8", [False, True], ids=["float", "uint8"])
@pytest.mark.parametrize("nh", [1, 10, 32])
def test_compact_single_pass_gradient_by_column(dtype, uint8, nh, monkeypatch):
    # rows in order, in two chunks of 1,025 and 1,026 rows: blocks of BLOCK_ROWS
    # rows, the last of a chunk with 1 or 2 rows (a group of 4 cut short)
    from fastnn.engine import numba_step

    monkeypatch.setattr(numba_step, "BY_COLUMN_MIN", 0)
    n = 2 * 4 * numba_step.BLOCK_ROWS + 3
    X, y = narrow_data(n, uint8=uint8, dtype=dtype)
    xs = 1 / 255 if uint8 else 1.0
    rows = np.empty(0, np.intp)
    step = narrow_step(X.shape[1], nh, dtype, threads=2)
    assert step.chunks(n) == 2
    dense = run_dense(narrow_step(X.shape[1], nh, dtype, threads=2), X, y, rows, xs)
    by_column = run_compact(step, X, y, rows, xs)
    assert len(step._column_cache) == 1  # the path taken
    step_close(by_column, dense, dtype)
    again = run_compact(step, X, y, rows, xs)
    assert again[0] == by_column[0]
    for a, b in zip(again[1], by_column[1]):
        np.testing.assert_array_equal(a, b)
    step.by_column = False
    step_close(run_compact(step, X, y, rows, xs), by_column, dtype)


def test_gradient_by_column_only_where_it_pays():
    from fastnn.engine.numba_step import BLOCK_ROWS, BY_COLUMN_MIN

    n = 8 * BLOCK_ROWS
    for times, taken in ((0.5, 0), (2, 1)):  # nonzeros per column and block vs BY_COLUMN_MIN
        density = times * BY_COLUMN_MIN / BLOCK_ROWS
        X, y = narrow_data(n, density=density)
        step = narrow_step(X.shape[1], 10, "float64", threads=2)
        run_compact(step, X, y, np.empty(0, np.intp), 1.0)
        assert len(step._column_cache) == taken
        # shuffled rows: by row
        step = narrow_step(X.shape[1], 10, "float64", threads=2)
        run_compact(step, X, y, np.arange(n)[::-1].copy(), 1.0)
        assert len(step._column_cache) == 0


@pytest.mark.parametrize("dtype", ["float64", "uint8"])
def test_column_blocks_hold_each_row_nonzero_once_in_row_order(dtype):
    from fastnn.engine.numba_step import BLOCK_ROWS, column_blocks

    X, _ = narrow_data(3 * BLOCK_ROWS, uint8=dtype == "uint8")
    indptr, indices, data = compact.compact_dense(X)[:3]
    offset, start, stop = 3, 5, 2 * BLOCK_ROWS + 50  # X's rows 8 .. 2 BLOCK_ROWS + 52
    ptr, rows, values = column_blocks(indptr, indices, data, offset, start, stop, X.shape[1])
    assert ptr.shape == (3, X.shape[1] + 1)
    assert values.dtype == X.dtype and rows.dtype == np.uint16
    rebuilt = np.zeros((stop - start, X.shape[1]), X.dtype)
    for b in range(ptr.shape[0]):
        for q in range(X.shape[1]):
            block_rows = rows[ptr[b, q] : ptr[b, q + 1]]
            assert np.all(np.diff(block_rows.astype(int)) > 0)  # each once, in order
            rebuilt[b * BLOCK_ROWS + block_rows, q] = values[ptr[b, q] : ptr[b, q + 1]]
    np.testing.assert_array_equal(rebuilt, X[offset + start : offset + stop])
    assert ptr[-1, -1] == rows.shape[0] == np.count_nonzero(X[offset + start : offset + stop])


@pytest.fixture
def narrow_sources(monkeypatch):
    """The input kinds of the compiled single-pass loops the fits run."""
    seen = []
    real = numba_epoch.narrow_epoch

    def spy(solver, src=DENSE_INPUT):
        seen.append(src)
        return real(solver, src)

    monkeypatch.setattr(numba_epoch, "narrow_epoch", spy)
    return seen


def narrow_fit(X, y, skip_zeros, **params):
    model = MLPClassifier(
        **{
            "hidden_layer_sizes": (10,),
            "batch_size": 16,
            "max_iter": 3,
            "random_state": 0,
            "tol": 0.0,
            "n_iter_no_change": 100,
            **params,
        },
        skip_zeros=skip_zeros,
    )
    return model.fit(X, y)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("uint8", [False, True], ids=["float", "uint8"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("solver", ["sgd-plain", "adam-l2"])
def test_compact_single_pass_fits_equal_dense_fits(dtype, uint8, shuffle, solver, narrow_sources):
    X, y = narrow_data(150, uint8=uint8, dtype=dtype)
    params = dict(dtype=dtype, shuffle=shuffle, input_scale=1 / 255 if uint8 else 1.0)
    params.update(SOLVERS[solver])
    dense = narrow_fit(X, y, False, **params)
    assert set(narrow_sources) == {DENSE_INPUT}
    narrow_sources.clear()
    skipped = narrow_fit(X, y, True, **params)
    assert set(narrow_sources) == {COMPACT_INPUT}
    assert_close(skipped, dense, dtype)
    rerun = narrow_fit(X, y, True, **params)
    for a, b in zip(rerun.coefs_ + rerun.intercepts_, skipped.coefs_ + skipped.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_threaded_full_batch_fit_on_the_compact_form(dtype, shuffle, monkeypatch):
    # a full batch split over 2 threads runs the Python loop over batches; rows
    # in order take the weight gradient by column, built once
    from fastnn.engine import numba_step

    monkeypatch.setattr(numba_step, "n_threads", lambda: 2)
    built = []
    real_blocks = numba_step.column_blocks

    def blocks_spy(*args):
        built.append(args[4:6])
        return real_blocks(*args)

    monkeypatch.setattr(numba_step, "column_blocks", blocks_spy)
    n = 2 * numba_step.MIN_ROWS_PER_THREAD + 5
    X, y = narrow_data(n, uint8=True)
    calls = []
    real = numba_step.NarrowStep.compact

    def spy(self, *args, **kwargs):
        calls.append(self.chunks(args[3]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(numba_step.NarrowStep, "compact", spy)
    params = dict(dtype=dtype, batch_size=n, shuffle=shuffle, input_scale=1 / 255, max_iter=3)
    dense = narrow_fit(X, y, False, **params)
    assert calls == []
    skipped = narrow_fit(X, y, True, **params)
    assert len(calls) == 3 and all(c > 1 for c in calls)
    assert len(built) == (0 if shuffle else calls[0])  # each chunk's, once
    assert_close(skipped, dense, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_auto_on_the_single_pass_follows_its_own_crossover(dtype, narrow_sources):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    crossover = compact.NARROW_CROSSOVER

    def picked(density):
        narrow_sources.clear()
        X = rng.random((400, 50)) * (rng.random((400, 50)) < density)
        narrow_fit(X.astype(dtype), y, "auto", dtype=dtype, max_iter=1)
        assert len(set(narrow_sources)) == 1
        return narrow_sources[0]

    assert picked(crossover * 0.7) == COMPACT_INPUT
    assert picked(crossover * 1.3) == DENSE_INPUT
    assert picked(1.0) == DENSE_INPUT  # dense data
