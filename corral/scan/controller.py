"""The scan controller: runs queued scans and continuous re-scans off the request path.

Level-triggered: each pass reads what needs doing from the store — PENDING scans (queued by a
push or StartImageScan), and continuously scanned images whose matching is older than the
advisories it depends on — so events only make it prompt, and a restart loses nothing
(scans a crash interrupted are queued again).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from corral.controller import Controller
from corral.scan import state
from corral.scan.layers import LayerError
from corral.scan.scanner import Scanner
from corral.store import Store

log = logging.getLogger("corral.scan")


class ScanController(Controller):
    name = "scanner"
    interval = 30.0

    def __init__(self, store: Store, scanner: Scanner):
        super().__init__()
        self.store = store
        self.scanner = scanner
        self._started = False

    def reconcile(self) -> None:
        if not self._started:
            with self.store.transaction() as db:
                state.requeue_interrupted(db)
            self._started = True
        with self.store.transaction() as db:
            state.drop_orphans(db)
        while not self._stop.is_set():
            with self.store.transaction(write=False) as db:
                queued = state.pending(db)
            if not queued:
                break
            for scan in queued:
                self._scan(scan)
        with self.store.transaction() as db:
            expired = state.expire_continuous(db, datetime.now(UTC))
        if expired:
            log.info("continuous scanning expired for %d images", expired)
        with self.store.transaction(write=False) as db:
            stale = state.stale_continuous(db)
        for image_id, digest, scope in stale:  # one inventory in memory at a time
            if self._stop.is_set():
                break
            with self.store.transaction(write=False) as db:
                scan = state.get(db, image_id, digest)
            if scan is None:
                continue  # deleted since
            opened, closed = self.scanner.rematch(scan, scope)
            del scan  # before the next one is loaded
            if opened or closed:
                log.info("re-scan of %s: %d findings opened, %d closed", digest, opened,
                         closed)

    def _scan(self, scan: state.Scan) -> None:
        try:
            self.scanner.run(scan)
        except (LayerError, OSError) as e:
            with self.store.transaction() as db:
                state.set_status(db, scan.image_id, "FAILED", f"the scan failed: {e}"[:1000])
        except Exception:
            log.exception("scan of %s failed", scan.digest)
            with self.store.transaction() as db:
                state.set_status(db, scan.image_id, "FAILED",
                                 "The scan failed with an internal error.")
