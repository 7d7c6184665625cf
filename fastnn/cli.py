"""The `fastnn` command line: train, evaluate, predict, info, convert."""

import argparse
import json
import math
import os
import sys
import textwrap
import time
import warnings

import numpy as np

DATA_HELP = (
    "digits (scikit-learn's 8x8 digits), mnist (downloaded once into "
    "$FASTNN_DATA or ~/.cache/fastnn), a directory of MNIST IDX files, a directory "
    "holding X.npy and y.npy (memory-mapped: larger than memory is fine; see "
    "'fastnn convert'), a .csv file with a header line, or an .npz file with arrays X and y"
)

# What `train` uses when neither a flag nor the recipe says otherwise.
TRAIN_DEFAULTS = {
    "hidden": (128,), "activation": "relu", "solver": "adam", "lr": 1e-3, "momentum": 0.9,
    "alpha": 1e-4,
    "batch_size": 32, "epochs": 40, "dtype": "float32", "val_fraction": 0.1,
    "val_rows": None, "log_every": 1,
}
# Named presets of the settings above; explicit flags still win.
RECIPES = {
    # docs/design.md section 2: the blog post's 784-10-10 network, full-batch gradient
    # descent at learning rate 0.1 for 5000 iterations, first 1000 rows as dev set.
    "seed": {
        "hidden": (10,), "solver": "sgd", "lr": 0.1, "momentum": 0.0, "alpha": 0.0,
        "batch_size": "full", "epochs": 5000, "dtype": "float64", "val_rows": 1000,
        "log_every": 100,
    },
}


# -- argument types --------------------------------------------------------------


def _hidden_sizes(text):
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    return sizes


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")


