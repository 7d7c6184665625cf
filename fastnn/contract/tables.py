"""Names of activations and output heads, and the integer codes the jitted loops take.

One table each, as scikit-learn's ACTIVATIONS/DERIVATIVES: a new activation or
head is a new row here and one branch in each backend, not a dozen edits.
"""

# Hidden-layer activations; the index is the code passed to the kernels.
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
IDENTITY, LOGISTIC, TANH, RELU = range(4)

# Output heads: the output activation (scikit-learn's `out_activation_`) and its loss.
#   softmax  + cross-entropy against integer labels     (multiclass)
#   logistic + binary cross-entropy against 0/1 targets (binary, multilabel)
#   identity + squared error (0.5 * sum over outputs)   (regression)
#   exp      + half Poisson deviance, summed over outputs (regression of counts, y >= 0)
HEADS = ("softmax", "logistic", "identity", "exp")
SOFTMAX_HEAD, LOGISTIC_HEAD, IDENTITY_HEAD, EXP_HEAD = range(4)
HEAD_LOSSES = {
    "softmax": "log_loss",
    "logistic": "binary_log_loss",
    "identity": "squared_error",
    "exp": "poisson",
}


def activation_code(name):
    """The code of activation `name`; ValueError naming the choices otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return ACTIVATIONS.index(name)


def head_code(name):
    """The code of output head `name` (an output activation name)."""
    if name not in HEADS:
        raise ValueError(f"output head must be one of {HEADS}, got {name!r}")
    return HEADS.index(name)


# Solvers, as the compiled epoch loop takes them
SOLVERS = ("sgd", "adam")
SGD, ADAM = range(2)

# What the first layer reads: a dense batch, or X's nonzeros by row (its
# compact form, fastnn.engine.compact) read in place
INPUTS = ("dense", "compact")
DENSE_INPUT, COMPACT_INPUT = range(2)

# Slots of the statistics array an epoch accumulates into, and its status codes
LOSS, WEIGHT, CORRECT, BATCHES, STATUS, BAD_BATCH = range(6)
N_STATS = 6
OK, LOSS_NOT_FINITE, WEIGHTS_NOT_FINITE = 0, 1, 2
