"""The Numba cache that `pip install .` builds (setup.py -> fastnn.cli.precompile):
compiled in a build folder, moved as pip moves it into site-packages, then loaded
by a new process without compiling anything."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fastnn
from fastnn.cli import main

PACKAGE = Path(fastnn.__file__).parent

# a worker of precompile(): compile the single pass's first fit, then report what
# compiling it again in this process would compile (nothing, if it loads)
_FIRST_FIT = """
import json, sys
from fastnn.cli.precompile import compiled_by, precompile
if sys.argv[1] == "build":
    print(json.dumps(precompile(["single-pass-float32"], jobs=1, log=lambda line: None)))
else:
    print(json.dumps({"compiled": compiled_by(["single-pass-float32"]),
                      "fastnn": __import__("fastnn").__file__}))
"""


def _run(cwd, what):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["PYTHONPATH"] = str(cwd)  # the copy in cwd, not the checkout's fastnn
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_FIT, what],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_cache_built_in_place_loads_after_the_package_is_moved(tmp_path):
    build, site = tmp_path / "build", tmp_path / "site-packages"
    shutil.copytree(PACKAGE, build / "fastnn", ignore=shutil.ignore_patterns("__pycache__"))
    # the second pass of precompile() found nothing left to compile
    assert _run(build, "build") == []
    entries = sorted(p.name for p in (build / "fastnn").rglob("*.nbi"))
    for compiled in ("numba_epoch.run_narrow_batches", "numba_uniform.legacy_uniform"):
        assert any(name.startswith(compiled) for name in entries), entries
    # as pip installs the wheel: other folder, new modification times
    shutil.copytree(build / "fastnn", site / "fastnn")
    loaded = _run(site, "load")
    assert loaded["fastnn"] == str(site / "fastnn" / "__init__.py")
    assert loaded["compiled"] == []


def test_compile_refuses_a_bad_jobs_count(capsys):
    assert main(["compile", "--jobs", "0"]) == 2
    assert "--jobs must be >= 1, got 0" in capsys.readouterr().err


def test_compile_says_when_the_jit_is_disabled(monkeypatch, capsys):
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    assert main(["compile"]) == 1
    assert "NUMBA_DISABLE_JIT=1" in capsys.readouterr().err


def test_gemm_first_fits_compile_the_serial_loop_and_the_parallel_epoch(monkeypatch):
    # whatever the build machine's cores: each GEMM-path first fit runs on one
    # thread and on two (the parallel epoch), the single pass once
    from fastnn.cli import precompile
    from fastnn.engine import threads
    from fastnn.estimators.mlp import MLPClassifier, MLPRegressor

    picked, model_before = [], threads.gemm_threads

    def fit(model, X, y):
        picked.append(threads.gemm_threads(64, (X.shape[1], 128, 3)))
        return model

    for cls in (MLPClassifier, MLPRegressor):
        monkeypatch.setattr(cls, "fit", fit)
        monkeypatch.setattr(cls, "predict", lambda model, X: None)
    monkeypatch.setattr(MLPClassifier, "predict_proba", lambda model, X: None)
    for name, want in [("softmax-float32", [1, 2]), ("identity-float64", [1, 2])]:
        picked.clear()
        precompile.run_first_fit(name)
        assert picked == want, name
    picked.clear()
    precompile.run_first_fit("single-pass-float32")
    assert len(picked) == 1
    # the cost model is back as it was
    assert threads.gemm_threads is model_before
