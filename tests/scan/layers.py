"""Build image layers for tests: tar streams written in memory, optionally gzip/zstd."""

from __future__ import annotations

import gzip
import io
import tarfile

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