def _unit_interval(text):
    """A float in [0, 1)."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def _non_negative_float(text):
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _batch_size(text):
    return "full" if text == "full" else _positive(int)(text)


# -- the parser ------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastnn", description="Train fully-connected networks on the CPU with Numba kernels.",
        epilog="run 'fastnn COMMAND --help' for a command's options and examples",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_parser(commands)
    _add_evaluate_parser(commands)
    _add_predict_parser(commands)
    _add_info_parser(commands)
    _add_convert_parser(commands)
    return parser


def _command(commands, name, help, description, examples):
    return commands.add_parser(
        name, help=help, description=textwrap.fill(description, 79),
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_data_arguments(parser, default=None,
                        seed_help="seed of the digits train/test split (default: 0)"):
    parser.add_argument("--data", default=default, required=default is None, metavar="DATA",
                        help=DATA_HELP + (f" (default: {default})" if default else ""))
    parser.add_argument("--label", default="label", metavar="COLUMN",
                        help="label column of a .csv file (default: label)")
    parser.add_argument("--seed", type=int, default=0, help=seed_help)


def _add_train_parser(commands):
    train = _command(
        commands, "train", "train an MLP (default: scikit-learn's bundled digits)",
        "Train an MLP classifier (or, with --task regression, a regressor) and report its "
        "accuracy (R^2) on held-out data: the test set of digits or MNIST, else the "
        "validation rows. Flags override the recipe.",
        [
            "fastnn train",
            "fastnn train --hidden 256,128 --epochs 40 --save model.npz",
            "fastnn train --data mnist --epochs 10 --save mnist.npz --plot curves.png",
            "fastnn train --data train.csv --history history.json",
            "fastnn train --data npy-dir/ --epochs 1   # X.npy, y.npy: memory-mapped",
            "mpiexec -n 4 fastnn train --epochs 10 --save model.npz   # docs/distributed.md",
            "fastnn train --recipe seed --data train.csv   # seed workload: docs/design.md s. 2",
            "fastnn train --backend numpy --dtype float64",
            "fastnn train --activation tanh --hidden 64,64",
            "fastnn train --task regression --data houses.csv --label price",
        ],
    )
    _add_data_arguments(train, default="digits", seed_help="seed of the initial weights, "
                        "the shuffling and the data splits (default: 0)")
    train.add_argument("--recipe", choices=sorted(RECIPES),
                       help="a named preset: seed = 784-10-10, full-batch gradient descent, "
                       "learning rate 0.1, 5000 epochs, first 1000 rows for validation, float64")
    train.add_argument("--task", choices=["classification", "regression"],
                       default="classification",
                       help="classification (an MLPClassifier on integer labels) or regression "
                       "(an MLPRegressor on float targets: --label names the target column, "
                       "or several comma-separated; features are used as they are) "
                       "(default: classification)")
    train.add_argument("--hidden", type=_hidden_sizes,
                       help="hidden layer sizes, comma-separated (default: 128)")
    train.add_argument("--activation", choices=["identity", "logistic", "tanh", "relu"],
                       help="hidden-layer activation (default: relu)")
    train.add_argument("--solver", choices=["adam", "sgd"], help="(default: adam)")
    train.add_argument("--lr", type=_positive(float),
                       help="initial learning rate (default: 0.001)")
    train.add_argument("--momentum", type=_unit_interval, help="SGD momentum (default: 0.9)")
    train.add_argument("--alpha", type=_non_negative_float, help="L2 penalty (default: 0.0001)")
    train.add_argument("--batch-size", type=_batch_size,
                       help="samples per step, or 'full' for full-batch gradient descent "
                       "(default: 32)")
    train.add_argument("--epochs", type=_positive(int),
                       help="number of epochs (default: 40); with --batch-size full, one "
                       "epoch is one step")
    train.add_argument("--backend", choices=["numba", "numpy"], default="numba")
    train.add_argument("--dtype", choices=["float32", "float64"], help="(default: float32)")
    held_out = train.add_mutually_exclusive_group()
    held_out.add_argument("--val-fraction", type=_unit_interval,
                          help="random fraction of the training rows held out for "
                          "validation, 0 for none (default: 0.1)")
    held_out.add_argument("--val-rows", type=_positive(int), metavar="N",
                          help="hold out the first N rows for validation instead")
    train.add_argument("--shuffle", choices=["rows", "blocks"],
                       help="each epoch's order: a random permutation of the rows, or of "
                       "1 MiB blocks of rows, then of the rows within 64 MiB windows (reads "
                       "that run from disk) (default: rows in memory, blocks for memory-mapped "
                       "data)")
    train.add_argument("--log-every", type=_positive(int), metavar="N",
                       help="print a line every N epochs (default: 1)")
    train.add_argument("--save", metavar="PATH", help="write the trained model to PATH (.npz); "
                       "also written, with the last finite weights, if training diverges")
    train.add_argument("--checkpoint-every", type=_positive(int), metavar="N",
                       help="also write the model to --save every N epochs, so that --resume "
                       "can continue an interrupted run")
    train.add_argument("--resume", metavar="PATH",
                       help="continue the run saved in PATH up to --epochs epochs in all, with "
                       "its settings, seed, backend, weights, optimizer state and shuffling; "
                       "give the same --data and validation flags as the first run")
    train.add_argument("--history", metavar="PATH",
                       help="write the per-epoch history to PATH (.json)")
    train.add_argument("--plot", metavar="PATH",
                       help="draw loss and accuracy curves to PATH (.png; needs matplotlib)")
    train.add_argument("--quiet", action="store_true",
                       help="print only the final accuracy; no progress bar")


def _add_evaluate_parser(commands):
    evaluate = _command(
        commands, "evaluate", "accuracy, per-class precision/recall and confusion matrix",
        "Score a saved model on labelled data: the test set of digits or MNIST (or of an "
        "IDX directory that has one), else the whole file.",
        ["fastnn evaluate model.npz --data digits",
         "fastnn evaluate mnist.npz --data mnist",
         "fastnn evaluate model.npz --data holdout.csv"],
    )
    evaluate.add_argument("model", metavar="MODEL", help="a model saved by train --save")
    _add_data_arguments(evaluate)


def _add_predict_parser(commands):
    predict = _command(
        commands, "predict", "write predicted labels as CSV (Kaggle's ImageId,Label)",
        "Predict the label of every row, written as 'ImageId,Label' lines with ImageId "
        "counting from 1: Kaggle's digit-recognizer submission format for its test.csv.",
        ["fastnn predict model.npz --data test.csv --out submission.csv",
         "fastnn predict model.npz --data images.npz   # to stdout"],
    )
    predict.add_argument("model", metavar="MODEL", help="a model saved by train --save")
    _add_data_arguments(predict)
    predict.add_argument("--out", metavar="PATH",
                         help="CSV file to write (default: standard output)")


def _add_info_parser(commands):
    info = _command(
        commands, "info", "show a saved model's architecture, settings and history",
        "Describe a saved model: layers, dtype, backend, training settings and a summary "
        "of its per-epoch history.",
        ["fastnn info model.npz"],
    )
    info.add_argument("model", metavar="MODEL", help="a model saved by train --save")


def _add_convert_parser(commands):
    convert = _command(
        commands, "convert", "stream a CSV or IDX files into X.npy and y.npy",
        "Convert a CSV file (Kaggle's digit-recognizer train.csv, or any CSV with a header "
        "and a label column) or a directory of MNIST IDX files into DIR/X.npy and DIR/y.npy, "
        "reading and writing in chunks (memory stays bounded whatever the size). Pixels "
        "(integers 0..255) stay uint8 bytes. 'fastnn train --data DIR' then memory-maps them.",
        ["fastnn convert train.csv digits-npy/",
         "fastnn convert mnist-idx/ mnist-npy/ --subset test",
         "fastnn train --data digits-npy/ --epochs 5"],
    )
    convert.add_argument("source", metavar="SRC", help="a .csv or .csv.gz file, or a "
                         "directory of IDX files")
    convert.add_argument("directory", metavar="DIR", help="where X.npy and y.npy go "
                         "(created if missing)")
    convert.add_argument("--label", default="label", metavar="COLUMN",
                         help="label column of a .csv file (default: label)")
    convert.add_argument("--subset", choices=["train", "test"], default="train",
                         help="IDX files: train-* or t10k-* (default: train)")
    convert.add_argument("--quiet", action="store_true", help="no progress bar")


# -- data --------------------------------------------------------------------------


def load_data(args, dtype, subset):
    """``(X, y)`` of `subset` ("train" or "test") of the --data source; None if it has none.

    digits and MNIST have both subsets, an IDX directory has "test" when the t10k
    files are there, a single file is all "train". y is None for unlabelled files.
    """
    from . import datasets

    spec = args.data
    task = getattr(args, "task", "classification")
    if spec == "digits":
        if task == "regression":
            raise ValueError("--data digits is a classification data set; give a .csv or "
                             ".npz file for --task regression")
        X_train, X_test, y_train, y_test = datasets.load_digits(dtype, random_state=args.seed)
        return (X_train, y_train) if subset == "train" else (X_test, y_test)
    # pixels stay uint8 bytes, scaled by the model on the fly: no float copy of the data
    if spec == "mnist":
        return datasets.fetch_mnist(subset=subset, dtype=dtype, keep_bytes=True)
    if os.path.isdir(spec) and os.path.exists(os.path.join(spec, "X.npy")):
        return datasets.load_npy_directory(spec, task=task) if subset == "train" else None
    if os.path.isdir(spec):
        if subset == "test":
            try:
                datasets.find_idx_file(spec, datasets.IDX_FILES["test"][0])
            except FileNotFoundError:
                return None
        return datasets.load_idx(spec, subset, dtype, keep_bytes=True)
    if not os.path.exists(spec):
        raise FileNotFoundError(f"--data {spec}: no such file or directory (expected {DATA_HELP})")
    if subset == "test":
        return None
    lower = spec.lower()
    if lower.endswith((".csv", ".csv.gz")):
        return datasets.load_csv(spec, label=args.label, dtype=dtype, keep_bytes=True, task=task)
    if lower.endswith(".npz"):
        if task == "regression":
            raise ValueError(f"--data {spec}: --task regression reads .csv files")
        return datasets.load_npz(spec, dtype=dtype, keep_bytes=True)
    raise ValueError(f"--data {spec}: unknown format (expected {DATA_HELP})")


def _evaluation_data(args, dtype):
    """The test subset where the source has one, else all of it; and its name."""
    test = load_data(args, dtype, "test")
    if test is not None:
        return test, f"{args.data} (test set)"
    return load_data(args, dtype, "train"), args.data


def _require_labels(y, args):
    if y is None:
        raise ValueError(
            f"--data {args.data} has no labels (a .csv needs a {args.label!r} column, "
            "an .npz an array y)"
        )


# -- train -----------------------------------------------------------------------


def train(args):
    from . import distributed
    from ._interrupt import StoppedTogether
    from .mlp import DivergenceError

    group = distributed.current()
    root = group is None or group.is_root
    resumed = _resumable(args)
    if not root:
        # data-parallel: rank 0 alone prints and writes files
        args.quiet, args.save, args.history, args.plot = True, None, None, None
    settings = _train_settings(args) if resumed is None else _resumed_settings(args, resumed)
    if args.plot:
        from .plotting import require_matplotlib

        require_matplotlib()  # before training, not after it
    X, y = load_data(args, settings["dtype"], "train")
    _require_labels(y, args)
    X_fit, y_fit, validation = _hold_out(X, y, settings, args.seed,
                                         args.task == "classification")
    test = load_data(args, settings["dtype"], "test")
    model = _build_model(settings, X_fit.shape[0], args) if resumed is None else resumed
    if not args.quiet:
        _print_setup(model, X_fit, y_fit, validation, test)
    started = time.perf_counter()
    every = args.checkpoint_every if args.save else None  # none on ranks other than 0
    checkpoint = (every, args.save) if every else None
    try:
        _fit(model, X_fit, y_fit, validation, settings, args.quiet, checkpoint,
             resume=resumed is not None)
    except DivergenceError as exc:
        # the model holds the weights of the last finished epoch: keep them
        _write_outputs(model, args)
        if root:
            print(f"fastnn train: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        if group is not None and not isinstance(exc, StoppedTogether):
            raise  # this rank alone (a second Ctrl-C): the others cannot follow
        # fit rolled the model back to its last finished epoch: keep that too
        if getattr(model, "n_iter_", 0) > 0:
            _write_outputs(model, args)
        if root:
            print(f"fastnn train: interrupted after {getattr(model, 'n_iter_', 0)} finished "
                  "epoch(s)", file=sys.stderr)
        return 130  # the shell's code for death by SIGINT
    if not args.quiet:
        ranks = "" if group is None else f", {group.size} processes"
        print(f"trained {model.n_iter_} epochs in {time.perf_counter() - started:.2f} s "
              f"({args.backend}, {settings['dtype']}{ranks})")
    _write_outputs(model, args)
    if not root:
        return 0
    name, (X_score, y_score) = (
        ("test", test) if test is not None
        else ("validation", validation) if validation is not None
        else ("training", (X_fit, y_fit))
    )
    if _is_regressor(model):
        print(f"{name} R^2: {model.score(X_score, y_score):.4f}")
    else:
        print(f"{name} accuracy: {np.mean(model.predict(X_score) == y_score):.4f}")
    return 0


def _is_regressor(model):
    return type(model).__name__ == "MLPRegressor"


def _train_settings(args):
    """TRAIN_DEFAULTS, overridden by the recipe, overridden by explicit flags."""
    settings = dict(TRAIN_DEFAULTS)
    if args.recipe:
        settings.update(RECIPES[args.recipe])
    for key in TRAIN_DEFAULTS:
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    if args.val_rows is not None:
        settings["val_fraction"] = None  # the explicit flag wins over the recipe's split
    elif args.val_fraction is not None:
        settings["val_rows"] = None
    return settings


def _resumable(args):
    """The model saved at --resume, checked against the flags; None without --resume."""
    if args.checkpoint_every and not args.save:
        raise ValueError("--checkpoint-every needs --save PATH to write the checkpoints to")
    if not args.resume:
        return None
    fixed = [f"--{key.replace('_', '-')}" for key in
             ("recipe", "hidden", "activation", "solver", "lr", "momentum", "alpha",
              "batch_size", "dtype", "shuffle")
             if getattr(args, key) is not None]
    if fixed:
        raise ValueError(f"--resume continues the saved run with its own settings; "
                         f"drop {', '.join(fixed)}")
    from .serialization import load

    model = load(args.resume)
    if not hasattr(model, "_optimizer"):
        raise ValueError(f"--resume {args.resume}: the file holds no training state")
    if model.n_iter_ >= (args.epochs or model.max_iter):
        raise ValueError(f"--resume {args.resume}: the run has trained {model.n_iter_} "
                         f"epochs already; pass --epochs above that")
    args.seed = model.random_state  # the data splits of the first run
    args.task = "regression" if _is_regressor(model) else "classification"
    return model


def _resumed_settings(args, model):
    """The saved run's settings, with --epochs (the total) and the validation flags."""
    settings = _train_settings(args)
    settings.update(
        hidden=model.hidden_layer_sizes, activation=model.activation, solver=model.solver,
        lr=model.learning_rate_init,
        momentum=model.momentum, alpha=model.alpha, batch_size=model.batch_size,
        epochs=args.epochs or model.max_iter, dtype=model.coefs_[0].dtype.name,
    )
    model.set_params(max_iter=settings["epochs"], n_iter_no_change=settings["epochs"])
    return settings


