"""Records for the mock NVD server: the bundled real ones, JSONL files, and a generator.

Every record is handled as the compact JSON bytes of one NVD ``cve`` object, exactly
as it will appear inside ``{"cve": ...}`` in a page. Keeping bytes (not dicts) is what
lets the server build a 2,000-record page by concatenation instead of re-encoding.

The generator derives synthetic records from the bundled real ones so that generated
data carries the real shape (CVSS v2/v3/v4 metrics in both naming generations, KEV
fields, duplicate references, ``metrics: {}``...) while having unique ids, spread-out
dates, and a realistic size (a real 2,000-record page is 8-10 MB, so ~4-5 KB each).
"""

from __future__ import annotations

import html
import random
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "KEYS_DECODER",
    "RecordKeys",
    "generate",
    "load_bundled",
    "load_jsonl",
    "nvd_time",
    "vary_record",
]

_BUNDLED = "real-cves.jsonl"

#: Generated dates end here, not at "now": the generator must give identical bytes for
#: the same (n, seed) on every day it runs, and this instant is already in the past.
GENERATED_UNTIL = datetime(2026, 1, 1, tzinfo=UTC)

# Rough shape of NVD's yearly publication counts (thousands): few early CVEs, a steep
# rise after 2016. Weighting years like this makes pub/lastMod windows look realistic.
_YEAR_WEIGHTS: dict[int, float] = {
    1999: 1.5,
    2000: 1.2,
    2001: 1.7,
    2002: 2.4,
    2003: 1.5,
    2004: 2.7,
    2005: 4.8,
    2006: 7.1,
    2007: 6.6,
    2008: 5.6,
    2009: 5.7,
    2010: 4.7,
    2011: 4.2,
    2012: 5.3,
    2013: 5.2,
    2014: 7.9,
    2015: 6.5,
    2016: 6.4,
    2017: 14.6,
    2018: 16.5,
    2019: 17.3,
    2020: 18.4,
    2021: 20.2,
    2022: 25.1,
    2023: 29.1,
    2024: 40.0,
    2025: 45.0,
}

#: The CVE Program container that duplicates most references since 2024 (contract §9.3).
_CVE_PROGRAM = "af854a3a-2127-422b-91ae-364da2661108"
_REF_TAGS = (
    "Third Party Advisory",
    "Vendor Advisory",
    "Patch",
    "Mailing List",
    "Issue Tracking",
    "Release Notes",
    "VDB Entry",
    "Exploit",
)
_VERSION_RE = re.compile(r"\b(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?\b")
#: Approximate compact size of one added cpeMatch entry, comma included.
_CPE_MATCH_SIZE = 150


class RecordKeys(msgspec.Struct):
    """The few fields the mock reads from a record; any type is accepted on purpose."""

    id: Any = None
    published: Any = None
    lastModified: Any = None  # the NVD field names
    vulnStatus: Any = None


#: Decoding into a Struct validates the whole line but skips the fields it doesn't need.
KEYS_DECODER = msgspec.json.Decoder(RecordKeys)


def nvd_time(moment: datetime) -> str:
    """Format an aware datetime as NVD does: UTC, milliseconds, no offset (23 chars)."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}"


@lru_cache(maxsize=1)
def _bundled() -> tuple[bytes, ...]:
    text = resources.files("nvdsync.mock").joinpath("data", _BUNDLED).read_bytes()
    return tuple(_split_lines(text, _BUNDLED))


def load_bundled() -> list[bytes]:
    """The 134 bundled real NVD records, each line's exact bytes without the newline."""
    return list(_bundled())


def load_jsonl(path: str | Path) -> list[bytes]:
    """Read one ``cve`` object per line; blank lines are skipped.

    Lines that are JSON objects are kept even when they are not valid NVD records
    (missing ``published``, ``"published": 123``...), because tests need to serve
    deliberately malformed records. A line that is not a JSON object raises
    ``ValueError`` naming the file and line number.
    """
    p = Path(path)
    return _split_lines(p.read_bytes(), str(p))


def _split_lines(text: bytes, name: str) -> list[bytes]:
    out: list[bytes] = []
    for lineno, line in enumerate(text.split(b"\n"), start=1):
        line = line.removesuffix(b"\r")  # keep each line's bytes otherwise exact
        if not line.strip():
            continue
        try:
            KEYS_DECODER.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"{name}:{lineno}: not a JSON object: {exc}") from None
        out.append(line)
    return out


