"""Controllers: background reconcile loops owned by the app.

Each controller runs ``reconcile()`` on its own thread: on start, when woken (an event), and
every ``interval`` seconds. ``reconcile`` reads state, calls a pure planner, applies the plan,
and must be safe to rerun after a crash (level-triggered, like Kubernetes controllers).
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("corral.controller")


class Controller:
    name = "controller"
    interval: float = 3600.0

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reconcile(self) -> None:
        raise NotImplementedError

    def wake(self, _payload: dict | None = None) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"controller-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except Exception:  # keep looping: the next pass starts from state again
                log.exception("controller %s failed; retrying at the next wake-up", self.name)
            self._wake.wait(self.interval)
            self._wake.clear()
