"""Task networking on the host: the Corral bridge, a network namespace per attachment,
private IPv4 addresses and published ports.

An *attachment* is one network namespace: an awsvpc task's (all its containers join it) or
one bridge-mode container's. Connected attachments hang off one Linux bridge::

      host: eth0 192.0.2.2           corral0 10.220.0.1/16 (gateway)
            │                          ├── vc1a2b… ══ eth0 10.220.0.2  netns corral-<task>
            │  nat CORRAL-DNAT ──DNAT──┤
            │  (published ports)       └── vc9f8e… ══ eth0 10.220.0.3  netns corral-<ctr>
            └─ CORRAL-POSTROUTING: MASQUERADE egress, localhost and hairpin sources

A published port answers at every local address of the host: the DNAT chain is entered from
PREROUTING (other hosts, other namespaces) and OUTPUT (the host itself, 127.0.0.1 included)
for ``--dst-type LOCAL``. Loopback-sourced packets may only leave through the bridge with
``route_localnet=1`` on it, and are masqueraded so the reply comes back to the host; so are
DNATed packets from the bridge's own subnet, or a container reaching a neighbour through the
host address would get its reply straight from the neighbour and drop it. This is the host
set-up the ECS agent and Docker (``userland-proxy=false``) make, kept in dedicated chains so
nothing else on the host is touched and cleanup is exact.

State is host-global, because several Corral servers (tests run many) share the bridge and
iptables: ``<state_dir>/leases/<name>.json`` per attachment (address, MAC, bindings) and
``alloc.json`` (the last address and dynamic port handed out), written atomically and guarded
by an ``flock`` on ``<state_dir>/lock``. A lease is written, marked not ready, *before* its
effects; a crash mid-create leaves a lease that ``names()`` still lists and ``remove()``
clears. Per-attachment iptables rules carry ``-m comment --comment <name>``, so ``remove()``
deletes what is really in the kernel, not what a file says should be.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from corral.runtime.driver import PortBinding, PortMapping, RuntimeFailure, RuntimeUnavailable
from corral.runtime.files import read_json, write_json_atomic
from corral.runtime.ports import dynamic_range, next_port, port_free

NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")
PROC_IPV4 = Path("/proc/sys/net/ipv4")
TOOLS = ("ip", "iptables", "iptables-save", "iptables-restore")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")  # a file name and a rule comment
_START = "CannotStartContainerError"


@dataclass(frozen=True)
class Attachment:
    name: str  # e.g. "corral-<task id>" or "corral-<runtime id>"
    netns: str  # "/run/netns/<name>": the path an OCI spec's network namespace joins
    ipv4: str | None  # None for an isolated ("none") namespace
    mac: str | None
    gateway: str | None
    subnet: str | None  # the bridge's CIDR, e.g. "10.220.0.0/16"
    bindings: tuple[PortBinding, ...]


def host_veth(name: str) -> str:
    """The host end of an attachment's veth pair (interface names are at most 15 bytes, so it
    is a digest of the attachment name); its counters are the attachment's traffic."""
    return "vc" + hashlib.sha256(name.encode()).hexdigest()[:11]


def mac_for(ip: ipaddress.IPv4Address) -> str:
    """A locally administered MAC derived from the address (as Docker does), so an address
    handed out again comes with the same MAC and no neighbour cache holds a stale one."""
    return "02:c0:" + ":".join(f"{byte:02x}" for byte in ip.packed)


def run(argv: list[str], stdin: str | None = None) -> str:
    """Run an ip/iptables command; failures become RuntimeFailure carrying its stderr."""
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)
    except FileNotFoundError as e:
        raise RuntimeUnavailable(f"{argv[0]} not found: install iproute2 and iptables") from e
    except subprocess.CalledProcessError as e:
        detail = (e.stderr or e.stdout or "").strip()
        raise RuntimeFailure(f"{shlex.join(argv)} failed: {detail}", _START) from e
    return done.stdout


def _read_json(path: Path) -> dict | None:
    """Strict: a corrupt lease or allocation file raises rather than read as free."""
    return read_json(path, strict=True)


