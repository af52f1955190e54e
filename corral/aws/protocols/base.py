"""What every wire protocol implements, and the plain request/response it works on.

    HttpRequest --Protocol.operation--> OperationModel
                --Protocol.parse------> typed params (dict)
    result dict --Protocol.serialize--> HttpResponse
    AwsError    --Protocol.error------> HttpResponse
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from typing import Protocol as _Protocol
from urllib.parse import parse_qsl

from botocore.model import OperationModel

from corral.aws.errors import AwsError
from corral.aws.models import ServiceSpec


@dataclass
class HttpRequest:
    method: str
    path: str  # raw, still percent-encoded (non-ASCII bytes kept as surrogate escapes)
    query: str  # raw query string
    header_list: list[tuple[str, str]]  # (lower-case name, value) in the order received
    body: bytes
    client: str | None = None  # the peer's IP address (aws:SourceIp)
    secure: bool = False  # arrived over TLS (aws:SecureTransport)

    def __post_init__(self) -> None:
        self.headers: dict[str, str] = {}  # repeated headers joined with ","
        for name, value in self.header_list:
            self.headers[name] = f"{self.headers[name]},{value}" if name in self.headers else value

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.header_list if n == name]

    @property
    def query_params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)


@dataclass
class HttpResponse:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Protocol(_Protocol):
    name: str

    def operation(self, service: ServiceSpec, request: HttpRequest) -> OperationModel: ...

    def parse(self, op: OperationModel, request: HttpRequest) -> dict[str, Any]: ...

    def serialize(self, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse: ...

    def error(self, service: ServiceSpec, err: AwsError, request_id: str) -> HttpResponse: ...


def query_error_headers(service: ServiceSpec, err: AwsError) -> dict[str, str]:
    """awsQueryCompatible services (CloudWatch) name the query-protocol error code and fault in
    every protocol, so clients see the same ``Code`` and ``Type`` as over the query protocol."""
    if "awsQueryCompatible" not in service.model.metadata:
        return {}
    fault = "Sender" if err.sender_fault else "Receiver"
    return {"x-amzn-query-error": f"{err.code};{fault}"}
