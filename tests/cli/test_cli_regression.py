"""`fastnn train --task regression` and `--activation`, and the other commands on
a saved regressor."""

import numpy as np
import pytest

import fastnn
from fastnn import cli

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def regression_csv(tmp_path_factory):
    """600 rows, 5 standardised features, targets y = a smooth function, y2 = -y."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 5))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(600)
    path = tmp_path_factory.mktemp("regression") / "data.csv"
    header = ",".join([f"x{i}" for i in range(5)] + ["y", "y2"])
    np.savetxt(
        path, np.column_stack([X, y, -y]), delimiter=",", header=header, comments="", fmt="%.6f"
    )
    return path


def test_train_a_regressor_and_use_it(regression_csv, tmp_path, capsys):
    path = tmp_path / "reg.npz"
    # two target columns: a two-output regressor
    assert (
        cli.main(
            [
                "train",
                "--task",
                "regression",
                "--data",
                str(regression_csv),
                "--label",
                "y,y2",
                "--activation",
                "tanh",
                "--hidden",
                "32",
                "--epochs",
                "60",
                "--lr",
                "0.01",
                "--log-every",
                "30",
                "--save",
                str(path),
                "--history",
                str(tmp_path / "h.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "network 5-32-2, tanh, adam" in out
    assert "val R^2" in out and "train accuracy" not in out
    r2 = float(out.strip().splitlines()[-1].split(": ")[1])
    assert out.strip().splitlines()[-1].startswith("validation R^2: ")
    assert r2 > 0.7  # a linear model gets about 0.3 here
    model = fastnn.load(path)
    assert type(model).__name__ == "MLPRegressor"
    assert (model.activation, model.out_activation_, model.n_outputs_) == ("tanh", "identity", 2)
    assert "val_r2" in model.history_

    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "5-32-2 regressor (tanh hidden layers, identity output)" in out
    assert "classes" not in out and "validation R^2" in out

    assert cli.main(["evaluate", str(path), "--data", str(regression_csv), "--label", "y,y2"]) == 0
    out = capsys.readouterr().out
    assert "R^2: " in out and "mean squared error" in out

    out_csv = tmp_path / "pred.csv"
    assert (
        cli.main(
            [
                "predict",
                str(path),
                "--data",
                str(regression_csv),
                "--label",
                "y,y2",
                "--out",
                str(out_csv),
            ]
        )
        == 0
    )
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "Id,Prediction0,Prediction1" and len(lines) == 601
    X = np.loadtxt(regression_csv, delimiter=",", skiprows=1)[:, :5]
    np.testing.assert_allclose(
        np.loadtxt(out_csv, delimiter=",", skiprows=1)[:, 1:],
        model.predict(X.astype(np.float32)),
        rtol=1e-6,
    )


def test_regression_resumes_like_an_uninterrupted_run(regression_csv, tmp_path, capsys):
    base = [
        "train",
        "--task",
        "regression",
        "--data",
        str(regression_csv),
        "--label",
        "y,y2",
        "--activation",
        "logistic",
        "--quiet",
    ]
    assert cli.main(base + ["--epochs", "6", "--save", str(tmp_path / "full.npz")]) == 0
    assert cli.main(base + ["--epochs", "3", "--save", str(tmp_path / "half.npz")]) == 0
    resume = [
        "train",
        "--data",
        str(regression_csv),
        "--label",
        "y,y2",
        "--quiet",
        "--resume",
        str(tmp_path / "half.npz"),
        "--epochs",
        "6",
        "--save",
        str(tmp_path / "resumed.npz"),
    ]
    assert cli.main(resume) == 0
    full, resumed = fastnn.load(tmp_path / "full.npz"), fastnn.load(tmp_path / "resumed.npz")
    assert resumed.activation == "logistic"
    for a, b in zip(full.coefs_ + full.intercepts_, resumed.coefs_ + resumed.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_activation_flag_reaches_the_classifier(tmp_path, capsys):
    path = tmp_path / "m.npz"
    assert (
        cli.main(
            [
                "train",
                "--activation",
                "logistic",
                "--hidden",
                "16",
                "--epochs",
                "2",
                "--quiet",
                "--save",
                str(path),
            ]
        )
        == 0
    )
    assert fastnn.load(path).activation == "logistic"


def test_regression_needs_a_csv(capsys):
    assert cli.main(["train", "--task", "regression"]) == 1
    assert "digits is a classification data set" in capsys.readouterr().err
