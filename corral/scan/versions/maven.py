"""Maven version ordering: ``ComparableVersion`` (maven-artifact), as its own tests define it.

A version parses into a list of items (integers, qualifier strings, sub-lists after a ``-``
between digits); trailing "null" items (0, "", empty list) are trimmed. Qualifiers order
``alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp``, unknown
qualifiers after all of them, lexically. ``a1``/``b1``/``m1`` are alpha/beta/milestone.
"""

from __future__ import annotations

from functools import lru_cache

QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
RELEASE = str(QUALIFIERS.index(""))


def _qualifier_key(q: str) -> str:
    return str(QUALIFIERS.index(q)) if q in QUALIFIERS else f"{len(QUALIFIERS)}-{q}"


class _Str:
    __slots__ = ("value",)

    def __init__(self, value: str, followed_by_digit: bool):
        if followed_by_digit and len(value) == 1:
            value = {"a": "alpha", "b": "beta", "m": "milestone"}.get(value, value)
        self.value = ALIASES.get(value, value)

    def is_null(self) -> bool:
        return _qualifier_key(self.value) == RELEASE


def _is_null(item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, list):
        return not item
    return item.is_null()


def _cmp(a, b) -> int:
    """Compare two items; ``None`` stands for a missing item."""
    if a is None:
        return 0 if b is None else -_cmp(b, None)
    if isinstance(a, int):
        if b is None:
            return 0 if a == 0 else 1
        if isinstance(b, int):
            return (a > b) - (a < b)
        return 1  # an integer beats a qualifier and a sub-list
    if isinstance(a, _Str):
        if b is None:
            ka, kb = _qualifier_key(a.value), RELEASE
        elif isinstance(b, _Str):
            ka, kb = _qualifier_key(a.value), _qualifier_key(b.value)
        else:
            return -1
        return (ka > kb) - (ka < kb)
    # a is a list
    if b is None:
        return _cmp(a[0], None) if a else 0
    if isinstance(b, int):
        return -1
    if isinstance(b, _Str):
        return 1
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else None
        right = b[i] if i < len(b) else None
        c = _cmp(left, right)
        if c:
            return c
    return 0


def _normalize(items: list) -> None:
    while items and _is_null(items[-1]):
        items.pop()


@lru_cache(maxsize=65536)
def _parse(version: str) -> tuple:
    version = version.lower()
    root: list = []
    current, stack = root, [root]
    is_digit, start = False, 0

    def item(text: str):
        return int(text) if is_digit else _Str(text, False)

    for i, c in enumerate(version):
        if c == ".":
            current.append(0 if i == start else item(version[start:i]))
            start = i + 1
        elif c == "-":
            current.append(0 if i == start else item(version[start:i]))
            start = i + 1
            if is_digit:
                _normalize(current)  # 1.0-* = 1-*
                if i + 1 < len(version) and version[i + 1].isdigit():
                    sub: list = []
                    current.append(sub)
                    current = sub
                    stack.append(sub)
        elif c.isdigit():
            if not is_digit and i > start:
                current.append(_Str(version[start:i], True))
                start = i
            is_digit = True
        else:
            if is_digit and i > start:
                current.append(int(version[start:i]))
                start = i
            is_digit = False
    if len(version) > start:
        current.append(item(version[start:]))
    while stack:
        _normalize(stack.pop())
    return (root,)


def compare(a: str, b: str) -> int:
    return _cmp(_parse(a)[0], _parse(b)[0])
