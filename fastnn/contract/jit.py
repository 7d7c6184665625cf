"""`njit` that survives a read-only install.

With ``cache=True``, Numba raises RuntimeError at decoration time, i.e. while
fastnn is imported, when neither the package's ``__pycache__`` nor
NUMBA_CACHE_DIR nor the user cache directory is writable (a system-wide or
container install). fastnn then compiles without caching, with one warning.
"""

import warnings

import numba

_warned = False


def njit(*args, **kwargs):
    """`numba.njit`, falling back to ``cache=False`` when no cache is writable."""
    if args and callable(args[0]):  # bare @njit
        return njit(**kwargs)(args[0])

    def decorate(func):
        global _warned
        try:
            return numba.njit(*args, **kwargs)(func)
        except RuntimeError as exc:
            if not kwargs.get("cache") or "no locator available" not in str(exc):
                raise
        if not _warned:
            _warned = True
            warnings.warn(
                "fastnn: no writable Numba cache directory (read-only install?); "
                "kernels are compiled on every start. Set NUMBA_CACHE_DIR to a "
                "writable directory to cache them.",
                RuntimeWarning,
                stacklevel=2,
            )
        return numba.njit(*args, **{**kwargs, "cache": False})(func)

    return decorate
