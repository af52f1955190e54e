"""Merge an image's config with an ECS container definition, as Docker does for ECS.

The ECS agent hands the container definition to Docker (``entryPoint`` → ``Entrypoint``,
``command`` → ``Cmd``, ``environment`` → ``Env``, ``workingDirectory``, ``user``) and the
Docker daemon fills the gaps from the image config (moby ``daemon/create.go`` merge rules):

    Entrypoint = container.entryPoint            if given, else image Entrypoint
    Cmd        = container.command               if non-empty
                 image Cmd                        if no entryPoint was given
                 (nothing)                        otherwise: a new ENTRYPOINT drops the image CMD
    argv       = Entrypoint + Cmd                 empty ⇒ "no command specified"
    Env        = image Env, each name the container sets replaced in place, new names appended
    WorkingDir = container.workingDirectory, else image WorkingDir, else "/"
    User       = container.user, else image User (None: the runtime's default, root)
    StopSignal = image StopSignal, else SIGTERM

A pure function of two documents; the agent calls it and puts the result in ContainerSpec.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from corral.runtime.driver import RuntimeFailure

DEFAULT_STOP_SIGNAL = "SIGTERM"


class ConfigError(RuntimeFailure):
    """The merged config cannot run; ECS reports it as CannotCreateContainerError."""

    def __init__(self, message: str, kind: str = "CannotCreateContainerError"):
        super().__init__(message, kind)


@dataclass(frozen=True)
class Merged:
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    cwd: str
    user: str | None
    stop_signal: str


def merge(image_config: dict, container: dict) -> Merged:
    """``image_config`` is the OCI image config document (its ``config`` object holds
    Entrypoint, Cmd, …); ``container`` an ECS container definition (overrides applied)."""
    cfg: dict[str, Any] = image_config.get("config") or {}
    if container.get("environmentFiles"):
        # ECS downloads them from S3 before the pull; Corral has no S3 to fetch them from.
        raise ConfigError("failed to download env files: environmentFiles are not supported "
                          "by Corral (no S3); use environment instead",
                          kind="ResourceInitializationError")
    return Merged(
        args=_args(cfg, container),
        env=_env(cfg.get("Env") or [], container.get("environment") or []),
        cwd=container.get("workingDirectory") or cfg.get("WorkingDir") or "/",
        user=container.get("user") or cfg.get("User") or None,
        stop_signal=_signal(cfg.get("StopSignal")),
    )


def _args(cfg: dict[str, Any], container: dict) -> tuple[str, ...]:
    entrypoint = container.get("entryPoint")
    command = container.get("command") or []
    # moby: only an empty user Entrypoint lets the image's Cmd (and Entrypoint) through.
    if not entrypoint:
        if not command:
            command = cfg.get("Cmd") or []
        if entrypoint is None:
            entrypoint = cfg.get("Entrypoint") or []
    args = tuple(str(a) for a in [*entrypoint, *command])
    if not args:
        raise ConfigError("Error response from daemon: no command specified")
    return args


def _env(image_env: list[str], environment: list[dict]) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}  # dicts keep insertion order: image order, then new names
    for item in image_env:
        name, sep, value = str(item).partition("=")
        if name and sep:  # a bare NAME in an image config sets nothing
            out[name] = value
    for pair in environment:
        name = pair.get("name")
        if name:
            out[name] = "" if pair.get("value") is None else str(pair["value"])
    return tuple(out.items())


def _signal(value: str | None) -> str:
    """Docker accepts ``SIGTERM``, ``TERM`` or ``15``; the driver gets the SIG name."""
    if not value:
        return DEFAULT_STOP_SIGNAL
    text = str(value).strip().upper()
    try:
        if text.isdigit():
            return signal.Signals(int(text)).name
        name = text if text.startswith("SIG") else f"SIG{text}"
        return signal.Signals[name].name
    except (KeyError, ValueError):
        raise ConfigError(f"Error response from daemon: Invalid signal: {value}") from None
