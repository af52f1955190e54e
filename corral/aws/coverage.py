"""Generate docs/COVERAGE.md: per service, the operations Corral implements against
botocore's full operation list. Run ``python -m corral.aws.coverage > docs/COVERAGE.md``;
a test keeps the committed file in step with the code."""

from __future__ import annotations

import botocore
from botocore import xform_name

from corral.aws import models
from corral.aws.provider import Provider


def render(served: dict[str, Provider]) -> str:
    lines = [
        "# Coverage",
        "",
        f"Generated from the code by `python -m corral.aws.coverage` against botocore "
        f"{botocore.__version__}'s service models. An operation not implemented answers "
        "`NotImplemented` (HTTP 501) naming it.",
        "",
        "| service | implemented | of |",
        "|---|---|---|",
    ]
    sections = []
    for name in models.SERVICES:
        spec = models.service(name)
        provider = served.get(name)
        done = [op for op in spec.operation_names
                if provider is not None and callable(getattr(provider, xform_name(op), None))]
        lines.append(f"| {spec.model.service_id} (`{name}`) | {len(done)} | "
                     f"{len(spec.operation_names)} |")
        body = [f"## {spec.model.service_id} (`{name}`, {', '.join(spec.protocols)})", ""]
        body += [f"- [{'x' if op in done else ' '}] {op}" for op in spec.operation_names]
        sections.append("\n".join(body))
    return "\n".join(lines) + "\n\n" + "\n\n".join(sections) + "\n"


if __name__ == "__main__":
    from corral.app import providers
    from corral.config import Settings

    print(render(providers(Settings())), end="")
