"""Target groups at run time: members, their states, target choice and upstream connections.

A :class:`GroupRuntime` lives on the data plane's event loop (only that thread touches it) and
outlives routing-table swaps, so in-flight counts, round-robin position and pooled keep-alive
connections survive a rule change. Its members mirror the ``elb_targets`` rows of the group:

- choice (``choose``): among ``healthy`` members; if none is healthy but some are registered and
  not draining, *fail open* to all of those (ALB routes to every target when all are unhealthy,
  reference §8.1); ``draining`` members never get a new request; nothing left -> ``None`` (503);
- ``round_robin`` rotates; ``least_outstanding_requests`` takes the fewest in flight, rotating
  among ties; ``weighted_random`` picks at random (TG attribute
  ``load_balancing.algorithm.type``; every target weighs the same here);
- slow start (``slow_start.duration_seconds``): a member healthy for less than the duration is
  skipped with probability falling linearly to 0, so its share ramps up as ALB's does.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import h11

MAX_IDLE_PER_TARGET = 32


class Upstream:
    """One keep-alive connection to a target, with its HTTP/1.1 client state machine."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.reused = False

    @classmethod
    async def open(cls, host: str, port: int, timeout: float) -> Upstream:
        async with asyncio.timeout(timeout):  # not wait_for (proxy.next_event says why)
            reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def reusable(self) -> bool:
        """Both sides finished one exchange and the server kept the connection open."""
        if (self.conn.our_state, self.conn.their_state) != (h11.DONE, h11.DONE):
            return False
        self.conn.start_next_cycle()
        return self.usable()

    def close(self) -> None:
        self.writer.close()


@dataclass(eq=False)
class Member:
    """One registered target (Id, Port) as the proxy sees it."""

    target_id: str
    port: int
    host: str  # the address connected to (an instance id resolves to loopback)
    state: str = "initial"  # initial | healthy | unhealthy | draining
    healthy_since: float = 0.0  # monotonic time it last became healthy (slow start)
    in_flight: int = 0
    requests: int = 0
    idle: deque[Upstream] = field(default_factory=deque)

    @property
    def key(self) -> tuple[str, int]:
        return self.target_id, self.port

    def set_state(self, state: str) -> None:
        if state == "healthy" and self.state != "healthy":
            self.healthy_since = time.monotonic()
        self.state = state

    async def acquire(self, connect_timeout: float) -> Upstream:
        while self.idle:
            upstream = self.idle.pop()  # the most recently used is the least likely closed
            if upstream.usable():
                upstream.reused = True
                return upstream
            upstream.close()
        return await Upstream.open(self.host, self.port, connect_timeout)

    def release(self, upstream: Upstream, *, keep: bool) -> None:
        if keep and self.state != "gone" and len(self.idle) < MAX_IDLE_PER_TARGET \
                and upstream.reusable():
            self.idle.append(upstream)
        else:
            upstream.close()

    def close_idle(self) -> None:
        while self.idle:
            self.idle.pop().close()


@dataclass(eq=False)
class GroupRuntime:
    arn: str
    algorithm: str = "round_robin"
    slow_start: float = 0.0  # seconds; 0 = off
    members: dict[tuple[str, int], Member] = field(default_factory=dict)
    counts: Counter[int] = field(default_factory=Counter)  # responses by status code
    rng: random.Random = field(default_factory=random.Random)
    _next: int = 0

    def candidates(self) -> list[Member]:
        live = [m for m in self.members.values() if m.state != "draining"]
        healthy = [m for m in live if m.state == "healthy"]
        return healthy or live  # fail open when no target is healthy

    def choose(self) -> Member | None:
        members = self._ramped(self.candidates())
        if not members:
            return None
        self._next += 1
        if self.algorithm == "weighted_random":
            return self.rng.choice(members)
        if self.algorithm == "least_outstanding_requests":
            fewest = min(m.in_flight for m in members)
            members = [m for m in members if m.in_flight == fewest]
        return members[self._next % len(members)]

    def _ramped(self, members: list[Member]) -> list[Member]:
        if self.slow_start <= 0 or len(members) < 2:
            return members
        now = time.monotonic()
        kept = [m for m in members if m.state != "healthy"
                or self.rng.random() < min(1.0, (now - m.healthy_since) / self.slow_start)]
        return kept or members

    def remove(self, key: tuple[str, int]) -> None:
        member = self.members.pop(key, None)
        if member is not None:
            member.state = "gone"  # in-flight requests finish; their connections then close
            member.close_idle()

    def close(self) -> None:
        for key in list(self.members):
            self.remove(key)
