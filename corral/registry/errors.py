"""OCI distribution error codes, with their HTTP status (distribution-spec §Error Codes)."""

from __future__ import annotations

import json

from starlette.responses import Response

STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "RANGE_INVALID": 416,  # not a spec code: 416 answers carry the upload's Range instead
}


class RegistryError(Exception):
    def __init__(self, code: str, message: str, *, detail=None, status: int | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status or STATUS[code]
        self.headers = headers or {}

    def response(self, head: bool = False) -> Response:
        body = json.dumps({"errors": [{"code": self.code, "message": self.message,
                                       "detail": self.detail}]}).encode()
        headers = {"Docker-Distribution-Api-Version": "registry/2.0", **self.headers}
        return Response(b"" if head else body, status_code=self.status, headers=headers,
                        media_type="application/json")
