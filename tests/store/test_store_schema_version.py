"""Opening a database: creating, upgrading and refusing the schema."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

import nvdsync
from nvdsync.errors import StoreError
from nvdsync.store import open_store
from nvdsync.store.engine import resolve
from nvdsync.store.fulltext import include_name
from nvdsync.store.migrate import HEAD_REVISION, alembic_config
from nvdsync.store.schema import metadata

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection


@contextmanager
def _connect(db: str) -> Iterator[Connection]:
    engine = create_engine(resolve(db).url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _execute(db: str, *statements: str) -> list[object]:
    results: list[object] = []
    with _connect(db) as conn:
        for statement in statements:
            result = conn.execute(text(statement))
            results.append(result.all() if result.returns_rows else None)
    return results


def test_head_constant_matches_alembic_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD_REVISION]


def test_new_database_is_created_at_head(db: str) -> None:
    open_store(db).close()
    assert _execute(db, "SELECT version_num FROM alembic_version") == [[(HEAD_REVISION,)]]


def test_migrations_build_the_same_schema_as_metadata(db: str) -> None:
    """New databases are made with create_all (no Alembic import); upgraded ones by
    the migrations. Both must end up with the same schema."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with _connect(db) as conn:
        command.upgrade(alembic_config(conn), "head")
    with _connect(db) as conn:
        # FTS5 virtual tables cannot be reflected; tests/test_search_schema.py checks them.
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diffs = compare_metadata(context, metadata)
        assert diffs == []
    with open_store(db) as store:  # and the store accepts the migrated database
        assert store.count() == 0


def test_database_behind_is_upgraded(db: str) -> None:
    from alembic import command

    open_store(db).close()
    with _connect(db) as conn:
        command.downgrade(alembic_config(conn), "base")
    assert _execute(db, "SELECT count(*) FROM alembic_version") == [[(0,)]]
    with open_store(db) as store:
        assert store.count() == 0
    assert _execute(db, "SELECT version_num FROM alembic_version") == [[(HEAD_REVISION,)]]


def test_unknown_revision_asks_to_upgrade_nvdsync(db: str) -> None:
    open_store(db).close()
    _execute(db, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(StoreError, match="newer nvdsync") as info:
        open_store(db)
    message = str(info.value)
    assert "9999_from_the_future" in message
    assert "Upgrade nvdsync" in message


def test_foreign_database_is_refused(db: str) -> None:
    _execute(db, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(StoreError, match="not an nvdsync database") as info:
        open_store(db)
    assert resolve(db).location in str(info.value)
    assert "customers" in str(info.value)


def test_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(StoreError, match=str(path)):
        open_store(str(path))


@pytest.mark.parametrize("exists", [True, False], ids=["current", "new"])
def test_opening_a_current_or_new_database_is_cheap(tmp_path: Path, exists: bool) -> None:
    """Neither Alembic nor psycopg is imported to open a current or new SQLite database."""
    path = tmp_path / "mirror.db"
    if exists:
        open_store(str(path)).close()
    probe = (
        "import sys\n"
        "from nvdsync.store import open_store\n"
        f"store = open_store({str(path)!r})\n"
        "store.count()\n"
        "store.close()\n"
        "heavy = ('alembic', 'psycopg', 'sqlalchemy.dialects.postgresql')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = _run_python(probe)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    src = str(Path(nvdsync.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_concurrent_first_opens_create_the_schema_once(db: str) -> None:
    """Several processes opening a new database at once: one migrates, all succeed."""
    code = f"from nvdsync.store import open_store\nprint(open_store({db!r}).count())\n"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _run_python(code), range(4)))
    assert [(r.returncode, r.stdout.strip()) for r in results] == [(0, "0")] * 4, [
        r.stderr for r in results
    ]
    assert _execute(db, "SELECT version_num FROM alembic_version") == [[(HEAD_REVISION,)]]
