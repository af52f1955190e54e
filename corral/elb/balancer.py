"""The load balancer controller: keeps the data plane in step with the ELBv2 tables.

    controller thread (1 s resync, woken by ``elb.changed``)      data-plane thread (asyncio)
    ───────────────────────────────────────────────────────      ───────────────────────────
    expire drained targets (targets.expire_drained)
    snapshot.read(db) ──── LoopThread.call(plane.apply) ───────>  DataPlane.apply:
                                                                   groups: members in step with
                                                                     the rows, one health monitor
                                                                     per target
                                                                   listeners: start / rebind /
                                                                     stop servers, swap routing
    mark load balancers whose listeners  <── bound listeners ───
    are all bound ``active``                                      monitors write transitions
                                                                   (targets.set_state) off-loop

Level-triggered: every pass starts from the store, so a restart re-adopts every listener and
target state (a target stored ``healthy`` stays so until its checks say otherwise). The data
plane writes only LB ``State``, target health transitions (never per check) and the removal of
drained targets, as the ELB contract fixes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from corral.controller import Controller
from corral.elb import health, rules, snapshot, targets
from corral.elb.loop import LoopThread
from corral.elb.pool import GroupRuntime, Member
from corral.elb.proxy import ListenerServer, Routing
from corral.store import Store
from corral.store.schema import elb_load_balancers

log = logging.getLogger("corral.elb")

Key = tuple[str, str, int]  # (target group ARN, target id, port)


class DataPlane:
    """Every listener server and health monitor; lives on the loop thread only."""

    def __init__(self, host: str, store: Store | None):
        self.host = host
        self.store = store  # None in unit tests: transitions stay in memory
        self.listeners: dict[str, ListenerServer] = {}
        self.groups: dict[str, GroupRuntime] = {}
        self.specs: dict[str, snapshot.GroupSpec] = {}
        self.health: dict[Key, health.Health] = {}
        self.monitors: dict[Key, asyncio.Task] = {}
        self.writing: set[Key] = set()  # a transition of ours is being stored
        self.written: dict[Key, datetime] = {}  # the updated_at of our last stored transition
        self.bad_rules: set[str | None] = set()  # rules that do not compile, logged once

    async def apply(self, snap: snapshot.Snapshot) -> set[str]:
        """Make the running data plane match ``snap``; returns the bound listeners' ARNs."""
        for spec in snap.groups.values():
            self._sync_group(spec)
        for arn in set(self.groups) - set(snap.groups):
            self._drop_group(arn)
        await self._sync_listeners(snap.listeners)
        return set(self.listeners)

    # --- target groups ----------------------------------------------------------------------

    def _sync_group(self, spec: snapshot.GroupSpec) -> None:
        group = self.groups.setdefault(spec.arn, GroupRuntime(spec.arn))
        group.algorithm, group.slow_start = spec.algorithm, spec.slow_start
        self.specs[spec.arn] = spec
        wanted = {t.key: t for t in spec.targets}
        for key in set(group.members) - set(wanted):
            self._drop_member(group, key)
        for key, target in wanted.items():
            member = group.members.get(key)
            if member is None or member.host != target.host:
                if member is not None:
                    self._drop_member(group, key)
                member = group.members[key] = Member(target.target_id, target.port, target.host)
            self._adopt(spec.arn, member, target)

    def _adopt(self, tg_arn: str, member: Member, target: snapshot.TargetSpec) -> None:
        """Take the stored state, unless ours is newer: a write of ours is on its way, or the
        snapshot was read before our last transition was stored (the row predates it).
        Draining is the API's and always wins (health transitions never overwrite it)."""
        key = (tg_arn, *member.key)
        stored = (target.state, target.reason, target.description)
        if target.state == "draining":
            member.set_state("draining")
        elif key in self.writing or self._stale(key, target):
            pass
        elif (member.state == "draining" or key not in self.health  # draining: re-registered
              or self.health[key].shown != stored):
            self.health[key] = health.adopt(*stored)
            member.set_state(target.state)
        if key not in self.monitors or self.monitors[key].done():  # done: it crashed; restart
            self.monitors[key] = asyncio.create_task(self._monitor(tg_arn, member))

    def _stale(self, key: Key, target: snapshot.TargetSpec) -> bool:
        ours = self.written.get(key)
        return ours is not None and target.updated_at is not None and target.updated_at <= ours

    def _drop_member(self, group: GroupRuntime, key: tuple[str, int]) -> None:
        full = (group.arn, *key)
        task = self.monitors.pop(full, None)
        if task is not None:
            task.cancel()
        self.health.pop(full, None)
        self.written.pop(full, None)
        group.remove(key)

    def _drop_group(self, arn: str) -> None:
        group = self.groups.pop(arn)
        for key in list(group.members):
            self._drop_member(group, key)
        self.specs.pop(arn, None)

    async def _monitor(self, tg_arn: str, member: Member) -> None:
        """Check one target every interval; write only the transitions."""
        key = (tg_arn, *member.key)
        while member.state != "gone":
            settings = self.specs[tg_arn].health
            if member.state != "draining" and key in self.health:
                before = self.health[key]
                await self._record(key, member, health.started(before))
                result = await health.check(member.host, settings.check_port(member.port),
                                            settings)
                if member.state not in ("gone", "draining") and key in self.health:
                    await self._record(key, member,
                                       health.step(self.health[key], result, settings))
            await asyncio.sleep(settings.interval)

    async def _record(self, key: Key, member: Member, new: health.Health) -> None:
        old = self.health.get(key)
        if old is not None and old.shown == new.shown:
            self.health[key] = new  # same state, new counts: nothing to write
            return
        self.writing.add(key)
        now = datetime.now(UTC)
        try:
            stored = True if self.store is None else await asyncio.to_thread(
                self._write, key, new, now)
        except SQLAlchemyError:  # e.g. the database is locked: the next check tries again
            log.warning("target %s: health transition not stored", key, exc_info=True)
            return
        finally:
            self.writing.discard(key)
        if stored:  # rows read before this are older than what we know
            self.written[key] = now
        if member.state not in ("gone", "draining"):
            self.health[key] = new
            member.set_state(new.state)

    def _write(self, key: Key, new: health.Health, now: datetime) -> bool:
        """Store a transition; False when the row is gone or draining (nothing written)."""
        assert self.store is not None
        with self.store.transaction() as db:
            return targets.set_state(db, *key, *new.shown, now)

    # --- listeners --------------------------------------------------------------------------

    async def _sync_listeners(self, specs: tuple[snapshot.ListenerSpec, ...]) -> None:
        wanted = {s.arn: s for s in specs}
        for arn in set(self.listeners) - set(wanted):
            await self.listeners.pop(arn).stop()
        for spec in specs:
            routing = self._routing(spec)
            server = self.listeners.get(spec.arn)
            if server is not None and server.port != spec.port:
                await self.listeners.pop(spec.arn).stop()
                server = None
            if server is None:
                await self._bind(spec, routing)
            else:
                server.routing = routing  # atomic: a request sees the old or the new table

    def _routing(self, spec: snapshot.ListenerSpec) -> Routing:
        def bad(doc: dict, error: Exception) -> None:  # stored before the API checked it
            if doc.get("RuleArn") not in self.bad_rules:  # once, not every second
                self.bad_rules.add(doc.get("RuleArn"))
                log.error("listener %s: rule %s left out: %r", spec.arn, doc.get("RuleArn"),
                          error)

        compiled = rules.compile_rules(spec.rules, on_error=bad)
        used = {arn for rule in compiled for arn, _ in rule.forward}
        return Routing(compiled, {a: self.groups[a] for a in used if a in self.groups},
                       spec.idle_timeout, spec.protocol)

    async def _bind(self, spec: snapshot.ListenerSpec, routing: Routing) -> None:
        server = ListenerServer(self.host, spec.port, routing)
        try:
            await server.start()
        except OSError as e:  # someone took the port after CreateListener probed it
            log.warning("listener %s cannot bind %s:%d: %s", spec.arn, self.host, spec.port, e)
            return
        self.listeners[spec.arn] = server

    async def close(self) -> None:
        for server in self.listeners.values():
            await server.stop()
        self.listeners.clear()
        for arn in list(self.groups):
            self._drop_group(arn)
        await asyncio.gather(*self.monitors.values(), return_exceptions=True)


