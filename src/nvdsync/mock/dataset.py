"""The mock's in-memory CVE collection: sorted bytes, filtered pages, and mutations.

Records stay as the compact JSON bytes they were given; only the four key fields
(id, published, lastModified, vulnStatus) are parsed once and kept beside them. A page
is therefore a slice of a sorted list, and the envelope is built by concatenation.

Order is (published, id) ascending, as NVD serves (contract §6); an insertion sequence
number breaks the remaining ties so that duplicate ids stay stable. Records whose
``published`` or ``id`` is missing or not a string sort with ``""`` in its place: a
deliberately malformed record must still be servable.

All public methods take one lock, because the server mutates records from request
threads while other threads read pages.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from nvdsync.mock.data import KEYS_DECODER, load_bundled, nvd_time, vary_record

if TYPE_CHECKING:
    import random
    from collections.abc import Iterable

__all__ = ["Dataset", "Page", "Query"]


@dataclass(frozen=True, slots=True)
class Query:
    """A validated CVE API request. Date bounds are inclusive NVD-form UTC strings."""

    start_index: int = 0
    results_per_page: int = 2000
    cve_id: str | None = None
    last_mod: tuple[str, str] | None = None
    pub: tuple[str, str] | None = None
    no_rejected: bool = False
    cpe_name: str | None = None
    is_vulnerable: bool = False
    keyword: str | None = None
    keyword_exact: bool = False
    severity: tuple[str, str] | None = None  # ("cvssV3Severity", "HIGH")
    cwe_id: str | None = None
    has_kev: bool = False

    @property
    def filters_content(self) -> bool:
        """Whether a filter needs the record's content, not just its key fields."""
        return bool(self.cpe_name or self.keyword or self.severity or self.cwe_id
                    or self.has_kev)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of results: the total match count and the page's record bytes."""

    total: int
    records: list[bytes]


