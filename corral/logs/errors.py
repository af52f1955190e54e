"""CloudWatch Logs error codes (one class per AWS code, as botocore's ``logs`` model declares
them). Logs is a json-protocol service: every code answers HTTP 400 except the two the model
marks ``fault`` (ServiceUnavailableException, InternalServerException), which answer 500.

AWS's texts used by more than one module live here too.
"""

from __future__ import annotations

from corral.aws.errors import AwsError, error_class


class LogsError(AwsError):
    status = 400


InvalidParameterException = error_class("InvalidParameterException", base=LogsError)
ResourceNotFoundException = error_class("ResourceNotFoundException", base=LogsError)
ResourceAlreadyExistsException = error_class("ResourceAlreadyExistsException", base=LogsError)
LimitExceededException = error_class("LimitExceededException", base=LogsError)
OperationAbortedException = error_class("OperationAbortedException", base=LogsError)
InvalidOperationException = error_class("InvalidOperationException", base=LogsError)
ValidationException = error_class("ValidationException", base=LogsError)
TooManyTagsException = error_class("TooManyTagsException", base=LogsError)
MalformedQueryException = error_class("MalformedQueryException", base=LogsError)
# Sequence tokens are accepted and ignored since January 2023: AWS no longer raises these two
# (the PutLogEvents documentation); they stay declared for the model's completeness.
InvalidSequenceTokenException = error_class("InvalidSequenceTokenException", base=LogsError)
DataAlreadyAcceptedException = error_class("DataAlreadyAcceptedException", base=LogsError)


class ServiceUnavailableException(LogsError):
    code = "ServiceUnavailableException"
    status = 500
    sender_fault = False


# AWS's texts.
GROUP_NOT_FOUND = "The specified log group does not exist."
STREAM_NOT_FOUND = "The specified log stream does not exist."
GROUP_EXISTS = "The specified log group already exists"
STREAM_EXISTS = "The specified log stream already exists"
LIMIT_EXCEEDED = "Resource limit exceeded."
INVALID_TOKEN = "The specified nextToken is invalid."


def group_not_found() -> AwsError:
    return ResourceNotFoundException(GROUP_NOT_FOUND)


def stream_not_found() -> AwsError:
    return ResourceNotFoundException(STREAM_NOT_FOUND)
