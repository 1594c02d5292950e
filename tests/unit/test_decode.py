"""Page envelope decoding: complete pages pass, cut or foreign bodies raise ParseError."""

from __future__ import annotations

import io
import json

import pytest

from nvdsync import decode
from nvdsync.decode import NotCompact, decode_page, iter_records, open_page
from nvdsync.errors import ParseError
from nvdsync.models import Quarantined


def envelope(records: list[bytes], start: int = 0, total: int | None = None) -> bytes:
    items = b",".join(b'{"cve":' + r + b"}" for r in records)
    head = (f'{{"resultsPerPage":{len(records)},"startIndex":{start},'
            f'"totalResults":{total if total is not None else len(records)},'
            '"format":"NVD_CVE","version":"2.0","timestamp":"2026-01-01T00:00:00.000",'
            '"vulnerabilities":[').encode()
    return head + items + b"]}"


def test_items_are_exact_byte_slices(real_records):
    page = decode_page(envelope(real_records[:20], total=500), start_index=0)
    assert page.header.total == 500 and len(page) == 20
    assert list(iter_records(page)) == real_records[:20]


def test_a_cut_body_is_a_parse_error(real_records):
    body = envelope(real_records[:5])
    with pytest.raises(ParseError, match="not a complete NVD envelope"):
        decode_page(body[: len(body) // 2], start_index=0)


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda b: b.replace(b'"startIndex":0', b'"startIndex":7'), "startIndex"),
    (lambda b: b.replace(b'"resultsPerPage":3', b'"resultsPerPage":4'), "resultsPerPage"),
    (lambda b: b.replace(b"NVD_CVE", b"NVD_CPE"), "NVD_CVE"),
    (lambda b: b"", "empty body"),
])
def test_inconsistent_pages_are_rejected(real_records, mutate, needle):
    with pytest.raises(ParseError, match=needle):
        decode_page(mutate(envelope(real_records[:3])), start_index=0)


def test_empty_page_and_missing_vulnerabilities_key():
    body = b'{"resultsPerPage":0,"startIndex":0,"totalResults":0,"format":"NVD_CVE"}'
    assert len(decode_page(body, start_index=0)) == 0


def test_an_item_without_cve_is_quarantined(real_records):
    body = envelope(real_records[:1]).replace(b'[{"cve":', b'[{"nope":1},{"cve":')
    body = body.replace(b'"resultsPerPage":1', b'"resultsPerPage":2')
    results = list(iter_records(decode_page(body, start_index=0)))
    assert isinstance(results[0], Quarantined) and results[1] == real_records[0]
    assert json.loads(results[0].raw) == {"nope": 1}


@pytest.mark.parametrize("chunk", [7, 1000, 256 * 1024])
def test_streamed_records_equal_the_whole_decode(real_records, monkeypatch, chunk):
    """Chunk boundaries anywhere (even inside the separator) split records exactly."""
    monkeypatch.setattr(decode, "_CHUNK", chunk)
    header, items = open_page(io.BytesIO(envelope(real_records, start=40, total=900)),
                              start_index=40)
    assert (header.start_index, header.total, header.count) == (40, 900, len(real_records))
    assert list(items) == real_records


def test_streamed_empty_page():
    body = envelope([], start=100, total=50)
    header, items = open_page(io.BytesIO(body), start_index=100)
    assert header.count == 0 and list(items) == []


@pytest.mark.parametrize("cut", [0.3, 0.9, 0.999])
def test_streamed_cut_body_is_refused_and_the_whole_decode_says_why(real_records, cut):
    body = envelope(real_records[:30])[: int(len(envelope(real_records[:30])) * cut)]
    _, items = open_page(io.BytesIO(body), start_index=0)
    with pytest.raises((ParseError, NotCompact)):
        list(items)
    with pytest.raises(ParseError, match="not a complete NVD envelope"):
        decode_page(body, start_index=0)


def test_keys_after_the_array_fall_back_to_the_whole_decode(real_records):
    body = envelope(real_records[:3])[:-1] + b',"extra":1}'
    _, items = open_page(io.BytesIO(body), start_index=0)
    with pytest.raises(NotCompact):
        list(items)
    assert len(decode_page(body, start_index=0)) == 3


def test_streamed_count_mismatch_is_a_parse_error(real_records):
    body = envelope(real_records[:5]).replace(b'"resultsPerPage":5', b'"resultsPerPage":6')
    _, items = open_page(io.BytesIO(body), start_index=0)
    with pytest.raises(ParseError, match="holds 5 records"):
        list(items)
    body = envelope(real_records[:5]).replace(b'"resultsPerPage":5', b'"resultsPerPage":4')
    _, items = open_page(io.BytesIO(body), start_index=0)
    with pytest.raises(ParseError, match="resultsPerPage=4"):
        list(items)


def test_pretty_printed_pages_are_not_split(real_records):
    pretty = json.dumps(json.loads(envelope(real_records[:3])), indent=2).encode()
    with pytest.raises(NotCompact):
        open_page(io.BytesIO(pretty), start_index=0)
    assert len(decode_page(pretty, start_index=0)) == 3  # the fallback handles it
