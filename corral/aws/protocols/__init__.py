"""Wire protocols, one implementation each, driven by botocore's service models."""

from corral.aws.protocols.base import HttpRequest, HttpResponse, Protocol
from corral.aws.protocols.cbor import CborProtocol
from corral.aws.protocols.json import JsonProtocol
from corral.aws.protocols.query import QueryProtocol
from corral.aws.protocols.restjson import RestJsonProtocol

PROTOCOLS: dict[str, Protocol] = {
    p.name: p for p in (JsonProtocol(), RestJsonProtocol(), QueryProtocol(), CborProtocol())
}

__all__ = ["PROTOCOLS", "HttpRequest", "HttpResponse", "Protocol"]