class LoadBalancerController(Controller):
    name = "elb"
    interval = 1.0

    def __init__(self, store: Store, host: str = "127.0.0.1"):
        super().__init__()
        self.store = store
        self.thread = LoopThread()
        self.plane = DataPlane(host, store)

    def start(self) -> None:
        self.thread.start()
        super().start()

    def stop(self, timeout: float = 10) -> None:
        super().stop(timeout)
        try:
            self.thread.call(self.plane.close(), timeout)
        finally:
            self.thread.stop(timeout)

    def reconcile(self) -> None:
        now = datetime.now(UTC)
        with self.store.transaction(write=False) as db:
            snap = snapshot.read(db)
        if snap.drained_due(now):
            with self.store.transaction() as db:
                targets.expire_drained(db, now)
            with self.store.transaction(write=False) as db:
                snap = snapshot.read(db)
        if self._stop.is_set():
            return
        bound = self.thread.call(self.plane.apply(snap))
        self._activate(snap, bound)

    def _activate(self, snap: snapshot.Snapshot, bound: set[str]) -> None:
        """provisioning -> active once every listener of the load balancer serves."""
        ready = [arn for arn in snap.provisioning
                 if all(s.arn in bound for s in snap.listeners if s.load_balancer_arn == arn)]
        if not ready:
            return
        with self.store.transaction() as db:
            for arn in ready:
                doc = db.execute(select(elb_load_balancers.c.doc)
                                 .where(elb_load_balancers.c.arn == arn)).scalar()
                if doc is not None and doc.get("State", {}).get("Code") == "provisioning":
                    db.execute(update(elb_load_balancers).where(elb_load_balancers.c.arn == arn)
                               .values(doc={**doc, "State": {"Code": "active"}}))
