"""Turn the raw JSON text of one NVD ``cve`` object into a ``CveRecord``.

The parser upstream slices each ``vulnerabilities[].cve`` object out of a page without
decoding it; this module decodes it once, with typed msgspec Structs that name only the
fields we keep, and builds the value types in ``models``. Everything NVD adds later (new
metric families, ``affected``, ``ssvcV203``, renamed CVSS v4 keys) is ignored by the
decoder, and the exact input bytes travel on in ``CveRecord.raw`` so nothing is lost.

A record that cannot be decoded, has a wrong type anywhere in the fields we read, or
lacks ``id``/``published``/``lastModified`` becomes a ``Quarantined`` value rather than
an exception: one bad record must not fail a page of 2,000 good ones (see §10 of the
NVD notes: field presence drifts without a version bump).

This runs once per CVE on the sync's hot path, so the decoders are module-level, the
private Structs skip GC tracking, and the output is built with plain loops.
"""

from __future__ import annotations

import re

import msgspec

from nvdsync.cpe import split_fs
from nvdsync.models import CpeMatch, CveRecord, CvssScore, Kev, Quarantined, Reference

__all__ = ["RawCve", "normalize", "split_cpe"]

#: Anything holding the bytes of one ``cve`` object (``msgspec.Raw`` from the page parser).
RawCve = bytes | bytearray | memoryview | msgspec.Raw

_NVD_SOURCE = "nvd@nist.gov"
_PRIMARY = "Primary"


# --- Decode types -------------------------------------------------------------------
# ``gc=False``: JSON cannot form reference cycles, so tracking these short-lived objects
# in the cyclic GC would only add cost (and trigger collections) on every record.
# Fields the NVD schema marks required *inside* objects we read stay required here: a
# cpeMatch without ``vulnerable`` or a CVSS block without ``baseScore`` would force us to
# invent data, so the record is quarantined (with its raw text kept) instead.
# Attribute names are NVD's own camelCase keys, so msgspec needs no rename table.


class _LangValue(msgspec.Struct, gc=False):
    lang: str
    value: str


class _CvssData(msgspec.Struct, gc=False):
    # Only the four keys the FIRST schemas require; v4 renamed the rest over time.
    version: str
    vectorString: str
    baseScore: float
    baseSeverity: str | None = None  # absent in v2 (it sits on the metric)


class _Metric(msgspec.Struct, gc=False):
    cvssData: _CvssData
    source: str | None = None
    type: str | None = None
    baseSeverity: str | None = None  # v2 only


class _Metrics(msgspec.Struct, gc=False):
    cvssMetricV2: tuple[_Metric, ...] = ()
    cvssMetricV30: tuple[_Metric, ...] = ()
    cvssMetricV31: tuple[_Metric, ...] = ()
    cvssMetricV40: tuple[_Metric, ...] = ()


class _Weakness(msgspec.Struct, gc=False):
    description: tuple[_LangValue, ...] = ()


class _CpeMatch(msgspec.Struct, gc=False):
    vulnerable: bool
    criteria: str
    matchCriteriaId: str | None = None
    versionStartIncluding: str | None = None
    versionStartExcluding: str | None = None
    versionEndIncluding: str | None = None
    versionEndExcluding: str | None = None


class _Node(msgspec.Struct, gc=False):
    cpeMatch: tuple[_CpeMatch, ...] = ()


class _Configuration(msgspec.Struct, gc=False):
    nodes: tuple[_Node, ...] = ()


class _Cve(msgspec.Struct, gc=False):
    # id/published/lastModified default to "" so that their absence gets our own clear
    # reason ("missing lastModified") and the id survives when only a date is missing.
    id: str = ""
    published: str = ""
    lastModified: str = ""
    sourceIdentifier: str | None = None
    vulnStatus: str | None = None
    descriptions: tuple[_LangValue, ...] = ()
    metrics: _Metrics | None = None
    weaknesses: tuple[_Weakness, ...] = ()
    configurations: tuple[_Configuration, ...] = ()
    # The field names of ``models.Reference`` match NVD's keys, so references decode
    # straight into the output type: no intermediate object per reference.
    references: tuple[Reference, ...] = ()
    cisaExploitAdd: str | None = None
    cisaActionDue: str | None = None
    cisaRequiredAction: str | None = None
    cisaVulnerabilityName: str | None = None


