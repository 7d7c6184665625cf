"""`fastnn train`: settings (defaults, recipe, flags, or a resumed run), the validation
hold-out, `fit` with a progress bar and epoch lines, and the files written."""

import json
import math
import sys
import time
import warnings

import numpy as np

from fastnn.cli.data_sources import load_data, require_labels
from fastnn.cli.reports import architecture, is_regressor

# What `train` uses when neither a flag nor the recipe says otherwise.
TRAIN_DEFAULTS = {
    "hidden": (128,),
    "activation": "relu",
    "solver": "adam",
    "lr": 1e-3,
    "momentum": 0.9,
    "alpha": 1e-4,
    "batch_size": 32,
    "epochs": 40,
    "dtype": "float32",
    "val_fraction": 0.1,
    "val_rows": None,
    "log_every": 1,
}
# Named presets of the settings above; explicit flags still win.
RECIPES = {
    # docs/design.md section 2: the blog post's 784-10-10 network, full-batch gradient
    # descent at learning rate 0.1 for 5000 iterations, first 1000 rows as dev set.
    "seed": {
        "hidden": (10,),
        "solver": "sgd",
        "lr": 0.1,
        "momentum": 0.0,
        "alpha": 0.0,
        "batch_size": "full",
        "epochs": 5000,
        "dtype": "float64",
        "val_rows": 1000,
        "log_every": 100,
    },
}


def train(args):
    from fastnn import distributed
    from fastnn.engine.interrupt import StoppedTogether
    from fastnn.errors import DivergenceError

    group = distributed.current()
    root = group is None or group.is_root
    resumed = _resumable(args)
    if not root:
        # data-parallel: rank 0 alone prints and writes files
        args.quiet, args.save, args.history, args.plot = True, None, None, None
    settings = _train_settings(args) if resumed is None else _resumed_settings(args, resumed)
    if args.plot:
        from fastnn.cli.plotting import require_matplotlib

        require_matplotlib()  # before training, not after it
    X, y = load_data(args, settings["dtype"], "train")
    require_labels(y, args)
    X_fit, y_fit, validation = _hold_out(X, y, settings, args.seed, args.task == "classification")
    test = load_data(args, settings["dtype"], "test")
    model = _build_model(settings, X_fit.shape[0], args) if resumed is None else resumed
    if not args.quiet:
        _print_setup(model, X_fit, y_fit, validation, test)
    started = time.perf_counter()
    every = args.checkpoint_every if args.save else None  # none on ranks other than 0
    checkpoint = (every, args.save) if every else None
    try:
        _fit(
            model,
            X_fit,
            y_fit,
            validation,
            settings,
            args.quiet,
            checkpoint,
            resume=resumed is not None,
        )
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
            print(
                f"fastnn train: interrupted after {getattr(model, 'n_iter_', 0)} finished "
                "epoch(s)",
                file=sys.stderr,
            )
        return 130  # the shell's code for death by SIGINT
    if not args.quiet:
        ranks = "" if group is None else f", {group.size} processes"
        print(
            f"trained {model.n_iter_} epochs in {time.perf_counter() - started:.2f} s "
            f"({args.backend}, {settings['dtype']}{ranks})"
        )
    _write_outputs(model, args)
    if not root:
        return 0
    name, (X_score, y_score) = (
        ("test", test)
        if test is not None
        else ("validation", validation)
        if validation is not None
        else ("training", (X_fit, y_fit))
    )
    if is_regressor(model):
        print(f"{name} R^2: {model.score(X_score, y_score):.4f}")
    else:
        print(f"{name} accuracy: {np.mean(model.predict(X_score) == y_score):.4f}")
    return 0


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
    if args.class_weight and args.task == "regression":
        raise ValueError("--class-weight weighs classes: it needs --task classification")
    if not args.resume:
        return None
    fixed = [
        f"--{key.replace('_', '-')}"
        for key in (
            "recipe",
            "hidden",
            "activation",
            "solver",
            "lr",
            "momentum",
            "alpha",
            "batch_size",
            "dtype",
            "shuffle",
            "class_weight",
            "dropout",
        )
        if getattr(args, key) is not None
    ]
    if fixed:
        raise ValueError(
            f"--resume continues the saved run with its own settings; drop {', '.join(fixed)}"
        )
    from fastnn.estimators.mlp import load

    model = load(args.resume)
    if not hasattr(model, "_optimizer"):
        raise ValueError(f"--resume {args.resume}: the file holds no training state")
    if model.n_iter_ >= (args.epochs or model.max_iter):
        raise ValueError(
            f"--resume {args.resume}: the run has trained {model.n_iter_} "
            f"epochs already; pass --epochs above that"
        )
    args.seed = model.random_state  # the data splits of the first run
    args.task = "regression" if is_regressor(model) else "classification"
    return model


