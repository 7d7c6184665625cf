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


def aligned_zeros(shape, dtype):
    """np.zeros(shape, dtype), its first element on a CACHE_LINE boundary."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(size + CACHE_LINE, np.uint8)
    skip = -raw.ctypes.data % CACHE_LINE
    return raw[skip : skip + size].view(dtype).reshape(shape)


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
