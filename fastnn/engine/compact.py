"""X's nonzeros by row, the compact form the compiled loop's first layer reads.

A CSR matrix's three arrays: row pointers (``indptr``, n + 1 entries), the
column of each nonzero (``indices``) and its value (``data``, as stored:
uint8 bytes, scaled by the input scale as they are read, or floats of the
weights' dtype). Sparse X already is one; dense X is converted once per fit
(`compact_dense`) when it is sparse enough that the first layer's work over
its nonzeros beats the dense GEMM (`use_compact`). Skipping zeros changes
only the order of the first layer's sums.

Memory of the compact form of dense X: ``8 (n + 1) + nnz (c + v)`` bytes,
c = 2 (uint16 columns, up to 65,536 features) or 4 (int32), v = X's itemsize.
"auto" builds it only when that is at most X's own size, so a fit holds at
most twice X (MNIST's uint8 pixels, 19 % nonzero: 0.58 X's size; float32
one-hot tables at 5 %: 0.3). The parallel epoch holds a second copy,
split by its threads' inputs (`split_by_columns`: the same entries, and n + 1
row pointers per thread).
"""

import numpy as np

from fastnn.contract.jit import njit

# Density (nonzeros / entries) below which dense X trains on its compact form
# on the GEMM path, where its GEMMs run on BLAS's threads (the serial loop with
# OpenBLAS at 2 threads or more). Measured through fit on Intel Xeon (AVX-512),
# 2 threads, uint8 rows of random density, widths 128 and 512, float32 and
# float64 (docs/design.md, "Skipping zeros"): the compact path wins by
# 1.55-1.85x at 5 %, 1.13-1.82x at 10 %, 0.82-1.33x at 15 % (the 512-wide
# lose), and loses by 0.64-0.91x at 20 %.
CROSSOVER = 0.1
# The same where each thread's GEMMs run on one BLAS thread: the parallel
# epoch (`fastnn.engine.numba_parallel`, more than one thread), whose dense
# first layer reads only a thread's share of the inputs, and the serial loop
# with BLAS at 1 thread. Measured through fit on AMD EPYC Zen 5 (AVX-512),
# float32, uint8 rows of random density, 784 inputs, widths 128-512, batch
# 64-200 (docs/design.md, "Skipping zeros"): on 2 threads the compact path
# wins by 1.21-1.56x at 20 % (and on real MNIST, 19 %, 1.2-1.5x), 1.00-1.21x
# at 30 %, and loses by 0.86-0.97x at 40 %; on 1 thread 1.43-1.56x, 1.14-1.25x
# and 0.89-1.07x.
ONE_BLAS_THREAD_CROSSOVER = 0.2
# The same for predictions, where the form is built per chunk of rows at each
# call and the dense forward pass is one large GEMM on every BLAS thread: the
# compact one wins by 1.4-2.7x at 2 %, loses by 0.9-1.0x at 5 % (float32) or
# wins by 1.0-1.7x (float64); narrow networks' BLAS-free pass is as fast at 2 %
# (docs/design.md, "Skipping zeros").
PREDICT_CROSSOVER = 0.03
# The same for the single pass (`numba_step.compact_narrow_rows`: one hidden
# ReLU layer of at most 32 units, softmax head), measured against the dense
# single pass (784-10-10, one thread, interleaved; see docs/design.md,
# "Skipping zeros"): with a row's units in registers the compact pass wins by
# 2-2.8x at 10 %, 1.7-2.2x on real MNIST (19 %), 1.1-1.4x at 30 %, and loses
# by 0.86-0.96x at 40 %, in both dtypes.
NARROW_CROSSOVER = 0.3


@njit(cache=True, nogil=True)
def _row_counts(X, counts):
    for i in range(X.shape[0]):
        c = 0
        for j in range(X.shape[1]):
            c += X[i, j] != 0
        counts[i] = c


