"""CPE 2.3 names, NVD match criteria and NVD-style version comparison.

Pure functions, no I/O: :mod:`nvdsync.search` uses them to confirm the candidate
criteria that the store found by vendor and product.

* :func:`parse_cpe` reads a CPE 2.3 *formatted string* (``cpe:2.3:a:apache:log4j:2.14.1:
  *:*:*:*:*:*:*``), honouring backslash escapes (``16.10.3\\(3794\\)``), and raises
  :class:`~nvdsync.errors.InvalidQuery` naming what is wrong.
* :func:`criteria_matches` decides whether one ``cpeMatch`` entry of a record applies to
  a name: attribute by attribute (``*`` = ANY, ``-`` = NA, embedded ``*``/``?``
  wildcards), and for the version either the criteria's own version or its
  ``versionStart/End Including/Excluding`` range.
* :func:`compare_versions` orders versions the way NVD's ranges are meant: split into
  runs of digits and runs of letters (``.``, ``-``, ``_`` and other punctuation only
  separate), digits compared as numbers (of any length), pre-release tags before
  the release, OpenSSL-style letters after it; a total order.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

import msgspec

from nvdsync.errors import InvalidQuery

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ATTRIBUTES",
    "MAX_NAME",
    "Cpe",
    "attribute_matches",
    "compare_versions",
    "criteria_matches",
    "fs_escape",
    "parse_cpe",
    "split_fs",
    "unescape",
    "version_in_range",
]

#: The eleven attributes after ``cpe:2.3:``, in order.
ATTRIBUTES = (
    "part", "vendor", "product", "version", "update", "edition", "language",
    "sw_edition", "target_sw", "target_hw", "other",
)
_PARTS = frozenset({"a", "o", "h"})
ANY = "*"
NA = "-"
# In the formatted-string binding only these punctuation characters go unescaped
# (NISTIR 7695, 6.2); every other one carries a backslash, as NVD's criteria do.
_FS_PLAIN = re.compile(r"[A-Za-z0-9._\-]")
_EXAMPLE = "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*"
#: Longest name accepted: NVD's dictionary has none near it, and a cap keeps a
#: pasted blob from being split, lower-cased and matched against every criteria.
MAX_NAME = 1000


class Cpe(msgspec.Struct, frozen=True):
    """A parsed CPE 2.3 name; values as written (escapes kept), lower-cased."""

    values: tuple[str, ...]  # the eleven attributes in ATTRIBUTES order

    @property
    def part(self) -> str:
        return self.values[0]

    @property
    def vendor(self) -> str:
        return self.values[1]

    @property
    def product(self) -> str:
        return self.values[2]

    @property
    def version(self) -> str:
        return self.values[3]

    def __str__(self) -> str:
        return "cpe:2.3:" + ":".join(self.values)


def split_fs(text: str) -> list[str] | None:
    """Split a formatted string on unescaped ``:``; None for a dangling backslash."""
    if "\\" not in text:
        return text.split(":")  # the common case, in C
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                return None
            current += (char, escaped)
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def unescape(value: str) -> str:
    """``16.10.3\\(3794\\)`` -> ``16.10.3(3794)``."""
    return re.sub(r"\\(.)", r"\1", value) if "\\" in value else value


def fs_escape(value: str) -> str:
    """The formatted-string form NVD writes: punctuation other than ``._-`` escaped."""
    return "".join(c if _FS_PLAIN.match(c) else "\\" + c for c in value)


def _invalid(message: str) -> InvalidQuery:
    return InvalidQuery(message, field="cpe")


def parse_cpe(name: str, *, allow_any_version: bool = True) -> Cpe:
    """Parse a CPE 2.3 name for searching; raise :class:`InvalidQuery` if malformed.

    Like NVD's ``cpeName``, part, vendor and product must be given (not ``*``). The
    version may be ``*`` ("any version of this product") unless ``allow_any_version``
    is False, which gives NVD's stricter rule.
    """
    text = name.strip()
    hint = f"give a CPE 2.3 name such as {_EXAMPLE}"
    if len(text) > MAX_NAME:
        raise _invalid(
            f"CPE name {text[:40]!r}... is {len(text):,} characters long, more than the "
            f"{MAX_NAME:,} allowed; {hint}"
        )
    if not text.lower().startswith("cpe:2.3:"):
        raise _invalid(f"CPE name {name!r} does not start with 'cpe:2.3:'; {hint}")
    parts = split_fs(text)
    if parts is None:
        raise _invalid(f"CPE name {name!r} ends in a dangling backslash; {hint}")
    if len(parts) != 13:
        raise _invalid(
            f"CPE name {name!r} has {len(parts)} colon-separated components, not 13 "
            f"(escape a colon inside a value as \\:); {hint}"
        )
    values = tuple(p.lower() for p in parts[2:])
    for attribute, value in zip(ATTRIBUTES, values, strict=True):
        if value == "":
            raise _invalid(f"CPE name {name!r}: {attribute} is empty; use * or -")
    if values[0] not in _PARTS:
        raise _invalid(
            f"CPE name {name!r}: part must be a (application), o (operating system) "
            f"or h (hardware), not {values[0]!r}"
        )
    required = ATTRIBUTES[1:3] if allow_any_version else ATTRIBUTES[1:4]
    for index, attribute in enumerate(required, start=1):
        if values[index] == ANY:
            raise _invalid(f"CPE name {name!r}: {attribute} must be given, not *")
    return Cpe(values)


@lru_cache(maxsize=4096)
def _wildcard(value: str) -> re.Pattern[str] | None:
    """A regex for a criteria value with embedded unescaped ``*``/``?``, else None."""
    out: list[str] = []
    special = False
    chars = iter(value)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "")))
        elif char == "*":
            out.append(".*")
            special = True
        elif char == "?":
            out.append(".")
            special = True
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL) if special else None


def attribute_matches(criteria: str, name: str) -> bool:
    """Does the criteria's attribute value cover the name's?

    ``*`` on either side matches (a name's ``*`` means "not said"); NA (``-``) matches
    only NA; otherwise the values are compared unescaped and case-insensitively, with
    the criteria's embedded wildcards honoured.
    """
    if criteria == ANY or name == ANY:
        return True
    if criteria == NA or name == NA:
        return criteria == name
    pattern = _wildcard(criteria)
    if pattern is not None:
        return pattern.fullmatch(unescape(name)) is not None
    return unescape(criteria).lower() == unescape(name).lower()


_TOKEN = re.compile(r"(\d+)|([^\W\d_]+)")
# Words that mark a pre-release even when written straight after a digit (2.0rc1);
# any other letters there are a later release (OpenSSL 1.0.1g, OpenSSH 7.4p1).
_PRE_WORDS = frozenset({"alpha", "beta", "rc", "pre", "preview", "dev", "snapshot"})
# Words that mark a later release even when separated (2.0-p1, 4.0.sp2).
_POST_WORDS = frozenset({"p", "patch", "pl", "post", "sp", "update"})
# Ranks of a token kind: a pre-release tag < any number (a missing part counts as
# the number 0) < a post-release letter. Numbers are compared as (length, digits)
# with leading zeros stripped: the same order as int() without its 4,300-digit limit.
_PRE, _NUMBER, _POST = 0, 1, 2
_Token = tuple[int, int, str]
_ZERO: _Token = (_NUMBER, 0, "")


@lru_cache(maxsize=65536)
def _tokens(version: str) -> tuple[_Token, ...]:
    text = unescape(version)
    out: list[_Token] = []
    after_digit = -1  # end offset of the last digit run
    for match in _TOKEN.finditer(text):
        digits, letters = match.groups()
        if digits is not None:
            if not digits.isascii():  # e.g. Arabic-Indic digits: compare their values
                digits = "".join(str(unicodedata.digit(c, 0)) for c in digits)
            value = digits.lstrip("0")
            out.append((_NUMBER, len(value), value))
            after_digit = match.end()
            continue
        word = letters.lower()
        attached = match.start() == after_digit
        post = word in _POST_WORDS or (attached and word not in _PRE_WORDS)
        out.append((_POST if post else _PRE, 0, word))
    return tuple(out)


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as ``left`` is older than, the same as or newer than ``right``.

    A version is read as runs of digits and runs of letters (other punctuation only
    separates), compared position by position, a missing part counting as ``0``:

    * numbers as numbers: ``2.9`` < ``2.10``, ``1.0`` == ``1.0.0`` == ``1.00``;
    * a pre-release tag (letters after a separator, ``2.0-beta9``, ``1.0.alpha``, or
      a known pre-release word such as ``2.0rc1``) sorts before any number, so before
      the release it leads to: ``2.0-beta9`` < ``2.0`` == ``2.0.0``;
    * other letters straight after a digit are a later release and sort after any
      number: ``1.0.1`` < ``1.0.1g`` < ``1.0.1h`` < ``1.0.2``; so do ``p``/``sp``/
      ``patch``/``update``... tags (``2.0-p1`` > ``2.0``);
    * letters of the same kind compare as lower-case text (``beta`` < ``rc``).

    Every version maps to one sequence of comparable parts, so this is a total order
    (``a < b`` and ``b < c`` imply ``a < c``), whatever the versions look like.
    """
    a, b = _tokens(left), _tokens(right)
    if len(a) < len(b):
        a += (_ZERO,) * (len(b) - len(a))
    elif len(b) < len(a):
        b += (_ZERO,) * (len(a) - len(b))
    return (a > b) - (a < b)


def version_in_range(
    version: str,
    *,
    start_including: str | None = None,
    start_excluding: str | None = None,
    end_including: str | None = None,
    end_excluding: str | None = None,
) -> bool:
    """Is ``version`` inside the bounds that are given (all of them)?"""
    if start_including is not None and compare_versions(version, start_including) < 0:
        return False
    if start_excluding is not None and compare_versions(version, start_excluding) <= 0:
        return False
    if end_including is not None and compare_versions(version, end_including) > 0:
        return False
    return not (end_excluding is not None and compare_versions(version, end_excluding) >= 0)


def criteria_matches(
    criteria: str,
    name: Cpe,
    bounds: Sequence[str | None] = (None, None, None, None),
) -> bool:
    """Does one ``cpeMatch`` entry apply to ``name``?

    ``bounds`` are the entry's versionStartIncluding, versionStartExcluding,
    versionEndIncluding and versionEndExcluding. A criteria string that is not a
    valid CPE 2.3 formatted string matches nothing.
    """
    parts = split_fs(criteria)
    if parts is None or len(parts) != 13:
        return False
    values = parts[2:]
    for index, (theirs, ours) in enumerate(zip(values, name.values, strict=True)):
        if index == 3:
            continue  # the version is decided below
        if not attribute_matches(theirs, ours):
            return False
    wanted = name.version
    if any(bound is not None for bound in bounds):
        if wanted == ANY:
            return True
        if wanted == NA:
            return False
        start_inc, start_exc, end_inc, end_exc = bounds
        return version_in_range(
            wanted,
            start_including=start_inc,
            start_excluding=start_exc,
            end_including=end_inc,
            end_excluding=end_exc,
        )
    return attribute_matches(values[3], wanted)
