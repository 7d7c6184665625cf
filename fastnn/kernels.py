"""Numba backend: the kernel contract over jitted kernels.

The jitted loops live in `fastnn._numba_ops` (unchecked, `cache=True`); this
module holds the validating public functions, with the same names, signatures
and errors as `fastnn.reference`. Validation runs in Python before any jitted
code does.
"""

from . import _numba_ops as ops
from ._api import CONTRACT, define_contract

__all__ = list(CONTRACT)
NAME = "numba"

define_contract(globals(), ops)
