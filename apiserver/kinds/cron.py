"""Cron schedule syntax check for CronJob validation, with the parser the cronjob controller uses."""

from __future__ import annotations

from apimachinery.cron import ScheduleError, parse_schedule

__all__ = ["schedule_error"]


def schedule_error(schedule: str) -> str | None:
    """None when the schedule parses, else a message like the apiserver's."""
    if schedule.strip().startswith("@every "):
        return None
    try:
        parse_schedule(schedule)
    except ScheduleError as e:
        return str(e)
    return None
