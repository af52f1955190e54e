"""FilterLogEvents and Logs Insights against the real server with boto3: each filter pattern
kind across three streams, paging that resumes exactly, the 1 MB page cap, StartQuery → poll
GetQueryResults → Complete, StopQuery, DescribeQueries, and the errors of bad input. The query
worker's restart rule runs over a real store of the test's own."""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from corral.logs import store as logs_store
from corral.logs.query_runner import QueryRunner
from corral.store import Store
from corral.store.schema import logs_queries

ACCOUNT, REGION = "000000000000", "us-east-1"


@pytest.fixture(scope="module")
def logs(server):
    return server.client("logs")


@contextlib.contextmanager
def new_group(logs, streams: dict[str, list[tuple[int, str]]]):
    """A group of the test's own with ``streams`` {name: [(timestamp, message)]}."""
    name = f"/q/{uuid.uuid4().hex[:12]}"
    logs.create_log_group(logGroupName=name)
    try:
        for stream, events in streams.items():
            logs.create_log_stream(logGroupName=name, logStreamName=stream)
            for batch in batches(events):
                logs.put_log_events(logGroupName=name, logStreamName=stream, logEvents=batch)
        yield name
    finally:
        logs.delete_log_group(logGroupName=name)


def batches(events: list[tuple[int, str]]):
    """PutLogEvents batches: at most 10,000 events and 1 MB (26 bytes per event) each."""
    batch, size = [], 0
    for t, m in events:
        cost = len(m.encode()) + 26
        if len(batch) == 10_000 or size + cost > 1_048_576:
            yield batch
            batch, size = [], 0
        batch.append({"timestamp": t, "message": m})
        size += cost
    if batch:
        yield batch


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


T0 = (int(time.time()) - 3600) * 1000  # an hour ago: inside PutLogEvents' window
MESSAGES = {
    "app/web": [(T0 + 0, "ERROR Failed to connect to db"), (T0 + 3, "WARN retrying"),
                (T0 + 6, '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif" 404 2326')],
    "app/api": [(T0 + 1, json.dumps({"eventType": "UpdateTrail", "user": {"id": 1}})),
                (T0 + 4, json.dumps({"eventType": "CreateTrail", "latency": 900})),
                (T0 + 7, '10.0.0.2 - bob [10/Oct/2000:13:56:00 -0700] "GET /b.html" 200 512')],
    "jobs/1": [(T0 + 2, "ERROR Exiting after fatal error"), (T0 + 5, "INFO all good"),
               (T0 + 8, '10.0.0.3 - eve [10/Oct/2000:13:57:00 -0700] "POST /c" 404 5000')],
}

PATTERNS = [  # (id, pattern, the (stream, timestamp offset) of the matches, in order)
    ("all", "", [(s, t - T0) for t, s in sorted((t, s) for s, ev in MESSAGES.items()
                                                 for t, _ in ev)]),
    ("term", "ERROR", [("app/web", 0), ("jobs/1", 2)]),
    ("phrase", '"Failed to"', [("app/web", 0)]),
    ("or-terms", "?WARN ?INFO", [("app/web", 3), ("jobs/1", 5)]),
    ("exclusion", "ERROR -Exiting", [("app/web", 0)]),
    ("regex", "%fatal|retry%", [("jobs/1", 2), ("app/web", 3)]),
    ("json-equals", '{ $.eventType = "UpdateTrail" }', [("app/api", 1)]),
    ("json-wildcard-or-number", '{ $.eventType = "Create*" || $.user.id = 1 }',
     [("app/api", 1), ("app/api", 4)]),
    ("json-numeric", "{ $.latency > 500 }", [("app/api", 4)]),
    ("delimited-404", "[ip, id, user, timestamp, request, status_code = 404, bytes]",
     [("app/web", 6), ("jobs/1", 8)]),
    ("delimited-ellipsis", "[..., status_code = 4*, bytes > 3000]", [("jobs/1", 8)]),
]


@pytest.fixture(scope="module")
def three_streams(logs):
    with new_group(logs, MESSAGES) as name:
        yield name


@pytest.mark.parametrize("pattern,expected", [p[1:] for p in PATTERNS],
                         ids=[p[0] for p in PATTERNS])
