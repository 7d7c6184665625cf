"""The CSR x dense pair: a sparse input's affine layer and its weight gradient.

Both backends against a dense product of the same matrix, in float32 and
float64, for the shapes of the other kernel tests at several densities (empty
rows and an all-zero matrix included), and the structure checks that keep a
malformed CSR matrix out of the jitted loops.
"""

import numpy as np
import pytest
from scipy import sparse

from tests.helpers import SHAPES, close


def csr(rng, n, k, density, dtype, index_dtype=np.int32):
    dense = rng.standard_normal((n, k)) * (rng.random((n, k)) < density)
    x = sparse.csr_matrix(dense.astype(dtype))
    return (x.indptr.astype(index_dtype), x.indices.astype(index_dtype), x.data, x.toarray())


def scale_of(a, b):
    return (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))).max() + 1.0


@pytest.mark.parametrize("density", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("n,k,m", SHAPES)
def test_csr_forward_and_weight_gradient_equal_the_dense_products(
    backend, dtype, rng, n, k, m, density
):
    indptr, indices, data, dense = csr(rng, n, k, density, dtype)
    W = rng.standard_normal((k, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    out = backend.csr_linear_forward(indptr, indices, data, W, b)
    assert out.dtype == dtype and out.shape == (n, m)
    close(out, dense @ W + b, dtype, scale_of(dense, W), terms=k)
    dout = rng.standard_normal((n, m)).astype(dtype)
    dW = backend.csr_linear_backward(indptr, indices, data, dout, W)
    assert dW.dtype == dtype and dW.shape == (k, m)
    close(dW, dense.T @ dout, dtype, scale_of(dense.T, dout), terms=n)


def test_int64_indices_and_buffers_given(backend, rng):
    indptr, indices, data, dense = csr(rng, 9, 7, 0.4, np.float64, np.int64)
    W, b = rng.standard_normal((7, 3)), rng.standard_normal(3)
    out = np.full((9, 3), np.nan)
    assert backend.csr_linear_forward(indptr, indices, data, W, b, out=out) is out
    close(out, dense @ W + b, np.float64, scale_of(dense, W), terms=7)
    dW = np.full((7, 3), np.nan)
    dout = rng.standard_normal((9, 3))
    assert backend.csr_linear_backward(indptr, indices, data, dout, W, dW=dW) is dW
    close(dW, dense.T @ dout, np.float64, scale_of(dense.T, dout), terms=9)


def test_a_malformed_matrix_is_refused_before_the_loop(backend, rng):
    indptr, indices, data, _ = csr(rng, 4, 5, 1.0, np.float64)
    W, b = rng.standard_normal((5, 2)), np.zeros(2)
    bad_column = indices.copy()
    bad_column[0] = 5  # one past W's rows: an out-of-bounds read
    with pytest.raises(ValueError, match=r"indices must be in \[0, 5\)"):
        backend.csr_linear_forward(indptr, bad_column, data, W, b)
    falling = indptr.copy()
    falling[1], falling[2] = falling[2], falling[1] - 1
    with pytest.raises(ValueError, match="indptr must rise from 0"):
        backend.csr_linear_forward(falling, indices, data, W, b)
    with pytest.raises(TypeError, match="indices has dtype int64 but indptr int32"):
        backend.csr_linear_forward(indptr, indices.astype(np.int64), data, W, b)
    with pytest.raises(TypeError, match="data must be a numpy.ndarray of W's dtype float64"):
        backend.csr_linear_forward(indptr, indices, data.astype(np.float32), W, b)
    with pytest.raises(ValueError, match="indices and data must have the same length"):
        backend.csr_linear_backward(indptr, indices[:-1], data, np.ones((4, 2)), W)
    with pytest.raises(ValueError, match=r"dout must have shape \(4, 2\)"):
        backend.csr_linear_backward(indptr, indices, data, np.ones((3, 2)), W)
    with pytest.raises(ValueError, match="out must not share memory with data"):
        backend.csr_linear_forward(indptr, indices, data, W, b, out=data[:8].reshape(4, 2))
