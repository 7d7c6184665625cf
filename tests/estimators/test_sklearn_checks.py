"""scikit-learn's estimator checks (`check_estimator`) on both estimators.

With their default parameters (``dtype=None``: the weights take X's dtype, as
scikit-learn's do) every check passes, with no expected failure; so they do
with the other solvers. With ``dtype="float32"`` forced, one check cannot, on
dense and on sparse X: `check_sample_weight_equivalence_on_*_data` compares a
fit with integer weights to a fit on repeated rows at rtol=1e-7, below
float32's resolution, and the two sum the same terms in a different order
(README, "Differences from scikit-learn").
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastnn import MLPClassifier, MLPRegressor

FLOAT32_ROUNDING = {
    f"check_sample_weight_equivalence_on_{kind}_data": (
        "rtol=1e-7 is below float32 resolution; float64 passes it"
    )
    for kind in ("dense", "sparse")
}

ESTIMATORS = [
    MLPClassifier(max_iter=100),
    MLPRegressor(max_iter=100),
    MLPClassifier(solver="lbfgs", max_iter=100),
    MLPRegressor(solver="sgd", max_iter=100),
    MLPClassifier(max_iter=100, dtype="float32"),
    MLPRegressor(max_iter=100, dtype="float32"),
]


def _expected_failures(estimator):
    return FLOAT32_ROUNDING if estimator.dtype == "float32" else {}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
