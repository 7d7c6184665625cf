"""Every activation x head x solver trains to the weights fastnn trained to before
its compiled loops were specialised (tests/fixtures/make_step_fixtures.py)."""

import pathlib
import warnings

import numpy as np
import pytest

from tests.fixtures.make_step_fixtures import cases, flat_weights

FIXTURES = np.load(pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "step_weights.npz")
CASES = {name: (model, X, y, sw) for name, model, X, y, sw in cases()}


def test_every_case_has_a_fixture():
    assert sorted(CASES) == sorted(FIXTURES.files)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_weights_as_before(name):
    model, X, y, sw = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(flat_weights(model), FIXTURES[name], rtol=1e-10, atol=1e-12)
