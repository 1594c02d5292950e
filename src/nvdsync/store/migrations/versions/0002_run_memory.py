"""Memory over a run: the runs' memory figures and their RSS samples.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Spelled out rather than imported from ``schema.py`` (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_RUN_COLUMNS = (
    ("start_rss_mb", sa.Float),
    ("growth_mb", sa.Float),
    ("gcs_run", sa.Integer),
    ("warning_mb", sa.Float),
    ("critical_mb", sa.Float),
)


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER most things; for ADD COLUMN it is a no-op
    # wrapper, and it keeps the migration identical on both back ends.
    with op.batch_alter_table("runs") as batch:
        for name, kind in _RUN_COLUMNS:
            batch.add_column(sa.Column(name, kind()))
    op.create_table(
        "run_samples",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("t_seconds", sa.Float(), nullable=False),
        sa.Column("rss_mb", sa.Float(), nullable=False),
        sa.Column("page", sa.Integer()),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_samples_run_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_run_samples"),
    )


def downgrade() -> None:
    op.drop_table("run_samples")
    with op.batch_alter_table("runs") as batch:
        for name, _kind in reversed(_RUN_COLUMNS):
            batch.drop_column(name)
