"""One training step (forward, loss, backward, SGD update) of configurations a-d."""

from .common import BACKENDS, train_step


class TrainStep:
    # config a in float64 too: the seed recipe's own dtype
    params = [BACKENDS, ["a", "b", "c", "d"], ["float32", "float64"]]
    param_names = ["backend", "config", "dtype"]

    def setup(self, backend, config, dtype):
        if dtype == "float64" and config != "a":
            raise NotImplementedError  # asv skips this combination
        self.step = train_step(backend, config, dtype)
        self.step()  # compiles, and touches every buffer

    def time_step(self, backend, config, dtype):
        self.step()

    def peakmem_step(self, backend, config, dtype):
        self.step()


class StepMemory:
    """Peak memory after 10 and after 1000 steps: equal when a step allocates nothing."""

    params = [BACKENDS, [10, 1000]]
    param_names = ["backend", "steps"]

    def setup(self, backend, steps):
        self.step = train_step(backend, "b", "float32")
        self.step()

    def peakmem_steps(self, backend, steps):
        for _ in range(steps):
            self.step()
