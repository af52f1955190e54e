"""Scanning one image: the edge between blobs, the pure inventory/matcher code and the store.

    manifest ─> layers in order ─> per layer: cached inventory (by digest) or read the blob
    ─> merge ─> match against the advisory database ─> record status, inventory, findings

Runs on the scan controller's thread, never on a request. Short transactions: reading a
layer happens outside any transaction, so pushes and API calls are never blocked by a scan.

The layer cache (``scan_layer_cache``, keyed by digest and ``catalogers.VERSION``) holds what
reading a layer produced — its inventory, or ``{"refused": reason, "status": status,
"limits": layers.guard_limits()}`` when the reader refused it for a reason that follows from
its bytes alone (a decompression bomb, a path escaping the root: ``LayerError.cacheable``).
Both are results of the same deterministic function of the bytes and the guard's limits, so a
hostile layer costs its CPU once, not on every re-scan; a refusal made under other limits is
stale and the layer is read again (and its entry replaced). Refusals that may not recur (a
missing blob, an unsupported media type, a read error) are not cached.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy import and_, select, update

from corral.registry import manifests
from corral.registry.blobs import BlobStore
from corral.scan import advisories, catalogers, layers, matcher, state
from corral.scan.inventory import ImageInventory, layer_inventory, merge, name_count
from corral.store import Store
from corral.store.schema import ecr_images, scan_layer_cache

log = logging.getLogger("corral.scan")

IMAGE_CONFIG_TYPES = ("application/vnd.oci.image.config.v1+json",
                      "application/vnd.docker.container.image.v1+json")


def _now() -> datetime:
    return datetime.now(UTC)


class Scanner:
    def __init__(self, store: Store, blobs: BlobStore):
        self.store = store
        self.blobs = blobs

    # --- inventory -------------------------------------------------------------------------

    def layer(self, digest: str, media_type: str) -> dict:
        """A layer's inventory: from the cache, or read from its blob and cached."""
        cached = self._cached(digest)
        if cached is not None and "refused" not in cached:
            return cached
        if cached is not None and cached.get("limits") == layers.guard_limits():
            raise layers.LayerError(cached["refused"], cached.get("status", "FAILED"),
                                    cacheable=True)
        if self.blobs.size(digest) is None:
            raise layers.LayerError(f"layer {digest} is not in the blob store")
        try:
            with self.blobs.open(digest) as raw:
                contents = layers.read_layer(raw, media_type, catalogers.wanted)
        except layers.LayerError as e:
            if e.cacheable:
                self._cache(digest, {"refused": e.reason, "status": e.status,
                                     "limits": layers.guard_limits()})
            raise
        inv = layer_inventory(contents)
        self._cache(digest, inv)
        return inv

    def _cached(self, digest: str) -> dict | None:
        t = scan_layer_cache.c
        with self.store.transaction(write=False) as db:
            return db.execute(select(t.inventory).where(
                t.digest == digest, t.cataloger_version == catalogers.VERSION)).scalar_one_or_none()

    def _cache(self, digest: str, inv: dict) -> None:
        """Store what reading the layer produced, replacing an entry (a stale refusal)."""
        t = scan_layer_cache.c
        row = and_(t.digest == digest, t.cataloger_version == catalogers.VERSION)
        with self.store.transaction() as db:
            if db.execute(select(t.digest).where(row)).first() is None:
                db.execute(scan_layer_cache.insert().values(
                    digest=digest, cataloger_version=catalogers.VERSION, inventory=inv,
                    created_at=_now()))
            else:
                db.execute(update(scan_layer_cache).where(row).values(
                    inventory=inv, created_at=_now()))

    def inventory(self, manifest_raw: bytes, media_type: str) -> ImageInventory:
        try:
            manifest = manifests.parse(manifest_raw, media_type)
        except (manifests.ManifestInvalid, manifests.ManifestUnsupported) as e:
            raise layers.LayerError(f"the image manifest cannot be read: {e}",
                                    "UNSUPPORTED_IMAGE") from None
        if manifest.is_index:
            raise layers.LayerError("image indexes are not scanned; each platform's image is",
                                    "UNSUPPORTED_IMAGE")
        if manifest.config is None or manifest.config.media_type not in IMAGE_CONFIG_TYPES:
            kind = manifest.config.media_type if manifest.config else "none"
            raise layers.LayerError(f"not a container image (config media type {kind})",
                                    "UNSUPPORTED_IMAGE")
        docs, notes = [], []
        for d in manifest.layers:
            if self.blobs.size(d.digest) is None and ("foreign" in d.media_type
                                                      or "nondistributable" in d.media_type):
                # Windows base layers and the like live elsewhere; scan what was pushed.
                notes.append(f"{d.digest}: non-distributable layer not pushed; not scanned")
                continue
            docs.append((d.digest, self.layer(d.digest, d.media_type)))
        inv = merge(docs)
        invalid = matcher.unmatched(inv)
        notes += [f"{p.type} {p.name} {p.version} ({p.path}): {why}" for p, why in invalid]
        inv.notes = notes + inv.notes
        inv.invalid = name_count([f"{p.name} {p.version}" for p, _ in invalid])
        return inv

    # --- one scan --------------------------------------------------------------------------

    def run(self, scan: state.Scan) -> None:
        started = time.monotonic()
        with self.store.transaction() as db:
            image = db.execute(select(ecr_images).where(
                ecr_images.c.id == scan.image_id, ecr_images.c.digest == scan.digest)).first()
            if image is None:
                return
            state.set_status(db, scan.image_id, "IN_PROGRESS", "The scan is in progress.")
        try:
            inv = self.inventory(self.blobs.get(image.digest), image.media_type)
        except layers.LayerError as e:
            with self.store.transaction() as db:
                state.set_status(db, scan.image_id, e.status, e.reason[:1000], _now())
            log.info("scan of %s ended %s: %s", scan.digest, e.status, e.reason)
            return
        with self.store.transaction() as db:
            if state.get(db, scan.image_id, scan.digest) is None:
                return  # the image went away while it was being read
            found = matcher.match(inv, advisories.Lookup(db))
            # what was not read or not matched is said where the user looks: the status
            opened, closed = state.record_result(db, scan, inv, found, _now(),
                                                 note=inv.status_note)
        log.info("scanned %s: %d packages, %d findings (%d new, %d closed) in %.2fs",
                 scan.digest, len(inv.packages), len(found), opened, closed,
                 time.monotonic() - started)

    def rematch(self, scan: state.Scan, scope: set[state.Key] | None = None) -> tuple[int, int]:
        """Continuous re-scan: the stored inventory (only the packages under ``scope``'s keys,
        when given) against today's advisories."""
        inv = ImageInventory.from_json(scan.inventory or {})
        if scope is not None:
            inv.packages = [p for p in inv.packages if (eco := inv.ecosystem_of(p)) and
                            (eco, matcher.query_of(p, eco)[0]) in scope]
        with self.store.transaction() as db:
            found = matcher.match(inv, advisories.Lookup(db))
            return state.rematched(db, scan, found, _now(), scope)
