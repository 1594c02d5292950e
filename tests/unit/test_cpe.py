"""CPE 2.3 parsing, attribute matching and NVD-style version ranges (pure functions).

Criteria strings and bounds are taken from real NVD records (tests/fixtures/nvd and
the Log4Shell record); none of the real records uses versionStartExcluding, so that
bound is checked on a real criteria string with a bound of our own.
"""

from __future__ import annotations

import pytest

from nvdsync.cpe import (
    attribute_matches,
    compare_versions,
    criteria_matches,
    fs_escape,
    parse_cpe,
    split_fs,
    unescape,
    version_in_range,
)
from nvdsync.errors import InvalidQuery

LOG4J = "cpe:2.3:a:apache:log4j:{}:*:*:*:*:*:*:*"
ANY_LOG4J = "cpe:2.3:a:apache:log4j:*:*:*:*:*:*:*:*"


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("2.9", "2.10", -1),  # numbers compare as numbers, not text
        ("2.10", "2.9", 1),
        ("2.14.1", "2.14.1", 0),
        ("1.0", "1.0.0", 0),  # missing numeric parts count as zero
        ("1.0.1", "1.0.1g", -1),  # OpenSSL letter releases follow their base
        ("1.0.1g", "1.0.1h", -1),
        ("2.0-beta9", "2.0.1", -1),  # text meets a number: the number is newer
        ("2.0-beta9", "2.0-rc1", -1),  # text parts compare as text
        ("2.0-RC1", "2.0-rc1", 0),  # ... case-insensitively
        ("7.10.00", "7.10", 0),
        ("18.0.0.2", "18.0.0.10", -1),
        ("2025-10-06", "2025-09-30", 1),  # date-like versions
        ("16.10.3\\(3794\\)", "16.10.3(3794)", 0),  # escapes are not part of the value
    ],
)
def test_compare_versions(left: str, right: str, expected: int) -> None:
    assert compare_versions(left, right) == expected
    assert compare_versions(right, left) == -expected


@pytest.mark.parametrize(
    ("version", "inside"),
    [("2.12.9", False), ("2.13.0", True), ("2.14.1", True), ("2.15.0", False), ("2.15", False)],
)
def test_start_including_end_excluding(version: str, inside: bool) -> None:
    # CVE-2021-44228: versionStartIncluding 2.13.0, versionEndExcluding 2.15.0
    bounds = ("2.13.0", None, None, "2.15.0")
    assert criteria_matches(ANY_LOG4J, parse_cpe(LOG4J.format(version)), bounds) is inside


@pytest.mark.parametrize(
    ("version", "inside"), [("6.1.9", False), ("6.2.0", True), ("7.3.3", True),
                            ("7.3.4", False), ("7.10", False)],
)
def test_start_including_end_including(version: str, inside: bool) -> None:
    # CVE-2022-23630 (gradle): versionStartIncluding 6.2.0, versionEndIncluding 7.3.3.
    # 7.10 is newer than 7.3.3 although "7.10" < "7.3.3" as text.
    name = parse_cpe(f"cpe:2.3:a:gradle:gradle:{version}:*:*:*:*:*:*:*")
    bounds = ("6.2.0", None, "7.3.3", None)
    assert criteria_matches("cpe:2.3:a:gradle:gradle:*:*:*:*:*:*:*:*", name, bounds) is inside


@pytest.mark.parametrize(("version", "inside"), [("1.6.2", True), ("1.6.3", True),
                                                 ("1.6.4", False)])
def test_end_including_only(version: str, inside: bool) -> None:
    # CVE-1999-0316 (splitvt): versionEndIncluding 1.6.3
    name = parse_cpe(f"cpe:2.3:a:sam_lantinga:splitvt:{version}:*:*:*:*:*:*:*")
    criteria = "cpe:2.3:a:sam_lantinga:splitvt:*:*:*:*:*:*:*:*"
    assert criteria_matches(criteria, name, (None, None, "1.6.3", None)) is inside


