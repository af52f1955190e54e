"""Logs Insights commands and functions against AWS's documented sample queries ("CloudWatch
Logs Insights query syntax", "Sample queries"): each case is a query over the events below
and the rows it must return (@ptr left out unless the case is about it). Malformed queries,
with the offsets MalformedQueryException reports, are in their own table."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from corral.logs import insights
from corral.logs.insights_functions import Ts

BASE = 1_714_564_800_000  # 2024-05-01 12:00:00 UTC
MIN = 60_000


@dataclass(frozen=True)
class E:
    id: int
    stream: str
    ts: int
    ingested: int
    message: str


MESSAGES = [  # (minutes after BASE, stream, message)
    (0, "web/1", "user=alice, action=login status=200"),
    (10, "web/2", "java.lang.IllegalStateException: boom"),
    (20, "api/1", json.dumps({"level": "ERROR", "latency": 120, "req": {"path": "/a"},
                              "tags": ["x", "y"], "ok": False})),
    (30, "web/1", "user=bob, action=logout status=500"),
    (40, "web/2", "RuntimeException in handler"),
    (50, "api/1", json.dumps({"level": "INFO", "latency": 30, "req": {"path": "/b"}})),
    (65, "web/1", "user=alice, action=view status=200"),
    (70, "api/1", json.dumps({"level": "INFO", "latency": 60, "req": {"path": "/a"}})),
]
EVENTS = [("123456789012:/app", E(i + 1, s, BASE + m * MIN, BASE + m * MIN + 7, msg))
          for i, (m, s, msg) in enumerate(MESSAGES)]


def run(query: str, limit: int = 10_000) -> insights.Result:
    return insights.compile(query).run(EVENTS, limit=limit)


def rows(result: insights.Result, ptr: bool = False) -> list[dict[str, str]]:
    return [{f["field"]: f["value"] for f in row if ptr or f["field"] != "@ptr"}
            for row in result.rows]


T = str  # the expected timestamps, spelled as AWS shows them
CASES = [
    ("recent-25", "fields @timestamp, @message | sort @timestamp desc | limit 2", [
        {"@timestamp": "2024-05-01 13:10:00.000", "@message": MESSAGES[7][2]},
        {"@timestamp": "2024-05-01 13:05:00.000", "@message": MESSAGES[6][2]}]),
    ("count-by-hour", "stats count(*) by bin(1h)", [
        {"bin(1h)": "2024-05-01 12:00:00.000", "count(*)": "6"},
        {"bin(1h)": "2024-05-01 13:00:00.000", "count(*)": "2"}]),
    ("exceptions-per-hour",
     "filter @message like /Exception/ | stats count(*) as exceptionCount by bin(1h) "
     "| sort exceptionCount desc", [
         {"bin(1h)": "2024-05-01 12:00:00.000", "exceptionCount": "2"}]),
    ("parse-glob-count-by-user", 'parse @message "user=*," as user | filter ispresent(user) '
     "| stats count() by user | sort user", [
         {"user": "alice", "count()": "2"}, {"user": "bob", "count()": "1"}]),
    ("parse-regex", "parse @message /user=(?<who>\\w+), action=(?<act>\\w+)/ "
     "| filter act = 'logout' | fields who, act", [{"who": "bob", "act": "logout"}]),
    ("parse-two-stars", 'parse @message "action=* status=*" as act, code '
     "| filter code >= 500 | display act, code", [{"act": "logout", "code": "500"}]),
    ("json-fields-discovered", "filter level = 'ERROR' | fields level, latency, req.path, tags.1", [
        {"level": "ERROR", "latency": "120", "req.path": "/a", "tags.1": "y"}]),
    ("json-boolean-as-text", "filter ok = 'false' | fields level", [{"level": "ERROR"}]),
    ("avg-max-by-level", "filter ispresent(latency) | stats avg(latency) as avg, "
     "max(latency) as max, min(latency) as min, sum(latency) as total by level | sort level", [
         {"level": "ERROR", "avg": "120", "max": "120", "min": "120", "total": "120"},
         {"level": "INFO", "avg": "45", "max": "60", "min": "30", "total": "90"}]),
    ("pct-and-distinct", "stats pct(latency, 50) as p50, count_distinct(req.path) as paths, "
     "count(latency) as n", [{"p50": "60", "paths": "2", "n": "3"}]),
    ("stats-arithmetic", "stats sum(latency) / count(latency) as mean", [{"mean": "70"}]),
    ("earliest-latest", 'parse @message "user=*," as user | filter ispresent(user) '
     "| stats earliest(user) as first, latest(action) as last, latest(user) as who",
     [{"first": "alice", "who": "alice"}]),
    ("count-by-5m-bin-and-stream", "filter @logStream = 'web/1' | stats count(*) as n "
     "by bin(5m) as t | sort t desc | limit 1", [
         {"t": "2024-05-01 13:05:00.000", "n": "1"}]),
    ("string-functions", "filter @logStream = 'web/2' | fields strlen(@message) as len, "
     "toupper(substr(@message, 0, 4)) as head, concat(@logStream, '!') as tag | limit 1", [
         {"len": "37", "head": "JAVA", "tag": "web/2!"}]),
    ("replace-trim", "filter @logStream = 'web/2' and @message like 'Runtime' "
     "| fields replace(@message, 'Runtime', ' Run ') as r, trim(replace(@message, 'Runtime', "
     "' Run ')) as t", [{"r": " Run Exception in handler", "t": "Run Exception in handler"}]),
    ("numbers", "filter level = 'INFO' | fields abs(0 - latency) as a, ceil(latency / 7) as c, "
     "floor(latency / 7) as f, latency * 2 + 1 as x, latency % 7 as m | sort a | limit 1", [
         {"a": "30", "c": "5", "f": "4", "x": "61", "m": "2"}]),
    ("in-list", "filter level in ['ERROR', 'WARN'] | fields level", [{"level": "ERROR"}]),
    ("not-in-list", "filter ispresent(level) and level not in ['ERROR'] | fields latency", [
        {"latency": "30"}, {"latency": "60"}]),
    ("like-string-is-substring", "filter @message like 'alice' | fields @logStream", [
        {"@logStream": "web/1"}, {"@logStream": "web/1"}]),
    ("regex-match-operator", "filter @message =~ /^user=b/ | fields @message", [
        {"@message": MESSAGES[3][2]}]),
    ("not-like", "filter @logStream = 'web/1' and @message not like /alice/ | fields @message", [
        {"@message": MESSAGES[3][2]}]),
    ("or-and-not", "filter (latency > 100 or level = 'INFO') and not req.path = '/b' "
     "| fields latency", [{"latency": "120"}, {"latency": "60"}]),
    ("sort-multiple-keys", "filter ispresent(latency) | sort req.path asc, latency desc "
     "| fields req.path, latency", [
         {"req.path": "/a", "latency": "120"}, {"req.path": "/a", "latency": "60"},
         {"req.path": "/b", "latency": "30"}]),
    ("dedup", "filter ispresent(req.path) | sort @timestamp desc | dedup req.path "
     "| fields req.path, latency", [
         {"req.path": "/a", "latency": "60"}, {"req.path": "/b", "latency": "30"}]),
    ("display-only-named", "fields @message, @logStream | filter @logStream = 'api/1' "
     "| display @logStream | limit 1", [{"@logStream": "api/1"}]),
    ("limit-without-sort", "limit 3 | fields @logStream", [
        {"@logStream": "web/1"}, {"@logStream": "web/2"}, {"@logStream": "api/1"}]),
    ("second-stats", "stats count(*) as n by @logStream | stats sum(n) as total", [
        {"total": "8"}]),
    ("datefloor-frommillis", "filter @logStream = 'web/1' | fields datefloor(@timestamp, 1h) "
     "as hour, fromMillis(1714564800000) as t0 | limit 1", [
         {"hour": "2024-05-01 12:00:00.000", "t0": "2024-05-01 12:00:00.000"}]),
    ("coalesce-and-ispresent", "filter @logStream = 'web/2' | fields coalesce(user, "
     "'nobody') as u, ispresent(user) as has | limit 1", [{"u": "nobody", "has": "0"}]),
    ("missing-fields-left-out", 'parse @message "user=*," as user | fields user, @logStream '
     "| limit 2", [
        {"user": "alice", "@logStream": "web/1"}, {"@logStream": "web/2"}]),
    ("log-and-ingestion-time", "fields @log, @ingestionTime | limit 1", [
        {"@log": "123456789012:/app", "@ingestionTime": "2024-05-01 12:00:00.007"}]),
    ("backquoted-field", "fields `req.path` as p | filter ispresent(p) | limit 1", [
        {"p": "/a"}]),
    ("natural-sort-numbers-after-text", "fields latency, level | filter ispresent(latency) "
     "| sort latency | display latency", [
         {"latency": "30"}, {"latency": "60"}, {"latency": "120"}]),
]


@pytest.mark.parametrize("query,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_query(query: str, expected: list[dict[str, str]]):
    assert rows(run(query)) == expected


def test_default_fields_and_ptr():
    """Without fields/display a row holds the built-ins (and discovered JSON fields), and
    every non-stats row carries @ptr; stats rows carry none."""
    result = insights.compile("filter level = 'ERROR'").run(
        EVENTS, ptr=lambda log, e: f"ptr-{e.id}")
    (row,) = rows(result, ptr=True)
    assert row["@timestamp"] == "2024-05-01 12:20:00.000"
    assert row["@logStream"] == "api/1" and row["@log"] == "123456789012:/app"
    assert row["latency"] == "120" and row["@ptr"] == "ptr-3"
    stats = run("stats count(*)")
    assert stats.rows == [[{"field": "count(*)", "value": "8"}]]


def test_statistics():
    result = run("filter @message like /Exception/ | stats count(*)")
    assert result.statistics == {
        "recordsMatched": 2.0, "recordsScanned": 8.0,
        "bytesScanned": float(sum(len(m.encode()) for _, _, m in MESSAGES))}


def test_result_cap_and_sort_keep_only_the_top():
    assert len(run("fields @message", limit=3).rows) == 3
    top = run("sort @timestamp desc | fields @timestamp", limit=1)
    assert rows(top) == [{"@timestamp": "2024-05-01 13:10:00.000"}]


def test_limit_stops_the_scan():
    """``limit`` ends the stream: later events are never read."""
    seen = []

    def events():
        for pair in EVENTS:
            seen.append(pair[1].id)
            yield pair

    insights.compile("limit 2").run(events())
    assert seen == [1, 2]


def test_should_stop_cancels():
    many = [("a:g", E(i, "s", BASE + i, BASE + i, "x")) for i in range(5000)]
    with pytest.raises(insights.Cancelled):
        insights.compile("stats count(*)").run(many, should_stop=lambda: True)


def test_message_literals_for_the_store_prefilter():
    q = insights.compile("filter @message like 'ERROR' and @message like /x/ "
                         "| filter @message like \"db\" | fields @message")
    assert q.message_literals() == ["ERROR", "db"]
    assert insights.compile("filter @message like 'a' or @message like 'b'").message_literals() \
        == []
    assert insights.compile("fields x | filter @message like 'a'").message_literals() == []


def test_timestamp_values():
    assert str(Ts(BASE + 1)) == "2024-05-01 12:00:00.001"


MALFORMED = [
    ("empty", "", "empty", (0, 0)),
    ("unknown-command", "fetch @message", "Expected a command", (0, 5)),
    ("unsupported-command", "fields @message | pattern @message", "does not support", (18, 25)),
    ("dangling-pipe", "fields @message |", "Expected a command", (17, 18)),
    ("missing-value", "filter latency > ", "Unexpected end", (17, 18)),
    ("unknown-function", "fields nosuch(@message)", "Unknown function 'nosuch'", (7, 13)),
    ("wrong-arity", "fields strlen(@message, 2)", "strlen() takes", (7, 26)),
    ("stats-without-aggregate", "stats latency by level", "needs an aggregate", (6, 13)),
    ("aggregate-outside-stats", "filter count(*) > 1", "use it in stats", (7, 15)),
    ("limit-zero", "limit 0", "positive whole number", (6, 7)),
    ("parse-star-count", 'parse @message "a=* b=*" as a', "2 '*' but 1", (15, 29)),
    ("parse-regex-unnamed", "parse @message /(\\d+)/", "named groups", (15, 22)),
    ("bad-regex", "filter @message like /(/", "Invalid regular expression", (21, 24)),
    ("unterminated-string", "filter a = 'x", "Unexpected symbol", (11, 12)),
    ("unclosed-paren", "filter (a = 1", "Expected ')'", (13, 14)),
    ("as-without-name", "fields a as", "after 'as'", (11, 12)),
    ("not-without-like", "filter a not = 1", "Unexpected", (9, 12)),
]


@pytest.mark.parametrize("query,message,location", [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])
def test_malformed(query: str, message: str, location: tuple[int, int]):
    with pytest.raises(insights.QueryError) as e:
        insights.compile(query)
    assert message in e.value.message
    assert (e.value.start, e.value.end) == location
