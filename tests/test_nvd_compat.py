"""The NVD-compatible endpoint answers like NVD: compared with the mock NVD on the same
data, used by a real client (nvdlib), and fuzzed from its OpenAPI document."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import msgspec
import pytest
import requests
import schemathesis
import uvicorn

from nvdsync.config import load_settings
from nvdsync.mock import MockServer, serve
from nvdsync.server import create_app
from nvdsync.server.nvd_api import _envelope
from nvdsync.sync import sync
from support import make_settings, quiet_config
from test_server import mirror_records

with warnings.catch_warnings():
    # Starlette 1.x warns that its TestClient wants the "httpx2" fork; httpx works.
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient


PATH = "/rest/json/cves/2.0"


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MockServer, Path]]:
    """The mock NVD serving the records, and a mirror synced from it."""
    db = tmp_path_factory.mktemp("compat") / "mirror.sqlite"
    server = serve(quiet_config(), mirror_records())
    try:
        assert sync(make_settings(server, db)).ok
        yield server, db
    finally:
        server.stop()


@pytest.fixture(scope="module")
def served(both: tuple[MockServer, Path]) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(db=str(both[1])))) as client:
        yield client


# Values taken from the data: real records whose answers are known (tensorflow 2.9.1
# lies in 2.9.0..2.9.3 and 2.10.0..2.10.1 ranges, but outside 2.8.0..2.8.1).
VALID = [
    "",
    "resultsPerPage=50&startIndex=100",
    "startIndex=2600&resultsPerPage=2000",
    "startIndex=999999",
    "startIndex=4611686018427387904",  # the largest NVD's parser takes: an empty page
    "cveId=CVE-2022-41889",
    "cveId=cve-2022-41889",
    "cveId=CVE-1999-0000001",
    "keywordSearch=remote%20code",
    "keywordSearch=buffer%20overflow&keywordExactMatch",
    "keywordsearch=SQL&resultsPerPage=20",
    "keywordSearch=cross-site%20script",
    "keywordSearch=%21%21",
    "keywordSearch=%22quoted%22%20NEAR%20AND",
    "keywordSearch=Cross-Site%20Scripting&keywordExactMatch",
    "cpeName=cpe:2.3:a:google:tensorflow:2.9.1:*:*:*:*:*:*:*",
    "cpeName=cpe:2.3:a:google:tensorflow:2.8.1:*:*:*:*:*:*:*",
    "cpeName=cpe:2.3:o:linux:linux_kernel:6.1.50:*:*:*:*:*:*:*&isVulnerable",
    "cpeName=cpe:2.3:a:nvidia:gpu_display_driver:472.00:*:*:*:*:windows:*:*",
    "cvssV3Severity=CRITICAL",
    "cvssV2Severity=high&resultsPerPage=100&startIndex=50",
    "cvssV4Severity=MEDIUM",
    "cweId=CWE-79",
    "cweId=nvd-cwe-noinfo",
    "hasKev",
    "hasKev=&noRejected=true",
    "noRejected",
    "pubStartDate=2022-01-01T00:00:00.000Z&pubEndDate=2022-04-30T23:59:59.999Z",
    "pubStartDate=2025-01-20T00:00:00%2B02:00&pubEndDate=2025-04-01T00:00:00Z&hasKev",
    "lastModStartDate=2024-01-01T00:00:00Z&lastModEndDate=2024-04-01T00:00:00Z",
]
# Invalid requests: 404, an empty body, the reason in the message header.
INVALID = [
    "lastModStartDate=2024-01-01T00:00:00Z",
    "pubStartDate=2022-01-01T00:00:00Z&pubEndDate=2022-06-01T00:00:00Z",
    "pubStartDate=2022-01-01T00:00:00&pubEndDate=2022-02-01T00:00:00Z",
    "resultsPerPage=2001",
    "resultsPerPage=0",
    "startIndex=-1",
    "startIndex=abc",
    "unknownParam=1",
    "keywordExactMatch",
    "isVulnerable",
    "cvssV3Severity=HIGH&cvssV2Severity=HIGH",
    "cvssV2Severity=CRITICAL",
    "cweId=79",
    "hasKev=yes",
    "cveId=CVE-12",
    "cpeName=cpe:2.3:a:google:tensorflow:*:*:*:*:*:*:*:*",
    "cpeName=tensorflow",
    "keywordSearch=",
    # int() refuses more than 4,300 digits: a clear 404, not a 500
    "cpeName=cpe:2.3:a:python:python:" + "1" * 5000 + ":*:*:*:*:*:*:*",
    "pubStartDate=0001-01-01T00:00:00%2B01:00&pubEndDate=0001-01-05T00:00:00Z",
    # bounds the mirror's search needs; the mock keeps the same ones
    "cweId=CWE-" + "9" * 5000,
    "keywordSearch=" + "log4j%20" * 300,
]
QUERIES = VALID + INVALID


def comparable(answer: httpx.Response) -> tuple[int, str | None, Any]:
    """Status, message header and body, with the envelope's timestamp left out."""
    body: Any = answer.content
    if answer.status_code == 200:
        body = msgspec.json.decode(answer.content)
        body.pop("timestamp")
    return answer.status_code, answer.headers.get("message"), body


