"""The advisory database: OSV records imported into the state store, indexed by
(ecosystem, package key).

    corral vulndb import PATH ─> read_records(PATH) (dir | .json | .jsonl | .zip | Debian DSA/DLA
        list | Alpine secdb .jsonl) ─> import_records (one transaction) ─> changed keys
        ─> "advisories.imported" event ─> continuous re-scan of the images holding those keys

Import is incremental: a record whose content hash is unchanged is skipped; a changed one
replaces the stored one (and its index rows); a withdrawn one stays stored with
``withdrawn`` set, so the matcher ignores it and the re-scan closes its findings.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
from sqlalchemy import Connection, delete, func, select

from corral.scan.converters import alpine, debian
from corral.scan.osv import package_key
from corral.store.schema import vuln_advisories, vuln_affected, vuln_sources

CHUNK = 500


class ImportError_(ValueError):  # noqa: N801 - not the builtin
    """The path cannot be read as advisories."""


@dataclass
class ImportResult:
    source: str
    records: int = 0
    changed: int = 0
    withdrawn: int = 0
    invalid: int = 0
    keys: set[tuple[str, str]] = field(default_factory=set)
    seconds: float = 0.0

    def view(self) -> dict:
        return {"source": self.source, "records": self.records, "changed": self.changed,
                "withdrawn": self.withdrawn, "invalid": self.invalid,
                "packages": len(self.keys), "seconds": round(self.seconds, 3)}


# --- reading ---------------------------------------------------------------------------------


def _records_of_text(name: str, text: str) -> Iterator[dict]:
    base = name.rsplit("/", 1)[-1]
    if base in ("DSA-list", "DLA-list", "list") or text.startswith("[") and "] D" in text[:40]:
        yield from debian.convert(text)
        return
    if name.endswith(".jsonl"):
        first = next((line for line in text.splitlines() if line.strip()), "")
        if '"distroversion"' in first:
            yield from alpine.convert_jsonl(text)
            return
        for line in text.splitlines():
            if line.strip():
                yield orjson.loads(line)
        return
    doc = orjson.loads(text)
    if isinstance(doc, list):
        yield from doc
    elif isinstance(doc, dict) and "distroversion" in doc:
        yield from alpine.convert([doc])
    else:
        yield doc


def read_records(path: Path) -> Iterator[dict]:
    """Every record at ``path``; ValueError (ImportError_) for unreadable input."""
    if not path.exists():
        raise ImportError_(f"no such file or directory: {path}")
    try:
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and (f.suffix in (".json", ".jsonl") or f.name.endswith("-list")):
                    yield from _records_of_text(str(f), f.read_text("utf-8"))
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if info.filename.endswith((".json", ".jsonl")):
                        yield from _records_of_text(info.filename, z.read(info).decode("utf-8"))
        else:
            yield from _records_of_text(str(path), path.read_text("utf-8"))
    except (orjson.JSONDecodeError, json.JSONDecodeError, UnicodeDecodeError,
            zipfile.BadZipFile, OSError) as e:
        raise ImportError_(f"cannot read advisories from {path}: {e}") from None


def read_bytes(name: str, data: bytes) -> Iterator[dict]:
    """Records from uploaded content (the CLI streaming a file the server cannot see)."""
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                if info.filename.endswith((".json", ".jsonl")):
                    yield from _records_of_text(info.filename, z.read(info).decode("utf-8"))
        return
    yield from _records_of_text(name, data.decode("utf-8"))


# --- storing ---------------------------------------------------------------------------------


def record_keys(record: dict) -> set[tuple[str, str]]:
    out = set()
    for entry in record.get("affected") or ():
        pkg = (entry or {}).get("package") or {}
        eco, name = pkg.get("ecosystem"), pkg.get("name")
        if isinstance(eco, str) and isinstance(name, str) and eco and name:
            out.add((eco, package_key(eco, name)))
    return out


def _digest(record: dict) -> str:
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()


def import_records(db: Connection, records: Iterable[dict], source: str, path: str,
                   now: datetime) -> ImportResult:
    started = time.monotonic()
    result = ImportResult(source)
    t = vuln_advisories.c
    stored = dict(db.execute(select(t.id, t.digest)).all())
    fresh: dict[str, dict] = {}
    for record in records:
        result.records += 1
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            result.invalid += 1
            continue
        fresh[record["id"]] = record
    changed = {i: r for i, r in fresh.items() if stored.get(i) != _digest(r)}
    replaced = [i for i in changed if i in stored]
    for start in range(0, len(replaced), CHUNK):
        ids = replaced[start:start + CHUNK]
        a = vuln_affected.c
        result.keys |= {(e, n) for e, n in db.execute(
            select(a.ecosystem, a.name).where(a.advisory_id.in_(ids)))}
        db.execute(delete(vuln_affected).where(a.advisory_id.in_(ids)))
        db.execute(delete(vuln_advisories).where(t.id.in_(ids)))
    rows, index = [], []
    for ident, record in changed.items():
        withdrawn = bool(record.get("withdrawn"))
        result.withdrawn += withdrawn
        rows.append({"id": ident, "source": source, "modified": str(record.get("modified", "")),
                     "withdrawn": withdrawn, "digest": _digest(record), "record": record,
                     "imported_at": now})
        keys = record_keys(record)
        result.keys |= keys
        index += [{"advisory_id": ident, "ecosystem": e, "name": n} for e, n in keys]
    for start in range(0, len(rows), CHUNK):
        db.execute(vuln_advisories.insert(), rows[start:start + CHUNK])
    for start in range(0, len(index), CHUNK * 4):
        db.execute(vuln_affected.insert(), index[start:start + CHUNK * 4])
    result.changed = len(changed)
    result.seconds = time.monotonic() - started
    _record_source(db, result, path, now)
    return result


def _record_source(db: Connection, result: ImportResult, path: str, now: datetime) -> None:
    db.execute(delete(vuln_sources).where(vuln_sources.c.name == result.source))
    db.execute(vuln_sources.insert().values(
        name=result.source, path=path, records=result.records, changed=result.changed,
        withdrawn=result.withdrawn, imported_at=now, seconds=result.seconds))


# --- reading back ------------------------------------------------------------------------------


class Lookup:
    """``(ecosystem, package key) -> records`` for the matcher, cached for one scan."""

    def __init__(self, db: Connection):
        self.db = db
        self._cache: dict[tuple[str, str], list[dict]] = {}

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Load the records of many keys in a few queries (an image has ~100-1,000)."""
        by_eco: dict[str, list[str]] = {}
        for eco, name in keys:
            if (eco, name) not in self._cache:
                by_eco.setdefault(eco, []).append(name)
                self._cache[(eco, name)] = []
        a, t = vuln_affected.c, vuln_advisories.c
        for eco, names in by_eco.items():
            for start in range(0, len(names), CHUNK):
                rows = self.db.execute(
                    select(a.name, t.record).join(vuln_affected, a.advisory_id == t.id)
                    .where(a.ecosystem == eco, a.name.in_(names[start:start + CHUNK]),
                           t.withdrawn.is_(False)))
                for name, record in rows:
                    self._cache[(eco, name)].append(record)

    def __call__(self, ecosystem: str, name: str) -> list[dict]:
        key = (ecosystem, name)
        if key not in self._cache:
            a, t = vuln_affected.c, vuln_advisories.c
            self._cache[key] = list(self.db.execute(
                select(t.record).join(vuln_affected, a.advisory_id == t.id)
                .where(a.ecosystem == ecosystem, a.name == name, t.withdrawn.is_(False))
            ).scalars())
        return self._cache[key]


def updated_at(db: Connection) -> datetime | None:
    return db.execute(select(func.max(vuln_advisories.c.imported_at))).scalar_one_or_none()


def status(db: Connection) -> dict:
    s = vuln_sources.c
    sources = [{str(k): v for k, v in r._mapping.items()}
               for r in db.execute(select(vuln_sources).order_by(s.name))]
    t, a = vuln_advisories.c, vuln_affected.c
    total = db.execute(select(func.count()).select_from(vuln_advisories)).scalar_one()
    withdrawn = db.execute(select(func.count()).where(t.withdrawn.is_(True))).scalar_one()
    by_eco: dict[str, int] = {}
    for eco, n in db.execute(select(a.ecosystem, func.count(func.distinct(a.advisory_id)))
                             .group_by(a.ecosystem)):
        base = eco.split(":", 1)[0]
        by_eco[base] = by_eco.get(base, 0) + n
    return {"advisories": total, "withdrawn": withdrawn, "by_ecosystem": by_eco,
            "sources": sources, "updated_at": updated_at(db)}
