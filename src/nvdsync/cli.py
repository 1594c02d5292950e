"""The ``nvdsync`` command: a thin Typer layer over the library.

Each command parses options, builds Settings, calls one library function and
renders its result. Exit codes: 0 success, 1 the operation failed (the mirror stays
consistent), 2 usage or configuration errors, 3 another sync is writing the mirror.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from nvdsync.errors import ConfigError, MirrorBusy, NvdSyncError, SyncIncomplete

if TYPE_CHECKING:
    from nvdsync.config import Settings
    from nvdsync.mirror import Mirror

__all__ = ["app", "main"]

app = typer.Typer(
    name="nvdsync",
    help="Keep a local mirror of the NVD CVE API 2.0 and query it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

_state: dict[str, Any] = {"config": None, "verbose": 0}

DbOpt = Annotated[str | None, typer.Option("--db", help="SQLite file or SQLAlchemy URL "
                                           "(env NVDSYNC_DB).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More log output (-vv adds HTTP).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Warnings only.")]


def verbosity(verbose: int, quiet: bool) -> int:
    """Flags given after the command add to those given before it."""
    if quiet or _state["verbose"] < 0:
        return -1
    return int(_state["verbose"]) + verbose


def fail(message: str, code: int = 1, hint: str | None = None) -> NoReturn:
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    if hint:
        err.print(f"[dim]hint:[/] {hint}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


def settings(**flags: Any) -> Settings:
    from nvdsync.config import load_settings

    try:
        return load_settings(_state["config"], **flags)
    except ConfigError as exc:
        fail(str(exc), 2)


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.callback()
def _root(
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file "
                                                "(env NVDSYNC_CONFIG).")] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More log output (-vv adds HTTP).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings only.")] = False,
) -> None:
    _state["config"] = config
    _state["verbose"] = -1 if quiet else verbose


@app.command("sync")
def sync_cmd(
    full: Annotated[bool, typer.Option("--full", help="Page through all of NVD.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Re-fetch everything modified "
                                              "since this ISO date/time (UTC if no offset).")
                     ] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Discard an interrupted sync "
                                          "instead of resuming it.")] = False,
    api_url: Annotated[str | None, typer.Option("--api-url", help="CVE API endpoint "
                                                "(env NVDSYNC_API_URL).")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="NVD API key "
                                                "(env NVD_API_KEY).", show_default=False)] = None,
    db: DbOpt = None,
    page_size: Annotated[int | None, typer.Option("--page-size", help="Records per request, "
                                                  "1..2000 (default: 2000).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Records per write "
                                                   "transaction (default: 50).")] = None,
    rate_limit: Annotated[str | None, typer.Option("--rate-limit", help="N/SECONDS or 'off' "
                                                   "(default: NVD's 5/30, 50/30 with a key).")
                          ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Pages downloaded at once "
                                                "(default: 1).")] = None,
    max_retries: Annotated[int | None, typer.Option("--max-retries", help="Retries per "
                                                    "request (default: 8).")] = None,
    retry_budget: Annotated[float | None, typer.Option("--retry-budget", help="Seconds of "
                                                       "retry waiting per run (default: 1800)."
                                                       )] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress "
                                                  "bar (default: on a terminal).")] = None,
    memory_warning_mb: Annotated[float | None, typer.Option(
        "--memory-warning-mb", help="RSS (MB) at which a GC runs (default: 1024).")] = None,
    memory_critical_mb: Annotated[float | None, typer.Option(
        "--memory-critical-mb", help="RSS (MB) at which batches halve and read-ahead "
        "pauses until under warning (default: 2048).")] = None,
    gc_every_batches: Annotated[str | None, typer.Option(
        "--gc-every-batches", metavar="N|off", help="gc.collect() every N mini-batches "
        "(default: off; see docs/benchmarks.md).")] = None,
    gc_every_pages: Annotated[str | None, typer.Option(
        "--gc-every-pages", metavar="N|off", help="gc.collect() every N pages "
        "(default: off).")] = None,
    gc_every_db_batches: Annotated[str | None, typer.Option(
        "--gc-every-db-batches", metavar="N|off", help="gc.collect() every N committed "
        "write transactions (default: off).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="If another sync is writing the "
                                       "mirror, wait for it instead of exiting with 3.")
                    ] = False,
    wait_timeout: Annotated[float | None, typer.Option("--wait-timeout", min=0,
                                                       help="Seconds to wait at most "
                                                       "(implies --wait; default: no limit).")
                            ] = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Bring the mirror up to date (incremental when it has a watermark).

    One sync writes a mirror at a time: a second one exits with code 3, or with
    --wait waits for the first to finish and then brings the mirror up to date.
    """
    from nvdsync.render import SyncProgress, print_sync_report
    from nvdsync.source.windows import parse_when
    from nvdsync.sync import SyncReport, sync

    cfg = settings(db=db, api_url=api_url, api_key=api_key, page_size=page_size,
                   batch_size=batch_size, rate_limit=rate_limit, workers=workers,
                   max_retries=max_retries, retry_budget=retry_budget,
                   memory_warning_mb=memory_warning_mb, memory_critical_mb=memory_critical_mb,
                   gc_every_batches=gc_every_batches, gc_every_pages=gc_every_pages,
                   gc_every_db_batches=gc_every_db_batches)
    try:
        since_at = parse_when(since) if since else None
    except ValueError:
        fail(f"--since {since!r} is not an ISO date or date-time", 2,
             "e.g. --since 2024-01-31 or --since 2024-01-31T12:00:00+00:00")
    show_bar = sys.stderr.isatty() if progress is None else progress
    wait_s = wait_timeout if wait_timeout is not None else (math.inf if wait else None)
    with SyncProgress(enabled=show_bar, verbosity=verbosity(verbose, quiet)) as bar:
        try:
            report = sync(cfg, full=full, since=since_at, restart=restart, on_page=bar.update,
                          wait=wait_s, on_wait=_say_waiting)
        except MirrorBusy as exc:
            bar.stop()
            fail(str(exc), 3, "this sync did nothing; run it again later, or with --wait "
                 "to queue behind the running one")
        except SyncIncomplete as exc:
            bar.stop()
            if isinstance(exc.report, SyncReport):
                print_sync_report(exc.report, as_json=json_out)
            fail(str(exc), 1, _hint_for(exc))
        except ConfigError as exc:
            fail(str(exc), 2)
        except NvdSyncError as exc:
            fail(str(exc), 1)
        except OSError as exc:
            fail(f"sync failed: {exc}", 1, "the mirror is consistent; the next sync resumes")
    print_sync_report(report, as_json=json_out)


