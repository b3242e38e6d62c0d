"""User code that raises ``SystemExit`` (``sys.exit()``, ``exit()``, argparse or click given
bad arguments): an error of that code, not the end of the host that runs it.

Raised out of an asyncio task, ``SystemExit`` stops the event loop, and with it every run
or session of the host; caught in a node thread, it never reached the run.
"""

from __future__ import annotations


class ExitCalledError(RuntimeError):
    """A node or a session turn raised ``SystemExit``; it fails alone, its host goes on."""


def exit_error(exc: SystemExit, what: str) -> ExitCalledError:
    """The error ``what`` (e.g. "node 'parse'") fails with instead of ``exc``."""
    return ExitCalledError(f"{what} called sys.exit({exc.code!r}); it fails, and its host goes on")
