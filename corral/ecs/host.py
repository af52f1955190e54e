"""Facts about this machine as an ECS container instance, read once per process.

The ECS agent registers an EC2 instance with its CPU (cores × 1024), MEMORY (MemTotal in MiB),
reserved PORTS and a list of attributes and capabilities (reference §4.1, agent
``ecs_client.go`` getResources, ``config_unix.go``). Corral's "agent" is itself and its
"docker" is Corral's own runtime driver, so ``versionInfo`` says so. The EC2 instance id is a
stable pseudo id derived from ``/etc/machine-id`` (hostname as a fallback), so the same machine
shows the same ``ec2InstanceId`` across restarts and in every cluster.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

AGENT_VERSION = "1.89.0"  # the ECS agent release whose behaviour Corral follows (reference AG)
RESERVED_PORTS = (22, 2375, 2376, 51678, 51679)  # SSH, Docker, Docker TLS, introspection, TMDS
INSTANCE_TYPE = "corral.local"
DOCKER_API_VERSIONS = ("1.17", "1.18", "1.19", "1.20", "1.21", "1.22", "1.23", "1.24", "1.25",
                       "1.26", "1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34",
                       "1.35", "1.36", "1.37", "1.38", "1.39", "1.40", "1.41", "1.42", "1.43",
                       "1.44")
# Capabilities Corral's agent really provides (issue 9): awsvpc networking, ECR pulls (also as
# the execution role), health checks, task cpu/memory limits, dependsOn ordering, secrets in
# the environment, and the log drivers task definitions name (output is kept per container
# until the logs issue routes awslogs). Task IAM roles are left out until they exist.
CAPABILITIES = (
    "ecs.capability.task-eni",
    "com.amazonaws.ecs.capability.ecr-auth",
    "ecs.capability.execution-role-ecr-pull",
    "ecs.capability.container-health-check",
    "ecs.capability.task-cpu-mem-limit",
    "ecs.capability.container-ordering",
    "com.amazonaws.ecs.capability.logging-driver.json-file",
    "com.amazonaws.ecs.capability.logging-driver.none",
)
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Host:
    cores: int
    memory_mib: int  # MemTotal
    arch: str  # x86_64 | arm64
    ec2_instance_id: str  # "i-" + 17 hex digits
    agent_hash: str

    @property
    def cpu_units(self) -> int:
        return self.cores * 1024

    def availability_zone(self, region: str) -> str:
        return f"{region}a"

    def version_info(self) -> dict[str, str]:
        return {"agentVersion": AGENT_VERSION, "agentHash": self.agent_hash,
                "dockerVersion": "Corral runtime (OCI: crun/runc)"}

    def attributes(self, region: str) -> list[dict[str, str]]:
        """The attributes the agent registers, as ContainerInstance.attributes lists them
        (capabilities carry no value)."""
        named = [
            {"name": "ecs.os-type", "value": "linux"},
            {"name": "ecs.os-family", "value": "LINUX"},
            {"name": "ecs.cpu-architecture", "value": self.arch},
            {"name": "ecs.availability-zone", "value": self.availability_zone(region)},
            {"name": "ecs.instance-type", "value": INSTANCE_TYPE},
        ]
        docker = [{"name": f"com.amazonaws.ecs.capability.docker-remote-api.{v}"}
                  for v in DOCKER_API_VERSIONS]
        return named + docker + [{"name": c} for c in CAPABILITIES]


def _mem_total_mib(meminfo: Path = Path("/proc/meminfo")) -> int:
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024  # the kernel reports kB
    raise RuntimeError("/proc/meminfo has no MemTotal line")


def _machine_identity() -> str:
    for path in (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id")):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text:
            return text
    return socket.gethostname()


@cache
def local() -> Host:
    """This machine, computed once."""
    identity = _machine_identity()
    digest = hashlib.sha256(f"corral-ec2:{identity}".encode()).hexdigest()
    return Host(
        cores=os.cpu_count() or 1,
        memory_mib=_mem_total_mib(),
        arch=_ARCH.get(platform.machine().lower(), platform.machine().lower()),
        ec2_instance_id="i-" + digest[:17],
        agent_hash=digest[17:25],
    )
