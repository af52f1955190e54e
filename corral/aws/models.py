"""The AWS services Corral serves, described by botocore's own service models.

botocore's model is the single source of truth for every wire shape: operation names, input
and output members, constraints, protocols, signing names. Nothing here restates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import botocore.session
from botocore.model import OperationModel, ServiceModel

# botocore model name -> IAM action prefix, where it differs from the signing name.
SERVICES = ("ecr", "ecs", "elbv2", "logs", "cloudwatch", "inspector2", "iam", "sts")
_IAM_PREFIX = {"cloudwatch": "cloudwatch"}


@dataclass(eq=False)  # identity-hashed: one spec per service, used as a cache key
class ServiceSpec:
    name: str  # botocore model name (ecr, cloudwatch, …)
    model: ServiceModel
    signing_name: str  # the SigV4 credential scope's service (ecr, monitoring, …)
    iam_prefix: str
    protocols: tuple[str, ...]
    target_prefix: str | None
    _ops: dict[str, OperationModel] = field(default_factory=dict, repr=False)

    def operation(self, name: str) -> OperationModel | None:
        if not self._ops:
            self._ops = {n: self.model.operation_model(n) for n in self.model.operation_names}
        return self._ops.get(name)

    @property
    def operation_names(self) -> list[str]:
        return list(self.model.operation_names)

    def iam_action(self, operation: str) -> str:
        return f"{self.iam_prefix}:{operation}"


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def service(name: str) -> ServiceSpec:
    model = _session().get_service_model(name)
    md = model.metadata
    signing = md.get("signingName") or md["endpointPrefix"]
    return ServiceSpec(
        name=name,
        model=model,
        signing_name=signing,
        iam_prefix=_IAM_PREFIX.get(name, signing),
        protocols=tuple(md.get("protocols") or [md["protocol"]]),
        target_prefix=md.get("targetPrefix"),
    )


@cache
def by_signing_name() -> dict[str, ServiceSpec]:
    return {service(n).signing_name: service(n) for n in SERVICES}


@cache
def by_target_prefix() -> dict[str, ServiceSpec]:
    return {s.target_prefix: s for s in map(service, SERVICES) if s.target_prefix}
