"""HTTP request handling of the mock NVD CVE API: the firewall, the faults, the pages.

A request goes through the same stages as at NVD, in this order:

1. ``page_latency`` sleep (network round trip), then ``down`` → 503;
2. the "firewall": ``burst_403`` and the rolling-window rate limit → 403, empty body,
   ``Retry-After: 0``; refused requests do not count toward the window;
3. an injected 5xx (``error_rate``); it did reach NVD, so it counted toward the window;
4. the application: path, ``apiKey`` header, parameters → 404 with a ``message``
   header and an empty body;
5. a 200 page, possibly slow, possibly gzipped, possibly cut mid-stream; mutations
   for the next request happen after the page is built and before it is sent.
"""

from __future__ import annotations

import gzip
import logging
import socket
import struct
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from nvdsync.mock.data import nvd_time
from nvdsync.mock.faults import FaultPlan, MockStats, RateLimiter
from nvdsync.mock.params import InvalidRequest, parse_query

if TYPE_CHECKING:
    from nvdsync.mock.config import MockConfig
    from nvdsync.mock.dataset import Dataset, Page
    from nvdsync.mock.faults import Decision

__all__ = ["CVE_PATH", "MockApp", "MockRequestHandler", "build_envelope"]

logger = logging.getLogger(__name__)

CVE_PATH = "/rest/json/cves/2.0"
_PATHS = frozenset({CVE_PATH, CVE_PATH + "/"})
# NVD sends these on its answers (seen in captured 404 headers); clients may log them.
_CORS = (
    ("access-control-allow-origin", "*"),
    ("access-control-allow-headers", "accept, apiKey, content-type, origin, x-requested-with"),
    ("access-control-allow-methods", "GET, HEAD, OPTIONS"),
)
_ERROR_PAGE = (
    b"<html><head><title>%d</title></head><body><h1>%d</h1>"
    b"<p>The service is temporarily unavailable (nvdsync mock).</p></body></html>"
)


def build_envelope(page: Page, start_index: int, timestamp: str) -> bytes:
    """The CVE API envelope around the page's record bytes, built by concatenation.

    Records are inserted verbatim, never re-encoded: that is both faster and what makes
    the served ``cve`` objects byte-identical to the dataset's.
    """
    head = (
        b'{"resultsPerPage":%d,"startIndex":%d,"totalResults":%d,"format":"NVD_CVE",'
        b'"version":"2.0","timestamp":"%s","vulnerabilities":['
        % (len(page.records), start_index, page.total, timestamp.encode())
    )
    if not page.records:
        return head + b"]}"
    return b"".join((head, b'{"cve":', b'},{"cve":'.join(page.records), b"}]}"))


