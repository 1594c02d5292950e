"""``nvdsync mock-nvd`` and ``nvdsync demo``: the offline NVD stand-in and a tour.

The demo runs the mock in a child process so that the memory figures it prints are
the sync's alone, not the mock's dataset.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from nvdsync.mock import MockServer

from nvdsync.cli import app, fail, out, settings

__all__: list[str] = []

READY = "mock NVD API listening on "


def _rate(text: str) -> tuple[int, float] | None:
    from nvdsync.config import parse_rate_limit

    try:
        return parse_rate_limit(text, has_key=False)
    except ValueError as exc:
        fail(str(exc), 2)


@app.command("mock-nvd")
def mock_nvd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8080,
    data: Annotated[Path | None, typer.Option("--data", help="Serve these records "
                                              "(JSONL of NVD cve objects).")] = None,
    records: Annotated[int | None, typer.Option("--records", help="Serve N generated "
                                                "realistic records.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for generated data and faults.")] = 0,
    api_key: Annotated[list[str] | None, typer.Option("--api-key", help="A valid API key "
                                                      "(repeatable).")] = None,
    rate_limit: Annotated[str, typer.Option(help="Keyless limit N/SECONDS or off.")] = "5/30",
    keyed_rate_limit: Annotated[str, typer.Option(help="Limit with a key.")] = "50/30",
    max_page_size: Annotated[int, typer.Option(help="Refuse larger resultsPerPage "
                                               "(1000 mimics NVD's stricter cap).")] = 2000,
    error_rate: Annotated[float, typer.Option(help="Share of requests answered "
                                              "503/502/504/524.")] = 0.0,
    cut_rate: Annotated[float, typer.Option(help="Share of bodies cut mid-stream.")] = 0.0,
    latency: Annotated[float, typer.Option(help="Seconds added to every page.")] = 0.0,
    burst_403: Annotated[str | None, typer.Option(help="START:COUNT requests answered 403."
                                                  )] = None,
    mutate: Annotated[int, typer.Option(help="Records modified per served page.")] = 0,
    mutate_requests: Annotated[int, typer.Option(help="...for this many requests.")] = 0,
    down: Annotated[bool, typer.Option(help="Answer every request with 503.")] = False,
    no_gzip: Annotated[bool, typer.Option("--no-gzip", help="Never compress.")] = False,
) -> None:
    """Serve a faithful mock of the NVD CVE API 2.0 (for the demo, tests, benchmarks)."""
    from nvdsync.mock import MockConfig, generate, load_bundled, load_jsonl, serve_forever

    if data is not None and records is not None:
        fail("give --data or --records, not both", 2)
    try:
        dataset = (load_jsonl(data) if data is not None
                   else generate(records, seed) if records is not None else load_bundled())
    except (OSError, ValueError) as exc:
        fail(f"cannot load mock data: {exc}", 2)
    burst: tuple[int, int] | None = None
    if burst_403:
        try:
            start, count = (int(p) for p in burst_403.split(":"))
            burst = (start, count)
        except ValueError:
            fail(f"--burst-403 {burst_403!r} is not START:COUNT", 2)
    config = MockConfig(
        valid_api_keys=set(api_key or ()), rate_limit_anonymous=_rate(rate_limit),
        rate_limit_keyed=_rate(keyed_rate_limit), max_page_size=max_page_size,
        gzip=not no_gzip, error_rate=error_rate, cut_rate=cut_rate, page_latency=latency,
        burst_403=burst, down=down,
        mutate=(mutate, mutate_requests) if mutate and mutate_requests else None, seed=seed,
    )

    def ready(server: MockServer) -> None:
        out(f"{READY}{server.url}  ({len(dataset):,} records; Ctrl-C stops)")
        sys.stdout.flush()

    serve_forever(config, dataset, host=host, port=port, on_ready=ready)


def start_mock_process(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Start ``nvdsync mock-nvd --port 0 ARGS`` in a child; return it and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nvdsync", "mock-nvd", "--port", "0", *args],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(READY):
        proc.kill()
        raise RuntimeError(f"mock NVD did not start: {line!r}")
    return proc, line[len(READY):].split()[0]


@app.command()
def demo(
    records: Annotated[int, typer.Option(help="Records the mock serves.")] = 10_000,
    db: Annotated[Path | None, typer.Option("--db", help="Demo database (default: "
                                            "demo.sqlite beside the default mirror).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the generated data.")] = 0,
) -> None:
    """Offline tour: start the mock NVD, full-sync it into SQLite, print status and memory."""
    from nvdsync.config import default_db_path
    from nvdsync.errors import NvdSyncError
    from nvdsync.render import SyncProgress, print_status, print_sync_report
    from nvdsync.store import open_store
    from nvdsync.sync import sync

    target = db or default_db_path().with_name("demo.sqlite")
    for suffix in ("", "-wal", "-shm"):  # a fresh demo each time; only the demo's files
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    out(f"starting the mock NVD API with {records:,} generated records …")
    proc, url = start_mock_process(["--records", str(records), "--seed", str(seed),
                                    "--rate-limit", "off"])
    try:
        cfg = settings(db=str(target), api_url=url, rate_limit="off")
        out(f"full sync from {url} into {target}")
        with SyncProgress(enabled=sys.stderr.isatty(), verbosity=0) as bar:
            try:
                report = sync(cfg, full=True, on_page=bar.update)
            except NvdSyncError as exc:
                bar.stop()
                fail(f"demo sync failed: {exc}", 1)
        print_sync_report(report, as_json=False)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    store = open_store(str(target))
    try:
        print_status(store.status(), as_json=False)
    finally:
        store.close()
    out(f"try: nvdsync show {_first_id(str(target))} --db {target}")


def _first_id(db: str) -> str:
    from nvdsync.store import open_store

    store = open_store(db)
    try:
        for raw in store.iter_raw():
            import msgspec

            return str(msgspec.json.decode(raw)["id"])
        return "CVE-2024-3400"
    finally:
        store.close()
