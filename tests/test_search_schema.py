"""The full-text objects that schema comparison cannot see (FTS5 virtual table and
triggers, the PostgreSQL expression index) exist on both creation paths, and an
upgrade from 0002 indexes the records already in the mirror."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

from nvdsync.search import SearchQuery, count
from nvdsync.store import open_store
from nvdsync.store.engine import resolve
from nvdsync.store.fulltext import FTS_TABLE, PG_INDEX
from nvdsync.store.migrate import alembic_config
from search_support import LOG4SHELL, database, loaded

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    def server() -> str:
        url: str = request.getfixturevalue("pg_server")
        return url

    with database(request.param, tmp_path, server) as url:
        yield url


def _objects(db: str) -> set[str]:
    engine = create_engine(resolve(db).url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                rows = conn.execute(text(
                    "SELECT name FROM sqlite_master WHERE name LIKE 'cves_fts%' "
                    "AND type IN ('table', 'trigger')"))
            else:
                rows = conn.execute(text(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'cves' "
                    "AND schemaname = current_schema()"))
            return {str(name) for (name,) in rows}
    finally:
        engine.dispose()


def _expected(db: str) -> set[str]:
    if db.startswith("postgresql"):
        return {PG_INDEX}
    return {FTS_TABLE, f"{FTS_TABLE}_ai", f"{FTS_TABLE}_ad", f"{FTS_TABLE}_au"}


def test_new_database_has_the_full_text_index(db: str) -> None:
    open_store(db).close()
    assert _expected(db) <= _objects(db)


def test_upgrade_from_0002_indexes_existing_records(db: str) -> None:
    from alembic import command

    store = loaded(db)
    query = SearchQuery(keyword="JNDI")
    assert count(store, query) == 1
    store.close()
    engine = create_engine(resolve(db).url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0002")
    finally:
        engine.dispose()
    assert not (_expected(db) & _objects(db))
    with open_store(db) as upgraded:  # opening upgrades to 0003: the index is filled
        assert _expected(db) <= _objects(db)
        assert count(upgraded, query) == 1
        assert count(upgraded, SearchQuery(keyword="JNDI", cve_id=LOG4SHELL)) == 1


def _fts_sql(path: str) -> dict[str, str]:
    engine = create_engine(resolve(path).url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, sql FROM sqlite_master "
                                     "WHERE name LIKE 'cves_fts%' AND sql IS NOT NULL"))
            return {str(name): " ".join(str(sql).split()) for name, sql in rows}
    finally:
        engine.dispose()


def test_migration_builds_the_same_fts_index_as_a_new_database(tmp_path: Path) -> None:
    """Same table, tokenizer (diacritics kept) and triggers by either path."""
    from alembic import command

    path = str(tmp_path / "mirror.db")
    open_store(path).close()
    created = _fts_sql(path)
    assert "remove_diacritics 0" in created[FTS_TABLE]
    engine = create_engine(resolve(path).url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0002")
    finally:
        engine.dispose()
    assert _fts_sql(path) == {}
    open_store(path).close()  # upgrades to 0003
    assert _fts_sql(path) == created
