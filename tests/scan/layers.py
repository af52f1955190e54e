"""Build image layers for tests: tar streams written in memory, optionally gzip/zstd."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zlib

Entry = bytes | tuple  # bytes: a regular file; ("link", target) | ("hardlink", target) | ("dir",)
#                       | ("exec", bytes): an executable file


def tar_bytes(entries: dict[str, Entry], *, compress: str = "gzip",
              raw_members: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, entry in entries.items():
            info = tarfile.TarInfo(path)
            info.mtime = 1_700_000_000
            if isinstance(entry, bytes):
                info.size = len(entry)
                tar.addfile(info, io.BytesIO(entry))
            elif entry[0] == "link":
                info.type, info.linkname = tarfile.SYMTYPE, entry[1]
                tar.addfile(info)
            elif entry[0] == "exec":
                info.size, info.mode = len(entry[1]), 0o755
                tar.addfile(info, io.BytesIO(entry[1]))
            elif entry[0] == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, entry[1]
                tar.addfile(info)
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
        for info in raw_members or []:
            tar.addfile(info, io.BytesIO(b"\0" * info.size) if info.isfile() else None)
    data = buf.getvalue()
    if compress == "gzip":
        return gzip.compress(data, mtime=0)
    if compress == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return data


def dpkg_status(*packages: tuple[str, str, str | None]) -> bytes:
    """A dpkg status file with (name, version, source field or None) stanzas."""
    out = []
    for name, version, source in packages:
        out.append(f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\n"
                   + (f"Source: {source}\n" if source else "") + f"Version: {version}\n"
                   + "Description: test\n multi-line\n")
    return "\n".join(out).encode()


def apk_installed(*packages: tuple[str, str, str]) -> bytes:
    return "".join(f"C:Q1abc=\nP:{n}\nV:{v}\nA:x86_64\no:{o}\nL:MIT\n\n"
                   for n, v, o in packages).encode()


def dist_info(name: str, version: str) -> dict[str, bytes]:
    return {f"usr/lib/python3/site-packages/{name}-{version}.dist-info/METADATA":
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody: x\n".encode()}


def node_module(name: str, version: str, root: str = "app") -> dict[str, bytes]:
    return {f"{root}/node_modules/{name}/package.json":
            f'{{"name": "{name}", "version": "{version}"}}'.encode()}


DEBIAN_12_OS = {"etc/os-release": ("link", "../usr/lib/os-release"),
                "usr/lib/os-release": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian '
                b'GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\n'
                b'ID=debian\n'}
ALPINE_OS = {"etc/os-release": b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.10.9\n',
             "etc/alpine-release": b"3.10.9\n"}


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def go_binary(go_version: str, modinfo_lines: list[str], pad: int = 5000) -> bytes:
    """A stand-in ELF executable carrying Go >= 1.18 build info (debug/buildinfo layout)."""
    sentinel = b"0123456789abcdef"
    modinfo = sentinel + "\n".join(modinfo_lines).encode() + b"\n" + sentinel
    head = b"\x7fELF" + b"\0" * (pad - 4)
    head += b"\0" * (-len(head) % 16)
    info = (b"\xff Go buildinf:" + bytes([8, 2]) + b"\0" * 16 + _uvarint(len(go_version))
            + go_version.encode() + _uvarint(len(modinfo)) + modinfo)
    return head + info + b"\0" * 2000


def special(name: str, kind: bytes, major: int = 0, minor: int = 0) -> tarfile.TarInfo:
    """A device node or FIFO member (tarfile writes the header; nothing is created)."""
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor, info.mode = kind, major, minor, 0o666
    return info


# What debootstrap leaves in /dev of a root filesystem (a docker import of it keeps them).
DEBOOTSTRAP_DEV = [special("dev/null", tarfile.CHRTYPE, 1, 3),
                   special("dev/zero", tarfile.CHRTYPE, 1, 5),
                   special("dev/random", tarfile.CHRTYPE, 1, 8),
                   special("dev/tty", tarfile.CHRTYPE, 5, 0),
                   special("dev/console", tarfile.CHRTYPE, 5, 1),
                   special("dev/sda", tarfile.BLKTYPE, 8, 0),
                   special("run/initctl", tarfile.FIFOTYPE)]


def dpkg_list(*paths: str) -> bytes:
    """A ``var/lib/dpkg/info/<pkg>.list`` file: absolute paths, directories included."""
    return "".join(f"{p}\n" for p in paths).encode()


def python_metadata(root: str, name: str, version: str, *, egg: bool = False) -> dict[str, bytes]:
    """``<root>/<name>-<version>.dist-info/METADATA`` (or ``.egg-info/PKG-INFO``)."""
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody\n".encode()
    tail = ".egg-info/PKG-INFO" if egg else ".dist-info/METADATA"
    return {f"{root}/{name}-{version}{tail}": meta}


def gzip_bomb(size: int, name: str = "zeros", *, extra: dict[str, bytes] | None = None) -> bytes:
    """A gzip layer holding one tar member of ``size`` zero bytes (then the ``extra`` files), at
    about 1,000:1 (deflate's ceiling). Built streaming and fast: one MiB of zeros is deflated
    once, ending in a full flush (which resets the compressor, so the same input gives the
    same bytes), and that block is repeated; only the CRC walks all ``size`` bytes."""
    chunk, out = bytes(1 << 20), io.BytesIO()
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, 1_700_000_000
    head = info.tobuf(tarfile.PAX_FORMAT)
    rest = io.BytesIO()
    with tarfile.open(fileobj=rest, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in (extra or {}).items():
            member = tarfile.TarInfo(path)
            member.size, member.mtime = len(data), 1_700_000_000
            tar.addfile(member, io.BytesIO(data))
    # the last partial MiB, the member's padding, the extra members, the end-of-archive blocks
    tail = bytes(size % len(chunk) + -size % 512) + rest.getvalue()
    z = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate inside a gzip header + trailer
    out.write(b"\x1f\x8b\x08\0\0\0\0\0\x02\xff" + z.compress(head) + z.flush(zlib.Z_FULL_FLUSH))
    block = z.compress(chunk) + z.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    for _ in range(size // len(chunk)):
        out.write(block)
        crc = zlib.crc32(chunk, crc)
    out.write(z.compress(tail) + z.flush())
    total = len(head) + size // len(chunk) * len(chunk) + len(tail)
    out.write(struct.pack("<II", zlib.crc32(tail, crc), total & 0xFFFFFFFF))
    return out.getvalue()


def rpm_header(tags: dict[int, str | int | list]) -> bytes:
    """An rpm header blob (region form, as rpmdb.sqlite stores it): STRING, INT32,
    STRING_ARRAY (list of str) and INT32 arrays (list of int)."""
    import struct

    index, store = b"", b""
    for tag, value in tags.items():
        items = value if isinstance(value, list) else [value]
        if all(isinstance(v, int) for v in items):
            store += b"\0" * (-len(store) % 4)
            index += struct.pack(">IIiI", tag, 4, len(store), len(items))
            store += struct.pack(f">{len(items)}i", *items)
        else:
            kind = 8 if isinstance(value, list) else 6
            index += struct.pack(">IIiI", tag, kind, len(store), len(items))
            store += b"".join(v.encode() + b"\0" for v in items)
    return struct.pack(">II", len(tags), len(store)) + index + store


def rpmdb(*headers: bytes) -> bytes:
    """The bytes of an ``rpmdb.sqlite`` whose Packages table holds ``headers``."""
    import os
    import sqlite3
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".sqlite")
    os.close(fd)
    try:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
        conn.executemany("INSERT INTO Packages (blob) VALUES (?)", [(h,) for h in headers])
        conn.commit()
        conn.close()
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)
