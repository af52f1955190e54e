"""The task agent: carries out each task's state machine on this host's runtime.

    TaskAgent (controller, woken by RunTask/StopTask and every few seconds)
      ├─ one TaskWorker thread per task that is not STOPPED (also adopted after a restart)
      │    loop: observe the driver ─> task_engine.plan (pure) ─> apply actions ─> save
      │    awslogs containers: the stream is opened before create; their output is shipped
      │    by the LogShipper (log_shipper.py) and finished before cleanup or a restart
      ├─ removes runtime containers and sandboxes no active task accounts for
      └─ forgets STOPPED tasks after the retention period (their saved logs with them)

Only the worker of a task writes its containers' facts; StopTask only sets the desired
status, which the worker merges in when it saves. What the supervisors recorded (exit codes,
OOM kills) is read back through ``driver.state``, so a task whose container exited while
Corral was down gets its real exit code when the worker comes back.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from corral.aws.context import Principal
from corral.controller import Controller
from corral.ecs import container_spec, health, task_engine, tasks
from corral.ecs.task_engine import PRIVATE, Action
from corral.runtime.driver import (
    ImageContent,
    RuntimeDriver,
    RuntimeFailure,
    SandboxSpec,
)
from corral.runtime.images import account_principal, role_principal
from corral.store import Store
from corral.store import tags as tag_store

log = logging.getLogger("corral.ecs.agent")

RETENTION = timedelta(hours=3)  # ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION (reference §2.4)
FAST_TICK, SLOW_TICK = 0.2, 1.0
STOP_FIELDS = ("desiredStatus", "stopCode", "stoppedReason", "stoppingAt")


class TaskAgent(Controller):
    name = "ecs-agent"
    interval = 5.0

    def __init__(self, store: Store, driver: RuntimeDriver, images, data_dir: Path, *,
                 stop_timeout: float = 30.0, pids_limit: int = 0):
        super().__init__()
        self.store = store
        self.driver = driver
        self.images = images  # corral.runtime.images.ImageResolver
        self.dir = data_dir / "ecs" / "tasks"
        self.shared_volumes = data_dir / "ecs" / "volumes"
        self.stop_timeout = stop_timeout
        self.pids_limit = pids_limit
        self.workers: dict[tuple[str, str, str], TaskWorker] = {}
        self.shipper = None  # corral.ecs.log_shipper.LogShipper (awslogs), set by the app
        self.unavailable: str | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        try:
            self.driver.check()
        except RuntimeFailure as e:
            self.unavailable = str(e)
            log.error("container runtime unavailable: %s", e)
        super().start()

    def stop(self, timeout: float = 10) -> None:
        super().stop(timeout)
        for worker in list(self.workers.values()):
            worker.halt()

    def wake(self, payload: dict | None = None) -> None:
        key = (payload or {}).get("task")
        worker = self.workers.get(tuple(key)) if key else None
        if worker is not None:
            worker.wake()
        super().wake(payload)

    # --- the controller pass ------------------------------------------------------------

    def reconcile(self) -> None:
        with self.store.transaction(write=False) as db:
            active = tasks.active(db)
        keys = set()
        with self._lock:
            for row in active:
                key = (row.account_id, row.region, row.task_id)
                keys.add(key)
                worker = self.workers.get(key)
                if worker is None or not worker.is_alive():
                    self.workers[key] = TaskWorker(self, key)
                    self.workers[key].start()
            for key in [k for k, w in self.workers.items() if not w.is_alive()]:
                del self.workers[key]
        self._collect_orphans({k[2] for k in keys} | {k[2] for k in self.workers})
        self._purge()

    def _collect_orphans(self, active_ids: set[str]) -> None:
        """Containers and sandboxes of no active task: left by a crash mid-cleanup."""
        for runtime_id in self.driver.list():
            if runtime_id.split("-", 1)[0] not in active_ids:
                log.info("removing runtime container %s of no active task", runtime_id)
                self._quietly(self.driver.remove, runtime_id)
        for sandbox_id in self.driver.sandboxes():
            if sandbox_id not in active_ids:
                self._quietly(self.driver.remove_sandbox, sandbox_id)

    def _purge(self) -> None:
        cutoff = datetime.now(UTC) - RETENTION
        with self.store.transaction(write=False) as db:  # the write lock only when needed
            if not tasks.stopped_before(db, cutoff):
                return
        with self.store.transaction() as db:
            gone = tasks.stopped_before(db, cutoff)
            for row in gone:
                tasks.remove(db, row)
                tag_store.remove_all(db, row.doc["taskArn"])
        for row in gone:
            shutil.rmtree(self.dir / row.task_id, ignore_errors=True)

    @staticmethod
    def _quietly(fn: Callable, *args) -> None:
        try:
            fn(*args)
        except RuntimeFailure as e:
            log.warning("%s(%s) failed: %s", fn.__name__, args, e)

    # --- what workers share -------------------------------------------------------------

    def task_dir(self, task_id: str) -> Path:
        return self.dir / task_id

    def saved_log(self, task_id: str, container: str) -> Path:
        return self.task_dir(task_id) / "logs" / f"{container}.log"


class TaskWorker(threading.Thread):
    """Drives one task until it is STOPPED and cleaned up."""

    def __init__(self, agent: TaskAgent, key: tuple[str, str, str]):
        super().__init__(name=f"task-{key[2][:8]}", daemon=True)
        self.agent = agent
        self.key = key
        self.driver = agent.driver
        self.images: dict[str, ImageContent] = {}
        self._wake = threading.Event()
        self._halt = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def halt(self) -> None:
        self._halt.set()
        self._wake.set()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                done, tick = self.step()
            except Exception:  # the edge of a worker thread: log, retry from state
                log.exception("task %s: step failed; retrying", self.key[2])
                done, tick = False, SLOW_TICK * 2
            if done:
                return
            self._wake.wait(tick)
            self._wake.clear()

    def step(self) -> tuple[bool, float]:
        with self.agent.store.transaction(write=False) as db:
            row = tasks.get(db, *self.key)
        if row is None:
            return True, 0
        facts = row.private["containers"]
        observed = {f["runtimeId"]: self.driver.state(f["runtimeId"])
                    for f in facts.values() if f["known"] in ("CREATED", "RUNNING")}
        now = time.time()
        plan = task_engine.plan(row.doc, observed, now,
                                default_stop_timeout=self.agent.stop_timeout)
        doc = plan.doc
        for action in plan.actions:
            self.apply(action, doc, row)
        if plan.actions:
            task_engine.project(doc)  # the actions' outcomes, in the API view
        self._save(row, doc)
        if doc["lastStatus"] == "STOPPED":
            return True, 0
        if plan.actions:
            return False, 0.0  # go on at once: the next step acts on what this one did
        busy = doc["lastStatus"] != "RUNNING" or doc["desiredStatus"] != "RUNNING"
        return False, FAST_TICK if busy else self._idle_tick(doc, now)

    def _idle_tick(self, doc: dict, now: float) -> float:
        due = [f["health"]["nextAt"] for f in doc[PRIVATE]["containers"].values()
               if f.get("health") and f["known"] == "RUNNING"]
        return max(0.05, min([SLOW_TICK, *(d - now for d in due)]))

    def _save(self, row: tasks.TaskRow, doc: dict) -> None:
        if doc == row.doc:
            return  # nothing happened: no write lock taken (idle tasks tick every second)
        with self.agent.store.transaction() as db:
            current = tasks.get(db, *self.key)
            if current is None:
                return
            if current.doc["desiredStatus"] == "STOPPED" and doc["desiredStatus"] == "RUNNING":
                for k in STOP_FIELDS:  # StopTask arrived meanwhile: the user's words win
                    if k in current.doc:
                        doc[k] = current.doc[k]
            if "lb" in current.private:  # the scheduler's (load_balancing.py): its word wins
                doc[PRIVATE]["lb"] = current.private["lb"]
            changed = task_engine.visible(doc) != task_engine.visible(current.doc)
            if doc == current.doc:
                return
            current.doc = doc
            tasks.save(db, current, bump=changed)

    # --- actions ------------------------------------------------------------------------

    def apply(self, action: Action, doc: dict, row: tasks.TaskRow) -> None:
        handler = getattr(self, f"_do_{action.kind}")
        handler(action, doc, row)

    def _do_sandbox(self, action: Action, doc: dict, row: tasks.TaskRow) -> None:
        p, td = doc[PRIVATE], doc[PRIVATE]["td"]
        if self.agent.unavailable:
            task_engine.fail_to_start(doc, f"ResourceInitializationError: "
                                           f"{self.agent.unavailable}", time.time())
            return
        awsvpc = td.get("networkMode") == "awsvpc"
        spec = SandboxSpec(id=row.task_id, network="awsvpc" if awsvpc else "other",
                           cpu_units=_int(doc.get("cpu")) if doc.get("cpu") else None,
                           memory_mib=_int(doc.get("memory")) if doc.get("memory") else None)
        try:
            sandbox = self.driver.create_sandbox(spec)
        except RuntimeFailure as e:
            task_engine.fail_to_start(doc, f"ResourceInitializationError: {e}", time.time())
            return
        p["sandbox"] = True
        if awsvpc and doc.get("attachments"):
            _attach_eni(doc, sandbox)

    def _do_pull(self, action: Action, doc: dict, row: tasks.TaskRow) -> None:
        doc.setdefault("pullStartedAt", time.time())
        try:
            principal = self._pull_principal(doc, row)
        except RuntimeFailure as e:  # the execution role cannot be assumed
            task_engine.fail_to_start(doc, f"{e.kind}: {e}", time.time())
            return
        for c in doc["containers"]:
            f = doc[PRIVATE]["containers"][c["name"]]
            if f["known"] != "NONE":
                continue
            try:
                image = self.agent.images.resolve(c["image"], principal, row.region)
            except RuntimeFailure as e:
                task_engine.fail_to_start(doc, f"CannotPullContainerError: {e}", time.time(),
                                          container=c["name"])
                break
            self.images[c["name"]] = image
            f["imageDigest"] = image.digest
        doc["pullStoppedAt"] = time.time()
        doc[PRIVATE]["pulled"] = True

    def _pull_principal(self, doc: dict, row: tasks.TaskRow) -> Principal:
        """Images are pulled as the task's execution role, else as the account (the ECS agent
        uses the instance role, which Corral's account root stands for)."""
        role = (doc.get("overrides") or {}).get("executionRoleArn") or \
            doc[PRIVATE]["td"].get("executionRoleArn")
        if role:
            with self.agent.store.transaction() as db:  # may open an STS session of the role
                return role_principal(db, role, row.task_id)
        return account_principal(row.account_id)

    def _spec(self, name: str, doc: dict, row: tasks.TaskRow):
        p = doc[PRIVATE]
        td = p["td"]
        by_name = {c["name"]: container_spec.effective(c, doc.get("overrides"))
                   for c in td["containerDefinitions"]}
        image = self.images.get(name)
        if image is None:  # adopted after a restart, or restarted in place
            image = self.agent.images.resolve(by_name[name]["image"],
                                              self._pull_principal(doc, row), row.region)
            self.images[name] = image
        volumes = container_spec.volume_sources(td, self.agent.task_dir(row.task_id),
                                                self.agent.shared_volumes)
        for path in volumes.values():
            path.mkdir(parents=True, exist_ok=True)
        sandbox = self.driver.sandbox(row.task_id)
        if sandbox is None:
            raise RuntimeFailure("the task's sandbox is gone", "CannotCreateContainerError")
        return container_spec.build(
            runtime_id=p["containers"][name]["runtimeId"], definition=by_name[name],
            image=image, task_def=td, task_doc=doc, sandbox=sandbox,
            mount_list=container_spec.mounts(by_name[name], by_name, volumes),
            labels=_labels(doc, name), pids_limit=self.agent.pids_limit)

    def _do_start(self, action: Action, doc: dict, row: tasks.TaskRow) -> None:
        f = doc[PRIVATE]["containers"][action.container]
        try:
            spec = self._spec(action.container, doc, row)
            doc[PRIVATE].setdefault("stopSignals", {})[action.container] = spec.stop_signal
            self.driver.remove(spec.id)  # a start repeated after a crash: begin afresh
            self._open_log_stream(action.container, doc, row, spec.id)
            self.driver.create(spec)
            f["known"] = "CREATED"
            self.driver.start(spec.id)
        except (RuntimeFailure, OSError) as e:  # OSError: e.g. a host volume path refused
            f["known"], f["finishedAt"] = "STOPPED", time.time()
            kind = getattr(e, "kind", "CannotCreateContainerError")
            f.setdefault("reason", f"{kind}: {e}"[:1024])
            return
        f["known"], f["startedAt"] = "RUNNING", time.time()

    def _open_log_stream(self, name: str, doc: dict, row: tasks.TaskRow, runtime_id: str
                         ) -> None:
        """awslogs: the group and stream exist before the container runs (a failure is the
        container's CannotStartContainerError / CannotCreateContainerError)."""
        shipper = self.agent.shipper
        definition = next(c for c in doc[PRIVATE]["td"]["containerDefinitions"]
                          if c["name"] == name)
        if shipper is None or not definition.get("logConfiguration"):
            return
        with self.agent.store.transaction() as db:
            opened = shipper.open_stream(db, row, definition, runtime_id)
        if opened:
            doc[PRIVATE]["containers"][name]["awslogs"] = opened

    def _finish_log(self, name: str, doc: dict, row: tasks.TaskRow, *, restart: bool) -> None:
        """awslogs: what the container wrote is shipped before its log goes away."""
        if self.agent.shipper is not None and doc[PRIVATE]["containers"][name].get("awslogs"):
            self.agent.shipper.finish(row, doc, name, restart=restart)

    def _do_restart(self, action: Action, doc: dict, row: tasks.TaskRow) -> None:
        f = doc[PRIVATE]["containers"][action.container]
        self._finish_log(action.container, doc, row, restart=True)
        self.driver.remove(f["runtimeId"])
        for key in ("exitCode", "finishedAt", "health", "stopSentAt", "killSent"):
            f.pop(key, None)
        f["known"], f["restartCount"] = "NONE", f.get("restartCount", 0) + 1
        f["restartedAt"] = time.time()
        self._do_start(action, doc, row)

    def _do_signal(self, action: Action, doc: dict, row: tasks.TaskRow) -> None:
        f = doc[PRIVATE]["containers"][action.container]
        try:
            self.driver.kill(f["runtimeId"], action.signal or "SIGTERM")
        except RuntimeFailure as e:
            log.warning("task %s: kill %s failed: %s", row.task_id, action.container, e)

    def _do_health(self, action: Action, doc: dict, row: tasks.TaskRow) -> None:
        f = doc[PRIVATE]["containers"][action.container]
        check = next(c for c in doc[PRIVATE]["td"]["containerDefinitions"]
                     if c["name"] == action.container)["healthCheck"]
        timeout = health.settings(check)["timeout"]
        try:
            result = self.driver.exec(f["runtimeId"], health.argv(check), timeout)
            code, output = result.exit_code, result.output
        except RuntimeFailure as e:
            code, output = 1, str(e)
        f["health"] = health.record(f["health"], check, exit_code=code, output=output,
                                    now=time.time(), started_at=f["startedAt"])

    def _do_cleanup(self, action: Action, doc: dict, row: tasks.TaskRow) -> None:
        for name, f in doc[PRIVATE]["containers"].items():
            self._finish_log(name, doc, row, restart=False)
            self._keep_log(row.task_id, name, f["runtimeId"])
            TaskAgent._quietly(self.driver.remove, f["runtimeId"])
        TaskAgent._quietly(self.driver.remove_sandbox, row.task_id)
        shutil.rmtree(self.agent.task_dir(row.task_id) / "volumes", ignore_errors=True)
        for a in doc.get("attachments") or []:
            a["status"] = "DELETED"
        doc[PRIVATE]["cleaned"] = True

    def _keep_log(self, task_id: str, name: str, runtime_id: str) -> None:
        """Container output outlives the container (until the task is forgotten)."""
        try:
            src = self.driver.log_path(runtime_id)
        except RuntimeFailure:
            return
        dest = self.agent.saved_log(task_id, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        parts = sorted(src.parent.glob(src.name + ".*"), key=lambda q: -_int(q.suffix[1:]))
        tmp = dest.with_suffix(".tmp")  # a cleanup repeated after a crash writes it anew
        with open(tmp, "wb") as out:
            for part in [*parts, src]:
                if part.exists():
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out)
        os.replace(tmp, dest)


