"""Installed npm packages: ``node_modules/<name>/package.json`` and
``node_modules/@scope/<name>/package.json`` (the package's own name and version; lock files
are not read in image scans)."""

from __future__ import annotations

import json

from corral.scan.packages import Package


def matches(path: str) -> bool:
    if not path.endswith("/package.json"):
        return False
    parts = path.split("/")
    return (len(parts) >= 3 and parts[-3] == "node_modules") or (
        len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@"))


def parse(path: str, data: bytes) -> list[Package]:
    doc = json.loads(data)
    if not isinstance(doc, dict):
        return []
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return []
    licence = doc.get("license")
    return [Package("npm", name, version, path,
                    licenses=[licence] if isinstance(licence, str) else [])]
