"""PEP 440 ordering via ``packaging.version``; non-PEP 440 strings (legacy versions that
``packaging`` no longer parses) sort before every valid version and by text among themselves,
so a malformed installed version never matches a range by accident of parsing."""

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
