"""The mock NVD server, over real HTTP: contract rules, faults, mutations, data."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from nvdsync.mock import (
    MockConfig,
    MockServer,
    generate,
    load_bundled,
    load_jsonl,
    serve,
    serve_forever,
)
from nvdsync.mock.data import nvd_time

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ENVELOPE_TYPES = {
    "resultsPerPage": int,
    "startIndex": int,
    "totalResults": int,
    "format": str,
    "version": str,
    "timestamp": str,
    "vulnerabilities": list,
}


def config(**kwargs: Any) -> MockConfig:
    """A config without rate limits unless the test asks for them."""
    kwargs.setdefault("rate_limit_anonymous", None)
    kwargs.setdefault("rate_limit_keyed", None)
    return MockConfig(**kwargs)


@pytest.fixture(scope="module")
def generated() -> list[bytes]:
    return generate(2500, seed=7)


@pytest.fixture
def bundled_server() -> Iterator[MockServer]:
    with serve(config(valid_api_keys={"good-key"})) as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def ids_of(page: dict[str, Any]) -> list[str]:
    return [item["cve"]["id"] for item in page["vulnerabilities"]]


# -- envelope, paging, ordering -----------------------------------------------------


def test_envelope_keys_and_types(bundled_server: MockServer, client: httpx.Client) -> None:
    r = client.get(bundled_server.url, params={"resultsPerPage": 10, "startIndex": 3})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["apikey"] == "No"
    page = r.json()
    assert list(page) == list(ENVELOPE_TYPES)
    for key, kind in ENVELOPE_TYPES.items():
        assert isinstance(page[key], kind), key
    assert (page["resultsPerPage"], page["startIndex"], page["totalResults"]) == (10, 3, 134)
    assert (page["format"], page["version"]) == ("NVD_CVE", "2.0")
    assert len(page["timestamp"]) == 23
    assert datetime.fromisoformat(page["timestamp"])  # NVD form: no offset
    assert all(list(item) == ["cve"] for item in page["vulnerabilities"])


def test_paging_covers_every_record_once_in_order(
    generated: list[bytes], client: httpx.Client
) -> None:
    records = [json.loads(raw) for raw in generated]
    expected = [r["id"] for r in sorted(records, key=lambda r: (r["published"], r["id"]))]
    seen: list[str] = []
    with serve(config(max_page_size=1000), generated) as server:
        start = 0
        while True:
            page = client.get(server.url, params={"startIndex": start}).json()
            assert page["totalResults"] == 2500
            assert page["resultsPerPage"] == len(page["vulnerabilities"]) <= 1000
            seen += ids_of(page)
            start += page["resultsPerPage"]
            if start >= page["totalResults"]:
                break
    assert seen == expected
    assert len(set(seen)) == 2500


def test_start_index_past_end_is_an_empty_page(
    bundled_server: MockServer, client: httpx.Client
) -> None:
    for start in (134, 10_000):
        r = client.get(bundled_server.url, params={"startIndex": start})
        assert r.status_code == 200
        page = r.json()
        assert page["vulnerabilities"] == []
        assert (page["resultsPerPage"], page["totalResults"]) == (0, 134)


def test_page_size_cap(client: httpx.Client) -> None:
    with serve(config(max_page_size=1000), generate(1200)) as server:
        r = client.get(server.url, params={"resultsPerPage": 2000})
        assert r.status_code == 404
        assert r.content == b""
        assert r.headers["content-length"] == "0"
        assert "resultsPerPage" in r.headers["message"]
        assert client.get(server.url, params={"resultsPerPage": 1000}).status_code == 200
        # The default page size is the cap.
        assert client.get(server.url).json()["resultsPerPage"] == 1000
        assert client.get(server.url, params={"resultsPerPage": 0}).status_code == 404


def test_parameter_names_are_case_insensitive(
    bundled_server: MockServer, client: httpx.Client
) -> None:
    page = client.get(bundled_server.url + "/?STARTINDEX=130&resultsperpage=2").json()
    assert (page["startIndex"], page["resultsPerPage"]) == (130, 2)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "lastModStartDate=2025-07-24T00:37:00&lastModEndDate=2025-07-25T00:00:00Z",
            "Invalid ISO 8601 date/time format, see documentation.",
        ),
        (
            "lastModStartDate=2024-11-25T10:00:00-05&lastModEndDate=2024-12-25T10:00:00-05",
            "Invalid ISO 8601 date/time format, see documentation.",
        ),
        # An unencoded "+" arrives as a space.
        (
            "pubStartDate=2024-01-01T00:00:00+01:00&pubEndDate=2024-02-01T00:00:00Z",
            "Invalid ISO 8601 date/time format, see documentation.",
        ),
        (
            "pubStartDate=2024-02-30T00:00:00Z&pubEndDate=2024-03-01T00:00:00Z",
            "Invalid ISO 8601 date/time format, see documentation.",
        ),
        ("lastModStartDate=2024-01-01T00:00:00Z", "lastModEndDate"),
        ("pubEndDate=2024-01-01T00:00:00Z", "pubStartDate"),
        ("lastModStartDate=2024-01-01T00:00:00Z&lastModEndDate=2024-05-01T00:00:01Z", "120 days"),
        ("pubStartDate=2024-03-01T00:00:00Z&pubEndDate=2024-02-01T00:00:00Z", "pubStartDate"),
        ("startIndex=-1", "startIndex"),
        ("cveId=nonsense", "cveId"),
        ("noRejected=no", "noRejected"),
        ("virtualMatchString=x", "Invalid parameter: virtualMatchString"),
        ("apiKey=abc", "Invalid parameter: apiKey"),
    ],
)
def test_invalid_requests_get_404_with_message(
    bundled_server: MockServer, client: httpx.Client, query: str, message: str
) -> None:
    r = client.get(f"{bundled_server.url}?{query}")
    assert r.status_code == 404
    assert r.content == b""
    assert message in r.headers["message"]


def test_date_offsets_and_encodings_accepted(
    bundled_server: MockServer, client: httpx.Client
) -> None:
    for start, end in [
        ("2024-01-01T00:00:00.000%2B01:00", "2024-04-30T00:00:00.000%2B01:00"),
        ("2024-01-01T00%3A00%3A00Z", "2024-04-29T18%3A59%3A59.999-05%3A00"),
        ("2024-01-01T00:00:00Z", "2024-04-30T00:00:00Z"),
    ]:
        r = client.get(f"{bundled_server.url}?pubStartDate={start}&pubEndDate={end}")
        assert r.status_code == 200, r.headers.get("message")


# -- filters -----------------------------------------------------------------------


def test_last_mod_window_filters(generated: list[bytes], client: httpx.Client) -> None:
    low, high = "2025-06-01T00:00:00.000", "2025-09-15T12:00:00.000"
    expected = {r["id"] for r in map(json.loads, generated) if low <= r["lastModified"] <= high}
    assert 0 < len(expected) < 2500
    with serve(config(), generated) as server:
        page = client.get(
            server.url,
            params={
                "lastModStartDate": "2025-06-01T02:00:00.000+02:00",  # = low in UTC
                "lastModEndDate": "2025-09-15T12:00:00Z",
            },
        ).json()
    assert page["totalResults"] == len(expected)
    assert set(ids_of(page)) == expected
    published = [item["cve"]["published"] for item in page["vulnerabilities"]]
    assert published == sorted(published)


def test_pub_window_filters(generated: list[bytes], client: httpx.Client) -> None:
    low, high = "2023-01-01T00:00:00.000", "2023-04-30T00:00:00.000"
    expected = sorted(
        (r["published"], r["id"])
        for r in map(json.loads, generated)
        if low <= r["published"] <= high
    )
    assert expected
    with serve(config(), generated) as server:
        page = client.get(
            server.url,
            params={"pubStartDate": "2023-01-01T00:00:00Z", "pubEndDate": "2023-04-30T00:00:00Z"},
        ).json()
    assert ids_of(page) == [cve_id for _, cve_id in expected]


def test_cve_id(bundled_server: MockServer, client: httpx.Client) -> None:
    page = client.get(bundled_server.url, params={"cveId": "CVE-2024-1086"}).json()
    assert (page["totalResults"], ids_of(page)) == (1, ["CVE-2024-1086"])
    assert ids_of(client.get(bundled_server.url, params={"cveId": "cve-2024-1086"}).json())
    page = client.get(bundled_server.url, params={"cveId": "CVE-2000-99999"}).json()
    assert (page["totalResults"], page["vulnerabilities"]) == (0, [])


def test_no_rejected(bundled_server: MockServer, client: httpx.Client) -> None:
    rejected = {r["id"] for r in map(json.loads, load_bundled()) if r["vulnStatus"] == "Rejected"}
    assert rejected
    everything = client.get(bundled_server.url).json()
    assert rejected <= set(ids_of(everything))
    for query in ("noRejected", "noRejected=", "noRejected=true", "NOREJECTED"):
        page = client.get(f"{bundled_server.url}?{query}").json()
        assert page["totalResults"] == 134 - len(rejected), query
        assert not rejected & set(ids_of(page))


# -- API key and rate limits -------------------------------------------------------


def test_api_key(bundled_server: MockServer, client: httpx.Client) -> None:
    r = client.get(bundled_server.url, headers={"apiKey": "bad-key"})
    assert (r.status_code, r.headers["message"], r.content) == (404, "Invalid apiKey.", b"")
    r = client.get(bundled_server.url, params={"resultsPerPage": 1}, headers={"apiKey": "good-key"})
    assert (r.status_code, r.headers["apikey"]) == (200, "Yes")


def test_rate_limit_rolling_window(client: httpx.Client) -> None:
    limits = config(rate_limit_anonymous=(3, 1.0), rate_limit_keyed=(5, 1.0), valid_api_keys={"k"})
    with serve(limits) as server:
        params = {"resultsPerPage": 1}
        statuses = [client.get(server.url, params=params).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 403]
        # A valid key has its own, larger bucket.
        keyed = [
            client.get(server.url, params=params, headers={"apiKey": "k"}).status_code
            for _ in range(6)
        ]
        assert keyed == [200] * 5 + [403]
        r = client.get(server.url, params=params)
        assert (r.status_code, r.headers["retry-after"], r.content) == (403, "0", b"")
        time.sleep(1.1)
        assert client.get(server.url, params=params).status_code == 200
        assert server.stats.forbidden == 3
        assert server.stats.by_status == {200: 9, 403: 3}


# -- faults ------------------------------------------------------------------------


def test_error_rate_one_gives_5xx(client: httpx.Client) -> None:
    with serve(config(error_rate=1.0)) as server:
        statuses = {client.get(server.url).status_code for _ in range(12)}
    assert statuses <= {502, 503, 504, 524}
    assert len(statuses) > 1


def test_faults_are_deterministic_per_seed(client: httpx.Client) -> None:
    def run(seed: int) -> list[int]:
        with serve(config(error_rate=0.5, seed=seed)) as server:
            return [
                client.get(server.url, params={"resultsPerPage": 1}).status_code for _ in range(20)
            ]

    first = run(3)
    assert first == run(3)
    assert 200 in first
    assert set(first) - {200}
    assert first != run(4)


@pytest.mark.parametrize("reset", [False, True])
def test_cut_body_raises_in_httpx(client: httpx.Client, reset: bool) -> None:
    with serve(config(cut_rate=1.0, cut_reset=reset), generate(200)) as server:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.get(server.url, headers={"Accept-Encoding": "identity"})
        assert server.stats.cuts == 1


def test_burst_403(bundled_server: MockServer, client: httpx.Client) -> None:
    bundled_server.config.burst_403 = (2, 2)
    statuses = [
        client.get(bundled_server.url, params={"resultsPerPage": 1}).status_code for _ in range(5)
    ]
    assert statuses == [200, 403, 403, 200, 200]


def test_down_can_be_switched_live(bundled_server: MockServer, client: httpx.Client) -> None:
    bundled_server.config.down = True
    assert client.get(bundled_server.url).status_code == 503
    bundled_server.config.down = False
    assert client.get(bundled_server.url, params={"resultsPerPage": 1}).status_code == 200


def test_mutation_moves_records_into_new_window(
    generated: list[bytes], client: httpx.Client
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    window = {
        "lastModStartDate": nvd_time(before) + "Z",
        "lastModEndDate": nvd_time(before + timedelta(days=1)) + "Z",
    }
    with serve(config(mutate=(5, 2), mutate_new=1, seed=1), generated) as server:
        # Each served page is built first, then mutates (5 modified + 1 new) for the
        # requests that follow; only the first two served pages mutate.
        totals = [client.get(server.url, params=window).json()["totalResults"] for _ in range(4)]
        assert totals == [0, 6, 12, 12]
        page = client.get(server.url, params=window).json()
        changed = [item["cve"] for item in page["vulnerabilities"]]
        assert all(c["lastModified"] >= nvd_time(before) for c in changed)
        modified = [c for c in changed if "mock revision" in c["descriptions"][0]["value"]]
        assert len(modified) == 10
        assert all(c["vulnStatus"] in ("Modified", "Rejected") for c in modified)
        assert client.get(server.url, params={"resultsPerPage": 1}).json()["totalResults"] == 2502
        assert len(server.dataset) == 2502


def test_gzip_only_when_asked(bundled_server: MockServer, client: httpx.Client) -> None:
    asked = client.get(bundled_server.url, headers={"Accept-Encoding": "gzip"})
    assert asked.headers["content-encoding"] == "gzip"
    assert asked.headers["vary"] == "Accept-Encoding"
    plain = client.get(bundled_server.url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert int(asked.headers["content-length"]) < int(plain.headers["content-length"])
    assert asked.json()["vulnerabilities"] == plain.json()["vulnerabilities"]


# -- transport details ---------------------------------------------------------------


def test_paths_methods_and_keep_alive(bundled_server: MockServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", bundled_server.port, timeout=10)
    try:
        for path in (
            "/rest/json/cves/2.0?resultsPerPage=1",
            "/rest/json/cves/2.0/",
            "/rest/json/cves/2.1",
            "/",
        ):
            conn.request("GET", path)  # the same connection every time
            response = conn.getresponse()
            response.read()
            assert response.status == (200 if "cves/2.0" in path else 404), path
        conn.request("POST", "/rest/json/cves/2.0")
        response = conn.getresponse()
        response.read()
        assert response.status == 405
    finally:
        conn.close()
    assert [e.status for e in bundled_server.stats.log] == [200, 200, 404, 404, 405]


def test_serve_forever_stops_from_another_thread() -> None:
    ready: list[MockServer] = []
    thread = threading.Thread(
        target=serve_forever, kwargs={"config": config(), "on_ready": ready.append}
    )
    thread.start()
    for _ in range(100):
        if ready:
            break
        time.sleep(0.01)
    server = ready[0]
    assert httpx.get(server.url, params={"resultsPerPage": 1}).status_code == 200
    server.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


# -- data --------------------------------------------------------------------------


def test_bundled_records_served_byte_identical(
    bundled_server: MockServer, client: httpx.Client
) -> None:
    lines = load_bundled()
    assert len(lines) == 134
    body = client.get(bundled_server.url, headers={"Accept-Encoding": "identity"}).content
    by_id = {json.loads(line)["id"]: line for line in lines}
    served = json.loads(body)["vulnerabilities"]
    assert len(served) == 134
    for item in served:
        assert item["cve"] == json.loads(by_id[item["cve"]["id"]])
    assert all(b'{"cve":' + line + b"}" in body for line in lines)


def test_generator_is_deterministic_and_realistic() -> None:
    first = generate(2000, seed=5)
    assert first == generate(2000, seed=5)
    assert first != generate(2000, seed=6)
    assert statistics.mean(map(len, first)) >= 4000
    assert len(set(first)) == 2000
    records = [json.loads(raw) for raw in first]
    assert len({r["id"] for r in records}) == 2000
    assert len({r["published"][:4] for r in records}) > 15
    now = nvd_time(datetime.now(UTC))
    for r in records:
        assert r["id"][4:8] == r["published"][:4]
        assert r["published"] <= r["lastModified"] < now
        assert len(r["published"]) == len(r["lastModified"]) == 23


def test_malformed_records_are_served(tmp_path: Path, client: httpx.Client) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_bytes(
        b'{"id":"CVE-2020-0001","lastModified":"2020-01-01T00:00:00.000"}\n\n'
        b'{"id":"CVE-2020-0002","published":123}\n'
    )
    records = load_jsonl(path)
    assert records == [
        b'{"id":"CVE-2020-0001","lastModified":"2020-01-01T00:00:00.000"}',
        b'{"id":"CVE-2020-0002","published":123}',
    ]
    with serve(config(), records) as server:
        page = client.get(server.url).json()
    assert ids_of(page) == ["CVE-2020-0001", "CVE-2020-0002"]
    path.write_bytes(b'{"id":"CVE-2020-0001"}\n{"id": oops}\n')
    with pytest.raises(ValueError, match=r"odd\.jsonl:2"):
        load_jsonl(path)


def test_dataset_edits(bundled_server: MockServer, client: httpx.Client) -> None:
    dataset = bundled_server.dataset
    assert dataset.delete("CVE-2024-1086")
    assert not dataset.delete("CVE-2024-1086")
    assert dataset.get("CVE-2024-1086") is None
    new = dataset.modify("CVE-1999-0023")
    assert json.loads(new)["vulnStatus"] == "Modified"
    dataset.put(b'{"id":"CVE-2030-0001","published":"2030-01-01T00:00:00.000"}')
    records = dataset.records()
    assert len(records) == 134
    assert records[-1].startswith(b'{"id":"CVE-2030-0001"')
    page = client.get(
        bundled_server.url,
        params={"cveId": "CVE-1999-0023"},
        headers={"Accept-Encoding": "identity"},
    )
    assert b'{"cve":' + new + b"}" in page.content
