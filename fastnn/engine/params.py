"""All of a network's weights and biases in one flat array.

As llm.c does, the per-layer arrays are views of one buffer: an optimizer
updates every parameter in one call, L-BFGS and an MPI allreduce take the
buffer as it is. The order is scikit-learn's `_pack`: every layer's weights
(row-major), then every layer's biases, so the L2 term covers one prefix.
"""

import numpy as np

# Buffers that threads split between them start on a cache line: the parallel
# epoch gives each thread whole lines of every row of the first layer's
# weights, so that no line is written by two cores (docs/design.md section 7).
CACHE_LINE = 64


# What one thread alone writes lies on pages of its own. A core's hardware
# prefetchers pull in lines near the ones it touches, within a page: two
# threads whose sums were 64-256 bytes apart slowed each other as lines
# written by one were fetched by the other (the compact single pass of
# 41,000 MNIST rows on 2 threads, AMD EPYC Zen 5: 9.5-10.1 ms with slots 64
# bytes apart, 8.6-9.2 at 256, 7.6-7.9 from 512 bytes to a page; 14.8 on 1).
PAGE = 4096


def aligned_zeros(shape, dtype, align=CACHE_LINE):
    """np.zeros(shape, dtype), its first element on an `align`-byte boundary."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(size + align, np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip : skip + size].view(dtype).reshape(shape)


def private_zeros(shape, dtype):
    """Zeros that one thread alone writes: they start on a page, so no two of them share one."""
    return aligned_zeros(shape, dtype, PAGE)


def per_slot(slots, shape, dtype):
    """Zeros (slots, *shape'), one slot per thread or row chunk, no two sharing a page.

    shape with its first axis lengthened (the rows added unused) by at least
    a page, to whole cache lines: each slot starts on a line, and a page of
    padding lies between the rows one slot uses and the next slot's. The
    array starts on a page, as `private_zeros` do.
    """
    rest = max(1, int(np.prod(shape[1:])) * np.dtype(dtype).itemsize)
    rows = shape[0] + -(-PAGE // rest)
    while rows * rest % CACHE_LINE:
        rows += 1
    return aligned_zeros((slots, rows, *shape[1:]), dtype, PAGE)


class FlatParameters:
    """Weights (k_i, m_i) and biases (m_i,) of layers `layer_sizes`, as views of `data`.

    Parameters
    ----------
    layer_sizes : sequence of int
        Input width, hidden widths, output width.
    dtype : numpy dtype
    data : ndarray, optional
        A 1-D buffer of `size` elements to view (default: zeros, on a cache line).
    """

    def __init__(self, layer_sizes, dtype, data=None):
        self.layer_sizes = tuple(int(s) for s in layer_sizes)
        pairs = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))
        self.n_coef = sum(k * m for k, m in pairs)
        self.size = self.n_coef + sum(m for _, m in pairs)
        if data is None:
            data = aligned_zeros(self.size, dtype)
        elif data.shape != (self.size,) or data.dtype != np.dtype(dtype):
            raise ValueError(
                f"data must be {np.dtype(dtype)} of shape ({self.size},), "
                f"got {data.dtype} {data.shape}"
            )
        self.data = data
        self.coefs, self.intercepts = [], []
        offset = 0
        for k, m in pairs:
            self.coefs.append(data[offset : offset + k * m].reshape(k, m))
            offset += k * m
        for _, m in pairs:
            self.intercepts.append(data[offset : offset + m])
            offset += m

    @classmethod
    def pack(cls, coefs, intercepts, dtype=None):
        """A new flat buffer holding copies of `coefs` and `intercepts`."""
        dtype = np.dtype(dtype or coefs[0].dtype)
        sizes = [coefs[0].shape[0]] + [W.shape[1] for W in coefs]
        flat = cls(sizes, dtype)
        for dst, src in zip(flat.coefs + flat.intercepts, list(coefs) + list(intercepts)):
            dst[...] = src
        return flat

    def views_of(self, coefs, intercepts):
        """Whether `coefs` and `intercepts` are exactly this buffer's views.

        Checked by address, not against `self.coefs`: an estimator's
        ``coefs_`` is this same list, so ``model.coefs_[0] = W`` changes both.
        """
        pairs = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))
        shapes = [(k, m) for k, m in pairs] + [(m,) for _, m in pairs]
        theirs = list(coefs) + list(intercepts)
        if len(theirs) != len(shapes):
            return False
        address = self.data.__array_interface__["data"][0]
        for a, shape in zip(theirs, shapes):
            if not (
                isinstance(a, np.ndarray)
                and a.shape == shape
                and a.dtype == self.data.dtype
                and a.flags.c_contiguous
                and a.__array_interface__["data"][0] == address
            ):
                return False
            address += int(np.prod(shape)) * self.data.itemsize
        return True
