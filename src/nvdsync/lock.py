"""One writer per mirror: an exclusive lock held for the whole sync.

Two syncs writing the same SQLite mirror would interleave their resume plans, so a
second one (say, cron firing while a long first sync runs) stops at once with a
clear message. ``fcntl.flock`` locks die with their process, so a ``kill -9`` never
leaves a stale lock behind. PostgreSQL mirrors use an advisory lock instead
(``SqlStore.writer_lock``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from nvdsync.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["mirror_lock"]


@contextlib.contextmanager
def mirror_lock(location: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<location>.lock`` when ``location`` is a file path."""
    path = Path(location)
    if "://" in location or not path.parent.is_dir():
        yield
        return
    import fcntl

    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise StoreError(
                f"another nvdsync sync (pid {holder}) is writing {location}; wait for it "
                "to finish, or stop it: the next sync resumes where it stopped"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
