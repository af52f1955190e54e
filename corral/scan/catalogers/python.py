"""Installed Python distributions: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO`` and
single-file ``*.egg-info`` (core metadata, RFC 822 headers ``Name`` and ``Version``)."""

from __future__ import annotations

from corral.scan.packages import Package


def matches(path: str) -> bool:
    return (path.endswith(".dist-info/METADATA") or path.endswith(".egg-info/PKG-INFO")
            or path.endswith("EGG-INFO/PKG-INFO") or path.endswith(".egg-info"))


def parse(path: str, data: bytes) -> list[Package]:
    headers: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break  # the body (long description) starts after the first blank line
        key, sep, value = line.partition(":")
        if sep and not line[0].isspace():
            headers.setdefault(key.strip().lower(), value.strip())
    name, version = headers.get("name"), headers.get("version")
    if not name or not version:
        return []
    licence = headers.get("license", "")
    return [Package("python", name, version, path,
                    licenses=[licence] if licence and licence != "UNKNOWN" else [])]
