"""Cold import, first-step and first-fit compile, each in a fresh interpreter (timeraw_)."""

import os
import subprocess
import sys
import tempfile

# Untimed: build a config's step without running it. NUMBA_CACHE_DIR is set by
# the caller (a fresh empty directory: cold; a populated one: warm cache).
_BUILD = """
import numpy as np
from fastnn import get_backend
from fastnn.engine.step import TrainStep
from fastnn.engine.params import FlatParameters
sizes, n = {sizes!r}, {n!r}
rng = np.random.default_rng(0)
X = rng.random((n, sizes[0])).astype(np.float32)
y = rng.integers(0, sizes[-1], n).astype(np.intp)
coefs = [rng.standard_normal((k, m)).astype(np.float32) * 0.05
         for k, m in zip(sizes[:-1], sizes[1:])]
intercepts = [np.zeros(m, np.float32) for m in sizes[1:]]
params = FlatParameters.pack(coefs, intercepts)
grads = FlatParameters(params.layer_sizes, np.float32)
ops = get_backend("numba").ops
"""
# Timed: the first step, compile included (TrainStep, the step, the update)
_FIRST_STEP = """
step = TrainStep("numba", params.coefs, params.intercepts, n, coef_grads=grads.coefs,
                 intercept_grads=grads.intercepts)
step.batch_grads(X, y=y)
ops.sgd_update(params.data, grads.data, 0.1, None, 0.0, False)
"""
# Untimed, first: a fresh empty Numba cache directory for this interpreter
# (numba reads NUMBA_CACHE_DIR when it is imported), removed when it exits
_COLD_CACHE = """
import atexit, os, shutil, tempfile
os.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp(prefix='fastnn-cold-')
atexit.register(shutil.rmtree, os.environ['NUMBA_CACHE_DIR'], True)
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
        setup = _COLD_CACHE + _BUILD.format(sizes=sizes, n=n)
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
        subprocess.run(
            [sys.executable, "-c", _BUILD.format(sizes=sizes, n=n) + _FIRST_STEP],
            check=True,
            env=os.environ.copy(),
        )

    def teardown(self, config):
        if self._previous is None:
            os.environ.pop("NUMBA_CACHE_DIR", None)
        else:
            os.environ["NUMBA_CACHE_DIR"] = self._previous
        self._dir.cleanup()

    def timeraw_first_step(self, config):
        sizes, n = STEP_CONFIGS[config]
        return _FIRST_STEP, _BUILD.format(sizes=sizes, n=n)


# Untimed: the data and the estimator class (scikit-learn's import is not
# fit's: timeraw_import_fastnn times fastnn's own)
_BUILD_FIT = """
import warnings
import numpy as np
from fastnn import MLPClassifier
sizes, n = {sizes!r}, {n!r}
rng = np.random.default_rng(0)
X = rng.random((n, sizes[0])).astype(np.float32)
y = rng.integers(0, sizes[-1], n)
warnings.simplefilter("ignore")  # the ConvergenceWarning of max_iter=1
"""
# Timed: the first fit (one epoch), compile or cache loading included
_FIRST_FIT = """
MLPClassifier(sizes[1:-1], solver="sgd", momentum=0.0, learning_rate_init=0.1,
              batch_size={batch!r}, max_iter=1, random_state=0).fit(X, y)
"""
# a: full batch (the single pass); b: 8 batches (the compiled epoch, GEMM path)
FIT_CONFIGS = {"a": ((784, 10, 10), 4096, 4096), "b": ((784, 128, 10), 1024, 128)}


def _fit_code(config):
    sizes, n, batch = FIT_CONFIGS[config]
    return _FIRST_FIT.format(batch=batch), _BUILD_FIT.format(sizes=sizes, n=n)


class FirstFitCold:
    """The first `MLPClassifier.fit` (Numba) from an empty Numba cache: what a new
    install's first fit costs. Compile takes tens of seconds on 2 cores."""

    params = [list(FIT_CONFIGS)]
    param_names = ["config"]
    number = 1
    repeat = 3
    warmup_time = 0
    timeout = 600

    def timeraw_first_fit(self, config):
        code, setup = _fit_code(config)
        setup = _COLD_CACHE + setup
        return code, setup