@pytest.mark.parametrize(("version", "inside"), [("5.2", False), ("5.2.0", False),
                                                 ("5.2.1", True), ("5.2.9", False)])
def test_start_excluding(version: str, inside: bool) -> None:
    # CVE-2022-0016's criteria with a start bound moved to "excluding" (no real record
    # in the fixtures has versionStartExcluding).
    name = parse_cpe(f"cpe:2.3:a:paloaltonetworks:globalprotect:{version}:*:*:*:*:*:*:*")
    criteria = "cpe:2.3:a:paloaltonetworks:globalprotect:*:*:*:*:*:*:*:*"
    assert criteria_matches(criteria, name, (None, "5.2", None, "5.2.9")) is inside


def test_exact_version_and_update() -> None:
    # CVE-2021-44228 lists 2.0 beta9, rc1, rc2 and "-" (no update) as exact versions.
    beta9 = "cpe:2.3:a:apache:log4j:2.0:beta9:*:*:*:*:*:*"
    assert criteria_matches(beta9, parse_cpe(beta9))
    assert criteria_matches(beta9, parse_cpe(LOG4J.format("2.0")))  # update not said
    assert not criteria_matches(beta9, parse_cpe("cpe:2.3:a:apache:log4j:2.0:rc3:*:*:*:*:*:*"))
    assert not criteria_matches(beta9, parse_cpe(LOG4J.format("2.0.1")))
    # CVE-1999-0023: inet 5.01 exactly
    inet = "cpe:2.3:a:inet:inet:5.01:*:*:*:*:*:*:*"
    assert criteria_matches(inet, parse_cpe(inet))
    assert not criteria_matches(inet, parse_cpe("cpe:2.3:a:inet:inet:5.02:*:*:*:*:*:*:*"))


def test_any_and_na() -> None:
    # CVE-1999-0023: bsd_os with version * (every version) and sunos with version - (NA)
    bsd = "cpe:2.3:o:bsdi:bsd_os:*:*:*:*:*:*:*:*"
    assert criteria_matches(bsd, parse_cpe("cpe:2.3:o:bsdi:bsd_os:3.1:*:*:*:*:*:*:*"))
    assert criteria_matches(bsd, parse_cpe("cpe:2.3:o:bsdi:bsd_os:-:*:*:*:*:*:*:*"))
    sunos = "cpe:2.3:o:sun:sunos:-:*:*:*:*:*:*:*"
    assert criteria_matches(sunos, parse_cpe(sunos))
    assert not criteria_matches(sunos, parse_cpe("cpe:2.3:o:sun:sunos:5.8:*:*:*:*:*:*:*"))
    # A range never covers NA; a name with any version (*) is covered by every range.
    assert not criteria_matches(ANY_LOG4J, parse_cpe(LOG4J.format("-")), ("2.0", None, None, None))
    assert criteria_matches(ANY_LOG4J, parse_cpe(LOG4J.format("*")), ("2.0", None, None, None))


def test_other_attributes_must_agree() -> None:
    # CVE-2022-38390: IBM BAW with sw_edition "traditional"
    criteria = "cpe:2.3:a:ibm:business_automation_workflow:*:*:*:*:traditional:*:*:*"
    bounds = ("18.0.0.0", None, "18.0.0.2", None)
    base = "cpe:2.3:a:ibm:business_automation_workflow:18.0.0.1:*:*:*:{}:*:*:*"
    assert criteria_matches(criteria, parse_cpe(base.format("traditional")), bounds)
    assert criteria_matches(criteria, parse_cpe(base.format("*")), bounds)
    assert not criteria_matches(criteria, parse_cpe(base.format("containers")), bounds)
    # The part and product count too.
    assert not criteria_matches(ANY_LOG4J, parse_cpe("cpe:2.3:o:apache:log4j:2.14.1:*:*:*:*:*:*:*"))
    assert not criteria_matches(ANY_LOG4J, parse_cpe("cpe:2.3:a:apache:log4net:2.14:*:*:*:*:*:*:*"))


