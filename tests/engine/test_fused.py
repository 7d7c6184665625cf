"""The Numba backend's fused training step against the NumPy reference step.

`TrainStep` runs one fused call on the Numba backend (the GEMM path for any
activation and head, or the single pass over x for narrow one-hidden-layer
ReLU/softmax networks) and the plain NumPy step (`fastnn.engine.numpy_step`) on the
reference backend; both must give the same loss and gradients. Float32
results are held to the reference's own float32 error, measured against a
float64 reference run: a wrong index or a missed term is off by orders of
magnitude more than that.
"""

import itertools
import os
import threading
import time

import numpy as np
import pytest

from fastnn.contract.tables import ACTIVATIONS, HEADS
from fastnn.engine import numba_step
from fastnn.engine.step import TrainStep
from tests.helpers import head_targets, small_network

# (layer sizes, batch): narrow one-hidden-layer nets take the single pass
NARROW = [
    ((784, 10, 10), 1),
    ((784, 10, 10), 4099),  # split over threads, and a remainder of 3 rows
    ((7, 3, 5), 13),
    ((1, 1, 2), 2),
    ((33, 32, 32), 6),  # the widest single-pass network
]
GEMM = [
    ((784, 128, 10), 1),
    ((784, 128, 10), 129),
    ((33, 33, 2), 5),  # one unit past the single pass's width
    ((20, 9, 7, 4), 3),
    ((64, 31, 17, 5, 3), 50),
]


def _problem(sizes, n, head="softmax", seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0]))
    targets = head_targets(head, rng, n, sizes[-1])
    coefs, intercepts = small_network(rng, sizes, scale=scale * np.sqrt(2.0))
    return X, targets, coefs, intercepts


def _run(backend, X, targets, coefs, intercepts, dtype, alpha, activation="relu", head="softmax"):
    step = TrainStep(
        backend,
        [W.astype(dtype) for W in coefs],
        [b.astype(dtype) for b in intercepts],
        X.shape[0],
        activation,
        head,
    )
    if head != "softmax":
        targets = targets.astype(dtype)
    loss = step.loss_and_grads(X.astype(dtype), targets, alpha)
    return step, loss, [g.copy() for g in step.grads]


def _check(sizes, n, dtype, alpha, activation="relu", head="softmax", seed=0, scale=1.0):
    problem = _problem(sizes, n, head, seed, scale)
    args = (alpha, activation, head)
    _, exact_loss, exact = _run("numpy", *problem, np.float64, *args)
    _, ref_loss, ref = _run("numpy", *problem, dtype, *args)
    step, loss, fused = _run("numba", *problem, dtype, *args)
    eps = np.finfo(dtype).eps
    names = [f"dW{i}" for i in range(len(sizes) - 1)] + [f"db{i}" for i in range(len(sizes) - 1)]
    for name, got, want, truth in zip(names, fused, ref, exact):
        assert got.dtype == dtype
        magnitude = np.max(np.abs(truth)) + np.finfo(np.float64).tiny
        ref_error = np.max(np.abs(want - truth))
        error = np.max(np.abs(got - truth))
        # the reference's own rounding error, with room for a different summation
        # order, plus a few ulps of the gradient's magnitude
        assert error <= 4 * ref_error + 16 * eps * magnitude, (name, error, ref_error)
    loss_bound = 4 * abs(ref_loss - exact_loss) + 16 * eps * abs(exact_loss)
    assert abs(loss - exact_loss) <= loss_bound, (loss, ref_loss, exact_loss)
    return step


@pytest.mark.parametrize("sizes,n", NARROW, ids=lambda v: str(v))
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_single_pass_matches_reference(sizes, n, alpha, dtype):
    step = _check(sizes, n, dtype, alpha)
    # the test is about the single pass: make sure that it ran
    assert step.narrow is not None


@pytest.mark.parametrize("sizes,n", GEMM, ids=lambda v: str(v))
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_gemm_path_matches_reference(sizes, n, alpha, dtype):
    step = _check(sizes, n, dtype, alpha)
    assert step.narrow is None


