"""Helpers shared by the test layers: comparison bounds, the kernel test
shapes, and writers/servers for the small data files the tests make.

Test files import from here (``from tests.helpers import ...``), never from
one another; fixtures live in ``tests/conftest.py``.
"""

import contextlib
import functools
import gzip
import http.server
import pathlib
import struct
import threading

import numpy as np

from fastnn import datasets

REPO = pathlib.Path(__file__).resolve().parents[1]

DTYPES = [np.float32, np.float64]

# (n, k, m): batch 1, odd and prime sizes, wide and narrow layers, one output
SHAPES = [
    (1, 1, 1),
    (1, 784, 10),
    (2, 3, 1),
    (7, 13, 5),
    (31, 1, 17),
    (64, 257, 3),
    (97, 11, 128),
    (3, 1024, 2),
]


def close(actual, expected, dtype, scale=1.0, terms=1):
    """Assert that a kernel's result equals the reference's within rounding.

    Both sides round differently only in summation order, so the bound is
    the dtype's epsilon times the number of summed terms and the magnitude
    of the values summed (`scale`): ~1e-16 relative for float64, ~1e-7 for
    float32, grown by sqrt(terms) for a random-walk error.
    """
    eps = np.finfo(dtype).eps
    bound = 8 * eps * np.sqrt(terms) * scale
    np.testing.assert_allclose(actual, expected, rtol=8 * eps * np.sqrt(terms), atol=bound)


# -- data files ----------------------------------------------------------------


def idx_bytes(array):
    """`array` (uint8) in the IDX format: magic 0x0000080N, big-endian sizes, data."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(directory, subset="train", n=7, gz=False, rng=None):
    """Images (n, 4, 3) and labels of one MNIST subset, as IDX files in `directory`."""
    rng = rng or np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    names = datasets.IDX_FILES[subset]
    for name, array in zip(names, (images, labels)):
        data = idx_bytes(array)
        path = directory / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
    return images, labels


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests = []

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()


@contextlib.contextmanager
def serve(directory):
    """A static HTTP server on 127.0.0.1 for `directory`; yields (base URL, request log)."""
    handler = type("Handler", (_Handler,), {"requests": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mnist/", handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
