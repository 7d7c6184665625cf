"""`fastnn evaluate`, `predict` and `info`: what a saved model does on data, and what it is."""

import sys

import numpy as np

from fastnn.cli.data_sources import evaluation_data, require_labels


def evaluate(args):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    from fastnn.estimators.mlp import load

    model = load(args.model)
    if is_regressor(model):
        args.task = "regression"
    (X, y), name = evaluation_data(args, model.coefs_[0].dtype)
    require_labels(y, args)
    predicted = model.predict(X)
    print(f"model: {args.model} ({architecture(model)}, {model.coefs_[0].dtype})")
    print(f"data: {name}, {len(y):,} rows")
    if is_regressor(model):
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
    from fastnn.estimators.mlp import load

    model = load(args.model)
    if is_regressor(model):
        args.task = "regression"
    (X, _), name = evaluation_data(args, model.coefs_[0].dtype)
    labels = model.predict(X)
    if is_regressor(model):
        values = labels.reshape(len(labels), -1)
        header = "Id," + ",".join(
            ["Prediction"]
            if values.shape[1] == 1
            else [f"Prediction{j}" for j in range(values.shape[1])]
        )
        lines = [header] + [
            f"{i}," + ",".join(repr(float(v)) for v in row)
            for i, row in enumerate(values, start=1)
        ]
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
    from fastnn.estimators.mlp import load

    model = load(args.model)
    n_params = sum(W.size + b.size for W, b in zip(model.coefs_, model.intercepts_))
    print(f"model: {args.model}")
    kind = "regressor" if is_regressor(model) else "classifier"
    print(
        f"architecture: {architecture(model)} {kind} ({model.activation} hidden layers, "
        f"{model.out_activation_} output), {n_params:,} parameters"
    )
    print(f"dtype: {model.coefs_[0].dtype}")
    print(f"backend: {model.backend}")
    if not is_regressor(model):
        print(f"classes: {' '.join(str(c) for c in model.classes_)}")
        print(f"class_weight: {_class_weights(model)}")
    settings = f"solver {model.solver}, learning rate {model.learning_rate_init:g}"
    settings += f", batch size {model.batch_size}, alpha {model.alpha:g}"
    if model.solver == "sgd":
        settings += f", momentum {model.momentum:g}"
    rates = np.atleast_1d(getattr(model, "dropout", 0.0))
    dropout = ",".join(f"{r:g}" for r in rates) if (rates > 0).any() else "none"
    print(f"training: {settings}, random_state {model.random_state}")
    print(f"dropout: {dropout}")
    print(f"epochs trained: {model.n_iter_}")
    for line in _history_summary(model.history_):
        print(line)
    return 0


def _class_weights(model):
    """`class_weight` and, when set, the weight it gave each class."""
    if model.class_weight is None:
        return "none"
    table = getattr(model, "class_weight_", None)
    if table is None:
        return repr(model.class_weight)
    if table.ndim == 1:
        pairs = ", ".join(f"{c}: {w:.4g}" for c, w in zip(model.classes_, table))
    else:  # multilabel: the weights of 0 and 1 of each label
        pairs = ", ".join(f"{c}: {w0:.4g}/{w1:.4g}" for c, (w0, w1) in zip(model.classes_, table))
    return f"{model.class_weight!r} ({pairs})"


def _history_summary(history):
    if not history.get("epoch"):
        return ["history: none saved"]
    epochs = len(history["epoch"])
    seconds = sum(history["seconds"])
    lines = [
        f"history: {epochs} epochs in {seconds:.2f} s of training, "
        f"{np.median(history['samples_per_second']):,.0f} samples/s (median)"
    ]
    final = [f"loss {history['loss'][-1]:.4f}"]
    if history.get("train_accuracy"):
        final.append(f"training accuracy {history['train_accuracy'][-1]:.4f}")
    for key, what in (("val_accuracy", "validation accuracy"), ("val_r2", "validation R^2")):
        if history.get(key):
            val = history[key]
            best = int(np.argmax(val))
            final.append(
                f"{what} {val[-1]:.4f} (best {val[best]:.4f} at epoch {history['epoch'][best]})"
            )
    lines.append("  last epoch: " + ", ".join(final))
    return lines


def architecture(model):
    return "-".join(str(W.shape[0]) for W in model.coefs_) + f"-{model.coefs_[-1].shape[1]}"


def is_regressor(model):
    return type(model).__name__ == "MLPRegressor"
