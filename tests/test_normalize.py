"""Tests for ``nvdsync.normalize``: real NVD records, hand-made edge cases, CPE splitting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from nvdsync.models import CpeMatch, CveRecord, CvssScore, Kev, Quarantined, Reference
from nvdsync.normalize import normalize, split_cpe

# The shared capture of 134 real ``cve`` objects. A copy under tests/fixtures wins, so the
# suite keeps working once the file is vendored into the repository.
_HERE = Path(__file__).resolve().parent
_CANDIDATES = (
    _HERE / "fixtures" / "nvd" / "real-cves.jsonl",
    _HERE.parents[1] / "shared" / "fixtures" / "nvd" / "real-cves.jsonl",
)
REAL_CVES = next((p for p in _CANDIDATES if p.is_file()), _CANDIDATES[-1])


def _load_lines() -> list[bytes]:
    if not REAL_CVES.is_file():
        return []
    return [line.rstrip(b"\r\n") for line in REAL_CVES.read_bytes().splitlines() if line.strip()]


LINES = _load_lines()
needs_real = pytest.mark.skipif(not LINES, reason=f"real NVD fixture not found at {REAL_CVES}")


@pytest.fixture(scope="module")
def real() -> dict[str, CveRecord]:
    """Every real record, normalised, by id."""
    out: dict[str, CveRecord] = {}
    for line in LINES:
        record = normalize(line)
        assert isinstance(record, CveRecord), record
        out[record.id] = record
    return out


def _minimal(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "CVE-2024-0001",
        "published": "2024-01-02T03:04:05.678",
        "lastModified": "2024-02-03T04:05:06.789",
    }
    doc.update(extra)
    return doc


def _enc(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _metric(source: str, kind: str, score: float, version: str = "3.1") -> dict[str, Any]:
    return {
        "source": source,
        "type": kind,
        "cvssData": {
            "version": version,
            "vectorString": f"CVSS:{version}/AV:N",
            "baseScore": score,
            "baseSeverity": "HIGH",
        },
    }


# --- All real records ---------------------------------------------------------------


@needs_real
def test_fixture_has_expected_size() -> None:
    assert len(LINES) == 134


@needs_real
@pytest.mark.parametrize("line", LINES, ids=lambda b: json.loads(b)["id"])
def test_every_real_record_normalises(line: bytes) -> None:
    doc = json.loads(line)
    record = normalize(line)
    assert isinstance(record, CveRecord)
    assert record.raw == line
    assert record.id == doc["id"]
    assert record.published == doc["published"]
    assert record.last_modified == doc["lastModified"]
    assert record.vuln_status == doc.get("vulnStatus")
    assert len(record.references) == len(doc["references"])
    expected_matches = sum(
        len(node["cpeMatch"]) for cfg in doc.get("configurations", []) for node in cfg["nodes"]
    )
    assert len(record.cpe_matches) == expected_matches
    assert all(m.part is not None for m in record.cpe_matches)


# --- Spot checks on real records ----------------------------------------------------


@needs_real
def test_v2_only_record(real: dict[str, CveRecord]) -> None:
    r = real["CVE-1999-0023"]
    # v2 keeps baseSeverity on the metric, not in cvssData.
    assert r.cvss_v2 == CvssScore("2.0", 7.2, "HIGH", "AV:L/AC:L/Au:N/C:C/I:C/A:C", "nvd@nist.gov")
    assert r.cvss_v3 is None
    assert r.cvss_v4 is None
    assert r.cwes == ("NVD-CWE-Other",)
    assert r.description == (
        "Local user gains root privileges via buffer overflow in rdist, via lookup() function."
    )
    assert r.cpe_matches[0] == CpeMatch(
        criteria="cpe:2.3:a:inet:inet:5.01:*:*:*:*:*:*:*",
        part="a",
        vendor="inet",
        product="inet",
        version="5.01",
        vulnerable=True,
        match_criteria_id="A680AE78-F1C0-4EA2-9D71-55F3EADA59C8",
    )
    assert len(r.cpe_matches) == 28  # two configurations, flattened


@needs_real
def test_v31_nvd_primary_beats_cna_secondary(real: dict[str, CveRecord]) -> None:
    r = real["CVE-2022-0016"]
    assert r.cvss_v3 == CvssScore(
        "3.1", 7.8, "HIGH", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "nvd@nist.gov"
    )
    assert r.cvss_v2 is not None
    assert r.cvss_v2.severity == "MEDIUM"
    assert r.cwes == ("CWE-755", "CWE-703")
    assert r.source_identifier == "psirt@paloaltonetworks.com"
    # An English description even though a Spanish one follows.
    assert r.description is not None
    assert r.description.startswith("An improper handling of exceptional conditions")
    globalprotect, macos, _windows = r.cpe_matches
    assert globalprotect.version_start_including == "5.2"
    assert globalprotect.version_end_excluding == "5.2.9"
    assert globalprotect.version == "*"
    assert (macos.vulnerable, macos.version, macos.product) == (False, "-", "macos")


@needs_real
def test_nvd_primary_listed_second_still_wins(real: dict[str, CveRecord]) -> None:
    r = real["CVE-2024-1086"]  # the CNA's Secondary entry comes first here
    assert r.cvss_v3 is not None
    assert r.cvss_v3.source == "nvd@nist.gov"


@needs_real
def test_cna_primary_used_when_nvd_is_secondary(real: dict[str, CveRecord]) -> None:
    r = real["CVE-2022-24037"]
    assert r.cvss_v3 is not None
    assert (r.cvss_v3.source, r.cvss_v3.score) == ("cve@usom.gov.tr", 8.2)


@needs_real
def test_first_entry_used_when_no_primary(real: dict[str, CveRecord]) -> None:
    r = real["CVE-2023-30781"]
    assert r.cvss_v3 is not None
    assert (r.cvss_v3.source, r.cvss_v3.score) == ("audit@patchstack.com", 7.1)


@needs_real
def test_v31_preferred_over_v30(real: dict[str, CveRecord]) -> None:
    r = real["CVE-2022-20702"]
    assert r.cvss_v3 is not None
    assert (r.cvss_v3.version, r.cvss_v3.source) == ("3.1", "nvd@nist.gov")


@needs_real
@pytest.mark.parametrize(
    ("cve_id", "score"),
    [("CVE-2025-0168", 5.3), ("CVE-2025-3652", 6.9), ("CVE-2026-0574", 2.1)],
)
def test_v4_under_both_naming_generations(
    real: dict[str, CveRecord], cve_id: str, score: float
) -> None:
    r = real[cve_id]
    assert r.cvss_v4 is not None
    assert r.cvss_v4.version == "4.0"
    assert r.cvss_v4.vector.startswith("CVSS:4.0/AV:")
    assert r.cvss_v4.severity in {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
    assert r.cvss_v4.score == score


@needs_real
def test_kev_record(real: dict[str, CveRecord]) -> None:
    r = real["CVE-2024-1086"]
    assert r.kev == Kev(
        date_added="2024-05-30",
        action_due="2024-06-20",
        required_action=(
            "Apply mitigations per vendor instructions or discontinue use of the product "
            "if mitigations are unavailable."
        ),
        vulnerability_name="Linux Kernel Use-After-Free Vulnerability",
    )
    assert r.cwes == ("CWE-416",)  # listed by both the CNA and NVD, kept once
    # References are duplicated across sources in 2024+ data; all are kept, in order.
    assert len(r.references) == 29
    assert len({ref.url for ref in r.references}) == 15
    assert r.references[0] == Reference(
        url="http://www.openwall.com/lists/oss-security/2024/04/10/22",
        source="cve-coordination@google.com",
        tags=("Mailing List", "Patch"),
    )


@needs_real
def test_and_configurations_with_hardware(real: dict[str, CveRecord]) -> None:
    r = real["CVE-2024-3273"]
    assert r.kev is not None
    assert r.kev.date_added == "2024-04-11"
    assert len(r.cpe_matches) == 40  # 20 AND-configurations of firmware + hardware
    vulnerable = [m for m in r.cpe_matches if m.vulnerable]
    hardware = [m for m in r.cpe_matches if not m.vulnerable]
    assert len(vulnerable) == len(hardware) == 20
    assert {m.part for m in vulnerable} == {"o"}
    assert {m.part for m in hardware} == {"h"}
    assert (hardware[0].vendor, hardware[0].product, hardware[0].version) == (
        "dlink",
        "dns-320l",
        "-",
    )
    # Only a vuldb v2 score exists (Secondary), so it is taken as the first entry.
    assert r.cvss_v2 is not None
    assert r.cvss_v2.source == "cna@vuldb.com"
    assert r.cvss_v3 is not None
    assert (r.cvss_v3.score, r.cvss_v3.severity) == (9.8, "CRITICAL")


@needs_real
def test_rejected_record(real: dict[str, CveRecord]) -> None:
    r = real["CVE-1999-0335"]
    assert r.vuln_status == "Rejected"
    assert r.description is not None
    assert r.description.startswith("** REJECT **")
    assert (r.cvss_v2, r.cvss_v3, r.cvss_v4, r.kev) == (None, None, None, None)
    assert (r.cwes, r.cpe_matches, r.references) == ((), (), ())


# --- Hand-made records --------------------------------------------------------------


def test_minimal_record_has_empty_optionals() -> None:
    raw = _enc(_minimal())
    r = normalize(raw)
    assert isinstance(r, CveRecord)
    assert r.raw == raw
    assert (r.description, r.vuln_status, r.source_identifier, r.kev) == (None, None, None, None)
    assert (r.cvss_v2, r.cvss_v3, r.cvss_v4) == (None, None, None)
    assert (r.cwes, r.cpe_matches, r.references) == ((), (), ())


def test_unknown_keys_are_ignored() -> None:
    doc = _minimal(
        affected=[{"source": "x", "affectedData": []}],
        metrics={"ssvcV203": [{"source": "cisa", "ssvcData": {}}], "cvssMetricV99": [1]},
        futureKey={"nested": [1, 2, 3]},
    )
    r = normalize(_enc(doc))
    assert isinstance(r, CveRecord)
    assert (r.cvss_v2, r.cvss_v3, r.cvss_v4) == (None, None, None)


def test_v30_used_when_no_v31() -> None:
    doc = _minimal(metrics={"cvssMetricV30": [_metric("cna@example", "Secondary", 5.0, "3.0")]})
    r = normalize(_enc(doc))
    assert isinstance(r, CveRecord)
    assert r.cvss_v3 == CvssScore("3.0", 5.0, "HIGH", "CVSS:3.0/AV:N", "cna@example")


def test_primary_selection_order() -> None:
    metrics = [
        _metric("a@example", "Secondary", 1.0),
        _metric("b@example", "Primary", 2.0),
        _metric("nvd@nist.gov", "Secondary", 3.0),
        _metric("nvd@nist.gov", "Primary", 4.0),
    ]
    r = normalize(_enc(_minimal(metrics={"cvssMetricV31": metrics})))
    assert isinstance(r, CveRecord)
    assert r.cvss_v3 is not None
    assert (r.cvss_v3.source, r.cvss_v3.score) == ("nvd@nist.gov", 4.0)

    r = normalize(_enc(_minimal(metrics={"cvssMetricV31": metrics[:3]})))
    assert isinstance(r, CveRecord)
    assert r.cvss_v3 is not None
    assert (r.cvss_v3.source, r.cvss_v3.score) == ("b@example", 2.0)


def test_integer_score_and_severity_on_v2_metric() -> None:
    vector = "AV:N/AC:L/Au:N/C:C/I:C/A:C"
    v2 = {
        "source": "s",
        "type": "Primary",
        "baseSeverity": "HIGH",  # v2: on the metric, not in cvssData
        "cvssData": {"version": "2.0", "vectorString": vector, "baseScore": 10},
    }
    r = normalize(_enc(_minimal(metrics={"cvssMetricV2": [v2]})))
    assert isinstance(r, CveRecord)
    assert r.cvss_v2 == CvssScore("2.0", 10.0, "HIGH", vector, "s")


def test_description_falls_back_to_none_without_english() -> None:
    r = normalize(_enc(_minimal(descriptions=[{"lang": "es", "value": "hola"}])))
    assert isinstance(r, CveRecord)
    assert r.description is None


def test_partial_kev_fields_still_give_kev() -> None:
    r = normalize(_enc(_minimal(cisaExploitAdd="2024-05-30")))
    assert isinstance(r, CveRecord)
    assert r.kev == Kev("2024-05-30", None, None, None)


def test_escaped_cpe_in_json_text() -> None:
    criteria = "cpe:2.3:o:ricon:s9922l_firmware:16.10.3\\(3794\\):*:*:*:*:*:*:*"
    match = {"vulnerable": True, "criteria": criteria, "matchCriteriaId": "ID-1"}
    doc = _minimal(configurations=[{"nodes": [{"operator": "OR", "cpeMatch": [match]}]}])
    raw = _enc(doc)
    assert b"16.10.3\\\\(3794\\\\)" in raw  # the JSON text carries a doubled backslash
    r = normalize(raw)
    assert isinstance(r, CveRecord)
    (m,) = r.cpe_matches
    assert m.criteria == criteria
    assert (m.vendor, m.product, m.version) == ("ricon", "s9922l_firmware", "16.10.3\\(3794\\)")


@pytest.mark.parametrize(
    "wrap",
    [bytes, bytearray, memoryview, msgspec.Raw],
    ids=["bytes", "bytearray", "memoryview", "Raw"],
)
def test_raw_is_kept_exactly(wrap: Any) -> None:
    raw = (b'{"id":"CVE-2024-0001","published":"2024-01-02T03:04:05.678",'
           b'"lastModified":"2024-02-03T04:05:06.789", "x" : [ 1 ] }')
    r = normalize(wrap(raw))
    assert isinstance(r, CveRecord)
    assert type(r.raw) is bytes
    assert r.raw == raw


# --- Quarantine ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason_part", "cve_id"),
    [
        (b"not json", "invalid JSON", None),
        (b"", "invalid JSON", None),
        (b'{"id":"CVE-2024-0001","published":"p"', "invalid JSON", None),  # truncated
        (b'{"id":"CVE-2024-0001","published":"2024-01-02T03:04:05.678",'
         b'"lastModified":"2024-02-03T04:05:06.789"} x', "invalid JSON", None),
        (b'\xff{"id":"CVE-2024-0001"}', "invalid JSON", None),
        (b"[1, 2]", "Expected `object`, got `array`", None),
    ],
    ids=["garbage", "empty", "truncated", "trailing", "bad-utf8", "array"],
)
def test_undecodable_input(raw: bytes, reason_part: str, cve_id: str | None) -> None:
    q = normalize(raw)
    assert isinstance(q, Quarantined)
    assert reason_part in q.reason
    assert q.cve_id == cve_id
    assert q.raw == raw


@pytest.mark.parametrize("key", ["id", "published", "lastModified"])
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_missing_required_field(key: str, how: str) -> None:
    doc = _minimal()
    if how == "absent":
        del doc[key]
    else:
        doc[key] = ""
    q = normalize(_enc(doc))
    assert isinstance(q, Quarantined)
    assert q.reason == f"missing {key}"
    assert q.cve_id == (None if key == "id" else "CVE-2024-0001")


def test_published_as_number() -> None:
    q = normalize(_enc(_minimal(published=123)))
    assert isinstance(q, Quarantined)
    assert q.reason == "Expected `str`, got `int` - at `$.published`"
    assert q.cve_id == "CVE-2024-0001"


def test_id_of_wrong_type_is_not_recovered() -> None:
    q = normalize(_enc(_minimal(id=20240001)))
    assert isinstance(q, Quarantined)
    assert "$.id" in q.reason
    assert q.cve_id is None


def test_wrong_type_deep_inside_keeps_id() -> None:
    bad = _metric("nvd@nist.gov", "Primary", 7.5)
    bad["cvssData"]["baseScore"] = "high"
    q = normalize(_enc(_minimal(metrics={"cvssMetricV31": [bad]})))
    assert isinstance(q, Quarantined)
    assert "$.metrics.cvssMetricV31[0].cvssData.baseScore" in q.reason
    assert q.cve_id == "CVE-2024-0001"


def test_cpe_match_without_vulnerable_flag_is_quarantined() -> None:
    match = {"criteria": "cpe:2.3:a:v:p:1:*:*:*:*:*:*:*"}
    doc = _minimal(configurations=[{"nodes": [{"cpeMatch": [match]}]}])
    q = normalize(_enc(doc))
    assert isinstance(q, Quarantined)
    assert "vulnerable" in q.reason
    assert q.cve_id == "CVE-2024-0001"


# --- CPE splitting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("cpe:2.3:o:linux:linux_kernel:*:*:*:*:*:*:*:*", ("o", "linux", "linux_kernel", "*")),
        ("cpe:2.3:h:dlink:dns-320l:-:*:*:*:*:*:*:*", ("h", "dlink", "dns-320l", "-")),
        (
            "cpe:2.3:o:ricon:s9922l_firmware:16.10.3\\(3794\\):*:*:*:*:*:*:*",
            ("o", "ricon", "s9922l_firmware", "16.10.3\\(3794\\)"),
        ),
        ("cpe:2.3:a:foo\\:bar:baz:1.0:*:*:*:*:*:*:*", ("a", "foo\\:bar", "baz", "1.0")),
        # An escaped backslash does not escape the separator after it.
        ("cpe:2.3:a:vendor:prod\\\\:2.0:*:*:*:*:*:*:*", ("a", "vendor", "prod\\\\", "2.0")),
        ("cpe:2.3:a:v:p:1.0\\:rc1:*:*:*:*:*:*:*", ("a", "v", "p", "1.0\\:rc1")),
    ],
)
def test_split_cpe(criteria: str, expected: tuple[str, str, str, str]) -> None:
    assert split_cpe(criteria) == expected


@pytest.mark.parametrize(
    "criteria",
    [
        "",
        "cpe:/a:apache:http_server:2.4",  # CPE 2.2 URI binding
        "cpe:2.3:a:vendor:product",  # too few components
        "cpe:2.3:a:v:p:1:*:*:*:*:*:*:*:extra",  # too many
        "cpe:2.2:a:v:p:1:*:*:*:*:*:*:*",
        "cpe:2.3:a:v:p:1:*:*:*:*:*:*:\\",  # dangling escape
        "cpe:2.3:a:v\\:p:1:*:*:*:*:*:*:*",  # escaped colon leaves 12 components
    ],
)
def test_split_cpe_malformed_gives_none(criteria: str) -> None:
    assert split_cpe(criteria) == (None, None, None, None)


def test_malformed_criteria_does_not_fail_the_record() -> None:
    match = {"vulnerable": True, "criteria": "not a cpe"}
    r = normalize(_enc(_minimal(configurations=[{"nodes": [{"cpeMatch": [match]}]}])))
    assert isinstance(r, CveRecord)
    assert r.cpe_matches == (CpeMatch("not a cpe", None, None, None, None, True),)


@pytest.mark.parametrize(
    ("field", "value"),
    [("published", "N/A"), ("lastModified", "2024-13"), ("lastModified", "9999-99-99T99")],
)
def test_malformed_timestamps_are_quarantined(field: str, value: str) -> None:
    """Text comparison keeps the newest copy, so "N/A" must never reach the store."""
    record = {"id": "CVE-2024-0001", "published": "2024-01-02T03:04:05.678",
              "lastModified": "2024-02-03T04:05:06.789", field: value}
    result = normalize(msgspec.json.encode(record))
    assert isinstance(result, Quarantined)
    assert field in result.reason and result.cve_id == "CVE-2024-0001"


def test_a_non_cve_id_is_quarantined() -> None:
    record = {"id": "not-a-cve", "published": "2024-01-02T03:04:05.678",
              "lastModified": "2024-02-03T04:05:06.789"}
    result = normalize(msgspec.json.encode(record))
    assert isinstance(result, Quarantined) and "not a CVE id" in result.reason