def test_filter_each_pattern_kind_across_streams(logs, three_streams, pattern, expected):
    out = logs.filter_log_events(logGroupName=three_streams, filterPattern=pattern,
                                 interleaved=True)
    assert [(e["logStreamName"], e["timestamp"] - T0) for e in out["events"]] == expected
    assert out["searchedLogStreams"] == [] and "nextToken" not in out
    for e in out["events"]:
        assert len(e["eventId"]) == 56 and e["eventId"].isdigit()
        assert e["ingestionTime"] >= e["timestamp"] and e["message"]


def test_filter_by_streams_time_and_identifier(logs, three_streams):
    by_names = logs.filter_log_events(logGroupName=three_streams,
                                      logStreamNames=["app/web", "jobs/1"], filterPattern="ERROR")
    assert [e["logStreamName"] for e in by_names["events"]] == ["app/web", "jobs/1"]
    by_prefix = logs.filter_log_events(logGroupName=three_streams, logStreamNamePrefix="app/")
    assert {e["logStreamName"] for e in by_prefix["events"]} == {"app/web", "app/api"}
    # startTime and endTime are both inclusive.
    window = logs.filter_log_events(logGroupName=three_streams, startTime=T0 + 2,
                                    endTime=T0 + 4)
    assert [e["timestamp"] - T0 for e in window["events"]] == [2, 3, 4]
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{three_streams}"
    by_arn = logs.filter_log_events(logGroupIdentifier=arn, filterPattern="WARN")
    assert [e["message"] for e in by_arn["events"]] == ["WARN retrying"]
    again = logs.filter_log_events(logGroupName=three_streams, filterPattern="WARN")
    assert again["events"][0]["eventId"] == by_arn["events"][0]["eventId"]  # deterministic


def test_filter_errors(logs, three_streams):
    assert error_of(logs.filter_log_events, logGroupName=three_streams,
                    logStreamNames=["app/web"], logStreamNamePrefix="app") == (
        "InvalidParameterException",
        "Cannot specify both logStreamNames and logStreamNamePrefix.")
    code, message = error_of(logs.filter_log_events, logGroupName=three_streams,
                             filterPattern='{ $.eventType = "x"')
    assert code == "InvalidParameterException" and message.startswith("Invalid filter pattern")
    code, message = error_of(logs.filter_log_events, logGroupName=three_streams,
                             filterPattern="user@example.com")
    assert (code, message) == ("InvalidParameterException", "Invalid filter pattern: "
                               "Invalid character(s) in term 'user@example.com'")
    assert error_of(logs.filter_log_events, logGroupName=three_streams,
                    nextToken="not-a-token")[0] == "InvalidParameterException"
    assert error_of(logs.filter_log_events, logGroupName="/q/none")[0] == \
        "ResourceNotFoundException"


