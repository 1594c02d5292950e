"""The storage layer: a mirror of NVD records in SQLite or PostgreSQL.

Use :func:`open_store` to get a :class:`SqlStore` (which implements the
:class:`Store` port) from the ``--db`` value::

    store = open_store("~/.local/share/nvdsync/nvd.db")       # SQLite file
    store = open_store("postgresql://nvd@db.example/nvd")      # PostgreSQL (psycopg 3)

Opening creates a new database, or upgrades an older one, to the current schema.
Importing this package stays cheap: Alembic and psycopg are imported only when a
migration is needed or a PostgreSQL URL is used.
"""

from __future__ import annotations

from nvdsync.store.base import Store
from nvdsync.store.engine import create, resolve
from nvdsync.store.migrate import ensure_schema
from nvdsync.store.sql import SqlStore

__all__ = ["SqlStore", "Store", "open_store"]


def open_store(db: str) -> SqlStore:
    """Open (creating or upgrading as needed) the store that ``db`` names.

    ``db`` is a file path (SQLite; ``~`` is expanded, relative paths are made
    absolute), ``sqlite:///PATH``, or ``postgresql://...`` /
    ``postgresql+psycopg://...``.

    Raises :class:`~nvdsync.errors.ConfigError` for a form we do not support and
    :class:`~nvdsync.errors.StoreError` when the database cannot be opened, is not an
    nvdsync database, or was written by a newer nvdsync.
    """
    target = resolve(db)
    engine = create(target)
    try:
        ensure_schema(engine, target.location)
        return SqlStore(engine, target.location)
    except BaseException:
        engine.dispose()
        raise
