"""The cron schedules CronJobs are written in (``schemas.cron``): robfig/cron's standard grammar."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.cron import CronError, parse


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1000


def runs(schedule: str, start: str, count: int, zone: str = "") -> list[str]:
    s, t, out = parse(schedule, zone), at(start), []
    for _ in range(count):
        nxt = s.next_after(t)
        assert nxt is not None
        t = nxt
        out.append(datetime.fromtimestamp(t / 1000, UTC).strftime("%Y-%m-%d %H:%M %a"))
    return out


@pytest.mark.parametrize(("schedule", "start", "expected"), [
    ("*/5 * * * *", "2025-01-01T00:00:00", ["2025-01-01 00:05 Wed", "2025-01-01 00:10 Wed", "2025-01-01 00:15 Wed"]),
    ("0 9 * * MON-FRI", "2025-01-03T10:00:00", ["2025-01-06 09:00 Mon", "2025-01-07 09:00 Tue", "2025-01-08 09:00 Wed"]),
    ("30 2 1 */3 *", "2025-01-15T00:00:00", ["2025-04-01 02:30 Tue", "2025-07-01 02:30 Tue", "2025-10-01 02:30 Wed"]),
    # both day fields restricted: either matches (the 13th, or a Friday)
    ("0 0 13 * 5", "2025-06-01T00:00:00", ["2025-06-06 00:00 Fri", "2025-06-13 00:00 Fri", "2025-06-20 00:00 Fri"]),
    ("0 0 29 2 *", "2025-01-01T00:00:00", ["2028-02-29 00:00 Tue", "2032-02-29 00:00 Sun", "2036-02-29 00:00 Fri"]),
    ("@hourly", "2025-01-01T00:30:00", ["2025-01-01 01:00 Wed", "2025-01-01 02:00 Wed", "2025-01-01 03:00 Wed"]),
    ("@weekly", "2025-01-01T00:00:00", ["2025-01-05 00:00 Sun", "2025-01-12 00:00 Sun", "2025-01-19 00:00 Sun"]),
    ("@monthly", "2025-01-31T00:00:00", ["2025-02-01 00:00 Sat", "2025-03-01 00:00 Sat", "2025-04-01 00:00 Tue"]),
    ("@yearly", "2025-06-01T00:00:00", ["2026-01-01 00:00 Thu", "2027-01-01 00:00 Fri", "2028-01-01 00:00 Sat"]),
    ("@every 90m", "2025-01-01T00:00:00", ["2025-01-01 01:30 Wed", "2025-01-01 03:00 Wed", "2025-01-01 04:30 Wed"]),
    ("0,30 8-9 * jan,FEB sun", "2025-01-01T00:00:00", ["2025-01-05 08:00 Sun", "2025-01-05 08:30 Sun", "2025-01-05 09:00 Sun"]),
])
def test_the_next_runs(schedule: str, start: str, expected: list[str]) -> None:
    assert runs(schedule, start, 3) == expected


def test_a_time_zone_moves_the_runs_and_follows_daylight_saving() -> None:
    # 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer (from 2025-03-30)
    assert runs("0 9 * * *", "2025-03-28T12:00:00", 3, zone="Europe/Paris") == [
        "2025-03-29 08:00 Sat", "2025-03-30 07:00 Sun", "2025-03-31 07:00 Mon"]


def test_a_date_that_never_comes_has_no_next_run() -> None:
    assert parse("0 0 31 2 *").next_after(0) is None


@pytest.mark.parametrize(("schedule", "reason"), [
    ("* * * *", "expected 5 fields"),
    ("* * * * * *", "expected 5 fields"),
    ("60 * * * *", "minute: '60' is outside 0-59"),
    ("* 24 * * *", "hour: '24' is outside 0-23"),
    ("* * 0 * *", "day of month: '0' is outside 1-31"),
    ("* * * 13 *", "month: '13' is outside 1-12"),
    ("* * * * 7", "day of week: '7' is outside 0-6"),
    ("*/0 * * * *", "minute: step '0' must be a positive number"),
    ("10-5 * * * *", "minute: '10-5' starts after it ends"),
    ("* * * FOO *", "month: 'FOO' is not a number"),
    ("@fortnightly", "unknown macro '@fortnightly'"),
    ("@every 10ms", "@every: the interval must be at least 1s"),
])
def test_an_invalid_schedule_is_refused_saying_why(schedule: str, reason: str) -> None:
    with pytest.raises(CronError) as refused:
        parse(schedule)
    assert reason in str(refused.value)
