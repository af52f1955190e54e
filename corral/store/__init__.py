"""State persistence: one SQLAlchemy engine shared by every service."""

from corral.store.db import Store

__all__ = ["Store"]
