"""Prometheus metrics of one app, in a registry of its own.

A per-app :class:`CollectorRegistry` (not the global default) lets tests and
benchmarks build many apps in one process without "duplicated timeseries" errors.

* counters the app updates: HTTP requests and latencies (an ASGI middleware that
  times until the last body byte, so streamed pages count whole), and the syncs this
  service ran: runs by outcome, pages, records, retries by reason;
* values read at scrape time: records and quarantined rows, the last run in the
  store's runs table (whoever ran it: this service, ``nvdsync sync`` or another
  replica), RSS now and peak, and the record cache's hits/misses when it has one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nvdsync.memory import MemoryMonitor

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from nvdsync.mirror import Mirror
    from nvdsync.server.schedule import SyncAttempt

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsMiddleware"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_MB = 1024 * 1024
# Latency buckets from a cached id lookup (~1 ms) to a 2,000-record page (seconds).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The app's metrics; ``render()`` is the /metrics body."""

    def __init__(self, mirror: Mirror) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("nvdsync_http_requests", "HTTP requests answered.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("nvdsync_http_request_duration_seconds",
                                 "Time from request to last body byte.",
                                 ["method", "route"], buckets=_BUCKETS, registry=r)
        self.sync_runs = Counter("nvdsync_service_sync_runs", "Syncs this service ran, "
                                 "by outcome.", ["outcome"], registry=r)
        self.sync_pages = Counter("nvdsync_service_sync_pages", "Pages committed by syncs "
                                  "this service ran.", registry=r)
        self.sync_records = Counter("nvdsync_service_sync_records", "Records written by "
                                    "syncs this service ran.", registry=r)
        self.sync_retries = Counter("nvdsync_service_sync_retries", "Request retries of "
                                    "syncs this service ran, by reason.", ["reason"],
                                    registry=r)
        r.register(_StateCollector(mirror))

    def observe_sync(self, attempt: SyncAttempt) -> None:
        self.sync_runs.labels(attempt.outcome).inc()
        self.sync_pages.inc(attempt.pages)
        self.sync_records.inc(attempt.records_written)
        for reason, count in attempt.retry_reasons.items():
            self.sync_retries.labels(reason).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Values read when scraped, so they are right whichever process changed them."""

    def __init__(self, mirror: Mirror) -> None:
        self._mirror = mirror
        self._monitor = MemoryMonitor(1e9, 2e9, auto_gc=False)  # only used to read RSS
        self._peak_mb = 0.0

    def describe(self) -> Iterable[Metric]:
        return []  # values are read at scrape time only (no store access at register)

    def collect(self) -> Iterable[Metric]:
        status = self._mirror.status()
        yield _gauge("nvdsync_records", "Records in the mirror.", status.records)
        yield _gauge("nvdsync_quarantined", "Records held in quarantine.", status.quarantined)
        if status.runs:
            last = status.runs[0]
            outcome = GaugeMetricFamily("nvdsync_last_run_info", "The newest run in the "
                                        "runs table (value 1).", labels=["mode", "outcome"])
            outcome.add_metric([last.mode, last.outcome], 1)
            yield outcome
            yield _gauge("nvdsync_last_run_id", "Id of the newest run.", last.id)
            yield _gauge("nvdsync_last_run_pages", "Pages of the newest run.", last.pages)
            yield _gauge("nvdsync_last_run_records", "Records written by the newest run.",
                         last.records_written)
            yield _gauge("nvdsync_last_run_retries", "Retries of the newest run.", last.retries)
        rss = self._monitor.sample().rss_mb
        self._peak_mb = max(self._peak_mb, rss, MemoryMonitor.os_peak_mb() or 0.0)
        yield _gauge("nvdsync_rss_bytes", "Resident set size of this process.", rss * _MB)
        yield _gauge("nvdsync_rss_peak_bytes", "Peak resident set size of this process.",
                     self._peak_mb * _MB)
        yield from _cache_metrics(self._mirror)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _cache_metrics(mirror: Mirror) -> Iterable[Metric]:
    """The record cache's counters, when the mirror has a cache (``cache_info()``)."""
    info_fn = getattr(mirror, "cache_info", None)
    if info_fn is None:
        return
    info: Any = info_fn()
    if info is None:
        return
    values = _numbers(info)
    for key in ("hits", "misses", "evictions"):
        if key in values:
            yield CounterMetricFamily(f"nvdsync_cache_{key}", f"Record cache {key}.",
                                      value=values[key])
    for key, value in values.items():
        if key not in ("hits", "misses", "evictions"):
            yield _gauge(f"nvdsync_cache_{key}", f"Record cache {key}.", value)


def _numbers(info: Any) -> dict[str, float]:
    """Numeric fields of a mapping, struct, dataclass or named tuple."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(info, Mapping):
        items = info.items()
    elif dataclasses.is_dataclass(info) and not isinstance(info, type):
        items = dataclasses.asdict(info).items()  # slots dataclasses have no __dict__
    elif hasattr(info, "_asdict"):
        items = info._asdict().items()
    elif hasattr(info, "__struct_fields__"):
        items = [(f, getattr(info, f)) for f in info.__struct_fields__]
    else:
        items = vars(info).items() if hasattr(info, "__dict__") else []
    return {str(k): float(v) for k, v in items
            if isinstance(v, int | float) and not isinstance(v, bool)}


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app dies before answering

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # The router stores the matched route in the scope; unmatched paths share
            # one label so that scanners probing random URLs cannot grow the series.
            route = getattr(scope.get("route"), "path", "<unmatched>")
            method = str(scope.get("method", "GET"))
            if method not in _METHODS:
                method = "OTHER"  # a client-chosen method must not mint new series
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
