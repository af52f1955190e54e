"""State persistence: one SQLAlchemy engine shared by every service."""

from corral.store.db import Store, emit

__all__ = ["Store", "emit"]