def _hold_out(X, y, settings, seed, classification=True):
    """``X_fit, y_fit, (X_val, y_val) or None`` by --val-rows or --val-fraction.

    Memory-mapped data are split by index ranges, as --val-rows splits: the
    first ceil(fraction * n) rows are held out (views: no copy, nothing read).
    """
    from sklearn.model_selection import train_test_split

    from ._validation import is_memory_mapped

    n = X.shape[0]
    rows = settings["val_rows"]
    if rows is None and settings["val_fraction"] and is_memory_mapped(X):
        rows = math.ceil(settings["val_fraction"] * n)
    if rows is not None:
        if rows >= n:
            raise ValueError(f"--val-rows {rows} leaves no training rows: the data has {n}")
        return X[rows:], y[rows:], (X[:rows], y[:rows])
    if not settings["val_fraction"]:
        return X, y, None
    stratify = None
    if classification:
        counts = np.unique(y, return_counts=True)[1]
        n_val = math.ceil(settings["val_fraction"] * n)
        stratify = y if counts.min() >= 2 and n_val >= len(counts) else None
    X_fit, X_val, y_fit, y_val = train_test_split(
        X, y, test_size=settings["val_fraction"], random_state=seed, stratify=stratify
    )
    return np.ascontiguousarray(X_fit), y_fit, (np.ascontiguousarray(X_val), y_val)


