"""`fastnn train --data/--recipe/--history/--plot`, `evaluate`, `predict` and `info`
on small files the tests write. Most run `main` in-process (fast); the exit code
and traceback checks run the real program."""

import hashlib
import json
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import fastnn
from fastnn import cli, datasets
from fastnn.cli import app as cli_app
from tests.helpers import REPO, run_fastnn, serve, write_idx_set

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def kaggle_rows(n, rng, n_pixels=784):
    """Learnable digit-like data: a noisy copy of one of 10 prototypes, pixels 0..255."""
    prototypes = rng.integers(0, 256, (10, n_pixels))
    y = rng.integers(0, 10, n)
    X = np.clip(0.6 * prototypes[y] + rng.integers(0, 100, (n, n_pixels)), 0, 255)
    return X.astype(int), y


def write_kaggle(directory, n_train=1200, n_test=30, seed=0):
    """Kaggle digit-recognizer files: train.csv (label, pixel0..783), test.csv (pixels)."""
    X, y = kaggle_rows(n_train + n_test, np.random.default_rng(seed))
    pixels = ",".join(f"pixel{i}" for i in range(784))
    train, test = directory / "train.csv", directory / "test.csv"
    with open(train, "w") as f:
        f.write("label," + pixels + "\n")
        np.savetxt(f, np.column_stack([y[:n_train], X[:n_train]]), fmt="%d", delimiter=",")
    with open(test, "w") as f:
        f.write(pixels + "\n")
        np.savetxt(f, X[n_train:], fmt="%d", delimiter=",")
    return train, test


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    return write_kaggle(tmp_path_factory.mktemp("kaggle"))


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, kaggle):
    """A small model trained on the Kaggle train.csv, saved with its history."""
    path = tmp_path_factory.mktemp("model") / "model.npz"
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(kaggle[0]),
                "--hidden",
                "16",
                "--epochs",
                "3",
                "--quiet",
                "--save",
                str(path),
            ]
        )
        == 0
    )
    return path


# -- train -----------------------------------------------------------------------


def test_the_seed_recipe_runs_5000_epochs_unless_told_otherwise(kaggle, monkeypatch):
    # The one recipe setting the runs below override: the estimator the recipe
    # builds, caught as training starts, runs the blog post's 5000 iterations.
    from fastnn.estimators.mlp import MLPClassifier

    class Started(Exception):
        pass

    def fit(model, X, y, **kwargs):
        raise Started(model.max_iter, X.shape)

    monkeypatch.setattr(MLPClassifier, "fit", fit)
    with pytest.raises(Started) as started:
        cli.main(["train", "--recipe", "seed", "--data", str(kaggle[0])])
    assert started.value.args == (5000, (200, 784))


