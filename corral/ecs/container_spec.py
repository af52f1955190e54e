"""From a container definition (with the task's overrides) and its image to the runtime's
``ContainerSpec``: the ECS → Docker translation the agent does before creating a container.

    definition + containerOverrides + image config ─┐
    task volumes, network mode, sandbox ────────────┴─> ContainerSpec
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corral.runtime.driver import (
    ContainerSpec,
    ImageContent,
    Mount,
    PortMapping,
    RuntimeFailure,
    Sandbox,
    Ulimit,
)
from corral.runtime.imageconfig import merge

MAX_SHARES = 262_144
MODES = {"awsvpc": "sandbox", "bridge": "bridge", "host": "host", "none": "none"}


def effective(definition: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The definition with its containerOverrides entry applied (command, environment —
    merged by name —, cpu, memory, memoryReservation)."""
    out = dict(definition)
    for o in (overrides or {}).get("containerOverrides") or []:
        if o.get("name") != definition["name"]:
            continue
        for key in ("command", "cpu", "memory", "memoryReservation"):
            if o.get(key) is not None:
                out[key] = o[key]
        if o.get("environment"):
            env = {e["name"]: e.get("value", "") for e in definition.get("environment") or []}
            env.update({e["name"]: e.get("value", "") for e in o["environment"]})
            out["environment"] = [{"name": k, "value": v} for k, v in env.items()]
    return out


def volume_sources(task_def: dict[str, Any], task_dir: Path, shared_dir: Path) -> dict[str, Path]:
    """Where each task volume lives on the host: ``host.sourcePath`` as given; a task-scoped
    empty volume (no host path, or dockerVolumeConfiguration scope ``task``) in the task's
    own directory; scope ``shared`` in Corral's shared volume directory."""
    out = {}
    for v in task_def.get("volumes") or []:
        host = (v.get("host") or {}).get("sourcePath")
        docker = v.get("dockerVolumeConfiguration") or {}
        if host:
            out[v["name"]] = Path(host)
        elif docker.get("scope") == "shared":
            out[v["name"]] = shared_dir / v["name"]
        else:
            out[v["name"]] = task_dir / "volumes" / v["name"]
    return out


def mounts(definition: dict[str, Any], by_name: dict[str, dict], volumes: dict[str, Path],
           seen: frozenset[str] = frozenset()) -> list[Mount]:
    """mountPoints, then the mount points of every volumesFrom source container."""
    out = [Mount(volumes[m["sourceVolume"]], m["containerPath"], bool(m.get("readOnly")))
           for m in definition.get("mountPoints") or []]
    for vf in definition.get("volumesFrom") or []:
        source = vf["sourceContainer"]
        if source in seen:
            continue
        for m in mounts(by_name[source], by_name, volumes, seen | {definition["name"]}):
            ro = vf.get("readOnly")
            out.append(Mount(m.source, m.destination, m.readonly if ro is None else bool(ro)))
    return out


def build(*, runtime_id: str, definition: dict[str, Any], image: ImageContent,
          task_def: dict[str, Any], task_doc: dict[str, Any], sandbox: Sandbox,
          mount_list: list[Mount], labels: dict[str, str], pids_limit: int = 0
          ) -> ContainerSpec:
    """ECS has no per-container process limit; ``pids_limit`` is Corral's host-wide one
    (``CORRAL_ECS_PIDS_LIMIT``) so a fork bomb in one task cannot take the host."""
    mode = task_def.get("networkMode") or "bridge"
    if definition.get("secrets"):
        raise RuntimeFailure(  # ECS fetches them before the pull; Corral has no secret store
            "unable to retrieve secrets from ssm or secrets manager: Corral has no Secrets "
            "Manager or SSM Parameter Store; use environment instead",
            "ResourceInitializationError")
    merged = merge(image.config, definition)
    linux = definition.get("linuxParameters") or {}
    caps = linux.get("capabilities") or {}
    env = list(merged.env)
    ports = tuple(PortMapping(p["containerPort"], p.get("hostPort") or 0,
                              p.get("protocol", "tcp"))
                  for p in definition.get("portMappings") or [] if p.get("containerPort"))
    cpu = int(definition.get("cpu") or 0)
    return ContainerSpec(
        id=runtime_id, name=definition["name"], image=image, args=tuple(merged.args),
        env=tuple(env), cwd=merged.cwd, user=merged.user,
        hostname=definition.get("hostname") if mode in ("bridge", "none") else None,
        sandbox=sandbox, network=MODES[mode], ports=ports if mode == "bridge" else (),
        mounts=tuple(mount_list), memory_mib=definition.get("memory"),
        memory_reservation_mib=definition.get("memoryReservation"),
        cpu_shares=min(max(cpu, 2), MAX_SHARES), pids_limit=pids_limit or None,
        ulimits=tuple(Ulimit(u["name"], u["softLimit"], u["hardLimit"])
                      for u in definition.get("ulimits") or []),
        readonly_rootfs=bool(definition.get("readonlyRootFilesystem")),
        init=bool(linux.get("initProcessEnabled")),
        cap_add=tuple(caps.get("add") or ()), cap_drop=tuple(caps.get("drop") or ()),
        privileged=bool(definition.get("privileged")), stop_signal=merged.stop_signal,
        labels=labels)


