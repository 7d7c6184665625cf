"""scikit-learn style estimators on the engine: `mlp` holds `MLPClassifier`
and `MLPRegressor` on `base.BaseMLP`; saving, pickling and conversion to and
from scikit-learn live beside them."""
