"""Task sandboxes, the part both drivers share: the cgroup parent, the awsvpc attachment and
the record that lets ``sandbox(id)`` survive a restart.

    create(spec, attach, teardown)
      ├─ cgroups.create_parent("/corral/<task id>", task memory, task cpu)
      ├─ awsvpc only: attach(spec, cgroup parent) -> network attachment
      │    (oci: a new named netns; docker: a pause container's netns, adopted)
      └─ <directory>/<task id>.json, written atomically
    any failure: teardown(task id, cgroup parent), then RuntimeFailure

Only how the network namespace comes to be differs between the drivers, so that is the one
callback; ``teardown`` is the driver's, because only it knows what ``attach`` left behind.
A record is written last: one that exists names a sandbox whose effects are all in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from corral.runtime import cgroups
from corral.runtime.driver import PortBinding, RuntimeFailure, Sandbox, SandboxSpec
from corral.runtime.files import read_json, write_json_atomic

if TYPE_CHECKING:
    from corral.runtime.network import Attachment

Attach = Callable[[SandboxSpec, str], "Attachment"]  # (spec, cgroup parent) -> attachment
Teardown = Callable[[str, str], None]  # (task id, cgroup parent)


class SandboxRecords:
    """``<directory>/<id>.json`` per sandbox; ``check_id`` applies the driver's id rules (it
    raises RuntimeFailure for an id that must not become a file name)."""

    def __init__(self, directory: Path, check_id: Callable[[str], object]):
        self.directory = directory
        self.check_id = check_id

    def path(self, id: str) -> Path:
        self.check_id(id)
        return self.directory / f"{id}.json"

    def load(self, id: str) -> Sandbox | None:
        doc = read_json(self.path(id))
        if doc is None:
            return None
        doc["bindings"] = tuple(PortBinding(**b) for b in doc.get("bindings") or ())
        return Sandbox(**doc)

    def save(self, box: Sandbox) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path(box.id), asdict(box))

    def delete(self, id: str) -> None:
        self.path(id).unlink(missing_ok=True)

    def ids(self) -> list[str]:
        """Every recorded sandbox id, sorted."""
        d = self.directory
        return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []

    def create(self, spec: SandboxSpec, attach: Attach, teardown: Teardown) -> Sandbox:
        """The sandbox ``spec`` asks for; the recorded one when it exists already."""
        existing = self.load(spec.id)
        if existing is not None:
            return existing
        cg = f"/corral/{spec.id}"
        memory = spec.memory_mib * 2**20 if spec.memory_mib else None
        try:
            cgroups.create_parent(cg, memory_bytes=memory, cpu_units=spec.cpu_units)
            box = Sandbox(spec.id, cg)
            if spec.network == "awsvpc":
                att = attach(spec, cg)
                box = Sandbox(spec.id, cg, str(att.netns), att.ipv4, att.mac, att.gateway,
                              att.subnet, tuple(att.bindings))
            self.save(box)
        except (OSError, RuntimeFailure) as e:
            teardown(spec.id, cg)
            if isinstance(e, RuntimeFailure):
                raise
            raise RuntimeFailure(f"cannot create the task sandbox: {e}",
                                 "CannotCreateContainerError") from e
        return box
