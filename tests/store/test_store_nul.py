"""A NUL in a record's text: PostgreSQL text columns cannot hold it, so one such
record used to fail its batch on every retry. The typed copy drops it; raw keeps it."""

from __future__ import annotations

import json
from pathlib import Path

from nvdsync.models import CveRecord
from nvdsync.normalize import normalize
from nvdsync.store import SqlStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "nvd" / "real-cves.jsonl"


def with_nuls() -> bytes:
    cve = json.loads(FIXTURE.read_bytes().splitlines()[0])
    cve["descriptions"][0]["value"] = "before\u0000after \\u0000 stays text"
    cve["references"][0]["url"] += "\u0000"
    return json.dumps(cve).encode()


def test_a_record_with_nul_characters_is_stored_on_both_back_ends(store: SqlStore) -> None:
    raw = with_nuls()
    assert b"\\u0000" in raw
    record = normalize(raw)
    assert isinstance(record, CveRecord)
    assert record.description == "beforeafter \\u0000 stays text"  # the escaped one stays
    assert "\x00" not in record.references[0].url
    assert store.write_batch([record]) == 1
    assert store.get_raw(record.id) == raw  # exactly as received, NULs included
    stored = store.get_record(record.id)
    assert stored is not None and stored.description == record.description