@pytest.mark.parametrize("query", QUERIES)
def test_served_mirror_answers_like_the_mock(
    both: tuple[MockServer, Path], served: TestClient, query: str
) -> None:
    expected = comparable(httpx.get(f"{both[0].url}?{query}" if query else both[0].url))
    got = comparable(served.get(f"{PATH}?{query}" if query else PATH))
    assert got == expected
    if expected[0] == 200:
        assert expected[2]["format"] == "NVD_CVE"
    else:
        assert expected[0] == 404 and expected[1] and expected[2] == b""


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("cweId=CWE-" + "9" * 5000, "Invalid cweId value"),
        ("keywordSearch=" + "log4j%20" * 300, "longer than 1000 characters"),
    ],
)
def test_values_the_mirror_refuses_get_a_404_not_a_500(served: TestClient, query: str,
                                                        words: str) -> None:
    answer = served.get(f"{PATH}?{query}")
    assert answer.status_code == 404
    assert words in answer.headers["message"]
    assert len(answer.headers["message"]) < 300  # the value is quoted cut short


def test_api_refuses_dates_outside_years_1_to_9999(served: TestClient) -> None:
    for params in ({"published_since": "0001-01-01T00:00:00+01:00"},
                   {"modified_until": "9999-12-31T23:30:00-01:00"}):
        answer = served.get("/api/cves", params=params)
        assert answer.status_code == 400
        assert "years 1-9999" in answer.json()["detail"]


def test_the_queries_are_not_trivial(both: tuple[MockServer, Path]) -> None:
    """Each filtering query above selects some records but not all of them."""
    total = httpx.get(both[0].url, params={"resultsPerPage": 1}).json()["totalResults"]
    filtering = [q for q in VALID if q.split("=")[0].lower() in _FILTERS
                 and "%21" not in q and "%22" not in q]
    assert len(filtering) >= 15
    for query in filtering:
        answer = httpx.get(f"{both[0].url}?{query}")
        assert answer.status_code == 200, query
        assert 0 < answer.json()["totalResults"] < total, query


_FILTERS = {"keywordsearch", "cpename", "cvssv2severity", "cvssv3severity", "cvssv4severity",
            "cweid", "haskev", "norejected", "pubstartdate", "lastmodstartdate"}


def test_records_are_served_byte_for_byte(both: tuple[MockServer, Path],
                                          served: TestClient) -> None:
    query = "cvssV3Severity=HIGH&resultsPerPage=300"
    assert served.get(f"{PATH}?{query}").content.split(b'"vulnerabilities":', 1)[1] == \
        httpx.get(f"{both[0].url}?{query}").content.split(b'"vulnerabilities":', 1)[1]


def test_api_keys(both: tuple[MockServer, Path]) -> None:
    db = str(both[1])
    with TestClient(create_app(load_settings(db=db))) as open_app:
        ignored = open_app.get(PATH, params={"cveId": "CVE-2022-41889"},
                               headers={"apiKey": "whatever"})
    assert ignored.status_code == 200 and ignored.headers["apikey"] == "Yes"
    with TestClient(create_app(load_settings(db=db, serve_api_keys=["k1"]))) as keyed:
        wrong = keyed.get(PATH, headers={"apiKey": "k2"})
        right = keyed.get(PATH, params={"cveId": "CVE-2022-41889"}, headers={"apiKey": "k1"})
        none = keyed.get(PATH, params={"cveId": "CVE-2022-41889"})
    assert (wrong.status_code, wrong.headers["message"], wrong.content) == \
        (404, "Invalid apiKey.", b"")
    assert right.status_code == 200 and right.headers["apikey"] == "Yes"
    assert none.status_code == 200 and none.headers["apikey"] == "No"


