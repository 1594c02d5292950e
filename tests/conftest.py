"""Shared fixtures: the mock NVD server, settings pointing at it, a no-network guard."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nvdsync.mock import MockServer, generate, serve
from support import pg_schema, quiet_config

FIXTURES = Path(__file__).parent / "fixtures" / "nvd"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = os.environ.get("NVDSYNC_TEST_PG_URL", DEFAULT_PG_URL)
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A new, empty mirror of each kind: a SQLite file path, or a PostgreSQL URL whose
    schema is dropped after the test. Modules that run every test on both back ends
    alias ``db_path`` to it."""
    if request.param == "sqlite":
        return tmp_path / "mirror.sqlite"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(scope="session")
def generated_10k() -> list[bytes]:
    return generate(10_000, seed=7)


@pytest.fixture(scope="session")
def real_records() -> list[bytes]:
    return (FIXTURES / "real-cves.jsonl").read_bytes().splitlines()


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL URL, after checking that the server answers."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        reason = f"PostgreSQL at {PG_URL} (NVDSYNC_TEST_PG_URL) is not reachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the PostgreSQL tests")
        pytest.skip(reason)
    return PG_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL whose connections see a new, empty schema (dropped afterwards)."""
    with pg_schema(pg_server) as url:
        yield url
