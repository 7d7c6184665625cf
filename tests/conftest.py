import numpy as np
import pytest

from fastnn import kernels, reference
from tests.helpers import DTYPES


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(params=[reference, kernels], ids=["numpy", "numba"])
def backend(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
