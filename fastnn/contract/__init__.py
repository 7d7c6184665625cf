"""The kernel contract and both backends' unchecked kernels.

`spec` declares the contract once; `checks` validates arguments; `numpy_ops`
and `numba_ops` (with `numba_math`'s element-wise blocks) compute. The public,
validating modules are `fastnn.reference` and `fastnn.kernels`.
"""
