"""RPM version ordering: ``rpmvercmp`` (rpm ``rpmio/rpmvercmp.c``) and EVR comparison.

Segments are maximal runs of digits or of letters; everything else separates them. ``~``
sorts before anything (pre-releases), ``^`` after the base version but before any further
segment; a numeric segment beats an alphabetic one; numbers compare without leading zeros;
when all shared segments are equal, the version with segments left wins.

rpm orders any string; :func:`is_valid` only rejects what cannot be an EVR at all (empty,
whitespace, no letter or digit, a non-numeric epoch) — rpm itself would not build such a
package.
"""

from __future__ import annotations


def _isalnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def rpmvercmp(a: str, b: str) -> int:
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not _isalnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < len(b) and not _isalnum(b[j]) and b[j] not in "~^":
            j += 1
        # tilde: sorts before everything else
        at, bt = i < len(a) and a[i] == "~", j < len(b) and b[j] == "~"
        if at or bt:
            if not at:
                return 1
            if not bt:
                return -1
            i += 1
            j += 1
            continue
        # caret: like tilde, but the end of the other string sorts first
        ac, bc = i < len(a) and a[i] == "^", j < len(b) and b[j] == "^"
        if ac or bc:
            if i >= len(a):
                return -1
            if j >= len(b):
                return 1
            if not ac:
                return 1
            if not bc:
                return -1
            i += 1
            j += 1
            continue
        if i >= len(a) or j >= len(b):
            break
        numeric = a[i].isdigit()
        si, sj = i, j
        if numeric:
            while i < len(a) and a[i].isascii() and a[i].isdigit():
                i += 1
            while j < len(b) and b[j].isascii() and b[j].isdigit():
                j += 1
        else:
            while i < len(a) and a[i].isascii() and a[i].isalpha():
                i += 1
            while j < len(b) and b[j].isascii() and b[j].isalpha():
                j += 1
        seg_a, seg_b = a[si:i], b[sj:j]
        if not seg_b:  # different types: numeric wins
            return 1 if numeric else -1
        if numeric:
            seg_a, seg_b = seg_a.lstrip("0"), seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def parse_evr(text: str) -> tuple[int, str, str]:
    epoch = 0
    if ":" in text:
        head, rest = text.split(":", 1)
        if head.isdigit():
            epoch, text = int(head), rest
    version, sep, release = text.rpartition("-")
    if not sep:
        version, release = text, ""
    return epoch, version, release


def is_valid(text: str) -> bool:
    if not text or any(c.isspace() for c in text) or not any(_isalnum(c) for c in text):
        return False
    head, colon, _ = text.partition(":")
    return not colon or (head.isascii() and head.isdigit())


def compare_evr(a: str, b: str) -> int:
    ea, va, ra = parse_evr(a)
    eb, vb, rb = parse_evr(b)
    if ea != eb:
        return -1 if ea < eb else 1
    c = rpmvercmp(va, vb)
    if c or not (ra and rb):  # a missing release matches any release
        return c
    return rpmvercmp(ra, rb)
