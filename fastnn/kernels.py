"""Numba backend: the kernel contract over jitted kernels.

The jitted loops live in `fastnn.contract.numba_ops` (unchecked, `cache=True`); this
module holds the validating public functions, with the same names, signatures
and errors as `fastnn.reference`. Validation runs in Python before any jitted
code does.
"""

from fastnn.contract import numba_ops as ops
from fastnn.contract.spec import CONTRACT, define_contract

__all__ = list(CONTRACT)
NAME = "numba"

define_contract(globals(), ops)
