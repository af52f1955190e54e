"""Maven version ordering: ``ComparableVersion`` of maven-artifact 3.9.x, reimplemented item for
item (org.apache.maven.artifact.versioning.ComparableVersion; Apache-2.0).

A version (lower-cased) parses into a list of items:

* integers (Maven's Int/Long/BigIntegerItem; one Python ``int`` covers all three, their
  ordering is numeric);
* qualifier strings, ordered ``alpha < beta < milestone < rc = cr < snapshot < "" = ga = final
  = release < sp`` and then unknown qualifiers, lexically (``a1``/``b1``/``m1`` are
  alpha/beta/milestone when a digit follows);
* sub-lists: a ``-`` opens one, and so does every digit<->letter transition (``1.0a1`` is
  ``[1, [alpha, [1]]]``, exactly like ``1.0-alpha-1``). Since MNG-7644 a trailing ``.X`` or
  ``.X1`` qualifier also opens a sub-list, so ``2.0.X == 2-X`` and ``1.0.0.X1 < 1.0.0-X2``.

Each list is normalised from its end: trailing "null" items (0, the release qualifier, an empty
list) are removed, stepping over sub-lists, until a non-null number or qualifier. Comparison:
a number beats a qualifier and a list; a list beats a qualifier; a missing item compares as
"null" — against it a qualifier is compared with the release qualifier and a list item by item
(MNG-6964). The results are what Maven 3.9 computes, odd cases included (``0.x-SNAPSHOT >
0.x``, because ``0.x`` normalises to ``[[x]]``).

Every string is a Maven version to ComparableVersion; :func:`is_valid` adds the rules that make a
version usable against advisory ranges (see there).
"""

from __future__ import annotations

import re
from functools import lru_cache

Item = int | str | list

QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
RELEASE = str(QUALIFIERS.index(""))
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}

# Maven's model validator rejects these in a version ("must not contain any of these
# characters"); ranges and meta-versions name a set of versions, not one.
_BANNED = re.compile(r'[\\/:"<>|?*\[\](),\s]')
_META = {"latest", "release"}


def _qualifier(text: str, followed_by_digit: bool) -> str:
    if followed_by_digit and len(text) == 1:
        text = _SHORT.get(text, text)
    return ALIASES.get(text, text)


def _comparable(q: str) -> str:
    """StringItem.comparableQualifier: an index for known qualifiers, ``7-<q>`` otherwise."""
    return str(QUALIFIERS.index(q)) if q in QUALIFIERS else f"{len(QUALIFIERS)}-{q}"


def _sign(a: str | int, b: str | int) -> int:
    return (a > b) - (a < b)


def _is_null(item: Item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, str):
        return _comparable(item) == RELEASE
    return not item


def _cmp(a: Item, b: Item | None) -> int:
    """``a.compareTo(b)`` of Maven's items; ``None`` is a missing item."""
    if isinstance(a, int):
        if b is None:
            return 0 if a == 0 else 1  # 1.0 == 1, 1.1 > 1
        return _sign(a, b) if isinstance(b, int) else 1  # 1.1 > 1-sp, 1.1 > 1-1
    if isinstance(a, str):
        if b is None:
            return _sign(_comparable(a), RELEASE)  # 1-rc < 1, 1-sp > 1
        return _sign(_comparable(a), _comparable(b)) if isinstance(b, str) else -1
    if b is None:  # MNG-6964: the whole list against null, not only its first item
        return next((c for c in (_cmp(i, None) for i in a) if c), 0)
    if isinstance(b, int):
        return -1  # 1-1 < 1.0.x
    if isinstance(b, str):
        return 1  # 1-1 > 1-sp
    for i in range(max(len(a), len(b))):
        left, right = (a[i] if i < len(a) else None), (b[i] if i < len(b) else None)
        c = -_cmp(right, None) if left is None else _cmp(left, right)
        if c:
            return c
    return 0


def _normalize(items: list) -> None:
    """ListItem.normalize: drop null items from the end, stepping over sub-lists."""
    for i in range(len(items) - 1, -1, -1):
        if _is_null(items[i]):
            del items[i]
        elif not isinstance(items[i], list):
            break


class _Parser:
    """ComparableVersion.parseVersion, with its list stack."""

    def __init__(self) -> None:
        self.root: list = []
        self.current = self.root
        self.stack = [self.root]

    def nest(self) -> None:
        sub: list = []
        self.current.append(sub)
        self.stack.append(sub)
        self.current = sub

    def add(self, digits: bool, text: str) -> None:
        self.current.append(int(text) if digits else _qualifier(text, False))

    def parse(self, version: str) -> list:
        digits, start = False, 0
        for i, c in enumerate(version):
            if c in ".-":
                if i == start:
                    self.current.append(0)
                else:
                    self.add(digits, version[start:i])
                start = i + 1
                if c == "-":
                    self.nest()
            elif c.isdecimal():  # Java's Character.isDigit
                if not digits and i > start:  # letters then digits: X1 is [X, [1]]
                    if self.current:  # MNG-7644: 1.0.0.X1 < 1.0.0-X2
                        self.nest()
                    self.current.append(_qualifier(version[start:i], True))
                    start = i
                    self.nest()
                digits = True
            else:
                if digits and i > start:  # digits then letters: 1a is [1, [a]]
                    self.add(True, version[start:i])
                    start = i
                    self.nest()
                digits = False
        if len(version) > start:
            if not digits and self.current:  # MNG-7644: treat a trailing .X as -X
                self.nest()
            self.add(digits, version[start:])
        while self.stack:
            _normalize(self.stack.pop())
        return self.root


@lru_cache(maxsize=65536)
def _parse(version: str) -> tuple[list]:
    return (_Parser().parse(version.lower()),)  # a tuple: the cached list is never handed out


def compare(a: str, b: str) -> int:
    return _cmp(_parse(a)[0], _parse(b)[0])


def is_valid(text: str) -> bool:
    """A version advisories can be compared with. ComparableVersion orders any string, so the
    rules are Maven's own model-validator ones (no ``${…}`` expression, none of
    ``\\/:"<>|?*``, no whitespace), no range syntax, not the meta-versions ``LATEST`` /
    ``RELEASE``, and at least one digit: a bare word (``dev``, ``unknown``) parses to a lone
    qualifier, which ComparableVersion puts above ``0`` and below ``0.0.1`` — inside every
    range that starts at 0, the very accident an invalid version must not cause."""
    text = text.strip()
    return bool(text) and "${" not in text and not _BANNED.search(text) \
        and text.lower() not in _META and any(c.isdecimal() for c in text)
