"""Decode an NVD page record by record, without ever holding the whole page.

NVD pages are compact JSON whose envelope keys come first and whose last key is
``"vulnerabilities":[{"cve":{...}},{"cve":{...}},...]``. :func:`open_page` reads the
header, then splits the array on the byte sequence ``},{"cve":`` as the body is read
in 256 KB chunks, and hands out each record's exact bytes. That sequence cannot occur
inside a JSON string (its quote would have to be escaped), and every piece is then
decoded by msgspec, so a wrong split cannot pass silently: it raises
:class:`NotCompact` and the caller falls back to :func:`decode_page`, which decodes
the envelope whole (records left as zero-copy ``msgspec.Raw``; bounded by the page).

Why a hand-written splitter: no JSON library both streams and returns each value's
exact source bytes, which we keep verbatim; ijson rebuilds Python objects at about
15,000 records/s, msgspec decodes whole buffers only. Measured numbers are in
docs/benchmarks.md.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

import msgspec

from nvdsync.errors import ParseError
from nvdsync.models import Quarantined

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["NotCompact", "Page", "PageHeader", "decode_page", "iter_records", "open_page"]

_OPEN = b'"vulnerabilities":['
_FIRST = b'{"cve":'
_SEP = b'},{"cve":'
_CHUNK = 256 * 1024
_HEADER_LIMIT = 64 * 1024  # the envelope's own keys are ~150 bytes


class NotCompact(Exception):  # a signal between two functions, not an error
    """The body is not laid out as the splitter expects; decode it whole instead."""


class _Envelope(msgspec.Struct):
    resultsPerPage: int  # NVD's names
    startIndex: int
    totalResults: int
    format: str | None = None
    version: str | None = None
    timestamp: str | None = None
    # Lenient: one hand-made NVD fixture omits the key on an empty result.
    vulnerabilities: list[msgspec.Raw] = msgspec.field(default_factory=list)


class _Item(msgspec.Struct):
    cve: msgspec.Raw


_envelope = msgspec.json.Decoder(_Envelope)
_item = msgspec.json.Decoder(_Item)


class PageHeader(msgspec.Struct, frozen=True):
    start_index: int
    total: int  # totalResults
    count: int  # resultsPerPage: the number of records in this page


class Page(msgspec.Struct):
    """A page decoded whole: the fallback for bodies the splitter does not handle."""

    header: PageHeader
    items: list[msgspec.Raw]

    def __len__(self) -> int:
        return len(self.items)


def _check(env: _Envelope, start_index: int) -> PageHeader:
    if env.format not in (None, "NVD_CVE"):
        raise ParseError(f"expected format NVD_CVE, got {env.format!r}: is --api-url right?")
    if env.startIndex != start_index:
        raise ParseError(f"asked for startIndex={start_index}, page says {env.startIndex}")
    return PageHeader(start_index, env.totalResults, env.resultsPerPage)


def decode_page(body: bytes, *, start_index: int) -> Page:
    """Check and decode a whole page body; raise ParseError for a cut or foreign body."""
    if not body:
        raise ParseError(f"empty body for startIndex={start_index}")
    try:
        env = _envelope.decode(body)
    except msgspec.DecodeError as exc:
        raise ParseError(
            f"page at startIndex={start_index} is not a complete NVD envelope "
            f"({len(body)} bytes): {exc}"
        ) from exc
    header = _check(env, start_index)
    if header.count != len(env.vulnerabilities):
        raise ParseError(
            f"page at startIndex={start_index} says resultsPerPage={header.count} "
            f"but holds {len(env.vulnerabilities)} records"
        )
    return Page(header, env.vulnerabilities)


def iter_records(page: Page) -> Iterator[bytes | Quarantined]:
    """Each item's ``cve`` JSON text, exactly as sent; a malformed item is quarantined."""
    for raw in page.items:
        try:
            yield bytes(_item.decode(raw).cve)
        except msgspec.DecodeError as exc:
            yield Quarantined(raw=bytes(raw), reason=f"vulnerabilities item: {exc}")


class _Reader:
    """A growing window over the body: ``buf[pos:]`` is what has not been consumed."""

    def __init__(self, body: IO[bytes]) -> None:
        self.body = body
        self.buf = bytearray()
        self.pos = 0

    def fill(self) -> bool:
        data = self.body.read(_CHUNK)
        if not data:
            return False
        del self.buf[: self.pos]  # drop what was consumed before growing
        self.pos = 0
        self.buf += data
        return True


def open_page(body: IO[bytes], *, start_index: int) -> tuple[PageHeader, Iterator[bytes]]:
    """Read the envelope header and return it with an iterator of record bytes.

    The iterator raises ParseError when the body ends early or holds more or fewer
    records than its header says, and NotCompact when the layout is unexpected.
    """
    reader = _Reader(body)
    while (at := reader.buf.find(_OPEN)) < 0:
        if len(reader.buf) > _HEADER_LIMIT or not reader.fill():
            raise NotCompact("no vulnerabilities array after the envelope keys")
    try:
        env = _envelope.decode(bytes(reader.buf[:at]) + b'"vulnerabilities":[]}')
    except msgspec.DecodeError as exc:
        raise NotCompact(str(exc)) from exc
    header = _check(env, start_index)
    reader.pos = at + len(_OPEN)
    return header, _records(reader, header)


def _decode_item(item: bytes | bytearray) -> bytes:
    try:
        return bytes(_item.decode(item).cve)
    except msgspec.DecodeError as exc:
        raise NotCompact(f"a split record did not decode: {exc}") from exc


def _records(reader: _Reader, header: PageHeader) -> Iterator[bytes]:
    seen = 0
    if header.count:
        while len(reader.buf) - reader.pos < len(_FIRST) and reader.fill():
            pass
        if not reader.buf.startswith(_FIRST, reader.pos):
            raise NotCompact("records are not {\"cve\": ...} objects in compact JSON")
    search = reader.pos
    while True:
        cut = reader.buf.find(_SEP, search)
        if cut >= 0:
            seen += 1
            if seen > header.count:
                break
            yield _decode_item(reader.buf[reader.pos : cut + 1])
            reader.pos = search = cut + 2
            continue
        tail = max(reader.pos, len(reader.buf) - len(_SEP) + 1)
        consumed = reader.pos
        if not reader.fill():
            break
        search = tail - consumed
    rest = bytes(reader.buf[reader.pos :]).rstrip()
    if not rest.endswith(b"]}"):
        # Cut short, or a valid envelope with keys after the array: decoding the whole
        # body tells the two apart (and raises ParseError for the first).
        raise NotCompact("the body does not end with the vulnerabilities array")
    last = rest[:-2].rstrip()
    if last:
        seen += 1
        if seen <= header.count:
            yield _decode_item(last)
    if seen != header.count:
        raise ParseError(f"page at startIndex={header.start_index} says resultsPerPage="
                         f"{header.count} but holds {seen} records")
