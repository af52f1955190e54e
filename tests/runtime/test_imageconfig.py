"""Image config + container definition merges, by Docker's rules as ECS uses them."""

from __future__ import annotations

import pytest

from corral.runtime.imageconfig import ConfigError, merge

PATH = "PATH=/usr/bin:/bin"


def image(**cfg) -> dict:
    return {"architecture": "amd64", "os": "linux", "config": cfg}


# (id, image config, container definition, expected args)
ARGS = [
    ("image-cmd-only", {"Cmd": ["sh", "-c", "echo hi"]}, {}, ("sh", "-c", "echo hi")),
    ("image-entrypoint-and-cmd", {"Entrypoint": ["/bin/app"], "Cmd": ["--serve"]}, {},
     ("/bin/app", "--serve")),
    ("command-replaces-cmd", {"Entrypoint": ["/bin/app"], "Cmd": ["--serve"]},
     {"command": ["--once"]}, ("/bin/app", "--once")),
    ("entrypoint-drops-image-cmd", {"Entrypoint": ["/bin/app"], "Cmd": ["--serve"]},
     {"entryPoint": ["/bin/other"]}, ("/bin/other",)),
    ("entrypoint-and-command", {"Entrypoint": ["/bin/app"], "Cmd": ["--serve"]},
     {"entryPoint": ["sh", "-c"], "command": ["echo x"]}, ("sh", "-c", "echo x")),
    ("empty-entrypoint-clears-image-entrypoint", {"Entrypoint": ["/bin/app"], "Cmd": ["x"]},
     {"entryPoint": []}, ("x",)),
    ("empty-command-keeps-image-cmd", {"Cmd": ["top"]}, {"command": []}, ("top",)),
    ("command-without-image-cmd", {}, {"command": ["sleep", "1"]}, ("sleep", "1")),
]


@pytest.mark.parametrize("cfg,container,expected", [a[1:] for a in ARGS],
                         ids=[a[0] for a in ARGS])
def test_args(cfg, container, expected):
    assert merge(image(**cfg), container).args == expected


NO_COMMAND = [
    ("nothing-anywhere", {}, {}),
    ("entrypoint-given-empty-and-no-cmd", {"Cmd": None}, {"entryPoint": []}),
    ("empty-lists", {"Entrypoint": [], "Cmd": []}, {"command": []}),
]


@pytest.mark.parametrize("cfg,container", [a[1:] for a in NO_COMMAND],
                         ids=[a[0] for a in NO_COMMAND])
def test_no_command_is_cannot_create(cfg, container):
    with pytest.raises(ConfigError) as e:
        merge(image(**cfg), container)
    assert e.value.kind == "CannotCreateContainerError"
    assert "no command specified" in str(e.value)


ENV = [
    ("image-only", [PATH, "A=1"], [], (("PATH", "/usr/bin:/bin"), ("A", "1"))),
    ("container-wins-in-place", [PATH, "A=1", "B=2"], [{"name": "A", "value": "x"}],
     (("PATH", "/usr/bin:/bin"), ("A", "x"), ("B", "2"))),
    ("new-names-appended-in-order", ["A=1"],
     [{"name": "Z", "value": "26"}, {"name": "C", "value": "3"}],
     (("A", "1"), ("Z", "26"), ("C", "3"))),
    ("value-with-equals", ["OPTS=a=b=c"], [], (("OPTS", "a=b=c"),)),
    ("bare-name-in-image-sets-nothing", ["JUSTNAME", "A=1"], [], (("A", "1"),)),
    ("empty-value", [], [{"name": "E", "value": ""}], (("E", ""),)),
    ("no-env-at-all", None, [], ()),
]


@pytest.mark.parametrize("image_env,environment,expected", [e[1:] for e in ENV],
                         ids=[e[0] for e in ENV])
def test_env(image_env, environment, expected):
    merged = merge(image(Env=image_env, Cmd=["sh"]), {"environment": environment})
    assert merged.env == expected


# (id, image config, container, cwd, user)
WORKDIR_USER = [
    ("defaults", {}, {}, "/", None),
    ("image-workdir-and-user", {"WorkingDir": "/srv", "User": "app"}, {}, "/srv", "app"),
    ("container-overrides", {"WorkingDir": "/srv", "User": "app"},
     {"workingDirectory": "/tmp", "user": "1000:1000"}, "/tmp", "1000:1000"),
    ("empty-image-values", {"WorkingDir": "", "User": ""}, {}, "/", None),
]


@pytest.mark.parametrize("cfg,container,cwd,user", [w[1:] for w in WORKDIR_USER],
                         ids=[w[0] for w in WORKDIR_USER])
def test_workdir_and_user(cfg, container, cwd, user):
    merged = merge(image(Cmd=["sh"], **cfg), container)
    assert (merged.cwd, merged.user) == (cwd, user)


@pytest.mark.parametrize("value,expected", [
    (None, "SIGTERM"), ("SIGQUIT", "SIGQUIT"), ("INT", "SIGINT"), ("9", "SIGKILL"),
    ("sigusr1", "SIGUSR1"),
], ids=["default", "sig-name", "short-name", "number", "lower-case"])
def test_stop_signal(value, expected):
    assert merge(image(Cmd=["sh"], StopSignal=value), {}).stop_signal == expected


def test_invalid_stop_signal_is_cannot_create():
    with pytest.raises(ConfigError, match="Invalid signal: SIGNOPE"):
        merge(image(Cmd=["sh"], StopSignal="SIGNOPE"), {})


def test_environment_files_fail_clearly():
    with pytest.raises(ConfigError) as e:
        merge(image(Cmd=["sh"]), {"environmentFiles": [
            {"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}]})
    assert e.value.kind == "ResourceInitializationError"
    assert "environmentFiles" in str(e.value)


def test_image_config_without_config_object():
    merged = merge({"architecture": "amd64", "os": "linux"}, {"command": ["true"]})
    assert merged.args == ("true",) and merged.env == () and merged.cwd == "/"
