"""The runtime's JSON state files: ``corral.files`` (atomic writes, tolerant reads), re-exported
here where the runtime's modules import them."""

from corral.files import read_json, write_json_atomic

__all__ = ["read_json", "write_json_atomic"]
