"""Where `fastnn` commands get their data: the --data sources, and `fastnn convert`."""

import os
import sys

DATA_HELP = (
    "digits (scikit-learn's 8x8 digits), mnist (downloaded once into "
    "$FASTNN_DATA or ~/.cache/fastnn), a directory of MNIST IDX files, a directory "
    "holding X.npy and y.npy (memory-mapped: larger than memory is fine; see "
    "'fastnn convert'), a .csv file with a header line, or an .npz file with arrays X and y"
)


def load_data(args, dtype, subset):
    """``(X, y)`` of `subset` ("train" or "test") of the --data source; None if it has none.

    digits and MNIST have both subsets, an IDX directory has "test" when the t10k
    files are there, a single file is all "train". y is None for unlabelled files.
    """
    from fastnn import datasets

    spec = args.data
    task = getattr(args, "task", "classification")
    if spec == "digits":
        if task == "regression":
            raise ValueError(
                "--data digits is a classification data set; give a .csv or "
                ".npz file for --task regression"
            )
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


def evaluation_data(args, dtype):
    """The test subset where the source has one, else all of it; and its name."""
    test = load_data(args, dtype, "test")
    if test is not None:
        return test, f"{args.data} (test set)"
    return load_data(args, dtype, "train"), args.data


def require_labels(y, args):
    if y is None:
        raise ValueError(
            f"--data {args.data} has no labels (a .csv needs a {args.label!r} column, "
            "an .npz an array y)"
        )


def convert(args):
    from fastnn.datasets.convert import convert as convert_files

    rows, dtype = convert_files(
        args.source,
        args.directory,
        label=args.label,
        subset=args.subset,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    print(f"wrote {rows:,} rows ({dtype}) to {os.path.join(args.directory, 'X.npy')}")
    return 0
