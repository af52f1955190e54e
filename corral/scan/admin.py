"""Corral's own vulnerability-database actions (``corral vulndb …``):

    vulndb/import  {"path": "/abs/path"}                      the server reads its own disk
                   {"name": "x.jsonl", "content": "<base64>"}  the CLI streams the file
    vulndb/status  {}                                          sources, counts, age

The import is one transaction (all of a file or none of it); the changed (ecosystem, package)
keys go out in an ``advisories.imported`` event after the commit, which wakes the scan
controller's continuous re-scan.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from pathlib import Path

from corral.admin import AdminApi
from corral.aws.context import RequestContext
from corral.aws.errors import ValidationException
from corral.scan import advisories
from corral.store import emit


def register(admin: AdminApi) -> None:
    @admin.action("vulndb/import")
    def import_(ctx: RequestContext, body: dict) -> dict:
        now = datetime.now(UTC)
        try:
            if body.get("path"):
                path = Path(str(body["path"]))
                if not path.is_absolute():
                    raise ValidationException("path must be absolute (the server reads it)")
                records = advisories.read_records(path)
                source, where = str(body.get("source") or path.name), str(path)
            elif body.get("content") is not None:
                name = str(body.get("name") or "upload.jsonl")
                data = base64.b64decode(str(body["content"]), validate=True)
                records = advisories.read_bytes(name, data)
                source, where = str(body.get("source") or name), f"upload:{name}"
            else:
                raise ValidationException("give either 'path' or 'name' and 'content'")
            result = advisories.import_records(ctx.db, records, source, where, now)
        except (advisories.ImportError_, binascii.Error, ValueError) as e:
            if isinstance(e, ValidationException):
                raise
            raise ValidationException(f"cannot import advisories: {e}") from None
        if result.changed:
            emit(ctx.db, "advisories.imported", source=source, keys=sorted(result.keys))
        return result.view()

    @admin.action("vulndb/status")
    def status(ctx: RequestContext, body: dict) -> dict:
        return advisories.status(ctx.db)
