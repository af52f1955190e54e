"""rpm databases: SQLite ``rpmdb.sqlite`` (RHEL 9, Fedora ≥ 33, AL2023) — each ``Packages`` row
is an RPM header blob (index entries + data store). Berkeley DB ``Packages`` (RHEL ≤ 8) and
NDB are recognised and reported as not read yet.

Source package from ``SOURCERPM`` (``name-version-release.src.rpm``); the binary's epoch is
used as the source epoch (Trivy's rule).
"""

from __future__ import annotations

import os
import sqlite3
import struct
import tempfile

from corral.scan.packages import Package

SQLITE_PATHS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
BDB_PATHS = ("var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages")
NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM, LICENSE = 1000, 1001, 1002, 1003, 1022, 1044, 1014
STRING, INT32, STRING_ARRAY, I18NSTRING = 6, 4, 8, 9


def matches(path: str) -> bool:
    return path.endswith(SQLITE_PATHS) or path.endswith(BDB_PATHS)


def header(blob: bytes) -> dict[int, object]:
    """Tags of one header blob (the region form stored in rpmdb.sqlite)."""
    il, dl = struct.unpack_from(">II", blob, 0)
    if il > 100_000 or 8 + 16 * il + dl > len(blob):
        raise ValueError("rpm header index is larger than its blob")
    store = 8 + 16 * il
    out: dict[int, object] = {}
    for i in range(il):
        tag, typ, offset, count = struct.unpack_from(">IIiI", blob, 8 + 16 * i)
        if not 0 <= offset < dl:
            continue
        at = store + offset
        if typ in (STRING, STRING_ARRAY, I18NSTRING):
            end = blob.index(b"\0", at)
            out[tag] = blob[at:end].decode("utf-8", "replace")
        elif typ == INT32 and count:
            out[tag] = struct.unpack_from(">i", blob, at)[0]
    return out


def _source(srpm: str) -> tuple[str, str]:
    base = srpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    name_ver, _, release = base.rpartition("-")
    name, _, version = name_ver.rpartition("-")
    return (name, f"{version}-{release}") if name and version else ("", "")


def package(h: dict[int, object], path: str) -> Package | None:
    name, version, release = h.get(NAME), h.get(VERSION), h.get(RELEASE)
    if not isinstance(name, str) or not isinstance(version, str) or name == "gpg-pubkey":
        return None
    epoch = h.get(EPOCH) if isinstance(h.get(EPOCH), int) else None
    evr = (f"{epoch}:" if epoch else "") + version + (f"-{release}" if release else "")
    src_name, src_vr = _source(str(h.get(SOURCERPM) or ""))
    src_version = ((f"{epoch}:" if epoch else "") + src_vr) if src_vr else evr
    licence = h.get(LICENSE)
    return Package("rpm", name, evr, path, src_name or name, src_version,
                   arch=str(h.get(ARCH) or ""), epoch=epoch, release=str(release or ""),
                   licenses=[licence] if isinstance(licence, str) else [])


def parse(path: str, data: bytes) -> list[Package]:
    if not path.endswith("rpmdb.sqlite"):
        raise ValueError("Berkeley DB / NDB rpm databases are not read yet")
    # sqlite3 needs a file: a private temporary copy in the scratch area, removed at once.
    fd, tmp = tempfile.mkstemp(prefix="corral-rpmdb-", suffix=".sqlite")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        conn = sqlite3.connect(f"file:{tmp}?mode=ro&immutable=1", uri=True)
        try:
            rows = conn.execute("SELECT blob FROM Packages").fetchall()
        except sqlite3.DatabaseError as e:
            raise ValueError(f"not an rpm sqlite database: {e}") from None
        finally:
            conn.close()
    finally:
        os.unlink(tmp)
    out = []
    for (blob,) in rows:
        try:
            pkg = package(header(bytes(blob)), path)
        except (ValueError, struct.error):
            continue
        if pkg:
            out.append(pkg)
    return out
