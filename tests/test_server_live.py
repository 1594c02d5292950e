"""The service for real: while a sync writes, the ``serve`` command, ``--workers N``."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psutil
import pytest
from typer.testing import CliRunner

from nvdsync.cli import app as cli_app
from nvdsync.config import load_settings
from nvdsync.mock import generate
from nvdsync.server import create_app
from nvdsync.store import open_store
from nvdsync.sync import sync
from support import make_settings

with warnings.catch_warnings():
    # Starlette 1.x warns that its TestClient wants the "httpx2" fork; httpx works.
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient

BATCH = 50


def test_serving_continues_during_a_sync_and_sees_only_committed_batches(
    mock_nvd: Any, db_path: Path
) -> None:
    server = mock_nvd(generate(1500, seed=3), slow_seconds=0.15)
    open_store(str(db_path)).close()  # an empty mirror, being filled while served
    settings = make_settings(server, db_path, page_size=300, batch_size=BATCH)
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(sync(settings)))
    totals: list[int] = []
    with TestClient(create_app(load_settings(db=str(db_path)))) as api:
        worker.start()
        while worker.is_alive() or not totals:
            page = api.get("/rest/json/cves/2.0", params={"resultsPerPage": 2000})
            assert page.status_code == 200
            body = msgspec.json.decode(page.content)
            # Each answer is self-consistent: as many records as its head announced.
            assert len(body["vulnerabilities"]) == body["resultsPerPage"]
            totals.append(body["totalResults"])
            assert api.get("/healthz").status_code == 200
        worker.join()
        final = api.get("/rest/json/cves/2.0", params={"resultsPerPage": 1}).json()
    assert outcome[0].ok
    assert final["totalResults"] == 1500
    # Only whole batches are ever visible, and the count never goes back.
    assert all(total % BATCH == 0 for total in totals), totals
    assert totals == sorted(totals)
    assert len(set(totals)) > 2  # the sync was seen in progress, not only before/after


@pytest.mark.postgres
def test_serve_with_several_workers_on_postgresql(
    mock_nvd: Any, pg_url: str, tmp_path: Path
) -> None:
    records = generate(300, seed=4)
    server = mock_nvd(records)
    assert sync(make_settings(server, pg_url)).ok
    port = free_port()
    log = tmp_path / "serve.log"
    proc = run_serve(["--db", pg_url, "--port", str(port), "--workers", "2"], log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/healthz", proc)
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len([p for p in workers if "python" in p.name().lower()]) >= 2
        with httpx.Client(base_url=base) as client:
            for raw in records[:40]:
                cve_id = msgspec.json.decode(raw)["id"]
                assert client.get(f"/api/cves/{cve_id}").content == raw
            body = client.get("/rest/json/cves/2.0", params={"resultsPerPage": 2000}).json()
            assert body["totalResults"] == 300
            assert client.get("/api/status").json()["records"] == 300
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()


# --- the serve command ----------------------------------------------------------------


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The CLI configures the nvdsync logger; give later tests (caplog) it back."""
    logger = logging.getLogger("nvdsync")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.mark.usefixtures("logging_restored")
def test_serve_rejects_a_bad_duration(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--db", str(tmp_path / "m.sqlite"),
                                          "--sync-every", "soon"])
    assert result.exit_code == 2
    assert "sync_every 'soon'" in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("serve did not answer in time")


def run_serve(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "nvdsync", "serve", "-q", *args],
                                env=dict(os.environ), stdout=sink, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_serve_command_answers_over_http(mock_nvd: Any, db_path: Path, tmp_path: Path) -> None:
    records = generate(200, seed=8)
    assert sync(make_settings(mock_nvd(records), db_path)).ok
    port = free_port()
    log = tmp_path / "serve.log"
    proc = run_serve(["--db", str(db_path), "--port", str(port)], log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/healthz", proc)
        raw = records[5]
        cve_id = msgspec.json.decode(raw)["id"]
        assert httpx.get(f"{base}/api/cves/{cve_id}").content == raw
        page = httpx.get(f"{base}/rest/json/cves/2.0", params={"cveId": cve_id}).json()
        assert page["totalResults"] == 1
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()