def generate(n: int, seed: int = 0) -> list[bytes]:
    """Generate ``n`` realistic records derived from the bundled real ones.

    Deterministic: the same ``(n, seed)`` gives identical bytes (no clock is read).
    Ids are unique (``CVE-YYYY-NNNNN`` with the year of ``published``), ``published``
    spans 1999-2025, ``lastModified >= published`` and everything is before
    :data:`GENERATED_UNTIL`. The order is generation order, not (published, id).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(f"nvdsync-mock-generate:{seed}")
    templates = [msgspec.json.decode(raw) for raw in _bundled()]
    order = list(range(len(templates)))
    rng.shuffle(order)
    years = list(_YEAR_WEIGHTS)
    weights = list(_YEAR_WEIGHTS.values())
    next_number: dict[int, int] = {}
    out: list[bytes] = []
    for i in range(n):
        template = templates[order[i % len(order)]]
        year = rng.choices(years, weights)[0]
        start = datetime(year, 1, 1, tzinfo=UTC)
        end = min(datetime(year + 1, 1, 1, tzinfo=UTC), GENERATED_UNTIL)
        published = start + (end - start) * rng.random()
        # 15% were never touched after publication; the rest were modified later,
        # biased towards recent years (NVD re-touches old CVEs constantly, §10).
        if rng.random() < 0.15:
            modified = published + timedelta(hours=rng.uniform(0, 72))
        else:
            modified = GENERATED_UNTIL - (GENERATED_UNTIL - published) * rng.random() ** 2
        modified = min(max(modified, published), GENERATED_UNTIL - timedelta(seconds=1))
        number = next_number.get(year, 10000 + _ri(rng, 0, 99)) + _ri(rng, 1, 7)
        next_number[year] = number
        out.append(
            vary_record(
                template,
                rng,
                cve_id=f"CVE-{year}-{number:05d}",
                published=nvd_time(published),
                last_modified=nvd_time(modified),
                target_size=int(rng.triangular(2800, 6000, 4200)),
            )
        )
    return out


def vary_record(
    template: dict[str, Any],
    rng: random.Random,
    *,
    cve_id: str,
    published: str,
    last_modified: str,
    target_size: int = 0,
) -> bytes:
    """A copy of ``template`` with new id/dates, varied content, padded to ``target_size``.

    The template dict is not modified. Padding adds plausible references and
    ``cpeMatch`` entries until the compact encoding reaches about ``target_size`` bytes.
    """
    rec: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(template))
    old_id = str(rec.get("id", ""))
    rec["id"] = cve_id
    rec["published"] = published
    rec["lastModified"] = last_modified
    vendor, product = _vary_configurations(rec, rng)
    _vary_descriptions(rec, rng, product)
    refs = rec.get("references")
    if not isinstance(refs, list):
        refs = rec["references"] = []
    source = rec.get("sourceIdentifier") if isinstance(rec.get("sourceIdentifier"), str) else None
    if rec.get("vulnStatus") == "Rejected":
        target_size = 0  # real rejected records are tiny: no references, metrics {}
    raw = msgspec.json.encode(rec)
    deficit = target_size - len(raw)
    cpe_turn = False
    while deficit > 0:
        # Alternate between the two things real records have many of.
        cpe_turn = not cpe_turn
        if cpe_turn and _add_cpe_match(rec, rng, vendor, product):
            deficit -= _CPE_MATCH_SIZE
        else:
            deficit -= _add_reference(refs, rng, vendor, product, published, source)
    if target_size > len(raw):
        raw = msgspec.json.encode(rec)
    if old_id and old_id != cve_id:
        # Reference URLs and descriptions often name the CVE itself.
        raw = raw.replace(old_id.encode(), cve_id.encode())
    return raw


def _bump_version(match: re.Match[str], rng: random.Random) -> str:
    major, minor, patch = match.group(1), match.group(2), match.group(3)
    new_minor = int(minor) + _ri(rng, 0, 3)
    if patch is None:
        return f"{major}.{new_minor}"
    return f"{major}.{new_minor}.{int(patch) + _ri(rng, 0, 9)}"


def _vary_text(text: str, rng: random.Random) -> str:
    return _VERSION_RE.sub(lambda m: _bump_version(m, rng), text)


def _new_uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032X}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _vary_descriptions(rec: dict[str, Any], rng: random.Random, product: str) -> None:
    descs = rec.get("descriptions")
    if not isinstance(descs, list):
        return
    english = ""
    for d in descs:
        if isinstance(d, dict) and isinstance(d.get("value"), str):
            d["value"] = _vary_text(d["value"], rng)
            if d.get("lang") == "en" and not english:
                english = d["value"]
    if english and not any(isinstance(d, dict) and d.get("lang") == "es" for d in descs):
        # A stand-in for NVD's machine translation, HTML entities included (§10).
        descs.append(
            {
                "lang": "es",
                "value": f"Vulnerabilidad en {product}. " + html.escape(english, quote=False),
            }
        )


def _vary_configurations(rec: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    """Vary versions and ids in cpeMatch entries; return the first (vendor, product)."""
    vendor, product = "example", "product"
    found = False
    for config in rec.get("configurations") or []:
        for node in config.get("nodes", []) if isinstance(config, dict) else []:
            for match in node.get("cpeMatch", []) if isinstance(node, dict) else []:
                if not isinstance(match, dict):
                    continue
                match["matchCriteriaId"] = _new_uuid(rng)
                criteria = match.get("criteria")
                if isinstance(criteria, str):
                    parts = criteria.split(":")
                    if len(parts) >= 6:
                        if not found:
                            vendor, product, found = parts[3], parts[4], True
                        parts[5] = _vary_text(parts[5], rng)
                        match["criteria"] = ":".join(parts)
                for key in (
                    "versionStartIncluding",
                    "versionStartExcluding",
                    "versionEndIncluding",
                    "versionEndExcluding",
                ):
                    if isinstance(match.get(key), str):
                        match[key] = _vary_text(match[key], rng)
    return vendor, product


def _ri(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint`` without its overhead, which dominated generation time."""
    return low + int(rng.random() * (high - low + 1))


