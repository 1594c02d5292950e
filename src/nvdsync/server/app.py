"""The FastAPI app: a thin HTTP layer over :class:`nvdsync.mirror.Mirror` and ``sync``.

``create_app(settings)`` opens the mirror that ``settings.db`` names;
``create_app(mirror, settings=...)`` serves an already open one (tests, benchmarks).
Each app has its own metrics registry and sync service, so many apps can live in one
process. ``create_app_from_env`` is the import-string factory that ``uvicorn
--workers N`` calls in every worker process.

Errors never surface as 500s on purpose: invalid parameters are 400 with a message
(404 the NVD way on the NVD-compatible endpoint), and a database that cannot be read
is 503 with the store's message.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from nvdsync import __version__
from nvdsync.config import Settings
from nvdsync.errors import InvalidQuery, NvdSyncError
from nvdsync.mirror import Mirror
from nvdsync.server import api, nvd_api
from nvdsync.server.metrics import Metrics, MetricsMiddleware
from nvdsync.server.schedule import SyncAttempt, SyncService, parse_duration

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from nvdsync.sync import SyncReport

__all__ = ["SETTINGS_ENV", "ServerContext", "create_app", "create_app_from_env"]

log = logging.getLogger(__name__)

#: The environment variable through which ``serve --workers N`` hands the effective
#: settings (JSON) to its worker processes. Not ``NVDSYNC_``-prefixed: Settings would
#: read it as an unknown field.
SETTINGS_ENV = "_NVDSYNC_SERVE_SETTINGS"


@dataclass
class ServerContext:
    """What every route needs; kept in ``app.state.ctx``."""

    settings: Settings
    mirror: Mirror
    metrics: Metrics
    sync: SyncService


def create_app(
    source: Settings | Mirror,
    *,
    settings: Settings | None = None,
    sync_fn: Callable[[Settings], SyncReport] | None = None,
    schedule: bool = True,
) -> FastAPI:
    """Build the app. ``schedule=False`` leaves ``sync_every`` to someone else (the
    ``serve --workers`` supervisor runs the one timer for all workers)."""
    if isinstance(source, Mirror):
        mirror, own_mirror = source, False
        settings = settings or Settings(db=source.location)
    else:
        settings = source
        mirror, own_mirror = Mirror.open(settings), True
    every = parse_duration(settings.sync_every) if settings.sync_every and schedule else None
    metrics = Metrics(mirror)

    def after_sync(attempt: SyncAttempt) -> None:
        # The cache's TTL covers syncs by other processes; our own sync can drop
        # what it replaced at once.
        mirror.cache_clear()
        metrics.observe_sync(attempt)

    service = SyncService(settings, every=every, on_done=after_sync,
                          **({"sync_fn": sync_fn} if sync_fn is not None else {}))
    ctx = ServerContext(settings=settings, mirror=mirror, metrics=metrics, sync=service)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()
            if own_mirror:
                mirror.close()

    app = FastAPI(
        title="nvdsync",
        version=__version__,
        summary="A local NVD CVE mirror: a JSON API and NVD's own CVE API 2.0.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.include_router(api.router)
    app.include_router(nvd_api.router)
    app.add_exception_handler(RequestValidationError, _bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidQuery, _invalid_query)  # type: ignore[arg-type]
    app.add_exception_handler(NvdSyncError, _unavailable)  # type: ignore[arg-type]
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """400 (not FastAPI's 422) with one line per problem, naming the parameter."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse({"detail": "; ".join(problems)}, status_code=400)


async def _invalid_query(_request: Request, exc: InvalidQuery) -> JSONResponse:
    """A filter the search library refused; the parameter is named first."""
    message = str(exc)
    if exc.field and not message.startswith(exc.field):
        message = f"{exc.field}: {message}"
    return JSONResponse({"detail": message}, status_code=400)


async def _unavailable(_request: Request, exc: NvdSyncError) -> JSONResponse:
    log.error("request failed: %s", exc)
    return JSONResponse({"detail": str(exc)}, status_code=503)


def create_app_from_env() -> FastAPI:
    """uvicorn's factory in each ``serve --workers N`` process."""
    raw = os.environ.get(SETTINGS_ENV)
    # Through the constructor (not model_validate) so validation and aliases apply.
    settings = Settings(**json.loads(raw)) if raw else Settings()
    return create_app(settings, schedule=False)
