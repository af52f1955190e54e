"""The image's OS: ``etc/os-release`` / ``usr/lib/os-release`` (ID, VERSION_ID, codename) and the
distro files scanners fall back on (``etc/debian_version``, ``etc/alpine-release``,
``etc/redhat-release``, ``etc/lsb-release``)."""

from __future__ import annotations

import re

PATHS = {
    "etc/os-release", "usr/lib/os-release", "etc/debian_version", "etc/alpine-release",
    "etc/redhat-release", "etc/centos-release", "etc/rocky-release", "etc/almalinux-release",
    "etc/lsb-release", "etc/system-release",
}
_DEBIAN_CODENAMES = {"7": "wheezy", "8": "jessie", "9": "stretch", "10": "buster",
                     "11": "bullseye", "12": "bookworm", "13": "trixie"}
# Fallback files rank below os-release (lower wins).
RANK = {"etc/os-release": 0, "usr/lib/os-release": 1, "etc/lsb-release": 2}


def matches(path: str) -> bool:
    return path in PATHS


def _kv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            out[key.strip()] = value.strip().strip("'\"")
    return out


def parse(path: str, data: bytes) -> dict[str, str] | None:
    text = data.decode("utf-8", "replace")
    if path.endswith("os-release"):
        kv = _kv(text)
        if not kv.get("ID"):
            return None
        return {"id": kv["ID"].lower(), "version_id": kv.get("VERSION_ID", ""),
                "codename": kv.get("VERSION_CODENAME", ""), "version": kv.get("VERSION", ""),
                "pretty_name": kv.get("PRETTY_NAME", ""), "source": path}
    first = text.strip().splitlines()[0] if text.strip() else ""
    if path == "etc/debian_version" and re.match(r"^\d+(\.\d+)*$", first):
        major = first.split(".")[0]
        return {"id": "debian", "version_id": major, "codename": _DEBIAN_CODENAMES.get(major, ""),
                "source": path}
    if path == "etc/alpine-release" and first:
        return {"id": "alpine", "version_id": first, "source": path}
    if path == "etc/lsb-release":
        kv = _kv(text)
        if kv.get("DISTRIB_ID"):
            return {"id": kv["DISTRIB_ID"].lower(), "version_id": kv.get("DISTRIB_RELEASE", ""),
                    "codename": kv.get("DISTRIB_CODENAME", ""),
                    "version": kv.get("DISTRIB_DESCRIPTION", ""), "source": path}
    m = re.search(r"^(\w[\w ]*?) (?:Linux )?release (\d+(?:\.\d+)*)", first)
    if m:
        name = m[1].lower()
        ident = next((i for key, i in (("centos", "centos"), ("rocky", "rocky"),
                                       ("alma", "almalinux"), ("red hat", "rhel"),
                                       ("fedora", "fedora"), ("amazon", "amzn"))
                      if key in name), name.split()[0])
        return {"id": ident, "version_id": m[2], "source": path}
    return None


def rank(os_info: dict) -> int:
    return RANK.get(os_info.get("source", ""), 3)


def ecosystem(os_info: dict | None) -> str | None:
    """The OSV ecosystem of the image's OS packages (OSV schema, ecosystems table)."""
    if not os_info:
        return None
    ident, ver = os_info.get("id", ""), os_info.get("version_id", "")
    major = ver.split(".")[0]
    if ident == "debian":
        return f"Debian:{major}" if major else "Debian"
    if ident == "ubuntu" and ver:
        lts = "LTS" in os_info.get("version", "") or (
            ver.endswith(".04") and int(ver.split(".")[0]) % 2 == 0)
        return f"Ubuntu:{ver}" + (":LTS" if lts else "")
    if ident == "alpine" and ver:
        return "Alpine:v" + ".".join(ver.split(".")[:2])
    if ident == "rocky":
        return f"Rocky Linux:{major}"
    if ident == "almalinux":
        return f"AlmaLinux:{major}"
    if ident in ("wolfi", "chainguard"):
        return ident.capitalize()
    return None


def platform(os_info: dict | None) -> str:
    """Inspector's ``platform`` string, e.g. ``DEBIAN_12``, ``ALPINE_3_19``."""
    if not os_info:
        return ""
    ident = os_info.get("id", "").upper()
    ver = os_info.get("version_id", "")
    parts = ver.split(".")[:2] if ident == "ALPINE" else ver.split(".")[:1]
    return "_".join([ident, *filter(None, parts)])