@pytest.mark.parametrize("activation,head", list(itertools.product(ACTIVATIONS, HEADS)))
@pytest.mark.parametrize("sizes,n", [((20, 9, 7, 4), 33), ((7, 3, 5), 13)], ids=str)
def test_every_activation_and_head_matches_reference(sizes, n, activation, head, dtype):
    # a narrow net with another activation or head falls back to the GEMM path
    step = _check(sizes, n, dtype, 1e-2, activation, head)
    assert (step.narrow is not None) == (
        activation == "relu" and head == "softmax" and len(sizes) == 3
    )


@pytest.mark.parametrize("head", HEADS)
def test_row_weights_match_reference(head, dtype):
    sizes, n = (12, 8, 3), 17
    X, targets, coefs, intercepts = _problem(sizes, n, head, seed=5)
    sw = np.random.default_rng(6).random(n) * 2
    sw[3] = 0.0
    results = {}
    for backend in ("numpy", "numba"):
        step = TrainStep(
            backend,
            [W.astype(dtype) for W in coefs],
            [b.astype(dtype) for b in intercepts],
            n,
            "logistic",
            head,
        )
        labels, Y = (targets, None) if head == "softmax" else (None, targets.astype(dtype))
        loss, correct = step.batch_grads(X.astype(dtype), labels, Y, sw)
        results[backend] = (loss, correct, [g.copy() for g in step.grads])
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert results["numba"][0] == pytest.approx(results["numpy"][0], rel=tol)
    assert results["numba"][1] == results["numpy"][1]
    for a, b in zip(results["numba"][2], results["numpy"][2]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.max(np.abs(b)))


# the exp head's prediction e^z overflows for such logits by definition
@pytest.mark.parametrize("head", [h for h in HEADS if h != "exp"])
@pytest.mark.parametrize("sizes,n", [((50, 8, 6), 41), ((50, 40, 6), 41)])
def test_extreme_logits(sizes, n, head, dtype):
    # weights scaled so that logits reach the hundreds to thousands: an
    # unshifted softmax or a naive log(1 + exp(z)) overflows, a shared max
    # across rows would be wrong
    _check(sizes, n, dtype, 0.0, "relu", head, seed=3, scale=300.0)


