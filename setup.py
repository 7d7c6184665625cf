"""Builds fastnn with a compiled Numba cache of the common first fits in the package.

Everything else is in pyproject.toml. After the modules are copied into the
build folder, `fastnn.cli.precompile` compiles the fits a new user runs first
there, so the wheel's `__pycache__` folders carry them and the first fit after
`pip install .` loads instead of compiling (docs/design.md, "Compile time").
FASTNN_PRECOMPILE=0 skips it; a failure only warns: the package then compiles
on first use, as it does for any other configuration.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithNumbaCache(build_py):
    def run(self):
        super().run()
        package = Path(self.build_lib) / "fastnn"
        for stale in package.rglob("__pycache__"):  # a previous build's entries
            shutil.rmtree(stale)
        if self.editable_mode or os.environ.get("FASTNN_PRECOMPILE", "1") == "0":
            return  # an editable install compiles into the source tree on first use
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
        # pip's isolated build environment is on PYTHONPATH: keep it, after the build
        paths = [os.path.abspath(self.build_lib), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        try:
            # run in the build folder: the source tree's fastnn must not shadow it
            subprocess.run(
                [sys.executable, "-c", "import fastnn.cli.precompile as p; p.precompile()"],
                cwd=self.build_lib,
                env=env,
                check=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            self.warn(f"fastnn: the Numba cache was not built ({exc}); first fits compile")
        for bytecode in package.rglob("*.pyc"):  # Python's own: pip writes them again
            bytecode.unlink()


setup(cmdclass={"build_py": BuildPyWithNumbaCache})
