"""One writer per SQLite mirror: an exclusive ``flock`` held for the whole sync.

Two syncs writing the same mirror would interleave their resume plans, so a second
one (say, cron firing while a long first sync runs) stops at once with
:class:`~nvdsync.errors.MirrorBusy`, or with ``wait`` queues behind the first.
``fcntl.flock`` locks die with their process, so a ``kill -9`` never leaves a stale
lock behind. PostgreSQL mirrors use an advisory lock instead
(:mod:`nvdsync.store.locking`), which shares the waiting logic below.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nvdsync.errors import MirrorBusy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["POLL_SECONDS", "acquire", "mirror_lock"]

#: How often a waiting sync tries the lock again. Polling (rather than a blocking
#: call) keeps ``--wait-timeout`` working on both back ends, and lets a ``stop``
#: event (set when the waiting task is cancelled, e.g. by Ctrl-C) end the wait.
POLL_SECONDS = 0.2


def acquire(
    try_lock: Callable[[], bool],
    holder: Callable[[], str],
    location: str,
    *,
    wait: float | None,
    on_wait: Callable[[str], None] | None,
    stop: threading.Event | None = None,
) -> None:
    """Call ``try_lock`` until it succeeds, or raise :class:`MirrorBusy`.

    ``wait`` is None (do not wait), a number of seconds, or ``math.inf``.
    ``on_wait`` is told once, with who holds the lock, that we are waiting.
    Setting ``stop`` ends the wait at once with MirrorBusy.
    """
    if try_lock():
        return
    who = holder()
    if wait is None or wait <= 0:
        raise MirrorBusy(location, who)
    if on_wait is not None:
        on_wait(who)
    started = time.monotonic()
    deadline = started + wait if math.isfinite(wait) else math.inf
    stop = stop if stop is not None else threading.Event()
    while True:
        if stop.wait(POLL_SECONDS):
            raise MirrorBusy(location, holder(), waited=round(time.monotonic() - started, 1))
        if try_lock():
            return
        if time.monotonic() >= deadline:
            raise MirrorBusy(location, holder(), waited=wait)


@contextlib.contextmanager
def mirror_lock(
    location: str,
    *,
    wait: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> Iterator[None]:
    """Hold an exclusive lock on ``<location>.lock`` when ``location`` is a file path."""
    # Resolved: a symlink to the database must share the real file's lock.
    path = Path(location).resolve() if "://" not in location else Path(location)
    if "://" in location or not path.parent.is_dir():
        yield
        return
    import fcntl

    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)

    def try_lock() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def holder() -> str:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return f"pid {pid}" if pid else "another process"

    try:
        acquire(try_lock, holder, location, wait=wait, on_wait=on_wait, stop=stop)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