@pytest.mark.parametrize("sizes", [(784, 10, 10), (784, 40, 10)], ids=str)
def test_uint8_rows_match_their_float_copy(sizes, dtype):
    # pixels read as bytes and scaled on the fly (single pass and GEMM path)
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (37, sizes[0]), dtype=np.uint8)
    y = rng.integers(0, sizes[-1], 37).astype(np.intp)
    coefs, intercepts = small_network(rng, sizes, dtype)
    as_bytes = TrainStep("numba", coefs, intercepts, 37)
    loss_bytes, _ = as_bytes.batch_grads(pixels, y, input_scale=1 / 255)
    as_float = TrainStep("numba", [W.copy() for W in coefs], [b.copy() for b in intercepts], 37)
    loss_float, _ = as_float.batch_grads((pixels / 255).astype(dtype), y)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss_bytes == pytest.approx(loss_float, rel=tol)
    for a, b in zip(as_bytes.grads, as_float.grads):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.max(np.abs(b)))


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_every_thread_count_gives_the_same_gradients(monkeypatch, threads):
    # Row chunks as small as 16 rows: the batch is split into up to
    # threads * CHUNKS_PER_THREAD chunks, each with its own partial sums,
    # which must add up to the one-chunk result. The thread count is set here
    # rather than read from the machine, so that a one-core CI runner splits
    # the batch too; the chunks that ran are counted, not assumed.
    sizes, n = (30, 6, 4), 203
    X, y, coefs, intercepts = _problem(sizes, n)
    _, _, one_chunk = _run("numba", X, y, coefs, intercepts, np.float64, 0.0)
    monkeypatch.setattr(numba_step, "MIN_ROWS_PER_THREAD", 16)
    monkeypatch.setattr(numba_step, "n_threads", lambda: threads)
    rows = []
    chunk_rows = numba_step.NarrowStep._rows

    def counted(self, t, *args):
        rows.append((t, args[2], args[3]))
        return chunk_rows(self, t, *args)

    monkeypatch.setattr(numba_step.NarrowStep, "_rows", counted)
    _, _, chunked = _run("numba", X, y, coefs, intercepts, np.float64, 0.0)
    slots = threads * numba_step.CHUNKS_PER_THREAD if threads > 1 else 1
    expected = min(slots, n // 16)
    if expected > 1:
        assert len(rows) == expected
    else:  # one chunk runs in one call, not through the pool
        assert rows == []
    # the chunks, in slot order, cover every row once
    rows.sort()
    assert [t for t, _, _ in rows] == list(range(len(rows)))
    if rows:
        assert rows[0][1] == 0 and rows[-1][2] == n
        assert all(a[2] == b[1] for a, b in zip(rows, rows[1:]))
    for a, b in zip(chunked, one_chunk):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_smaller_batch_reuses_the_buffers(dtype):
    # The trainer's last batch of an epoch is smaller than the buffers
    for sizes in [(12, 5, 3), (12, 40, 3)]:
        X, y, coefs, intercepts = _problem(sizes, 9)
        W = [w.astype(dtype) for w in coefs]
        b = [v.astype(dtype) for v in intercepts]
        fused = TrainStep("numba", W, b, 9)
        fused.loss_and_grads(X.astype(dtype), y, 0.0)
        loss = fused.loss_and_grads(X[:4].astype(dtype), y[:4], 0.0)
        ref = TrainStep("numpy", W, b, 4)
        ref_loss = ref.loss_and_grads(X[:4].astype(dtype), y[:4], 0.0)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert loss == pytest.approx(ref_loss, rel=tol)
        for g, h in zip(fused.grads, ref.grads):
            np.testing.assert_allclose(g, h, rtol=tol, atol=tol * np.max(np.abs(h)))


def test_nan_propagates(dtype):
    # NaN weights must give a NaN loss (the trainer's divergence check reads it)
    for sizes in [(8, 4, 3), (8, 40, 3)]:
        X, y, coefs, intercepts = _problem(sizes, 5)
        coefs[0][0, 0] = np.nan
        _, loss, grads = _run("numba", X, y, coefs, intercepts, dtype, 0.0)
        assert np.isnan(loss)


def test_chunks_run_once_each_this_thread_among_them():
    X, y, coefs, intercepts = _problem((30, 6, 4), 64)
    grads = [np.empty_like(w) for w in coefs]
    igrads = [np.empty_like(b) for b in intercepts]
    step = numba_step.NarrowStep(coefs, intercepts, grads, igrads, threads=2)
    ran = []

    def work(t):
        time.sleep(0.001)
        ran.append((t, threading.get_ident()))

    step._run(9, work)
    assert sorted(t for t, _ in ran) == list(range(9))
    assert threading.get_ident() in {thread for _, thread in ran}  # it works, not waits

    def fails_once(t):
        if t == 3:
            raise ValueError("chunk 3")
        work(t)

    ran.clear()
    with pytest.raises(ValueError, match="chunk 3"):
        step._run(9, fails_once)
    assert len(ran) == 8  # the others still ran, and were waited for


def _narrow_loss_in_child(queue):
    X, y, coefs, intercepts = _problem((30, 6, 4), 4096)
    _, loss, _ = _run("numba", X, y, coefs, intercepts, np.float64, 0.0)
    queue.put(loss)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_single_pass_works_in_a_forked_child():
    # The parent's thread pool has run; a forked child must not wait on its
    # (absent) threads.
    import multiprocessing

    X, y, coefs, intercepts = _problem((30, 6, 4), 4096)
    _, loss, _ = _run("numba", X, y, coefs, intercepts, np.float64, 0.0)
    assert numba_step._POOL  # 4096 rows were split over the pool
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_narrow_loss_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "the child hung or failed"
    assert queue.get(timeout=5) == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("sizes", [(784, 10, 10), (7, 3, 5), (33, 32, 2)], ids=str)
@pytest.mark.parametrize("n", [1, 6, 1003])
def test_narrow_predictions_match_reference(sizes, n, dtype):
    # predictions of single-pass networks run without BLAS (narrow_forward):
    # float and uint8 rows, every remainder of four rows
    from fastnn.engine.step import ForwardPass

    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (n, sizes[0]), dtype=np.uint8)
    coefs, intercepts = small_network(rng, sizes, dtype)
    fast = ForwardPass("numba", coefs, intercepts, n)
    assert fast._narrow_forward()
    ref = ForwardPass("numpy", coefs, intercepts, n)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for x in (pixels, (pixels / 255).astype(dtype)):
        want = ref.forward(x, 1 / 255)
        np.testing.assert_allclose(
            fast.forward(x, 1 / 255), want, rtol=tol, atol=tol * np.abs(want).max()
        )


