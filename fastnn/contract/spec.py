"""The kernel contract's public functions, written once for every backend.

`define_contract(namespace, ops)` puts into a backend module the validating
wrappers over that backend's unchecked `ops`. Both backends therefore share
one signature, one docstring and one set of errors per function: the contract
cannot drift between them.
"""

from fastnn.contract import checks

CONTRACT = (
    "linear_forward",
    "linear_relu_forward",
    "linear_activation_forward",
    "relu_forward",
    "relu_backward",
    "activation_forward",
    "activation_backward",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "binary_cross_entropy",
    "binary_cross_entropy_backward",
    "squared_error",
    "squared_error_backward",
    "linear_backward",
    "csr_linear_forward",
    "csr_linear_backward",
    "compact_linear_forward",
    "compact_linear_backward",
    "dropout_forward",
    "dropout_backward",
    "sgd_update",
    "adam_update",
    "l2_penalty",
)


def define_contract(namespace, ops):
    """Define the public functions of CONTRACT in `namespace`, calling `ops`."""

    def linear_forward(x, W, b, out=None):
        """Affine layer: ``x @ W + b``.

        Parameters
        ----------
        x : ndarray (n, k)
        W : ndarray (k, m)
        b : ndarray (m,)
        out : ndarray (n, m), optional
            Written in place and returned; must not overlap `x` or `W`.

        Returns
        -------
        ndarray (n, m)
        """
        out = checks.linear_forward_args(x, W, b, out)
        return ops.linear_forward(x, W, b, out)

    def linear_relu_forward(x, W, b, out=None):
        """Fused affine layer and ReLU: ``maximum(x @ W + b, 0)``.

        Same arguments as `linear_forward`.
        """
        out = checks.linear_forward_args(x, W, b, out)
        return ops.linear_relu_forward(x, W, b, out)

    def linear_activation_forward(x, W, b, activation="relu", out=None):
        """Fused affine layer and activation: ``f(x @ W + b)``.

        `activation` is one of "identity", "logistic", "tanh", "relu"; the
        other arguments as in `linear_forward`.
        """
        code = checks.activation(activation)
        out = checks.linear_forward_args(x, W, b, out)
        return ops.linear_activation_forward(x, W, b, code, out)

    def activation_forward(z, activation, out=None):
        """Element-wise activation ``f(z)`` for "identity", "logistic", "tanh" or "relu".

        logistic is ``1 / (1 + exp(-z))`` (0 and 1 at the extremes, no
        overflow warning); `out` may be `z`.
        """
        code = checks.activation(activation)
        out = checks.elementwise_args(("z",), (z,), out)
        return ops.activation_forward(z, code, out)

    def activation_backward(dout, a, activation, out=None):
        """Gradient through an activation, from its output ``a = f(z)``.

        ``dout * f'(z)`` written through a, as scikit-learn's DERIVATIVES:
        identity 1, logistic ``a (1 - a)``, tanh ``1 - a^2``, relu a gate
        (`dout` where ``a > 0``, else 0). `out` may be `dout`.
        """
        code = checks.activation(activation)
        out = checks.elementwise_args(("dout", "a"), (dout, a), out)
        return ops.activation_backward(dout, a, code, out)

    def relu_forward(z, out=None):
        """ReLU: ``maximum(z, 0)``, element-wise; `out` may be `z`."""
        out = checks.elementwise_args(("z",), (z,), out)
        return ops.relu_forward(z, out)

    def relu_backward(dout, a, out=None):
        """ReLU gradient: `dout` where ``a > 0``, else 0.

        Parameters
        ----------
        dout : ndarray (n, m)
            Gradient of the loss with respect to the ReLU's output.
        a : ndarray (n, m)
            The ReLU's input or its output (both are positive at the same places).
        out : ndarray (n, m), optional
            May be `dout`.
        """
        out = checks.elementwise_args(("dout", "a"), (dout, a), out)
        return ops.relu_backward(dout, a, out)

    def softmax(z, out=None):
        """Row-wise softmax, max-subtracted so that large logits do not overflow.

        `out` may be `z`.
        """
        out = checks.elementwise_args(("z",), (z,), out)
        return ops.softmax(z, out)

    def softmax_cross_entropy(logits, y, probs_out=None, scale=None):
        """Cross-entropy of softmax(`logits`) against integer labels `y`.

        Parameters
        ----------
        logits : ndarray (n, C)
        y : integer ndarray (n,), values in [0, C)
        probs_out : ndarray (n, C), optional
            Receives the softmax probabilities; may be `logits`.
        scale : float, optional
            The normaliser: the loss is ``scale * sum_i loss_i``. Default 1/n
            (the mean); a slice of a sharded batch passes 1/(global n).

        Returns
        -------
        loss : float
            ``scale * sum_i (logsumexp(z_i) - z_i[y_i])``, accumulated in float64.
        probs : ndarray (n, C)
        """
        probs_out = checks.head_args("logits", logits, "y", y, "probs_out", probs_out, True)
        scale = checks.loss_scale(scale, logits.shape[0])
        return ops.softmax_cross_entropy(logits, y, probs_out, scale)

    def softmax_cross_entropy_backward(probs, y, out=None, scale=None):
        """Gradient of `softmax_cross_entropy` with respect to the logits.

        Returns ``scale * (probs - onehot(y))`` (scale 1/n by default); `out`
        may be `probs`.
        """
        out = checks.head_args("probs", probs, "y", y, "out", out, True)
        scale = checks.loss_scale(scale, probs.shape[0])
        return ops.softmax_cross_entropy_backward(probs, y, out, scale)

    def binary_cross_entropy(logits, Y, probs_out=None, scale=None):
        """Binary cross-entropy of logistic(`logits`) against 0/1 targets `Y`, per output.

        For binary and multilabel classification. Computed from the logits as
        ``max(z, 0) - Y z + log1p(exp(-|z|))``, so logits of +-1000 give finite
        losses and exact probabilities of 0 and 1.

        Parameters
        ----------
        logits : ndarray (n, C)
        Y : ndarray (n, C) of the logits' dtype, targets in [0, 1]
        probs_out : ndarray (n, C), optional
            Receives ``logistic(logits)``; may be `logits`.
        scale : float, optional
            Default 1/n: scikit-learn's ``binary_log_loss``, summed over outputs.

        Returns
        -------
        loss : float
            ``scale * sum_ij`` of the per-output losses, accumulated in float64.
        probs : ndarray (n, C)
        """
        probs_out = checks.head_args("logits", logits, "Y", Y, "probs_out", probs_out, False)
        scale = checks.loss_scale(scale, logits.shape[0])
        return ops.binary_cross_entropy(logits, Y, probs_out, scale)

    def binary_cross_entropy_backward(probs, Y, out=None, scale=None):
        """Gradient of `binary_cross_entropy` with respect to the logits.

        Returns ``scale * (probs - Y)`` (scale 1/n by default); `out` may be `probs`.
        """
        out = checks.head_args("probs", probs, "Y", Y, "out", out, False)
        scale = checks.loss_scale(scale, probs.shape[0])
        return ops.binary_cross_entropy_backward(probs, Y, out, scale)

    def squared_error(pred, Y, scale=None):
        """Squared error of predictions `pred` (n, C) against targets `Y` (n, C).

        Returns ``scale * 0.5 * sum_ij (pred_ij - Y_ij)^2`` (float64
        accumulation); with the default scale 1/n this is scikit-learn's
        ``0.5 * mean squared error`` for one output, and for several outputs
        the squares of a row are summed (the loss whose gradient
        `squared_error_backward` gives).
        """
        checks.head_args("pred", pred, "Y", Y, "out", None, False)
        scale = checks.loss_scale(scale, pred.shape[0])
        return ops.squared_error(pred, Y, scale)

    def squared_error_backward(pred, Y, out=None, scale=None):
        """Gradient of `squared_error`: ``scale * (pred - Y)``; `out` may be `pred`."""
        out = checks.head_args("pred", pred, "Y", Y, "out", out, False)
        scale = checks.loss_scale(scale, pred.shape[0])
        return ops.squared_error_backward(pred, Y, out, scale)

    def linear_backward(dout, x, W, dx=None, dW=None, db=None, need_dx=True):
        """Gradients of the affine layer ``x @ W + b``.

        Parameters
        ----------
        dout : ndarray (n, m)
            Gradient of the loss with respect to the layer's output.
        x : ndarray (n, k)
        W : ndarray (k, m)
        dx, dW, db : ndarray, optional
            Output buffers of shapes (n, k), (k, m), (m,).
        need_dx : bool
            False skips ``dout @ W.T`` (the first layer needs no input gradient).

        Returns
        -------
        dx : ndarray (n, k) or None
        dW : ndarray (k, m)
            ``x.T @ dout``
        db : ndarray (m,)
            ``dout.sum(axis=0)``, accumulated in float64.
        """
        need_dx = checks.flag("need_dx", need_dx)
        dx, dW, db = checks.linear_backward_args(dout, x, W, dx, dW, db, need_dx)
        return ops.linear_backward(dout, x, W, dx, dW, db, need_dx)

    def dropout_forward(a, rows, seed, step, rate, out=None):
        """Inverted dropout: ``a * keep / (1 - rate)``, each unit kept with probability
        ``1 - rate``.

        The mask is not drawn from a stream but hashed from ``(seed, step, rows[i],
        unit)``: the same arguments give the same mask on either backend, for any
        split of the rows, and `dropout_backward` recomputes it instead of storing it.

        Parameters
        ----------
        a : ndarray (n, m)
            Activations of one layer for n rows.
        rows : int64 ndarray (n,)
            Each row's number in the data set (the key of its mask, so that a row
            keeps its mask wherever it is in a batch).
        seed : int in [0, 2**64)
        step : int in [0, 2**63)
            The training step: a new mask at each step.
        rate : float in [0, 1)
            The probability that a unit is dropped.
        out : ndarray (n, m), optional
            Written in place and returned; may be `a`.
        """
        out, seed, step, rate, scale = checks.dropout_args(
            ("a",), (a,), rows, seed, step, rate, out
        )
        return ops.dropout_forward(a, rows, seed, step, rate, scale, out)

    def dropout_backward(dout, rows, seed, step, rate, out=None):
        """Gradient through `dropout_forward` with the same arguments:
        ``dout * keep / (1 - rate)``, the forward pass's mask recomputed."""
        out, seed, step, rate, scale = checks.dropout_args(
            ("dout",), (dout,), rows, seed, step, rate, out
        )
        return ops.dropout_backward(dout, rows, seed, step, rate, scale, out)

    def sgd_update(param, grad, lr, velocity=None, momentum=0.0, nesterov=False):
        """Stochastic gradient descent step, in place.

        Without `velocity`: ``param -= lr * grad``. With it:
        ``velocity = momentum * velocity - lr * grad`` then ``param += velocity``
        (or, with `nesterov`, ``param += momentum * velocity - lr * grad``).
        Returns `param`.
        """
        lr, momentum = checks.sgd_update_args(param, grad, lr, velocity, momentum)
        nesterov = checks.flag("nesterov", nesterov)
        return ops.sgd_update(param, grad, lr, velocity, momentum, nesterov)

    def adam_update(param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        """Adam step number `t` (from 1), in place on `param`, `m` and `v`.

        ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2) g^2``,
        ``param -= lr_t m / (sqrt(v) + eps)`` with the bias-corrected step
        ``lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)`` (scikit-learn's form).
        Returns `param`.
        """
        t, lr, beta1, beta2, eps = checks.adam_update_args(
            param, grad, m, v, t, lr, beta1, beta2, eps
        )
        return ops.adam_update(param, grad, m, v, t, lr, beta1, beta2, eps)

    def csr_linear_forward(indptr, indices, data, W, b, out=None):
        """Affine layer of a sparse input: ``x @ W + b`` with x in CSR form.

        Parameters
        ----------
        indptr : int32 or int64 ndarray (n + 1,)
            Row i's entries are ``indices[indptr[i]:indptr[i + 1]]`` (columns)
            and ``data[...]`` (values), as in `scipy.sparse.csr_matrix`.
        indices : ndarray (nnz,) of indptr's dtype, values in [0, k)
        data : ndarray (nnz,), the dtype of W
        W : ndarray (k, m)
        b : ndarray (m,)
        out : ndarray (n, m), optional

        Returns
        -------
        ndarray (n, m)
        """
        n, dtype = checks.csr_args(indptr, indices, data, W)
        checks.float_array("b", b, 1, dtype)
        checks.shape_is("b", b, (W.shape[1],))
        out = checks.out_buffer("out", out, (n, W.shape[1]), dtype)
        checks.no_overlap(
            "out",
            out,
            ("indptr", indptr),
            ("indices", indices),
            ("data", data),
            ("W", W),
            ("b", b),
        )
        return ops.csr_linear_forward(indptr, indices, data, W, b, out)

    def csr_linear_backward(indptr, indices, data, dout, W, dW=None):
        """Weight gradient of `csr_linear_forward`: ``dW = x.T @ dout``, x in CSR form.

        `W` (k, m) gives the shape and dtype (its values are not read); the
        bias gradient is ``dout.sum(0)`` and a sparse input needs no gradient.
        Returns dW (k, m), written in place when given.
        """
        n, dtype = checks.csr_args(indptr, indices, data, W)
        checks.float_array("dout", dout, 2, dtype)
        checks.shape_is("dout", dout, (n, W.shape[1]))
        dW = checks.out_buffer("dW", dW, W.shape, dtype)
        checks.no_overlap(
            "dW",
            dW,
            ("indptr", indptr),
            ("indices", indices),
            ("data", data),
            ("dout", dout),
            ("W", W),
        )
        return ops.csr_linear_backward(indptr, indices, data, dout, dW)

    def compact_linear_forward(indptr, indices, data, W, b, rows=None, xs=1.0, out=None):
        """Affine layer of the `rows` of X, read from X's nonzeros by row:
        ``xs * X[rows] @ W + b``.

        The compact form of X that the training loop's first layer reads
        (`fastnn.engine.compact`): each stored entry adds a row of W, so a row
        costs its nonzeros times m. Entries not stored are exact zeros (also
        against an inf or NaN weight, where a dense product gives NaN).

        Parameters
        ----------
        indptr : int32 or int64 ndarray (n_X + 1,)
            Row i of X is ``indices[indptr[i]:indptr[i + 1]]`` (columns) and
            ``data[...]`` (values), as in `scipy.sparse.csr_matrix`.
        indices : uint16, int32 or int64 ndarray (nnz,), values in [0, k)
        data : ndarray (nnz,) of W's dtype, or uint8
            Each value is read as ``dtype(value) * dtype(xs)``.
        W : ndarray (k, m)
        b : ndarray (m,)
        rows : int64 ndarray (n,), optional
            The rows of X to read, in this order (repeats allowed); default all.
        xs : float
            The input scale (uint8 pixels: 1/255, say).
        out : ndarray (n, m), optional

        Returns
        -------
        ndarray (n, m)
        """
        rows, xs, dtype = checks.compact_args(indptr, indices, data, rows, xs, W)
        checks.float_array("b", b, 1, dtype)
        checks.shape_is("b", b, (W.shape[1],))
        out = checks.out_buffer("out", out, (rows.shape[0], W.shape[1]), dtype)
        checks.no_overlap(
            "out",
            out,
            ("indptr", indptr),
            ("indices", indices),
            ("data", data),
            ("rows", rows),
            ("W", W),
            ("b", b),
        )
        return ops.compact_linear_forward(indptr, indices, data, rows, xs, W, b, out)

    def compact_linear_backward(
        indptr, indices, data, dout, W, rows=None, xs=1.0, dW=None, touched=None
    ):
        """Weight gradient of `compact_linear_forward`: ``dW = (xs * X[rows]).T @ dout``.

        `W` (k, m) gives the shape and dtype (its values are not read); the other
        arguments as in `compact_linear_forward`, `dout` (n, m).

        touched : uint8 ndarray (k,), optional
            The training step's form: only the rows of dW of columns that the
            rows read store an entry in are written, each zeroed first unless
            already flagged (``touched[c] != 0``: it is then added to), and
            flagged ``touched[c] = 1``; every other row of dW is left as it is
            (so dW must be given). Without it, dW is the whole gradient.

        Returns dW (k, m), written in place when given.
        """
        rows, xs, dtype = checks.compact_args(indptr, indices, data, rows, xs, W)
        checks.float_array("dout", dout, 2, dtype)
        checks.shape_is("dout", dout, (rows.shape[0], W.shape[1]))
        if touched is not None and dW is None:
            raise ValueError("dW must be given with touched: the rows not reached keep its values")
        dW = checks.out_buffer("dW", dW, W.shape, dtype)
        inputs = (
            ("indptr", indptr),
            ("indices", indices),
            ("data", data),
            ("rows", rows),
            ("dout", dout),
            ("W", W),
        )
        checks.no_overlap("dW", dW, *inputs)
        if touched is not None:
            checks.flags_array("touched", touched, W.shape[0])
            checks.no_overlap("touched", touched, ("dW", dW), *inputs)
        return ops.compact_linear_backward(indptr, indices, data, rows, xs, dout, dW, touched)

    def l2_penalty(W, dW, scale):
        """L2 weight decay: ``dW += scale * W`` in place; returns ``0.5 * scale * ||W||^2``.

        With ``scale = alpha / n`` this is scikit-learn's MLP regularisation term.
        """
        scale = checks.l2_penalty_args(W, dW, scale)
        return ops.l2_penalty(W, dW, scale)

    defined = locals()
    for name in CONTRACT:
        function = defined[name]
        function.__module__ = namespace["__name__"]
        function.__qualname__ = function.__name__
        namespace[function.__name__] = function
