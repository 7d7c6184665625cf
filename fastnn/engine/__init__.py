"""One training step and one epoch, on either backend.

`step` chooses and runs a batch's fused forward and backward pass
(`numpy_step`, `numba_step`, `sparse_step`); `numba_epoch` is the compiled
epoch loop and `epoch_loop` the Python driver around it; `params` the flat
parameter buffer, `optim` the optimizers, `training_state` their saved form.
"""
