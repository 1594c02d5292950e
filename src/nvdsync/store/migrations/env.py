"""Alembic environment for nvdsync's own migrations.

nvdsync runs these migrations itself when a store is opened (see
:mod:`nvdsync.store.migrate`), handing over the connection it already holds in
``config.attributes["connection"]`` inside an open transaction. There is no
``alembic.ini`` and no offline (SQL script) mode.
"""

from __future__ import annotations

from alembic import context

from nvdsync.store.fulltext import include_name
from nvdsync.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "nvdsync migrations run only through nvdsync itself (opening a store "
        "upgrades it); they cannot be run from the alembic command line"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    include_name=include_name,  # FTS5 virtual and shadow tables cannot be compared
    # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
    render_as_batch=connection.dialect.name == "sqlite",
)

with context.begin_transaction():
    context.run_migrations()
