"""Logging setup for the CLI only: the library never configures logging.

Configures the ``nvdsync`` package logger (never the root logger), so embedding
applications keep control of their own logging.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["configure"]


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is *now* (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure(verbosity: int, *, console: Console | None = None) -> None:
    """``verbosity``: -1 quiet (warnings), 0 info, 1+ debug (2+ adds httpx)."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler: logging.Handler
    if console is not None:
        # Rich prints log lines above a live progress bar instead of through it.
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = _StderrHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    for name in ("nvdsync", "httpx"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = False
    package = logging.getLogger("nvdsync")
    package.addHandler(handler)
    package.setLevel(level)
    http = logging.getLogger("httpx")
    http.addHandler(handler)
    http.setLevel(logging.INFO if verbosity >= 2 else logging.WARNING)
