"""Alpine secdb documents (``{distroversion, reponame, packages: [{pkg: {name, secfixes}}]}``,
one per branch and repository) -> OSV, one record per CVE as osv.dev's ``ALPINE-CVE-…`` ids.

A secfixes key is the first fixed apk version in that branch; the key ``"0"`` means the branch
was never affected, so it yields no range. Package names are the origin (source) packages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

PUBLISHED = "1970-01-01T00:00:00Z"  # secdb has no dates


def convert(documents: Iterable[dict]) -> Iterator[dict]:
    by_cve: dict[str, dict] = {}
    for doc in documents:
        branch = doc.get("distroversion", "")
        if not branch:
            continue
        ecosystem = "Alpine:" + (branch if branch.startswith("v") else "v" + branch)
        for item in doc.get("packages") or ():
            pkg = (item or {}).get("pkg") or {}
            name = pkg.get("name")
            for fixed, ids in (pkg.get("secfixes") or {}).items():
                if not name or str(fixed) == "0":
                    continue
                for text in ids or ():
                    for vuln in str(text).split():
                        if not vuln.startswith("CVE-"):
                            continue
                        rec = by_cve.setdefault(vuln, {
                            "schema_version": "1.7.4", "id": f"ALPINE-{vuln}",
                            "modified": PUBLISHED, "published": PUBLISHED, "aliases": [vuln],
                            "affected": [], "references": [{"type": "ADVISORY", "url":
                                f"https://security.alpinelinux.org/vuln/{vuln}"}]})
                        rec["affected"].append({
                            "package": {"ecosystem": ecosystem, "name": name},
                            "ranges": [{"type": "ECOSYSTEM",
                                        "events": [{"introduced": "0"}, {"fixed": str(fixed)}]}]})
    yield from (by_cve[k] for k in sorted(by_cve))


def convert_jsonl(text: str) -> Iterator[dict]:
    return convert(json.loads(line) for line in text.splitlines() if line.strip())
