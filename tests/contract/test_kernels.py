"""Every Numba kernel against the NumPy reference, in float32 and float64."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import kernels, reference
from fastnn.contract.spec import CONTRACT
from tests.helpers import SHAPES, close


def layer(rng, n, k, m, dtype, spread=1.0):
    x = (spread * rng.standard_normal((n, k))).astype(dtype)
    W = (spread * rng.standard_normal((k, m))).astype(dtype)
    b = (spread * rng.standard_normal(m)).astype(dtype)
    return x, W, b


def matmul_scale(x, W, b=None):
    """The largest sum of |terms| in x @ W + b: what rounding error scales with."""
    s = np.abs(x.astype(np.float64)) @ np.abs(W.astype(np.float64))
    if b is not None:
        s = s + np.abs(b)
    return s.max()


def contract_calls(rng):
    """One valid call of every CONTRACT function: name -> positional arguments."""
    x, W, b = layer(rng, 3, 4, 2, np.float64)
    z = rng.standard_normal((3, 2))
    y = np.array([0, 1, 1])
    p = np.full(4, 0.5)
    Y = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    return {
        "linear_forward": (x, W, b),
        "linear_relu_forward": (x, W, b),
        "linear_activation_forward": (x, W, b, "tanh"),
        "relu_forward": (z,),
        "relu_backward": (z, z),
        "softmax": (z,),
        "activation_forward": (z, "logistic"),
        "activation_backward": (z, z, "tanh"),
        "softmax_cross_entropy": (z, y),
        "softmax_cross_entropy_backward": (z, y),
        "binary_cross_entropy": (z, Y),
        "binary_cross_entropy_backward": (z, Y),
        "squared_error": (z, Y),
        "squared_error_backward": (z, Y),
        "linear_backward": (z, x, W),
        "sgd_update": (p.copy(), p, 0.1),
        "adam_update": (p.copy(), p, np.zeros(4), np.zeros(4), 1, 0.1),
        "l2_penalty": (W, np.zeros_like(W), 0.1),
        "dropout_forward": (z, np.arange(3), 1, 2, 0.5),
        "dropout_backward": (z, np.arange(3), 1, 2, 0.5),
        # x as CSR: every entry stored (indptr, indices, data)
        "csr_linear_forward": (np.array([0, 4, 8, 12]), np.tile(np.arange(4), 3), x.ravel(), W, b),
        "csr_linear_backward": (
            np.array([0, 4, 8, 12]),
            np.tile(np.arange(4), 3),
            x.ravel(),
            z,
            W,
        ),
        # x as X's nonzeros by row, read through a permutation
        "compact_linear_forward": (
            np.array([0, 4, 8, 12]),
            np.tile(np.arange(4, dtype=np.uint16), 3),
            x.ravel(),
            W,
            b,
            np.array([2, 0, 1]),
        ),
        "compact_linear_backward": (
            np.array([0, 4, 8, 12]),
            np.tile(np.arange(4, dtype=np.uint16), 3),
            x.ravel(),
            z,
            W,
            np.array([2, 0, 1]),
        ),
    }


@pytest.mark.parametrize("module", [kernels, reference], ids=["numba", "numpy"])
def test_each_backend_runs_its_own_ops(module, rng, monkeypatch):
    # The public functions are written once (fastnn.contract.spec) for both backends, so
    # their names and docstrings agree by construction. What can go wrong is the
    # wiring: a backend whose functions call the other backend's ops (the tests
    # comparing the two would then compare a backend with itself), or an op
    # missing from one backend. Record which ops module each call reaches.
    other = reference if module is kernels else kernels
    assert module.ops is not other.ops
    assert sorted(module.__all__) == sorted(CONTRACT)
    reached = []
    for ops, label in [(module.ops, "own"), (other.ops, "other")]:
        for name in CONTRACT:
            op = getattr(ops, name)  # every op the contract calls exists

            def record(*args, _op=op, _label=label, _name=name):
                reached.append((_label, _name))
                return _op(*args)

            monkeypatch.setattr(ops, name, record)
    calls = contract_calls(rng)
    assert sorted(calls) == sorted(CONTRACT)
    for name, args in calls.items():
        reached.clear()
        getattr(module, name)(*args)
        assert reached == [("own", name)], name


@pytest.mark.parametrize("n,k,m", SHAPES)
@pytest.mark.parametrize("name", ["linear_forward", "linear_relu_forward"])
def test_linear_forward(rng, dtype, n, k, m, name):
    x, W, b = layer(rng, n, k, m, dtype)
    got = getattr(kernels, name)(x, W, b)
    want = getattr(reference, name)(x, W, b)
    assert got.dtype == dtype and got.shape == (n, m)
    close(got, want, dtype, matmul_scale(x, W, b), terms=k)
    if name == "linear_relu_forward":
        assert (got >= 0).all()
        # the fusion must equal the two-step composition
        close(
            got,
            np.maximum(reference.linear_forward(x, W, b), 0),
            dtype,
            matmul_scale(x, W, b),
            terms=k,
        )


@pytest.mark.parametrize("name", ["linear_forward", "linear_relu_forward"])
def test_linear_forward_writes_into_out(rng, dtype, name):
    x, W, b = layer(rng, 5, 4, 3, dtype)
    out = np.full((5, 3), np.nan, dtype=dtype)
    result = getattr(kernels, name)(x, W, b, out=out)
    assert result is out
    close(out, getattr(reference, name)(x, W, b), dtype, matmul_scale(x, W, b), terms=4)


@pytest.mark.parametrize("n,m", [(1, 1), (1, 10), (7, 5), (33, 129)])
def test_relu_forward_and_backward(rng, dtype, n, m):
    z = rng.standard_normal((n, m)).astype(dtype)
    z[0, 0] = 0.0  # the kink: ReLU'(0) is taken as 0 by both
    dout = rng.standard_normal((n, m)).astype(dtype)
    np.testing.assert_array_equal(kernels.relu_forward(z), reference.relu_forward(z))
    np.testing.assert_array_equal(kernels.relu_backward(dout, z), reference.relu_backward(dout, z))
    a = reference.relu_forward(z)
    # the gate is the same whether given the ReLU's input or its output
    np.testing.assert_array_equal(kernels.relu_backward(dout, a), reference.relu_backward(dout, z))
    assert kernels.relu_backward(dout, z)[0, 0] == 0


def test_relu_propagates_nan_and_gates_inf(dtype):
    z = np.array([[np.nan, -np.inf, np.inf, -1.0, 2.0]], dtype=dtype)
    for b in (kernels, reference):
        out = b.relu_forward(z)
        assert np.isnan(out[0, 0]) and out[0, 1] == 0 and out[0, 2] == np.inf
    dout = np.array([[np.inf, np.inf, 1.0, np.inf, -np.inf]], dtype=dtype)
    for b in (kernels, reference):
        # a gate, not a product: a closed gate gives 0 even for an infinite dout
        np.testing.assert_array_equal(b.relu_backward(dout, z), [[0, 0, 1, 0, -np.inf]])


def extreme_logits(dtype):
    """Rows that break a softmax without max-subtraction or with a shared max."""
    return np.array(
        [
            [1000.0, -1000.0, 0.0, 1000.0],  # overflow without the max shift
            [-1000.0, -1000.0, -1000.0, -1000.0],  # all equal, all tiny
            [5.0, 5.0, 5.0, 5.0],  # all equal
            [0.0, 0.0, 1000.0, 0.0],  # one-hot-like
            [-1000.0, 1000.0, -1000.0, -1000.0],
            [1e-3, 2e-3, -1e-3, 0.0],  # nearly uniform
        ],
        dtype=dtype,
    )


@pytest.mark.parametrize("n,m", [(1, 1), (1, 10), (2, 2), (7, 3), (129, 10), (5, 1000)])
def test_softmax_random(rng, dtype, n, m):
    z = (10 * rng.standard_normal((n, m))).astype(dtype)
    got = kernels.softmax(z)
    close(got, reference.softmax(z), dtype, terms=m)
    close(got.sum(axis=1), np.ones(n), dtype, terms=m)


def test_softmax_extreme_logits(dtype):
    z = extreme_logits(dtype)
    got = kernels.softmax(z)
    assert np.isfinite(got).all()
    close(got, reference.softmax(z), dtype, terms=4)
    expected_rows = [[0.5, 0, 0, 0.5], [0.25] * 4, [0.25] * 4, [0, 0, 1, 0], [0, 1, 0, 0]]
    close(got[:5], expected_rows, dtype, terms=4)


def test_softmax_rows_are_independent(rng, dtype):
    # Each row's max is its own: rows with very different ranges must not
    # influence one another (a shared max would underflow the small rows).
    # Rows are compared one by one with the row softmaxed alone (float32
    # rounds small + 1000, so the three rows are not exactly shifts).
    small = rng.standard_normal((1, 6)).astype(dtype)
    z = np.vstack([small, small + 1000, small - 1000]).astype(dtype)
    got = kernels.softmax(z)
    for i, row in enumerate(got):
        close(row, reference.softmax(z[i : i + 1])[0], dtype, terms=6)
        close(row, reference.softmax(small)[0], dtype, scale=1e3, terms=6)


@pytest.mark.parametrize("n,m", [(1, 1), (1, 10), (3, 2), (64, 10), (101, 7)])
def test_softmax_cross_entropy(rng, dtype, n, m):
    z = (5 * rng.standard_normal((n, m))).astype(dtype)
    y = rng.integers(0, m, n)
    loss, probs = kernels.softmax_cross_entropy(z, y)
    ref_loss, ref_probs = reference.softmax_cross_entropy(z, y)
    assert isinstance(loss, float)
    close(probs, ref_probs, dtype, terms=m)
    # per-row loss terms are O(|z|) and summed in float64
    close(loss, ref_loss, dtype, scale=np.abs(z).max() + np.log(m), terms=m)
    # independent check: the definition, in float64
    z64 = z.astype(np.float64)
    lse = np.log(np.exp(z64 - z64.max(1, keepdims=True)).sum(1)) + z64.max(1)
    close(
        loss,
        np.mean(lse - z64[np.arange(n), y]),
        dtype,
        scale=np.abs(z).max() + np.log(m),
        terms=m,
    )
    if m == 1:
        assert loss == 0.0


def test_softmax_cross_entropy_extreme_logits(dtype):
    z = extreme_logits(dtype)
    y = np.array([0, 1, 2, 2, 0, 3])
    loss, probs = kernels.softmax_cross_entropy(z, y)
    ref_loss, ref_probs = reference.softmax_cross_entropy(z, y)
    assert np.isfinite(loss)
    close(loss, ref_loss, dtype, scale=2000.0, terms=4)
    # row 4 assigns its true class y=0 a logit 2000 below the max: loss 2000
    expected = np.mean(
        [
            np.log(2),
            np.log(4),
            np.log(4),
            0.0,
            2000.0,
            np.log(np.exp(z[5].astype(np.float64)).sum()) - z[5, 3],
        ]
    )
    close(loss, expected, dtype, scale=2000.0, terms=4)
    close(probs, ref_probs, dtype, terms=4)


@pytest.mark.parametrize("n,m", [(1, 1), (1, 10), (5, 3), (128, 10)])
def test_softmax_cross_entropy_backward(rng, dtype, n, m):
    probs = reference.softmax(rng.standard_normal((n, m)).astype(dtype))
    y = rng.integers(0, m, n)
    got = kernels.softmax_cross_entropy_backward(probs, y)
    expected = (probs.astype(np.float64) - np.eye(m)[y]) / n
    close(got, reference.softmax_cross_entropy_backward(probs, y), dtype)
    close(got, expected, dtype)
    # each row of the gradient sums to 0 (probabilities sum to 1)
    close(got.sum(axis=1), np.zeros(n), dtype, terms=m)


@pytest.mark.parametrize("n,k,m", SHAPES)
def test_linear_backward(rng, dtype, n, k, m):
    x, W, _ = layer(rng, n, k, m, dtype)
    dout = rng.standard_normal((n, m)).astype(dtype)
    dx, dW, db = kernels.linear_backward(dout, x, W)
    rdx, rdW, rdb = reference.linear_backward(dout, x, W)
    close(dx, rdx, dtype, matmul_scale(dout, W.T), terms=m)
    close(dW, rdW, dtype, matmul_scale(x.T, dout), terms=n)
    close(db, rdb, dtype, np.abs(dout).sum(0).max(), terms=n)
    close(db, dout.astype(np.float64).sum(0), dtype, np.abs(dout).sum(0).max(), terms=n)
    none, dW2, db2 = kernels.linear_backward(dout, x, W, need_dx=False)
    assert none is None
    np.testing.assert_array_equal(dW2, dW)
    np.testing.assert_array_equal(db2, db)


def test_linear_backward_column_sum_does_not_drift_in_float32():
    # 2**20 rows of 0.1: a naive float32 running sum ends far from 104857.6
    n = 1 << 20
    dout = np.full((n, 1), 0.1, dtype=np.float32)
    x = np.ones((n, 1), dtype=np.float32)
    W = np.ones((1, 1), dtype=np.float32)
    _, _, db = kernels.linear_backward(dout, x, W, need_dx=False)
    exact = float(np.float32(0.1)) * n
    assert abs(float(db[0]) - exact) / exact < 1e-6


def test_linear_backward_writes_into_buffers(rng, dtype):
    x, W, _ = layer(rng, 6, 5, 4, dtype)
    dout = rng.standard_normal((6, 4)).astype(dtype)
    dx, dW, db = (np.empty((6, 5), dtype), np.empty((5, 4), dtype), np.empty(4, dtype))
    for buffer in (dx, dW, db):
        buffer.fill(np.nan)  # stale contents must be overwritten, not added to
    result = kernels.linear_backward(dout, x, W, dx=dx, dW=dW, db=db)
    assert result[0] is dx and result[1] is dW and result[2] is db
    want_dx, want_dW, want_db = reference.linear_backward(dout, x, W)
    scale = matmul_scale(dout, W.T)
    close(dx, want_dx, dtype, scale, terms=4)
    close(dW, want_dW, dtype, matmul_scale(x.T, dout), terms=6)
    close(db, want_db, dtype, np.abs(dout).sum(axis=0).max(), terms=6)


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize("shape", [(1,), (7,), (13, 5)])
def test_sgd_update(rng, dtype, shape, momentum, nesterov):
    start = rng.standard_normal(shape).astype(dtype)
    params = [start.copy(), start.copy()]
    velocities = [np.zeros(shape, dtype) if momentum else None for _ in range(2)]
    for _ in range(3):  # several steps, so the velocity carries over
        grad = rng.standard_normal(shape).astype(dtype)
        for b, p, v in zip((kernels, reference), params, velocities):
            assert (
                b.sgd_update(p, grad, 0.05, velocity=v, momentum=momentum, nesterov=nesterov) is p
            )
        close(params[0], params[1], dtype, scale=4.0)
        if momentum:
            close(velocities[0], velocities[1], dtype)


def test_sgd_update_matches_its_definition(dtype):
    p = np.array([1.0, -2.0], dtype=dtype)
    v = np.array([0.5, 0.0], dtype=dtype)
    g = np.array([2.0, 1.0], dtype=dtype)
    kernels.sgd_update(p, g, 0.1, velocity=v, momentum=0.5)
    close(v, [0.5 * 0.5 - 0.1 * 2.0, -0.1], dtype)
    close(p, [1.0 + 0.05, -2.0 - 0.1], dtype)
    p2 = np.array([1.0], dtype=dtype)
    kernels.sgd_update(p2, np.array([3.0], dtype=dtype), 0.1)
    close(p2, [0.7], dtype)


@pytest.mark.parametrize("shape", [(1,), (11,), (9, 4)])
def test_adam_update(rng, dtype, shape):
    p0 = rng.standard_normal(shape).astype(dtype)
    copies = {}
    for b in (kernels, reference):
        copies[b] = (p0.copy(), np.zeros(shape, dtype), np.zeros(shape, dtype))
    for t in range(1, 6):
        grad = rng.standard_normal(shape).astype(dtype)
        for b, (p, m, v) in copies.items():
            assert b.adam_update(p, grad, m, v, t, 0.01) is p
    (pk, mk, vk), (pr, mr, vr) = copies[kernels], copies[reference]
    close(pk, pr, dtype, scale=4.0)
    close(mk, mr, dtype)
    close(vk, vr, dtype)


def test_adam_first_step_moves_each_weight_by_lr(dtype):
    # at t=1 the bias correction makes the step lr * g / (|g| + eps') = lr * sign(g)
    p = np.zeros(3, dtype=dtype)
    g = np.array([1e-3, -5.0, 200.0], dtype=dtype)
    kernels.adam_update(p, g, np.zeros(3, dtype), np.zeros(3, dtype), 1, 0.01, eps=1e-12)
    np.testing.assert_allclose(p, [-0.01, 0.01, -0.01], rtol=1e-4)


def test_adam_drops_squares_under_the_smallest_normal_number(dtype):
    # a gradient whose (1 - beta2) g g would be subnormal adds 0 to the second
    # moment (the reference adds the subnormal): v differs by under the
    # smallest normal number; larger gradients, inf and NaN are squared as usual
    tiny = np.finfo(dtype).tiny
    least = np.sqrt(tiny / 0.001)
    g = np.array([least * 0.5, -least * 0.99, least * 1.01, 1e-3, -7.0, np.inf, np.nan], dtype)
    v0 = np.array([0, 0, 0, 0.5, 0.5, 0, 0], dtype)
    got, want = [], []
    for b, out in ((kernels, got), (reference, want)):
        p, m, v = np.ones(7, dtype), np.zeros(7, dtype), v0.copy()
        b.adam_update(p, g, m, v, 3, 0.01)
        out.append(v)
    v, v_ref = got[0], want[0]
    assert v[0] == 0 and v[1] == 0 and 0 < v_ref[0] < tiny and 0 < v_ref[1] < tiny
    np.testing.assert_array_equal(v[2:5], v_ref[2:5])
    assert v[2] >= tiny * 0.99
    assert np.isinf(v[5]) and np.isnan(v[6])


def test_l2_penalty(rng, dtype):
    W = rng.standard_normal((17, 5)).astype(dtype)
    dW_start = rng.standard_normal((17, 5)).astype(dtype)
    dWs = [dW_start.copy(), dW_start.copy()]
    dW0 = dWs[0].copy()
    pk = kernels.l2_penalty(W, dWs[0], 0.01)
    pr = reference.l2_penalty(W, dWs[1], 0.01)
    close(pk, pr, dtype, scale=pr, terms=W.size)
    close(pk, 0.005 * (W.astype(np.float64) ** 2).sum(), dtype, scale=pr, terms=W.size)
    close(dWs[0], dWs[1], dtype, scale=4.0)
    close(dWs[0], dW0 + 0.01 * W, dtype, scale=4.0)


# -- in-place calls: an output that aliases an input must still be right ----


def test_in_place_aliasing(rng, dtype):
    z = (3 * rng.standard_normal((9, 6))).astype(dtype)
    y = rng.integers(0, 6, 9)
    dout = rng.standard_normal((9, 6)).astype(dtype)
    for b in (kernels, reference):
        zz = z.copy()
        assert b.softmax(zz, out=zz) is zz
        close(zz, reference.softmax(z), dtype, terms=6)

        zz = z.copy()
        loss, probs = b.softmax_cross_entropy(zz, y, probs_out=zz)
        assert probs is zz
        ref_loss, ref_probs = reference.softmax_cross_entropy(z, y)
        close(loss, ref_loss, dtype, scale=np.abs(z).max(), terms=6)
        close(probs, ref_probs, dtype, terms=6)

        pp = ref_probs.copy()
        assert b.softmax_cross_entropy_backward(pp, y, out=pp) is pp
        close(pp, reference.softmax_cross_entropy_backward(ref_probs, y), dtype)

        dd = dout.copy()
        assert b.relu_backward(dd, z, out=dd) is dd
        np.testing.assert_array_equal(dd, reference.relu_backward(dout, z))

        zz = z.copy()
        assert b.relu_forward(zz, out=zz) is zz
        np.testing.assert_array_equal(zz, np.maximum(z, 0))


# -- property tests over random shapes ---------------------------------------

dims = st.integers(min_value=1, max_value=40)


@settings(max_examples=40, deadline=None)
@given(n=dims, k=dims, m=dims, use_f32=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_property_forward_backward_match_reference(n, k, m, use_f32, seed):
    dtype = np.float32 if use_f32 else np.float64
    rng = np.random.default_rng(seed)
    x, W, b = layer(rng, n, k, m, dtype, spread=3.0)
    y = rng.integers(0, m, n)
    close(
        kernels.linear_relu_forward(x, W, b),
        reference.linear_relu_forward(x, W, b),
        dtype,
        matmul_scale(x, W, b),
        terms=k,
    )
    z = reference.linear_forward(x, W, b)
    loss, probs = kernels.softmax_cross_entropy(z, y)
    ref_loss, ref_probs = reference.softmax_cross_entropy(z, y)
    close(probs, ref_probs, dtype, terms=m)
    close(loss, ref_loss, dtype, scale=np.abs(z).max() + np.log(m), terms=m)
    grads = kernels.linear_backward(probs, x, W)
    ref_grads = reference.linear_backward(ref_probs, x, W)
    for got, want, terms in zip(grads, ref_grads, (m, n, n)):
        close(got, want, dtype, scale=matmul_scale(np.abs(x).T, np.ones((n, m))) + m, terms=terms)