def _reference_url(rng: random.Random, vendor: str, product: str, published: str) -> str:
    y, m, d = published[:4], published[5:7], published[8:10]
    kind = _ri(rng, 0, 4)
    if kind == 0:
        ghsa = "-".join(f"{rng.getrandbits(20):05x}" for _ in range(3))
        return f"https://github.com/{vendor}/{product}/security/advisories/GHSA-{ghsa}"
    if kind == 1:
        return f"https://www.openwall.com/lists/oss-security/{y}/{m}/{d}/{_ri(rng, 1, 12)}"
    if kind == 2:
        return (
            f"https://lists.debian.org/debian-lts-announce/{y}/{m}/msg{_ri(rng, 0, 99999):05d}.html"
        )
    if kind == 3:
        return f"https://security.netapp.com/advisory/ntap-{y}{m}{d}-{_ri(rng, 1, 9999):04d}/"
    return (
        f"https://{vendor}.example.com/{product}/releases/"
        f"{_ri(rng, 1, 30)}.{_ri(rng, 0, 20)}.{_ri(rng, 0, 40)}"
    )


def _add_reference(
    refs: list[Any],
    rng: random.Random,
    vendor: str,
    product: str,
    published: str,
    source: str | None,
) -> int:
    """Append one plausible reference (twice, like post-2024 NVD data); return bytes added."""
    ref: dict[str, Any] = {
        "url": _reference_url(rng, vendor, product, published),
        "source": source or "cve@mitre.org",
    }
    tag_count = _ri(rng, 0, 2)
    if tag_count:
        ref["tags"] = sorted({_REF_TAGS[_ri(rng, 0, len(_REF_TAGS) - 1)] for _ in range(tag_count)})
    refs.append(ref)
    # url + source + tags + the JSON punctuation around them
    size = len(ref["url"]) + len(ref["source"]) + 26 + sum(len(t) + 3 for t in ref.get("tags", ()))
    if published >= "2024":
        refs.append({**ref, "source": _CVE_PROGRAM})
        size += size - len(ref["source"]) + len(_CVE_PROGRAM)
    return size


def _add_cpe_match(rec: dict[str, Any], rng: random.Random, vendor: str, product: str) -> bool:
    """Append a version of the record's first product to its first node, if it has one."""
    configs = rec.get("configurations")
    if not isinstance(configs, list) or not configs or not isinstance(configs[0], dict):
        return False
    nodes = configs[0].get("nodes")
    if not isinstance(nodes, list) or not nodes or not isinstance(nodes[0], dict):
        return False
    matches = nodes[0].get("cpeMatch")
    if not isinstance(matches, list):
        return False
    version = f"{_ri(rng, 0, 15)}.{_ri(rng, 0, 30)}.{_ri(rng, 0, 60)}"
    matches.append(
        {
            "vulnerable": True,
            "criteria": f"cpe:2.3:a:{vendor}:{product}:{version}:*:*:*:*:*:*:*",
            "matchCriteriaId": _new_uuid(rng),
        }
    )
    return True
