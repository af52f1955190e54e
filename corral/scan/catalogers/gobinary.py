"""Go binaries: the build info the Go linker embeds (``debug/buildinfo``, Go ≥ 1.18 layout).

    "\\xff Go buildinf:" (14 bytes, 16-byte aligned) | ptr size | flags (bit 1: inline strings)
    | 16 bytes of pointers (unused inline) | uvarint len + Go version | uvarint len + modinfo

modinfo lines: ``path``, ``mod <path> <version> <sum>``, ``dep <path> <version> <sum>``, ``=>
<replacement> <version> <sum>`` (replaces the line before), ``build k=v``. Packages: every
dependency (replacement applied), the main module when it has a real version, and ``stdlib`` at
the Go version (the OSV Go ecosystem's name for the standard library). Older pointer-based
build info (Go < 1.18) is reported as not read.

The layer reader hands this module only regular executable files that start like an ELF,
Mach-O or PE binary, and keeps just the bytes after the magic.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from corral.scan.packages import Package

MAGIC = b"\xff Go buildinf:"
BINARY_MAGICS = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"MZ")
CHUNK = 1 << 20
KEEP = 1 << 20  # bytes kept after the magic: version + modinfo (a big module graph is ~100 KB)


def find(reader: BinaryIO) -> bytes | None:
    """Read a binary's stream; the build info blob (magic onward), or None."""
    head = reader.read(CHUNK)
    if not head.startswith(BINARY_MAGICS):
        return None
    buf, offset = head, 0  # offset: the file position of buf[0]
    while True:
        at = buf.find(MAGIC)
        while at != -1 and (offset + at) % 16:
            at = buf.find(MAGIC, at + 1)
        if at != -1:
            blob = buf[at:at + KEEP]
            while len(blob) < KEEP:
                more = reader.read(KEEP - len(blob))
                if not more:
                    break
                blob += more
            return blob
        more = reader.read(CHUNK)
        if not more:
            return None
        keep = len(MAGIC) + 16
        offset += len(buf) - keep
        buf = buf[-keep:] + more


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint in Go build info")


def _string(data: bytes, pos: int) -> tuple[str, int]:
    n, pos = _uvarint(data, pos)
    if pos + n > len(data):
        raise ValueError("Go build info string runs past the captured bytes")
    return data[pos:pos + n].decode("utf-8", "replace"), pos + n


def parse(path: str, blob: bytes) -> list[Package]:
    if len(blob) < 32 or not blob.startswith(MAGIC):
        return []
    if not blob[15] & 2:
        raise ValueError("pre-Go 1.18 (pointer-based) build info is not read yet")
    version, pos = _string(blob, 32)
    modinfo, _ = _string(blob, pos)
    if len(modinfo) >= 33 and modinfo[-17] == "\n":
        modinfo = modinfo[16:-16]  # strip the infoStart / infoEnd sentinels
    out: list[Package] = []
    deps: list[list[str]] = []
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if fields[0] in ("mod", "dep") and len(fields) >= 3:
            deps.append(fields)
        elif fields[0] == "=>" and len(fields) >= 3 and deps:
            deps[-1] = [deps[-1][0], fields[1], fields[2]]
    for kind, module, mod_version, *_ in deps:
        if mod_version in ("(devel)", "") or (kind == "mod" and not mod_version.startswith("v")):
            continue
        out.append(Package("go-module", module, mod_version, path))
    stdlib = go_tag_to_semver(version)
    if stdlib:
        out.append(Package("go-module", "stdlib", stdlib, path))
    return out


# x/vuln's tagRegexp: major.minor, the patch (or none), a beta / rc / -pre prerelease
_GO_TAG = re.compile(r"go(\d+\.\d+)(\.\d+|)((beta|rc|-pre)(\d+))?")


def go_tag_to_semver(tag: str) -> str:
    """A Go toolchain tag as the OSV Go ecosystem writes ``stdlib`` versions — x/vuln's
    GoTagToSemver: ``go1.21rc2`` -> ``v1.21.0-rc.2``, ``go1.20`` -> ``v1.20.0``, ``go1`` ->
    ``v1.0.0``; "" when it is no release tag (``devel …``). Words after the tag
    (``X:boringcrypto``) are dropped, and so is a vendor suffix (``go1.21.5-bigcorp``)."""
    words = tag.split()
    if not words or words[0] == "go1.0":
        return ""
    if words[0] == "go1":
        return "v1.0.0"
    m = _GO_TAG.fullmatch(words[0]) or _GO_TAG.fullmatch(words[0].split("-")[0])
    if m is None:
        return ""
    version = "v" + m[1] + (m[2] or ".0")
    if m[3]:
        version += ("" if m[4].startswith("-") else "-") + m[4] + "." + m[5]
    return version
