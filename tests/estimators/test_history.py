"""`history_` per epoch, Ctrl-C during fit, history JSON and plots."""

import json
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score

import fastnn
from fastnn import MLPClassifier
from fastnn.cli.train import write_history
from fastnn.datasets import load_digits
from tests.helpers import assert_same_training_state

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    return load_digits(dtype="float64")


def small_model(**params):
    defaults = dict(
        hidden_layer_sizes=(16,),
        batch_size=64,
        max_iter=4,
        random_state=0,
        dtype="float64",
        n_iter_no_change=100,
    )
    return MLPClassifier(**{**defaults, **params})


def test_history_has_every_key_per_epoch(digits):
    X_train, X_test, y_train, y_test = digits
    records, ends = [], []

    def callback(model, record):
        ends.append(time.perf_counter())
        records.append(dict(record))

    started = time.perf_counter()
    model = small_model().fit(
        X_train, y_train, validation_data=(X_test, y_test), epoch_callback=callback
    )
    elapsed = time.perf_counter() - started
    history = model.history_
    assert set(history) == {
        "epoch",
        "loss",
        "seconds",
        "samples_per_second",
        "train_accuracy",
        "val_accuracy",
    }
    assert history["epoch"] == [1, 2, 3, 4]
    assert all(len(values) == 4 for values in history.values())
    assert history["loss"] == model.loss_curve_
    # Timings against the test's own clock: an epoch's seconds lie within the
    # time from the previous epoch's callback (or the call to fit) to its own,
    # and its samples/s are at least the training rows over that time.
    windows = np.diff([started] + ends)
    seconds = np.array(history["seconds"])
    assert np.all(seconds > 0) and np.all(seconds <= windows) and seconds.sum() <= elapsed
    assert np.all(np.array(history["samples_per_second"]) >= len(X_train) / windows)
    # the callback saw exactly the records the history keeps
    assert records == [{key: history[key][i] for key in history} for i in range(4)]
    # validation accuracy is that of the epoch's final weights: the last one is the model's
    assert history["val_accuracy"][-1] == model.score(X_test, y_test)
    assert history["train_accuracy"][-1] > history["train_accuracy"][0]


@pytest.mark.parametrize("targets", ["labels", "column", "strings", "multilabel"])
def test_validation_accuracy_is_scikit_learns_at_every_epoch(digits, targets):
    # The first epoch scores with accuracy_score (its checks of y_val); later
    # ones compare predictions and y_val directly: the same number each epoch.
    X_train, X_test, y_train, y_test = digits
    if targets == "strings":
        y_train, y_test = (
            np.array(list("abcdefghij"))[y_train],
            np.array(list("abcdefghij"))[y_test],
        )
    elif targets == "multilabel":
        y_train, y_test = (
            np.stack([y_train % 2, y_train > 4], 1),
            np.stack([y_test % 2, y_test > 4], 1),
        )
    y_val = y_test.reshape(-1, 1) if targets == "column" else y_test
    scores = []

    def callback(model, record):
        scores.append(accuracy_score(y_test, model.predict(X_test)))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataConversionWarning)
        model = small_model(max_iter=3, learning_rate_init=0.02).fit(
            X_train, y_train, validation_data=(X_test, y_val), epoch_callback=callback
        )
    assert model.history_["val_accuracy"] == scores
    assert len(set(scores)) > 1  # the weights moved between epochs


def test_validation_targets_scikit_learn_refuses_are_refused(digits):
    X_train, X_test, y_train, y_test = digits
    with pytest.raises(ValueError, match="continuous"):
        small_model(max_iter=2).fit(X_train, y_train, validation_data=(X_test, y_test + 0.5))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_train_accuracy_is_counted_during_the_epoch(digits, backend):
    # As Keras reports it: each batch's rows scored by the weights that batch
    # starts from, with no extra pass over the data. With one full batch per
    # epoch those are the previous epoch's final weights.
    X_train, _, y_train, _ = digits
    full = dict(batch_size=len(X_train), shuffle=False, solver="sgd", backend=backend)
    three = small_model(max_iter=3, **full).fit(X_train, y_train)
    for epochs in (1, 2):
        earlier = small_model(max_iter=epochs, **full).fit(X_train, y_train)
        assert three.history_["train_accuracy"][epochs] == earlier.score(X_train, y_train)
    assert "val_accuracy" not in three.history_


def test_verbose_prints_scikit_learn_lines(digits, capsys):
    X_train, _, y_train, _ = digits
    model = small_model(max_iter=2, verbose=True).fit(X_train, y_train)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"Iteration {i + 1}, loss = {loss:.8f}" for i, loss in enumerate(model.loss_curve_)
    ]


