"""``open_store``: which ``--db`` forms are accepted and how they are shown."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from nvdsync.errors import ConfigError, StoreError
from nvdsync.store import SqlStore, Store, open_store
from nvdsync.store.engine import mask, resolve

if TYPE_CHECKING:
    from pathlib import Path


def _pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_relative_path_becomes_absolute_and_parents_are_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("data/deep/mirror.db") as store:
        assert store.location == str(tmp_path / "data" / "deep" / "mirror.db")
        assert store.count() == 0
    assert (tmp_path / "data" / "deep" / "mirror.db").is_file()
    assert _pragma(tmp_path / "data" / "deep" / "mirror.db", "journal_mode") == "wal"


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with open_store("~/nvd/mirror.db") as store:
        assert store.location == str(tmp_path / "nvd" / "mirror.db")


def test_sqlite_url(tmp_path: Path) -> None:
    path = tmp_path / "url.db"
    with open_store(f"sqlite:///{path}") as store:
        assert store.location == str(path)
        assert isinstance(store, SqlStore)
    assert path.is_file()


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "m.db")) as store, store.engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragmas["journal_mode"] == "wal"
    assert pragmas["synchronous"] == 1  # NORMAL
    assert pragmas["foreign_keys"] == 1
    assert int(str(pragmas["busy_timeout"])) > 0


def test_sqlite_store_satisfies_the_protocol(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "m.db")) as opened:
        store: Store = opened  # checked by mypy; at run time just a smoke test
        assert store.count() == 0


@pytest.mark.parametrize(
    "value",
    ["mysql://user:hunter2@db.example/nvd", "postgresql+psycopg2://u@h/d", "sqlite+aiosqlite:///x"],
)
def test_unknown_scheme_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(value)
    message = str(info.value)
    assert value.split("://")[0] in message
    assert "postgresql://" in message
    assert "file path" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("value", ["sqlite://", "sqlite:///:memory:", "  "])
def test_unusable_values_are_config_errors(value: str) -> None:
    with pytest.raises(ConfigError):
        open_store(value)


def test_postgres_urls_use_psycopg_3() -> None:
    for value in ("postgresql://nvd@db.example/nvd", "postgresql+psycopg://nvd@db.example/nvd"):
        assert resolve(value).url.drivername == "postgresql+psycopg"


def test_password_is_masked() -> None:
    target = resolve("postgresql://nvd:s3cr%40t@db.example:5433/nvd")
    assert target.location == "postgresql://nvd:***@db.example:5433/nvd"
    assert target.url.password == "s3cr@t"  # still there for connecting
    assert mask("weird://user:pa ss@[bad") == "weird://user:***@[bad"
    assert mask("postgresql://nvd@db.example/nvd") == "postgresql://nvd@db.example/nvd"


def test_unreachable_postgres_is_a_store_error_with_masked_url() -> None:
    pytest.importorskip("psycopg")
    # Port 1 on localhost refuses at once; nothing listens there.
    with pytest.raises(StoreError) as info:
        open_store("postgresql://nvd:hunter2@127.0.0.1:1/nvd?connect_timeout=3")
    message = str(info.value)
    assert "postgresql://nvd:***@127.0.0.1:1/nvd" in message
    assert "hunter2" not in message
    assert "refused" in message.lower() or "connect" in message.lower()


def test_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the directory"):
        open_store(str(blocker / "sub" / "mirror.db"))