def _int(text: Any) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def _labels(doc: dict, name: str) -> dict[str, str]:
    """The labels the ECS agent puts on every container (reference §5)."""
    td_arn = doc["taskDefinitionArn"]
    family, _, revision = td_arn.rsplit("/", 1)[1].partition(":")
    return {"com.amazonaws.ecs.task-arn": doc["taskArn"],
            "com.amazonaws.ecs.container-name": name,
            "com.amazonaws.ecs.task-definition-family": family,
            "com.amazonaws.ecs.task-definition-version": revision,
            "com.amazonaws.ecs.cluster": doc["clusterArn"].rsplit("/", 1)[1]}


def _attach_eni(doc: dict, sandbox) -> None:
    """awsvpc: the sandbox's address is the task's ENI (reference §5)."""
    attachment = doc["attachments"][0]
    attachment["status"] = "ATTACHED"
    eni = "eni-" + doc["taskArn"].rsplit("/", 1)[1][:17]
    details = {d["name"]: d for d in attachment["details"]}
    for name, value in (("networkInterfaceId", eni), ("macAddress", sandbox.mac or ""),
                        ("privateIPv4Address", sandbox.ipv4 or ""),
                        ("privateDnsName", f"ip-{(sandbox.ipv4 or '').replace('.', '-')}"
                                           f".ec2.internal")):
        details[name] = {"name": name, "value": value}
    attachment["details"] = list(details.values())
    for c in doc["containers"]:
        c["networkInterfaces"] = [{"attachmentId": attachment["id"],
                                   "privateIpv4Address": sandbox.ipv4}]
