"""The README's Python examples run as written."""

import re

import numpy as np
import pytest

from tests.helpers import REPO

README = REPO / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def run_block(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def test_drop_in_step_gives_the_same_result_on_both_backends(tmp_path, monkeypatch):
    step = BLOCKS[0]
    swap = BLOCKS[1].strip()
    assert "reference as nn" in step and swap == "from fastnn import kernels as nn"
    ref = run_block(step, tmp_path, monkeypatch)
    fast = run_block(
        step.replace("from fastnn import reference as nn", swap), tmp_path, monkeypatch
    )
    assert np.isclose(ref["loss"], fast["loss"], rtol=1e-5)
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(ref[name], fast[name], rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimator_example(tmp_path, monkeypatch):
    namespace = run_block(BLOCKS[2], tmp_path, monkeypatch)
    assert namespace["model"].score(namespace["X_test"], namespace["y_test"]) >= 0.95
    assert (tmp_path / "digits.npz").exists()
