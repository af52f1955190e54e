"""Task networking on this host, for real: namespaces, veths, the bridge, DNAT rules.

Root only (CI runs as root); a missing prerequisite fails with what to install. The tests use
their own bridge, subnet and state directory, so they never disturb a Corral server using
``corral0`` on the same machine, and a module fixture removes everything they made (namespaces,
links, rules, servers, state), also when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from corral.runtime.driver import PortMapping, RuntimeFailure
from corral.runtime.network import Attachment, HostNetwork, host_veth
from corral.runtime.ports import dynamic_range, next_port, port_free

BRIDGE, SUBNET = "crtest0", "10.231.0.0/16"
PREFIX = f"nt{os.getpid()}"  # every attachment name this module makes starts with it
TOOLS = {"ip": "iproute2", "iptables": "iptables", "iptables-save": "iptables",
         "busybox": "busybox-static", "unshare": "util-linux", "nsenter": "util-linux"}


def require_prerequisites() -> None:
    if os.geteuid() != 0:
        pytest.fail("network tests need root (namespaces, veth, iptables): run them as root")
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        pytest.fail(f"network tests need: apt-get install {' '.join(missing)}")


def sh(*argv: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


class Made:
    """What the tests created, so the cleanup fixture can undo it whatever happened."""

    def __init__(self) -> None:
        self.networks: list[HostNetwork] = []
        self.processes: list[subprocess.Popen] = []
        self.dirs: list[Path] = []

    def network(self, bridge: str = BRIDGE, subnet: str = SUBNET,
                state_dir: Path | None = None) -> HostNetwork:
        if state_dir is None:
            state_dir = Path(tempfile.mkdtemp(prefix="corral-net-"))
            self.dirs.append(state_dir)
        net = HostNetwork(state_dir, bridge=bridge, subnet=subnet)
        self.networks.append(net)
        return net

    def cleanup(self) -> None:
        for proc in self.processes:
            proc.kill()
            proc.wait()
        for net in self.networks:
            for name in net.names():
                net.remove(name)
        for name in sh("ip", "netns", "list").stdout.split():
            if name.startswith(PREFIX):
                sh("ip", "netns", "del", name, check=False)
        for net in self.networks:
            net.teardown_host()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def made() -> Iterator[Made]:
    require_prerequisites()
    record = Made()
    try:
        yield record
    finally:
        record.cleanup()


@pytest.fixture(scope="module")
def net(made: Made) -> HostNetwork:
    network = made.network()
    network.setup_host()
    return network


@pytest.fixture
def name(request, made: Made) -> Iterator[str]:
    """An attachment name unique to the test (``name + "-2"`` etc. for more); what the test
    made under it is removed when it ends."""
    base = f"{PREFIX}-{request.node.name[5:25].replace('_', '-')}".rstrip("-")
    yield base
    for net in made.networks:
        for held in net.names():
            if held.startswith(base):
                net.remove(held)


# -- helpers ----------------------------------------------------------------------------

@contextmanager
def serving(made: Made, att: Attachment, port: int, text: str) -> Iterator[None]:
    """busybox httpd inside the attachment's namespace, answering ``text`` on ``port``."""
    root = Path(tempfile.mkdtemp(prefix="corral-www-"))
    made.dirs.append(root)
    (root / "index.html").write_text(text)
    proc = subprocess.Popen(["ip", "netns", "exec", att.name, "busybox", "httpd", "-f",
                             "-p", str(port), "-h", str(root)])
    made.processes.append(proc)
    try:
        wait_listening(att.ipv4, port)
        yield
    finally:
        proc.kill()
        proc.wait()


