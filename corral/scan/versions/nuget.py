"""NuGet version ordering (NuGet.Versioning's ``NuGetVersion`` and ``VersionComparer.Default``).

``MAJOR[.MINOR[.PATCH[.REVISION]]][-label(.label)*][+metadata]``: one to four numeric parts,
like ``System.Version`` (missing parts are 0, so ``1.0 == 1.0.0 == 1.0.0.0`` and ``4.0.0.1 <
4.0.0.2``), then SemVer 2.0 release labels, then build metadata, which never affects order.

Comparison: the four numbers, then a version without labels beats one with labels; labels
compare one by one — both numeric: as numbers; one numeric: it sorts first; otherwise
case-insensitively by ordinal (so ``beta10 < beta2``, as NuGet orders legacy SemVer 1 labels);
with equal labels so far the version with more labels is greater. A string that does not parse
raises ``ValueError``; :func:`is_valid` says whether it parses.
"""

from __future__ import annotations

import re
from functools import lru_cache

_LABELS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_NUGET = re.compile(rf"^([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:\.([0-9]+))?"
                    rf"(?:-({_LABELS}))?(?:\+{_LABELS})?$")
_INT32 = 2**31 - 1  # System.Version parts are Int32


@lru_cache(maxsize=65536)
def parse(text: str) -> tuple[tuple[int, int, int, int], tuple[str, ...]]:
    m = _NUGET.match(text.strip())
    if not m or any(int(p) > _INT32 for p in m.groups()[:4] if p):
        raise ValueError(f"not a NuGet version: {text!r}")
    numbers = tuple(int(p or 0) for p in m.groups()[:4])
    labels = tuple(m[5].split(".")) if m[5] else ()
    return numbers, labels  # type: ignore[return-value]


def _label_cmp(a: str, b: str) -> int:
    if a.isdigit() and b.isdigit():
        x, y = int(a), int(b)
    elif a.isdigit() or b.isdigit():
        return -1 if a.isdigit() else 1
    else:
        x, y = a.upper(), b.upper()  # StringComparison.OrdinalIgnoreCase
    return (x > y) - (x < y)


def compare(a: str, b: str) -> int:
    (na, la), (nb, lb) = parse(a), parse(b)
    if na != nb:
        return -1 if na < nb else 1
    if not la or not lb:  # a release outranks its pre-releases
        return (not la) - (not lb)
    for x, y in zip(la, lb, strict=False):
        if c := _label_cmp(x, y):
            return c
    return (len(la) > len(lb)) - (len(la) < len(lb))


def is_valid(text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True
