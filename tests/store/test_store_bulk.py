"""The write path's bulk statements keep every value exactly (COPY escapes on PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from nvdsync.models import Reference

if TYPE_CHECKING:
    from nvdsync.store import SqlStore

# Characters COPY's text format must escape, and the literal text of its NULL marker.
AWKWARD = "tab\there\nnew line\\backslash \\N \\. quote\" apostrophe' ünïcødé 🐛 \r"


def test_awkward_text_survives_the_round_trip(store: SqlStore, make_record) -> None:
    base = make_record("CVE-2024-0001", description=AWKWARD, cwes=(AWKWARD,))
    record = msgspec.structs.replace(
        base,
        references=(Reference(url=f"https://example.com/{AWKWARD}", source=None,
                              tags=("Patch", AWKWARD)),),
        cpe_matches=tuple(msgspec.structs.replace(m, version=AWKWARD, product=None)
                          for m in base.cpe_matches),
    )
    assert store.write_batch([record]) == 1
    assert store.get_record(record.id) == record
    newer = msgspec.structs.replace(record, last_modified="2025-01-01T00:00:00.000")
    assert store.write_batch([newer]) == 1  # replaced: children deleted, copied again
    assert store.get_record(record.id) == newer


def test_written_count_excludes_records_stored_newer(store: SqlStore, make_record) -> None:
    new = make_record("CVE-2024-0001", last_modified="2024-06-01T00:00:00.000")
    store.write_batch([new])
    old = make_record("CVE-2024-0001", last_modified="2024-01-01T00:00:00.000", cpes=5)
    fresh = make_record("CVE-2024-0002")
    assert store.write_batch([old, fresh]) == 1
    assert store.get_record(new.id) == new  # the older copy's 5 children never landed
