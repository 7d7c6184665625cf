"""`history_` per epoch, Ctrl-C during fit, history JSON and plots."""

import json
import sys

import numpy as np
import pytest

import fastnn
from fastnn import MLPClassifier, optim
from fastnn.cli import write_history
from fastnn.datasets import load_digits

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    return load_digits(dtype="float64")


def small_model(**params):
    defaults = dict(hidden_layer_sizes=(16,), batch_size=64, max_iter=4, random_state=0,
                    dtype="float64", n_iter_no_change=100)
    return MLPClassifier(**{**defaults, **params})


def test_history_has_every_key_per_epoch(digits):
    X_train, X_test, y_train, y_test = digits
    records = []
    model = small_model().fit(X_train, y_train, validation_data=(X_test, y_test),
                              epoch_callback=lambda m, record: records.append(dict(record)))
    history = model.history_
    assert set(history) == {"epoch", "loss", "seconds", "samples_per_second",
                            "train_accuracy", "val_accuracy"}
    assert history["epoch"] == [1, 2, 3, 4]
    assert all(len(values) == 4 for values in history.values())
    assert history["loss"] == model.loss_curve_
    assert all(s > 0 for s in history["seconds"])
    np.testing.assert_allclose(history["samples_per_second"],
                               len(X_train) / np.array(history["seconds"]))
    # the callback saw exactly the records the history keeps
    assert records == [{key: history[key][i] for key in history} for i in range(4)]
    # accuracies are those of the epoch's final weights: the last one is the model's
    assert history["val_accuracy"][-1] == model.score(X_test, y_test)
    assert history["train_accuracy"][-1] == model.score(X_train, y_train)
    assert history["train_accuracy"][-1] > history["train_accuracy"][0]


def test_train_accuracy_uses_evenly_spaced_rows_of_a_large_set():
    rng = np.random.default_rng(0)
    X = rng.random((4100, 5))
    y = (X[:, 0] > 0.5).astype(int)
    model = small_model(max_iter=2).fit(X, y)
    rows = slice(None, None, 3)  # ceil(4100 / 2000)
    assert model.history_["train_accuracy"][-1] == model.score(X[rows], y[rows])
    assert "val_accuracy" not in model.history_


def test_verbose_prints_scikit_learn_lines(digits, capsys):
    X_train, _, y_train, _ = digits
    model = small_model(max_iter=2, verbose=True).fit(X_train, y_train)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Iteration {i + 1}, loss = {loss:.8f}"
                     for i, loss in enumerate(model.loss_curve_)]


def test_save_and_load_keep_the_history(digits, tmp_path):
    X_train, X_test, y_train, y_test = digits
    model = small_model(max_iter=2).fit(X_train, y_train, validation_data=(X_test, y_test))
    model.save(tmp_path / "model.npz")
    assert fastnn.load(tmp_path / "model.npz").history_ == model.history_


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_ctrl_c_keeps_the_last_finished_epoch(digits, monkeypatch, solver):
    X_train, _, y_train, _ = digits
    finished = small_model(max_iter=2, solver=solver).fit(X_train, y_train)

    steps_per_epoch = -(-len(X_train) // 64)
    original = optim.SOLVERS[solver].update_params
    calls = []

    def interrupted_update(self, params, grads):
        calls.append(1)
        if len(calls) == 2 * steps_per_epoch + 5:  # Ctrl-C in the middle of epoch 3
            raise KeyboardInterrupt
        original(self, params, grads)

    monkeypatch.setattr(optim.SOLVERS[solver], "update_params", interrupted_update)
    model = small_model(max_iter=10, solver=solver)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X_train, y_train)
    assert model.n_iter_ == 2 and model.t_ == 2 * len(X_train)
    assert model.loss_curve_ == finished.loss_curve_
    assert all(len(values) == 2 for values in model.history_.values())
    for got, expected in zip(model.coefs_ + model.intercepts_,
                             finished.coefs_ + finished.intercepts_):
        np.testing.assert_array_equal(got, expected)
    # the optimizer too: resuming continues from the end of epoch 2
    for key, value in finished._optimizer.state().items():
        if isinstance(value, list):
            for got, expected in zip(model._optimizer.state()[key], value):
                np.testing.assert_array_equal(got, expected)
        else:
            assert model._optimizer.state()[key] == value
    monkeypatch.undo()
    assert model.score(X_train, y_train) == finished.score(X_train, y_train)


def test_ctrl_c_in_partial_fit_keeps_the_previous_weights(digits, monkeypatch):
    X_train, _, y_train, _ = digits
    model = small_model().partial_fit(X_train, y_train, classes=np.arange(10))
    before = [W.copy() for W in model.coefs_]

    def interrupt(self, params, grads):
        for p in params:
            p += 1.0  # a half-applied step that must not survive
        raise KeyboardInterrupt

    monkeypatch.setattr(optim.AdamOptimizer, "update_params", interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(X_train, y_train)
    assert model.n_iter_ == 1
    for got, expected in zip(model.coefs_, before):
        np.testing.assert_array_equal(got, expected)


def test_write_history_is_strict_json(tmp_path):
    path = tmp_path / "history.json"
    write_history({"epoch": [1, 2], "loss": [0.5, float("nan")],
                   "samples_per_second": [float("inf"), 10.0]}, path)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"epoch": [1, 2], "loss": [0.5, None],
                                "samples_per_second": [None, 10.0]}


def test_plot_history_draws_both_panels(digits, tmp_path):
    from fastnn.plotting import plot_history

    X_train, X_test, y_train, y_test = digits
    model = small_model(max_iter=3).fit(X_train, y_train, validation_data=(X_test, y_test))
    path = tmp_path / "curves.png"
    plot_history(model.history_, path, title="digits")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (400, 1000)  # 10 x 4 inches at 100 dpi
    # lines in three colours were drawn, not an empty canvas: blue and orange pixels
    rgb = image[..., :3]
    blue = np.all(np.abs(rgb - [0.122, 0.467, 0.706]) < 0.05, axis=-1)
    orange = np.all(np.abs(rgb - [1.0, 0.498, 0.055]) < 0.05, axis=-1)
    assert blue[:, :500].sum() > 100 and blue[:, 500:].sum() > 100 and orange.sum() > 100


def test_plot_history_without_matplotlib(monkeypatch, tmp_path):
    from fastnn.plotting import plot_history

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    with pytest.raises(ImportError, match=r'pip install "fastnn\[plot\]"'):
        plot_history({"epoch": [1], "loss": [1.0]}, tmp_path / "x.png")


def test_plot_history_refuses_an_empty_history(tmp_path):
    from fastnn.plotting import plot_history

    with pytest.raises(ValueError, match="empty"):
        plot_history({}, tmp_path / "x.png")