def test_save_and_load_keep_the_history(digits, tmp_path):
    X_train, X_test, y_train, y_test = digits
    model = small_model(max_iter=2).fit(X_train, y_train, validation_data=(X_test, y_test))
    model.save(tmp_path / "model.npz")
    assert fastnn.load(tmp_path / "model.npz").history_ == model.history_


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_ctrl_c_keeps_the_last_finished_epoch(digits, monkeypatch, solver, backend):
    # SIGINT arrives during epoch 3 (sent at the end of epoch 2, seen after
    # epoch 3's first batch: one batch per compiled slice here)
    from fastnn.engine import epoch_loop

    X_train, _, y_train, _ = digits
    finished = small_model(max_iter=2, solver=solver, backend=backend).fit(X_train, y_train)
    monkeypatch.setattr(epoch_loop, "SLICE_SECONDS", 0.0)

    def ctrl_c_after_epoch_2(model, record):
        if record["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    model = small_model(max_iter=10, solver=solver, backend=backend)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X_train, y_train, epoch_callback=ctrl_c_after_epoch_2)
    assert model.n_iter_ == 2 and model.t_ == 2 * len(X_train)
    assert model.loss_curve_ == finished.loss_curve_
    assert all(len(values) == 2 for values in model.history_.values())
    for got, want in zip(model.coefs_ + model.intercepts_, finished.coefs_ + finished.intercepts_):
        np.testing.assert_array_equal(got, want)
    # the optimizer, RNG and counters too: resuming continues from the end of epoch 2
    assert_same_training_state(model.get_training_state(), finished.get_training_state())
    assert model.score(X_train, y_train) == finished.score(X_train, y_train)


@pytest.mark.parametrize("backend,hidden", [("numpy", 64), ("numba", 512)])
def test_ctrl_c_stops_a_long_compiled_epoch_within_half_a_second(backend, hidden):
    # One epoch of many small batches (several seconds of work); SIGINT from
    # another thread 1 s in. The loop looks at Ctrl-C between bounded slices
    # of compiled work, so the KeyboardInterrupt comes within 0.5 s, and the
    # model is the one before the epoch.
    rng = np.random.default_rng(0)
    X = rng.random((300_000, 64), dtype=np.float32)
    y = rng.integers(0, 10, len(X))
    model = small_model(
        max_iter=1, batch_size=8, backend=backend, hidden_layer_sizes=(hidden,), dtype="float32"
    )
    model.partial_fit(X[:1000], y[:1000], classes=np.arange(10))  # compiled and initialised
    before = [W.copy() for W in model.coefs_]
    sent = []

    def ctrl_c():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(1.0, ctrl_c)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.partial_fit(X, y)
        raised = time.perf_counter()
    finally:
        timer.cancel()
    assert sent, "the epoch ended before Ctrl-C was sent: make it longer"
    assert raised - sent[0] < 0.5
    assert model.n_iter_ == 1
    for got, expected in zip(model.coefs_, before):
        np.testing.assert_array_equal(got, expected)


def test_ctrl_c_in_partial_fit_keeps_the_previous_weights(digits, monkeypatch):
    from fastnn.engine import epoch_loop

    X_train, _, y_train, _ = digits
    model = small_model().partial_fit(X_train, y_train, classes=np.arange(10))
    before = [W.copy() for W in model.coefs_]
    run_epoch = epoch_loop.EpochRunner.run_epoch

    def interrupt(self, rows, interrupt=None):
        run_epoch(self, rows, interrupt)
        self.params.data += 1.0  # a half-applied step that must not survive
        raise KeyboardInterrupt

    monkeypatch.setattr(epoch_loop.EpochRunner, "run_epoch", interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(X_train, y_train)
    assert model.n_iter_ == 1
    for got, expected in zip(model.coefs_, before):
        np.testing.assert_array_equal(got, expected)


def test_ctrl_c_in_the_last_slice_of_partial_fit_keeps_the_finished_epoch(digits, monkeypatch):
    # SIGINT lands after the epoch's last batch, before partial_fit returns: the
    # epoch is whole, so the KeyboardInterrupt leaves the model as it finished it
    from fastnn.estimators import monitor

    X_train, _, y_train, _ = digits
    finished = small_model().partial_fit(X_train, y_train, classes=np.arange(10))
    finished.partial_fit(X_train, y_train)
    model = small_model().partial_fit(X_train, y_train, classes=np.arange(10))
    end_epoch = monitor.EpochMonitor.end_epoch

    def ctrl_c_at_the_end(self, result, seconds):
        os.kill(os.getpid(), signal.SIGINT)
        return end_epoch(self, result, seconds)

    monkeypatch.setattr(monitor.EpochMonitor, "end_epoch", ctrl_c_at_the_end)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(X_train, y_train)
    assert model.n_iter_ == 2 and model.loss_curve_ == finished.loss_curve_
    for got, want in zip(model.coefs_ + model.intercepts_, finished.coefs_ + finished.intercepts_):
        np.testing.assert_array_equal(got, want)
    assert_same_training_state(model.get_training_state(), finished.get_training_state())


def test_write_history_is_strict_json(tmp_path):
    path = tmp_path / "history.json"
    write_history(
        {"epoch": [1, 2], "loss": [0.5, float("nan")], "samples_per_second": [float("inf"), 10.0]},
        path,
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {
        "epoch": [1, 2],
        "loss": [0.5, None],
        "samples_per_second": [None, 10.0],
    }


def test_plot_history_draws_both_panels(digits, tmp_path):
    from fastnn.cli.plotting import plot_history

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
    from fastnn.cli.plotting import plot_history

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    with pytest.raises(ImportError, match=r'pip install "fastnn\[plot\]"'):
        plot_history({"epoch": [1], "loss": [1.0]}, tmp_path / "x.png")


def test_plot_history_refuses_an_empty_history(tmp_path):
    from fastnn.cli.plotting import plot_history

    with pytest.raises(ValueError, match="empty"):
        plot_history({}, tmp_path / "x.png")
