"""Cold starts into one Numba cache directory, in real processes: two processes
compiling at once into an empty cache (joblib/loky workers, `mpiexec -n 2` on a
fresh install) both train, and a third process then loads every compiled
function from that cache without compiling anything."""

import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, warnings
import numpy as np
from numba.core.event import install_recorder
from fastnn import MLPClassifier

rng = np.random.default_rng(0)
X = rng.random((300, 20)).astype(np.float32)
y = rng.integers(0, 3, 300)
out = {}
with install_recorder("numba:compile") as rec, warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the ConvergenceWarning of a 2-epoch fit
    for solver in sys.argv[1].split(","):
        # (40,): the GEMM path; (8,): the single pass
        for hidden in ((40,), (8,)):
            model = MLPClassifier(hidden, solver=solver, max_iter=2, random_state=0).fit(X, y)
            out[f"{solver}{hidden}"] = [float(model.loss_), model.predict(X).tolist()]
compiled = sorted({e.data["dispatcher"].py_func.__qualname__ for _, e in rec.buffer})
print(json.dumps({"fits": out, "compiled": compiled}))
"""


def _start(cache, solvers):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(cache)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, solvers],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(process):
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    return json.loads(stdout.strip().splitlines()[-1])


def test_concurrent_cold_starts_leave_a_cache_that_loads_without_compiling(tmp_path):
    cache = tmp_path / "numba-cache"
    # both at once: the same functions (the forward pass, the head, ...) and
    # each its own specialised epoch loop, written into one directory
    first, second = _start(cache, "adam"), _start(cache, "sgd")
    a, b = _result(first), _result(second)
    assert a["compiled"] and b["compiled"]  # they did compile, into an empty cache
    third = _result(_start(cache, "adam,sgd"))
    assert third["compiled"] == []
    # what the third process loaded computes what the two compiled
    assert third["fits"] == {**a["fits"], **b["fits"]}
