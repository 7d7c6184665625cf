"""`njit` that survives a read-only install, the specialisation of jitted
closures, and a cache that is never stale.

With ``cache=True``, Numba raises RuntimeError at decoration time, i.e. while
fastnn is imported, when neither the package's ``__pycache__`` nor
NUMBA_CACHE_DIR nor the user cache directory is writable (a system-wide or
container install). fastnn then compiles without caching, with one warning.

Numba validates a cache entry against its own function's source file only, but
a compiled function carries the code of every jitted function it calls and the
constants it reads, from other files: the epoch loop (engine/numba_epoch.py)
holds the step (engine/numba_step.py), which holds the activations
(contract/numba_math.py) and the codes of contract/tables.py. After an edit or
an upgrade that changed only a callee's file, Numba would load the old loop.
So fastnn's entries are stamped with the hash of every module jitted code can
reach (`STAMPED`), through cache locators that differ from Numba's own only in
that stamp.
"""

import functools
import glob
import hashlib
import os
import warnings

import numba
from numba.core import caching

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


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What jitted code can reach: every module of the contract layer, and the
# engine's jitted modules (tests/contract/test_cache_stamp.py fails on a jitted
# module outside these)
STAMPED = ("contract/*.py", "engine/numba_*.py", "engine/compact.py")


def stamped_files():
    """The modules whose content stamps every fastnn cache entry, sorted."""
    found = set()
    for pattern in STAMPED:
        found.update(glob.glob(os.path.join(_PACKAGE, *pattern.split("/"))))
    return sorted(found)


@functools.lru_cache(maxsize=1)
def sources_stamp():
    """SHA-256 over the names and contents of `stamped_files()`."""
    digest = hashlib.sha256()
    for path in stamped_files():
        digest.update(os.path.relpath(path, _PACKAGE).encode())
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.digest()


def _stamped(locator):
    """`locator` (one of Numba's) for fastnn's functions, with `sources_stamp()`."""

    class Stamped(locator):
        def get_source_stamp(self):
            return sources_stamp()

        @classmethod
        def from_function(cls, py_func, py_file):
            inside = os.path.abspath(py_file).startswith(_PACKAGE + os.sep)
            return super().from_function(py_func, py_file) if inside else None

    Stamped.__name__ = Stamped.__qualname__ = f"Fastnn{locator.__name__.lstrip('_')}"
    return Stamped


def _install_locators():
    # Numba tries its locators in order and keeps the first that works; these go
    # first, in Numba's order, and decline every file outside fastnn. A Numba
    # whose caching module has other names keeps its own (stamped per file).
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    bases = [getattr(caching, n, None) or getattr(caching, "_" + n, None) for n in names]
    if impl is None or None in bases:
        return
    classes = impl._locator_classes
    if not any(getattr(c, "__name__", "").startswith("Fastnn") for c in classes):
        classes[:0] = [_stamped(base) for base in bases]


_install_locators()
