"""Cold import and first-step compile, each in a fresh interpreter (timeraw_)."""

import os
import subprocess
import sys
import tempfile

# Untimed: build a config's step without running it. NUMBA_CACHE_DIR is set by
# the caller (a fresh empty directory: cold; a populated one: warm cache).
_BUILD = """
import numpy as np
from fastnn import get_backend
from fastnn.network import TrainStep
from fastnn.optim import SGDOptimizer
sizes, n = {sizes!r}, {n!r}
rng = np.random.default_rng(0)
X = rng.random((n, sizes[0])).astype(np.float32)
y = rng.integers(0, sizes[-1], n).astype(np.intp)
coefs = [rng.standard_normal((k, m)).astype(np.float32) * 0.05
         for k, m in zip(sizes[:-1], sizes[1:])]
intercepts = [np.zeros(m, np.float32) for m in sizes[1:]]
ops = get_backend("numba").ops
"""
# Timed: the first step, compile included (TrainStep, the step, the update)
_FIRST_STEP = """
step = TrainStep(ops, coefs, intercepts, n)
optimizer = SGDOptimizer(step.params, ops, 0.1, momentum=0.0)
step.loss_and_grads(X, y, 0.0)
optimizer.update_params(step.params, step.grads)
"""
# a: the single pass for narrow layers; b: the GEMM path
STEP_CONFIGS = {"a": ((784, 10, 10), 4096), "b": ((784, 128, 10), 128)}


def timeraw_import_fastnn():
    return "import fastnn"


def timeraw_import_fastnn_kernels():
    return "import fastnn.kernels"


class FirstStepCold:
    """Compile from an empty Numba cache."""

    params = [list(STEP_CONFIGS)]
    param_names = ["config"]
    number = 1
    repeat = 3
    warmup_time = 0

    def timeraw_first_step(self, config):
        sizes, n = STEP_CONFIGS[config]
        # a fresh empty cache directory for each interpreter
        setup = ("import os, tempfile\n"
                 "os.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp(prefix='fastnn-cold-')\n"
                 + _BUILD.format(sizes=sizes, n=n))
        return _FIRST_STEP, setup


class FirstStepWarmCache:
    """Load the compiled step from a Numba cache that a previous process wrote."""

    params = [list(STEP_CONFIGS)]
    param_names = ["config"]
    number = 1
    repeat = 3
    warmup_time = 0

    def setup(self, config):
        sizes, n = STEP_CONFIGS[config]
        self._previous = os.environ.get("NUMBA_CACHE_DIR")
        self._dir = tempfile.TemporaryDirectory(prefix="fastnn-warm-")
        os.environ["NUMBA_CACHE_DIR"] = self._dir.name
        subprocess.run([sys.executable, "-c", _BUILD.format(sizes=sizes, n=n) + _FIRST_STEP],
                       check=True, env=os.environ.copy())

    def teardown(self, config):
        if self._previous is None:
            os.environ.pop("NUMBA_CACHE_DIR", None)
        else:
            os.environ["NUMBA_CACHE_DIR"] = self._previous
        self._dir.cleanup()

    def timeraw_first_step(self, config):
        sizes, n = STEP_CONFIGS[config]
        return _FIRST_STEP, _BUILD.format(sizes=sizes, n=n)
