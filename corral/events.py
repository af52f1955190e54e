"""In-process events that wake controllers: ``image.pushed``, ``advisories.imported``, …

Publishing never blocks and never fails the publisher: subscribers are controllers that
only note the event and reconcile on their own thread.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger("corral.events")


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callable[[dict[str, Any]], None]]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, callback: Callable[[dict[str, Any]], None]) -> None:
        with self._lock:
            self._subscribers[topic].append(callback)

    def publish(self, topic: str, **payload: Any) -> None:
        with self._lock:
            callbacks = list(self._subscribers.get(topic, ()))
        for callback in callbacks:
            try:
                callback(payload)
            except Exception:  # a subscriber's bug must not fail the request that published
                log.exception("subscriber of %s failed", topic)
