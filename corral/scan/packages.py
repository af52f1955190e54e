"""The uniform package record every cataloger produces (Syft's model, trimmed)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

# Package types (Syft's names) -> Inspector's packageManager enum.
PACKAGE_MANAGER = {
    "deb": "OS", "apk": "OS", "rpm": "OS",
    "python": "PYTHONPKG", "npm": "NODEPKG", "go-module": "GOBINARY", "java-archive": "JAR",
}
OS_TYPES = ("deb", "apk", "rpm")
# Language package types carry their OSV ecosystem; OS packages get theirs from the image's OS.
LANGUAGE_ECOSYSTEM = {"python": "PyPI", "npm": "npm", "go-module": "Go", "java-archive": "Maven"}


@dataclass
class Package:
    type: str  # deb | apk | rpm | python | npm | go-module | java-archive
    name: str
    version: str
    path: str  # the file that declared it, inside the image
    source_name: str = ""  # OS packages: the source package advisories are keyed by
    source_version: str = ""
    arch: str = ""
    layer: str = ""  # digest of the layer that introduced it (set when layers are merged)
    epoch: int | None = None
    release: str = ""
    licenses: list[str] = field(default_factory=list)
    # Language packages an OS package installed: that OS package's ``ref`` (e.g.
    # "deb:python3-setuptools@66.1.1-1+deb12u2"). Listed, not matched (see inventory.py).
    owned_by: str = ""

    def __post_init__(self) -> None:
        self.source_name = self.source_name or self.name
        self.source_version = self.source_version or self.version

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return self.type, self.name, self.version, self.path

    @property
    def ref(self) -> str:
        """How another package names this one (``owned_by``): type, name and version."""
        return f"{self.type}:{self.name}@{self.version}"

    @property
    def package_manager(self) -> str:
        return PACKAGE_MANAGER.get(self.type, "OS")

    def purl(self, distro: str = "") -> str:
        name = quote(self.name, safe="@/")
        version = quote(self.version, safe="")
        if self.type == "deb":
            return f"pkg:deb/{distro.split(':')[0].lower() or 'debian'}/{name}@{version}" + (
                f"?arch={self.arch}" if self.arch else "")
        if self.type == "apk":
            return f"pkg:apk/alpine/{name}@{version}" + (f"?arch={self.arch}" if self.arch else "")
        if self.type == "rpm":
            return f"pkg:rpm/{distro.split(':')[0].lower() or 'rpm'}/{name}@{version}"
        if self.type == "python":
            return f"pkg:pypi/{normalize_pypi(self.name)}@{version}"
        if self.type == "npm":
            return f"pkg:npm/{name.replace('@', '%40')}@{version}"
        if self.type == "go-module":
            return f"pkg:golang/{name}@{version}"
        if self.type == "java-archive":
            group, _, artifact = self.name.partition(":")
            return f"pkg:maven/{group}/{artifact}@{version}"
        return f"pkg:generic/{name}@{version}"

    def to_json(self) -> dict:
        # not dataclasses.asdict: its deep copy was a fifth of a 1,000-package scan
        out = {k: v for k, v in self.__dict__.items() if v not in ("", None, [])}
        if self.licenses:
            out["licenses"] = list(self.licenses)
        return out

    @classmethod
    def from_json(cls, doc: dict) -> Package:
        return cls(**doc)


def normalize_pypi(name: str) -> str:
    """PEP 503 normalisation (OSV PyPI names are normalised the same way)."""
    return re.sub(r"[-_.]+", "-", name).lower()
