"""`corral vulndb import` and `corral vulndb status` against a real server: by path (the
server reads its own disk) and by upload; Debian lists and Alpine secdb converted on import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.scan.vulndata import vulndata


def _corral(server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "corral.cli", "vulndb", *args, "--endpoint",
                           server.endpoint], capture_output=True, text=True, env=env, timeout=300)


def test_import_by_path_and_upload_then_status(fresh_server):
    server = fresh_server.start()
    dla = _corral(server, "import", str(vulndata() / "debian" / "DLA-list"), "--json")
    assert dla.returncode == 0, dla.stderr
    out = json.loads(dla.stdout)
    assert out["records"] == 3534 and out["changed"] == 3534
    again = json.loads(_corral(server, "import", str(vulndata() / "debian" / "DLA-list"),
                               "--json").stdout)
    assert again["changed"] == 0  # incremental: nothing new
    up = _corral(server, "import", "--upload", "--source", "alpine-secdb",
                 str(vulndata() / "alpine" / "alpine-secdb-legacy.jsonl"), "--json")
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["changed"] > 2000
    status = json.loads(_corral(server, "status", "--json").stdout)
    assert {s["name"] for s in status["sources"]} == {"DLA-list", "alpine-secdb"}
    assert status["by_ecosystem"]["Debian"] > 3000 and status["by_ecosystem"]["Alpine"] > 2000
    text = _corral(server, "status")
    assert text.returncode == 0 and "DLA-list" in text.stdout


def test_import_of_a_missing_or_bad_file_is_a_clear_error(fresh_server, tmp_path):
    server = fresh_server.start()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    out = _corral(server, "import", str(bad))
    assert out.returncode == 1 and "ValidationException" in out.stdout + out.stderr
    assert server.health()["status"] == "running"
