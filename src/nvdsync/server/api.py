"""The JSON API: ``/api/cves/{id}``, ``/api/cves`` (search), ``/api/status``,
``POST /api/sync``, plus ``/healthz`` and ``/metrics``.

Records are returned exactly as NVD sent them (the stored bytes), never re-encoded;
a search result is streamed like the NVD-compatible endpoint. The only state-changing
route, ``POST /api/sync``, needs ``Authorization: Bearer <serve_token>``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nvdsync.search import SearchQuery
from nvdsync.server.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nvdsync.server.app import ServerContext

__all__ = ["MAX_LIMIT", "router"]

MAX_LIMIT = 500  # records per /api/cves page: a page stays a few MB
_CHUNK = 64 * 1024
_CVE_ID = r"^[Cc][Vv][Ee]-\d{4}-\d{4,}$"
_CWE = r"^(?i:CWE-\d+|NVD-CWE-Other|NVD-CWE-noinfo)$"
_SEVERITY = r"^(?i:low|medium|high|critical)$"
_DATE_HELP = "ISO date or date-time; UTC when it has no offset"
_JSON: dict[str, Any] = {"content": {"application/json": {}}}

router = APIRouter()
_bearer = HTTPBearer(auto_error=False)


def _ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def _json(data: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(data), status_code=status,
                    media_type="application/json")


@router.get("/healthz", tags=["service"], responses={200: _JSON})
def healthz(request: Request) -> Response:
    """Liveness: 200 when the process answers and its database can be read."""
    # One tiny read (the watermark row), not status(): probes come often.
    _ctx(request).mirror.store.get_watermark()
    return _json({"status": "ok"})


@router.get("/metrics", tags=["service"],
            responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    return Response(_ctx(request).metrics.render(), media_type=CONTENT_TYPE)


@router.get("/api/status", tags=["service"], responses={200: _JSON})
def status(request: Request) -> Response:
    """The mirror (records, watermark, recent runs) and this service's syncs."""
    ctx = _ctx(request)
    data = msgspec.to_builtins(ctx.mirror.status())
    data["service_sync"] = ctx.sync.snapshot()
    info = getattr(ctx.mirror, "cache_info", None)
    data["cache"] = msgspec.to_builtins(info()) if info is not None else None
    return _json(data)


@router.get("/api/cves/{cve_id}", tags=["records"],
            responses={200: _JSON, 404: {"description": "not in the mirror"}})
def get_cve(
    request: Request,
    cve_id: Annotated[str, Path(pattern=_CVE_ID, max_length=30,
                                examples=["CVE-2021-44228"])],
) -> Response:
    """One record exactly as NVD sent it."""
    key = cve_id.upper()
    raw = _ctx(request).mirror.get(key)
    if raw is None:
        raise HTTPException(404, f"{key} is not in the mirror")
    return Response(raw, media_type="application/json")


@router.get("/api/cves", tags=["records"], responses={200: _JSON})
def search_cves(
    request: Request,
    keyword: Annotated[str | None, Query(min_length=1, max_length=200,
                                         description="Words of the English description")
                       ] = None,
    exact: Annotated[bool, Query(description="keyword is one exact phrase")] = False,
    cpe: Annotated[str | None, Query(max_length=300, description="CPE 2.3 name; version "
                                     "ranges as NVD matches them")] = None,
    vulnerable: Annotated[bool, Query(description="with cpe: vulnerable matches only")
                          ] = False,
    severity: Annotated[str | None, Query(pattern=_SEVERITY)] = None,
    min_score: Annotated[float | None, Query(ge=0, le=10)] = None,
    cwe: Annotated[str | None, Query(pattern=_CWE, max_length=30)] = None,
    kev: Annotated[bool, Query(description="in CISA's KEV catalogue only")] = False,
    published_since: Annotated[str | None, Query(max_length=40, description=_DATE_HELP)
                               ] = None,
    published_until: Annotated[str | None, Query(max_length=40)] = None,
    modified_since: Annotated[str | None, Query(max_length=40)] = None,
    modified_until: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=40,
                                        description="vulnStatus, e.g. Analyzed")] = None,
    no_rejected: Annotated[bool, Query()] = False,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> Response:
    """Search the mirror; records (as NVD sent them) ordered by published then id."""
    # The search library validates the values (dates, CPE, CWE) and raises InvalidQuery
    # naming the field, which the app answers with 400: one set of rules for the CLI
    # and the API. A date alone is the whole day (``published_until=2024-01-31``).
    query = SearchQuery(
        keyword=keyword, keyword_exact=exact, cpe=cpe, vulnerable_only=vulnerable,
        severity=severity, min_score=min_score, cwe=cwe, kev=kev, status=status,
        no_rejected=no_rejected, offset=offset, limit=limit,
        published_since=published_since, published_until=published_until,
        modified_since=modified_since, modified_until=modified_until,
    )
    mirror = _ctx(request).mirror
    total = mirror.count(query)  # validates before the response starts
    size = max(0, min(limit, total - offset))
    head = b'{"total":%d,"offset":%d,"limit":%d,"count":%d,"cves":[' % (
        total, offset, limit, size)
    records = mirror.iter_raw(msgspec.structs.replace(query, limit=size)) if size else None
    return StreamingResponse(_records(head, records), media_type="application/json")


def _records(head: bytes, records: Iterator[bytes] | None) -> Iterator[bytes]:
    parts, size, first = [head], len(head), True
    for raw in records or ():
        if not first:
            parts.append(b",")
        parts.append(raw)
        size += len(raw) + 1
        first = False
        if size >= _CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
    parts.append(b"]}")
    yield b"".join(parts)


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """State-changing routes: the configured bearer token, else 401 (403 when off)."""
    configured = _ctx(request).settings.serve_token
    if configured is None:
        raise HTTPException(403, "state-changing endpoints are disabled: start the server "
                                 "with --token (or set NVDSYNC_SERVE_TOKEN) to enable them")
    given = credentials.credentials if credentials is not None else ""
    # compare_digest: the comparison time does not reveal how much of a guess matched.
    if not given or not secrets.compare_digest(given.encode(),
                                               configured.get_secret_value().encode()):
        raise HTTPException(401, "a valid 'Authorization: Bearer <token>' header is required",
                            headers={"WWW-Authenticate": "Bearer"})


@router.post("/api/sync", tags=["service"], status_code=202,
             dependencies=[Depends(require_token)],
             responses={202: _JSON, 401: {"description": "no or wrong bearer token"},
                        403: {"description": "no token configured"},
                        409: {"description": "a sync is already running"}})
def start_sync(request: Request) -> Response:
    """Start an incremental sync in the background; see /api/status for its outcome."""
    service = _ctx(request).sync
    if not service.trigger("api"):
        raise HTTPException(409, "a sync is already running; see /api/status")
    return _json({"started": True, "status": "/api/status"}, 202)

