"""The compact first layer: X's nonzeros by row, read through a row selection.

`compact_linear_forward` / `compact_linear_backward` of both backends against
the dense products of the same rows, in float32 and float64, for uint8 values
times an input scale and float values, uint16, int32 and int64 columns, the
shapes of the other kernel tests at several densities (all-zero rows, rows of
only nonzeros, no entries at all), permuted and repeated row selections, wide
X (int32 columns), extreme values, and the training step's touched-rows form
of the weight gradient. The compiled training step's first layer runs these
kernels (`fastnn.engine.numba_step.compact_forward`).
"""

import numpy as np
import pytest

from fastnn import kernels, reference
from fastnn.contract.register_blocks import block_width
from fastnn.engine import compact
from tests.helpers import SHAPES, close

VALUES = ["float", "uint8"]
INDICES = [np.uint16, np.int32, np.int64]


def compact_x(rng, n, k, density, dtype, values, index_dtype=np.uint16):
    """(indptr, indices, data, dense float64 X as the kernels read it, xs)."""
    mask = rng.random((n, k)) < density
    if values == "uint8":
        X = (rng.integers(1, 256, (n, k)) * mask).astype(np.uint8)
        xs = 1 / 255
    else:
        X = (rng.standard_normal((n, k)) * mask).astype(dtype)
        xs = 1.0
    if n > 2:
        X[1] = 0  # an all-zero row
        X[2] = 1 if values == "uint8" else rng.standard_normal(k) + 5  # only nonzeros
    indptr, indices, data = compact.compact_dense(X)
    # what a value is read as: dtype(value) * dtype(xs)
    read = (X.astype(dtype) * dtype(xs)).astype(np.float64)
    return indptr, indices.astype(index_dtype), data, read, xs


def selection(rng, n):
    """A permuted selection of the rows, with a repeat when there is room."""
    rows = rng.permutation(n)
    if n > 3:
        rows = np.concatenate([rows, rows[:2]])
    return rows.astype(np.int64)


def magnitude(a, b):
    return (np.abs(a) @ np.abs(b.astype(np.float64))).max() + 1.0


