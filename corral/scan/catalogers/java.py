"""Java archives (``.jar``, ``.war``, ``.ear``, ``.par``, ``.sar``, ``.nar``, ``.jpi``, ``.hpi``):
``META-INF/maven/<group>/<artifact>/pom.properties`` (groupId, artifactId, version), nested
archives (Spring Boot ``BOOT-INF/lib``, WAR ``WEB-INF/lib``) to a small depth; the
``MANIFEST.MF`` ``Implementation-*`` fields when an archive has no pom.properties. Maven
package names are ``groupId:artifactId`` (the OSV Maven ecosystem's names)."""

from __future__ import annotations

import io
import zipfile

from corral.scan.packages import Package

SUFFIXES = (".jar", ".war", ".ear", ".par", ".sar", ".nar", ".jpi", ".hpi")
MAX_DEPTH = 3
MAX_NESTED = 64 * 1024 * 1024  # bytes of one nested archive read into memory


def matches(path: str) -> bool:
    return path.lower().endswith(SUFFIXES)


def _props(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith(("#", "!")):
            out[key.strip()] = value.strip()
    return out


def _manifest(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _walk(archive: zipfile.ZipFile, path: str, depth: int) -> list[Package]:
    out: list[Package] = []
    names = archive.namelist()
    for name in names:
        if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
            p = _props(archive.read(name).decode("utf-8", "replace"))
            if p.get("groupId") and p.get("artifactId") and p.get("version"):
                out.append(Package("java-archive", f"{p['groupId']}:{p['artifactId']}",
                                   p["version"], path))
    if not out and "META-INF/MANIFEST.MF" in names:
        m = _manifest(archive.read("META-INF/MANIFEST.MF").decode("utf-8", "replace"))
        group = m.get("Implementation-Vendor-Id") or m.get("Bundle-SymbolicName", "")
        title = m.get("Implementation-Title") or m.get("Bundle-Name")
        version = m.get("Implementation-Version") or m.get("Bundle-Version")
        if group and title and version and " " not in title:
            out.append(Package("java-archive", f"{group}:{title}", version, path))
    if depth < MAX_DEPTH:
        for info in archive.infolist():
            if matches(info.filename) and info.file_size <= MAX_NESTED:
                try:
                    with zipfile.ZipFile(io.BytesIO(archive.read(info))) as inner:
                        out += _walk(inner, f"{path}:{info.filename}", depth + 1)
                except (zipfile.BadZipFile, ValueError, OSError):
                    continue
    return out


def parse(path: str, data: bytes) -> list[Package]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _walk(archive, path, 1)
    except zipfile.BadZipFile as e:
        raise ValueError(f"not a readable archive: {e}") from None
