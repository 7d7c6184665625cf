"""Choosing a backend by name."""

import importlib

BACKENDS = {"numba": "fastnn.kernels", "numpy": "fastnn.reference"}


def get_backend(name="numba"):
    """Return the backend module for `name` ("numba" or "numpy").

    Both modules export the same kernel contract; each also has `ops`, its
    unchecked kernels, which the trainer calls after validating once per fit.
    """
    if isinstance(name, str) and name in BACKENDS:
        return importlib.import_module(BACKENDS[name])
    raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {name!r}")
