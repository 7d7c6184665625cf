"""fastnn's Numba cache entries are stamped with every module jitted code can reach
(contract/jit.py): an edit or upgrade of a callee's file recompiles its callers,
where Numba alone checks each function's own file and would load them stale."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import fastnn
from fastnn.contract.jit import stamped_files

PACKAGE = Path(fastnn.__file__).parent
JITTED = re.compile(r"\b(njit|specialise|jit)\(|@(overload|intrinsic)\b")

# linear_relu_forward (contract/numba_ops.py) calls bias_relu (contract/numba_math.py)
_CHILD = """
import json
import numpy as np
from numba.core.event import install_recorder
from fastnn.contract import numba_ops
x, W, b = np.ones((3, 4)), np.ones((4, 2)), np.zeros(2)
with install_recorder("numba:compile") as rec:
    numba_ops.linear_relu_forward(x, W, b, np.empty((3, 2)))
print(json.dumps(sorted({e.data["dispatcher"].py_func.__qualname__ for _, e in rec.buffer})))
"""


def test_every_module_with_jitted_code_stamps_the_cache():
    jitted = {
        str(path)
        for path in PACKAGE.rglob("*.py")
        if JITTED.search(path.read_text()) and path.name != "jit.py"
    }
    assert jitted <= set(stamped_files()), sorted(jitted - set(stamped_files()))


def _compiled(site):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["PYTHONPATH"] = str(site)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=site, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_edit_of_a_callee_recompiles_its_callers(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "fastnn", ignore=shutil.ignore_patterns("__pycache__"))
    assert "linear_relu_forward" in _compiled(tmp_path)
    assert _compiled(tmp_path) == []  # cached
    math = tmp_path / "fastnn" / "contract" / "numba_math.py"
    math.write_text(math.read_text() + "\n# an edit of the callee's file only\n")
    assert "linear_relu_forward" in _compiled(tmp_path)
