"""Which advisories an image's packages match: a pure function of the inventory and a lookup.

Per package: its OSV ecosystem (language packages carry their own; OS packages take the image
OS's, e.g. ``Debian:12``), the name advisories are keyed by (OS packages: the *source*
package; PyPI: PEP 503 normalised) and the version to compare (OS packages: the source
version, as Trivy, Clair and the OSV distro ecosystems do). The finding is reported against
the binary package.

A language package an OS package installed (``Package.owned_by``, set by the inventory merge)
is not matched against its language ecosystem: the distro's advisories on the OS package
cover it, and its upstream version hides the distro's backported fixes (Grype's rule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from corral.scan import osv, severity
from corral.scan.inventory import ImageInventory
from corral.scan.packages import OS_TYPES, Package

Lookup = Callable[[str, str], Iterable[dict]]


@dataclass(frozen=True)
class Match:
    package: Package
    ecosystem: str
    record: dict
    fixed: str | None
    severity: severity.Severity

    @property
    def advisory_id(self) -> str:
        return self.record["id"]

    @property
    def key(self) -> str:
        p = self.package
        return "|".join((self.advisory_id, p.type, p.name, p.version, p.path))


def query_of(pkg: Package, ecosystem: str) -> tuple[str, str]:
    """(package key as indexed, version to compare) for one package."""
    if pkg.type in OS_TYPES:
        return osv.package_key(ecosystem, pkg.source_name), pkg.source_version
    return osv.package_key(ecosystem, pkg.name), pkg.version


def matched(inventory: ImageInventory) -> list[Package]:
    """The packages advisories are matched against: all but the OS-owned language ones."""
    return [p for p in inventory.packages if not p.owned_by]


def unmatched(inventory: ImageInventory) -> list[tuple[Package, str]]:
    """Packages whose version is not valid in their ecosystem's scheme, with the reason: they
    match no advisory range (only a literal ``versions`` entry), and the scan says so."""
    out = []
    for pkg in matched(inventory):
        eco = inventory.ecosystem_of(pkg)
        why = eco and osv.invalid_version(eco, query_of(pkg, eco)[1])
        if why:
            out.append((pkg, why))
    return out


def keys(inventory: ImageInventory) -> set[tuple[str, str]]:
    """The (ecosystem, package key) pairs an image's advisories can be indexed under."""
    out = set()
    for pkg in matched(inventory):
        eco = inventory.ecosystem_of(pkg)
        if eco:
            out.add((eco, query_of(pkg, eco)[0]))
    return out


def match(inventory: ImageInventory, lookup: Lookup) -> list[Match]:
    found: dict[str, Match] = {}
    prefetch = getattr(lookup, "prefetch", None)
    if prefetch is not None:  # a store-backed lookup: one query per ecosystem, not per package
        prefetch(keys(inventory))
    for pkg in matched(inventory):
        eco = inventory.ecosystem_of(pkg)
        if not eco:
            continue
        name, version = query_of(pkg, eco)
        valid = osv.is_valid(eco, version)  # once per package, not per range
        for record in lookup(eco, name):
            if record.get("withdrawn"):
                continue
            entries = osv.matching_entries(record, eco, name, version, valid=valid)
            if not entries:
                continue
            m = Match(pkg, eco, record, osv.fixed_in(entries, version, eco, valid=valid),
                      severity.assess(record, entries))
            found.setdefault(m.key, m)
    return sorted(found.values(), key=lambda m: (m.advisory_id, m.package.name, m.package.path))
