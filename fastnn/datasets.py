"""Data sets. The default, `load_digits`, ships with scikit-learn: no network."""

import numpy as np


def load_digits(dtype="float32", test_size=0.2, random_state=0):
    """scikit-learn's 8x8 digits (1,797 images), pixels scaled to [0, 1].

    Returns ``X_train, X_test, y_train, y_test`` from a seeded stratified split;
    X is C-contiguous in `dtype`, y is int64.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    X = (digits.data / 16.0).astype(dtype)
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    return (np.ascontiguousarray(X_train), np.ascontiguousarray(X_test), y_train, y_test)