def _build_model(settings, n_fit, args):
    from .mlp import MLPClassifier, MLPRegressor

    full_batch = settings["batch_size"] == "full"
    estimator = MLPRegressor if args.task == "regression" else MLPClassifier
    return estimator(
        hidden_layer_sizes=settings["hidden"], activation=settings["activation"],
        solver=settings["solver"],
        learning_rate_init=settings["lr"], momentum=settings["momentum"],
        alpha=settings["alpha"], batch_size=n_fit if full_batch else settings["batch_size"],
        max_iter=settings["epochs"], n_iter_no_change=settings["epochs"],
        # a full batch is the same sum in any order: shuffling would only copy X
        shuffle=False if full_batch else (args.shuffle or True), random_state=args.seed,
        backend=args.backend,
        dtype=settings["dtype"],
    )


def _print_setup(model, X_fit, y_fit, validation, test):
    outputs = ((1 if y_fit.ndim == 1 else y_fit.shape[1]) if _is_regressor(model)
               else len(np.unique(y_fit)))
    sizes = "-".join(str(s) for s in [X_fit.shape[1], *model.hidden_layer_sizes, outputs])
    parts = [f"{X_fit.shape[0]:,} training rows"]
    if validation is not None:
        parts.append(f"{validation[0].shape[0]:,} validation rows")
    if test is not None:
        parts.append(f"{test[0].shape[0]:,} test rows")
    kind = f"{model.activation}, " if model.activation != "relu" else ""
    print(f"network {sizes}, {kind}{model.solver}, batch {model.batch_size}, "
          f"{model.max_iter} epochs; " + ", ".join(parts))


