"""`numba_math.exp_nonpositive`, the single pass's vectorised softmax exponential,
against np.exp: within 1 ulp on [EXP_FLOOR, 0], and its edge values exactly."""

import numpy as np
import pytest
from numba import njit

from fastnn.contract.numba_math import EXP_FLOOR, exp_nonpositive


@njit  # not cached: a cache entry would not see an edit of numba_math
def exp_all(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):  # a loop as the head's: vectorised
        out[i] = exp_nonpositive(x[i])
    return out


def ulps(got, want):
    return np.abs(got - want) / np.spacing(want)


@pytest.mark.parametrize("scale", [1e-12, 1e-6, 1e-2, 1.0, 30.0, -EXP_FLOOR])
def test_within_one_ulp_of_np_exp(scale):
    x = -np.random.default_rng(0).random(200_001) * scale
    x = x[x >= EXP_FLOOR]
    got = exp_all(x)
    assert ulps(got, np.exp(x)).max() <= 1.0
    # mostly the same bits (np.exp is itself within about half an ulp)
    assert np.mean(got == np.exp(x)) > 0.8


def test_halfway_points_of_the_reduction():
    # x near k ln 2 +- ln 2 / 2, where round(x / ln 2) changes
    k = np.arange(-1021, 1)
    x = np.concatenate([k * np.log(2) + d for d in (-0.5 * np.log(2), 0.5 * np.log(2))])
    x = np.nextafter(np.repeat(x, 3), [-np.inf, 0, np.inf] * (x.size))
    x = np.minimum(x[x >= EXP_FLOOR], 0.0)
    assert ulps(exp_all(x), np.exp(x)).max() <= 1.0


def test_edge_values():
    below = np.nextafter(EXP_FLOOR, -np.inf)
    x = np.array([0.0, -0.0, -5e-324, -1e-300, EXP_FLOOR, below, -745.0, -1e308, -np.inf, np.nan])
    got = exp_all(x)
    np.testing.assert_array_equal(got[:4], 1.0)
    assert got[4] == pytest.approx(np.exp(EXP_FLOOR), rel=2.3e-16)
    np.testing.assert_array_equal(got[5:9], 0.0)  # below the floor: 0, not a subnormal
    assert np.isnan(got[9])