def _say_waiting(holder: str) -> None:
    sys.stderr.write(f"waiting for the sync that is writing the mirror ({holder}) "
                     "to finish...\n")
    sys.stderr.flush()


def _hint_for(exc: BaseException) -> str | None:
    text = str(exc).lower()
    if "apikey" in text or "api key" in text:
        return "check --api-key / NVD_API_KEY"
    if "connection failed" in text or "timed out" in text:
        return "is --api-url reachable? the next `nvdsync sync` resumes where this one stopped"
    return "the next `nvdsync sync` resumes from the last committed page"


@app.command()
def status(db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Database location, record count, watermark, quarantine and recent runs."""
    from nvdsync.render import print_status

    cfg = settings(db=db)
    with _store(cfg) as store:
        print_status(store.status(), as_json=json_out)


@app.command()
def show(cve_ids: Annotated[list[str], typer.Argument(help="e.g. CVE-2024-3400 (one or "
                                                     "more)", metavar="CVE_ID...")],
         db: DbOpt = None, json_out: JsonOpt = False,
         cache_size: Annotated[int | None, typer.Option(
             "--cache-size", min=0, max=1_000_000,
             help="Records kept in the LRU cache (default 50; 0 turns it off).")] = None,
         ) -> None:
    """Records: a summary, or with --json each record exactly as NVD sent it (JSONL)."""
    from nvdsync.render import print_record

    cfg = settings(db=db, cache_size=cache_size)
    missing = []
    with open_mirror(cfg) as mirror:
        for cve_id in cve_ids:
            key = cve_id.strip().upper()
            try:
                found = mirror.get(key) if json_out else mirror.record(key)
            except NvdSyncError as exc:
                fail(str(exc), 1)
            if found is None:
                missing.append(key)
            elif isinstance(found, bytes):
                sys.stdout.buffer.write(found + b"\n")
            else:
                print_record(found)
    if missing:
        sys.stdout.flush()
        fail(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in the mirror "
             f"at {mirror.location}", 1, "run `nvdsync sync`, or check the id")


def open_mirror(cfg: Settings) -> Mirror:
    """``Mirror.open`` with its errors turned into exit codes."""
    from nvdsync.mirror import Mirror

    try:
        return Mirror.open(cfg)
    except ConfigError as exc:
        fail(str(exc), 2)
    except NvdSyncError as exc:
        fail(str(exc), 1)


@app.command()
def export(db: DbOpt = None,
           out_path: Annotated[str, typer.Option("--out", help="File to write, or - for "
                                                 "stdout.")] = "-") -> None:
    """Every record as JSONL (one NVD cve object per line), by published then id."""
    import os
    import tempfile

    cfg = settings(db=db)
    with _store(cfg) as store:
        if out_path == "-":
            sink = sys.stdout.buffer
            for raw in store.iter_raw():
                sink.write(raw + b"\n")
            sink.flush()
            return
        target = Path(out_path)
        if not target.parent.is_dir():
            fail(f"--out {out_path}: directory {target.parent} does not exist", 2)
        # Write beside the target and rename: a failed export never leaves half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        count = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for raw in store.iter_raw():
                    fh.write(raw + b"\n")
                    count += 1
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        sys.stderr.write(f"exported {count} records to {target}\n")


@app.command("verify")
def verify_cmd(
    repair: Annotated[bool, typer.Option("--repair", help="Re-fetch the windows that "
                                         "disagree.")] = False,
    start: Annotated[str | None, typer.Option("--from", help="Check from this date "
                                              "(default: 1988-01-01).")] = None,
    db: DbOpt = None,
    api_url: Annotated[str | None, typer.Option("--api-url")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", show_default=False)] = None,
    rate_limit: Annotated[str | None, typer.Option("--rate-limit")] = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Compare local counts with NVD's per published-date window (<= 120 days)."""
    from nvdsync.logs import configure
    from nvdsync.render import print_verify
    from nvdsync.source.windows import parse_when
    from nvdsync.verify import verify

    cfg = settings(db=db, api_url=api_url, api_key=api_key, rate_limit=rate_limit)
    configure(verbosity(verbose, quiet))
    try:
        report = verify(cfg, repair=repair, start=parse_when(start) if start else None)
    except ValueError as exc:
        fail(f"--from: {exc}", 2)
    except SyncIncomplete as exc:
        fail(f"repair failed: {exc}", 1)
    except ConfigError as exc:
        fail(str(exc), 2)
    except NvdSyncError as exc:
        fail(str(exc), 1)
    print_verify(report, as_json=json_out)
    if not report.ok:
        raise typer.Exit(1)


@config_app.command("show")
def config_show(json_out: JsonOpt = False) -> None:
    """Print the effective settings (the API key masked)."""
    import json

    data = settings().public_dict()
    if json_out:
        out(json.dumps(data, indent=2, default=str))
        return
    for key, value in data.items():
        out(f"{key} = {value}")


class _store:
    def __init__(self, cfg: Settings) -> None:
        from nvdsync.store import open_store

        try:
            self.store = open_store(cfg.db)
        except ConfigError as exc:
            fail(str(exc), 2)
        except NvdSyncError as exc:
            fail(str(exc), 1)

    def __enter__(self) -> Any:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def main() -> None:
    app()


# Registers `mock-nvd` and `demo` on `app`; imported last because it imports `app`.
from nvdsync import cli_mock, cli_runs, cli_search, cli_serve  # noqa: E402

del cli_mock
del cli_runs
del cli_search
del cli_serve
