"""`solver="lbfgs"`: scipy's L-BFGS-B over the flat parameter buffer.

As scikit-learn's `_fit_lbfgs`: the objective is the mean loss of the whole
data set (weighted by `sample_weight`, normalised by the weight sum) plus
``alpha / (2 n) * sum ||W||^2`` over the weights (the flat buffer's first
`n_coef` entries); `max_iter` bounds the iterations, `max_fun` the loss
evaluations, `tol` is the gradient tolerance, `n_iter_` is the iterations
run, and a stop for any reason but convergence warns with a
ConvergenceWarning. The loss and gradient come from the fused training step
(`fastnn.engine.step.TrainStep.batch_grads`) over chunks of rows, each chunk's
gradient scaled by 1 / (total weight) and summed in float64, so memory does
not grow with n. scipy works in float64: a float32 model's weights are
rounded to float32 for each evaluation and its gradient widened.
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastnn.engine.interrupt import DeferredInterrupt
from fastnn.engine.params import FlatParameters
from fastnn.engine.sparse_step import SparseTrainStep, is_sparse
from fastnn.engine.step import TrainStep
from fastnn.errors import NON_FINITE_WEIGHTS, DivergenceError

# Rows per chunk of the loss and gradient: large enough for efficient GEMMs,
# small enough that the step's buffers stay a few MB
CHUNK_ROWS = 4096


class LbfgsObjective:
    """``theta -> (loss, gradient)`` of a model's training data, for scipy.

    Parameters
    ----------
    model : BaseMLP
        Its `_params` receive each theta; its head, activation, alpha and
        backend define the loss.
    X : ndarray (n, k), the model's dtype or uint8, or a CSR matrix
    labels, Y : the encoded targets (one of them None)
    sample_weight : float64 ndarray (n,) or None
    """

    def __init__(self, model, X, labels, Y, sample_weight):
        self.params = model._params
        self.X, self.labels, self.Y, self.sw = X, labels, Y, sample_weight
        n = X.shape[0]
        total = float(sample_weight.sum()) if sample_weight is not None else float(n)
        if not total > 0:
            raise ValueError("sample_weight sums to 0: there is nothing to fit")
        self.scale = 1.0 / total
        self.alpha = float(model.alpha)
        self.input_scale = model.input_scale
        self.chunk = max(1, min(n, CHUNK_ROWS))
        self.grads = FlatParameters(self.params.layer_sizes, self.params.data.dtype)
        step = SparseTrainStep if is_sparse(X) else TrainStep
        self.step = step(
            model.backend,
            self.params.coefs,
            self.params.intercepts,
            self.chunk,
            model.activation,
            model._head,
            self.grads.coefs,
            self.grads.intercepts,
        )
        self.gradient = np.empty(self.params.size, np.float64)
        self.weights = np.empty(self.params.n_coef, np.float64)
        self.last_loss = np.nan

    def __call__(self, theta):
        np.copyto(self.params.data, theta, casting="same_kind")
        self.gradient[:] = 0.0
        loss = 0.0
        n = self.X.shape[0]
        for start in range(0, n, self.chunk):
            rows = slice(start, min(start + self.chunk, n))
            chunk_loss, _ = self.step.batch_grads(
                self.X[rows],
                None if self.labels is None else self.labels[rows],
                None if self.Y is None else self.Y[rows],
                None if self.sw is None else self.sw[rows],
                self.scale,
                self.input_scale,
            )
            loss += chunk_loss
            np.add(self.gradient, self.grads.data, out=self.gradient)
        if self.alpha > 0:
            # on the weights as the model holds them (float32 ones included)
            w = self.weights
            np.copyto(w, self.params.data[: self.params.n_coef])
            loss += 0.5 * self.alpha * self.scale * float(np.dot(w, w))
            self.gradient[: self.params.n_coef] += (self.alpha * self.scale) * w
        self.last_loss = loss
        # a copy: scipy may keep the array it was given
        return loss, self.gradient.copy()


def fit_lbfgs(model, X, targets, sample_weight):
    """Minimise `model`'s loss on (X, targets) with L-BFGS-B from its current weights.

    Sets `n_iter_` and `loss_`. Ctrl-C stops after the current iteration and
    leaves the model at its last iterate; non-finite weights restore the
    starting weights and raise `fastnn.DivergenceError`.
    """
    import scipy.optimize

    model._ensure_flat()
    params = model._params
    labels, Y = targets
    objective = LbfgsObjective(model, X, labels, Y, sample_weight)
    start = params.data.copy()
    last = params.data.astype(np.float64)
    iterations = [0]

    def each_iteration(xk):
        last[...] = xk
        iterations[0] += 1
        if model.verbose:
            print(f"Iteration {iterations[0]}, loss = {objective.last_loss:.8f}")
        if interrupt.pending:
            raise KeyboardInterrupt

    with DeferredInterrupt() as interrupt:
        try:
            result = scipy.optimize.minimize(
                objective,
                last.copy(),
                method="L-BFGS-B",
                jac=True,
                callback=each_iteration,
                options={"maxfun": model.max_fun, "maxiter": model.max_iter, "gtol": model.tol},
            )
        except KeyboardInterrupt:
            np.copyto(params.data, last, casting="same_kind")
            model.n_iter_ = iterations[0]
            raise
    if not np.isfinite(result.x).all() or not np.isfinite(result.fun):
        np.copyto(params.data, start)
        raise DivergenceError(
            f"L-BFGS diverged after {result.nit} iteration(s): the loss or the weights "
            f"became NaN or inf. The weights are the starting ones. {NON_FINITE_WEIGHTS}",
            epoch=int(result.nit),
            batch=None,
            learning_rate=None,
        )
    np.copyto(params.data, result.x, casting="same_kind")
    model.n_iter_ = min(int(result.nit), model.max_iter)
    model.loss_ = float(result.fun)
    if result.status != 0:
        message = (
            f"lbfgs failed to converge after {model.n_iter_} iteration(s) "
            f"(status={result.status}):\n{result.message}\n"
        )
        if model.n_iter_ == model.max_iter:
            message += (
                "\nIncrease the number of iterations to improve the convergence "
                f"(max_iter={model.max_iter})."
            )
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