def _wants_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (``gzip`` or ``*``, and not ``q=0``)."""
    for item in (accept_encoding or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().lower().removeprefix("q=")
            return q.rstrip("0.") != "" or not params.strip()
    return False


class MockApp:
    """Everything a request needs: config, dataset, stats, limiter and fault plan."""

    def __init__(self, config: MockConfig, dataset: Dataset) -> None:
        self.config = config
        self.dataset = dataset
        self.stats = MockStats()
        self.limiter = RateLimiter()
        self.faults = FaultPlan()
        self._mutate_lock = threading.Lock()
        self._mutating_requests = 0

    def handle_get(self, h: MockRequestHandler) -> None:
        """Answer one GET through the stages listed in the module docstring."""
        cfg = self.config
        if cfg.page_latency:
            time.sleep(cfg.page_latency)
        decision = self.faults.next(cfg)
        if cfg.down:
            self._server_error(h, 503)
            return
        key = h.headers.get("apiKey")
        keyed = key is not None and key in cfg.valid_api_keys
        bucket, limit = (
            (f"key:{key}", cfg.rate_limit_keyed)
            if keyed
            else ("anonymous", cfg.rate_limit_anonymous)
        )
        if decision.forbidden or not self.limiter.admit(bucket, limit):
            self.send(h, 403, headers=[("Retry-After", "0")])
            return
        if decision.error_status is not None:
            self._server_error(h, decision.error_status)
            return
        path, _, query = h.path.partition("?")
        if path not in _PATHS:
            self.send(h, 404)
            return
        nvd_headers = [("apikey", "Yes" if keyed else "No"), *_CORS]
        if key is not None and not keyed:
            self.send(h, 404, headers=[("message", "Invalid apiKey."), *nvd_headers])
            return
        try:
            q = parse_query(query, cfg.max_page_size)
        except InvalidRequest as exc:
            self.send(h, 404, headers=[("message", exc.message), *nvd_headers])
            return
        if cfg.slow_seconds:
            time.sleep(cfg.slow_seconds)
        page = self.dataset.page(q)
        body = build_envelope(page, q.start_index, nvd_time(datetime.now(UTC)))
        self._maybe_mutate(decision)
        headers = [("Content-Type", "application/json"), ("Vary", "Accept-Encoding"), *nvd_headers]
        if cfg.gzip and _wants_gzip(h.headers.get("Accept-Encoding")):
            # Level 1: 9 MB pages must compress in tens of ms; ratio hardly matters here.
            body = gzip.compress(body, compresslevel=1, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
        self.send(h, 200, body, headers, cut=decision.cut)

    def _maybe_mutate(self, decision: Decision) -> None:
        plan = self.config.mutate
        if plan is None:
            return
        per_request, request_count = plan
        with self._mutate_lock:
            if self._mutating_requests >= request_count:
                return
            self._mutating_requests += 1
        changed = self.dataset.mutate_random(per_request, decision.rng)
        added = self.dataset.add_generated(self.config.mutate_new, decision.rng)
        logger.debug("request %d mutated %s, added %s", decision.number, changed, added)

    def _server_error(self, h: MockRequestHandler, status: int) -> None:
        self.send(h, status, _ERROR_PAGE % (status, status), [("Content-Type", "text/html")])

    def send(
        self,
        h: MockRequestHandler,
        status: int,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        *,
        cut: bool = False,
    ) -> None:
        """Send one complete response (or a cut one) and count it in the statistics."""
        # Count first: a client that has seen the response must see it in the stats.
        self.stats.record(h.command, h.path, status, cut=cut)
        h.send_response(status)
        for name, value in headers or ():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if cut:
            # Promise the whole body, deliver about half, then hang up: the client
            # must notice the short read (a broken stream, contract §7).
            h.wfile.write(body[: len(body) // 2])
            h.close_connection = True
            if self.config.cut_reset:
                # Linger 0 turns the close into a TCP RST ("connection reset").
                h.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                h.connection.close()
        elif body:
            h.wfile.write(body)


class MockRequestHandler(BaseHTTPRequestHandler):
    """Thin adapter from ``http.server`` to :class:`MockApp`."""

    # HTTP/1.1 gives keep-alive, so clients reuse connections as they would with NVD;
    # it requires a Content-Length on every response, which ``MockApp.send`` sets.
    protocol_version = "HTTP/1.1"
    server_version = "nvdsync-mock/2.0"
    sys_version = ""
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the
    # client's delayed ACK would add ~40 ms to small keep-alive responses.
    disable_nagle_algorithm = True
    # Idle keep-alive connections give their thread back eventually.
    timeout = 120

    app: MockApp  # set on the subclass made per server

    def do_GET(self) -> None:
        """Serve the CVE API."""
        self.app.handle_get(self)

    def _not_allowed(self) -> None:
        # Any request body is left unread, so this connection cannot be reused.
        self.close_connection = True
        self.app.send(self, 405, headers=[("Allow", "GET"), ("Connection", "close")])

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def log_message(self, format: str, *args: Any) -> None:
        """Send http.server's per-request lines to logging (DEBUG), not stderr."""
        logger.debug("%s - " + format, self.address_string(), *args)
