"""Per-layer inventories and their merge into the image's inventory.

A layer's inventory is what the catalogers found in that layer alone, plus what the layer
deletes; it depends only on the layer's bytes, so it is cached by layer digest (and
``catalogers.VERSION``). The merge replays layers in order like an overlay filesystem
(Trivy's ApplyLayers): opaque directories and whiteouts remove lower-layer paths, then the
layer's own files land. A package's layer is the first layer from which it is continuously
present (Inspector's ``sourceLayerHash``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from corral.scan import catalogers
from corral.scan.catalogers import gobinary, os_release
from corral.scan.layers import LayerContents, LayerError
from corral.scan.packages import LANGUAGE_ECOSYSTEM, Package

MAX_LINK_HOPS = 40  # Linux's MAXSYMLINKS


def layer_inventory(contents: LayerContents) -> dict[str, Any]:
    files, notes = {}, list(contents.notes)
    for path, data in sorted(contents.files.items()):
        parsed = catalogers.parse(path, data)
        files[path] = {"packages": [p.to_json() for p in parsed.packages], "os": parsed.os}
        notes += parsed.notes
    for path, blob in sorted(contents.binaries.items()):
        try:
            found = gobinary.parse(path, blob)
        except ValueError as e:
            notes.append(f"{path}: {e}")
            continue
        if found:
            files[path] = {"packages": [p.to_json() for p in found], "os": None}
    return {"files": files, "symlinks": dict(sorted(contents.symlinks.items())),
            "whiteouts": sorted(contents.whiteouts), "opaque": sorted(contents.opaque),
            "notes": notes}


@dataclass
class ImageInventory:
    os: dict[str, str] | None
    packages: list[Package]
    notes: list[str] = field(default_factory=list)

    @property
    def os_ecosystem(self) -> str | None:
        return os_release.ecosystem(self.os)

    def ecosystem_of(self, pkg: Package) -> str | None:
        return LANGUAGE_ECOSYSTEM.get(pkg.type) or self.os_ecosystem

    def to_json(self) -> dict[str, Any]:
        return {"os": self.os, "packages": [p.to_json() for p in self.packages],
                "notes": self.notes}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImageInventory:
        return cls(doc.get("os"), [Package.from_json(p) for p in doc.get("packages", [])],
                   doc.get("notes", []))


def _remove_under(tree: dict[str, Any], prefix: str) -> None:
    if not prefix:
        tree.clear()
        return
    for path in [p for p in tree if p.startswith(prefix + "/")]:
        del tree[path]


def _resolve(tree: dict[str, Any], path: str, *, strict: bool) -> tuple[str, dict] | None:
    """The file a path names, following symlinks inside the image; None when dangling."""
    seen = 0
    while True:
        node = tree.get(path)
        if node is None:
            return None
        _, kind, payload = node
        if kind == "file":
            return path, payload
        seen += 1
        if seen > MAX_LINK_HOPS:
            if strict:
                raise LayerError(f"symlink loop at {path!r}")
            return None
        target = payload if payload.startswith("/") else posixpath.join(
            posixpath.dirname(path), payload)
        path = posixpath.normpath("/" + target).lstrip("/")


def _present(tree: dict[str, Any], *, strict: bool) -> tuple[dict, dict | None]:
    packages: dict[tuple, Package] = {}
    best_os = None
    for path in sorted(tree):
        found = _resolve(tree, path, strict=strict)
        if found is None:
            continue
        _, entry = found
        for doc in entry["packages"]:
            pkg = Package.from_json(doc)
            packages.setdefault(pkg.identity, pkg)
        os_info = entry.get("os")
        if os_info and (best_os is None or os_release.rank(os_info) < os_release.rank(best_os)):
            best_os = os_info
    return packages, best_os


def merge(layers: list[tuple[str, dict[str, Any]]]) -> ImageInventory:
    """Merge (layer digest, layer inventory) pairs, lowest layer first."""
    tree: dict[str, tuple[int, str, Any]] = {}
    origin: dict[tuple, str] = {}
    notes: list[str] = []
    for index, (digest, inv) in enumerate(layers):
        for directory in inv["opaque"]:
            _remove_under(tree, directory)
        for path in inv["whiteouts"]:
            tree.pop(path, None)
            _remove_under(tree, path)
        for path, entry in inv["files"].items():
            tree[path] = (index, "file", entry)
        for path, target in inv["symlinks"].items():
            tree[path] = (index, "link", target)
        notes += [f"{digest[:19]}: {n}" for n in inv.get("notes", [])]
        present, _ = _present(tree, strict=False)
        origin = {key: origin.get(key, digest) for key in present}
    packages, os_info = _present(tree, strict=True)
    out = []
    for key, pkg in packages.items():
        pkg.layer = origin.get(key, layers[-1][0] if layers else "")
        out.append(pkg)
    out.sort(key=lambda p: (p.type, p.name, p.version, p.path))
    return ImageInventory(os_info, out, notes)
