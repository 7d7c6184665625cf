"""Every function of the kernel contract, through its public (validating) wrapper."""

import numpy as np

from fastnn import get_backend

from .common import BACKENDS, DTYPES

# (n, k, m): config b's first layer, config d's hidden layer (config a: bench_step)
LINEAR_SIZES = ["128x784x128", "512x1024x1024"]
# (n, m): config d's hidden activation, the seed recipe's full-batch logits
ELEMENTWISE_SIZES = ["512x1024", "42000x10"]
PARAM_SIZES = ["784x128", "1024x1024"]


def _shape(size):
    return tuple(int(s) for s in size.split("x"))


class Linear:
    params = [BACKENDS, DTYPES, LINEAR_SIZES]
    param_names = ["backend", "dtype", "size"]

    def setup(self, backend, dtype, size):
        n, k, m = _shape(size)
        rng = np.random.default_rng(0)
        self.be = get_backend(backend)
        self.x = rng.random((n, k)).astype(dtype)
        self.W = rng.standard_normal((k, m)).astype(dtype)
        self.b = rng.standard_normal(m).astype(dtype)
        self.out = np.empty((n, m), dtype)
        self.dout = rng.standard_normal((n, m)).astype(dtype)
        self.dx = np.empty((n, k), dtype)
        self.dW = np.empty((k, m), dtype)
        self.db = np.empty(m, dtype)
        # warm the JIT: compile time is timed in bench_startup
        self.time_linear_forward(backend, dtype, size)
        self.time_linear_relu_forward(backend, dtype, size)
        self.time_linear_backward(backend, dtype, size)

    def time_linear_forward(self, backend, dtype, size):
        self.be.linear_forward(self.x, self.W, self.b, out=self.out)

    def time_linear_relu_forward(self, backend, dtype, size):
        self.be.linear_relu_forward(self.x, self.W, self.b, out=self.out)

    def time_linear_backward(self, backend, dtype, size):
        self.be.linear_backward(self.dout, self.x, self.W, self.dx, self.dW, self.db)


class Elementwise:
    params = [BACKENDS, DTYPES, ELEMENTWISE_SIZES]
    param_names = ["backend", "dtype", "size"]

    def setup(self, backend, dtype, size):
        n, m = _shape(size)
        rng = np.random.default_rng(0)
        self.be = get_backend(backend)
        self.z = (rng.standard_normal((n, m)) * 4).astype(dtype)
        self.d = rng.standard_normal((n, m)).astype(dtype)
        self.y = rng.integers(0, m, n).astype(np.intp)
        self.out = np.empty((n, m), dtype)
        self.probs = self.be.softmax(self.z)
        for name in dir(self):
            if name.startswith("time_"):
                getattr(self, name)(backend, dtype, size)

    def time_relu_forward(self, backend, dtype, size):
        self.be.relu_forward(self.z, out=self.out)

    def time_relu_backward(self, backend, dtype, size):
        self.be.relu_backward(self.d, self.z, out=self.out)

    def time_softmax(self, backend, dtype, size):
        self.be.softmax(self.z, out=self.out)

    def time_softmax_cross_entropy(self, backend, dtype, size):
        self.be.softmax_cross_entropy(self.z, self.y, probs_out=self.out)

    def time_softmax_cross_entropy_backward(self, backend, dtype, size):
        self.be.softmax_cross_entropy_backward(self.probs, self.y, out=self.out)


class Updates:
    params = [BACKENDS, DTYPES, PARAM_SIZES]
    param_names = ["backend", "dtype", "size"]

    def setup(self, backend, dtype, size):
        shape = _shape(size)
        rng = np.random.default_rng(0)
        self.be = get_backend(backend)
        self.p = rng.standard_normal(shape).astype(dtype)
        self.g = (rng.standard_normal(shape) * 1e-3).astype(dtype)
        self.m = np.zeros(shape, dtype)
        self.v = np.zeros(shape, dtype)
        self.dW = np.zeros(shape, dtype)
        for name in dir(self):
            if name.startswith("time_"):
                getattr(self, name)(backend, dtype, size)

    def time_sgd_update(self, backend, dtype, size):
        self.be.sgd_update(self.p, self.g, 1e-3)

    def time_sgd_update_momentum(self, backend, dtype, size):
        self.be.sgd_update(self.p, self.g, 1e-3, velocity=self.m, momentum=0.9, nesterov=True)

    def time_adam_update(self, backend, dtype, size):
        self.be.adam_update(self.p, self.g, self.m, self.v, 10, 1e-3)

    def time_l2_penalty(self, backend, dtype, size):
        self.be.l2_penalty(self.p, self.dW, 1e-6)
