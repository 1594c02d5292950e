"""Full-text indexes over ``cves.description``, one per back end.

* **SQLite**: an FTS5 table ``cves_fts`` with external content (it stores only the
  index; the text stays in ``cves``), keyed by ``cves.rowid`` and kept in step by
  three triggers. Its hits are taken as they are, not re-checked against the
  description, so the index must stay in step: nvdsync never renumbers the rowids,
  but an outside ``VACUUM`` may, and then a search can both miss records and return
  wrong ones until ``INSERT INTO cves_fts(cves_fts) VALUES('rebuild')`` re-indexes.
  The tokenizer keeps diacritics (``remove_diacritics 0``; FTS5's default folds
  ``café`` to ``cafe``) and ``_`` inside tokens, so it reads words exactly as
  PostgreSQL's regular expression and the mock NVD's ``\\w+`` do.
* **PostgreSQL**: a GIN expression index on :data:`PG_DOCUMENT`, the description
  with every run of punctuation turned into a space, as a ``simple`` tsvector.
  Without the replacement PostgreSQL's parser would keep ``2.14.1``, host names and
  paths as single lexemes, and a search for ``14`` or ``log4j`` inside them would
  miss; with it both back ends see the same tokens (runs of letters and digits).

New databases get these through ``metadata.create_all`` (the DDL events installed
by :func:`install`), existing ones through migration 0003; a test checks both paths
agree. Alembic can compare neither virtual tables nor (on SQLite) expression
indexes, so :func:`include_name` hides these objects from schema comparison and
tests/test_search_schema.py checks them directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import DDL, event, literal_column

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Table

__all__ = [
    "FTS_TABLE",
    "PG_CREATE",
    "PG_DOCUMENT",
    "PG_INDEX",
    "SQLITE_CREATE",
    "SQLITE_DROP",
    "include_name",
    "install",
    "pg_document",
]

FTS_TABLE = "cves_fts"
PG_INDEX = "ix_cves_description_fts"

#: Creates the FTS5 index and its triggers (migration 0003 spells out the same).
SQLITE_CREATE = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5("
    "description, content='cves', content_rowid='rowid', "
    "tokenize=\"unicode61 remove_diacritics 0 tokenchars '_'\")",
    f"CREATE TRIGGER {FTS_TABLE}_ai AFTER INSERT ON cves BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, description) VALUES (new.rowid, new.description); END",
    f"CREATE TRIGGER {FTS_TABLE}_ad AFTER DELETE ON cves BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, description) "
    "VALUES ('delete', old.rowid, old.description); END",
    # The upsert sets every column; re-index only when the text really changed
    # (most updates touch references or scores, not the description).
    f"CREATE TRIGGER {FTS_TABLE}_au AFTER UPDATE OF description ON cves "
    "WHEN old.description IS NOT new.description BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, description) "
    "VALUES ('delete', old.rowid, old.description); "
    f"INSERT INTO {FTS_TABLE}(rowid, description) VALUES (new.rowid, new.description); END",
)
SQLITE_DROP = (
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_au",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_ad",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_ai",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
)
# FTS5's shadow tables, which SQLAlchemy's inspector lists as ordinary tables.
_SHADOW = frozenset(
    {FTS_TABLE} | {f"{FTS_TABLE}_{s}" for s in ("data", "idx", "docsize", "config", "content")}
)


#: The indexed tsvector; queries repeat it (:func:`pg_document`) to use the index.
#: Plain SQL: ``func.to_tsvector`` would need SQLAlchemy's PostgreSQL dialect imported,
#: which SQLite users never load.
PG_DOCUMENT = (
    "to_tsvector('simple'::regconfig, "
    "regexp_replace(coalesce(description, ''), '[^[:alnum:]]+', ' ', 'g'))"
)


def pg_document() -> ColumnElement[Any]:
    """:data:`PG_DOCUMENT` as an expression for queries over ``cves``."""
    return literal_column(PG_DOCUMENT)


PG_CREATE = f"CREATE INDEX {PG_INDEX} ON cves USING gin ({PG_DOCUMENT})"


def include_name(name: str | None, type_: str, _parent: object = None) -> bool:
    """Alembic ``include_name`` hook: leave the full-text objects out of comparisons."""
    if type_ == "table":
        return name not in _SHADOW
    return not (type_ == "index" and name == PG_INDEX)


def install(cves: Table) -> None:
    """Attach the full-text DDL for both back ends to the ``cves`` table.

    DDL events rather than an ``Index`` in the metadata: Alembic cannot compare an
    expression index on SQLite, nor virtual tables anywhere, so both are created the
    same way and hidden from comparison by :func:`include_name`.
    """
    for when, dialect, statements in (
        ("after_create", "postgresql", (PG_CREATE,)),
        ("after_create", "sqlite", SQLITE_CREATE),
        ("before_drop", "sqlite", SQLITE_DROP),
    ):
        for statement in statements:
            ddl = DDL(statement)  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
            event.listen(cves, when, ddl.execute_if(dialect=dialect))
