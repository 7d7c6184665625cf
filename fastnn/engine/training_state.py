"""The training state: what `fit(resume=True)` needs beyond the weights, in one format.

Rollback (Ctrl-C, divergence), checkpoints and serialization all read and
write this dataclass through the estimator's public `get_training_state()` /
`set_training_state()`, never the estimator's private attributes.
"""

import copy
from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrainingState:
    """Optimizer state, shuffling RNG and counters of a run.

    Attributes
    ----------
    solver : str
        "sgd" or "adam".
    learning_rate : float
        The optimizer's current learning rate (a schedule may have changed it).
    adam_step : int
        Adam's step count t (0 for SGD).
    optimizer_arrays : dict of str to ndarray
        The optimizer's flat state arrays ("velocity"; "ms" and "vs").
    rng_state : tuple
        `numpy.random.RandomState.get_state()` of the shuffling RNG.
    n_iter, samples_seen : int
        Epochs finished (`n_iter_`) and rows trained on (`t_`).
    best_loss, no_improvement_count, validation_scores, best_validation_score
        The early-stopping bookkeeping, as scikit-learn names it.
    dropout_seed : int or None
        The dropout masks' seed (None until a run trains with dropout).
    dropout_step : int
        Batches trained so far (dropout's step counter; warm starts and
        `partial_fit` continue it).
    """

    solver: str
    learning_rate: float
    adam_step: int
    optimizer_arrays: dict = field(default_factory=dict)
    rng_state: tuple = ()
    n_iter: int = 0
    samples_seen: int = 0
    best_loss: float = np.inf
    no_improvement_count: int = 0
    validation_scores: list = None
    best_validation_score: float = None
    dropout_seed: int = None
    dropout_step: int = 0

    def copy(self):
        """A deep copy (arrays and lists included)."""
        return copy.deepcopy(self)
