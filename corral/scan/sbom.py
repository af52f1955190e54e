"""SBOM documents of an image inventory: CycloneDX 1.4 and SPDX 2.3 JSON (Inspector2
CreateSbomExport's two formats). Pure functions of the inventory.

A language package an OS package installed (``Package.owned_by``) stays in the SBOM, as a part
of that OS package: in CycloneDX a nested ``components`` entry of the OS package's component —
the spec's way to say "this component is an assembly that includes these", which is what file
ownership means (``dependencies`` would claim python3-setuptools *depends on* setuptools, and
a vendor property would be invisible to generic tools); in SPDX a ``CONTAINS`` relationship
from the OS package. What the scan did not read (the inventory's notes: skipped device nodes,
unreadable databases) goes into CycloneDX ``metadata.properties`` and the SPDX creation
comment, so the SBOM says how complete it is.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from corral import __version__
from corral.scan.inventory import ImageInventory
from corral.scan.packages import OS_TYPES, Package

MAX_NOTES = 100


def _component(p: Package, distro: str) -> dict[str, Any]:
    comp: dict[str, Any] = {
        "type": "library", "bom-ref": p.purl(distro) + f"#{p.path}", "name": p.name,
        "version": p.version, "purl": p.purl(distro),
        "properties": [{"name": "amazon:inspector:sbom_collector:path", "value": p.path},
                       {"name": "corral:layer_digest", "value": p.layer}]}
    if p.source_name != p.name:
        comp["properties"].append({"name": "corral:source_package",
                                   "value": f"{p.source_name} {p.source_version}"})
    if p.licenses:
        comp["licenses"] = [{"license": {"name": name}} for name in p.licenses]
    return comp


def _owners(inv: ImageInventory) -> dict[str, int]:
    """{``Package.ref``: index in inv.packages} of the OS packages that own others (the
    ``owned_by`` the inventory merge recorded names exactly one of them)."""
    wanted = {p.owned_by for p in inv.packages if p.owned_by}
    out: dict[str, int] = {}
    for i, p in enumerate(inv.packages):
        if p.type in OS_TYPES and p.ref in wanted:
            out.setdefault(p.ref, i)
    return out


def cyclonedx(inv: ImageInventory, image_name: str, digest: str, now: datetime) -> dict[str, Any]:
    distro = inv.os_ecosystem or ""
    owners = _owners(inv)
    comps = [_component(p, distro) for p in inv.packages]
    components = []
    for p, comp in zip(inv.packages, comps, strict=True):
        owner = owners.get(p.owned_by) if p.owned_by else None
        if owner is None:
            components.append(comp)
        else:
            comps[owner].setdefault("components", []).append(comp)
    if inv.os:
        components.insert(0, {"type": "operating-system", "name": inv.os.get("id", ""),
                              "version": inv.os.get("version_id", "")})
    metadata: dict[str, Any] = {
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tools": [{"vendor": "Corral", "name": "corral", "version": __version__}],
        "component": {"type": "container", "name": image_name, "version": digest}}
    if inv.notes:
        metadata["properties"] = [{"name": "corral:scan:note", "value": n}
                                  for n in inv.notes[:MAX_NOTES]]
    return {"bomFormat": "CycloneDX", "specVersion": "1.4",
            "serialNumber": f"urn:uuid:{uuid.uuid4()}", "version": 1,
            "metadata": metadata, "components": components}


def spdx(inv: ImageInventory, image_name: str, digest: str, now: datetime) -> dict[str, Any]:
    distro = inv.os_ecosystem or ""
    owners = _owners(inv)
    packages = [{"SPDXID": "SPDXRef-image", "name": image_name, "versionInfo": digest,
                 "downloadLocation": "NOASSERTION", "primaryPackagePurpose": "CONTAINER"}]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": "SPDXRef-image"}]
    for i, p in enumerate(inv.packages):
        ref = f"SPDXRef-Package-{i}"
        packages.append({
            "SPDXID": ref, "name": p.name, "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "licenseDeclared": " AND ".join(p.licenses) if p.licenses else "NOASSERTION",
            "sourceInfo": f"from {p.path} in layer {p.layer}",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": p.purl(distro)}]})
        relationships.append({"spdxElementId": "SPDXRef-image", "relationshipType": "CONTAINS",
                              "relatedSpdxElement": ref})
    for i, p in enumerate(inv.packages):
        owner = owners.get(p.owned_by) if p.owned_by else None
        if owner is not None:
            relationships.append({"spdxElementId": f"SPDXRef-Package-{owner}",
                                  "relationshipType": "CONTAINS",
                                  "relatedSpdxElement": f"SPDXRef-Package-{i}"})
    creation: dict[str, Any] = {"created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "creators": [f"Tool: corral-{__version__}"]}
    if inv.notes:
        creation["comment"] = "\n".join(inv.notes[:MAX_NOTES])
    return {"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
            "name": f"{image_name}@{digest}",
            "documentNamespace": f"https://corral.local/spdx/{uuid.uuid4()}",
            "creationInfo": creation,
            "packages": packages, "relationships": relationships}
