"""Dynamic host ports, chosen the way the ECS agent chooses them.

The agent (``agent/utils/ephemeral_ports.go``) keeps the last port it assigned and scans
sequentially from ``last + 1`` to the top of the dynamic range, then wraps once to the bottom;
each candidate is tested by really listening on it (``net.Listen`` / ``ListenPacket`` on all
addresses). The range is the kernel's ``/proc/sys/net/ipv4/ip_local_port_range`` (the agent's
default when ``ECS_DYNAMIC_HOST_PORT_RANGE`` is unset), else ``49153-65535``.

``next_port`` is the pure part (the scan order, with the availability test passed in, so a
table test can drive it); ``port_free`` is the listen test; ``dynamic_range`` reads the range.
The caller (``corral.runtime.network``) keeps ``last`` in host-global state under its lock, so
several Corral servers on one host continue one sequence instead of racing each other.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Collection
from itertools import chain
from pathlib import Path

KERNEL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
FALLBACK_RANGE = (49153, 65535)  # the agent's and Docker's fallback


def dynamic_range(path: Path = KERNEL_RANGE) -> tuple[int, int]:
    """The kernel's ephemeral range ("low high"), else the agent's fallback 49153-65535."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return FALLBACK_RANGE
    if not 1 <= low <= high <= 65535:
        return FALLBACK_RANGE
    return low, high


def next_port(
    last: int,
    low: int,
    high: int,
    available: Callable[[int], bool],
    held: Collection[int] = (),
) -> int | None:
    """The first usable port scanning ``last+1 .. high`` then ``low .. last`` (one wrap).

    ``held`` are ports other attachments already publish: nothing listens on them on the host
    (they are DNAT rules), so the listen test alone would hand them out twice. A ``last`` outside
    the range (first use, or the range changed) starts the scan at ``low``. None when every port
    of the range is taken: the agent's ``a host port is unavailable``.
    """
    start = last + 1 if low <= last < high else low
    for port in chain(range(start, high + 1), range(low, start)):
        if port not in held and available(port):
            return port
    return None


def port_free(port: int, protocol: str = "tcp") -> bool:
    """Whether ``port`` can be bound on every address, the agent's listen test.

    SO_REUSEADDR as Go sets it, so a port only held by TIME_WAIT connections counts as free
    while a listener (on any address) or a bound UDP socket makes it unavailable."""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
            if kind == socket.SOCK_STREAM:
                sock.listen(1)
        except OSError:
            return False
    return True
