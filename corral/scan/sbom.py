"""SBOM documents of an image inventory: CycloneDX 1.4 and SPDX 2.3 JSON (Inspector2
CreateSbomExport's two formats). Pure functions of the inventory."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from corral import __version__
from corral.scan.inventory import ImageInventory


def cyclonedx(inv: ImageInventory, image_name: str, digest: str, now: datetime) -> dict[str, Any]:
    distro = inv.os_ecosystem or ""
    components = []
    for p in inv.packages:
        comp = {"type": "library", "bom-ref": p.purl(distro) + f"#{p.path}", "name": p.name,
                "version": p.version, "purl": p.purl(distro),
                "properties": [{"name": "amazon:inspector:sbom_collector:path", "value": p.path},
                               {"name": "corral:layer_digest", "value": p.layer}]}
        if p.source_name != p.name:
            comp["properties"].append({"name": "corral:source_package",
                                       "value": f"{p.source_name} {p.source_version}"})
        if p.licenses:
            comp["licenses"] = [{"license": {"name": name}} for name in p.licenses]
        components.append(comp)
    if inv.os:
        components.insert(0, {"type": "operating-system", "name": inv.os.get("id", ""),
                              "version": inv.os.get("version_id", "")})
    return {"bomFormat": "CycloneDX", "specVersion": "1.4",
            "serialNumber": f"urn:uuid:{uuid.uuid4()}", "version": 1,
            "metadata": {"timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "tools": [{"vendor": "Corral", "name": "corral", "version": __version__}],
                         "component": {"type": "container", "name": image_name,
                                       "version": digest}},
            "components": components}


def spdx(inv: ImageInventory, image_name: str, digest: str, now: datetime) -> dict[str, Any]:
    distro = inv.os_ecosystem or ""
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
    return {"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
            "name": f"{image_name}@{digest}",
            "documentNamespace": f"https://corral.local/spdx/{uuid.uuid4()}",
            "creationInfo": {"created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "creators": [f"Tool: corral-{__version__}"]},
            "packages": packages, "relationships": relationships}
