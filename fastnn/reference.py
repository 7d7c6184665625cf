"""NumPy reference backend: the oracle the Numba kernels are tested against.

The arithmetic lives in `fastnn.contract.numpy_ops` (plain NumPy, unchecked); this
module holds the validating public functions of the kernel contract, with the
same names, signatures and errors as `fastnn.kernels`.
"""

from fastnn.contract import numpy_ops as ops
from fastnn.contract.spec import CONTRACT, define_contract

__all__ = list(CONTRACT)
NAME = "numpy"

define_contract(globals(), ops)
