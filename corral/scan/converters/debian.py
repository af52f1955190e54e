"""Debian security tracker lists (``data/DSA/list``, ``data/DLA/list``) -> OSV.

    [14 May 2022] DLA-3008-1 openssl - security update     <- header: date, id, source package
    \t{CVE-2022-1292}                                       <- aliases
    \t[stretch] - openssl 1.1.0l-1~deb9u6                   <- fixed source version in a release
    \t[buster] - openssl <not-affected> (reason)            <- not affected: no entry
    \t[woody] - phpmyadmin <unfixed>                       <- affected, no fix (yet)
    \tNOTE: …

Each ``[release] - pkg VERSION`` line becomes an ``affected`` entry for ``Debian:<n>`` (n from
the codename, as osv.dev names Debian releases) with the ECOSYSTEM range
``introduced 0, fixed VERSION``; versions are dpkg versions of the *source* package.
``<unfixed>`` and ``<end-of-life>`` mean the release is affected and no fix exists (for
end-of-life, none will come): the range is ``introduced 0`` alone, so every version matches and
the finding has no fixed version, as osv.dev's convert_debian.py converts them. The marker is
kept in the entry's ``database_specific.debian_status`` (``unfixed`` / ``end-of-life``) so a
finding can say why there is no fix. ``<not-affected>`` yields no entry. ``NOTE:``
lines are free text for the security team (some say ``<unfixed>`` without naming a release);
like osv.dev, the converter does not read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

RELEASES = {
    "buzz": "1.1", "rex": "1.2", "bo": "1.3", "hamm": "2.0", "slink": "2.1", "potato": "2.2",
    "woody": "3.0", "sarge": "3.1", "etch": "4", "lenny": "5", "squeeze": "6", "wheezy": "7",
    "jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12",
    "trixie": "13", "forky": "14",
}
_HEADER = re.compile(r"^\[(\d{1,2} \w{3} \d{4})\] ((?:DSA|DLA|DTSA)-[\w-]+)\s*(.*)$")
_FIXED = re.compile(r"^\[(\w+)\] - (\S+) (\S+)")
NO_FIX = ("<unfixed>", "<end-of-life>")  # affected, and no fixed version to name


def _iso(date: str) -> str:
    return datetime.strptime(date, "%d %b %Y").strftime("%Y-%m-%dT00:00:00Z")


def _affected(release: str, package: str, version: str) -> dict | None:
    """The OSV ``affected`` entry of one ``[release] - package VERSION`` line."""
    events: list[dict] = [{"introduced": "0"}]
    entry: dict = {"package": {"ecosystem": f"Debian:{release}", "name": package},
                   "ranges": [{"type": "ECOSYSTEM", "events": events}]}
    if version in NO_FIX:
        entry["database_specific"] = {"debian_status": version.strip("<>")}
    elif version.startswith("<"):  # <not-affected>, and any marker we do not know
        return None
    else:
        events.append({"fixed": version})
    return entry


def convert(text: str) -> Iterator[dict]:
    record: dict | None = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            if record:
                yield record
            date, ident, rest = m.groups()
            head, _, title = rest.partition(" - ")
            package = (head.split() or [""])[0]
            record = {"schema_version": "1.7.4", "id": ident, "modified": _iso(date),
                      "published": _iso(date), "summary": (title or "").strip() or package,
                      "aliases": [], "affected": [],
                      "database_specific": {"source_package": package},
                      "references": [{"type": "ADVISORY", "url":
                                      f"https://security-tracker.debian.org/tracker/{ident}"}]}
            continue
        if record is None or not line.startswith(("\t", " ")):
            continue
        body = line.strip()
        if body.startswith("{"):
            record["aliases"] += body.strip("{}").split()
            continue
        f = _FIXED.match(body)
        if f and f[1] in RELEASES:
            entry = _affected(RELEASES[f[1]], f[2], f[3])
            if entry:
                record["affected"].append(entry)
    if record:
        yield record
