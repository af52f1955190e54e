"""PutLogEvents' rules for one batch, as a pure function of the batch, the time and the
group's retention [BC PutLogEvents]:

    1. at least 1 and at most 10,000 events, no empty message          (the model's bounds)
    2. no event larger than 1,048,576 bytes, counted as its message in UTF-8 plus 26 bytes
    3. the batch at most 1,048,576 bytes, counted the same way
    4. timestamps in chronological order (equal timestamps are in order)
    5. events older than 14 days, or than the group's retention period, and events more than
       2 hours in the future are left out, the rest stored, and the left-out ranges reported
       in ``rejectedLogEventsInfo``:
           tooOldLogEventEndIndex    events [0, i) are older than 14 days      (exclusive)
           expiredLogEventEndIndex   events [0, i) are older than the retention (exclusive)
           tooNewLogEventStartIndex  events [i, n) are too far ahead            (inclusive)
       (the batch is sorted, so each range is a prefix or a suffix)
    6. the events kept may span at most 24 hours

Rules 1–4 and 6 fail the whole request with InvalidParameterException and AWS's text; rule 5
never does. The limits are checked in this order, the cheapest refusals first.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from corral.logs.errors import InvalidParameterException

MAX_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MAX_SPAN_MS = DAY_MS
TOO_OLD_MS = 14 * DAY_MS
TOO_NEW_MS = 2 * HOUR_MS

OUT_OF_ORDER = "Log events in a single PutLogEvents request must be in chronological order."
SPAN = ("The batch of log events in a single PutLogEvents request cannot span more than "
        "24 hours.")


@dataclass(frozen=True)
class Verdict:
    start: int  # the events kept are batch[start:end]
    end: int
    sizes: list[int] = field(repr=False)  # UTF-8 bytes of each message
    rejected: dict[str, int] = field(default_factory=dict)  # rejectedLogEventsInfo


def event_size(message: str) -> int:
    return len(message) if message.isascii() else len(message.encode("utf-8"))


def clean_message(message: str) -> str:
    """The message as UTF-8 can hold it: a lone surrogate (only a direct caller can pass one;
    the JSON layer refuses them) becomes U+FFFD, as a UTF-8 decoder shows invalid bytes."""
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        return message.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return message


def _validation(value: str, path: str, constraint: str) -> InvalidParameterException:
    """The model validator's text, for callers (the awslogs driver) that skip the gateway."""
    return InvalidParameterException(
        f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
        f"constraint: Member must {constraint}")


def _check_shape(events: list[dict]) -> None:
    if not events:
        raise _validation("[]", "logEvents", "have length greater than or equal to 1")
    if len(events) > MAX_EVENTS:
        raise _validation(f"<{len(events)} events>", "logEvents",
                          f"have length less than or equal to {MAX_EVENTS}")
    for i, event in enumerate(events, 1):
        if not event["message"]:
            raise _validation("", f"logEvents.{i}.member.message",
                              "have length greater than or equal to 1")


def _check_sizes(events: list[dict]) -> list[int]:
    sizes = [event_size(e["message"]) for e in events]
    biggest = max(sizes) + EVENT_OVERHEAD
    if biggest > MAX_BATCH_BYTES:
        raise InvalidParameterException(  # AWS text
            f"Log event too large: {biggest} bytes exceeds limit of {MAX_BATCH_BYTES}")
    total = sum(sizes) + EVENT_OVERHEAD * len(sizes)
    if total > MAX_BATCH_BYTES:
        raise InvalidParameterException(  # AWS text
            f"Upload too large: {total} bytes exceeds limit of {MAX_BATCH_BYTES}")
    return sizes


def judge(events: list[dict], now_ms: int, retention_days: int | None) -> Verdict:
    """Which events of a batch ``[{"timestamp", "message"}]`` are stored, and what is
    reported; raises InvalidParameterException when the batch breaks a rule."""
    _check_shape(events)
    sizes = _check_sizes(events)
    stamps = [e["timestamp"] for e in events]
    if any(b < a for a, b in zip(stamps, stamps[1:], strict=False)):
        raise InvalidParameterException(OUT_OF_ORDER)
    rejected: dict[str, int] = {}
    too_old = bisect_left(stamps, now_ms - TOO_OLD_MS)  # strictly older than 14 days
    if too_old:
        rejected["tooOldLogEventEndIndex"] = too_old
    expired = 0
    if retention_days:
        expired = bisect_left(stamps, now_ms - retention_days * DAY_MS)
        if expired:
            rejected["expiredLogEventEndIndex"] = expired
    too_new = bisect_right(stamps, now_ms + TOO_NEW_MS)  # strictly more than 2 h ahead
    if too_new < len(stamps):
        rejected["tooNewLogEventStartIndex"] = too_new
    start, end = max(too_old, expired), too_new
    if end > start and stamps[end - 1] - stamps[start] > MAX_SPAN_MS:
        raise InvalidParameterException(SPAN)
    return Verdict(start, max(start, end), sizes, rejected)
