"""What a service provider looks like to the gateway.

A provider holds one AWS service's operations as methods named after the operation's
snake_case name (``create_repository``), taking the request context and the parsed, validated
parameters and returning the output dict. ``@acts_on`` declares the resource ARNs an operation
acts on, for authorization; without it the resource is ``*``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corral.aws import models, validate
from corral.aws.context import RequestContext
from corral.aws.errors import AwsError
from corral.aws.validate import Violation

ResourceFn = Callable[[RequestContext, dict[str, Any]], list[str]]


def acts_on(resources: ResourceFn):
    """Declare the ARNs an operation acts on: ``@acts_on(lambda ctx, p: [arn])``."""

    def mark(method):
        method.iam_resources = resources
        return method

    return mark


def writes(method):
    """Mark an operation that records state although its name reads as read-only (ECR's
    BatchGetImage records the pull time), so the gateway gives it a write transaction."""
    method.writes = True
    return method


def resources_of(method, ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    fn = getattr(method, "iam_resources", None)
    return fn(ctx, params) if fn else ["*"]


class Provider:
    service: str  # botocore model name

    def validation_error(self, found: list[Violation]) -> AwsError:
        """The error this service answers for input that breaks the model's constraints."""
        return validate.validation_error(models.service(self.service), found)
