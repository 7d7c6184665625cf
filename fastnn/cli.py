"""The `fastnn` command line."""

import argparse
import sys
import time

import numpy as np


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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastnn", description="Train fully-connected networks on the CPU with Numba kernels."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train an MLP (default: scikit-learn's bundled digits)",
        description="Train an MLP classifier and report its test accuracy.",
        epilog="examples:\n  fastnn train\n  fastnn train --hidden 256,128 --epochs 40 "
        "--save model.npz\n  fastnn train --backend numpy --dtype float64",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--hidden", type=_hidden_sizes, default=(128,),
                       help="hidden layer sizes, comma-separated (default: 128)")
    train.add_argument("--solver", choices=["adam", "sgd"], default="adam")
    train.add_argument("--lr", type=_positive(float), default=1e-3,
                       help="initial learning rate (default: 0.001)")
    train.add_argument("--batch-size", type=_positive(int), default=32,
                       help="samples per step (default: 32)")
    train.add_argument("--epochs", type=_positive(int), default=40,
                       help="number of epochs (default: 40)")
    train.add_argument("--backend", choices=["numba", "numpy"], default="numba")
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--save", metavar="PATH", help="write the trained model to PATH (.npz)")
    train.add_argument("--quiet", action="store_true",
                       help="print only the final test accuracy")
    return parser


def train(args):
    from tqdm import tqdm

    from .datasets import load_digits
    from .mlp import MLPClassifier
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = load_digits(dtype=args.dtype, random_state=args.seed)
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_train, y_train, test_size=0.1, random_state=args.seed, stratify=y_train
    )
    model = MLPClassifier(
        hidden_layer_sizes=args.hidden, solver=args.solver, learning_rate_init=args.lr,
        batch_size=args.batch_size, max_iter=args.epochs, random_state=args.seed,
        n_iter_no_change=args.epochs, backend=args.backend, dtype=args.dtype,
    )
    bar = tqdm(total=args.epochs, unit="epoch", file=sys.stderr,
               disable=args.quiet or not sys.stderr.isatty())

    def report(_model, record):
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}", val=f"{record['val_accuracy']:.4f}")
        if not args.quiet:
            bar.write(f"epoch {record['epoch']:3d}  loss {record['loss']:.4f}  "
                      f"val accuracy {record['val_accuracy']:.4f}  "
                      f"{record['samples_per_second']:,.0f} samples/s")

    started = time.perf_counter()
    import warnings
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # a fixed epoch budget is what was asked for, not a convergence failure
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_fit, y_fit, validation_data=(X_val, y_val), epoch_callback=report)
    bar.close()
    accuracy = float(np.mean(model.predict(X_test) == y_test))
    if not args.quiet:
        print(f"trained {model.n_iter_} epochs in {time.perf_counter() - started:.2f} s "
              f"({args.backend}, {args.dtype})")
    if args.save:
        model.save(args.save)
        if not args.quiet:
            print(f"saved model to {args.save}")
    print(f"test accuracy: {accuracy:.4f}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "train":
        return train(args)
    return 2
