"""Where fastnn's modules were before they moved into one folder per layer.

Pickles and joblib files of fitted models name the modules of the classes
they hold (`fastnn.mlp.MLPClassifier`, `fastnn.optim.Adam`): the finder below
lets `import fastnn.mlp` still work, as the module at its new place, so that
files written before the move load. It imports nothing until an old name is
asked for.
"""

import importlib
import importlib.abc
import importlib.util

MOVED = {
    "fastnn._api": "fastnn.contract.spec",
    "fastnn._checks": "fastnn.contract.checks",
    "fastnn._tables": "fastnn.contract.tables",
    "fastnn._jit": "fastnn.contract.jit",
    "fastnn._numpy_ops": "fastnn.contract.numpy_ops",
    "fastnn._numba_ops": "fastnn.contract.numba_ops",
    "fastnn._numba_math": "fastnn.contract.numba_math",
    "fastnn.network": "fastnn.engine.step",
    "fastnn._numba_step": "fastnn.engine.numba_step",
    "fastnn._numpy_step": "fastnn.engine.numpy_step",
    "fastnn._numba_epoch": "fastnn.engine.numba_epoch",
    "fastnn.training": "fastnn.engine.epoch_loop",
    "fastnn.params": "fastnn.engine.params",
    "fastnn.optim": "fastnn.engine.optim",
    "fastnn.state": "fastnn.engine.training_state",
    "fastnn.shuffling": "fastnn.engine.shuffling",
    "fastnn._interrupt": "fastnn.engine.interrupt",
    "fastnn._sparse": "fastnn.engine.sparse_step",
    "fastnn._base": "fastnn.estimators.base",
    "fastnn.mlp": "fastnn.estimators.mlp",
    "fastnn._lbfgs": "fastnn.estimators.lbfgs",
    "fastnn._validation": "fastnn.estimators.validation",
    "fastnn._monitor": "fastnn.estimators.monitor",
    "fastnn._run_state": "fastnn.estimators.run_state",
    "fastnn._persistence": "fastnn.estimators.pickling",
    "fastnn.convert": "fastnn.estimators.sklearn_interop",
    "fastnn.serialization": "fastnn.estimators.serialization",
    "fastnn._errors": "fastnn.errors",
    "fastnn.convert_data": "fastnn.datasets.convert",
    "fastnn.cli_train": "fastnn.cli.train",
    "fastnn.cli_reports": "fastnn.cli.reports",
    "fastnn.cli_data": "fastnn.cli.data_sources",
    "fastnn.plotting": "fastnn.cli.plotting",
}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module at its new place (one object, two names)."""

    def find_spec(self, name, path=None, target=None):
        if name in MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        pass  # the module at the new place ran when create_module imported it