@pytest.mark.parametrize("n", [2, 7, 1003])
def test_narrow_predictions_split_over_threads_equal_one_thread(dtype, n, monkeypatch):
    # narrow_predict hands chunks of rows to the pool: the same logits, bit for bit
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (n, 784), dtype=np.uint8)
    coefs, intercepts = small_network(rng, (784, 10, 10), dtype)
    W1T = np.ascontiguousarray(coefs[0].T)
    args = (x, 1 / 255, W1T, intercepts[0], coefs[1], intercepts[1])
    want = numba_step.narrow_forward(*args, np.empty((n, 10), dtype))
    monkeypatch.setattr(numba_step, "n_threads", lambda: 3)
    monkeypatch.setattr(numba_step, "MIN_PREDICT_ROWS_PER_THREAD", 1)
    out = np.full((n, 10), np.nan, dtype)
    assert numba_step.narrow_predict(*args, out) is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("compact", [False, True], ids=["dense", "compact"])
def test_the_single_pass_flushes_subnormal_gradients_to_zero(dtype, compact):
    # As the GEMM path's softmax head does (tests/contract): a confident row's
    # probability that underflows to a subnormal number gives a zero gradient.
    from fastnn.engine.compact import compact_dense

    far = -95.0 if dtype == np.float32 else -720.0  # exp(far) is subnormal
    x = np.array([[1.0, 0.0, 0.0]], dtype)
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype)  # h = (1, 0)
    W2 = np.array([[0.0, far, -3.0], [0.0, 0.0, 0.0]], dtype)  # logits (0, far, -3)
    coefs, intercepts = [W1, W2], [np.zeros(2, dtype), np.zeros(3, dtype)]
    grads = [np.empty_like(w) for w in coefs], [np.empty_like(b) for b in intercepts]
    step = numba_step.NarrowStep(coefs, intercepts, *grads)
    y = np.array([0], np.intp)
    if compact:
        step.compact(compact_dense(x), np.empty(0, np.intp), 0, 1, y, 1.0)
    else:
        step(x, y, 1.0, 1.0)
    dW2, db2 = step.coef_grads[1], step.intercept_grads[1]
    assert db2[1] == 0 and dW2[0, 1] == 0
    assert db2[2] != 0 and dW2[0, 2] != 0  # the other class's gradient as before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2,), (10,), (10, 10), (7, 3), (3, 40), (4, 32), (784, 16)])
def test_each_chunks_sums_sit_on_pages_of_their_own(dtype, shape):
    # the single pass's threads write their chunks' slots row after row: the
    # rows one slot uses and the next slot's are a page apart (a prefetcher
    # stays within a page), and each slot starts on a cache line
    from fastnn.engine.params import CACHE_LINE, PAGE, per_slot

    slots = per_slot(5, shape, dtype)
    used = int(np.prod(shape)) * np.dtype(dtype).itemsize
    assert slots.shape[0] == 5 and slots.shape[2:] == shape[1:]
    assert slots.shape[1] >= shape[0] and slots.dtype == dtype
    assert slots.ctypes.data % PAGE == 0
    assert slots.strides[0] % CACHE_LINE == 0
    assert slots.strides[0] - used >= PAGE
    assert slots.flags.c_contiguous and not slots.any()