def _resumed_settings(args, model):
    """The saved run's settings, with --epochs (the total) and the validation flags."""
    settings = _train_settings(args)
    settings.update(
        hidden=model.hidden_layer_sizes,
        activation=model.activation,
        solver=model.solver,
        lr=model.learning_rate_init,
        momentum=model.momentum,
        alpha=model.alpha,
        batch_size=model.batch_size,
        epochs=args.epochs or model.max_iter,
        dtype=model.coefs_[0].dtype.name,
    )
    model.set_params(max_iter=settings["epochs"], n_iter_no_change=settings["epochs"])
    return settings


def _hold_out(X, y, settings, seed, classification=True):
    """``X_fit, y_fit, (X_val, y_val) or None`` by --val-rows or --val-fraction.

    Memory-mapped data are split by index ranges, as --val-rows splits: the
    first ceil(fraction * n) rows are held out (views: no copy, nothing read).
    """
    from sklearn.model_selection import train_test_split

    from fastnn.estimators.validation import is_memory_mapped

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
    from fastnn.estimators.mlp import MLPClassifier, MLPRegressor

    full_batch = settings["batch_size"] == "full"
    regression = args.task == "regression"
    estimator = MLPRegressor if regression else MLPClassifier
    extra = {} if regression else {"class_weight": args.class_weight}
    return estimator(
        hidden_layer_sizes=settings["hidden"],
        activation=settings["activation"],
        solver=settings["solver"],
        learning_rate_init=settings["lr"],
        momentum=settings["momentum"],
        alpha=settings["alpha"],
        batch_size=n_fit if full_batch else settings["batch_size"],
        max_iter=settings["epochs"],
        n_iter_no_change=settings["epochs"],
        # a full batch is the same sum in any order: shuffling would only copy X
        shuffle=False if full_batch else (args.shuffle or True),
        random_state=args.seed,
        backend=args.backend,
        dtype=settings["dtype"],
        # the loaders keep pixels as uint8 bytes 0..255 (every uint8 X here is pixels)
        input_scale=1 / 255,
        dropout=0.0 if args.dropout is None else args.dropout,
        **extra,
    )


def _print_setup(model, X_fit, y_fit, validation, test):
    outputs = (
        (1 if y_fit.ndim == 1 else y_fit.shape[1])
        if is_regressor(model)
        else len(np.unique(y_fit))
    )
    sizes = "-".join(str(s) for s in [X_fit.shape[1], *model.hidden_layer_sizes, outputs])
    parts = [f"{X_fit.shape[0]:,} training rows"]
    if validation is not None:
        parts.append(f"{validation[0].shape[0]:,} validation rows")
    if test is not None:
        parts.append(f"{test[0].shape[0]:,} test rows")
    kind = f"{model.activation}, " if model.activation != "relu" else ""
    if getattr(model, "class_weight", None) is not None:
        kind += f"class_weight {model.class_weight}, "
    if _drops(model.dropout):
        kind += f"dropout {_rates(model.dropout)}, "
    print(
        f"network {sizes}, {kind}{model.solver}, batch {model.batch_size}, "
        f"{model.max_iter} epochs; " + ", ".join(parts)
    )


def _drops(dropout):
    return any(r > 0 for r in np.atleast_1d(dropout))


def _rates(dropout):
    """A dropout rate, or rates per hidden layer, as the --dropout flag writes them."""
    return ",".join(f"{r:g}" for r in np.atleast_1d(dropout))


def _fit(model, X, y, validation, settings, quiet, checkpoint=None, resume=False):
    """`model.fit` with a progress bar and a line every --log-every epochs.

    `checkpoint` is ``(every, path)``: save the model every `every` epochs.
    """
    from sklearn.exceptions import ConvergenceWarning
    from tqdm import tqdm

    total, every = settings["epochs"], settings["log_every"]
    bar = tqdm(
        total=total,
        initial=model.n_iter_ if resume else 0,
        unit="epoch",
        file=sys.stderr,
        dynamic_ncols=True,
        disable=quiet or not sys.stderr.isatty(),
    )

    def report(_model, record):
        if checkpoint and record["epoch"] % checkpoint[0] == 0:
            _model.save(checkpoint[1])
        bar.update(1)
        bar.set_postfix_str(
            f"loss {record['loss']:.4f}, {record['samples_per_second']:,.0f} samples/s",
            refresh=False,
        )
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
        from fastnn.cli.plotting import plot_history

        plot_history(model.history_, args.plot, title=f"fastnn {architecture(model)}")
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