def test_escaped_values() -> None:
    # Real NVD criteria carry escapes, e.g. ricon's firmware 16.10.3\(3794\).
    criteria = "cpe:2.3:o:ricon:s9922l_firmware:16.10.3\\(3794\\):*:*:*:*:*:*:*"
    assert split_fs(criteria) is not None
    assert split_fs(criteria)[5] == "16.10.3\\(3794\\)"  # type: ignore[index]
    assert criteria_matches(criteria, parse_cpe(criteria))
    assert not criteria_matches(
        criteria, parse_cpe("cpe:2.3:o:ricon:s9922l_firmware:16.10.3:*:*:*:*:*:*:*")
    )
    # An escaped colon stays inside its value.
    name = parse_cpe("cpe:2.3:a:vendor:prod\\:uct:1.0:*:*:*:*:*:*:*")
    assert unescape(name.product) == "prod:uct"
    assert fs_escape("16.10.3(3794)") == "16.10.3\\(3794\\)"
    assert fs_escape("dns-320l_firmware") == "dns-320l_firmware"


def test_wildcards_inside_criteria_values() -> None:
    assert attribute_matches("1.*", "1.4")
    assert attribute_matches("1.?", "1.4")
    assert not attribute_matches("1.?", "1.41")
    assert not attribute_matches("1.\\*", "1.4")  # an escaped * is a literal star


def test_version_in_range_without_bounds_is_true() -> None:
    assert version_in_range("1.0")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("cpe:/a:apache:log4j:2.14.1", "does not start with 'cpe:2.3:'"),
        ("cpe:2.3:a:apache:log4j:2.14.1", "has 6 colon-separated components, not 13"),
        ("cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*:*", "not 13"),
        ("cpe:2.3:x:apache:log4j:2.14.1:*:*:*:*:*:*:*", "part must be a"),
        ("cpe:2.3:a:*:log4j:2.14.1:*:*:*:*:*:*:*", "vendor must be given"),
        ("cpe:2.3:a:apache:*:2.14.1:*:*:*:*:*:*:*", "product must be given"),
        ("cpe:2.3:a:apache::2.14.1:*:*:*:*:*:*:*", "product is empty"),
        ("cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:\\", "dangling backslash"),
    ],
)
def test_malformed_names_are_explained(name: str, problem: str) -> None:
    with pytest.raises(InvalidQuery, match=r"CPE name") as info:
        parse_cpe(name)
    assert problem in str(info.value)
    assert info.value.field == "cpe"


def test_nvd_rule_on_any_version_is_available() -> None:
    assert parse_cpe(LOG4J.format("*")).version == "*"
    with pytest.raises(InvalidQuery, match="version must be given"):
        parse_cpe(LOG4J.format("*"), allow_any_version=False)


def test_names_are_case_insensitive() -> None:
    name = parse_cpe("CPE:2.3:A:Apache:Log4j:2.14.1:*:*:*:*:*:*:*")
    assert str(name) == LOG4J.format("2.14.1")
    assert criteria_matches(ANY_LOG4J, name, ("2.13.0", None, None, "2.15.0"))


# --- a consistent total order --------------------------------------------------------

@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("2.0-beta9", "2.0", -1),  # a separated pre-release tag precedes the release
        ("2.0-beta9", "2.0.0", -1),  # ... however the release is written
        ("2.15.0-rc1", "2.15.0", -1),
        ("2.15.0-rc1", "2.15", -1),
        ("2.15.0-rc1", "2.14.1", 1),
        ("1.0.alpha", "1.0", -1),
        ("2.0rc1", "2.0", -1),  # a pre-release word even when written against the digit
        ("1.0.1g", "1.0.1.0", 1),  # OpenSSL letters: after the base, whatever its zeros
        ("1.0.1zb", "1.0.2", -1),
        ("7.4p1", "7.4", 1),  # OpenSSH portable releases follow their base
        ("2.0-p1", "2.0", 1),  # a separated patch tag too
        ("1.00", "1", 0),
    ],
)
def test_pre_and_post_releases(left: str, right: str, expected: int) -> None:
    assert compare_versions(left, right) == expected
    assert compare_versions(right, left) == -expected


