"""fastnn: Numba-jitted kernels and a thin trainer for fully-connected networks.

`fastnn.kernels` (Numba) and `fastnn.reference` (NumPy) implement one kernel
contract; `fastnn.MLPClassifier` and `fastnn.MLPRegressor` train on either.
"""

import importlib
import sys

from fastnn._moved import MovedModuleFinder
from fastnn.backend import get_backend

# last on the path: only names that no longer exist as files reach it
if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(MovedModuleFinder())

__version__ = "0.1.0"
__all__ = [
    "DivergenceError",
    "MLPClassifier",
    "MLPRegressor",
    "from_sklearn",
    "get_backend",
    "load",
    "__version__",
]

# Imported on first use: fastnn.estimators.mlp pulls in scikit-learn (about a second), which
# `import fastnn` or `import fastnn.kernels` alone should not pay for.
_LAZY = {
    "DivergenceError": "fastnn.estimators.mlp",
    "MLPClassifier": "fastnn.estimators.mlp",
    "MLPRegressor": "fastnn.estimators.mlp",
    "from_sklearn": "fastnn.estimators.mlp",
    "load": "fastnn.estimators.mlp",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
