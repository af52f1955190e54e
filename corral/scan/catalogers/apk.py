"""apk database ``lib/apk/db/installed``: ``P:`` name, ``V:`` version, ``o:`` origin (the
source package), ``A:`` arch, ``L:`` licence; a blank line ends a record. Every entry is
installed; duplicate names are kept once (as Trivy does).

File lists are in the same records: ``F:`` names a directory and each ``R:`` after it a file
in that directory (apk-tools' ``apk_db_index_read``)."""

from __future__ import annotations

from corral.scan.packages import Package


def matches(path: str) -> bool:
    return path.endswith("lib/apk/db/installed")


def files(path: str, data: bytes) -> dict[str, list[str]]:
    """{package name: the files its record lists, relative to the image root}."""
    out: dict[str, list[str]] = {}
    name, directory = "", ""
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            name, directory = "", ""
        elif line.startswith("P:"):
            name = line[2:].strip()
        elif line.startswith("F:"):
            directory = line[2:].strip().strip("/")
        elif line.startswith("R:") and name:
            base = line[2:].strip()
            out.setdefault(name, []).append(f"{directory}/{base}" if directory else base)
    return out


def parse(path: str, data: bytes) -> list[Package]:
    out: dict[str, Package] = {}
    record: dict[str, str] = {}

    def flush() -> None:
        if record.get("P") and record.get("V"):
            out.setdefault(record["P"], Package(
                "apk", record["P"], record["V"], path, record.get("o", ""), record["V"],
                arch=record.get("A", ""), licenses=[record["L"]] if record.get("L") else []))
        record.clear()

    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            flush()
        elif len(line) > 1 and line[1] == ":" and line[0] in "PVoAL":
            record.setdefault(line[0], line[2:].strip())
    flush()
    return list(out.values())
