"""IAM and STS error codes (query protocol), with IAM's HTTP statuses."""

from __future__ import annotations

from corral.aws.errors import error_class

NoSuchEntity = error_class("NoSuchEntity", 404)
EntityAlreadyExists = error_class("EntityAlreadyExists", 409)
MalformedPolicyDocument = error_class("MalformedPolicyDocument", 400)
LimitExceeded = error_class("LimitExceeded", 409)
DeleteConflict = error_class("DeleteConflict", 409)
InvalidInput = error_class("InvalidInput", 400)
UnmodifiableEntity = error_class("UnmodifiableEntity", 400)
# STS
PackedPolicyTooLarge = error_class("PackedPolicyTooLarge", 400)
InvalidIdentityToken = error_class("InvalidIdentityToken", 400)
IDPRejectedClaim = error_class("IDPRejectedClaim", 403)
ExpiredTokenException = error_class("ExpiredTokenException", 400)
StsValidationError = error_class("ValidationError", 400)
