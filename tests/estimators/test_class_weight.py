"""MLPClassifier's `class_weight`: scikit-learn's semantics (row weights of
`compute_sample_weight`, times `sample_weight`), scikit-learn's class-weight
checks, and its effect on an imbalanced real problem."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.estimator_checks import (
    check_class_weight_balanced_classifiers,
    check_class_weight_balanced_linear_classifier,
    check_class_weight_classifiers,
)

import fastnn
from fastnn import MLPClassifier
from fastnn.datasets import load_digits

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _imbalanced_digits(cut=3, keep=0.1):
    """Digits with class `cut` cut to `keep` of its training rows (14 of 142)."""
    X, X_test, y, y_test = load_digits(dtype="float64")
    minority = np.flatnonzero(y == cut)
    rows = np.sort(np.r_[np.flatnonzero(y != cut), minority[: int(len(minority) * keep)]])
    return X[rows], X_test, y[rows], y_test


def _problems():
    rng = np.random.default_rng(0)
    X = rng.random((90, 5))
    y = np.r_[np.zeros(60, int), np.ones(22, int), np.full(8, 2)]
    Y = (rng.random((90, 3)) < [0.5, 0.2, 0.05]).astype(int)
    return {
        "multiclass balanced": (X, y, "balanced"),
        "multiclass dict": (X, y, {0: 0.5, 1: 2.0, 2: 7.0}),
        "binary balanced": (X, np.where(y > 0, "rare", "common"), "balanced"),
        "binary dict of -1/1": (X, np.where(y > 0, 1, -1), {-1: 1.0, 1: 4.0}),
        "multilabel balanced": (X, Y, "balanced"),
        "multilabel list": (X, Y, [{0: 1, 1: 2}, {0: 1, 1: 3}, {0: 0.5, 1: 9}]),
    }


PROBLEMS = _problems()


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("backend,dtype", [("numba", "float32"), ("numpy", "float64")])
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_class_weight_trains_as_scikit_learns_sample_weights_times_sample_weight(
    name, backend, dtype, solver
):
    # compute_sample_weight(class_weight, y) is scikit-learn's expansion of
    # class_weight into row weights; with sample_weight the two multiply
    X, y, class_weight = PROBLEMS[name]
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    params = dict(
        hidden_layer_sizes=(6,), solver=solver, max_iter=5, batch_size=32, random_state=0
    )
    params.update(backend=backend, dtype=dtype)
    ours = MLPClassifier(class_weight=class_weight, **params).fit(X, y, sample_weight=sw)
    expected = MLPClassifier(**params).fit(
        X, y, sample_weight=sw * compute_sample_weight(class_weight, y)
    )
    tol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(ours._params.data, expected._params.data, rtol=tol, atol=tol)
    assert not np.allclose(ours._params.data, MLPClassifier(**params).fit(X, y, sw)._params.data)


def test_balanced_accuracy_improves_on_digits_with_a_class_cut_to_a_tenth():
    # 14 training rows of "3" against ~143 of every other digit: without class
    # weights the model all but never predicts a 3
    X, X_test, y, y_test = _imbalanced_digits()
    scores = {}
    for class_weight in (None, "balanced"):
        model = MLPClassifier((32,), max_iter=50, random_state=0, class_weight=class_weight)
        predicted = model.fit(X, y).predict(X_test)
        scores[class_weight] = (
            balanced_accuracy_score(y_test, predicted),
            recall_score(y_test, predicted, labels=[3], average=None)[0],
        )
    (plain, plain_recall), (balanced, balanced_recall) = scores[None], scores["balanced"]
    # measured: 0.847 -> 0.930, recall of 3: 0.05 -> 0.95 (seeds 1, 2 alike)
    assert balanced > plain + 0.05, scores
    assert plain_recall < 0.2 and balanced_recall > 0.8, scores


def test_scikit_learns_class_weight_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_class_weight_classifiers("MLPClassifier", MLPClassifier(max_iter=100))
        X, X_test, y, y_test = _imbalanced_digits()
        check_class_weight_balanced_classifiers(
            "MLPClassifier", MLPClassifier((16,), max_iter=30), X, y, X_test, y_test, None
        )


class _WithCoef(MLPClassifier):
    """The flat parameters as `coef_`, the attribute the linear check compares."""

    @property
    def coef_(self):
        return self._params.data


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_scikit_learns_balanced_linear_check_with_non_contiguous_labels(solver):
    # "balanced" against the dict of n / (n_classes * count) it should compute
    check_class_weight_balanced_linear_classifier(
        "MLPClassifier", _WithCoef((4,), solver=solver, dtype="float64")
    )


def test_partial_fit_keeps_the_first_calls_weights():
    X, y, _ = PROBLEMS["multiclass balanced"]
    model = MLPClassifier((4,), class_weight="balanced", random_state=0)
    model.partial_fit(X, y, classes=[0, 1, 2])
    first = model.class_weight_.copy()
    np.testing.assert_allclose(first, len(y) / (3 * np.bincount(y)))
    model.partial_fit(X[:30], y[:30])  # class 0 only: "balanced" of it would be [1, -, -]
    np.testing.assert_array_equal(model.class_weight_, first)
    with pytest.raises(ValueError, match=r"class_weight='balanced'.*lacks \[2\]"):
        MLPClassifier(class_weight="balanced").partial_fit(X[:70], y[:70], classes=[0, 1, 2])


def test_early_stopping_scores_validation_rows_with_sample_weight_alone(monkeypatch):
    # scikit-learn's SGDClassifier convention: class weights train, they do not score
    X, y, _ = PROBLEMS["multiclass dict"]
    seen = []
    score_rows = MLPClassifier._score_rows

    def spy(self, X, targets, rows, sample_weight=None):
        seen.append(sample_weight)
        return score_rows(self, X, targets, rows, sample_weight)

    monkeypatch.setattr(MLPClassifier, "_score_rows", spy)
    sw = np.linspace(0.5, 1.5, len(y))
    for given in (None, sw):
        seen.clear()
        model = MLPClassifier((4,), early_stopping=True, max_iter=3, class_weight="balanced")
        model.fit(X, y, sample_weight=given)
        assert len(seen) == 3 and all(s is given for s in seen)


@pytest.mark.parametrize(
    "class_weight,labels",
    [
        ({0: 1.0, 1: 3.5, 2: 0.25}, [0, 1, 2]),
        ({np.int64(0): 1.0, np.int64(1): 2.0, np.int64(2): 4.0}, [0, 1, 2]),
        ({"a": 2.0, "b": 1.0, "c": 0.5}, ["a", "b", "c"]),
        ("balanced", [0, 1, 2]),
    ],
)
def test_save_load_and_pickle_keep_class_weight_and_resume_exactly(tmp_path, class_weight, labels):
    import pickle

    X, y, _ = PROBLEMS["multiclass balanced"]
    y = np.asarray(labels)[y]
    params = dict(max_iter=4, batch_size=32, random_state=0, class_weight=class_weight)
    finished = MLPClassifier((5,), **params).fit(X, y)
    half = MLPClassifier((5,), **{**params, "max_iter": 2}).fit(X, y)
    half.save(tmp_path / "half.npz")
    for copy in (fastnn.load(tmp_path / "half.npz"), pickle.loads(pickle.dumps(half))):
        assert copy.get_params()["class_weight"] == class_weight
        np.testing.assert_array_equal(copy.class_weight_, half.class_weight_)
        copy.set_params(max_iter=4).fit(X, y, resume=True)
        np.testing.assert_array_equal(copy._params.data, finished._params.data)


def test_save_and_load_keep_a_multilabel_list_of_dicts(tmp_path):
    X, Y, class_weight = PROBLEMS["multilabel list"]
    model = MLPClassifier((4,), max_iter=2, random_state=0, class_weight=class_weight).fit(X, Y)
    model.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    assert loaded.class_weight == class_weight  # int labels, not JSON's string keys
    np.testing.assert_array_equal(loaded.class_weight_, [[1, 2], [1, 3], [0.5, 9]])
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_bad_class_weights_are_named_before_training():
    X, y, _ = PROBLEMS["multiclass balanced"]
    _, Y, _ = PROBLEMS["multilabel list"]
    bad = [
        (y, "auto", "class_weight must be None, 'balanced'"),
        (y, {0: -1.0}, "class_weight: the weight of class 0"),
        (y, {0: float("inf")}, "class_weight: the weight of class 0"),
        (y, [{0: 1.0}], "a list of dicts is for multilabel y"),
        (y, {0: 1.0, 7: 2.0}, r"class_weight=.*not in class_weight"),
        (Y, {0: 1.0, 1: 2.0}, "multilabel y of 3 labels needs"),
        (Y, [{0: 1.0, 1: 2.0}], "multilabel y of 3 labels needs"),
    ]
    for target, class_weight, match in bad:
        with pytest.raises(ValueError, match=match):
            MLPClassifier(class_weight=class_weight).fit(X, target)
