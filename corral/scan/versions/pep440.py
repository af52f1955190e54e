"""PEP 440 ordering via ``packaging.version``.

Non-PEP 440 strings (legacy versions ``packaging`` no longer parses) still get an order — before
every valid version, by text among themselves — because advisories contain some as range
events (``2.6.0-NA``, ``2024-09-25``) and osv.dev orders those the same way (legacy versions
first). An *installed* version must be valid: :func:`is_valid` is the gate corral.scan.osv
applies before any range is evaluated, so ``dev`` or ``5.x`` matches no range."""

from __future__ import annotations

from functools import lru_cache

from packaging.version import InvalidVersion, Version


@lru_cache(maxsize=65536)
def _key(text: str) -> tuple:
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def compare(a: str, b: str) -> int:
    ka, kb = _key(a), _key(b)
    if ka[0] != kb[0]:
        return -1 if ka[0] < kb[0] else 1
    return (ka[1] > kb[1]) - (ka[1] < kb[1])


def is_valid(text: str) -> bool:
    return _key(text)[0] == 1