def test_a_page_is_streamed_while_records_are_read() -> None:
    """The first chunk leaves before most records are read: no page is held whole."""
    consumed = 0
    record = b'{"id":"CVE-2024-0001","x":"' + b"a" * 4000 + b'"}'

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for _ in range(2000):
            consumed += 1
            yield record

    chunks = _envelope(b'{"vulnerabilities":[', source())
    first = next(chunks)
    at_first_chunk = consumed
    rest = list(chunks)
    assert at_first_chunk < 100
    assert max(len(c) for c in [first, *rest]) < 20 * len(record)
    body = msgspec.json.decode(b"".join([first, *rest]))
    assert len(body["vulnerabilities"]) == 2000


# --- nvdlib, a real NVD client, against a served mirror --------------------------------


@pytest.fixture(scope="module")
def live_url(both: tuple[MockServer, Path]) -> Iterator[str]:
    """A real uvicorn server in a thread, on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(load_settings(db=str(both[1]))), host="127.0.0.1",
                            port=port, log_config=None, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def nvdlib_here(live_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """nvdlib with its hard-coded NVD host rewritten to the local server, no sleeps."""
    import nvdlib
    import nvdlib.get

    real_get = requests.get

    def local_get(url: str, *args: Any, **kwargs: Any) -> requests.Response:
        return real_get(url.replace("https://services.nvd.nist.gov", live_url),
                        *args, **kwargs)

    monkeypatch.setattr(requests, "get", local_get)
    monkeypatch.setattr(nvdlib.get.time, "sleep", lambda _s: None)
    return nvdlib


def ids_from(server: MockServer, query: str) -> list[str]:
    body = httpx.get(f"{server.url}?{query}").json()
    return [v["cve"]["id"] for v in body["vulnerabilities"]]


def test_nvdlib_search_by_cve_id(nvdlib_here: Any, both: tuple[MockServer, Path]) -> None:
    found = nvdlib_here.searchCVE(cveId="CVE-2022-41889")
    assert [c.id for c in found] == ["CVE-2022-41889"]
    stored = msgspec.json.decode(both[0].dataset.get("CVE-2022-41889") or b"{}")
    assert found[0].descriptions[0].value == stored["descriptions"][0]["value"]


def test_nvdlib_keyword_search(nvdlib_here: Any, both: tuple[MockServer, Path]) -> None:
    found = nvdlib_here.searchCVE(keywordSearch="remote code")
    expected = ids_from(both[0], "keywordSearch=remote%20code")
    assert expected and [c.id for c in found] == expected


def test_nvdlib_last_modified_window(nvdlib_here: Any, both: tuple[MockServer, Path]) -> None:
    # Aware datetimes: nvdlib sends their offset, which NVD has required since 2025.
    found = nvdlib_here.searchCVE(lastModStartDate=datetime(2024, 1, 1, tzinfo=UTC),
                                  lastModEndDate=datetime(2024, 4, 1, tzinfo=UTC))
    expected = ids_from(both[0], "lastModStartDate=2024-01-01T00:00:00Z"
                                 "&lastModEndDate=2024-04-01T00:00:00Z")
    assert expected and [c.id for c in found] == expected


def test_nvdlib_cpe_name(nvdlib_here: Any, both: tuple[MockServer, Path]) -> None:
    name = "cpe:2.3:a:google:tensorflow:2.9.1:*:*:*:*:*:*:*"
    found = [c.id for c in nvdlib_here.searchCVE(cpeName=name, isVulnerable=True)]
    assert found == ids_from(both[0], f"cpeName={name}&isVulnerable")
    # The real records: 2.9.1 is inside [2.9.0, 2.9.3) but not inside [2.8.0, 2.8.1).
    assert {"CVE-2022-41889", "CVE-2022-41891", "CVE-2022-41898"} <= set(found)
    assert "CVE-2022-41885" not in found


def test_nvdlib_sees_nvd_errors(nvdlib_here: Any) -> None:
    with pytest.raises(requests.HTTPError, match="120 days"):
        nvdlib_here.searchCVE(pubStartDate=datetime(2022, 1, 1, tzinfo=UTC),
                              pubEndDate=datetime(2022, 12, 1, tzinfo=UTC))


# --- schemathesis: no input makes the server fail --------------------------------------


def test_no_request_from_the_openapi_document_gets_a_5xx(both: tuple[MockServer, Path]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json",
                                            create_app(load_settings(db=str(both[1]))))
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET":
            continue

        # Bounded and derandomised so the suite stays fast and repeatable.
        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(max_examples=10, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))
        def check(case: Any) -> None:
            response = case.call()
            assert response.status_code < 500, (case.path, case.query, response.text[:300])

        check()
        checked.append(operation.path)
    assert "/rest/json/cves/2.0" in checked and "/api/cves" in checked
