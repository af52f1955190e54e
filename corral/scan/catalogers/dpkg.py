"""dpkg databases: ``var/lib/dpkg/status`` and distroless ``var/lib/dpkg/status.d/*``.

RFC 822 stanzas; only installed packages count (a ``Status`` whose last word is
``installed``; distroless files have no Status). ``Source: name (version)`` names the source
package advisories are keyed by; without it the source is the binary name and version.

File lists: ``var/lib/dpkg/info/<package>[:<arch>].list`` holds one absolute path per line,
every file and directory the package installed. They say which language packages (a pip,
setuptools or node module shipped as a .deb) belong to an OS package (see inventory.py).
"""

from __future__ import annotations

import re

from corral.scan.packages import Package

_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")


def matches(path: str) -> bool:
    if path.endswith("var/lib/dpkg/status"):
        return True
    head, _, base = path.rpartition("/")
    return head.endswith("var/lib/dpkg/status.d") and not base.endswith(".md5sums")


def matches_list(path: str) -> bool:
    head, _, base = path.rpartition("/")
    return head.endswith("var/lib/dpkg/info") and base.endswith(".list") and len(base) > 5


def files(path: str, data: bytes) -> dict[str, list[str]]:
    """{package name: the paths (relative to the image root) its ``.list`` file names}."""
    name = path.rpartition("/")[2].removesuffix(".list").partition(":")[0]
    paths = [line.strip().lstrip("/") for line in data.decode("utf-8", "replace").splitlines()]
    return {name: [p for p in paths if p]}


def stanzas(text: str):
    fields: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t":
            if last:
                fields[last] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            last = key.strip()
            fields[last] = value.strip()
    if fields:
        yield fields


def parse(path: str, data: bytes) -> list[Package]:
    out = []
    for f in stanzas(data.decode("utf-8", "replace")):
        name, version = f.get("Package"), f.get("Version")
        if not name or not version:
            continue
        status = f.get("Status")
        if status is not None and status.split()[-1:] != ["installed"]:
            continue
        src_name, src_version = name, version
        m = _SOURCE.match(f.get("Source", ""))
        if m:
            src_name, src_version = m[1], m[2] or version
        out.append(Package("deb", name, version, path, src_name, src_version,
                           arch=f.get("Architecture", "")))
    return out