def test_paging_resumes_exactly_across_many_events(logs):
    """25,000 events over 3 streams (timestamps shared across streams), filtered in pages of
    at most 4,000: every match exactly once, in (timestamp, ingestion) order."""
    streams = {f"s{k}": [(T0 + i // 3, f"{'even' if i % 2 == 0 else 'odd'} {k} {i}")
                         for i in range(k, 25_000, 3)] for k in range(3)}
    with new_group(logs, streams) as name:
        seen, token, pages = [], None, 0
        while True:
            kwargs = {"nextToken": token} if token else {}
            out = logs.filter_log_events(logGroupName=name, filterPattern="even", limit=4000,
                                         **kwargs)
            assert len(out["events"]) <= 4000
            seen += [e["message"] for e in out["events"]]
            pages += 1
            token = out.get("nextToken")
            if not token:
                break
        expected = [f"even {i % 3} {i}" for i in range(0, 25_000, 2)]
        assert sorted(seen, key=lambda m: int(m.split()[2])) == expected
        assert len(seen) == len(set(seen)) == 12_500 and pages == 4
        # Default limit 10,000: the first page is full and carries a token.
        first = logs.filter_log_events(logGroupName=name)
        assert len(first["events"]) == 10_000 and first["nextToken"]


def test_a_page_holds_at_most_1_mb(logs):
    big = "x" * 1000
    with new_group(logs, {"s": [(T0 + i, f"{i} {big}") for i in range(2000)]}) as name:
        out = logs.filter_log_events(logGroupName=name)
        size = sum(len(e["message"]) + 26 for e in out["events"])
        assert size <= 1_048_576 and len(out["events"]) < 2000 and out["nextToken"]
        rest = logs.filter_log_events(logGroupName=name, nextToken=out["nextToken"])
        assert len(out["events"]) + len(rest["events"]) == 2000 and "nextToken" not in rest


# --- Logs Insights ---------------------------------------------------------------------------

def wait_done(logs, query_id: str, timeout: float = 30) -> dict:
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        out = logs.get_query_results(queryId=query_id)
        assert out["status"] in ("Scheduled", "Running", "Complete")
        if out["status"] == "Complete":
            return out
        assert out["status"] != "Scheduled" or time.monotonic() < started + 15, \
            "no query worker picked the query up: is QueryRunner wired in corral/app.py?"
        time.sleep(0.1)
    raise AssertionError(f"query {query_id} did not complete in {timeout}s")


def as_dicts(results: list[list[dict]]) -> list[dict[str, str]]:
    return [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in results]


def span() -> dict:
    start = T0 // 1000 - 60
    return {"startTime": start, "endTime": start + 7200}


def test_query_runs_to_complete(logs, three_streams):
    qid = logs.start_query(logGroupName=three_streams, queryString=(
        "filter @message like /ERROR/ | fields @timestamp, @message, @logStream "
        "| sort @timestamp desc | limit 5"), **span())["queryId"]
    out = wait_done(logs, qid)
    assert [(r["@logStream"], r["@message"]) for r in as_dicts(out["results"])] == [
        ("jobs/1", "ERROR Exiting after fatal error"),
        ("app/web", "ERROR Failed to connect to db")]
    assert all(row[-1]["field"] == "@ptr" for row in out["results"])
    assert out["statistics"]["recordsScanned"] == 9 and out["statistics"]["recordsMatched"] == 2
    assert out["statistics"]["bytesScanned"] > 0


def test_query_stats_parse_and_json_fields(logs, three_streams):
    qid = logs.start_query(logGroupNames=[three_streams], queryString=(
        'parse @message "* - * [*] \\"*\\" * *" as ip, user, when, request, status, bytes '
        "| filter ispresent(status) | stats count(*) as n, sum(bytes) as total by status "
        "| sort status"), **span())["queryId"]
    assert as_dicts(wait_done(logs, qid)["results"]) == [
        {"status": "200", "n": "1", "total": "512"},
        {"status": "404", "n": "2", "total": "7326"}]
    qid = logs.start_query(logGroupIdentifiers=[three_streams], queryString=(
        "filter ispresent(eventType) | fields eventType, user.id | sort eventType"), **span())
    assert as_dicts(wait_done(logs, qid["queryId"])["results"]) == [
        {"eventType": "CreateTrail"}, {"eventType": "UpdateTrail", "user.id": "1"}]


def test_query_over_two_groups_and_bins(logs, three_streams):
    with new_group(logs, {"other": [(T0 + 1, "ERROR elsewhere")]}) as other:
        qid = logs.start_query(logGroupNames=[three_streams, other], queryString=(
            "filter @message like 'ERROR' | stats count(*) as n by @log, bin(1h) | sort n desc"),
            **span())["queryId"]
        rows = as_dicts(wait_done(logs, qid)["results"])
        hour = time.strftime("%Y-%m-%d %H:00:00.000", time.gmtime(T0 / 1000))
        assert rows == [{"@log": f"{ACCOUNT}:{three_streams}", "bin(1h)": hour, "n": "2"},
                        {"@log": f"{ACCOUNT}:{other}", "bin(1h)": hour, "n": "1"}]


def test_stop_query_and_describe_queries(logs):
    """Five queries over 30,000 events queue on the worker; the last is stopped while it
    waits: Cancelled, and a second StopQuery stops nothing."""
    events = [(T0 + i // 10, f"line {i}") for i in range(30_000)]
    with new_group(logs, {"s": events}) as name:
        query = "stats count(*) by bin(1s) | sort @timestamp desc"
        ids = [logs.start_query(logGroupName=name, queryString=query, **span())["queryId"]
               for _ in range(5)]
        assert logs.stop_query(queryId=ids[-1])["success"] is True
        assert logs.get_query_results(queryId=ids[-1])["status"] == "Cancelled"
        assert logs.stop_query(queryId=ids[-1])["success"] is False
        for qid in ids[:-1]:
            wait_done(logs, qid, timeout=60)
        listed = logs.describe_queries(logGroupName=name)["queries"]
        assert sorted(q["queryId"] for q in listed) == sorted(ids)
        times = [q["createTime"] for q in listed]
        assert times == sorted(times, reverse=True)  # newest first
        assert {q["status"] for q in listed} == {"Complete", "Cancelled"}
        assert all(q["logGroupName"] == name and q["queryString"] == query for q in listed)
        cancelled = logs.describe_queries(logGroupName=name, status="Cancelled")["queries"]
        assert [q["queryId"] for q in cancelled] == [ids[-1]]
        assert len(logs.describe_queries(logGroupName=name, maxResults=2)["queries"]) == 2


def test_query_results_page_with_max_items(logs, three_streams):
    qid = logs.start_query(logGroupName=three_streams, queryString="fields @message",
                           **span())["queryId"]
    wait_done(logs, qid)
    first = logs.get_query_results(queryId=qid, maxItems=4)
    second = logs.get_query_results(queryId=qid, maxItems=4, nextToken=first["nextToken"])
    third = logs.get_query_results(queryId=qid, maxItems=4, nextToken=second["nextToken"])
    assert [len(p["results"]) for p in (first, second, third)] == [4, 4, 1]
    assert "nextToken" not in third


QUERY_ERRORS = [
    ("malformed", {"queryString": "fields @message | sort"}, "MalformedQueryException",
     "Unexpected end of the query"),
    ("unknown-command", {"queryString": "fetch @message"}, "MalformedQueryException",
     "Expected a command"),
    ("sql", {"queryString": "SELECT * FROM x", "queryLanguage": "SQL"},
     "InvalidParameterException", "CWLI"),
    ("end-before-start", {"queryString": "fields @message", "startTime": 100, "endTime": 50},
     "InvalidParameterException", "endTime"),
]


@pytest.mark.parametrize("overrides,code,text", [c[1:] for c in QUERY_ERRORS],
                         ids=[c[0] for c in QUERY_ERRORS])
def test_start_query_errors(logs, three_streams, overrides, code, text):
    params = {"logGroupName": three_streams, **span(), **overrides}
    got, message = error_of(logs.start_query, **params)
    assert got == code and text in message


def test_start_query_group_errors(logs, three_streams):
    assert error_of(logs.start_query, logGroupName="/q/missing", queryString="fields x",
                    **span()) == ("ResourceNotFoundException",
                                  f"Log group '/q/missing' does not exist for account ID "
                                  f"'{ACCOUNT}'")
    assert error_of(logs.start_query, logGroupNames=[f"/g{i}" for i in range(51)],
                    queryString="fields x", **span())[0] == "InvalidParameterException"
    assert error_of(logs.start_query, logGroupName=three_streams,
                    logGroupNames=[three_streams], queryString="fields x", **span())[0] == \
        "InvalidParameterException"
    assert error_of(logs.get_query_results, queryId=str(uuid.uuid4()))[0] == \
        "ResourceNotFoundException"
    assert error_of(logs.stop_query, queryId=str(uuid.uuid4()))[0] == \
        "ResourceNotFoundException"


def test_restart_fails_running_queries_and_runs_scheduled_ones(tmp_path):
    """The worker's first pass after a restart: a query left Running (its worker died with
    the process) becomes Failed; a Scheduled one runs to Complete."""
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    try:
        now = int(time.time() * 1000)
        with store.transaction() as db:
            g = logs_store.ensure_group(db, ACCOUNT, REGION, "/restart", now)
            s = logs_store.ensure_stream(db, g, "s", now)
            logs_store.ingest(db, g, s, [{"timestamp": now - 1000, "message": "hello"}], now)
            doc = {"queryString": "stats count(*) as n", "logGroupNames": ["/restart"],
                   "groupIds": [g.id], "startTime": now // 1000 - 60,
                   "endTime": now // 1000 + 60, "limit": 100, "results": [], "statistics": {}}
            for qid, status in (("left-running", "Running"), ("waiting", "Scheduled")):
                db.execute(logs_queries.insert().values(
                    query_id=qid, account_id=ACCOUNT, region=REGION, status=status,
                    created_at=now, doc=doc))
        QueryRunner(store).reconcile()
        with store.transaction(write=False) as db:
            rows = {r.query_id: r for r in db.execute(logs_queries.select())}
        assert rows["left-running"].status == "Failed"
        assert rows["waiting"].status == "Complete"
        assert rows["waiting"].doc["results"] == [[{"field": "n", "value": "1"}]]
    finally:
        store.close()
