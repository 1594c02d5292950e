"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

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
