"""Ctrl-C while training: finish the current batch, then stop.

A KeyboardInterrupt raised at an arbitrary bytecode can land inside Numba's
dispatcher (which then reports a SystemError) or between two parameter
updates. While training, the first SIGINT therefore only sets a flag that
the loop checks after each batch; a second one interrupts at once.
Data-parallel training (`fastnn.distributed`) defers SIGTERM the same way,
and its ranks stop together: the flag travels in the per-batch Allreduce.
"""

import signal
import threading

# A handler is installed only over these defaults: one that someone else
# installed (a notebook, an application) is left alone.
_DEFAULT_HANDLERS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


class StoppedTogether(KeyboardInterrupt):
    """Every rank of a data-parallel run stops at this batch: one of them saw a
    Ctrl-C or SIGTERM. The model is rolled back as after a Ctrl-C."""


class DeferredInterrupt:
    """Context manager: `pending` becomes True on the first of `signals`.

    Parameters
    ----------
    signals : tuple of signal numbers, default (SIGINT,)
    """

    def __init__(self, signals=(signal.SIGINT,)):
        self.pending = False
        self.signals = signals
        self._previous = {}

    def __enter__(self):
        # Only the main thread can set handlers
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                if signal.getsignal(signum) is _DEFAULT_HANDLERS[signum]:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        return False
