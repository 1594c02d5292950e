"""Human and JSON output for the CLI (Rich for people, stable JSON for scripts)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import msgspec
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nvdsync import logs

if TYPE_CHECKING:
    from types import TracebackType

    from nvdsync.models import CveRecord, StoreStatus
    from nvdsync.pipeline import PageEvent
    from nvdsync.sync import SyncReport
    from nvdsync.verify import VerifyReport

__all__ = ["SyncProgress", "print_record", "print_status", "print_sync_report", "print_verify"]

_out = Console(highlight=False, soft_wrap=True)
if not _out.is_terminal:  # logs and pipes: don't squeeze tables into 80 columns
    _out.width = 120


def _json(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


class SyncProgress:
    """A Rich progress bar on a terminal; otherwise the per-page INFO log lines."""

    def __init__(self, *, enabled: bool, verbosity: int) -> None:
        self.enabled = enabled
        self._started = time.monotonic()
        self._progress: Any = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            console = Console(stderr=True)
            # Per-page INFO lines would scroll the bar away; warnings still show.
            logs.configure(-1 if verbosity <= 0 else verbosity,
                           console=console)
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[pages]} pages"),
                TextColumn("{task.fields[rate]:,.0f} rec/s"),
                TimeRemainingColumn(), console=console, transient=False,
            )
            self._task = self._progress.add_task("sync", total=None, pages=0, rate=0.0)
        else:
            logs.configure(verbosity)

    def __enter__(self) -> SyncProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def update(self, event: PageEvent) -> None:
        if self._progress is None:
            return
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self._progress.update(
            self._task, completed=event.records, total=event.total or None,
            description=f"window {event.window}/{event.window_count}",
            pages=event.pages, rate=event.written / elapsed,
        )


def print_sync_report(report: SyncReport, *, as_json: bool) -> None:
    if as_json:
        _json(report)
        return
    style = "green" if report.ok else "red"
    _out.print(
        f"[{style}]{report.outcome}[/]: {report.mode} sync (run {report.run_id}"
        f"{', resumed' if report.resumed else ''}) — {report.records_written:,} records "
        f"written, {report.records_quarantined:,} quarantined, {report.pages:,} pages, "
        f"{report.requests:,} requests, {report.retries:,} retries in {report.duration_s:.1f}s "
        f"({report.records_written / max(report.duration_s, 1e-3):,.0f} records/s)"
    )
    _out.print(f"memory: peak {report.peak_rss_mb:.1f}MB, growth +{report.memory_growth_mb:.1f}MB, "
               f"{report.gcs_run} GCs run")
    if report.watermark:
        _out.print(f"watermark: {report.watermark}   database: {report.db}")


def print_status(status: StoreStatus, *, as_json: bool) -> None:
    if as_json:
        _json(status)
        return
    _out.print(f"database:    {status.location}")
    _out.print(f"records:     {status.records:,}")
    _out.print(f"watermark:   {status.watermark or 'none (the next sync is a full sync)'}")
    _out.print(f"quarantined: {status.quarantined:,}")
    if status.pending_plan:
        _out.print("[yellow]an interrupted sync is pending; `nvdsync sync` resumes it[/]")
    if not status.runs:
        return
    table = Table(title="recent runs", show_edge=False, pad_edge=False)
    for column in ("run", "mode", "started (UTC)", "outcome", "pages", "written", "quar.",
                   "retries", "peak MB"):
        table.add_column(column, no_wrap=True)
    for run in status.runs:
        table.add_row(str(run.id), run.mode, run.started_at[:16].replace("T", " "),
                      run.outcome, str(run.pages), str(run.records_written),
                      str(run.records_quarantined), str(run.retries),
                      f"{run.peak_rss_mb:.1f}" if run.peak_rss_mb is not None else "")
    _out.print(table)
    last = status.runs[0]
    if last.outcome != "success" and last.error:
        _out.print(f"[red]run {last.id} {last.outcome}:[/] {escape(last.error)}")


def print_record(record: CveRecord) -> None:
    # NVD text is printed with markup off (or escaped): it may contain [brackets].
    _out.print(f"[bold]{escape(record.id)}[/]  {escape(record.vuln_status or '')}")
    _out.print(f"published {record.published}, last modified {record.last_modified}, "
               f"source {record.source_identifier or '-'}", markup=False)
    for name, score in (("CVSS v4.0", record.cvss_v4), ("CVSS v3", record.cvss_v3),
                        ("CVSS v2", record.cvss_v2)):
        if score is not None:
            _out.print(f"{name}: {score.score} {score.severity or ''} {score.vector}",
                       markup=False)
    if record.cwes:
        _out.print("weaknesses: " + ", ".join(record.cwes), markup=False)
    if record.kev is not None:
        _out.print(f"[red]CISA KEV[/]: added {record.kev.date_added}, due "
                   f"{record.kev.action_due}: {escape(record.kev.required_action or '')}")
    if record.description:
        _out.print(record.description, markup=False)
    vulnerable = [m for m in record.cpe_matches if m.vulnerable]
    if vulnerable:
        _out.print(f"affected ({len(vulnerable)} CPE criteria):")
        for match in vulnerable[:10]:
            bounds = " ".join(f"{k}={v}" for k, v in (
                (">=", match.version_start_including), (">", match.version_start_excluding),
                ("<=", match.version_end_including), ("<", match.version_end_excluding)) if v)
            _out.print(f"  {match.criteria} {bounds}", markup=False)
        if len(vulnerable) > 10:
            _out.print(f"  … {len(vulnerable) - 10} more (nvdsync show --json)")
    _out.print(f"references: {len(record.references)}")


def print_verify(report: VerifyReport, *, as_json: bool) -> None:
    if as_json:
        _json(report)
        return
    _out.print(f"checked {report.windows_checked} published-date windows; "
               f"{report.local_total:,} records in the mirror")
    for m in report.mismatched:
        _out.print(f"[red]mismatch[/] {m.start} -> {m.end}: local {m.local:,}, NVD {m.remote:,}")
    if report.repair is not None:
        print_sync_report(report.repair, as_json=False)
        for m in report.remaining or ():
            _out.print(f"[red]still differs after repair[/] {m.start} -> {m.end}: local "
                       f"{m.local:,}, NVD {m.remote:,} (quarantined records, or records "
                       "NVD no longer serves)")
    elif not report.mismatched:
        _out.print("[green]every window matches NVD[/]")
