"""``nvdsync runs``: the sync history with each run's memory over time.

``nvdsync runs`` lists runs; ``nvdsync runs show N`` prints one run's figures and a
terminal chart of its RSS; ``--plot FILE.svg|png`` also writes a real chart. All
reads go through :meth:`nvdsync.mirror.Mirror.runs`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path  # noqa: TC003 - Typer evaluates the annotations at runtime
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer

from nvdsync.cli import DbOpt, JsonOpt, app, fail, open_mirror, out, settings
from nvdsync.errors import NvdSyncError

if TYPE_CHECKING:
    from nvdsync.models import RunInfo

__all__ = ["runs_app"]

runs_app = typer.Typer(help="Past syncs with their memory figures; `runs show N` for one.",
                       invoke_without_command=True)
app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    db: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000,
                                             help="Runs to list.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """List the newest runs: outcome, records, duration, peak RSS, growth, GCs."""
    if ctx.invoked_subcommand is not None:
        return
    with open_mirror(settings(db=db)) as mirror:
        try:
            found = mirror.runs().list_runs(limit)
        except NvdSyncError as exc:
            fail(str(exc), 1)
    if json_out:
        out(json.dumps(msgspec.to_builtins(found), indent=2))
        return
    if not found:
        out(f"no runs yet in {mirror.location}; run `nvdsync sync`")
        return
    out(f"{'run':>5}  {'started (UTC)':<19}  {'mode':<11} {'outcome':<11} {'pages':>5} "
        f"{'records':>9} {'time':>8} {'peak MB':>8} {'growth':>7} {'GCs':>4}")
    for run in found:
        out(f"{run.id:>5}  {run.started_at[:19].replace('T', ' '):<19}  {run.mode:<11} "
            f"{run.outcome:<11} {run.pages:>5} {run.records_written:>9,} "
            f"{_duration(run):>8} {_num(run.peak_rss_mb):>8} {_num(run.growth_mb, '+'):>7} "
            f"{'' if run.gcs_run is None else run.gcs_run:>4}")


@runs_app.command("show")
def runs_show(
    run_id: Annotated[int, typer.Argument(min=1, max=2**62,  # a SQL integer holds it
                                          help="Run number, from `nvdsync runs`.")],
    db: DbOpt = None,
    plot: Annotated[Path | None, typer.Option("--plot", metavar="FILE.svg|png",
                                              help="Also write a chart of RSS over time "
                                              "(matplotlib).")] = None,
    width: Annotated[int, typer.Option("--width", min=20, max=400,
                                       help="Terminal chart width.")] = 60,
    json_out: JsonOpt = False,
) -> None:
    """One run's figures and a chart of its RSS over time (page marks, thresholds)."""
    from nvdsync.memory_chart import PLOT_SUFFIXES, plot_run, text_chart

    if plot is not None:
        if plot.suffix.lower() not in PLOT_SUFFIXES:
            fail(f"--plot {plot}: write the chart as .svg or .png", 2)
        if not plot.parent.is_dir():
            fail(f"--plot {plot}: directory {plot.parent} does not exist", 2)
    with open_mirror(settings(db=db)) as mirror:
        try:
            history = mirror.runs()
            run = history.get_run(run_id)
            samples = history.samples(run_id) if run is not None else []
        except NvdSyncError as exc:
            fail(str(exc), 1)
    if run is None:
        fail(f"there is no run {run_id} in {mirror.location}", 1, "`nvdsync runs` lists them")
    if json_out:
        data = {"run": msgspec.to_builtins(run), "samples": msgspec.to_builtins(samples)}
        out(json.dumps(data))
    else:
        for line in _figures(run, len(samples)):
            out(line)
        out("")
        out("RSS over time (highest per column):")
        for line in text_chart(samples, width=width):
            out(line)
    if plot is not None:
        if not samples:
            fail(f"run {run_id} has no memory samples (recorded before nvdsync stored "
                 "them, or the run was killed)", 1)
        try:
            plot_run(run, samples, plot)
        except OSError as exc:  # a directory of that name, no permission, disk full
            fail(f"--plot {plot}: cannot write it: {exc.strerror or exc}", 1)
        sys.stdout.flush()  # the figures first, then the note on stderr
        typer.echo(f"wrote {plot}", err=True)


def _figures(run: RunInfo, samples: int) -> list[str]:
    rate = ""
    seconds = _seconds(run)
    if seconds and run.records_written:
        rate = f" ({run.records_written / seconds:,.0f} records/s)"
    lines = [
        f"run {run.id}: {run.mode} sync, {run.outcome}",
        f"  started   {run.started_at}",
        f"  ended     {run.ended_at or '-'}",
        f"  duration  {_duration(run)}{rate}",
        f"  pages     {run.pages:,}, records written {run.records_written:,}, "
        f"quarantined {run.records_quarantined:,}, retries {run.retries:,}",
        f"  memory    start {_num(run.start_rss_mb)} MB, peak {_num(run.peak_rss_mb)} MB, "
        f"growth {_num(run.growth_mb, '+')} MB, GCs run {_num(run.gcs_run)}",
        f"  limits    warning {_num(run.warning_mb)} MB, critical {_num(run.critical_mb)} MB",
        f"  samples   {samples:,}",
    ]
    if run.error:
        lines.append(f"  error     {run.error}")
    return lines


def _seconds(run: RunInfo) -> float | None:
    if not run.ended_at:
        return None
    try:
        return (datetime.fromisoformat(run.ended_at)
                - datetime.fromisoformat(run.started_at)).total_seconds()
    except ValueError:
        return None


def _duration(run: RunInfo) -> str:
    seconds = _seconds(run)
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _num(value: float | None, sign: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:{sign}.1f}"
