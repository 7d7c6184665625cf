"""fastnn's asv benchmarks.

Thread counts are fixed here, before NumPy, SciPy or Numba is imported (asv
imports this package first in every benchmark process): OpenBLAS reads these
variables once, when it loads, and NumPy and SciPy each load their own copy.
"""

import os

THREADS = 2
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = str(THREADS)
