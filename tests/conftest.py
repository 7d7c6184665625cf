import numpy as np
import pytest

from fastnn import kernels, reference

DTYPES = [np.float32, np.float64]

# (n, k, m): batch 1, odd and prime sizes, wide and narrow layers, one output
SHAPES = [
    (1, 1, 1),
    (1, 784, 10),
    (2, 3, 1),
    (7, 13, 5),
    (31, 1, 17),
    (64, 257, 3),
    (97, 11, 128),
    (3, 1024, 2),
]


def close(actual, expected, dtype, scale=1.0, terms=1):
    """Assert that a kernel's result equals the reference's within rounding.

    Both sides round differently only in summation order, so the bound is
    the dtype's epsilon times the number of summed terms and the magnitude
    of the values summed (`scale`): ~1e-16 relative for float64, ~1e-7 for
    float32, grown by sqrt(terms) for a random-walk error.
    """
    eps = np.finfo(dtype).eps
    bound = 8 * eps * np.sqrt(terms) * scale
    np.testing.assert_allclose(actual, expected, rtol=8 * eps * np.sqrt(terms), atol=bound)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(params=[reference, kernels], ids=["numpy", "numba"])
def backend(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