def wait_listening(host: str | None, port: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def wait_tcp_listen(ns: str, port: int, timeout: float = 5) -> None:
    """Until a socket in the namespace listens on ``port`` (state 0A in /proc/net/tcp*;
    busybox nc listens on a dual-stack IPv6 socket)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = sh("ip", "netns", "exec", ns, "cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
        if any(f":{port:04X} " in line and line.split()[3] == "0A"
               for line in table.splitlines()[1:]):
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on {port} in {ns}")


def fetch(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as resp:
        return resp.read().decode()


def fetch_in(ns: str, host: str, port: int) -> str:
    """wget from inside a namespace (busybox wget's own -T crashes: timeout(1) instead)."""
    return sh("ip", "netns", "exec", ns, "timeout", "5", "busybox", "wget", "-q", "-O-",
              f"http://{host}:{port}/").stdout


def host_addresses() -> list[str]:
    """The host's own non-loopback IPv4 addresses, other than Corral bridges'."""
    doc = json.loads(sh("ip", "-j", "-4", "addr", "show", "scope", "global").stdout)
    return [a["local"] for link in doc if not link["ifname"].startswith(("corral", "cr"))
            for a in link.get("addr_info", [])]


def leftovers(name: str) -> list[str]:
    """Everything on the host still mentioning the attachment."""
    found = []
    if name in sh("ip", "netns", "list").stdout.split():
        found.append("netns")
    if host_veth(name) in sh("ip", "-o", "link").stdout:
        found.append("veth")
    if f"--comment {name} " in sh("iptables-save").stdout:
        found.append("iptables rule")
    return found


def free_port() -> int:
    """A port outside the dynamic range that nothing on the host listens on."""
    low, _ = dynamic_range()
    for port in range(low - 1000, low):
        if port_free(port):
            return port
    raise AssertionError("no free port below the dynamic range")


# -- the pure dynamic-port scan (ECS agent, agent/utils/ephemeral_ports.go) -------------

SCAN = [  # (id, last, low, high, unavailable, held, expected)
    ("first-use-starts-at-low", 0, 100, 110, set(), set(), 100),
    ("continues-after-last", 104, 100, 110, set(), set(), 105),
    ("skips-ports-a-listen-test-refuses", 104, 100, 110, {105, 106}, set(), 107),
    ("skips-ports-other-attachments-hold", 104, 100, 110, set(), {105}, 106),
    ("wraps-once-to-low", 108, 100, 110, {109, 110}, set(), 100),
    ("last-at-high-wraps", 110, 100, 110, set(), set(), 100),
    ("wraps-up-to-last-itself", 105, 100, 110, set(range(100, 111)) - {105}, set(), 105),
    ("last-outside-range-starts-at-low", 5000, 100, 110, set(), set(), 100),
    ("exhausted-range-is-none", 103, 100, 110, set(range(100, 106)), set(range(106, 111)),
     None),
]


@pytest.mark.parametrize("last,low,high,unavailable,held,expected",
                         [case[1:] for case in SCAN], ids=[case[0] for case in SCAN])
def test_dynamic_port_scan_order(last, low, high, unavailable, held, expected):
    assert next_port(last, low, high, lambda p: p not in unavailable, held) == expected


def test_dynamic_range_is_the_kernel_ephemeral_range(tmp_path):
    low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range")
                 .read_text().split())
    assert dynamic_range() == (low, high)
    bogus = tmp_path / "range"
    bogus.write_text("nonsense")
    assert dynamic_range(bogus) == (49153, 65535)  # the agent's fallback


def test_port_free_is_a_real_listen_test():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert not port_free(port)  # a listener on one address blocks all of them
    assert port_free(port)


# -- host set-up ---------------------------------------------------------------------------

def test_setup_host_is_idempotent_and_hooks_each_chain_once(net):
    net.setup_host()
    net.setup_host()
    rules = sh("iptables-save").stdout.splitlines()
    for hook in (f"-A PREROUTING -m addrtype --dst-type LOCAL -j {net.chain_dnat}",
                 f"-A OUTPUT -m addrtype --dst-type LOCAL -j {net.chain_dnat}",
                 f"-A POSTROUTING -j {net.chain_post}", f"-A FORWARD -j {net.chain_fwd}"):
        assert rules.count(hook) == 1, hook
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
    assert Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet").read_text().strip() == "1"
    addr = sh("ip", "-4", "-o", "addr", "show", "dev", BRIDGE).stdout
    assert "10.231.0.1/16" in addr


# -- connected namespaces ------------------------------------------------------------------

def test_two_namespaces_ping_and_talk_tcp_over_the_bridge(net, made, name):
    a, b = net.create(name + "-a"), net.create(name + "-b")
    assert a.ipv4 != b.ipv4 and a.subnet == SUBNET and a.gateway == "10.231.0.1"
    assert a.netns == f"/run/netns/{a.name}" and Path(a.netns).exists()
    sh("ip", "netns", "exec", a.name, "busybox", "ping", "-c", "1", "-W", "3", b.ipv4)
    listener = subprocess.Popen(["ip", "netns", "exec", b.name, "busybox", "nc", "-l",
                                 "-p", "7000"], stdout=subprocess.PIPE, text=True)
    made.processes.append(listener)
    wait_tcp_listen(b.name, 7000)  # no probe connection: nc serves exactly one
    subprocess.run(["ip", "netns", "exec", a.name, "busybox", "nc", b.ipv4, "7000"],
                   input="over the bridge\n", text=True, timeout=5, check=True)
    out, _ = listener.communicate(timeout=5)
    assert out == "over the bridge\n"


def test_fixed_and_dynamic_host_ports_answer_on_the_host(net, made, name):
    fixed = free_port()
    att = net.create(name, (PortMapping(80, fixed), PortMapping(8080, 0)))
    by_container = {b.container_port: b for b in att.bindings}
    dynamic = by_container[8080].host_port
    low, high = dynamic_range()
    assert by_container[80].host_port == fixed and low <= dynamic <= high
    assert all(b.bind_ip == "0.0.0.0" and b.protocol == "tcp" for b in att.bindings)
    with serving(made, att, 80, "fixed"), serving(made, att, 8080, "dynamic"):
        for host in ["127.0.0.1", "localhost", att.gateway, *host_addresses()]:
            assert fetch(host, fixed) == "fixed", host
            assert fetch(host, dynamic) == "dynamic", host


def test_published_port_answers_other_namespaces_and_itself_via_host_address(
        net, made, name):
    server, client = net.create(name + "-s", (PortMapping(80, 0),)), net.create(name + "-c")
    port = server.bindings[0].host_port
    with serving(made, server, 80, "hello"):
        for host in [*host_addresses(), server.gateway]:
            for _ in range(3):  # repeatedly: no ICMP redirect may teach a shortcut
                assert fetch_in(client.name, host, port) == "hello", host
            assert fetch_in(server.name, host, port) == "hello", f"hairpin via {host}"


def test_same_fixed_host_port_is_refused_for_a_second_attachment(net, name):
    port = free_port()
    first = net.create(name + "-1", (PortMapping(80, port),))
    with pytest.raises(RuntimeFailure, match=f"host port {port}/tcp is already published") as e:
        net.create(name + "-2", (PortMapping(8080, port),))
    assert e.value.kind == "CannotStartContainerError"
    assert name + "-2" not in net.names() and leftovers(name + "-2") == []
    # the other protocol is another port
    udp = net.create(name + "-3", (PortMapping(53, port, "udp"),))
    assert udp.bindings[0].host_port == port and first.bindings[0].host_port == port


def test_host_port_in_use_on_the_host_is_refused(net, name):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeFailure, match=f"{port}/tcp is already in use on the host"):
            net.create(name, (PortMapping(80, port),))
    assert leftovers(name) == [] and name not in net.names()


