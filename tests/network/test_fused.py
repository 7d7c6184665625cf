"""The Numba backend's fused training step against the NumPy reference's kernel-by-kernel step.

`TrainStep.loss_and_grads` runs one fused call on the Numba backend (the GEMM
path, or the single pass over x for narrow one-hidden-layer networks) and a
dozen reference kernels on the NumPy backend; both must give the same loss and
gradients. Float32 results are held to the reference's own float32 error,
measured against a float64 reference run: a wrong index or a missed term is
off by orders of magnitude more than that.
"""

import os

import numpy as np
import pytest

from fastnn import _numba_step, kernels, reference
from fastnn.network import TrainStep

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


def _problem(sizes, n, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n).astype(np.intp)
    coefs = [rng.standard_normal((k, m)) * np.sqrt(2.0 / k) * scale
             for k, m in zip(sizes[:-1], sizes[1:])]
    intercepts = [rng.standard_normal(m) * 0.1 for m in sizes[1:]]
    return X, y, coefs, intercepts


def _run(backend, X, y, coefs, intercepts, dtype, alpha):
    step = TrainStep(backend.ops, [W.astype(dtype) for W in coefs],
                     [b.astype(dtype) for b in intercepts], X.shape[0])
    loss = step.loss_and_grads(X.astype(dtype), y, alpha)
    return step, loss, [g.copy() for g in step.grads]


def _check(sizes, n, dtype, alpha, seed=0, scale=1.0):
    problem = _problem(sizes, n, seed, scale)
    _, exact_loss, exact = _run(reference, *problem, np.float64, alpha)
    _, ref_loss, ref = _run(reference, *problem, dtype, alpha)
    step, loss, fused = _run(kernels, *problem, dtype, alpha)
    eps = np.finfo(dtype).eps
    for name, got, want, truth in zip(
        [f"dW{i}" for i in range(len(sizes) - 1)] + [f"db{i}" for i in range(len(sizes) - 1)],
        fused, ref, exact,
    ):
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
    assert isinstance(step._fused, _numba_step._NarrowStep)


@pytest.mark.parametrize("sizes,n", GEMM, ids=lambda v: str(v))
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_gemm_path_matches_reference(sizes, n, alpha, dtype):
    step = _check(sizes, n, dtype, alpha)
    assert not isinstance(step._fused, _numba_step._NarrowStep)


@pytest.mark.parametrize("sizes,n", [((50, 8, 6), 41), ((50, 40, 6), 41)])
def test_extreme_logits(sizes, n, dtype):
    # weights scaled so that logits reach the hundreds to thousands: an
    # unshifted softmax overflows, a shared max across rows would be wrong
    _check(sizes, n, dtype, 0.0, seed=3, scale=300.0)


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_every_thread_count_gives_the_same_gradients(monkeypatch, threads):
    # Row chunks as small as 16 rows: the batch is split into up to
    # threads * _CHUNKS_PER_THREAD chunks, each with its own partial sums,
    # which must add up to the one-chunk result. The thread count is set here
    # rather than read from the machine, so that a one-core CI runner splits
    # the batch too; the chunks that ran are counted, not assumed.
    sizes, n = (30, 6, 4), 203
    X, y, coefs, intercepts = _problem(sizes, n)
    _, _, one_chunk = _run(kernels, X, y, coefs, intercepts, np.float64, 0.0)
    monkeypatch.setattr(_numba_step, "_MIN_ROWS_PER_THREAD", 16)
    monkeypatch.setattr(_numba_step, "n_threads", lambda: threads)
    rows = []
    chunk_rows = _numba_step._NarrowStep._rows

    def counted(self, t, x, y, start, stop, inv_n):
        rows.append((t, start, stop))
        return chunk_rows(self, t, x, y, start, stop, inv_n)

    monkeypatch.setattr(_numba_step._NarrowStep, "_rows", counted)
    _, _, chunked = _run(kernels, X, y, coefs, intercepts, np.float64, 0.0)
    slots = threads * _numba_step._CHUNKS_PER_THREAD if threads > 1 else 1
    expected = min(slots, n // 16)
    assert len(rows) == expected
    # the chunks, in slot order, cover every row once
    rows.sort()
    assert [t for t, _, _ in rows] == list(range(expected))
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
        fused = TrainStep(kernels.ops, W, b, 9)
        fused.loss_and_grads(X.astype(dtype), y, 0.0)
        loss = fused.loss_and_grads(X[:4].astype(dtype), y[:4], 0.0)
        ref = TrainStep(reference.ops, W, b, 4)
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
        _, loss, grads = _run(kernels, X, y, coefs, intercepts, dtype, 0.0)
        assert np.isnan(loss)


def _narrow_loss_in_child(queue):
    X, y, coefs, intercepts = _problem((30, 6, 4), 4096)
    _, loss, _ = _run(kernels, X, y, coefs, intercepts, np.float64, 0.0)
    queue.put(loss)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_single_pass_works_in_a_forked_child():
    # The parent's thread pool has run; a forked child must not wait on its
    # (absent) threads.
    import multiprocessing

    X, y, coefs, intercepts = _problem((30, 6, 4), 4096)
    _, loss, _ = _run(kernels, X, y, coefs, intercepts, np.float64, 0.0)
    assert _numba_step._POOL  # 4096 rows were split over the pool
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_narrow_loss_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "the child hung or failed"
    assert queue.get(timeout=5) == pytest.approx(loss, rel=1e-12)
