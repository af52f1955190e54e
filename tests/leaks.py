"""What containers leave behind on a host, counted before and after tests: network
namespaces, overlay mounts, cgroups, iptables rules and supervisor processes of Corral's."""

from __future__ import annotations

import subprocess
from pathlib import Path

from corral.runtime import cgroups

CGROUP_ROOTS = [root / "corral" for root in cgroups.hierarchies()]


def _lines(*cmd: str) -> list[str]:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.splitlines()


def snapshot() -> dict[str, set[str]]:
    mounts = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if "/runtime/" in line.split()[4]}
    cgroups = {str(p) for root in CGROUP_ROOTS if root.is_dir()
               for p in root.iterdir() if p.is_dir()}
    supervisors = set(_lines("pgrep", "-af", "corral.runtime.supervisor"))
    return {
        "network namespaces": {n.split()[0] for n in _lines("ip", "netns", "list")
                               if n.startswith("corral-")},
        "container mounts": mounts,
        "cgroups": cgroups,
        "iptables rules": {r for r in _lines("iptables-save", "-t", "nat")
                           if "corral-" in r and "--comment" in r},
        "supervisor processes": supervisors,
    }


def leaked(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, set[str]]:
    return {kind: after[kind] - before[kind] for kind in after if after[kind] - before[kind]}
