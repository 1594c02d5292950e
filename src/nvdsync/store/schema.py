"""The database schema as SQLAlchemy Core tables.

This module describes the *current* schema for the query code in :mod:`.sql`. The
database itself is created and upgraded only by the Alembic migrations in
``migrations/versions``; a test checks that the migrated database and these tables
agree, so a change here needs a new migration too.

Design notes:

* Timestamps inside records keep NVD's text form (``2024-04-12T08:15:06.230``), which
  sorts lexicographically, so ``published``/``last_modified`` are plain text columns
  and comparisons are text comparisons in both SQLite and PostgreSQL.
* ``raw`` holds the record exactly as NVD sent it, zlib-compressed. The typed columns
  are there for queries; ``raw`` is the source of truth for export.
* Child rows carry ``seq`` (position inside the record) so a record can be rebuilt
  in its original order, and ``(cve_id, seq)`` is their primary key: it is the index
  used to fetch and delete a record's children. There is deliberately no unique key
  on (cve_id, url): NVD records repeat reference URLs.
* On PostgreSQL the id and timestamp columns use the "C" collation: a database
  created with a language locale (en_US.UTF-8) would otherwise ignore punctuation
  when ordering, and SQLite compares bytes. With "C" both back ends sort and
  paginate identically, and comparisons are plain byte comparisons (faster).
* On SQLite the child tables are ``WITHOUT ROWID``: they are small rows always read
  and deleted by ``cve_id``, so clustering them on the primary key saves one b-tree
  per table and keeps a record's children on the same pages.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

from nvdsync.store import fulltext

__all__ = [
    "CHILD_TABLES",
    "KeyText",
    "cve_cpe_matches",
    "cve_cwes",
    "cve_references",
    "cves",
    "metadata",
    "quarantine",
    "run_samples",
    "runs",
    "state",
]

# Explicit constraint names keep migrations reproducible across dialects.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
    }
)


#: Text compared byte by byte on every back end (SQLite's default BINARY collation).
KeyText = Text().with_variant(Text(collation="C"), "postgresql")


def _cve_fk() -> Column[str]:
    return Column("cve_id", KeyText, ForeignKey("cves.id", ondelete="CASCADE"), primary_key=True)


cves = Table(
    "cves",
    metadata,
    Column("id", KeyText, primary_key=True),
    Column("published", KeyText, nullable=False),
    Column("last_modified", KeyText, nullable=False),
    Column("vuln_status", Text),
    Column("source_identifier", Text),
    Column("description", Text),  # the English description
    Column("cvss_v2_score", Float),
    Column("cvss_v2_severity", Text),
    Column("cvss_v2_vector", Text),
    Column("cvss_v2_source", Text),
    Column("cvss_v3_version", Text),  # "3.0" or "3.1"
    Column("cvss_v3_score", Float),
    Column("cvss_v3_severity", Text),
    Column("cvss_v3_vector", Text),
    Column("cvss_v3_source", Text),
    Column("cvss_v4_score", Float),
    Column("cvss_v4_severity", Text),
    Column("cvss_v4_vector", Text),
    Column("cvss_v4_source", Text),
    Column("kev_date_added", Text),
    Column("kev_action_due", Text),
    Column("kev_required_action", Text),
    Column("kev_vulnerability_name", Text),
    Column("raw", LargeBinary, nullable=False),  # zlib-compressed exact JSON
    Column("raw_size", Integer, nullable=False),  # uncompressed length in bytes
    # (published, id) is the export order and the keyset used by iter_raw.
    Index("ix_cves_published_id", "published", "id"),
    Index("ix_cves_last_modified", "last_modified"),
    # Search filters (migration 0003) selective enough to drive a query: the KEV
    # catalogue (~1,400 of ~300,000 CVEs) and rare statuses (Received, Rejected).
    Index("ix_cves_kev_date_added", "kev_date_added"),
    Index("ix_cves_vuln_status", "vuln_status"),
)

cve_cwes = Table(
    "cve_cwes",
    metadata,
    _cve_fk(),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("cwe", Text, nullable=False),
    Index("ix_cve_cwes_cwe", "cwe"),  # the --cwe search filter (migration 0003)
    sqlite_with_rowid=False,
)

cve_cpe_matches = Table(
    "cve_cpe_matches",
    metadata,
    _cve_fk(),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("criteria", Text, nullable=False),
    Column("part", Text),
    Column("vendor", Text),
    Column("product", Text),
    Column("version", Text),
    Column("version_start_including", Text),
    Column("version_start_excluding", Text),
    Column("version_end_including", Text),
    Column("version_end_excluding", Text),
    Column("vulnerable", Boolean, nullable=False),
    Column("match_criteria_id", Text),
    # "Which CVEs affect vendor X / product Y" is the main read query.
    Index("ix_cve_cpe_matches_vendor_product", "vendor", "product"),
    sqlite_with_rowid=False,
)

cve_references = Table(
    "cve_references",
    metadata,
    _cve_fk(),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("url", Text, nullable=False),
    Column("source", Text),
    Column("tags", Text),  # joined with TAG_SEPARATOR; NULL when there are none
    sqlite_with_rowid=False,
)

#: Child tables in the order their rows are deleted and inserted.
CHILD_TABLES = (cve_cwes, cve_cpe_matches, cve_references)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cve_id", Text),  # NULL when the record had no readable id
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),  # zlib-compressed, as received
    Column("received_at", Text, nullable=False),  # ISO, timezone-aware
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mode", Text, nullable=False),
    Column("started_at", Text, nullable=False),
    Column("ended_at", Text),
    Column("outcome", Text, nullable=False),
    Column("pages", Integer, nullable=False, default=0),
    Column("records_written", Integer, nullable=False, default=0),
    Column("records_quarantined", Integer, nullable=False, default=0),
    Column("retries", Integer, nullable=False, default=0),
    Column("peak_rss_mb", Float),
    Column("error", Text),
    # Memory figures (migration 0002). The thresholds in force are kept with the run
    # so that a chart drawn later shows the lines this run was judged against.
    Column("start_rss_mb", Float),
    Column("growth_mb", Float),
    Column("gcs_run", Integer),
    Column("warning_mb", Float),
    Column("critical_mb", Float),
    # AUTOINCREMENT so a run id is never reused: plans refer to runs by id.
    sqlite_autoincrement=True,
)

#: RSS over a run's time (migration 0002): about one sample a second plus one per
#: committed page, downsampled for long runs (see ``nvdsync.memory_sampler``).
#: ``page`` is the pages-committed count when the sample marks a page, else NULL.
run_samples = Table(
    "run_samples",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("t_seconds", Float, nullable=False),
    Column("rss_mb", Float, nullable=False),
    Column("page", Integer),
)

state = Table(
    "state",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

# Full-text search over descriptions (FTS5 / tsvector, migration 0003).
fulltext.install(cves)