def _fit(model, X, y, validation, settings, quiet, checkpoint=None, resume=False):
    """`model.fit` with a progress bar and a line every --log-every epochs.

    `checkpoint` is ``(every, path)``: save the model every `every` epochs.
    """
    from sklearn.exceptions import ConvergenceWarning
    from tqdm import tqdm

    total, every = settings["epochs"], settings["log_every"]
    bar = tqdm(total=total, initial=model.n_iter_ if resume else 0, unit="epoch",
               file=sys.stderr, dynamic_ncols=True, disable=quiet or not sys.stderr.isatty())

    def report(_model, record):
        if checkpoint and record["epoch"] % checkpoint[0] == 0:
            _model.save(checkpoint[1])
        bar.update(1)
        bar.set_postfix_str(f"loss {record['loss']:.4f}, "
                            f"{record['samples_per_second']:,.0f} samples/s", refresh=False)
        if not quiet and (record["epoch"] % every == 0 or record["epoch"] == total):
            bar.write(_epoch_line(record), file=sys.stdout)

    with bar, warnings.catch_warnings():
        # a fixed epoch budget is what was asked for, not a convergence failure
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, validation_data=validation, epoch_callback=report, resume=resume)


def _epoch_line(record):
    line = f"epoch {record['epoch']:4d}  loss {record['loss']:.4f}"
    if "train_accuracy" in record:
        line += f"  train accuracy {record['train_accuracy']:.4f}"
    if "val_accuracy" in record:
        line += f"  val accuracy {record['val_accuracy']:.4f}"
    if "val_r2" in record:
        line += f"  val R^2 {record['val_r2']:.4f}"
    return line + f"  {record['samples_per_second']:,.0f} samples/s"


