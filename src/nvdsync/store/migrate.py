"""Bringing a database to the schema this nvdsync version expects.

Opening a store checks the Alembic revision recorded in ``alembic_version`` with one
plain query and compares it with :data:`HEAD_REVISION`. Only when they differ is
Alembic imported (it costs several MB and tens of milliseconds, which shows in the
memory benchmarks) to tell an older revision, which is upgraded, from an unknown
one, which means the database was written by a newer nvdsync.

The migrations live in the ``migrations`` directory next to this module and run
programmatically: no ``alembic.ini`` is needed, the open connection is handed over
in ``config.attributes["connection"]`` and the whole upgrade is one transaction.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, String, Table, inspect, text

from nvdsync.errors import StoreError
from nvdsync.store.engine import WRITE, translate_errors

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

__all__ = ["HEAD_REVISION", "MIGRATIONS_DIR", "alembic_config", "ensure_schema"]

log = logging.getLogger(__name__)

#: The newest revision in ``migrations/versions``. Bump it with every new migration;
#: a test asserts that it equals Alembic's head.
HEAD_REVISION = "0003"

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_VERSION_TABLE = "alembic_version"
_THREAD_LOCK = threading.Lock()
_PG_LOCK = 0x6E7664_73796E63  # "nvd" "sync": advisory lock key held while migrating


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for nvdsync's migrations, optionally bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def ensure_schema(engine: Engine, location: str) -> None:
    """Upgrade the database to :data:`HEAD_REVISION`, or explain why we cannot."""
    with translate_errors(location, "checking the schema version"):
        with engine.connect() as conn:
            revisions = _read_revisions(conn, location)
        if revisions == [HEAD_REVISION]:
            return  # the common case: no Alembic import
        _check_known(revisions, location)
        # Re-read under a lock: another process may have upgraded the database since,
        # and the lock keeps it from doing so now. On SQLite BEGIN IMMEDIATE is that
        # lock; PostgreSQL needs an advisory one, or two processes opening a new
        # database both create the tables and all but one fail. The thread lock is
        # there because Alembic keeps the running migration in module-level proxies,
        # so two threads of one process must not migrate at the same time.
        with (
            _THREAD_LOCK,
            engine.connect().execution_options(**{WRITE: True}) as conn,
            conn.begin(),
        ):
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            revisions = _read_revisions(conn, location)
            if not revisions:
                _create(conn, location)
            elif revisions != [HEAD_REVISION]:
                _check_known(revisions, location)
                _upgrade(conn, revisions, location)


def _read_revisions(conn: Connection, location: str) -> list[str]:
    """The recorded revisions; ``[]`` for an empty database."""
    tables = set(inspect(conn).get_table_names())
    if _VERSION_TABLE not in tables:
        if tables:
            raise StoreError(
                f"{location} is not an nvdsync database: it has tables "
                f"({', '.join(sorted(tables)[:5])}) but no {_VERSION_TABLE}; "
                "choose a new file or an empty database for the mirror"
            )
        return []
    rows = conn.execute(text("SELECT version_num FROM alembic_version"))
    return sorted(str(rev) for rev in rows.scalars())


def _check_known(revisions: list[str], location: str) -> None:
    """Raise :class:`StoreError` if any revision is not one of our migrations."""
    if not revisions:
        return
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(alembic_config())
    for rev in revisions:
        try:
            known = script.get_revision(rev) is not None
        except CommandError:  # includes alembic's ResolutionError
            known = False
        if not known:
            raise StoreError(
                f"{location} has schema revision {rev!r}, which this nvdsync does not "
                f"know (it knows up to {HEAD_REVISION!r}): the database was written by "
                "a newer nvdsync. Upgrade nvdsync to use it."
            )


def _create(conn: Connection, location: str) -> None:
    """A new database: create the current schema and stamp it, as Alembic advises.

    Done without importing Alembic, whose modules (~12 MB) would otherwise stay
    resident through the first, longest sync. A test checks that the migrations and
    ``schema.metadata`` produce the same schema.
    """
    from nvdsync.store.schema import metadata

    log.info("creating the nvdsync schema %s in %s", HEAD_REVISION, location)
    metadata.create_all(conn)
    version = Table(_VERSION_TABLE, MetaData(),
                    Column("version_num", String(32), primary_key=True))
    version.create(conn, checkfirst=True)  # left empty by a downgrade to base
    conn.execute(version.insert().values(version_num=HEAD_REVISION))


def _upgrade(conn: Connection, revisions: list[str], location: str) -> None:
    from alembic import command

    log.info(
        "upgrading %s from schema %s to %s",
        location,
        ", ".join(revisions) or "(new database)",
        HEAD_REVISION,
    )
    command.upgrade(alembic_config(conn), "head")
