"""Shared fixtures: the mock NVD server, settings pointing at it, a no-network guard."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from nvdsync.config import Settings, load_settings
from nvdsync.mock import MockConfig, MockServer, generate, serve
from nvdsync.store import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "nvd"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if anything tries to reach a host other than this machine."""
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOOPBACK and not str(host).startswith("127."):
            raise AssertionError(f"test tried to reach the network: {host!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer config, key or database leaks into a test."""
    for name in ("NVD_API_KEY", "NVDSYNC_DB", "NVDSYNC_API_URL", "NVDSYNC_API_KEY",
                 "NVDSYNC_CONFIG", "NVDSYNC_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def quiet_config(**overrides: Any) -> MockConfig:
    """A mock without NVD's rate limits (tests opt into limits explicitly)."""
    values: dict[str, Any] = {"rate_limit_anonymous": None, "rate_limit_keyed": None}
    values.update(overrides)
    return MockConfig(**values)


@pytest.fixture
def mock_nvd() -> Iterator[Callable[..., MockServer]]:
    """``mock_nvd(records, **MockConfig fields)`` starts a server stopped after the test."""
    servers: list[MockServer] = []

    def start(records: list[bytes] | None = None, **config: Any) -> MockServer:
        server = serve(quiet_config(**config), records)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "mirror.sqlite"


def make_settings(server: MockServer, db: Path, **overrides: Any) -> Settings:
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


@pytest.fixture(scope="session")
def generated_10k() -> list[bytes]:
    return generate(10_000, seed=7)


@pytest.fixture(scope="session")
def real_records() -> list[bytes]:
    return (FIXTURES / "real-cves.jsonl").read_bytes().splitlines()
