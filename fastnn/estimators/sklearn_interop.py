"""Fitted models to and from scikit-learn's `MLPClassifier` / `MLPRegressor`.

Both libraries store the same weights in the same layout (`coefs_[i]` is
(fan_in, fan_out), `intercepts_[i]` is (fan_out,)) and use the same output
activations, so a conversion copies the weights and the fitted attributes;
predictions agree to the rounding of the model's dtype. Through `to_sklearn`,
a fastnn model also exports wherever scikit-learn's does (ONNX with
`skl2onnx`: ``pip install "fastnn[onnx]"``).
"""

import copy

import numpy as np
from sklearn import neural_network
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

# fitted attributes that both libraries have and mean the same by
_SHARED_ATTRIBUTES = (
    "n_iter_",
    "t_",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "feature_names_in_",
)


def to_sklearn(model):
    """A scikit-learn estimator with `model`'s parameters and weights (copied).

    Parameters
    ----------
    model : fastnn.MLPClassifier or fastnn.MLPRegressor, fitted

    Returns
    -------
    sklearn.neural_network.MLPClassifier or MLPRegressor
        Fitted: `predict` (and `predict_proba`) work as they are. Its weights
        keep `model`'s dtype.
    """
    check_is_fitted(model, "coefs_")
    cls = neural_network.MLPClassifier if is_classifier(model) else neural_network.MLPRegressor
    theirs = cls()
    shared = {k: v for k, v in model.get_params().items() if k in theirs.get_params()}
    theirs.set_params(**shared)
    theirs.coefs_ = [W.copy() for W in model.coefs_]
    theirs.intercepts_ = [b.copy() for b in model.intercepts_]
    theirs.n_features_in_ = model.n_features_in_
    theirs.n_layers_ = model.n_layers_
    theirs.n_outputs_ = model.n_outputs_
    theirs.out_activation_ = model.out_activation_
    _copy_attributes(model, theirs)
    if is_classifier(model):
        theirs.classes_ = model.classes_.copy()
        # scikit-learn predicts through its (private) label binarizer
        theirs._label_binarizer = copy.deepcopy(model._label_binarizer)
    return theirs


def from_sklearn(estimator, estimator_class, **params):
    """A fastnn estimator with a fitted scikit-learn MLP's parameters and weights (copied).

    Parameters
    ----------
    estimator : sklearn.neural_network.MLPClassifier or MLPRegressor, fitted
    estimator_class : fastnn.MLPClassifier or fastnn.MLPRegressor
        The class to fill (`fastnn.from_sklearn` picks it).
    **params
        fastnn parameters to set as well (`backend`, `dtype`, ...). With
        `dtype` the weights are cast to it; without, the model keeps theirs
        (float32 or float64), as scikit-learn's does.

    Returns
    -------
    fastnn.MLPClassifier or fastnn.MLPRegressor
        Ready to predict, and to train on with `partial_fit` or `warm_start`.
    """
    check_is_fitted(estimator, "coefs_")
    classifier = is_classifier(estimator)
    ours = estimator_class()
    shared = {k: v for k, v in estimator.get_params().items() if k in ours.get_params()}
    ours.set_params(**shared, **params)
    ours._validate_params()
    dtype = ours._dtype if ours.dtype is not None else estimator.coefs_[0].dtype
    coefs = [np.asarray(W, dtype) for W in estimator.coefs_]
    intercepts = [np.asarray(b, dtype) for b in estimator.intercepts_]
    if classifier:
        binarizer = estimator._label_binarizer
        ours.set_weights(
            coefs, intercepts, estimator.classes_, binarizer.y_type_.startswith("multilabel")
        )
    else:
        ours.set_weights(coefs, intercepts)
    _copy_attributes(estimator, ours)
    return ours


def _copy_attributes(source, target):
    for name in _SHARED_ATTRIBUTES:
        if hasattr(source, name):
            value = getattr(source, name)
            setattr(target, name, value.copy() if hasattr(value, "copy") else value)
