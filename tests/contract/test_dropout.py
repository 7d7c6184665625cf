"""Dropout from a counter-based generator: both backends draw the same masks,
for any split of the rows, with the right statistics."""

import numpy as np
import pytest

from fastnn import kernels, reference

BACKENDS = pytest.mark.parametrize("nn", [kernels, reference], ids=["numba", "numpy"])


def ones(n, m, dtype=np.float64):
    return np.ones((n, m), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 40), (257, 33)])
@pytest.mark.parametrize("rate", [0.0, 0.5, 0.999])
def test_the_backends_draw_the_same_masks(dtype, shape, rate):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(dtype)
    rows = rng.choice(10**9, shape[0], replace=False).astype(np.int64)
    for seed, step in [(0, 0), (2**64 - 1, 2**63 - 1), (12345, 7)]:
        ours = kernels.dropout_forward(a, rows, seed, step, rate)
        ref = reference.dropout_forward(a, rows, seed, step, rate)
        np.testing.assert_array_equal(ours, ref)
        back = kernels.dropout_backward(a, rows, seed, step, rate)
        np.testing.assert_array_equal(back, reference.dropout_backward(a, rows, seed, step, rate))
        assert ours.dtype == dtype


@BACKENDS
def test_rate_zero_is_the_identity(nn):
    a = np.random.default_rng(1).standard_normal((50, 7))
    np.testing.assert_array_equal(nn.dropout_forward(a, np.arange(50), 3, 4, 0.0), a)


@BACKENDS
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_kept_fraction_and_mean_are_within_binomial_bounds(nn, rate):
    n, m = 2000, 500
    out = nn.dropout_forward(ones(n, m), np.arange(n), 42, 3, rate)
    kept = np.count_nonzero(out)
    expected = (1 - rate) * n * m
    sigma = np.sqrt(n * m * rate * (1 - rate))
    assert abs(kept - expected) < 6 * sigma  # fails 2 in 10^9 runs by chance
    # inverted dropout: the expected activation is unchanged
    assert abs(out.mean() - 1.0) < 6 * sigma / expected
    assert set(np.unique(out)) == {0.0, 1 / (1 - rate)}


@BACKENDS
def test_masks_are_independent_across_units_rows_steps_and_seeds(nn):
    n, m, rate = 4000, 64, 0.5
    rows = np.arange(n)
    masks = {
        key: nn.dropout_forward(ones(n, m), rows, *key, rate) > 0
        for key in [(1, 0), (1, 1), (2, 0)]
    }
    bound = 6 / np.sqrt(n * m)  # correlation of independent fair coins
    base = masks[(1, 0)].astype(float)
    for other in [base[:, 1:], base[1:, :], masks[(1, 1)], masks[(2, 0)]]:
        a, b = base[: other.shape[0], : other.shape[1]], other.astype(float)
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < bound
    # each row has its own mask (a mask reused across rows would repeat)
    assert len({row.tobytes() for row in masks[(1, 0)]}) == n


@BACKENDS
def test_a_row_keeps_its_mask_wherever_it_is_in_a_batch(nn):
    # any split into threads' chunks or MPI ranks' slices draws the same masks
    rng = np.random.default_rng(2)
    a = rng.standard_normal((100, 9))
    rows = rng.choice(5000, 100, replace=False)
    whole = nn.dropout_forward(a, rows, 9, 11, 0.3)
    parts = [nn.dropout_forward(a[s], rows[s], 9, 11, 0.3) for s in np.array_split(range(100), 7)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    order = rng.permutation(100)
    np.testing.assert_array_equal(
        nn.dropout_forward(a[order], rows[order], 9, 11, 0.3), whole[order]
    )


@BACKENDS
def test_backward_is_the_gradient_of_forward(nn):
    # finite differences of L = sum(c * dropout(a)) in float64 against dropout_backward(c)
    rng = np.random.default_rng(3)
    a, c = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    rows, args = np.arange(10, 16), (5, 8, 0.4)

    def loss(x):
        return float((c * nn.dropout_forward(x, rows, *args)).sum())

    grad = nn.dropout_backward(c, rows, *args)
    eps = 1e-6
    for i, j in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[i, j] += eps
        down[i, j] -= eps
        assert abs((loss(up) - loss(down)) / (2 * eps) - grad[i, j]) < 1e-8


@BACKENDS
def test_extreme_values_pass_where_kept_and_vanish_where_dropped(nn):
    a = np.array([[np.inf, -np.inf, np.nan, 1e308, -1e308, 0.0] * 50])
    with np.errstate(over="ignore"):  # 1e308 * 2 is inf, as IEEE says
        out = nn.dropout_forward(a, np.array([7]), 1, 1, 0.5)
    kept = nn.dropout_forward(np.ones_like(a), np.array([7]), 1, 1, 0.5) > 0
    assert not np.isnan(out[~kept]).any() and (out[~kept] == 0).all()
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out[kept], (a * 2.0)[kept])


@BACKENDS
def test_in_place_and_out_buffers(nn):
    a = np.random.default_rng(4).standard_normal((8, 3)).astype(np.float32)
    expected = nn.dropout_forward(a, np.arange(8), 1, 2, 0.5)
    out = np.empty_like(a)
    assert nn.dropout_forward(a, np.arange(8), 1, 2, 0.5, out=out) is out
    np.testing.assert_array_equal(out, expected)
    nn.dropout_forward(a, np.arange(8), 1, 2, 0.5, out=a)
    np.testing.assert_array_equal(a, expected)


@BACKENDS
@pytest.mark.parametrize(
    "change,error,match",
    [
        (dict(rows=np.arange(4, dtype=np.int32)), TypeError, "rows must be an int64"),
        (dict(rows=np.arange(5)), ValueError, "rows"),
        (dict(rows=np.array([0, 1, -2, 3])), ValueError, "rows must be non-negative"),
        (dict(seed=-1), ValueError, "seed must be in"),
        (dict(seed=2**64), ValueError, "seed must be in"),
        (dict(seed=1.0), TypeError, "seed must be an integer"),
        (dict(step=True), TypeError, "step must be an integer"),
        (dict(step=2**63), ValueError, "step must be in"),
        (dict(rate=1.0), ValueError, "rate must be < 1.0"),
        (dict(rate=-0.1), ValueError, "rate must be >= 0.0"),
        (dict(rate=np.nan), ValueError, "rate must be finite"),
        (dict(a=np.ones((4, 3), np.int64)), TypeError, "a"),
        (dict(a=np.ones((0, 3)), rows=np.arange(0)), ValueError, "a must not be empty"),
        (dict(out=np.ones((4, 3), np.float32)), TypeError, "out"),
    ],
)
def test_bad_arguments_are_named(nn, change, error, match):
    args = dict(a=np.ones((4, 3)), rows=np.arange(4), seed=1, step=0, rate=0.5, out=None)
    args.update(change)
    with pytest.raises(error, match=match):
        nn.dropout_forward(**args)
