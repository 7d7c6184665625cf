"""NumPy reference backend: the oracle the Numba kernels are tested against.

The arithmetic lives in `fastnn._numpy_ops` (plain NumPy, unchecked); this
module holds the validating public functions of the kernel contract, with the
same names, signatures and errors as `fastnn.kernels`.
"""

from . import _numpy_ops as ops
from ._api import CONTRACT, define_contract

__all__ = list(CONTRACT)
NAME = "numpy"

define_contract(globals(), ops)