@pytest.mark.parametrize("index_dtype", INDICES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("density", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("n,k,m", SHAPES)
def test_forward_and_weight_gradient_equal_the_dense_products(
    backend, dtype, rng, n, k, m, density, values, index_dtype
):
    indptr, indices, data, read, xs = compact_x(rng, n, k, density, dtype, values, index_dtype)
    rows = selection(rng, n)
    x = read[rows]
    W = rng.standard_normal((k, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    out = backend.compact_linear_forward(indptr, indices, data, W, b, rows=rows, xs=xs)
    assert out.dtype == dtype and out.shape == (rows.shape[0], m)
    close(out, x @ W + b, dtype, magnitude(x, W), terms=k)
    dout = rng.standard_normal((rows.shape[0], m)).astype(dtype)
    dW = backend.compact_linear_backward(indptr, indices, data, dout, W, rows=rows, xs=xs)
    assert dW.dtype == dtype and dW.shape == (k, m)
    close(dW, x.T @ dout, dtype, magnitude(x.T, dout), terms=rows.shape[0])


@pytest.mark.parametrize("values", VALUES)
def test_numba_equals_the_reference(dtype, rng, values):
    # the two backends on one call, rows in order by default
    indptr, indices, data, read, xs = compact_x(rng, 97, 257, 0.08, dtype, values)
    W = rng.standard_normal((257, 33)).astype(dtype)
    b = rng.standard_normal(33).astype(dtype)
    got = kernels.compact_linear_forward(indptr, indices, data, W, b, xs=xs)
    want = reference.compact_linear_forward(indptr, indices, data, W, b, xs=xs)
    close(got, want, dtype, magnitude(read, W), terms=257)
    dout = rng.standard_normal((97, 33)).astype(dtype)
    got = kernels.compact_linear_backward(indptr, indices, data, dout, W, xs=xs)
    want = reference.compact_linear_backward(indptr, indices, data, dout, W, xs=xs)
    close(got, want, dtype, magnitude(read.T, dout), terms=97)


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("density", [0.01, 0.3])
def test_whole_blocks_are_summed_in_registers_and_the_rest_in_the_loop(
    dtype, rng, values, density
):
    # Numba sums each block of block_width outputs in registers (register_blocks),
    # the outputs after the last whole block in its loop: both are checked here,
    # for the forward pass and the weight gradient, which at 30 % (2 or more
    # entries per column) sums by column, at 1 % by row; with and without rows
    # of dW already flagged (added to) and left as they are (NaN)
    m = 2 * block_width(np.dtype(dtype).itemsize) + 3
    indptr, indices, data, read, xs = compact_x(rng, 41, 67, density, dtype, values)
    rows = selection(rng, 41)
    # W has 5 more rows than X has columns: rows of dW that no entry reaches
    x = np.hstack([read[rows], np.zeros((rows.shape[0], 5))])
    W = rng.standard_normal((72, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    out = kernels.compact_linear_forward(indptr, indices, data, W, b, rows=rows, xs=xs)
    close(out, x @ W + b, dtype, magnitude(x, W), terms=72)
    dout = rng.standard_normal((rows.shape[0], m)).astype(dtype)
    dW = kernels.compact_linear_backward(indptr, indices, data, dout, W, rows=rows, xs=xs)
    close(dW, x.T @ dout, dtype, magnitude(x.T, dout), terms=rows.shape[0])
    live = np.arange(72) % 3 == 0
    before = np.where(live[:, None], rng.standard_normal((72, m)), np.nan).astype(dtype)
    touched = live.astype(np.uint8)
    dW = before.copy()
    kernels.compact_linear_backward(
        indptr, indices, data, dout, W, rows=rows, xs=xs, dW=dW, touched=touched
    )
    reached = (x != 0).any(axis=0)
    assert not reached[67:].any()
    np.testing.assert_array_equal(touched, (live | reached).astype(np.uint8))
    want = np.where(live[:, None], before, 0) + x.T @ dout
    close(dW[reached], want[reached], dtype, magnitude(x.T, dout) + 3, terms=rows.shape[0] + 1)
    np.testing.assert_array_equal(dW[~reached], before[~reached])


@pytest.mark.parametrize("values", VALUES)
def test_a_weight_matrix_over_l2_is_summed_block_by_block(dtype, rng, values):
    # W over BLOCKS_OUTER_BYTES: Numba's forward pass runs each block of
    # outputs over every row, then the outputs after the last whole block row
    # by row; the same sums as the dense product, and as the row-by-row order
    # on the same rows (W's first columns alone, under the bound), bit for bit
    from fastnn.contract.numba_ops import BLOCKS_OUTER_BYTES

    B = block_width(np.dtype(dtype).itemsize)
    m = 2 * B + 3
    k = BLOCKS_OUTER_BYTES // (m * np.dtype(dtype).itemsize) + 7
    indptr, indices, data, read, xs = compact_x(rng, 23, k, 0.02, dtype, values)
    rows = selection(rng, 23)
    W = rng.standard_normal((k, m)).astype(dtype)
    b = np.zeros(m, dtype)
    out = kernels.compact_linear_forward(indptr, indices, data, W, b, rows=rows, xs=xs)
    close(out, read[rows] @ W, dtype, magnitude(read[rows], W), terms=k)
    narrow = np.ascontiguousarray(W[:, :B])
    assert narrow.nbytes <= BLOCKS_OUTER_BYTES
    by_row = kernels.compact_linear_forward(indptr, indices, data, narrow, b[:B], rows=rows, xs=xs)
    np.testing.assert_array_equal(out[:, :B], by_row)


def test_one_row_one_feature(backend, dtype):
    indptr, indices = np.array([0, 1], np.int64), np.array([0], np.uint16)
    data, W, b = np.array([3], np.uint8), np.array([[2.0]], dtype), np.array([0.5], dtype)
    out = backend.compact_linear_forward(indptr, indices, data, W, b, xs=0.5)
    np.testing.assert_array_equal(out, np.array([[3.5]], dtype))
    dW = backend.compact_linear_backward(indptr, indices, data, np.array([[4.0]], dtype), W)
    np.testing.assert_array_equal(dW, np.array([[12.0]], dtype))


def test_wide_x_reads_int32_columns(backend, dtype, rng):
    k = 70_000  # over 65,536 features: compact_dense takes int32 columns
    X = np.zeros((5, k), dtype)
    X[0, [0, 65_536, k - 1]] = [1.0, 2.0, 3.0]
    X[3, k - 2] = -1.5
    indptr, indices, data = compact.compact_dense(X)
    assert indices.dtype == np.int32
    W = rng.standard_normal((k, 4)).astype(dtype)
    b = np.zeros(4, dtype)
    rows = np.array([3, 0, 4], np.int64)
    out = backend.compact_linear_forward(indptr, indices, data, W, b, rows=rows)
    x = X[rows].astype(np.float64)
    close(out, x @ W, dtype, magnitude(x, W), terms=3)
    dout = rng.standard_normal((3, 4)).astype(dtype)
    dW = backend.compact_linear_backward(indptr, indices, data, dout, W, rows=rows)
    close(dW, x.T @ dout, dtype, magnitude(x.T, dout), terms=3)
    assert not dW[1:65_536].any()


def test_extreme_values_propagate_as_in_the_dense_product(backend, dtype):
    big, tiny = np.finfo(dtype).max / 4, np.finfo(dtype).smallest_subnormal
    X = np.array(
        [
            [big, big, 0, 0, 0],  # overflows to inf
            [tiny, 0, tiny, 0, 0],  # subnormal products
            [np.inf, 0, 0, 0, 1],
            [0, np.nan, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype,
    )
    indptr, indices, data = compact.compact_dense(X)
    W = np.array([[4, 1], [4, 1], [1, 1], [2, 3], [-1, 1]], dtype)
    b = np.zeros(2, dtype)
    out = backend.compact_linear_forward(indptr, indices, data, W, b)
    with np.errstate(all="ignore"):
        want = X @ W
    np.testing.assert_array_equal(out, want)
    dout = np.ones((5, 2), dtype)
    dW = backend.compact_linear_backward(indptr, indices, data, dout, W)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(dW, X.T @ dout)


def test_an_entry_not_stored_is_an_exact_zero(backend, dtype):
    # Skipping zeros: an inf weight of a column with no entry adds nothing (a dense
    # product would give 0 * inf = NaN); an explicitly stored 0 multiplies it.
    indptr = np.array([0, 1, 3], np.int64)
    indices = np.array([0, 0, 1], np.int32)
    data = np.array([2.0, 1.0, 0.0], dtype)
    W = np.array([[1.0, 2.0], [np.inf, 1.0]], dtype)
    out = backend.compact_linear_forward(indptr, indices, data, W, np.zeros(2, dtype))
    np.testing.assert_array_equal(out[0], [2.0, 4.0])
    assert np.isnan(out[1, 0]) and out[1, 1] == 2.0


@pytest.mark.parametrize("values", VALUES)
def test_the_touched_rows_form(backend, dtype, rng, values):
    # What the training step does: write only the gradient rows the batch reaches,
    # zeroed unless already flagged (then added to), and flag them.
    indptr, indices, data, read, xs = compact_x(rng, 40, 30, 0.05, dtype, values)
    rows = rng.permutation(40)[:9].astype(np.int64)
    W = np.zeros((30, 3), dtype)
    dout = rng.standard_normal((9, 3)).astype(dtype)
    reached = np.zeros(30, bool)
    for r in rows:
        reached[indices[indptr[r] : indptr[r + 1]]] = True
    live = np.zeros(30, bool)
    live[:4] = True  # flagged before the call: accumulated into
    touched = live.astype(np.uint8)
    before = np.where(live[:, None], rng.standard_normal((30, 3)), np.nan).astype(dtype)
    dW = before.copy()
    result = backend.compact_linear_backward(
        indptr, indices, data, dout, W, rows=rows, xs=xs, dW=dW, touched=touched
    )
    assert result is dW
    np.testing.assert_array_equal(touched, (live | reached).astype(np.uint8))
    grad = read[rows].T @ dout
    want = np.where(live[:, None], before, 0) + grad
    close(dW[reached], want[reached], dtype, magnitude(read[rows].T, dout) + 3, terms=10)
    # the rows not reached are left as they were (NaN where unflagged)
    np.testing.assert_array_equal(dW[~reached], before[~reached])


def test_the_weight_gradient_is_the_forward_pass_gradient(backend, rng):
    # central differences of L(W) = sum(G * forward(W)) against backward(dout=G)
    indptr, indices, data, _, xs = compact_x(rng, 6, 7, 0.4, np.float64, "uint8")
    rows = np.array([5, 0, 2, 2], np.int64)
    W, b = rng.standard_normal((7, 3)), rng.standard_normal(3)
    G = rng.standard_normal((4, 3))

    def loss(W):
        return float(
            (G * backend.compact_linear_forward(indptr, indices, data, W, b, rows, xs)).sum()
        )

    numeric = np.zeros_like(W)
    h = 1e-6
    for i in np.ndindex(W.shape):
        step = np.zeros_like(W)
        step[i] = h
        numeric[i] = (loss(W + step) - loss(W - step)) / (2 * h)
    dW = backend.compact_linear_backward(indptr, indices, data, G, W, rows=rows, xs=xs)
    np.testing.assert_allclose(dW, numeric, rtol=1e-7, atol=1e-8)


def test_buffers_given_are_written_in_place(backend, rng):
    indptr, indices, data, read, xs = compact_x(rng, 9, 7, 0.4, np.float64, "float", np.int64)
    W, b = rng.standard_normal((7, 3)), rng.standard_normal(3)
    out = np.full((9, 3), np.nan)
    assert backend.compact_linear_forward(indptr, indices, data, W, b, out=out) is out
    close(out, read @ W + b, np.float64, magnitude(read, W), terms=7)
    dW = np.full((7, 3), np.nan)
    dout = rng.standard_normal((9, 3))
    assert backend.compact_linear_backward(indptr, indices, data, dout, W, dW=dW) is dW
    close(dW, read.T @ dout, np.float64, magnitude(read.T, dout), terms=9)


def test_a_malformed_call_is_refused_before_the_loop(backend, rng):
    indptr, indices, data, _, _ = compact_x(rng, 4, 5, 1.0, np.float64, "uint8")
    W, b = rng.standard_normal((5, 2)), np.zeros(2)
    bad_column = indices.copy()
    bad_column[0] = 5  # one past W's rows: an out-of-bounds read
    with pytest.raises(ValueError, match=r"indices must be in \[0, 5\)"):
        backend.compact_linear_forward(indptr, bad_column, data, W, b)
    with pytest.raises(ValueError, match=r"rows must be in \[0, 4\)"):
        backend.compact_linear_forward(indptr, indices, data, W, b, rows=np.array([0, 4]))
    with pytest.raises(ValueError, match="rows must not be empty"):
        backend.compact_linear_forward(indptr, indices, data, W, b, rows=np.array([], np.int64))
    with pytest.raises(TypeError, match="rows must be a numpy.ndarray of int64"):
        backend.compact_linear_forward(indptr, indices, data, W, b, rows=np.array([0], np.int32))
    with pytest.raises(TypeError, match="indices must be a numpy.ndarray of uint16 or int32"):
        backend.compact_linear_forward(indptr, indices.astype(np.int8), data, W, b)
    with pytest.raises(TypeError, match="data must be a numpy.ndarray of W's dtype float64 or"):
        backend.compact_linear_forward(indptr, indices, data.astype(np.int16), W, b)
    with pytest.raises(ValueError, match="xs must be finite"):
        backend.compact_linear_forward(indptr, indices, data, W, b, xs=np.nan)
    falling = indptr.copy()
    falling[1], falling[2] = falling[2], falling[1] - 1
    with pytest.raises(ValueError, match="indptr must rise from 0"):
        backend.compact_linear_backward(falling, indices, data, np.ones((4, 2)), W)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 2\)"):
        backend.compact_linear_backward(
            indptr, indices, data, np.ones((4, 2)), W, rows=np.array([1, 1])
        )
    with pytest.raises(ValueError, match="dW must be given with touched"):
        backend.compact_linear_backward(
            indptr, indices, data, np.ones((4, 2)), W, touched=np.zeros(5, np.uint8)
        )
    with pytest.raises(ValueError, match=r"touched must have shape \(5,\)"):
        backend.compact_linear_backward(
            indptr,
            indices,
            data,
            np.ones((4, 2)),
            W,
            dW=np.zeros((5, 2)),
            touched=np.zeros(4, np.uint8),
        )
    with pytest.raises(ValueError, match="out must not share memory with W"):
        backend.compact_linear_forward(indptr, indices, data, W, b, out=W[:4].reshape(4, 2))


def test_the_engine_reads_the_contract_kernels():
    # the compiled step's first layer is these kernels, not a copy of them
    from fastnn.contract import numba_ops
    from fastnn.engine import numba_step

    for name in ("compact_product", "compact_weight_grad"):
        assert getattr(numba_ops, name).py_func.__module__ == "fastnn.contract.numba_ops"
    source = numba_step.compact_forward.py_func.__code__.co_names
    assert "numba_ops" in source and "compact_product" in source
    source = numba_step.compact_weight_grad.py_func.__code__.co_names
    assert "numba_ops" in source and "compact_weight_grad" in source
