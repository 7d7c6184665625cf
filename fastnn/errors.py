"""The error a diverged training run raises."""

NON_FINITE_WEIGHTS = (
    "Solver produced non-finite parameter weights. The input data may "
    "contain large values and need to be preprocessed."
)


class DivergenceError(FloatingPointError, ValueError):
    """The training loss became NaN or inf; the model holds its last finite weights.

    Attributes `epoch` and `batch` (both from 1) say where, `learning_rate` at
    what step size (L-BFGS: `epoch` is the iteration, the others None). It is
    also a ValueError, which is what scikit-learn raises for non-finite weights.
    """

    def __init__(self, message, *, epoch, batch, learning_rate):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.learning_rate = learning_rate