@dataclass(slots=True)
class _Entry:
    key: tuple[str, str, int]  # (published, id, insertion sequence)
    last_modified: str
    rejected: bool
    raw: bytes


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Dataset:
    """Thread-safe, (published, id)-ordered collection of raw ``cve`` records."""

    def __init__(self, records: Iterable[bytes] = ()) -> None:
        self._lock = threading.RLock()
        self._entries: list[_Entry] = []
        self._keys: list[tuple[str, str, int]] = []
        self._by_id: dict[str, _Entry] = {}
        self._seq = 0
        self._revision = 0
        self._version = 0
        self._templates: list[Any] | None = None
        entries = [self._make_entry(raw) for raw in records]
        entries.sort(key=lambda e: e.key)
        self._entries = entries
        self._keys = [e.key for e in entries]
        for e in entries:
            self._by_id[e.key[1].upper()] = e  # a later duplicate id wins lookups

    # -- reading -------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def version(self) -> int:
        """Increases on every change; lets callers notice mutations cheaply."""
        return self._version

    def records(self) -> list[bytes]:
        """All current records as bytes, in (published, id) order."""
        with self._lock:
            return [e.raw for e in self._entries]

    def ids(self) -> list[str]:
        """All current ids, in (published, id) order (``""`` for records without one)."""
        with self._lock:
            return [e.key[1] for e in self._entries]

    def get(self, cve_id: str) -> bytes | None:
        """The current bytes of one record, or ``None``; ids are case-insensitive."""
        with self._lock:
            entry = self._by_id.get(cve_id.upper())
            return entry.raw if entry else None

    def page(self, query: Query) -> Page:
        """Apply the filters, then slice ``[start_index, start_index + results_per_page)``."""
        with self._lock:
            matches = self._match(query)
            start = query.start_index
            chunk = matches[start : start + query.results_per_page]
            return Page(total=len(matches), records=[e.raw for e in chunk])

    def _match(self, q: Query) -> list[_Entry]:
        if q.cve_id is not None:
            one = self._by_id.get(q.cve_id.upper())
            candidates = [one] if one is not None else []
        elif q.pub is not None:
            # Sorted by published, so a pub window is a contiguous slice: bisect it.
            lo = bisect.bisect_left(self._keys, (q.pub[0],))
            hi = bisect.bisect_right(self._keys, (q.pub[1], "\U0010ffff"))
            candidates = self._entries[lo:hi]
        else:
            candidates = self._entries
        if q.pub is not None and q.cve_id is not None:
            low, high = q.pub
            candidates = [e for e in candidates if low <= e.key[0] <= high]
        if q.last_mod is not None:
            low, high = q.last_mod
            candidates = [e for e in candidates if low <= e.last_modified <= high]
        if q.no_rejected:
            candidates = [e for e in candidates if not e.rejected]
        if q.filters_content:
            # Simple and slow on purpose: each record is normalised again per request,
            # an independent check on the mirror's indexed search (see filters.py).
            from nvdsync.mock.filters import matches

            candidates = [e for e in candidates if matches(e.raw, q)]
        return candidates

    # -- changing ------------------------------------------------------------------

    def put(self, raw: bytes) -> None:
        """Add a record, or replace the record with the same id (case-insensitive)."""
        with self._lock:
            entry = self._make_entry(raw)
            old = self._by_id.get(entry.key[1].upper())
            if old is not None and entry.key[1]:
                self._remove(old)
            self._insert(entry)

    def delete(self, cve_id: str) -> bool:
        """Remove a record by id; returns whether it existed."""
        with self._lock:
            entry = self._by_id.pop(cve_id.upper(), None)
            if entry is None:
                return False
            self._remove(entry)
            return True

    def modify(self, cve_id: str, when: datetime | None = None) -> bytes:
        """Change one record the way NVD does and return its new bytes.

        ``lastModified`` becomes ``when`` (default: now, UTC), ``vulnStatus`` becomes
        ``Modified`` (Rejected stays Rejected) and the first English description gets
        a revision note, so the bytes differ and the record moves into windows that
        cover ``when``. Raises ``KeyError`` for an unknown id.
        """
        with self._lock:
            entry = self._by_id.get(cve_id.upper())
            if entry is None:
                raise KeyError(cve_id)
            return self._modify(entry, when or datetime.now(UTC))

    def mutate_random(
        self, count: int, rng: random.Random, when: datetime | None = None
    ) -> list[str]:
        """Modify ``count`` records picked with ``rng``; returns their ids."""
        with self._lock:
            picked = rng.sample(range(len(self._entries)), min(count, len(self._entries)))
            chosen = [self._entries[i] for i in picked]
            moment = when or datetime.now(UTC)
            for entry in chosen:
                self._modify(entry, moment)
            return [e.key[1] for e in chosen]

    def add_generated(
        self, count: int, rng: random.Random, when: datetime | None = None
    ) -> list[str]:
        """Add ``count`` brand-new records published at ``when`` (default now); returns ids.

        They are built from the bundled real records like :func:`generate` output,
        with ids ``CVE-<year>-9NNNNNN`` that cannot clash with existing ones.
        """
        with self._lock:
            if self._templates is None:
                self._templates = [msgspec.json.decode(raw) for raw in load_bundled()]
            moment = when or datetime.now(UTC)
            stamp = nvd_time(moment)
            added: list[str] = []
            for _ in range(count):
                cve_id = f"CVE-{moment.year}-{9_000_000 + rng.randrange(1_000_000)}"
                while cve_id.upper() in self._by_id:
                    cve_id = f"CVE-{moment.year}-{9_000_000 + rng.randrange(1_000_000)}"
                template = rng.choice(self._templates)
                raw = vary_record(
                    template,
                    rng,
                    cve_id=cve_id,
                    published=stamp,
                    last_modified=stamp,
                    target_size=4500,
                )
                self._insert(self._make_entry(raw))
                added.append(cve_id)
            return added

    # -- internals (callers hold the lock) ----------------------------------------------

    def _make_entry(self, raw: bytes) -> _Entry:
        try:
            keys = KEYS_DECODER.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"record is not a JSON object: {exc}: {raw[:80]!r}") from None
        self._seq += 1
        return _Entry(
            key=(_str(keys.published), _str(keys.id), self._seq),
            last_modified=_str(keys.lastModified),
            rejected=keys.vulnStatus == "Rejected",
            raw=bytes(raw),
        )

    def _insert(self, entry: _Entry) -> None:
        at = bisect.bisect_left(self._keys, entry.key)
        self._keys.insert(at, entry.key)
        self._entries.insert(at, entry)
        self._by_id[entry.key[1].upper()] = entry
        self._version += 1

    def _remove(self, entry: _Entry) -> None:
        at = bisect.bisect_left(self._keys, entry.key)
        del self._keys[at]
        del self._entries[at]
        if self._by_id.get(entry.key[1].upper()) is entry:
            del self._by_id[entry.key[1].upper()]
        self._version += 1

    def _modify(self, entry: _Entry, when: datetime) -> bytes:
        record = msgspec.json.decode(entry.raw)
        if not isinstance(record, dict):  # cannot happen: entries are JSON objects
            return entry.raw
        stamp = nvd_time(when)
        previous = _str(record.get("lastModified"))
        if previous and stamp <= previous:
            # Keep lastModified strictly increasing even if the clock stalls or the
            # record was given a future date, so "changed" is always visible.
            # (A malformed previous date is left alone: any valid date will do then.)
            with contextlib.suppress(ValueError):
                stamp = nvd_time(
                    datetime.fromisoformat(previous).replace(tzinfo=UTC) + timedelta(milliseconds=1)
                )
        self._revision += 1
        record["lastModified"] = stamp
        if record.get("vulnStatus") != "Rejected":
            record["vulnStatus"] = "Modified"
        for desc in record.get("descriptions") or []:
            if (
                isinstance(desc, dict)
                and desc.get("lang") == "en"
                and isinstance(desc.get("value"), str)
            ):
                desc["value"] += f" (mock revision {self._revision})"
                break
        entry.raw = msgspec.json.encode(record)
        entry.last_modified = stamp
        entry.rejected = record.get("vulnStatus") == "Rejected"
        self._version += 1
        return entry.raw