def test_flags_win_over_the_seed_recipe(kaggle, tmp_path, capsys):
    # What a flag sets reaches the trained model in place of the recipe's
    # value; what no flag sets stays the recipe's.
    model_path = tmp_path / "flags.npz"
    assert (
        cli.main(
            [
                "train",
                "--recipe",
                "seed",
                "--data",
                str(kaggle[0]),
                "--dtype",
                "float32",
                "--epochs",
                "3",
                "--lr",
                "0.05",
                "--val-fraction",
                "0.2",
                "--save",
                str(model_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    # --val-fraction replaces the recipe's first-1000-rows dev set: 20 % of 1200
    assert (
        "network 784-10-10, sgd, batch 960, 3 epochs; 960 training rows, "
        "240 validation rows" in out
    )
    model = fastnn.load(model_path)
    assert model.coefs_[0].dtype == np.float32 and model.n_iter_ == 3
    assert (
        model.hidden_layer_sizes,
        model.solver,
        model.learning_rate_init,
        model.momentum,
        model.alpha,
        model.batch_size,
    ) == ((10,), "sgd", 0.05, 0.0, 0.0, 960)


def test_seed_recipe_trains_full_batch_on_a_kaggle_csv(kaggle, tmp_path, capsys):
    model_path = tmp_path / "seed.npz"
    # --seed 1: seed 0's Glorot draw happens to start all 10 ReLUs off on this
    # all-positive synthetic data, and full-batch GD cannot revive them
    code = cli.main(
        [
            "train",
            "--recipe",
            "seed",
            "--data",
            str(kaggle[0]),
            "--epochs",
            "200",
            "--log-every",
            "50",
            "--seed",
            "1",
            "--save",
            str(model_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert (
        "network 784-10-10, sgd, batch 200, 200 epochs; 200 training rows, "
        "1,000 validation rows" in out
    )
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in epoch_lines] == ["50", "100", "150", "200"]
    assert all("val accuracy" in line for line in epoch_lines)
    last = out.strip().splitlines()[-1]
    assert last.startswith("validation accuracy: ")
    assert float(last.split(": ")[1]) > 0.3  # chance is 0.1: full-batch GD learned
    model = fastnn.load(model_path)
    assert model.coefs_[0].dtype == np.float64
    assert (
        model.hidden_layer_sizes,
        model.solver,
        model.learning_rate_init,
        model.momentum,
        model.alpha,
        model.batch_size,
        model.n_iter_,
    ) == ((10,), "sgd", 0.1, 0.0, 0.0, 200, 200)
    # the first 1000 rows were the validation (dev) set, the model's last score on them
    X, y = datasets.load_csv(kaggle[0], dtype="float64")
    assert model.history_["val_accuracy"][-1] == model.score(X[:1000], y[:1000])
    assert float(last.split(": ")[1]) == pytest.approx(model.score(X[:1000], y[:1000]), abs=5e-5)


def test_train_on_npz_and_idx_directory(tmp_path, capsys):
    rng = np.random.default_rng(3)
    X, y = kaggle_rows(300, rng, n_pixels=12)
    np.savez(tmp_path / "data.npz", X=X.astype(np.uint8), y=y)
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(tmp_path / "data.npz"),
                "--hidden",
                "8",
                "--epochs",
                "2",
                "--val-fraction",
                "0.2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "240 training rows, 60 validation rows" in out
    assert out.strip().splitlines()[-1].startswith("validation accuracy: ")

    idx = tmp_path / "idx"
    idx.mkdir()
    write_idx_set(idx, "train", n=100, gz=True)
    write_idx_set(idx, "test", n=20)
    assert (
        cli.main(
            ["train", "--data", str(idx), "--hidden", "8", "--epochs", "2", "--val-fraction", "0"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "network 12-8-10" in out and "100 training rows, 20 test rows" in out
    assert out.strip().splitlines()[-1].startswith("test accuracy: ")


def test_train_on_fetched_mnist(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    (site / "mnist").mkdir(parents=True)
    for subset in ("train", "test"):
        write_idx_set(site / "mnist", subset, n=40, gz=True)
    monkeypatch.setattr(
        datasets,
        "MNIST_SHA256",
        {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (site / "mnist").iterdir()},
    )
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "cache"))
    with serve(site) as (base, requests):
        monkeypatch.setattr(datasets, "MNIST_MIRRORS", (base,))
        assert cli.main(["train", "--data", "mnist", "--hidden", "4", "--epochs", "1"]) == 0
    assert len(requests) == 4
    out = capsys.readouterr().out
    assert "36 training rows, 4 validation rows, 40 test rows" in out
    assert (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_history_and_plot_files(tmp_path, capsys):
    history, plot = tmp_path / "h.json", tmp_path / "curves.png"
    assert (
        cli.main(
            [
                "train",
                "--hidden",
                "8",
                "--epochs",
                "3",
                "--history",
                str(history),
                "--plot",
                str(plot),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"wrote history to {history}" in out and f"wrote plot to {plot}" in out
    data = json.loads(history.read_text())
    assert data["epoch"] == [1, 2, 3]
    assert set(data) == {
        "epoch",
        "loss",
        "seconds",
        "samples_per_second",
        "train_accuracy",
        "val_accuracy",
    }
    assert all(len(values) == 3 for values in data.values())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_fails_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = cli.main(["train", "--epochs", "1", "--plot", str(tmp_path / "x.png")])
    captured = capsys.readouterr()
    assert code == 1
    assert 'pip install "fastnn[plot]"' in captured.err
    assert "epoch" not in captured.out


def test_quiet_prints_only_the_final_line(capsys):
    assert cli.main(["train", "--hidden", "8", "--epochs", "2", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("test accuracy: ")


# -- evaluate, predict, info -------------------------------------------------------


def test_evaluate_prints_accuracy_per_class_and_confusion(saved_model, kaggle, capsys):
    assert cli.main(["evaluate", str(saved_model), "--data", str(kaggle[0])]) == 0
    out = capsys.readouterr().out
    model = fastnn.load(saved_model)
    X, y = datasets.load_csv(kaggle[0])
    predicted = model.predict(X)
    assert f"accuracy: {np.mean(predicted == y):.4f}" in out
    assert "data: " + str(kaggle[0]) + ", 1,200 rows" in out
    lines = out.splitlines()
    table = lines[lines.index("class  precision  recall  support") + 1 :][:10]
    for digit, line in enumerate(table):
        label, precision, recall, support = line.split()
        hits = np.sum((predicted == digit) & (y == digit))
        assert int(label) == digit and int(support) == np.sum(y == digit)
        assert float(recall) == pytest.approx(hits / np.sum(y == digit), abs=5e-5)
        assert float(precision) == pytest.approx(
            hits / max(np.sum(predicted == digit), 1), abs=5e-5
        )
    start = lines.index("confusion matrix (rows: true class, columns: predicted class)")
    assert lines[start + 1].split() == [str(d) for d in range(10)]
    matrix = np.array([[int(v) for v in line.split()[1:]] for line in lines[start + 2 :]])
    expected = np.zeros((10, 10), int)
    np.add.at(expected, (y, predicted), 1)
    np.testing.assert_array_equal(matrix, expected)


def test_evaluate_needs_labels(saved_model, kaggle, capsys):
    assert cli.main(["evaluate", str(saved_model), "--data", str(kaggle[1])]) == 1
    assert "has no labels" in capsys.readouterr().err


def test_predict_writes_a_kaggle_submission(saved_model, kaggle, tmp_path, capsys):
    out = tmp_path / "submission.csv"
    assert (
        cli.main(["predict", str(saved_model), "--data", str(kaggle[1]), "--out", str(out)]) == 0
    )
    assert f"wrote 30 predictions for {kaggle[1]} to {out}" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 31
    X, _ = datasets.load_csv(kaggle[1])
    expected = fastnn.load(saved_model).predict(X)
    assert lines[1:] == [f"{i},{label}" for i, label in enumerate(expected, start=1)]
    # without --out: the same CSV on standard output
    assert cli.main(["predict", str(saved_model), "--data", str(kaggle[1])]) == 0
    assert capsys.readouterr().out.splitlines() == lines


def test_predict_checks_the_feature_count(saved_model, tmp_path, capsys):
    np.savez(tmp_path / "small.npz", X=np.zeros((2, 64)))
    assert cli.main(["predict", str(saved_model), "--data", str(tmp_path / "small.npz")]) == 1
    assert (
        "X has 64 features, but MLPClassifier is expecting 784 features" in capsys.readouterr().err
    )


def test_info_describes_the_model(saved_model, capsys):
    assert cli.main(["info", str(saved_model)]) == 0
    out = capsys.readouterr().out
    assert (
        "architecture: 784-16-10 classifier (relu hidden layers, softmax output), "
        "12,730 parameters" in out
    )
    assert "dtype: float32" in out and "backend: numba" in out
    assert "class_weight: none" in out
    assert "dropout: none" in out
    assert "training: solver adam, learning rate 0.001, batch size 32" in out
    assert "epochs trained: 3" in out
    history = fastnn.load(saved_model).history_
    assert f"history: 3 epochs in {sum(history['seconds']):.2f} s" in out
    assert f"validation accuracy {history['val_accuracy'][-1]:.4f}" in out


def test_train_class_weight_balanced_weighs_the_training_rows_and_info_shows_it(
    kaggle, tmp_path, capsys
):
    path = tmp_path / "balanced.npz"
    args = ["train", "--data", str(kaggle[0]), "--hidden", "8", "--epochs", "2", "--quiet"]
    assert (
        cli.main([*args, "--val-rows", "200", "--class-weight", "balanced", "--save", str(path)])
        == 0
    )
    model = fastnn.load(path)
    assert model.class_weight == "balanced"
    # the first 200 rows are held out: the weights come from the others
    y_fit = datasets.load_csv(kaggle[0])[1][200:]
    np.testing.assert_allclose(model.class_weight_, len(y_fit) / (10 * np.bincount(y_fit)))
    capsys.readouterr()
    assert cli.main(["info", str(path)]) == 0
    weights = ", ".join(f"{c}: {w:.4g}" for c, w in enumerate(model.class_weight_))
    assert f"class_weight: 'balanced' ({weights})" in capsys.readouterr().out
    resume = ["train", "--data", str(kaggle[0]), "--epochs", "3", "--resume", str(path)]
    assert cli.main([*resume, "--class-weight", "balanced"]) == 1
    assert "drop --class-weight" in capsys.readouterr().err
    assert cli.main([*args, "--task", "regression", "--class-weight", "balanced"]) == 1
    assert "--class-weight weighs classes" in capsys.readouterr().err


def test_train_dropout_trains_with_it_and_info_shows_it(kaggle, tmp_path, capsys):
    path = tmp_path / "dropout.npz"
    args = ["train", "--data", str(kaggle[0]), "--hidden", "16,8", "--epochs", "2"]
    assert cli.main([*args, "--dropout", "0.5,0.25", "--save", str(path)]) == 0
    assert "dropout 0.5,0.25, adam" in capsys.readouterr().out
    model = fastnn.load(path)
    assert tuple(model.dropout) == (0.5, 0.25) and model._dropout_step > 0
    assert cli.main(["info", str(path)]) == 0
    assert "dropout: 0.5,0.25" in capsys.readouterr().out
    # one rate for every layer; the run resumes with its own
    assert cli.main([*args, "--quiet", "--dropout", "0.3", "--save", str(path)]) == 0
    assert fastnn.load(path).dropout == 0.3
    resume = ["train", "--data", str(kaggle[0]), "--epochs", "3", "--resume", str(path)]
    assert cli.main([*resume, "--dropout", "0.3"]) == 1
    assert "drop --dropout" in capsys.readouterr().err
    for bad in ("1", "-0.1", "0.5,x"):
        with pytest.raises(SystemExit):
            cli.main([*args, "--dropout", bad])
        assert "--dropout" in capsys.readouterr().err


# -- errors and help ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "no/such/file.csv"], "no/such/file.csv: no such file"),
        (["evaluate", "missing.npz", "--data", "digits"], "missing.npz"),
        (["info", "pyproject.toml"], "pyproject.toml is not a readable fastnn model file"),
        (["train", "--data", "pyproject.toml"], "pyproject.toml: unknown format"),
        (["train", "--data", "tests"], "no train-images-idx3-ubyte file"),
    ],
    ids=["missing-data", "missing-model", "not-a-model", "unknown-format", "dir-without-idx"],
)
def test_bad_paths_give_a_message(args, message, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the repository
    # an exception other than the handled ones would fail this test
    assert cli.main(args) == 1
    assert message in capsys.readouterr().err


def test_the_program_exits_1_without_a_traceback():
    result = run_fastnn("train", "--data", "no/such/file.csv", timeout=120)
    assert result.returncode == 1
    assert result.stderr == (
        "fastnn train: error: --data no/such/file.csv: no such file or directory "
        f"(expected {cli_app.DATA_HELP})\n"
    )


@pytest.mark.parametrize("command", ["info", "evaluate", "predict"])
def test_a_reader_that_leaves_ends_the_command_quietly(saved_model, kaggle, command):
    # `fastnn predict ... | head`: the pipe closes before the output is written
    args = [str(saved_model)] + ([] if command == "info" else ["--data", str(kaggle[0])])
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "fastnn", command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    reader_gone.stdout.close()
    err = reader_gone.stderr.read().decode()
    assert reader_gone.wait(timeout=120) == 141  # as a command killed by SIGPIPE
    assert err == ""


def test_train_refuses_unlabelled_data(kaggle, capsys):
    assert cli.main(["train", "--data", str(kaggle[1]), "--epochs", "1"]) == 1
    assert "test.csv has no labels (a .csv needs a 'label' column" in capsys.readouterr().err


def test_val_rows_must_leave_training_rows(kaggle, capsys):
    assert cli.main(["train", "--data", str(kaggle[0]), "--val-rows", "1200"]) == 1
    assert "--val-rows 1200 leaves no training rows: the data has 1200" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--val-fraction", "1.5"],
        ["train", "--val-fraction", "0.1", "--val-rows", "5"],
        ["train", "--batch-size", "0"],
        ["train", "--recipe", "nope"],
        ["train", "--momentum", "1"],
        ["evaluate", "--data", "digits"],
        ["predict", "model.npz"],
        ["info"],
    ],
)
def test_bad_flags_exit_2(args, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "info"])
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"fastnn {command}" in out.split("examples:")[1]


# -- the README's "Use your own data" examples ------------------------------------


def readme_section(title="## Use your own data"):
    text = (REPO / "README.md").read_text()
    start = text.index(title)
    return text[start : text.index("\n## ", start + 1)]


def test_readme_own_data_examples_run_as_written(tmp_path, monkeypatch, capsys):
    """Every command and Python block of the section, on small stand-ins for the
    files it names, MNIST served from 127.0.0.1."""
    rng = np.random.default_rng(5)
    write_kaggle(tmp_path, n_train=1100, n_test=20)
    (tmp_path / "mnist_files").mkdir()
    site = tmp_path / "site"
    (site / "mnist").mkdir(parents=True)
    for subset in ("train", "test"):
        write_idx_set(tmp_path / "mnist_files", subset, n=60, gz=subset == "train")
        write_idx_set(site / "mnist", subset, n=60, gz=True)
    features = rng.random((90, 3)).round(3)
    species = (features[:, 0] > 0.5).astype(int) + (features[:, 1] > 0.5)
    write_csv_rows = [",".join(map(str, [*row, label])) for row, label in zip(features, species)]
    (tmp_path / "measurements.csv").write_text("\n".join(["a,b,c,species", *write_csv_rows]))
    X_images, y_images = kaggle_rows(80, rng, n_pixels=64)
    np.savez(tmp_path / "images.npz", X=X_images.reshape(80, 8, 8).astype(np.uint8), y=y_images)
    monkeypatch.setattr(
        datasets,
        "MNIST_SHA256",
        {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (site / "mnist").iterdir()},
    )
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)

    section = readme_section()
    commands = [
        line.split("#")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", section, re.S)
        for line in block.splitlines()
    ]
    commands = [command for command in commands if command]
    assert len(commands) >= 10
    # One BLAS thread: the seed recipe's 5000 epochs make 10,000 tiny forward
    # GEMMs, which 2 OpenBLAS threads on a busy 2-core machine make ~5x slower.
    with serve(site) as (base, _), threadpool_limits(1):
        monkeypatch.setattr(datasets, "MNIST_MIRRORS", (base,))
        for command in commands:
            argv = shlex.split(command)
            assert argv[0] == "fastnn"
            assert cli.main(argv[1:]) == 0, (command, capsys.readouterr())
    for name in (
        "model.npz",
        "submission.csv",
        "mnist.npz",
        "history.json",
        "curves.png",
        "images-model.npz",
    ):
        assert (tmp_path / name).exists(), name
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    for code in blocks:
        namespace = {}
        with threadpool_limits(1):
            exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["seed"].n_iter_ == 5000
