"""The filter pattern grammar against AWS's documented examples ("Filter pattern syntax for
metric filters, subscription filters, filter log events, and Live Tail"): each case is a
pattern, a message and whether it matches; malformed patterns in their own table."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.logs import filter_pattern as fp
from corral.logs.filter_delimited import split_message

# The docs' sample messages.
BAD_REQUEST = "[ERROR 400] BAD REQUEST"
UNAUTHORIZED = "[ERROR 401] UNAUTHORIZED REQUEST"
INTERNAL = "[ERROR 419] MISSING ARGUMENTS"
WARN = "[WARN] low disk space"
EXITING = "[ERROR] Exiting after a fatal error"
SUCCESS = "[SUCCESS 200] AUTHORIZED REQUEST"
APACHE = ('127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" '
          "404 1534")
APACHE_200 = ('127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /index.html HTTP/1.0" '
              "200 1000")
CLOUDTRAIL = json.dumps({
    "eventType": "UpdateTrail", "sourceIPAddress": "123.123.123.123",
    "arrayKey": ["value", "another value"], "objectList": [
        {"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "SomeObject": None, "cluster": {"status": "ACTIVE"}, "bandwidth": 80, "latency": 30,
    "refreshRate": 60, "errorCode": 400, "isEnabled": True, "isRunning": False,
    "user": {"id": 1, "email": "John.Doe@example.com"},
    "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "x@example.com"}],
    "actions": ["GET", "PUT", "DELETE"], "number": [0.001], "ErrorCode": "ResourceNotFound",
})

MATCHES = [
    # Unstructured terms: case-sensitive substrings, all must occur.
    ("empty-matches-all", "", BAD_REQUEST, True),
    ("blank-matches-all", "   ", WARN, True),
    ("term", "ERROR", BAD_REQUEST, True),
    ("term-absent", "ERROR", WARN, False),
    ("term-case-sensitive", "error", BAD_REQUEST, False),
    ("two-terms-both", "ERROR ARGUMENTS", INTERNAL, True),
    ("two-terms-one-missing", "ERROR ARGUMENTS", BAD_REQUEST, False),
    ("quoted-terms", '"ERROR" "ARGUMENTS"', INTERNAL, True),
    ("phrase", '"MISSING ARGUMENTS"', INTERNAL, True),
    ("phrase-not-words", '"ARGUMENTS MISSING"', INTERNAL, False),
    ("failed-to", '"Failed to"', "Failed to connect to db", True),
    ("phrase-with-colon", '"ERROR 400"', BAD_REQUEST, True),
    ("or-first", "?ERROR ?WARN", BAD_REQUEST, True),
    ("or-second", "?ERROR ?WARN", WARN, True),
    ("or-none", "?ERROR ?WARN", SUCCESS, False),
    ("exclude", "ERROR -Exiting", BAD_REQUEST, True),
    ("exclude-hit", "ERROR -Exiting", EXITING, False),
    ("exclude-phrase", 'ERROR -"MISSING ARGUMENTS"', INTERNAL, False),
    ("and-with-or", "REQUEST ?400 ?401", UNAUTHORIZED, True),
    ("and-with-or-miss", "REQUEST ?400 ?401", SUCCESS, False),
    ("regex-standalone", "%AUTHORIZED%", UNAUTHORIZED, True),
    ("regex-alternation", "%gray|grey%", "the grey cat", True),
    ("regex-optional", "%colou?r%", "color", True),
    ("regex-class", "%ERROR 4[0-9]{2}%", INTERNAL, True),
    ("regex-anchor", "%^\\[SUCCESS%", BAD_REQUEST, False),
    # JSON: AWS's CloudTrail-style examples.
    ("json-string", '{ $.eventType = "UpdateTrail" }', CLOUDTRAIL, True),
    ("json-string-differs", '{ $.eventType = "CreateTrail" }', CLOUDTRAIL, False),
    ("json-no-spaces", '{$.eventType="UpdateTrail"}', CLOUDTRAIL, True),
    ("json-wildcard-suffix", '{ $.eventType = "Update*" }', CLOUDTRAIL, True),
    ("json-wildcard-prefix", '{ $.eventType = "*Trail" }', CLOUDTRAIL, True),
    ("json-unquoted-wildcard-ne", "{ $.sourceIPAddress != 123.123.* }", CLOUDTRAIL, False),
    ("json-unquoted-wildcard-ne2", "{ $.sourceIPAddress != 124.* }", CLOUDTRAIL, True),
    ("json-array-index", '{ $.arrayKey[0] = "value" }', CLOUDTRAIL, True),
    ("json-array-index-2", '{ $.arrayKey[1] = "value" }', CLOUDTRAIL, False),
    ("json-object-list", "{ $.objectList[1].id = 2 }", CLOUDTRAIL, True),
    ("json-any-element", '{ $.actions[*] = "DELETE" }', CLOUDTRAIL, True),
    ("json-gt", "{ $.bandwidth > 75 }", CLOUDTRAIL, True),
    ("json-lt", "{ $.latency < 50 }", CLOUDTRAIL, True),
    ("json-le", "{ $.refreshRate <= 60 }", CLOUDTRAIL, True),
    ("json-ge-false", "{ $.refreshRate >= 61 }", CLOUDTRAIL, False),
    ("json-eq-number", "{ $.errorCode = 400 }", CLOUDTRAIL, True),
    ("json-ne-number", "{ $.errorCode != 500 }", CLOUDTRAIL, True),
    ("json-exponent", "{ $.number[0] = 1e-3 }", CLOUDTRAIL, True),
    ("json-number-vs-string", "{ $.eventType > 1 }", CLOUDTRAIL, False),
    ("json-is-null", "{ $.SomeObject IS NULL }", CLOUDTRAIL, True),
    ("json-is-null-missing", "{ $.Nothing IS NULL }", CLOUDTRAIL, False),
    ("json-not-exists", "{ $.SomeOtherObject NOT EXISTS }", CLOUDTRAIL, True),
    ("json-not-exists-present", "{ $.SomeObject NOT EXISTS }", CLOUDTRAIL, False),
    ("json-is-true", "{ $.isEnabled IS TRUE }", CLOUDTRAIL, True),
    ("json-is-false", "{ $.isRunning IS FALSE }", CLOUDTRAIL, True),
    ("json-is-true-on-false", "{ $.isRunning IS TRUE }", CLOUDTRAIL, False),
    ("json-and-doc-example",
     '{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', CLOUDTRAIL, True),
    ("json-and-one-false",
     '{ ($.user.id = 2) && ($.users[0].email = "John.Doe@example.com") }', CLOUDTRAIL, False),
    ("json-or-doc-example",
     '{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "DELETE" }',
     CLOUDTRAIL, True),
    ("json-or-none", '{ $.user.id = 2 || $.actions[0] = "PUT" }', CLOUDTRAIL, False),
    ("json-nested", '{ $.cluster.status = "ACTIVE" }', CLOUDTRAIL, True),
    ("json-regex", "{ $.ErrorCode = %Resource[A-Za-z]+% }", CLOUDTRAIL, True),
    ("json-regex-ne", "{ $.ErrorCode != %^Access% }", CLOUDTRAIL, True),
    ("json-on-text-message", '{ $.eventType = "UpdateTrail" }', BAD_REQUEST, False),
    ("json-missing-field-ne", '{ $.missing != "x" }', CLOUDTRAIL, False),
    # Space-delimited: the Apache common log examples.
    ("delim-all-fields", "[ip, user, username, timestamp, request, status_code, bytes]",
     APACHE, True),
    ("delim-too-few-fields", "[ip, user, username, timestamp, request, status_code]",
     APACHE, False),
    ("delim-404", "[ip, user, username, timestamp, request, status_code = 404, bytes]",
     APACHE, True),
    ("delim-404-on-200", "[ip, user, username, timestamp, request, status_code = 404, bytes]",
     APACHE_200, False),
    ("delim-4xx-wildcard", "[ip, user, username, timestamp, request, status_code = 4*, bytes]",
     APACHE, True),
    ("delim-ellipsis-bytes", "[..., status_code = 4*, bytes > 1000]", APACHE, True),
    ("delim-ellipsis-bytes-small", "[..., status_code = 4*, bytes > 2000]", APACHE, False),
    ("delim-ellipsis-middle", "[ip, ..., bytes = 1534]", APACHE, True),
    ("delim-quoted-field", '[ip, user, username, timestamp, request = "*apache_pb*", ...]',
     APACHE, True),
    ("delim-bracketed-field", "[ip, user, username, timestamp = 10/Oct/2000*, ...]", APACHE, True),
    ("delim-or-in-field",
     "[ip, user, username, timestamp, request, status_code = 404 || status_code = 410, bytes]",
     APACHE, True),
    ("delim-and-in-field",
     "[ip, user, username, timestamp, request, status_code != 404 && status_code != 200, b]",
     APACHE, False),
    ("delim-ne", "[ip, user, username != frank, ...]", APACHE, False),
    ("delim-first-word", "[w1=ERROR, w2]", "ERROR 400", True),
    ("delim-first-word-more-fields", "[w1=ERROR, w2]", "ERROR 400 500", False),
    ("delim-regex", "[..., status_code = %4[0-9]{2}%, bytes]", APACHE, True),
    ("delim-numeric-on-text", "[ip, user > 1, ...]", APACHE, False),
    ("delim-two-ellipses", "[..., request = *gif*, ...]", APACHE, True),
]


@pytest.mark.parametrize("pattern,message,expected", [c[1:] for c in MATCHES],
                         ids=[c[0] for c in MATCHES])
def test_match(pattern: str, message: str, expected: bool):
    assert fp.compile(pattern).match(message) is expected


MALFORMED = [
    ("unclosed-brace", '{ $.eventType = "UpdateTrail"', "must end with '}'"),
    ("unclosed-bracket", "[ip, user", "must end with ']'"),
    ("empty-phrase", '""', "Invalid character(s) in term '\"\"'"),
    ("lone-question-mark", "?", "Invalid character(s) in term '?'"),
    ("at-sign-unquoted", "user@example.com", "Invalid character(s) in term"),
    ("unterminated-quote", '"Failed to', "Invalid character(s) in term"),
    ("json-no-operator", "{ $.eventType }", "Unexpected"),
    ("json-no-value", "{ $.eventType = }", "Expected a value"),
    ("json-bad-selector", '{ eventType = "x" }', "Invalid selector"),
    ("json-dangling-and", '{ $.a = 1 && }', "Unexpected"),
    ("json-unbalanced-paren", "{ ($.a = 1 }", "Unexpected"),
    ("json-string-ordering", '{ $.a > "x" }', "needs a numeric value"),
    ("json-is-other", "{ $.a IS MAYBE }", "after IS"),
    ("regex-parentheses", "%(ERROR)%", "Invalid regular expression"),
    ("regex-bang", "%something!%", "Invalid regular expression"),
    ("three-regexes", "{ $.a = %a% || $.b = %b% || $.c = %c% }", "at most 2"),
    ("delim-unknown-field", "[a, b = 1 && c = 2]", "Unknown field 'c'"),
    ("delim-duplicate-name", "[a, a]", "used twice"),
    ("too-long", "x" * 1025, "longer than 1024"),
]


@pytest.mark.parametrize("pattern,detail", [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])
def test_malformed(pattern: str, detail: str):
    with pytest.raises(fp.InvalidFilterPattern) as e:
        fp.compile(pattern)
    assert str(e.value).startswith("Invalid filter pattern")
    assert detail in str(e.value)


LITERALS = [
    ("term", "ERROR", ["ERROR"]),
    ("or-terms-none", "?ERROR ?WARN", []),
    ("exclusion-none", "ERROR -Exiting", ["ERROR"]),
    ("regex-none", "%ERR%", []),
    ("json-key-and-value", '{ $.eventType = "Update*" }', ['"eventType"', "Update"]),
    ("json-or-none", '{ $.a = "x" || $.b = "y" }', []),
    ("json-not-exists-none", "{ $.a NOT EXISTS }", []),
    ("json-escaped-value-skipped", '{ $.path = "a/b" }', ['"path"']),
    ("delim-string", "[a, b = *gif*]", ["gif"]),
    ("delim-number-none", "[a, b > 10]", []),
]


@pytest.mark.parametrize("pattern,literals", [c[1:] for c in LITERALS],
                         ids=[c[0] for c in LITERALS])
def test_literals(pattern: str, literals: list[str]):
    assert fp.compile(pattern).literals() == literals


@pytest.mark.parametrize("pattern,message,selector,value", [
    ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE, "$bytes", "1534"),
    ("[..., status_code = 4*, bytes]", APACHE, "$status_code", "404"),
    ('{ $.eventType = "UpdateTrail" }', CLOUDTRAIL, "$.latency", 30),
    ('{ $.eventType = "UpdateTrail" }', CLOUDTRAIL, "$.users[1].email", "x@example.com"),
    ('{ $.eventType = "CreateTrail" }', CLOUDTRAIL, "$.latency", None),  # no match, no value
], ids=["delim-bytes", "delim-status", "json-latency", "json-path", "json-no-match"])
def test_extract(pattern: str, message: str, selector: str, value):
    assert fp.compile(pattern).extract(message, selector) == value


def test_selectors_for_metric_values():
    delimited = fp.compile("[ip, user, ..., bytes]")
    assert fp.valid_selector(delimited, "$bytes")
    assert not fp.valid_selector(delimited, "$size")
    assert fp.valid_selector(fp.compile("{ $.a = 1 }"), "$.latency")
    assert not fp.valid_selector(fp.compile("ERROR"), "$.latency")


def test_message_fields_split_on_quotes_and_brackets():
    assert split_message(APACHE) == [
        "127.0.0.1", "-", "frank", "10/Oct/2000:13:25:15 -0700", "GET /apache_pb.gif HTTP/1.0",
        "404", "1534"]


# The prefilter may only drop events the matcher rejects: every message a pattern matches
# contains every literal it names.
_WORDS = st.sampled_from(["ERROR", "WARN", "id", "Trail", "a b", "404", "x/y", "é"])
_PATTERNS = st.sampled_from([
    "ERROR", "ERROR -WARN", "?ERROR ?WARN", '"a b" id', '{ $.k = "Trail" }',
    '{ $.k = "*a b*" && $.n > 3 }', '{ $.k = "x/y" }', "[w1, w2 = *40*, ...]", "[..., w = ERROR]",
])


@given(_PATTERNS, st.lists(_WORDS, max_size=6), st.integers(0, 9), st.booleans())
def test_literals_never_overpromise(pattern: str, words: list[str], n: int, as_json: bool):
    text = " ".join(words)
    message = json.dumps({"k": text, "n": n}, ensure_ascii=n % 2 == 0) if as_json else text
    compiled = fp.compile(pattern)
    if compiled.match(message):
        assert all(lit in message for lit in compiled.literals())
