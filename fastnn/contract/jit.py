"""`njit` that survives a read-only install, and the specialisation of jitted closures.

With ``cache=True``, Numba raises RuntimeError at decoration time, i.e. while
fastnn is imported, when neither the package's ``__pycache__`` nor
NUMBA_CACHE_DIR nor the user cache directory is writable (a system-wide or
container install). fastnn then compiles without caching, with one warning.
"""

import warnings

import numba

_warned = False


def njit(*args, **kwargs):
    """`numba.njit`, falling back to ``cache=False`` when no cache is writable.

    No C callback wrapper is built (``no_cfunc_wrapper``): nothing in fastnn
    takes a jitted function's address, and each wrapper costs ~0.04 s of compile.
    """
    if args and callable(args[0]):  # bare @njit
        return njit(**kwargs)(args[0])
    kwargs.setdefault("no_cfunc_wrapper", True)

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


# For functions that only jitted code calls: no Python entry point is built for
# them, about 0.1 s of compile each (they still cache, and callers link them).
INTERNAL = {"no_cpython_wrapper": True}


def specialise(func, suffix, **options):
    """`njit(cache=True)` of closure `func`, whose constant codes are its closure variables.

    The closure's cells (plain ints) are part of Numba's cache key; the name
    `suffix` gives each specialisation its own index file, so that processes
    compiling different ones at once never write the same index.
    """
    func.__qualname__ = func.__name__ = f"{func.__name__}_{suffix}"
    return njit(cache=True, **options)(func)
