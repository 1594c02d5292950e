"""The writer lock: one sync writes a mirror at a time, readers are never blocked.

SQLite: an exclusive ``flock`` on ``<file>.lock`` (:mod:`nvdsync.lock`). PostgreSQL:
a session-level advisory lock taken on a connection of its own and held for the
whole sync. Both die with the process (a PostgreSQL session ends when its socket
closes), so a ``kill -9`` never leaves a stale lock behind.

The advisory key is derived from the schema the mirror lives in, not a constant:
advisory locks are per database, and two mirrors in two schemas of one database
(as the tests use, or a staging and a production mirror) must not lock each other
out. The lock connection sets ``application_name`` to our pid and host so that a
refused sync can say which process holds the mirror.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from nvdsync.lock import acquire, mirror_lock
from nvdsync.store.engine import translate_errors

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator

    from sqlalchemy.engine import Connection, Engine

__all__ = ["advisory_key", "writer_lock"]

_HOLDER = text(
    "SELECT a.pid, a.application_name, a.client_addr, a.backend_start "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = :high AND l.objid::bigint = :low LIMIT 1"
)


log = logging.getLogger(__name__)

_NAME_PREFIX = "nvdsync sync "  # application_name of the session holding the lock


def advisory_key(schema: str) -> int:
    """The signed 64-bit advisory lock key of the mirror in ``schema``."""
    digest = hashlib.blake2b(f"nvdsync writer {schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def writer_lock(
    engine: Engine,
    location: str,
    *,
    wait: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> Iterator[None]:
    """Be the only sync writing this mirror until the block ends.

    Raises :class:`~nvdsync.errors.MirrorBusy` when another sync holds the lock and
    ``wait`` is None, or still holds it after ``wait`` seconds.
    """
    if engine.dialect.name != "postgresql":
        with mirror_lock(location, wait=wait, on_wait=on_wait, stop=stop):
            yield
        return
    with translate_errors(location, "taking the writer lock"):
        conn = engine.connect()
    try:
        with translate_errors(location, "taking the writer lock"):
            key = advisory_key(str(conn.scalar(text("SELECT current_schema()"))))
            # The lock lives as long as this session, which is idle for the whole sync:
            # a server-side idle timeout would end it and free the lock under us.
            conn.execute(text("SET idle_session_timeout = 0"))
            conn.commit()
            acquire(lambda: _try(conn, key), lambda: _holder(conn, key), location,
                    wait=wait, on_wait=on_wait, stop=stop)
            # Named once it holds the lock, so that only the holder's session is named.
            conn.execute(text("SELECT set_config('application_name', :name, false)"),
                         {"name": f"{_NAME_PREFIX}pid {os.getpid()} on {socket.gethostname()}"})
            conn.commit()
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                # The connection goes back to the pool: it no longer names the holder.
                conn.execute(text("RESET application_name"))
                conn.commit()
            except SQLAlchemyError as exc:
                # The session is gone, and the lock with it: nothing left to release.
                # Raising here would replace the sync's own result or error.
                log.warning("releasing the writer lock of %s failed (%s); the lock ended "
                            "with its session", location, exc.__class__.__name__)
                conn.invalidate()
    finally:
        conn.close()


def _try(conn: Connection, key: int) -> bool:
    got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
    conn.commit()  # end the transaction: the session lock outlives it, a snapshot must not
    return got


def _holder(conn: Connection, key: int) -> str:
    """Who holds the lock, as far as this role may see (other roles' names are hidden)."""
    row = conn.execute(_HOLDER, {"high": (key >> 32) & 0xFFFFFFFF,
                                 "low": key & 0xFFFFFFFF}).first()
    conn.commit()
    if row is None:  # released between our try and this query
        return "a session that just finished"
    name = str(row.application_name or "")
    if name.startswith(_NAME_PREFIX):
        return name.removeprefix(_NAME_PREFIX)  # "pid N on HOST"
    if name:
        return f"{name!r}, PostgreSQL backend pid {row.pid}"
    since = f", connected since {row.backend_start:%Y-%m-%d %H:%M:%S %Z}" if (
        row.backend_start) else ""
    return f"PostgreSQL backend pid {row.pid}{since}"