# Versions as NVD writes them, chosen to meet every rule and each other.
ORDER_SAMPLE = [
    "2.0", "2.0.0", "2.0.00", "2.0-beta9", "2.0-rc1", "2.0-RC1", "2.0.beta", "2.0rc2",
    "2.0.1", "2.0.1g", "2.0a", "2.0-p1", "2.0.0.0.1", "2", "2.0_alpha", "2.0.0-beta",
    "1.0.1", "1.0.1g", "1.0.1h", "1.0.2", "1.0.1.1", "7.4p1", "7.4", "2.15.0-rc1",
    "2.15.0", "2.14.1", "v2.0", "2025-10-06", "0", "", "-", "16.10.3\\(3794\\)",
    "00002.0", "2.0-beta9.1", "2.0-beta10",
]


def test_compare_versions_is_a_total_order() -> None:
    """Antisymmetric and transitive over every pair and triple of the sample; the old
    rules had 2.0-beta9 > 2.0 == 2.0.0 > 2.0-beta9."""
    cmp = {(a, b): compare_versions(a, b) for a in ORDER_SAMPLE for b in ORDER_SAMPLE}
    for a in ORDER_SAMPLE:
        assert cmp[a, a] == 0
        for b in ORDER_SAMPLE:
            assert cmp[a, b] == -cmp[b, a], (a, b)
            for c in ORDER_SAMPLE:
                if cmp[a, b] <= 0 and cmp[b, c] <= 0:
                    assert cmp[a, c] <= 0, (a, b, c)
                if cmp[a, b] == 0 and cmp[b, c] == 0:
                    assert cmp[a, c] == 0, (a, b, c)


def test_log4j_release_candidate_is_in_range() -> None:
    # Log4Shell: 2.15.0-rc1 came before 2.15.0, so [2.13.0, 2.15.0) covers it.
    assert version_in_range("2.15.0-rc1", start_including="2.13.0", end_excluding="2.15.0")
    assert not version_in_range("2.15.0", start_including="2.13.0", end_excluding="2.15.0")


def test_numbers_of_any_length() -> None:
    """int() refuses strings of more than 4,300 digits; the comparison must not."""
    ones = "1" * 5000
    assert compare_versions(ones, ones) == 0
    assert compare_versions(ones, ones + "0") == -1  # longer number, larger
    assert compare_versions(ones[:-1] + "2", ones) == 1  # same length: by digits
    assert compare_versions("0" * 5000 + "7", "7") == 0  # leading zeros do not count
    assert compare_versions("2.9", "2." + "0" * 4999 + "10") == -1
    criteria = "cpe:2.3:a:python:python:*:*:*:*:*:*:*:*"
    name = parse_cpe("cpe:2.3:a:python:python:" + "9" * 900 + ":*:*:*:*:*:*:*")
    assert criteria_matches(criteria, name, ("1" * 899, None, None, "1" * 5000))
    assert not criteria_matches(criteria, name, ("1" * 5000, None, None, None))
    assert not criteria_matches(criteria, name, (None, None, None, "9" * 900))


def test_absurdly_long_names_are_refused() -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_cpe("cpe:2.3:a:python:python:" + "1" * 5000 + ":*:*:*:*:*:*:*")
    assert info.value.field == "cpe"
    assert "more than the 1,000 allowed" in str(info.value)
    assert len(str(info.value)) < 300  # the message quotes the start, not the whole