class HostNetwork:
    """The host's side of task networking. Safe to use from several threads and processes."""

    def __init__(
        self,
        state_dir: Path = Path("/run/corral/net"),
        bridge: str = "corral0",
        subnet: str = "10.220.0.0/16",
    ):
        self.state_dir = Path(state_dir)
        self.bridge = bridge
        self.net = ipaddress.IPv4Network(subnet)
        self.subnet = str(self.net)
        self.gateway = self.net.network_address + 1
        # corral0 owns the plain names; another bridge (tests) gets its own chains so set-up
        # and teardown of one never rewrites the other's rules.
        suffix = "" if bridge == "corral0" else f"-{bridge}"
        self.chain_dnat = f"CORRAL-DNAT{suffix}"
        self.chain_post = f"CORRAL-POSTROUTING{suffix}"
        self.chain_fwd = f"CORRAL-FORWARD{suffix}"
        self._ready = False

    # -- state -------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        (self.state_dir / "leases").mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def _lease_path(self, name: str) -> Path:
        return self.state_dir / "leases" / f"{name}.json"

    def _leases(self) -> list[dict]:
        leases = [_read_json(p) for p in (self.state_dir / "leases").glob("*.json")]
        return [lease for lease in leases if lease is not None]

    def names(self) -> list[str]:
        """Every attachment this host holds, complete or left half-made by a crash."""
        return sorted(p.stem for p in (self.state_dir / "leases").glob("*.json"))

    def get(self, name: str) -> Attachment | None:
        """The attachment created earlier (also by another process), or None when it does not
        exist, is still being made, or its namespace has gone (e.g. after a reboot)."""
        lease = _read_json(self._lease_path(name))
        if lease is None or not lease["ready"] or not Path(lease["netns"]).exists():
            return None
        return _attachment(lease)

    # -- host set-up -------------------------------------------------------------------

    def setup_host(self) -> None:
        """Bridge up with the gateway address, forwarding on, Corral's chains in place.
        Idempotent; raises RuntimeUnavailable saying what is missing."""
        _preflight()
        with self._locked():
            self._setup_locked()

    def _setup_locked(self) -> None:
        try:
            self._setup_bridge()
            self._setup_sysctls()
            self._setup_chains()
        except RuntimeFailure as e:
            raise RuntimeUnavailable(f"host network set-up failed: {e}") from e
        self._ready = True

    def _setup_bridge(self) -> None:
        if not (SYS_NET / self.bridge).exists():
            run(["ip", "link", "add", self.bridge, "type", "bridge"])
        # A fixed MAC: a bridge otherwise takes its lowest port's, changing as ports come and go.
        run(["ip", "-b", "-"], stdin=(
            f"link set dev {self.bridge} address {mac_for(self.gateway)}\n"
            f"addr replace {self.gateway}/{self.net.prefixlen} dev {self.bridge}\n"
            f"link set dev {self.bridge} up\n"))

    def _setup_sysctls(self) -> None:
        forward = PROC_IPV4 / "ip_forward"
        host = self.state_dir / "host.json"
        if _read_json(host) is None:  # remember what teardown restores
            write_json_atomic(host, {"ip_forward": forward.read_text().strip()})
        forward.write_text("1")
        # 127.0.0.1:<hostPort> is DNATed to a bridge address; the kernel only routes a
        # loopback-sourced packet out of an interface with route_localnet.
        (PROC_IPV4 / "conf" / self.bridge / "route_localnet").write_text("1")

    def _setup_chains(self) -> None:
        saved = _save("nat") + _save("filter")
        chains = set(re.findall(r"^:(\S+)", saved, re.M))
        lines: dict[str, list[str]] = {"nat": [], "filter": []}
        for table, chain in self._chains():
            if chain not in chains:
                lines[table].append(f":{chain} - [0:0]")
            elif chain != self.chain_dnat:  # DNAT holds per-attachment rules: never flushed
                lines[table].append(f"-F {chain}")
        # The static rules are rewritten each time: set-up is also repair.
        post, fwd = f"-A {self.chain_post}", f"-A {self.chain_fwd}"
        lines["nat"] += [
            f"{post} -s 127.0.0.0/8 -o {self.bridge} -j MASQUERADE",
            f"{post} -s {self.subnet} -o {self.bridge} -m conntrack --ctstate DNAT -j MASQUERADE",
            f"{post} -s {self.subnet} ! -o {self.bridge} -j MASQUERADE"]
        lines["filter"] += [
            f"{fwd} -i {self.bridge} -j ACCEPT",
            # into the bridge: replies and published ports only, not any host's new connection
            f"{fwd} -o {self.bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT"]
        rules = set(saved.splitlines())
        for table, chain, spec, first in self._hooks():
            if f"-A {chain} {spec}" not in rules:
                where = f"-I {chain} 1" if first else f"-A {chain}"
                lines[table].append(f"{where} {spec}")
        _restore(lines)

    def _chains(self) -> list[tuple[str, str]]:
        return [("nat", self.chain_dnat), ("nat", self.chain_post), ("filter", self.chain_fwd)]

    def _hooks(self) -> list[tuple[str, str, str, bool]]:
        """The jumps into Corral's chains: (table, chain, rule spec, insert first?)."""
        local = "-m addrtype --dst-type LOCAL"
        return [("nat", "PREROUTING", f"{local} -j {self.chain_dnat}", False),
                ("nat", "OUTPUT", f"{local} -j {self.chain_dnat}", False),
                ("nat", "POSTROUTING", f"-j {self.chain_post}", False),
                # first in FORWARD, ahead of the DROP policy a Docker install leaves
                ("filter", "FORWARD", f"-j {self.chain_fwd}", True)]

    def teardown_host(self) -> bool:
        """Remove the chains and the bridge and restore ip_forward, only when no attachment
        is left (for tests). Returns whether it tore down."""
        with self._locked():
            if self.names():
                return False
            saved = _save("nat") + _save("filter")
            rules = set(saved.splitlines())
            lines: dict[str, list[str]] = {"nat": [], "filter": []}
            for table, chain, spec, _ in self._hooks():
                if f"-A {chain} {spec}" in rules:
                    lines[table].append(f"-D {chain} {spec}")
            for table, chain in self._chains():
                if f":{chain} " in saved:
                    lines[table] += [f"-F {chain}", f"-X {chain}"]
            _restore(lines)
            if (SYS_NET / self.bridge).exists():
                run(["ip", "link", "del", self.bridge])
            self._restore_forwarding(saved)
            self._ready = False
            return True

    def _restore_forwarding(self, saved: str) -> None:
        host = _read_json(self.state_dir / "host.json")
        others = [c for c in re.findall(r"^:(CORRAL-FORWARD\S*)", saved, re.M)
                  if c != self.chain_fwd]
        if host is not None and not others:  # another Corral bridge still needs forwarding
            (PROC_IPV4 / "ip_forward").write_text(host["ip_forward"])
        (self.state_dir / "host.json").unlink(missing_ok=True)

    # -- attachments -------------------------------------------------------------------

    def create(
        self,
        name: str,
        ports: tuple[PortMapping, ...] = (),
        *,
        connected: bool = True,
        pid: int | None = None,
    ) -> Attachment:
        """A namespace named ``name`` (``pid``: adopt that process's), either isolated with only
        loopback (``connected=False``, network mode "none") or on the bridge with an address,
        a default route and ``ports`` published on the host (hostPort 0: a dynamic port).
        Creating an existing, complete attachment with the same request returns it."""
        _validate(name, ports, connected)
        _preflight()
        with self._locked():
            existing = _read_json(self._lease_path(name))
            if existing is not None:
                if existing["ready"] and existing["request"] == _request(ports, connected):
                    return _attachment(existing)
                if existing["ready"]:
                    raise RuntimeFailure(f"network attachment {name} already exists", _START)
                self._remove_locked(name)  # half-made by a crash: start over
            if connected and (not self._ready or not (SYS_NET / self.bridge).exists()):
                self._setup_locked()
            lease = self._lease(name, ports, connected, pid)
            write_json_atomic(self._lease_path(name), lease)
            try:
                self._build(lease, pid)
            except BaseException:
                self._remove_locked(name)
                raise
            lease["ready"] = True
            write_json_atomic(self._lease_path(name), lease)
            return _attachment(lease)

    def _lease(self, name: str, ports: tuple[PortMapping, ...], connected: bool,
               pid: int | None) -> dict:
        """Allocate the address, MAC and host ports (under the lock) as a not-ready lease."""
        lease = {"name": name, "netns": str(NETNS_DIR / name), "ready": False,
                 "request": _request(ports, connected), "pid": pid, "ipv4": None,
                 "mac": None, "gateway": None, "subnet": None, "bindings": []}
        if not connected:
            return lease
        others = self._leases()
        alloc = _read_json(self.state_dir / "alloc.json") or {}
        ip = self._next_ip(alloc.get("last_ip"), {other["ipv4"] for other in others})
        bindings, last_port = _bind_ports(name, ports, others, alloc.get("last_port", 0))
        write_json_atomic(self.state_dir / "alloc.json",
                          {"last_ip": str(ip), "last_port": last_port})
        lease.update(ipv4=str(ip), mac=mac_for(ip), gateway=str(self.gateway),
                     subnet=self.subnet, bindings=[asdict(b) for b in bindings])
        return lease

    def _next_ip(self, last: str | None, used: set[str | None]) -> ipaddress.IPv4Address:
        """Sequential from the last address handed out, wrapping: a just-freed address is
        reused last, so stale conntrack entries for it have time to expire."""
        first, top = int(self.gateway) + 1, int(self.net.broadcast_address) - 1
        start = int(ipaddress.IPv4Address(last)) + 1 if last else first
        start = start if first <= start <= top else first
        for value in (*range(start, top + 1), *range(first, start)):
            if str(ipaddress.IPv4Address(value)) not in used:
                return ipaddress.IPv4Address(value)
        raise RuntimeFailure(f"no free address left in {self.subnet}", _START)

    def _build(self, lease: dict, pid: int | None) -> None:
        name = lease["name"]
        if pid is None:
            run(["ip", "netns", "add", name])
        else:
            run(["ip", "netns", "attach", name, str(pid)])
        if lease["ipv4"] is None:
            run(["ip", "-n", name, "link", "set", "lo", "up"])
            return
        veth = host_veth(name)
        run(["ip", "-b", "-"], stdin=(
            f"link add {veth} type veth peer name eth0 address {lease['mac']} netns {name}\n"
            f"link set dev {veth} master {self.bridge}\n"
            # hairpin: a container reaching its own published port through a host address
            # is DNATed back out of the port it came in by
            f"link set dev {veth} type bridge_slave hairpin on\n"
            f"link set dev {veth} up\n"))
        run(["ip", "-n", name, "-b", "-"], stdin=(
            "link set dev lo up\n"
            f"addr add {lease['ipv4']}/{self.net.prefixlen} dev eth0\n"
            "link set dev eth0 up\n"
            f"route add default via {lease['gateway']}\n"))
        if lease["bindings"]:
            rules = [self._dnat_rule(name, lease["ipv4"], PortBinding(**b))
                     for b in lease["bindings"]]
            _restore({"nat": [f"-A {rule}" for rule in rules]})

    def _dnat_rule(self, name: str, ipv4: str, b: PortBinding) -> str:
        return (f"{self.chain_dnat} -p {b.protocol} -m {b.protocol} --dport {b.host_port} "
                f"-m comment --comment {name} -j DNAT --to-destination {ipv4}:{b.container_port}")

    def remove(self, name: str) -> None:
        """Delete the attachment's rules, veth, namespace and lease. Idempotent."""
        _validate(name, (), False)
        with self._locked():
            self._remove_locked(name)

    def _remove_locked(self, name: str) -> None:
        lease = _read_json(self._lease_path(name))
        # Rules exist only for a lease with bindings, written before them; no lease (or a
        # half-made one) may still hide rules, so the kernel's rule set is the authority.
        if lease is None or lease["bindings"] or not lease["ready"]:
            self._delete_rules(name)
        if (SYS_NET / host_veth(name)).exists():  # an adopted namespace outlives its name
            run(["ip", "link", "del", host_veth(name)])
        if (NETNS_DIR / name).exists():
            run(["ip", "netns", "del", name])
        self._lease_path(name).unlink(missing_ok=True)

    def _delete_rules(self, name: str) -> None:
        deletes = ["-D " + line[3:] for line in _save("nat").splitlines()
                   if line.startswith("-A ") and _comment(line) == name]
        if deletes:
            _restore({"nat": deletes})


