"""Cron schedule parsing and next-activation times (five fields, macros, names, time zones)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apimachinery.cron import ScheduleError, most_recent_schedule_time, parse_schedule
from controller_manager.controllers.cronjob import job_name_for, rfc3339_in


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("* * * * *", utc(2026, 1, 1, 0, 0, 30), utc(2026, 1, 1, 0, 1)),
        ("*/15 * * * *", utc(2026, 1, 1, 0, 16), utc(2026, 1, 1, 0, 30)),
        ("5/20 * * * *", utc(2026, 1, 1, 0, 6), utc(2026, 1, 1, 0, 25)),
        ("0 9-17/4 * * *", utc(2026, 1, 1, 9, 0), utc(2026, 1, 1, 13, 0)),
        ("0 0 1,15 * *", utc(2026, 1, 2), utc(2026, 1, 15)),
        ("30 6 * jan-mar mon", utc(2026, 3, 31), utc(2027, 1, 4, 6, 30)),
        ("0 0 * * SUN", utc(2026, 11, 28), utc(2026, 11, 29)),
        ("@hourly", utc(2026, 1, 1, 10, 59), utc(2026, 1, 1, 11, 0)),
        ("@daily", utc(2026, 1, 1, 10), utc(2026, 1, 2)),
        ("@midnight", utc(2026, 1, 1, 10), utc(2026, 1, 2)),
        ("@weekly", utc(2026, 11, 25), utc(2026, 11, 29)),
        ("@monthly", utc(2026, 2, 14), utc(2026, 3, 1)),
        ("@yearly", utc(2026, 2, 14), utc(2027, 1, 1)),
        ("@annually", utc(2026, 2, 14), utc(2027, 1, 1)),
        # dom and dow both restricted: either matches (robfig/cron)
        ("0 0 13 * 5", utc(2026, 11, 1), utc(2026, 11, 6)),
        # dow restricted, dom '*': both must match
        ("0 0 * 2 1", utc(2026, 1, 1), utc(2026, 2, 2)),
    ],
)
def test_next(schedule: str, after: datetime, expected: datetime) -> None:
    assert parse_schedule(schedule).next(after) == expected


def test_time_zone_and_dst() -> None:
    s = parse_schedule("0 9 * * *", "Europe/Berlin")
    assert s.next(utc(2026, 1, 10, 12)) == utc(2026, 1, 11, 8)  # CET = UTC+1
    assert s.next(utc(2026, 7, 10, 12)) == utc(2026, 7, 11, 7)  # CEST = UTC+2
    # 02:30 does not exist on the spring-forward day in New York
    ny = parse_schedule("30 2 * * *", "America/New_York")
    assert ny.next(utc(2026, 3, 8, 0)) == utc(2026, 3, 9, 6, 30)


def test_never_fires() -> None:
    assert parse_schedule("0 0 30 2 *").next(utc(2026, 1, 1)) is None


@pytest.mark.parametrize(
    "bad", ["* * * *", "61 * * * *", "* * * * 8", "@fortnightly", "a * * * *", "5-1 * * * *", "*/0 * * * *"]
)
def test_errors(bad: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(bad)


def test_tz_errors() -> None:
    with pytest.raises(ScheduleError):
        parse_schedule("TZ=UTC * * * * *")
    with pytest.raises(ScheduleError):
        parse_schedule("* * * * *", "Mars/Olympus")


def test_missed_schedules() -> None:
    s = parse_schedule("* * * * *")
    recent, missed = most_recent_schedule_time(s, utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 5, 30))
    assert recent == utc(2026, 1, 1, 0, 5) and missed == 5
    recent, missed = most_recent_schedule_time(s, utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 0, 59))
    assert recent is None and missed == 0
    recent, missed = most_recent_schedule_time(s, utc(2026, 1, 1), utc(2026, 1, 1, 3))
    assert missed == 101 and recent == utc(2026, 1, 1, 3)  # counted only far enough to know ">100"
    # a year behind on an every-minute schedule still finds the latest activation quickly
    recent, missed = most_recent_schedule_time(s, utc(2025, 1, 1), utc(2026, 1, 1, 12, 34, 56))
    assert missed == 101 and recent == utc(2026, 1, 1, 12, 34)
    daily = parse_schedule("0 3 * * *")
    recent, missed = most_recent_schedule_time(daily, utc(2025, 1, 1), utc(2026, 1, 1, 2))
    assert missed == 101 and recent == utc(2025, 12, 31, 3)


def test_job_name_and_timestamp() -> None:
    t = utc(2026, 11, 28, 19, 45)
    assert job_name_for("hello", t) == f"hello-{int(t.timestamp()) // 60}"
    assert rfc3339_in(t, UTC) == "2026-11-28T19:45:00Z"
    from zoneinfo import ZoneInfo

    assert rfc3339_in(t, ZoneInfo("Asia/Kolkata")) == "2026-11-29T01:15:00+05:30"
