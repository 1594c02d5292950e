"""``GET /rest/json/cves/2.0``: NVD's CVE API served from the mirror.

Existing NVD clients (nvdlib, dependency-check, scripts) point their base URL here
and get what NVD would answer: the same parameters and validation, the same envelope,
each ``cve`` object byte for byte as NVD sent it, ordered by published then id.

Parameters are parsed by the mock NVD's parser (``nvdsync.mock.params``), so NVD's
rules (names case-insensitive, flags without values, date pairs of at most 120 days
with an explicit offset, one severity, ``resultsPerPage`` <= 2000...) live in one
place, and a test can compare this endpoint with the mock for the same data. An
invalid request gets NVD's answer: 404, an empty body, the reason in ``message``.

The body is streamed: the envelope head, then records as the store's keyset reads
produce them, ~64 KB per chunk, so a 2,000-record page (~9 MB) never sits in memory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from nvdsync.errors import InvalidQuery
from nvdsync.mock.data import nvd_time
from nvdsync.mock.params import InvalidRequest, parse_query
from nvdsync.search import SearchQuery

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nvdsync.mock.dataset import Query as NvdQuery
    from nvdsync.server.app import ServerContext

__all__ = ["NVD_PATH", "router", "to_search_query"]

NVD_PATH = "/rest/json/cves/2.0"
MAX_PAGE = 2000
_CHUNK = 64 * 1024
_SEVERITY_FIELD = {"cvssV2Severity": "cvss_v2_severity", "cvssV3Severity": "cvss_v3_severity",
                   "cvssV4Severity": "cvss_v4_severity"}

router = APIRouter(tags=["NVD-compatible"])

# Declared for the OpenAPI document only: the handler parses the raw query string,
# because NVD's names are case-insensitive and its flags take no value.
_S = Annotated[str | None, Query()]


def to_search_query(q: NvdQuery, *, limit: int | None = None) -> SearchQuery:
    """The mirror query for a validated NVD request."""
    severity: dict[str, str | None] = dict.fromkeys(_SEVERITY_FIELD.values())
    if q.severity is not None:
        severity[_SEVERITY_FIELD[q.severity[0]]] = q.severity[1]
    return SearchQuery(
        cvss_v2_severity=severity["cvss_v2_severity"],
        cvss_v3_severity=severity["cvss_v3_severity"],
        cvss_v4_severity=severity["cvss_v4_severity"],
        cve_id=q.cve_id.upper() if q.cve_id else None,
        keyword=q.keyword,
        keyword_exact=q.keyword_exact,
        cpe=q.cpe_name,
        vulnerable_only=q.is_vulnerable,
        cwe=q.cwe_id,
        kev=q.has_kev,
        published_since=q.pub[0] if q.pub else None,
        published_until=q.pub[1] if q.pub else None,
        modified_since=q.last_mod[0] if q.last_mod else None,
        modified_until=q.last_mod[1] if q.last_mod else None,
        no_rejected=q.no_rejected,
        offset=q.start_index,
        limit=q.results_per_page if limit is None else limit,
    )


def _invalid(message: str, headers: dict[str, str]) -> Response:
    return Response(status_code=404, headers={"message": message, **headers})


@router.get(
    NVD_PATH,
    summary="CVEs, as NVD's CVE API 2.0 answers them",
    responses={200: {"content": {"application/json": {}},
                     "description": "NVD's envelope around the matching records"},
               404: {"description": "Invalid request: empty body, reason in the "
                                    "`message` header (as NVD answers)"}},
    response_class=StreamingResponse,
)
def nvd_cves(
    request: Request,
    cveId: _S = None,
    cpeName: _S = None,
    isVulnerable: _S = None,
    keywordSearch: _S = None,
    keywordExactMatch: _S = None,
    lastModStartDate: _S = None,
    lastModEndDate: _S = None,
    pubStartDate: _S = None,
    pubEndDate: _S = None,
    cvssV2Severity: _S = None,
    cvssV3Severity: _S = None,
    cvssV4Severity: _S = None,
    cweId: _S = None,
    hasKev: _S = None,
    noRejected: _S = None,
    startIndex: _S = None,
    resultsPerPage: _S = None,
) -> Response:
    """Parameters as on NVD (names case-insensitive, flags take no value)."""
    ctx: ServerContext = request.app.state.ctx
    key = request.headers.get("apiKey")
    keys = ctx.settings.serve_api_keys
    # With no keys configured any key is accepted and ignored, so clients that always
    # send their NVD key keep working; with keys configured a wrong one is refused
    # the way NVD refuses it. A request without a key is served, as on NVD.
    keyed = key is not None and (not keys or key in keys)
    headers = {"apikey": "Yes" if keyed else "No"}
    if key is not None and not keyed:
        return _invalid("Invalid apiKey.", headers)
    try:
        q = parse_query(request.url.query, MAX_PAGE)
    except InvalidRequest as exc:
        return _invalid(exc.message, headers)
    try:
        # One scan gives the total and the page; the records are read lazily and never
        # outnumber what the head announces, even if a sync commits meanwhile.
        total, records = ctx.mirror.count_and_iter_raw(to_search_query(q))
    except InvalidQuery as exc:  # a value NVD's rules allow but the search cannot use
        return _invalid(InvalidRequest(str(exc)).message, headers)
    size = max(0, min(q.results_per_page, total - q.start_index))
    head = (
        b'{"resultsPerPage":%d,"startIndex":%d,"totalResults":%d,"format":"NVD_CVE",'
        b'"version":"2.0","timestamp":"%s","vulnerabilities":['
        % (size, q.start_index, total, nvd_time(datetime.now(UTC)).encode())
    )
    return StreamingResponse(_envelope(head, records), media_type="application/json",
                             headers=headers)


def _envelope(head: bytes, records: Iterator[bytes]) -> Iterator[bytes]:
    """The envelope around the records, in chunks of about 64 KB."""
    parts = [head]
    size = len(head)
    separator = b'{"cve":'
    for raw in records:
        parts += (separator, raw, b"}")
        size += len(raw) + 8
        separator = b',{"cve":'
        if size >= _CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
    parts.append(b"]}")
    yield b"".join(parts)