def test_dynamic_ports_are_sequential_and_skip_held_and_busy_ports(net, name):
    first = net.create(name + "-1", (PortMapping(80, 0),)).bindings[0].host_port
    _, high = dynamic_range()
    expected = first + 1 if first < high and port_free(first + 1) else None
    second = net.create(name + "-2", (PortMapping(80, 0),)).bindings[0].host_port
    if expected is not None:
        assert second == expected
    # Rewind the shared sequence: the scan must pass over both held ports.
    alloc = net.state_dir / "alloc.json"
    doc = json.loads(alloc.read_text())
    alloc.write_text(json.dumps({**doc, "last_port": first - 1}))
    with socket.socket() as busy:  # and over a port a host process listens on
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("0.0.0.0", second + 1))
        busy.listen(1)
        third = net.create(name + "-3", (PortMapping(80, 0),)).bindings[0].host_port
    assert third not in (first, second, second + 1) and third > second


def test_concurrent_creates_get_distinct_addresses_and_ports(net, name):
    def create(i: int) -> Attachment:
        # a HostNetwork per thread: the flock, not a shared object, serialises them
        other = HostNetwork(net.state_dir, bridge=BRIDGE, subnet=SUBNET)
        return other.create(f"{name}-{i}", (PortMapping(80, 0),))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8)))
    assert len({a.ipv4 for a in results}) == len({a.mac for a in results}) == 8
    assert len({a.bindings[0].host_port for a in results}) == 8


