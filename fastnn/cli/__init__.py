"""The `fastnn` command: `app` parses and dispatches, one module per command."""

from fastnn.cli.app import main

__all__ = ["main"]