class _IdOnly(msgspec.Struct, gc=False):
    id: str | None = None


_DECODER = msgspec.json.Decoder(_Cve)
_ID_DECODER = msgspec.json.Decoder(_IdOnly)


# --- Public API ---------------------------------------------------------------------


#: A JSON ``\u0000`` escape (not an escaped backslash followed by "u0000").
_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def normalize(raw: RawCve) -> CveRecord | Quarantined:
    """Decode one ``cve`` object; return a ``CveRecord`` or, if unusable, a ``Quarantined``.

    ``raw`` is kept byte for byte in the result (copied to ``bytes`` only when it is a
    buffer view such as ``memoryview`` or ``msgspec.Raw``). Never raises for bad input.
    """
    data = raw if type(raw) is bytes else bytes(raw)
    typed = data
    if b"\\u0000" in data:
        # PostgreSQL text cannot hold NUL, and one such record would fail its batch on
        # every retry: the typed columns drop it, ``raw`` keeps the bytes NVD sent.
        typed = _NUL.sub(rb"\1", data)
    try:
        cve = _DECODER.decode(typed)
    except msgspec.ValidationError as exc:
        # Valid JSON of the wrong shape, e.g. "Expected `str`, got `int` - at `$.published`".
        return Quarantined(raw=data, reason=str(exc), cve_id=_recover_id(data))
    except msgspec.DecodeError as exc:
        return Quarantined(raw=data, reason=f"invalid JSON: {exc}", cve_id=None)

    cve_id = cve.id
    if not cve_id:
        return Quarantined(raw=data, reason="missing id", cve_id=None)
    if not cve.published:
        return Quarantined(raw=data, reason="missing published", cve_id=cve_id)
    if not cve.lastModified:
        return Quarantined(raw=data, reason="missing lastModified", cve_id=cve_id)
    # Stores compare these as text to keep the newest copy, so a malformed value
    # ("N/A" sorts after every date) would replace good data and block later updates.
    for name, value in (("published", cve.published), ("lastModified", cve.lastModified)):
        if not _NVD_TIME.fullmatch(value):
            return Quarantined(raw=data, reason=f"{name} {value[:40]!r} is not an NVD "
                               "timestamp (YYYY-MM-DDTHH:MM:SS.mmm)", cve_id=cve_id)
    if not _CVE_ID.fullmatch(cve_id):
        return Quarantined(raw=data, reason=f"id {cve_id[:40]!r} is not a CVE id",
                           cve_id=None)

    metrics = cve.metrics
    if metrics is None:
        v2 = v3 = v4 = None
    else:
        v2 = _primary(metrics.cvssMetricV2)
        v3 = _primary(metrics.cvssMetricV31) or _primary(metrics.cvssMetricV30)
        v4 = _primary(metrics.cvssMetricV40)

    return CveRecord(
        id=cve_id,
        published=cve.published,
        last_modified=cve.lastModified,
        vuln_status=cve.vulnStatus,
        source_identifier=cve.sourceIdentifier,
        description=_english(cve.descriptions),
        cvss_v2=v2,
        cvss_v3=v3,
        cvss_v4=v4,
        cwes=_cwes(cve.weaknesses),
        kev=_kev(cve),
        cpe_matches=_cpe_matches(cve.configurations),
        references=cve.references,
        raw=data,
    )


