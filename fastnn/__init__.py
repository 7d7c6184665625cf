"""fastnn: Numba-jitted kernels and a thin trainer for fully-connected networks.

`fastnn.kernels` (Numba) and `fastnn.reference` (NumPy) implement one kernel
contract; `fastnn.MLPClassifier` trains on either.
"""

from .backend import get_backend
from .mlp import MLPClassifier
from .serialization import load

__version__ = "0.1.0"
__all__ = ["MLPClassifier", "get_backend", "load", "__version__"]
