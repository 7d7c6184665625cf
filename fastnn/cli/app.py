"""The `fastnn` command line: the parser and the dispatch of train, evaluate, predict,
info and convert (each in its own module: train, reports, data_sources)."""

import argparse
import os
import sys
import textwrap

from fastnn.cli.data_sources import DATA_HELP, convert
from fastnn.cli.precompile import compile_command
from fastnn.cli.reports import evaluate, info, predict
from fastnn.cli.train import RECIPES, train

# -- argument types --------------------------------------------------------------


def _hidden_sizes(text):
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    return sizes


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _unit_interval(text):
    """A float in [0, 1)."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def _dropout_rates(text):
    """One rate in [0, 1) for every hidden layer, or comma-separated rates, one per layer."""
    rates = tuple(_unit_interval(part) for part in text.split(","))
    return rates[0] if len(rates) == 1 else rates


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
        prog="fastnn",
        description="Train fully-connected networks on the CPU with Numba kernels.",
        epilog="run 'fastnn COMMAND --help' for a command's options and examples",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_parser(commands)
    _add_evaluate_parser(commands)
    _add_predict_parser(commands)
    _add_info_parser(commands)
    _add_convert_parser(commands)
    _add_compile_parser(commands)
    return parser


def _command(commands, name, help, description, examples):
    return commands.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, 79),
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_data_arguments(
    parser, default=None, seed_help="seed of the digits train/test split (default: 0)"
):
    parser.add_argument(
        "--data",
        default=default,
        required=default is None,
        metavar="DATA",
        help=DATA_HELP + (f" (default: {default})" if default else ""),
    )
    parser.add_argument(
        "--label",
        default="label",
        metavar="COLUMN",
        help="label column of a .csv file (default: label)",
    )
    parser.add_argument("--seed", type=int, default=0, help=seed_help)


def _add_train_parser(commands):
    train = _command(
        commands,
        "train",
        "train an MLP (default: scikit-learn's bundled digits)",
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
            "fastnn train --hidden 512 --dropout 0.5",
            "fastnn train --task regression --data houses.csv --label price",
        ],
    )
    _add_data_arguments(
        train,
        default="digits",
        seed_help="seed of the initial weights, the shuffling and the data splits (default: 0)",
    )
    train.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="a named preset: seed = 784-10-10, full-batch gradient descent, "
        "learning rate 0.1, 5000 epochs, first 1000 rows for validation, float64",
    )
    train.add_argument(
        "--task",
        choices=["classification", "regression"],
        default="classification",
        help="classification (an MLPClassifier on integer labels) or regression "
        "(an MLPRegressor on float targets: --label names the target column, "
        "or several comma-separated; features are used as they are) "
        "(default: classification)",
    )
    train.add_argument(
        "--hidden", type=_hidden_sizes, help="hidden layer sizes, comma-separated (default: 128)"
    )
    train.add_argument(
        "--activation",
        choices=["identity", "logistic", "tanh", "relu"],
        help="hidden-layer activation (default: relu)",
    )
    train.add_argument("--solver", choices=["adam", "sgd"], help="(default: adam)")
    train.add_argument(
        "--lr", type=_positive(float), help="initial learning rate (default: 0.001)"
    )
    train.add_argument("--momentum", type=_unit_interval, help="SGD momentum (default: 0.9)")
    train.add_argument("--alpha", type=_non_negative_float, help="L2 penalty (default: 0.0001)")
    train.add_argument(
        "--batch-size",
        type=_batch_size,
        help="samples per step, or 'full' for full-batch gradient descent (default: 32)",
    )
    train.add_argument(
        "--epochs",
        type=_positive(int),
        help="number of epochs (default: 40); with --batch-size full, one epoch is one step",
    )
    train.add_argument(
        "--class-weight",
        choices=["balanced"],
        help="weigh each class's rows by n_rows / (n_classes * its count), so that rare "
        "classes count as much as common ones (classification; default: none)",
    )
    train.add_argument(
        "--dropout",
        type=_dropout_rates,
        metavar="RATE",
        help="drop each hidden unit's output with this probability while training "
        "(inverted dropout; predictions use every unit), or comma-separated rates, one "
        "per hidden layer (default: 0, none)",
    )
    train.add_argument("--backend", choices=["numba", "numpy"], default="numba")
    train.add_argument("--dtype", choices=["float32", "float64"], help="(default: float32)")
    held_out = train.add_mutually_exclusive_group()
    held_out.add_argument(
        "--val-fraction",
        type=_unit_interval,
        help="random fraction of the training rows held out for "
        "validation, 0 for none (default: 0.1)",
    )
    held_out.add_argument(
        "--val-rows",
        type=_positive(int),
        metavar="N",
        help="hold out the first N rows for validation instead",
    )
    train.add_argument(
        "--shuffle",
        choices=["rows", "blocks"],
        help="each epoch's order: a random permutation of the rows, or of "
        "1 MiB blocks of rows, then of the rows within 64 MiB windows (reads "
        "that run from disk) (default: rows in memory, blocks for memory-mapped "
        "data)",
    )
    train.add_argument(
        "--log-every",
        type=_positive(int),
        metavar="N",
        help="print a line every N epochs (default: 1)",
    )
    train.add_argument(
        "--save",
        metavar="PATH",
        help="write the trained model to PATH (.npz); "
        "also written, with the last finite weights, if training diverges",
    )
    train.add_argument(
        "--checkpoint-every",
        type=_positive(int),
        metavar="N",
        help="also write the model to --save every N epochs, so that --resume "
        "can continue an interrupted run",
    )
    train.add_argument(
        "--resume",
        metavar="PATH",
        help="continue the run saved in PATH up to --epochs epochs in all, with "
        "its settings, seed, backend, weights, optimizer state and shuffling; "
        "give the same --data and validation flags as the first run",
    )
    train.add_argument(
        "--history", metavar="PATH", help="write the per-epoch history to PATH (.json)"
    )
    train.add_argument(
        "--plot",
        metavar="PATH",
        help="draw loss and accuracy curves to PATH (.png; needs matplotlib)",
    )
    train.add_argument(
        "--quiet", action="store_true", help="print only the final accuracy; no progress bar"
    )


def _add_evaluate_parser(commands):
    evaluate = _command(
        commands,
        "evaluate",
        "accuracy, per-class precision/recall and confusion matrix",
        "Score a saved model on labelled data: the test set of digits or MNIST (or of an "
        "IDX directory that has one), else the whole file.",
        [
            "fastnn evaluate model.npz --data digits",
            "fastnn evaluate mnist.npz --data mnist",
            "fastnn evaluate model.npz --data holdout.csv",
        ],
    )
    evaluate.add_argument("model", metavar="MODEL", help="a model saved by train --save")
    _add_data_arguments(evaluate)


def _add_predict_parser(commands):
    predict = _command(
        commands,
        "predict",
        "write predicted labels as CSV (Kaggle's ImageId,Label)",
        "Predict the label of every row, written as 'ImageId,Label' lines with ImageId "
        "counting from 1: Kaggle's digit-recognizer submission format for its test.csv.",
        [
            "fastnn predict model.npz --data test.csv --out submission.csv",
            "fastnn predict model.npz --data images.npz   # to stdout",
        ],
    )
    predict.add_argument("model", metavar="MODEL", help="a model saved by train --save")
    _add_data_arguments(predict)
    predict.add_argument(
        "--out", metavar="PATH", help="CSV file to write (default: standard output)"
    )


def _add_info_parser(commands):
    info = _command(
        commands,
        "info",
        "show a saved model's architecture, settings and history",
        "Describe a saved model: layers, dtype, backend, training settings and a summary "
        "of its per-epoch history.",
        ["fastnn info model.npz"],
    )
    info.add_argument("model", metavar="MODEL", help="a model saved by train --save")


def _add_convert_parser(commands):
    convert = _command(
        commands,
        "convert",
        "stream a CSV or IDX files into X.npy and y.npy",
        "Convert a CSV file (Kaggle's digit-recognizer train.csv, or any CSV with a header "
        "and a label column) or a directory of MNIST IDX files into DIR/X.npy and DIR/y.npy, "
        "reading and writing in chunks (memory stays bounded whatever the size). Pixels "
        "(integers 0..255) stay uint8 bytes. 'fastnn train --data DIR' then memory-maps them.",
        [
            "fastnn convert train.csv digits-npy/",
            "fastnn convert mnist-idx/ mnist-npy/ --subset test",
            "fastnn train --data digits-npy/ --epochs 5",
        ],
    )
    convert.add_argument(
        "source", metavar="SRC", help="a .csv or .csv.gz file, or a directory of IDX files"
    )
    convert.add_argument(
        "directory", metavar="DIR", help="where X.npy and y.npy go (created if missing)"
    )
    convert.add_argument(
        "--label",
        default="label",
        metavar="COLUMN",
        help="label column of a .csv file (default: label)",
    )
    convert.add_argument(
        "--subset",
        choices=["train", "test"],
        default="train",
        help="IDX files: train-* or t10k-* (default: train)",
    )
    convert.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_compile_parser(commands):
    compile_ = _command(
        commands,
        "compile",
        "compile the common first fits into Numba's cache",
        "Compile what a new user's first fits run (scikit-learn's defaults with each output "
        "head, float64 and float32 X, the single pass, the quickstart) into Numba's cache: "
        "NUMBA_CACHE_DIR if set, else fastnn's __pycache__ folders. 'pip install .' does "
        "this once; run it in a container image or on a shared install before many jobs "
        "start at once.",
        ["fastnn compile", "NUMBA_CACHE_DIR=/shared/numba fastnn compile --jobs 4"],
    )
    compile_.add_argument(
        "--jobs", type=int, default=2, help="processes compiling at once (default: 2)"
    )
    compile_.add_argument("--quiet", action="store_true", help="print nothing")


# -- running a command -------------------------------------------------------------


COMMANDS = {
    "train": train,
    "evaluate": evaluate,
    "predict": predict,
    "info": info,
    "convert": convert,
    "compile": compile_command,
}


def main(argv=None):
    args = build_parser().parse_args(argv)
    from fastnn import distributed

    try:
        if distributed.launched_by_mpi():
            return _main_data_parallel(args)
        return _run_command(args)
    except BrokenPipeError:
        # the reader left (`fastnn predict ... | head`): stop quietly, as a command
        # killed by SIGPIPE does, and keep Python's exit flush from complaining
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13


def _run_command(args):
    """Run the command of parsed `args` in this process alone; its exit status."""
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        # bad paths and bad data are the user's to fix: a message, not a traceback
        print(f"fastnn {args.command}: error: {exc}", file=sys.stderr)
        return 1


def _main_data_parallel(args):
    """Under mpiexec: `train` trains one model over every rank (docs/distributed.md);
    the other commands run on rank 0 alone."""
    from mpi4py import MPI

    from fastnn import distributed

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
