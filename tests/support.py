"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy.engine import make_url

from nvdsync.config import Settings, load_settings
from nvdsync.mock import MockConfig, MockServer
from nvdsync.store import open_store


def quiet_config(**overrides: Any) -> MockConfig:
    """A mock without NVD's rate limits (tests opt into limits explicitly)."""
    values: dict[str, Any] = {"rate_limit_anonymous": None, "rate_limit_keyed": None}
    values.update(overrides)
    return MockConfig(**values)


def make_settings(server: MockServer, db: Path | str, **overrides: Any) -> Settings:
    """Settings for a fast test sync: no client-side limit, tiny back-offs."""
    values: dict[str, Any] = {
        "db": str(db), "api_url": server.url, "rate_limit": "off",
        "backoff_base": 0.01, "backoff_max": 0.05, "retry_budget": 30.0, "timeout": 10.0,
    }
    values.update(overrides)
    return load_settings(**values)


def export_values(db: Path) -> list[Any]:
    """The mirror's export, as JSON values, in export order."""
    store = open_store(str(db))
    try:
        return [msgspec.json.decode(raw) for raw in store.iter_raw()]
    finally:
        store.close()


def mock_values(server: MockServer) -> list[Any]:
    """The mock's current data as JSON values, in NVD order (published, id)."""
    return [msgspec.json.decode(raw) for raw in server.dataset.records()]


def delete_record(db: Path | str, cve_id: str) -> None:
    """Remove one record (and, by cascade, its child rows) behind nvdsync's back."""
    from sqlalchemy import delete

    from nvdsync.store.schema import cves

    store = open_store(str(db))
    try:
        with store.engine.begin() as conn:
            conn.execute(delete(cves).where(cves.c.id == cve_id))
    finally:
        store.close()


@contextlib.contextmanager
def pg_schema(server: str) -> Iterator[str]:
    """A URL whose connections see a new schema, dropped afterwards."""
    import psycopg

    schema = f"nvdsync_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
