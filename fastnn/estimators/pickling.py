"""Pickling, copying and cloning an estimator whose weights are views of one flat buffer.

`coefs_` and `intercepts_` are views of `FlatParameters.data`. Pickle would
store each view as a separate copy (twice the bytes) and lose the link, so a
pickle holds the flat buffer once and the views are rebuilt on load. Nothing
compiled is stored: the training step, its buffers and the backend module are
made anew by each `fit`, so a pickle holds only arrays and plain Python
objects, and a loaded model needs no Numba until it predicts or trains.
"""

import inspect

from fastnn.engine.optim import own_arrays
from fastnn.engine.params import FlatParameters
from fastnn.estimators.validation import validate_layers


class PicklableParameters:
    """Mixin of `BaseMLP`: `__getstate__` / `__setstate__` and `_ensure_flat`."""

    def __getstate__(self):
        state = super().__getstate__()  # scikit-learn's: adds _sklearn_version
        state = dict(state)
        state.pop("_epoch_state", None)  # rollback scratch of a fit in progress
        params = state.pop("_params", None)
        if params is not None and "coefs_" in state:
            if params.views_of(self.coefs_, self.intercepts_):
                del state["coefs_"], state["intercepts_"]
                state["_flat_parameters"] = (params.layer_sizes, params.data)
        return state

    def __setstate__(self, state):
        flat = state.pop("_flat_parameters", None)
        super().__setstate__(state)
        # parameters added since the pickle was written take their defaults
        # (get_params, clone and save read every parameter)
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if param.default is not param.empty and name not in self.__dict__:
                setattr(self, name, param.default)
        if flat is not None:
            sizes, data = flat
            # a read-only buffer (joblib's mmap_mode) predicts as it is; fit copies it
            self._params = FlatParameters(sizes, data.dtype, data)
            self.coefs_, self.intercepts_ = self._params.coefs, self._params.intercepts

    def _ensure_flat(self):
        """Make coefs_/intercepts_ views of one writeable flat buffer again.

        They stop being views when a user assigns new arrays; the arrays
        themselves are the truth. Read-only buffers (a memory-mapped pickle's
        weights and optimizer state) are copied before training writes to them.
        """
        if hasattr(self, "_optimizer"):
            own_arrays(self._optimizer)
        params = getattr(self, "_params", None)
        if (
            params is not None
            and params.data.flags.writeable
            and params.views_of(self.coefs_, self.intercepts_)
        ):
            return
        coefs, intercepts = validate_layers(
            self.coefs_, self.intercepts_, self._hidden, where="coefs_, intercepts_"
        )
        n_in, n_out = coefs[0].shape[0], coefs[-1].shape[1]
        if getattr(self, "n_features_in_", n_in) != n_in:
            raise ValueError(
                f"coefs_: the first layer takes {n_in} features, the model was "
                f"fitted with n_features_in_={self.n_features_in_}"
            )
        if getattr(self, "n_outputs_", n_out) != n_out:
            raise ValueError(
                f"coefs_: the last layer has {n_out} outputs, the targets need "
                f"n_outputs_={self.n_outputs_}"
            )
        self._params = FlatParameters.pack(coefs, intercepts, self._dtype)
        self.coefs_ = self._params.coefs
        self.intercepts_ = self._params.intercepts