def _write_outputs(model, args):
    """The files train was asked for: model, history JSON, plot."""
    done = []
    if args.save:
        model.save(args.save)
        done.append(f"saved model to {args.save}")
    if args.history:
        write_history(model.history_, args.history)
        done.append(f"wrote history to {args.history}")
    if args.plot:
        from .plotting import plot_history

        plot_history(model.history_, args.plot, title=f"fastnn {_architecture(model)}")
        done.append(f"wrote plot to {args.plot}")
    if not args.quiet:
        for line in done:
            print(line)


def write_history(history, path):
    """Write `history` (dict of lists) as JSON; NaN and inf become null (JSON has neither)."""
    clean = {
        key: [v if not isinstance(v, float) or math.isfinite(v) else None for v in values]
        for key, values in history.items()
    }
    # one key per line: readable, and a 5000-epoch history stays 6 lines
    lines = [f" {json.dumps(key)}: {json.dumps(values)}" for key, values in clean.items()]
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


# -- evaluate, predict, info -------------------------------------------------------


def evaluate(args):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    from .serialization import load

    model = load(args.model)
    if _is_regressor(model):
        args.task = "regression"
    (X, y), name = _evaluation_data(args, model.coefs_[0].dtype)
    _require_labels(y, args)
    predicted = model.predict(X)
    print(f"model: {args.model} ({_architecture(model)}, {model.coefs_[0].dtype})")
    print(f"data: {name}, {len(y):,} rows")
    if _is_regressor(model):
        from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

        print(f"R^2: {r2_score(y, predicted):.4f}")
        print(f"mean squared error: {mean_squared_error(y, predicted):.6g}")
        print(f"mean absolute error: {mean_absolute_error(y, predicted):.6g}")
        return 0
    labels = np.union1d(model.classes_, y)
    precision, recall, _, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    print(f"accuracy: {np.mean(predicted == y):.4f}")
    width = max(5, *(len(str(label)) for label in labels))
    print(f"\n{'class':>{width}}  precision  recall  support")
    for label, p, r, s in zip(labels, precision, recall, support):
        print(f"{label!s:>{width}}  {p:9.4f}  {r:6.4f}  {s:7d}")
    matrix = confusion_matrix(y, predicted, labels=labels)
    cell = max(len(str(matrix.max())), *(len(str(label)) for label in labels))
    print("\nconfusion matrix (rows: true class, columns: predicted class)")
    print(" " * width + "".join(f" {label!s:>{cell}}" for label in labels))
    for label, row in zip(labels, matrix):
        print(f"{label!s:>{width}}" + "".join(f" {count:>{cell}d}" for count in row))
    return 0