# -- isolated namespaces, adoption, state --------------------------------------------------

def test_none_namespace_has_only_loopback(net, name):
    att = net.create(name, connected=False)
    assert (att.ipv4, att.mac, att.gateway, att.subnet, att.bindings) == (
        None, None, None, None, ())
    links = json.loads(sh("ip", "-n", name, "-j", "link").stdout)
    assert [link["ifname"] for link in links] == ["lo"]
    assert "UP" in links[0]["flags"]
    with pytest.raises(ValueError, match="publishes no ports"):
        net.create(name + "-p", (PortMapping(80, 0),), connected=False)


def test_adopts_a_running_process_namespace(net, made, name):
    proc = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    made.processes.append(proc)
    for _ in range(100):  # until unshare has exec'd sleep in its new namespace
        if os.readlink(f"/proc/{proc.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
            break
        time.sleep(0.01)
    att = net.create(name, pid=proc.pid)
    inside = sh("nsenter", f"--net=/proc/{proc.pid}/ns/net", "ip", "-4", "-o", "addr").stdout
    assert f"{att.ipv4}/16" in inside
    sh("nsenter", f"--net=/proc/{proc.pid}/ns/net", "busybox", "ping", "-c", "1", "-W", "3",
       att.gateway)
    net.remove(name)
    assert leftovers(name) == []
    inside = sh("nsenter", f"--net=/proc/{proc.pid}/ns/net", "ip", "-o", "link").stdout
    assert "eth0" not in inside  # the process lives on, unwired


def test_state_survives_a_new_host_network_object(net, made, name):
    att = net.create(name, (PortMapping(80, 0),))
    again = made.network(state_dir=net.state_dir)
    assert again.get(name) == att and name in again.names()
    assert again.create(name, (PortMapping(80, 0),)) == att  # same request: the same one
    with pytest.raises(RuntimeFailure, match="already exists"):
        again.create(name, (PortMapping(81, 0),))
    again.remove(name)
    assert net.get(name) is None and name not in net.names()


def test_remove_leaves_nothing_and_is_idempotent(net, made, name):
    att = net.create(name, (PortMapping(80, 0), PortMapping(53, 0, "udp")))
    assert set(leftovers(name)) == {"netns", "veth", "iptables rule"}
    net.remove(name)
    assert leftovers(name) == []
    assert not (net.state_dir / "leases" / f"{name}.json").exists()
    net.remove(name)
    net.remove(name + "-never-made")
    with pytest.raises(OSError):  # nothing answers the port any more
        fetch("127.0.0.1", att.bindings[0].host_port)


def test_half_made_attachment_is_listed_hidden_and_cleaned(net, name):
    """A crash between the lease and its effects: names() lists it, get() does not return
    it, and remove() or a new create() clears what was made."""
    net.create(name, (PortMapping(80, 0),))
    lease_path = net.state_dir / "leases" / f"{name}.json"
    lease = json.loads(lease_path.read_text())
    lease_path.write_text(json.dumps({**lease, "ready": False}))
    assert net.get(name) is None and name in net.names()
    rebuilt = net.create(name, (PortMapping(80, 0),))
    rules = sh("iptables-save", "-t", "nat").stdout
    assert rules.count(f"--comment {name} ") == 1 and net.get(name) == rebuilt


@pytest.mark.parametrize("bad", ["", "-leading-dash", "has space", "a/b", "x" * 201])
def test_invalid_attachment_names_are_refused(net, bad):
    with pytest.raises(ValueError, match="attachment name"):
        net.create(bad)


def test_teardown_host_only_when_no_attachment_is_left(made, name):
    other = made.network(bridge="crtest1", subnet="10.232.0.0/16")
    att = other.create(name)
    assert other.teardown_host() is False and Path("/sys/class/net/crtest1").exists()
    other.remove(att.name)
    assert other.teardown_host() is True
    assert not Path("/sys/class/net/crtest1").exists()
    assert "crtest1" not in sh("iptables-save").stdout