class _WarmCache:
    """A fresh Numba cache directory that a previous process filled by running
    `self.timeraw_first_fit(param)`'s code; the timed interpreter loads from it."""

    number = 1
    repeat = 3
    warmup_time = 0
    timeout = 600

    def setup(self, param):
        self._previous = os.environ.get("NUMBA_CACHE_DIR")
        self._dir = tempfile.TemporaryDirectory(prefix="fastnn-warm-")
        os.environ["NUMBA_CACHE_DIR"] = self._dir.name
        code, setup = self.timeraw_first_fit(param)
        subprocess.run([sys.executable, "-c", setup + code], check=True, env=os.environ.copy())

    def teardown(self, param):
        if self._previous is None:
            os.environ.pop("NUMBA_CACHE_DIR", None)
        else:
            os.environ["NUMBA_CACHE_DIR"] = self._previous
        self._dir.cleanup()


class FirstFitWarmCache(_WarmCache):
    """The first `MLPClassifier.fit` in a new interpreter, loading what a previous
    process compiled into the Numba cache: what every later script's fit costs."""

    params = [list(FIT_CONFIGS)]
    param_names = ["config"]

    def timeraw_first_fit(self, config):
        return _fit_code(config)


# The user's first contact: digits (1,797 x 64, scikit-learn's bundled copy),
# the default MLPClassifier((128,)) (GEMM path) and (10,) (the single pass), one
# epoch, from an empty cache; then the first predict, which reuses the forward
# pass the fit compiled.
_BUILD_DIGITS = """
import warnings
from sklearn.datasets import load_digits
from fastnn import MLPClassifier
X, y = load_digits(return_X_y=True)
warnings.simplefilter("ignore")  # the ConvergenceWarning of max_iter=1
"""
_DIGITS_FIT = "model = MLPClassifier({hidden!r}, max_iter=1, random_state=0).fit(X, y)\n"
DIGITS_CONFIGS = {"gemm": (128,), "single_pass": (10,)}


class DigitsCold:
    """A new user's first `fit` and first `predict` on digits, Numba cache empty."""

    params = [list(DIGITS_CONFIGS)]
    param_names = ["path"]
    number = 1
    repeat = 3
    warmup_time = 0
    timeout = 600

    def timeraw_first_fit(self, path):
        return _DIGITS_FIT.format(hidden=DIGITS_CONFIGS[path]), _COLD_CACHE + _BUILD_DIGITS

    def timeraw_first_predict_after_fit(self, path):
        fit = _DIGITS_FIT.format(hidden=DIGITS_CONFIGS[path])
        return "model.predict(X)", _COLD_CACHE + _BUILD_DIGITS + fit


class DigitsWarmCache(_WarmCache):
    """A user's first `fit` on digits in a new interpreter, the Numba cache written
    by a previous process: every script after the first pays this."""

    params = [list(DIGITS_CONFIGS)]
    param_names = ["path"]

    def timeraw_first_fit(self, path):
        return _DIGITS_FIT.format(hidden=DIGITS_CONFIGS[path]), _BUILD_DIGITS


# Each (activation, head) pair's cold first fit: each compiles its own epoch
# loop, so a new activation or head shows here what it adds. The head follows
# from the estimator and the task: softmax (multiclass), logistic (binary),
# identity (squared error), exp (Poisson).
_BUILD_PAIR = """
import warnings
import numpy as np
from sklearn.datasets import load_digits
from fastnn import MLPClassifier, MLPRegressor
X, y = load_digits(return_X_y=True)
warnings.simplefilter("ignore")  # the ConvergenceWarning of max_iter=1
"""
_HEAD_FITS = {
    "softmax": "MLPClassifier((128,), activation={act!r}, max_iter=1, random_state=0).fit(X, y)",
    "logistic": "MLPClassifier((128,), activation={act!r}, max_iter=1, random_state=0)"
    ".fit(X, y % 2)",
    "identity": "MLPRegressor((128,), activation={act!r}, max_iter=1, random_state=0)"
    ".fit(X, y / 9.0)",
    "exp": "MLPRegressor((128,), activation={act!r}, loss='poisson', max_iter=1, "
    "random_state=0).fit(X, y)",
}


class FirstFitColdPair:
    """The cold first fit on digits (GEMM path, (128,)) of each activation and head."""

    params = [["identity", "logistic", "tanh", "relu"], list(_HEAD_FITS)]
    param_names = ["activation", "head"]
    number = 1
    repeat = 1
    warmup_time = 0
    timeout = 600

    def timeraw_first_fit(self, activation, head):
        return _HEAD_FITS[head].format(act=activation), _COLD_CACHE + _BUILD_PAIR