@njit(cache=True, nogil=True)
def _fill(X, indptr, indices, data):
    for i in range(X.shape[0]):
        p = indptr[i]
        for j in range(X.shape[1]):
            v = X[i, j]
            if v != 0:
                indices[p] = j
                data[p] = v
                p += 1


def count_nonzeros(X):
    """Nonzeros per row of dense 2-D X (int64), in compiled code."""
    counts = np.empty(X.shape[0], np.int64)
    _row_counts(X, counts)
    return counts


def compact_dense(X, counts=None):
    """(indptr, indices, data) of dense C-contiguous X's nonzeros, in row order.

    Columns as uint16 when X has at most 65,536 of them, else int32; values in
    X's dtype. `counts`: `count_nonzeros(X)`, if already known.
    """
    if counts is None:
        counts = count_nonzeros(X)
    indptr = np.zeros(X.shape[0] + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    index_type = np.uint16 if X.shape[1] <= 65536 else np.int32
    indices = np.empty(nnz, index_type)
    data = np.empty(nnz, X.dtype)
    _fill(X, indptr, indices, data)
    return indptr, indices, data


def compact_nbytes(n, k, nnz, itemsize):
    """Bytes of the compact form of an n x k dense X with nnz nonzeros."""
    return 8 * (n + 1) + nnz * ((2 if k <= 65536 else 4) + itemsize)


@njit(cache=True, nogil=True)
def _count_in(indptr, indices, lo, hi):
    count = 0
    for i in range(indptr.shape[0] - 1):
        for p in range(indptr[i], indptr[i + 1]):
            count += lo <= indices[p] < hi
    return count


@njit(cache=True, nogil=True)
def _fill_in(indptr, indices, data, lo, hi, out_ptr, out_indices, out_data):
    q = 0
    for i in range(indptr.shape[0] - 1):
        out_ptr[i] = q
        for p in range(indptr[i], indptr[i + 1]):
            c = indices[p]
            if lo <= c < hi:
                out_indices[q] = c
                out_data[q] = data[p]
                q += 1
    out_ptr[indptr.shape[0] - 1] = q


def split_by_columns(parts, cuts):
    """The compact form (indptr, indices, data) as one per column range [cuts[t], cuts[t + 1]).

    Each part keeps X's column indices and each row's order of entries, with
    int64 row pointers: the parallel epoch's threads each read the entries of
    their own inputs (`fastnn.engine.numba_parallel`). Together they hold as
    many entries as the form itself, plus (n + 1) row pointers each.
    """
    indptr, indices, data = parts
    split = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        nnz = _count_in(indptr, indices, lo, hi)
        out = (np.empty(indptr.shape[0], np.int64), np.empty(nnz, indices.dtype))
        out += (np.empty(nnz, data.dtype),)
        _fill_in(indptr, indices, data, lo, hi, *out)
        split.append(out)
    return split


def with_flags(parts, n_features):
    """(indptr, indices, data, touched) as the compiled loop reads it: the
    first layer's per-column flags (`numba_step.compact_weight_grad`), all 0."""
    return (*parts, np.zeros(n_features, np.uint8))


def csr_parts(X):
    """A scipy CSR matrix's (indptr, indices, data), as they are (no copy)."""
    return X.indptr, X.indices, X.data


def use_compact(skip_zeros, X, memory_mapped, crossover=CROSSOVER):
    """The compact form of dense X for the compiled loop, or None for the dense path.

    skip_zeros: True always builds it, False never; "auto" when X's density
    is under `crossover` (CROSSOVER for the GEMM path, NARROW_CROSSOVER for
    the single pass; and the form at most X's size). A memory-mapped X keeps
    the dense path (it may be larger than memory).
    """
    if not skip_zeros or memory_mapped or X.size == 0:
        return None
    if isinstance(skip_zeros, str):  # "auto"
        # NumPy's count: a dense fit compiles nothing more for the choice
        nnz = int(np.count_nonzero(X))
        n, k = X.shape
        if nnz > crossover * X.size:
            return None
        if compact_nbytes(n, k, nnz, X.itemsize) > X.nbytes:
            return None
    return compact_dense(X)
