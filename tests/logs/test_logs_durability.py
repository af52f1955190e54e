"""Nothing lost: an acknowledged PutLogEvents survives ``kill -9``, exactly once, and every
batch is stored whole or not at all (one transaction, committed before the answer)."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError

GROUP, STREAM = "/durable/burst", "shared"
BATCH = 50


def _read_all(logs) -> list[str]:
    """Every message of the stream, oldest first (forward pages until the token repeats)."""
    page = logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True)
    messages, token = [e["message"] for e in page["events"]], None
    while page["nextForwardToken"] != token:
        token = page["nextForwardToken"]
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM,
                                   startFromHead=True, nextToken=token)
        messages += [e["message"] for e in page["events"]]
    return messages


def test_kill_9_during_a_put_log_events_burst_loses_no_acknowledged_event(fresh_server):
    fresh_server.start()
    logs = fresh_server.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    acknowledged: list[str] = []
    sent: list[list[str]] = []  # every batch sent, acknowledged or not
    stop = threading.Event()

    def burst(worker: int) -> None:
        client = fresh_server.client("logs")  # parallel puts on one stream, as AWS allows
        for i in range(100_000):
            if stop.is_set():
                return
            batch = [f"w{worker}-b{i}-e{j}" for j in range(BATCH)]
            sent.append(batch)
            t = int(time.time() * 1000)
            try:
                client.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=[
                    {"timestamp": t, "message": m} for m in batch])
            except (ClientError, BotoCoreError, HTTPError, OSError):
                return
            acknowledged.extend(batch)

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 40 * BATCH and time.monotonic() < deadline:
        time.sleep(0.02)
    fresh_server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acknowledged) >= 40 * BATCH

    fresh_server.start()
    logs = fresh_server.client("logs")
    stored = _read_all(logs)
    counts = Counter(stored)
    # Every acknowledged event is there, and no event is there twice…
    assert set(acknowledged) <= set(counts)
    assert max(counts.values()) == 1
    # …every batch is whole or absent (the one in flight at the kill may be either)…
    present = set(counts)
    for batch in sent:
        assert len(present.intersection(batch)) in (0, BATCH), batch[0]
    # …and the group's byte count matches what is stored.
    group = logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"][0]
    assert group["storedBytes"] == sum(len(m) for m in stored)