def _preflight() -> None:
    """Root and the tools, checked before anything is touched (cheap: no subprocess)."""
    if os.geteuid() != 0:
        raise RuntimeUnavailable(
            "task networking needs root (network namespaces, veth, iptables): run Corral as root")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise RuntimeUnavailable(
            f"{', '.join(missing)} not found: install iproute2 and iptables "
            "(apt-get install iproute2 iptables)")


def _save(table: str) -> str:
    return run(["iptables-save", "-t", table])


def _restore(lines: dict[str, list[str]]) -> None:
    """Apply rule changes per table in one iptables-restore transaction (all or nothing),
    leaving every rule not named untouched (--noflush)."""
    body = "".join(f"*{table}\n" + "".join(f"{ln}\n" for ln in ls) + "COMMIT\n"
                   for table, ls in lines.items() if ls)
    if body:
        run(["iptables-restore", "--noflush"], stdin=body)


def _comment(rule: str) -> str | None:
    words = shlex.split(rule)
    for i, word in enumerate(words[:-1]):
        if word == "--comment":
            return words[i + 1]
    return None


def _request(ports: tuple[PortMapping, ...], connected: bool) -> dict:
    return {"connected": connected, "ports": [asdict(p) for p in ports]}


def _validate(name: str, ports: tuple[PortMapping, ...], connected: bool) -> None:
    """Contract checks: the agent has validated the task definition long before this."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"attachment name {name!r} must match {_NAME.pattern}")
    if ports and not connected:
        raise ValueError("an isolated (network mode none) namespace publishes no ports")
    for p in ports:
        if p.protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol {p.protocol!r} is neither tcp nor udp")
        if not (1 <= p.container_port <= 65535 and 0 <= p.host_port <= 65535):
            raise ValueError(f"port mapping {p} is out of range")


def _bind_ports(
    name: str, ports: tuple[PortMapping, ...], others: list[dict], last: int
) -> tuple[list[PortBinding], int]:
    """Host ports for ``ports``: fixed ones checked against other attachments and the host's
    listeners, dynamic ones by the agent's sequential scan. Returns them and the new last."""
    held = {(b["host_port"], b["protocol"]) for lease in others for b in lease["bindings"]}
    bindings = []
    for p in ports:
        if p.host_port:
            if (p.host_port, p.protocol) in held:
                raise RuntimeFailure(
                    f"{name}: host port {p.host_port}/{p.protocol} is already published by "
                    "another task", _START)
            if not port_free(p.host_port, p.protocol):
                raise RuntimeFailure(
                    f"{name}: host port {p.host_port}/{p.protocol} is already in use on the "
                    "host", _START)
            host_port = p.host_port
        else:
            low, high = dynamic_range()
            mine = {port for port, proto in held if proto == p.protocol}
            found = next_port(last, low, high, lambda c, pr=p.protocol: port_free(c, pr), mine)
            if found is None:
                raise RuntimeFailure(f"{name}: a host port is unavailable", _START)
            host_port = last = found
        held.add((host_port, p.protocol))
        bindings.append(PortBinding(p.container_port, host_port, p.protocol))
    return bindings, last


def _attachment(lease: dict) -> Attachment:
    return Attachment(
        name=lease["name"], netns=lease["netns"], ipv4=lease["ipv4"], mac=lease["mac"],
        gateway=lease["gateway"], subnet=lease["subnet"],
        bindings=tuple(PortBinding(**b) for b in lease["bindings"]))