def predict(args):
    from .serialization import load

    model = load(args.model)
    if _is_regressor(model):
        args.task = "regression"
    (X, _), name = _evaluation_data(args, model.coefs_[0].dtype)
    labels = model.predict(X)
    if _is_regressor(model):
        values = labels.reshape(len(labels), -1)
        header = "Id," + ",".join(["Prediction"] if values.shape[1] == 1 else
                                  [f"Prediction{j}" for j in range(values.shape[1])])
        lines = [header] + [f"{i}," + ",".join(repr(float(v)) for v in row)
                            for i, row in enumerate(values, start=1)]
    else:
        lines = ["ImageId,Label"] + [f"{i},{label}" for i, label in enumerate(labels, start=1)]
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {len(labels):,} predictions for {name} to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def info(args):
    from .serialization import load

    model = load(args.model)
    n_params = sum(W.size + b.size for W, b in zip(model.coefs_, model.intercepts_))
    print(f"model: {args.model}")
    kind = "regressor" if _is_regressor(model) else "classifier"
    print(f"architecture: {_architecture(model)} {kind} ({model.activation} hidden layers, "
          f"{model.out_activation_} output), {n_params:,} parameters")
    print(f"dtype: {model.coefs_[0].dtype}")
    print(f"backend: {model.backend}")
    if not _is_regressor(model):
        print(f"classes: {' '.join(str(c) for c in model.classes_)}")
    settings = f"solver {model.solver}, learning rate {model.learning_rate_init:g}"
    settings += f", batch size {model.batch_size}, alpha {model.alpha:g}"
    if model.solver == "sgd":
        settings += f", momentum {model.momentum:g}"
    print(f"training: {settings}, random_state {model.random_state}")
    print(f"epochs trained: {model.n_iter_}")
    for line in _history_summary(model.history_):
        print(line)
    return 0


def _history_summary(history):
    if not history.get("epoch"):
        return ["history: none saved"]
    epochs = len(history["epoch"])
    seconds = sum(history["seconds"])
    lines = [f"history: {epochs} epochs in {seconds:.2f} s of training, "
             f"{np.median(history['samples_per_second']):,.0f} samples/s (median)"]
    final = [f"loss {history['loss'][-1]:.4f}"]
    if history.get("train_accuracy"):
        final.append(f"training accuracy {history['train_accuracy'][-1]:.4f}")
    for key, what in (("val_accuracy", "validation accuracy"), ("val_r2", "validation R^2")):
        if history.get(key):
            val = history[key]
            best = int(np.argmax(val))
            final.append(f"{what} {val[-1]:.4f} "
                         f"(best {val[best]:.4f} at epoch {history['epoch'][best]})")
    lines.append("  last epoch: " + ", ".join(final))
    return lines


def _architecture(model):
    return "-".join(str(W.shape[0]) for W in model.coefs_) + f"-{model.coefs_[-1].shape[1]}"


def convert(args):
    from .convert_data import convert as convert_files

    rows, dtype = convert_files(args.source, args.directory, label=args.label,
                                subset=args.subset,
                                progress=not args.quiet and sys.stderr.isatty())
    print(f"wrote {rows:,} rows ({dtype}) to {os.path.join(args.directory, 'X.npy')}")
    return 0


COMMANDS = {"train": train, "evaluate": evaluate, "predict": predict, "info": info,
            "convert": convert}


def main(argv=None):
    args = build_parser().parse_args(argv)
    from . import distributed

    if distributed.launched_by_mpi():
        return _main_data_parallel(args)
    return _run_command(args)


def _run_command(args):
    """Run the command of parsed `args` in this process alone; its exit status."""
    try:
        return COMMANDS[args.command](args)
    except (OSError, ValueError, ImportError) as exc:
        # bad paths and bad data are the user's to fix: a message, not a traceback
        print(f"fastnn {args.command}: error: {exc}", file=sys.stderr)
        return 1


def _main_data_parallel(args):
    """Under mpiexec: `train` trains one model over every rank (docs/distributed.md);
    the other commands run on rank 0 alone."""
    from mpi4py import MPI

    from . import distributed

    if MPI.COMM_WORLD.Get_size() == 1:
        return _run_command(args)
    with distributed.data_parallel(MPI.COMM_WORLD) as group:
        if args.command != "train":
            return COMMANDS[args.command](args) if group.is_root else 0
        try:
            return train(args)
        except (OSError, ValueError, ImportError) as exc:
            print(f"fastnn train: error (rank {group.rank}): {exc}", file=sys.stderr)
            if distributed.raised_on_every_rank(exc):
                return 1
            group.abort(1)  # perhaps on this rank only: end the job, not wait forever
