"""AWS-shaped errors: one class per AWS error code.

Providers raise these; the protocol layer renders them in the protocol's error format. Any
other exception is an internal failure: logged at the edge, answered as ``InternalFailure``
without details.
"""

from __future__ import annotations


class AwsError(Exception):
    """An error the client sees. ``code`` is the AWS error code (``__type``)."""

    code: str = "InternalFailure"
    status: int = 400
    sender_fault: bool = True

    def __init__(self, message: str = "", *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __repr__(self) -> str:
        return f"{self.code}({self.message!r})"


def error_class(code: str, status: int = 400, base: type[AwsError] = AwsError) -> type[AwsError]:
    """Declare an error class for one AWS error code."""
    return type(code, (base,), {"code": code, "status": status})


class InternalFailure(AwsError):
    code = "InternalFailure"
    status = 500
    sender_fault = False


class NotImplementedOperation(AwsError):
    """An operation in the service model that Corral does not implement (yet)."""

    code = "NotImplemented"
    status = 501
    sender_fault = False

    def __init__(self, service: str, operation: str):
        super().__init__(
            f"Corral does not implement the {service} operation {operation} yet; "
            f"see docs/COVERAGE.md for the operations it implements."
        )


# Protocol-level errors shared by every service (codes as the AWS services answer them).
ValidationException = error_class("ValidationException")
SerializationException = error_class("SerializationException")
UnknownOperationException = error_class("UnknownOperationException")
MissingAction = error_class("MissingAction")
InvalidAction = error_class("InvalidAction")
ValidationError = error_class("ValidationError")  # query protocol spelling
AccessDeniedException = error_class("AccessDeniedException")
AccessDenied = error_class("AccessDenied", 403)

# Authentication errors (see shared/reference/iam-and-sigv4.md §8.4).
MissingAuthenticationToken = error_class("MissingAuthenticationTokenException", 403)
IncompleteSignature = error_class("IncompleteSignatureException", 403)
InvalidSignature = error_class("InvalidSignatureException", 403)
SignatureDoesNotMatch = error_class("SignatureDoesNotMatch", 403)
UnrecognizedClient = error_class("UnrecognizedClientException", 403)
InvalidClientTokenId = error_class("InvalidClientTokenId", 403)
ExpiredToken = error_class("ExpiredTokenException", 403)
