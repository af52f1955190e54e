"""kill -9 in the middle of a blob upload (design principle 5: nothing lost, nothing half-done).

A blob becomes visible only after its bytes are verified and moved into place, so a crash
mid-stream must leave no blob with that digest — neither through the API nor on disk — and
the client must be able to push again, from scratch or by resuming its session.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.registry.conftest import blob_files, get_token
from tests.registry.v2 import V2

SIZE = 64 << 20
CHUNK = 1 << 20
REPO = "crash/big"


@pytest.fixture
def big() -> tuple[bytes, str]:
    data = os.urandom(SIZE)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def _slowly(data: bytes, sent: threading.Event, after: int) -> Iterator[bytes]:
    """Stream ``data`` 1 MiB at a time, setting ``sent`` once ``after`` bytes are out."""
    for offset in range(0, len(data), CHUNK):
        if offset >= after:
            sent.set()
            time.sleep(0.05)
        yield data[offset:offset + CHUNK]


def _kill_mid_patch(srv, v2: V2, location: str, data: bytes) -> None:
    """PATCH ``data`` slowly and kill -9 the server once 16 MiB are on their way."""
    sent = threading.Event()
    failure: list[BaseException] = []

    def patch() -> None:
        try:
            v2.patch(location, data=_slowly(data, sent, 16 << 20), timeout=120)
        except requests.RequestException as e:
            failure.append(e)

    t = threading.Thread(target=patch)
    t.start()
    assert sent.wait(60), "the upload never got going"
    time.sleep(0.3)  # let the server write some of what it received
    srv.stop(signal.SIGKILL)
    t.join(timeout=60)
    assert failure, "the PATCH finished although the server was killed"


def _started(srv) -> V2:
    srv.start()
    return V2(srv.endpoint, get_token(srv))


def test_kill_9_mid_upload_leaves_no_blob_and_the_push_can_be_redone(fresh_server, big):
    data, digest = big
    v2 = _started(fresh_server)
    fresh_server.client("ecr").create_repository(repositoryName=REPO)
    _kill_mid_patch(fresh_server, v2, v2.start_upload(REPO), data)

    v2 = _started(fresh_server)
    assert v2.head(f"/v2/{REPO}/blobs/{digest}").status_code == 404
    assert blob_files(fresh_server.data_dir, digest) == []

    location = v2.start_upload(REPO)
    r = v2.patch(location, data=(data[i:i + CHUNK] for i in range(0, SIZE, CHUNK)))
    assert r.status_code == 202
    r = v2.put(r.headers["Location"], params={"digest": digest})
    assert r.status_code == 201, r.text
    head = v2.head(f"/v2/{REPO}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(SIZE)
    got = hashlib.sha256(v2.get(f"/v2/{REPO}/blobs/{digest}").content).hexdigest()
    assert f"sha256:{got}" == digest


def test_kill_9_mid_upload_then_the_session_resumes_where_the_disk_ends(fresh_server, big):
    data, digest = big
    v2 = _started(fresh_server)
    fresh_server.client("ecr").create_repository(repositoryName=REPO)
    location = v2.start_upload(REPO)
    _kill_mid_patch(fresh_server, v2, location, data)

    v2 = _started(fresh_server)
    status = v2.get(location)  # end-13: how much of the upload the registry holds
    assert status.status_code == 204
    held = int(status.headers["Range"].split("-")[1]) + 1
    assert 0 < held < SIZE
    r = v2.patch(status.headers["Location"], data=data[held:],
                 headers={"Content-Range": f"{held}-{SIZE - 1}"})
    assert r.status_code == 202, r.text
    r = v2.put(r.headers["Location"], params={"digest": digest})
    assert r.status_code == 201, r.text
    assert v2.head(f"/v2/{REPO}/blobs/{digest}").headers["Content-Length"] == str(SIZE)
    assert [p.stat().st_size for p in blob_files(fresh_server.data_dir, digest)
            if p.is_file()] == [SIZE]
