"""Debian version ordering (Debian Policy §5.6.12; dpkg ``lib/dpkg/version.c`` verrevcmp).

``[epoch:]upstream[-revision]``: epoch before the first ``:``, revision after the last ``-``;
missing epoch is 0, missing revision is "" (which compares equal to "0"). Strings compare as
alternating non-digit / digit runs; in non-digit runs ``~`` sorts before everything, even the
end of the string, then letters, then every other character by ASCII.

A version is invalid where dpkg's ``parseversion`` returns an *error* (not a warning): empty,
embedded whitespace, an epoch that is not a number, nothing after the epoch's ``:``, or an empty
upstream version or revision. dpkg only warns about the rest (an upstream that does not start
with a digit, odd characters) and still orders such versions, so they stay valid here.
"""

from __future__ import annotations

from functools import lru_cache


class InvalidVersion(ValueError):
    pass


@lru_cache(maxsize=65536)
def parse(text: str) -> tuple[int, str, str]:
    text = text.strip()
    if not text:
        raise InvalidVersion("version string is empty")
    if any(c.isspace() for c in text):
        raise InvalidVersion("version string has embedded spaces")
    epoch = 0
    if ":" in text:
        head, text = text.split(":", 1)
        if not head.isascii() or not head.isdigit():
            raise InvalidVersion(f"epoch {head!r} is not a number")
        if not text:
            raise InvalidVersion("nothing after colon in version number")
        epoch = int(head)
    upstream, dash, revision = text.rpartition("-")
    if not dash:
        upstream, revision = text, ""
    elif not revision:
        raise InvalidVersion("revision number is empty")
    if not upstream:
        raise InvalidVersion("version number is empty")
    return epoch, upstream, revision


def is_valid(text: str) -> bool:
    try:
        parse(text)
    except InvalidVersion:
        return False
    return True


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def compare(a: str, b: str) -> int:
    ea, ua, ra = parse(a)
    eb, ub, rb = parse(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return verrevcmp(ua, ub) or verrevcmp(ra, rb)
