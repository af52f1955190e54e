"""rpm databases: SQLite ``rpmdb.sqlite`` (RHEL 9, Fedora ≥ 33, AL2023) — each ``Packages`` row
is an RPM header blob (index entries + data store). Berkeley DB ``Packages`` (RHEL ≤ 8) and
NDB are recognised and reported as not read yet.

Source package from ``SOURCERPM`` (``name-version-release.src.rpm``); the binary's epoch is
used as the source epoch (Trivy's rule). File lists from ``DIRNAMES`` + ``BASENAMES`` indexed
by ``DIRINDEXES`` (or the old flat ``OLDFILENAMES``): they say which language packages an rpm
installed (see inventory.py).
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
OLDFILENAMES, DIRINDEXES, BASENAMES, DIRNAMES = 1027, 1116, 1117, 1118
STRING, INT32, STRING_ARRAY, I18NSTRING = 6, 4, 8, 9
MAX_FILES = 1_000_000  # entries of one header's file arrays


def matches(path: str) -> bool:
    return path.endswith(SQLITE_PATHS) or path.endswith(BDB_PATHS)


def _strings(blob: bytes, at: int, count: int, end: int) -> list[str]:
    out = []
    for _ in range(min(count, MAX_FILES)):
        stop = blob.find(b"\0", at, end)
        if stop < 0:
            break  # a damaged array keeps what it had: the package itself still counts
        out.append(blob[at:stop].decode("utf-8", "replace"))
        at = stop + 1
    return out


def header(blob: bytes) -> dict[int, object]:
    """Tags of one header blob (the region form stored in rpmdb.sqlite). Strings and single
    integers as values; STRING_ARRAY and multi-value INT32 tags as lists."""
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
        if typ == STRING_ARRAY:
            out[tag] = _strings(blob, at, count, store + dl)
        elif typ in (STRING, I18NSTRING):
            end = blob.index(b"\0", at)
            out[tag] = blob[at:end].decode("utf-8", "replace")
        elif typ == INT32 and count == 1:
            out[tag] = struct.unpack_from(">i", blob, at)[0]
        elif typ == INT32 and count:
            n = min(count, MAX_FILES, (len(blob) - at) // 4)
            out[tag] = list(struct.unpack_from(f">{n}i", blob, at))
    return out


def _list_of(value: object, kind: type) -> list | None:
    """``value`` when it is a list of ``kind`` (a damaged header may type any tag wrongly)."""
    if isinstance(value, list) and all(isinstance(v, kind) for v in value):
        return value
    return None


def file_names(h: dict[int, object]) -> list[str]:
    """The paths a package installed, relative to the image root; [] when the header's file
    tags are missing or of the wrong types."""
    index = h.get(DIRINDEXES)
    dirs, bases = _list_of(h.get(DIRNAMES), str), _list_of(h.get(BASENAMES), str)
    index = _list_of([index] if isinstance(index, int) else index, int)
    if dirs is not None and bases is not None and index is not None:
        return [(dirs[i] + b).lstrip("/") for i, b in zip(index, bases, strict=False)
                if 0 <= i < len(dirs)]
    old = _list_of(h.get(OLDFILENAMES), str)
    return [p.lstrip("/") for p in old] if old is not None else []


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
    return [pkg for pkg, _ in catalog(path, data)]


def catalog(path: str, data: bytes) -> list[tuple[Package, list[str]]]:
    """Every package of the database with the files it installed."""
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
            h = header(bytes(blob))
            pkg = package(h, path)
            if pkg:
                out.append((pkg, file_names(h)))
        except (ValueError, struct.error):
            continue  # one damaged header: the other packages still count
    return out
