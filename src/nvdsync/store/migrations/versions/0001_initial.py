"""Initial schema: records, their child rows, quarantine, runs and sync state.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The tables are spelled out here rather than imported from ``schema.py`` so that this
migration keeps creating exactly this schema when ``schema.py`` moves on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Ids and timestamps compare byte-wise on PostgreSQL too (see schema.py).
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _child(name: str, *columns: sa.Column[object]) -> None:
    """Create a child table of ``cves`` keyed by (cve_id, seq)."""
    op.create_table(
        name,
        sa.Column("cve_id", KEY, nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["cve_id"], ["cves.id"], name=f"fk_{name}_cve_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cve_id", "seq", name=f"pk_{name}"),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    op.create_table(
        "cves",
        sa.Column("id", KEY, nullable=False),
        sa.Column("published", KEY, nullable=False),
        sa.Column("last_modified", KEY, nullable=False),
        sa.Column("vuln_status", sa.Text()),
        sa.Column("source_identifier", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("cvss_v2_score", sa.Float()),
        sa.Column("cvss_v2_severity", sa.Text()),
        sa.Column("cvss_v2_vector", sa.Text()),
        sa.Column("cvss_v2_source", sa.Text()),
        sa.Column("cvss_v3_version", sa.Text()),
        sa.Column("cvss_v3_score", sa.Float()),
        sa.Column("cvss_v3_severity", sa.Text()),
        sa.Column("cvss_v3_vector", sa.Text()),
        sa.Column("cvss_v3_source", sa.Text()),
        sa.Column("cvss_v4_score", sa.Float()),
        sa.Column("cvss_v4_severity", sa.Text()),
        sa.Column("cvss_v4_vector", sa.Text()),
        sa.Column("cvss_v4_source", sa.Text()),
        sa.Column("kev_date_added", sa.Text()),
        sa.Column("kev_action_due", sa.Text()),
        sa.Column("kev_required_action", sa.Text()),
        sa.Column("kev_vulnerability_name", sa.Text()),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("raw_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cves"),
    )
    op.create_index("ix_cves_published_id", "cves", ["published", "id"])
    op.create_index("ix_cves_last_modified", "cves", ["last_modified"])

    _child("cve_cwes", sa.Column("cwe", sa.Text(), nullable=False))
    _child(
        "cve_cpe_matches",
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("part", sa.Text()),
        sa.Column("vendor", sa.Text()),
        sa.Column("product", sa.Text()),
        sa.Column("version", sa.Text()),
        sa.Column("version_start_including", sa.Text()),
        sa.Column("version_start_excluding", sa.Text()),
        sa.Column("version_end_including", sa.Text()),
        sa.Column("version_end_excluding", sa.Text()),
        sa.Column("vulnerable", sa.Boolean(), nullable=False),
        sa.Column("match_criteria_id", sa.Text()),
    )
    op.create_index("ix_cve_cpe_matches_vendor_product", "cve_cpe_matches", ["vendor", "product"])
    _child(
        "cve_references",
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("source", sa.Text()),
        sa.Column("tags", sa.Text()),
    )

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cve_id", sa.Text()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Text(), nullable=False),
        sa.Column("ended_at", sa.Text()),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("records_written", sa.Integer(), nullable=False),
        sa.Column("records_quarantined", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("peak_rss_mb", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "state",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_state"),
    )


def downgrade() -> None:
    for name in (
        "state",
        "runs",
        "quarantine",
        "cve_references",
        "cve_cpe_matches",
        "cve_cwes",
        "cves",
    ):
        op.drop_table(name)
