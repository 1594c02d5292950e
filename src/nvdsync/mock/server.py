"""Start and stop the mock NVD CVE API server, in a thread or in the foreground.

Why the stdlib ``http.server.ThreadingHTTPServer`` and not an ASGI framework: the mock
needs byte-level control of what goes on the wire (a Content-Length promising more
than is sent, a connection closed or reset mid-body), it must add no dependency, and
it starts in milliseconds, which matters for tests that start one server per test.
A thread per connection is plenty for a test double; the heavy part of a page (the
concatenation and optional gzip) runs in C.

Usage::

    with serve(MockConfig(rate_limit_anonymous=None), generate(5000)) as server:
        httpx.get(server.url, params={"resultsPerPage": 100})
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from nvdsync.mock.config import MockConfig
from nvdsync.mock.data import load_bundled
from nvdsync.mock.dataset import Dataset
from nvdsync.mock.handler import CVE_PATH, MockApp, MockRequestHandler

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    from nvdsync.mock.faults import MockStats

__all__ = ["MockConfig", "MockServer", "serve", "serve_forever"]

logger = logging.getLogger(__name__)


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so ``stop()`` can end them."""

    daemon_threads = True
    # Don't join handler threads on close: one may be asleep in slow_seconds, or
    # blocked on an idle keep-alive connection; stop() shuts their sockets instead.
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[MockRequestHandler]) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can
        # take seconds on a badly configured host; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr. A client hanging up mid-page is
        # normal for a fault-injecting server; anything else is a bug worth a warning.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("client %s went away", client_address, exc_info=True)
        else:
            logger.warning("error while serving %s", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self.connections_lock:
            open_now = list(self.connections)
        for conn in open_now:
            with contextlib.suppress(OSError):  # already closed by its handler
                conn.shutdown(socket.SHUT_RDWR)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class MockServer:
    """A bound mock server. ``serve()`` returns one already running in a thread."""

    def __init__(
        self, config: MockConfig, records: Iterable[bytes], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config
        self.dataset = Dataset(records)
        self._app = MockApp(config, self.dataset)
        handler = type("BoundMockRequestHandler", (MockRequestHandler,), {"app": self._app})
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        self._httpd = server_class((host, port), handler)
        self.host = host
        self.port: int = self._httpd.server_port
        url_host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
        if ":" in url_host:
            url_host = f"[{url_host}]"
        #: ``http://HOST:PORT``.
        self.base_url = f"http://{url_host}:{self.port}"
        #: The full URL of the CVE endpoint, ``http://HOST:PORT/rest/json/cves/2.0``.
        self.url = self.base_url + CVE_PATH
        self._thread: threading.Thread | None = None
        self._serving_in: threading.Thread | None = None
        self._stopped = False

    @property
    def stats(self) -> MockStats:
        """Counters per status, 403s, request count and the request log."""
        return self._app.stats

    def start(self) -> MockServer:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.run, name=f"nvd-mock-{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def run(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another one."""
        self._serving_in = threading.current_thread()
        try:
            self._httpd.serve_forever(poll_interval=0.02)
        finally:
            self._serving_in = None

    def stop(self) -> None:
        """Stop serving, end open connections and release the port. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        # In thread mode the loop may not have started yet: shutdown() still works then,
        # because serve_forever() checks the request before its first poll.
        serving_in = self._thread or self._serving_in
        if serving_in is not None and serving_in is not threading.current_thread():
            self._httpd.shutdown()  # waits for the serve_forever loop to exit
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MockServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<MockServer {self.url} records={len(self.dataset)}>"


def serve(
    config: MockConfig | None = None,
    records: Iterable[bytes] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> MockServer:
    """Start a mock server in a daemon thread and return it (port 0 = a free port).

    ``config`` defaults to :class:`MockConfig()` (NVD's own rate limits!) and
    ``records`` to the bundled real records. Use it as a context manager or call
    ``stop()``.
    """
    server = MockServer(
        config or MockConfig(), load_bundled() if records is None else records, host, port
    )
    return server.start()


def serve_forever(
    config: MockConfig | None = None,
    records: Iterable[bytes] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[MockServer], None] | None = None,
) -> None:
    """Serve in the foreground until KeyboardInterrupt (Ctrl-C), then shut down cleanly.

    ``on_ready`` is called with the bound server (its ``url`` is known by then) just
    before serving starts, e.g. to print the URL. For the ``nvdsync mock-nvd`` command.
    """
    server = MockServer(
        config or MockConfig(), load_bundled() if records is None else records, host, port
    )
    try:
        if on_ready is not None:
            on_ready(server)
        server.run()
    except KeyboardInterrupt:
        logger.info("mock NVD server on %s interrupted", server.url)
    finally:
        server.stop()
