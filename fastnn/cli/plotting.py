"""Training curves from an estimator's `history_`, drawn with matplotlib.

matplotlib is an optional dependency: ``pip install "fastnn[plot]"``.
"""

MISSING_MATPLOTLIB = (
    'plotting needs matplotlib, which is not installed: pip install "fastnn[plot]" '
    "(or pip install matplotlib)"
)


def require_matplotlib():
    """Import matplotlib with a file-only backend; ImportError saying how to install it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc
    matplotlib.use("Agg")  # draws to files, needs no display


def plot_history(history, path, title=None):
    """Draw loss and accuracy (or R^2) per epoch side by side and save the figure to `path`.

    Parameters
    ----------
    history : dict of lists
        An estimator's `history_` (or its JSON): "epoch", "loss", and any of
        "train_accuracy" and "val_accuracy" (a classifier) or "val_r2" (a regressor).
    path : path
        Image file to write; the format follows its extension (.png, .svg, .pdf).
    title : str, optional
        Figure title.
    """
    require_matplotlib()
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not history.get("epoch"):
        raise ValueError("the history is empty: nothing to plot")
    epochs = history["epoch"]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    try:
        loss_ax.plot(epochs, history["loss"], color="tab:blue", label="training loss")
        regression = "val_r2" in history and "train_accuracy" not in history
        loss_ax.set(
            xlabel="epoch",
            ylabel="squared error" if regression else "cross-entropy loss",
            title="Loss",
        )
        loss_ax.legend()
        for key, label, color in (
            ("train_accuracy", "training", "tab:blue"),
            ("val_accuracy", "validation", "tab:orange"),
            ("val_r2", "validation", "tab:orange"),
        ):
            if history.get(key):
                acc_ax.plot(epochs, history[key], color=color, label=label)
        acc_ax.set(
            xlabel="epoch",
            ylabel="R^2" if regression else "accuracy",
            title="R^2" if regression else "Accuracy",
        )
        for ax in (loss_ax, acc_ax):
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if acc_ax.has_data():
            acc_ax.legend(loc="lower right")
        if title:
            fig.suptitle(title)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
