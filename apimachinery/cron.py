"""Five-field cron schedules as the CronJob controller reads them (robfig/cron's standard parser):
ranges, steps, lists, month and weekday names, @macros, evaluated in a time zone (zoneinfo).

Day-of-month and day-of-week combine like robfig/cron: if either field starts with `*` or `?`
(without a step > 1) both must match, otherwise either may match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["MACROS", "CronSchedule", "ScheduleError", "most_recent_schedule_time", "parse_schedule"]

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DOWS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
_BOUNDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 6, _DOWS))
# robfig/cron gives up after five years of searching (e.g. "0 0 30 2 *" never fires).
_SEARCH_YEARS = 5


class ScheduleError(ValueError):
    """An unparseable schedule."""


def _number(s: str, names: dict[str, int]) -> int:
    if s.lower() in names:
        return names[s.lower()]
    try:
        v = int(s)
    except ValueError:
        raise ScheduleError(f'failed to parse int from {s}: strconv.Atoi: parsing "{s}": invalid syntax') from None
    if v < 0:
        raise ScheduleError(f"negative number ({v}) not allowed: {s}")
    return v


def _parse_field(expr: str, lo: int, hi: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    """The set of values a field allows and whether it is a 'star' field (robfig's starBit)."""
    values: set[int] = set()
    star = False
    for part in expr.split(","):
        range_part, _, step_part = part.partition("/")
        step = 1
        part_star = False
        if range_part in ("*", "?"):
            start, end, part_star = lo, hi, True
        else:
            a, dash, b = range_part.partition("-")
            start = _number(a, names)
            end = _number(b, names) if dash else start
        if step_part:
            step = _number(step_part, {})
            if step == 0:
                raise ScheduleError(f"step of range should be a positive number: {part}")
            if not part_star and "-" not in range_part:
                end = hi
            if step > 1:
                part_star = False
        if start < lo:
            raise ScheduleError(f"beginning of range ({start}) below minimum ({lo}): {part}")
        if end > hi:
            raise ScheduleError(f"end of range ({end}) above maximum ({hi}): {part}")
        if start > end:
            raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        values.update(range(start, end + 1, step))
        star = star or part_star
    return frozenset(values), star


@dataclass(frozen=True)
class CronSchedule:
    """A parsed five-field schedule; `next(t)` is the first activation strictly after `t`."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_star: bool
    dow_star: bool
    tz: tzinfo = UTC

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next(self, after: datetime) -> datetime | None:
        """The first activation time strictly after `after` (an aware datetime), in UTC; None if never."""
        local = after.astimezone(self.tz).replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        limit = local.year + _SEARCH_YEARS
        t = local
        while t.year <= limit:
            if t.month not in self.months:
                t = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1)
                continue
            if not self._day_matches(t):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = datetime(t.year, t.month, t.day, t.hour) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            aware = t.replace(tzinfo=self.tz)
            # A wall-clock time skipped by a DST jump does not exist; it does not round-trip.
            utc = aware.astimezone(UTC)
            if utc.astimezone(self.tz).replace(tzinfo=None) == t and utc > after:
                return utc
            t += timedelta(minutes=1)
        return None


def parse_schedule(schedule: str, time_zone: str | None = None) -> CronSchedule:
    """Parse a five-field schedule or @macro; `time_zone` is an IANA name (None means UTC)."""
    spec = schedule.strip()
    if spec.startswith(("TZ=", "CRON_TZ=")):
        raise ScheduleError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if spec.startswith("@"):
        if spec not in MACROS:
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        spec = MACROS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{schedule}]")
    parsed = [_parse_field(f, lo, hi, names) for f, (lo, hi, names) in zip(fields, _BOUNDS, strict=True)]
    tz: tzinfo = UTC
    if time_zone:
        try:
            tz = ZoneInfo(time_zone)
        except (KeyError, ValueError) as e:
            raise ScheduleError(f"unknown time zone {time_zone}") from e
    return CronSchedule(
        minutes=parsed[0][0],
        hours=parsed[1][0],
        days=parsed[2][0],
        months=parsed[3][0],
        weekdays=parsed[4][0],
        dom_star=parsed[2][1],
        dow_star=parsed[4][1],
        tz=tz,
    )


def most_recent_schedule_time(
    sched: CronSchedule, earliest: datetime, now: datetime, count_cap: int = 101
) -> tuple[datetime | None, int]:
    """The latest activation in (earliest, now] and how many activations fell in that window, counted
    up to `count_cap` (upstream's mostRecentScheduleTime; the caller warns when more than 100 were missed)."""
    most_recent: datetime | None = None
    missed = 0
    t = sched.next(earliest)
    while t is not None and t <= now:
        most_recent = t
        missed += 1
        if missed >= count_cap:
            break
        t = sched.next(t)
    if missed >= count_cap:
        # Too many to walk one by one: look back from now in growing windows for the latest activation.
        for window in (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=367), now - earliest):
            t = sched.next(max(earliest, now - window))
            if t is None or t > now:
                continue
            while t is not None and t <= now:
                most_recent = t
                t = sched.next(t)
            break
    return most_recent, missed
