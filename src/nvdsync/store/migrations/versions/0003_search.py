"""Search: full text over descriptions and indexes for the search filters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

SQLite gets an FTS5 index with external content (``cves_fts``) and the triggers that
keep it in step with ``cves``, filled from the existing rows; PostgreSQL a GIN index
on the description as a ``simple`` tsvector. See ``nvdsync.store.fulltext`` for why
each is built the way it is. Spelled out rather than imported (see 0001).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SQLITE = (
    "CREATE VIRTUAL TABLE cves_fts USING fts5("
    "description, content='cves', content_rowid='rowid', "
    "tokenize=\"unicode61 remove_diacritics 0 tokenchars '_'\")",
    "CREATE TRIGGER cves_fts_ai AFTER INSERT ON cves BEGIN "
    "INSERT INTO cves_fts(rowid, description) VALUES (new.rowid, new.description); END",
    "CREATE TRIGGER cves_fts_ad AFTER DELETE ON cves BEGIN "
    "INSERT INTO cves_fts(cves_fts, rowid, description) "
    "VALUES ('delete', old.rowid, old.description); END",
    "CREATE TRIGGER cves_fts_au AFTER UPDATE OF description ON cves "
    "WHEN old.description IS NOT new.description BEGIN "
    "INSERT INTO cves_fts(cves_fts, rowid, description) "
    "VALUES ('delete', old.rowid, old.description); "
    "INSERT INTO cves_fts(rowid, description) VALUES (new.rowid, new.description); END",
    # Index the records already in the mirror.
    "INSERT INTO cves_fts(cves_fts) VALUES ('rebuild')",
)
_POSTGRES = (
    "CREATE INDEX ix_cves_description_fts ON cves USING gin (to_tsvector('simple'::regconfig, "
    "regexp_replace(coalesce(description, ''), '[^[:alnum:]]+', ' ', 'g')))",
)


def upgrade() -> None:
    op.create_index("ix_cves_kev_date_added", "cves", ["kev_date_added"])
    op.create_index("ix_cves_vuln_status", "cves", ["vuln_status"])
    op.create_index("ix_cve_cwes_cwe", "cve_cwes", ["cwe"])
    statements = _POSTGRES if op.get_bind().dialect.name == "postgresql" else _SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_cves_description_fts")
    else:
        for trigger in ("cves_fts_au", "cves_fts_ad", "cves_fts_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS cves_fts")
    op.drop_index("ix_cve_cwes_cwe", table_name="cve_cwes")
    op.drop_index("ix_cves_vuln_status", table_name="cves")
    op.drop_index("ix_cves_kev_date_added", table_name="cves")
