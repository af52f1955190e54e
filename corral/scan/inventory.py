"""Per-layer inventories and their merge into the image's inventory.

A layer's inventory is what the catalogers found in that layer alone, plus what the layer
deletes; it depends only on the layer's bytes, so it is cached by layer digest (and
``catalogers.VERSION``). The merge replays layers in order like an overlay filesystem
(Trivy's ApplyLayers): opaque directories and whiteouts remove lower-layer paths, then the
layer's own files land. A package's layer is the first layer from which it is continuously
present (Inspector's ``sourceLayerHash``).

Ownership (Syft's ownership-by-file-overlap, Grype's rule for acting on it): once the tree is
final, a language package whose defining file (its METADATA / PKG-INFO, package.json, jar) is
in the file list of an OS package still installed, and whose version that OS package's version
begins with, is marked ``owned_by`` that package (its ``Package.ref``: type, name and version,
so the SBOM nests it under that very package even when two share a type and name). The
distro's advisories speak for it — Debian backports fixes without changing the upstream
version (python3-setuptools 66.1.1-1+deb12u2 has the fixes for CVE-2024-6345 and
CVE-2025-47273) — so the matcher skips it, and the SBOM shows it inside its OS package. A pip
install over a distro package writes a new dist-info directory that no OS package lists, so it
stays matched.

Device nodes and FIFOs the layer reader skipped are counted per layer (``special``) and summed
into ``ImageInventory.skipped`` so the scan can say what it did not read; the scanner records
in ``ImageInventory.invalid`` the packages whose version their scheme rejects (matched by no
advisory range). Both are ``{"count": n, "names": [the first few]}``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from corral.scan import catalogers, layers
from corral.scan.catalogers import gobinary, os_release
from corral.scan.layers import LayerContents, LayerError
from corral.scan.packages import LANGUAGE_ECOSYSTEM, OS_TYPES, Package

MAX_LINK_HOPS = 40  # Linux's MAXSYMLINKS


def layer_inventory(contents: LayerContents) -> dict[str, Any]:
    files, notes = {}, list(contents.notes)
    for path, data in sorted(contents.files.items()):
        parsed = catalogers.parse(path, data)
        files[path] = {"packages": [p.to_json() for p in parsed.packages], "os": parsed.os}
        if parsed.owns:
            files[path]["owns"] = parsed.owns
        notes += parsed.notes
    for path, blob in sorted(contents.binaries.items()):
        try:
            found = gobinary.parse(path, blob)
        except ValueError as e:
            notes.append(f"{path}: {e}")
            continue
        if found:
            files[path] = {"packages": [p.to_json() for p in found], "os": None}
    special = {"count": contents.special_count, "names": list(contents.special)}
    if contents.special_count:
        notes.append(_skipped(special))
    out = {"files": files, "symlinks": dict(sorted(contents.symlinks.items())),
           "whiteouts": sorted(contents.whiteouts), "opaque": sorted(contents.opaque),
           "notes": notes}
    if contents.special_count:
        out["special"] = special
    return out


def name_count(names: list[str]) -> dict[str, Any]:
    """``{"count": n, "names": [the first few]}`` of a list to report; {} when empty."""
    return {"count": len(names), "names": names[:layers.SPECIAL_NAMES]} if names else {}


def _listing(counted: dict[str, Any]) -> str:
    names = counted.get("names", [])
    return ", ".join(names) + (", …" if counted["count"] > len(names) else "")


def _skipped(counted: dict[str, Any]) -> str:
    return (f"skipped {counted['count']} device nodes and FIFOs (never created or opened): "
            f"{_listing(counted)}")


@dataclass
class ImageInventory:
    os: dict[str, str] | None
    packages: list[Package]
    notes: list[str] = field(default_factory=list)
    # device nodes and FIFOs not read: {"count": n, "names": [the first few paths]}
    skipped: dict[str, Any] = field(default_factory=dict)
    # packages no advisory range can match: {"count": n, "names": ["Django dev", …]}
    invalid: dict[str, Any] = field(default_factory=dict)

    @property
    def status_note(self) -> str:
        """Sentences for the scan's status description on what was not read or cannot be
        matched; empty when there is nothing to say."""
        out = []
        if self.skipped.get("count"):
            text = _skipped(self.skipped)
            out.append(f"{text[0].upper()}{text[1:]}.")
        if self.invalid.get("count"):
            out.append(f"{self.invalid['count']} packages have versions that are not valid in "
                       f"their scheme and match no advisory: {_listing(self.invalid)}.")
        return " ".join(out)

    @property
    def os_ecosystem(self) -> str | None:
        return os_release.ecosystem(self.os)

    def ecosystem_of(self, pkg: Package) -> str | None:
        return LANGUAGE_ECOSYSTEM.get(pkg.type) or self.os_ecosystem

    def to_json(self) -> dict[str, Any]:
        out = {"os": self.os, "packages": [p.to_json() for p in self.packages],
               "notes": self.notes}
        if self.skipped:
            out["skipped"] = self.skipped
        if self.invalid:
            out["invalid"] = self.invalid
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImageInventory:
        return cls(doc.get("os"), [Package.from_json(p) for p in doc.get("packages", [])],
                   doc.get("notes", []), doc.get("skipped") or {}, doc.get("invalid") or {})


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


def _file_owners(tree: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """{language metadata path: (OS package type, name)} from the file lists still present."""
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(tree):
        _, kind, entry = tree[path]
        if kind != "file":
            continue
        for owned in entry.get("owns", ()):
            for owned_path in owned["paths"]:
                out.setdefault(owned_path, (owned["type"], owned["name"]))
    return out


def _same_upstream(os_version: str, version: str) -> bool:
    """Grype's guard, a little stricter: the OS package's upstream version is the language
    package's version, followed only by a packaging suffix (``66.1.1-1+deb12u2``,
    ``23.0.1+dfsg-1``, ``53.0.0-13.el9``, ``70.3.0-r0``). A listed file of another version
    means the files were replaced, and the language package keeps being matched."""
    upstream = os_version.partition(":")[2] if ":" in os_version else os_version
    if not version or not upstream.startswith(version):
        return False
    rest = upstream[len(version):]
    return not rest or rest[0] in "+-"


def _mark_owned(packages: list[Package], tree: dict[str, Any]) -> None:
    owners = _file_owners(tree)
    if not owners:
        return
    installed: dict[tuple[str, str], list[Package]] = {}
    for p in packages:
        if p.type in OS_TYPES:
            installed.setdefault((p.type, p.name), []).append(p)
    for pkg in packages:
        if pkg.type in OS_TYPES:
            continue
        key = owners.get(pkg.path.split(":", 1)[0])  # a nested jar: the archive on disk
        # Two OS packages of one type and name (installed twice, or two databases): the
        # first, in the sorted order, whose version is the language package's.
        candidates = installed.get(key, []) if key else []
        owner = next((o for o in candidates if _same_upstream(o.version, pkg.version)), None)
        if owner is not None:
            pkg.owned_by = owner.ref


def merge(docs: list[tuple[str, dict[str, Any]]]) -> ImageInventory:
    """Merge (layer digest, layer inventory) pairs, lowest layer first."""
    tree: dict[str, tuple[int, str, Any]] = {}
    origin: dict[tuple, str] = {}
    notes: list[str] = []
    skipped: dict[str, Any] = {}
    for index, (digest, inv) in enumerate(docs):
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
        if inv.get("special"):
            skipped["count"] = skipped.get("count", 0) + inv["special"]["count"]
            names = skipped.setdefault("names", [])
            names += inv["special"]["names"][:layers.SPECIAL_NAMES - len(names)]
        present, _ = _present(tree, strict=False)
        origin = {key: origin.get(key, digest) for key in present}
    packages, os_info = _present(tree, strict=True)
    out = []
    for key, pkg in packages.items():
        pkg.layer = origin.get(key, docs[-1][0] if docs else "")
        out.append(pkg)
    out.sort(key=lambda p: (p.type, p.name, p.version, p.path))
    _mark_owned(out, tree)
    return ImageInventory(os_info, out, notes, skipped)
