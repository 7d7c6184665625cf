"""The compiled initial draws (engine/numba_uniform.py) against NumPy's
``RandomState.uniform``: the same numbers and the same state left behind,
from every position in MT19937's block and across its twists."""

import copy

import numpy as np
import pytest

from fastnn.engine import numba_uniform
from fastnn.engine.numba_uniform import legacy_uniform, uniform_into


def _rng_at(pos, seed=7):
    """A RandomState whose next word is word `pos` of its current block."""
    rng = np.random.RandomState(seed)
    state = rng.get_state(legacy=False)
    rng.set_state({**state, "state": {"key": state["state"]["key"], "pos": pos}})
    return rng


def _same_state(a, b):
    sa, sb = a.get_state(legacy=False), b.get_state(legacy=False)
    np.testing.assert_array_equal(sa["state"]["key"], sb["state"]["key"])
    assert sa["state"]["pos"] == sb["state"]["pos"]
    assert (sa["has_gauss"], sa["gauss"]) == (sb["has_gauss"], sb["gauss"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pos", [0, 1, 2, 311, 622, 623, 624])
@pytest.mark.parametrize("n", [0, 1, 2, 311, 312, 313, 623, 624, 625, 2000])
def test_legacy_uniform_equals_randomstate_uniform(n, pos, dtype):
    theirs = _rng_at(pos)
    expected = theirs.uniform(-0.3, 0.5, n).astype(dtype)
    state = _rng_at(pos).get_state(legacy=False)["state"]
    key = np.array(state["key"], np.uint32)
    out = np.full(n, np.nan, dtype)
    new_pos = legacy_uniform(key, state["pos"], -0.3, 0.5 - -0.3, out)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(key, theirs.get_state(legacy=False)["state"]["key"])
    assert new_pos == theirs.get_state(legacy=False)["state"]["pos"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(700, 400), (1, 300_001)])
def test_uniform_into_is_the_rngs_own_call_and_leaves_its_state(shape, dtype):
    ours, theirs = np.random.RandomState(3), np.random.RandomState(3)
    for rng in (ours, theirs):  # a cached Gaussian, which must survive
        rng.standard_normal()
    assert np.prod(shape) >= numba_uniform.COMPILED_MIN
    out = np.empty(shape, dtype)
    uniform_into(ours, -0.07, 0.07, out)
    np.testing.assert_array_equal(out, theirs.uniform(-0.07, 0.07, shape).astype(dtype))
    _same_state(ours, theirs)
    assert ours.standard_normal() == theirs.standard_normal()
    assert ours.uniform() == theirs.uniform()


def test_uniform_into_falls_back_to_numpy(monkeypatch):
    called = []
    real = numba_uniform.legacy_uniform

    def spy(*args):
        called.append(True)
        return real(*args)

    monkeypatch.setattr(numba_uniform, "legacy_uniform", spy)
    monkeypatch.setattr(numba_uniform, "COMPILED_MIN", 100)
    cases = [
        (np.random.RandomState(1), np.empty((10, 20))),  # compiled
        (np.random.RandomState(np.random.PCG64(1)), np.empty((10, 20))),  # not MT19937
        (np.random.RandomState(1), np.empty((20, 20))[:, ::2]),  # not contiguous
        (np.random.RandomState(1), np.empty(99)),  # below COMPILED_MIN
    ]
    for rng, out in cases:
        twin = copy.deepcopy(rng)
        uniform_into(rng, -1.0, 1.0, out)
        np.testing.assert_array_equal(out, twin.uniform(-1.0, 1.0, out.shape))
        assert rng.uniform() == twin.uniform()
    assert called == [True]
    with pytest.raises(OverflowError):  # NumPy's own error for an infinite range
        uniform_into(np.random.RandomState(1), -1e308, 1e308, np.empty(200))
