"""Ctrl-C during training: finish the current batch, then stop.

A KeyboardInterrupt raised at an arbitrary bytecode can land inside Numba's
dispatcher (which then reports a SystemError) or between two parameter
updates. While training, the first SIGINT therefore only sets a flag that
the loop checks after each batch; a second one interrupts at once.
"""

import signal
import threading


class DeferredInterrupt:
    """Context manager: `pending` becomes True on the first Ctrl-C."""

    def __init__(self):
        self.pending = False
        self._previous = None

    def __enter__(self):
        # Only the main thread can set handlers; a handler someone else
        # installed (a notebook, an application) is left alone.
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False