def split_cpe(criteria: str) -> tuple[str | None, str | None, str | None, str | None]:
    """Return (part, vendor, product, version) of a CPE 2.3 formatted string.

    Components are split on ``:`` except where the colon is backslash-escaped; values are
    returned exactly as written, escapes included (``16.10.3\\(3794\\)``), because that is
    the form NVD matches on and it round-trips; ``*`` (ANY) and ``-`` (NA) are kept as is.
    Anything that is not a 13-component ``cpe:2.3:`` string gives four ``None``.
    """
    if "\\" in criteria:
        parts = split_fs(criteria)
        if parts is None:
            return _NO_PARTS
    else:
        # Fast path: escapes are rare (a few in a thousand criteria), plain split is C code.
        parts = criteria.split(":")
    if len(parts) != 13 or parts[0] != "cpe" or parts[1] != "2.3":
        return _NO_PARTS
    return parts[2], parts[3], parts[4], parts[5]


# --- Helpers ------------------------------------------------------------------------

_NO_PARTS: tuple[None, None, None, None] = (None, None, None, None)
# NVD's form is always millisecond precision without an offset; fewer digits are
# accepted (still sortable as text), anything else is quarantined.
_NVD_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?")
_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}")


def _recover_id(data: bytes) -> str | None:
    """Best-effort id for a quarantine row when the typed decode failed elsewhere."""
    try:
        return _ID_DECODER.decode(data).id or None
    except msgspec.DecodeError:  # also covers ValidationError (e.g. "id": 123)
        return None


def _primary(entries: tuple[_Metric, ...]) -> CvssScore | None:
    """Pick NVD's Primary entry, else the first Primary, else the first entry.

    The Primary/Secondary labels are not ordered within the list, and a CNA can be
    Primary when NVD has not scored the CVE yet, hence the two-step preference.
    """
    if not entries:
        return None
    chosen = None
    for metric in entries:
        if metric.type == _PRIMARY:
            if metric.source == _NVD_SOURCE:
                chosen = metric
                break
            if chosen is None:
                chosen = metric
    if chosen is None:
        chosen = entries[0]
    data = chosen.cvssData
    return CvssScore(
        version=data.version,
        score=data.baseScore,
        # v3/v4 carry the severity in cvssData, v2 on the metric itself.
        severity=data.baseSeverity or chosen.baseSeverity,
        vector=data.vectorString,
        source=chosen.source,
    )


def _english(descriptions: tuple[_LangValue, ...]) -> str | None:
    for item in descriptions:
        if item.lang == "en":
            return item.value
    return None


def _cwes(weaknesses: tuple[_Weakness, ...]) -> tuple[str, ...]:
    # NVD and the CNA often list the same CWE; keep each once, first occurrence first.
    if not weaknesses:
        return ()
    seen: dict[str, None] = {}
    for weakness in weaknesses:
        for item in weakness.description:
            if item.lang == "en":
                seen[item.value] = None
    return tuple(seen)


def _kev(cve: _Cve) -> Kev | None:
    added = cve.cisaExploitAdd
    due = cve.cisaActionDue
    action = cve.cisaRequiredAction
    name = cve.cisaVulnerabilityName
    if added is None and due is None and action is None and name is None:
        return None
    return Kev(date_added=added, action_due=due, required_action=action, vulnerability_name=name)


def _cpe_matches(configurations: tuple[_Configuration, ...]) -> tuple[CpeMatch, ...]:
    # AND/OR structure is not kept here: the raw JSON has it, and the flattened list is
    # what "which CVEs mention this product" queries need.
    if not configurations:
        return ()
    out: list[CpeMatch] = []
    append = out.append
    for configuration in configurations:
        for node in configuration.nodes:
            for match in node.cpeMatch:
                criteria = match.criteria
                part, vendor, product, version = split_cpe(criteria)
                append(
                    CpeMatch(
                        criteria=criteria,
                        part=part,
                        vendor=vendor,
                        product=product,
                        version=version,
                        vulnerable=match.vulnerable,
                        version_start_including=match.versionStartIncluding,
                        version_start_excluding=match.versionStartExcluding,
                        version_end_including=match.versionEndIncluding,
                        version_end_excluding=match.versionEndExcluding,
                        match_criteria_id=match.matchCriteriaId,
                    )
                )
    return tuple(out)
